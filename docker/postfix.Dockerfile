# postfix.Dockerfile - the example backend of compose.yml: Debian's Postfix, delivering mail for
# example.test (user@, postmaster@, abuse@: docker/postfix/vmailbox) to Maildir mailboxes in the
# volume /var/mail/vhosts, trusting XCLIENT from its own network (backstop), logging to stdout
# (`docker logs`), in the foreground (`postfix start-fg`: master is PID 1). Mail for any other
# domain is refused at RCPT: it never sends anything out.
#
# It also carries openssl (a dependency of the postfix package), so compose.yml's one-shot
# `secrets` service runs this image to make backstop's TLS key and BATV keys at first start
# (docker/make-secrets.sh, certs/make-self-signed.sh): no private key is in any image.
#
#   docker build -t backstop-postfix -f docker/postfix.Dockerfile .     (context: the repository root)
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
# uid/gid that owns the mailboxes (virtual_uid_maps in main.cf)
ARG VMAIL_UID=5000
# "No configuration": the package installs no main.cf of its own and starts nothing
RUN echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && groupadd --gid "$VMAIL_UID" vmail \
 && useradd --uid "$VMAIL_UID" --gid vmail --home-dir /var/mail/vhosts --no-create-home \
        --shell /usr/sbin/nologin vmail \
 && mkdir -p /var/mail/vhosts \
 && chown vmail:vmail /var/mail/vhosts
COPY docker/postfix/main.cf docker/postfix/master.cf docker/postfix/vmailbox /etc/postfix/
COPY certs/make-self-signed.sh /usr/local/share/backstop/make-self-signed.sh
COPY docker/make-secrets.sh /usr/local/bin/backstop-make-secrets
# Fail the build, not the first start, on a configuration error (postfix check is silent
# when all is well; postconf -n shows what a typo would have turned into a warning).
RUN chmod 0644 /etc/postfix/main.cf /etc/postfix/master.cf /etc/postfix/vmailbox \
 && chmod 0755 /usr/local/bin/backstop-make-secrets /usr/local/share/backstop/make-self-signed.sh \
 && postfix check \
 && test -z "$(postconf -n 2>&1 >/dev/null)"
# the mailboxes: a named volume starts as a copy of this (empty, vmail-owned) directory
VOLUME /var/mail/vhosts
EXPOSE 25
# master stops on SIGTERM (docker stop) and reaps its children as PID 1
STOPSIGNAL SIGTERM
CMD ["postfix", "start-fg"]
