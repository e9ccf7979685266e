# sink.Dockerfile - the example backend of docker-compose.yml: Postfix's smtp-sink, which
# answers 250 to everything and writes each transaction it receives to a file under /mail
# (envelope as X-Client-Addr:, X-Helo-Args:, X-Mail-Args:, X-Rcpt-Args: lines, then the
# message as received, with backstop's Received: header on top). A test peer, not an MTA:
# it delivers nothing.
#
#   docker build -t backstop-sink -f docker/sink.Dockerfile docker
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# postfix only for its smtp-sink: no configuration, no daemon started
RUN echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && mkdir /mail \
 && chown nobody:nogroup /mail
EXPOSE 25
# smtp-sink starts as root to bind 25, then runs as nobody; 100 = connection backlog.
CMD ["/usr/sbin/smtp-sink", "-u", "nobody", "-h", "backend.example", "-d", "/mail/%M.", "0.0.0.0:25", "100"]
