# haproxy.Dockerfile - HAProxy from Debian 12 (2.6) for compose.haproxy.yml, with
# docker/haproxy.cfg. Runs as the package's `haproxy` user in the foreground (-db: logs on
# stdout, i.e. `docker logs`), listening on 2525.
#
#   docker build -t backstop-haproxy -f docker/haproxy.Dockerfile .     (context: the repository root)
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends haproxy \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
COPY docker/haproxy.cfg /etc/haproxy/haproxy.cfg
RUN chmod 0644 /etc/haproxy/haproxy.cfg \
 && haproxy -c -f /etc/haproxy/haproxy.cfg
USER haproxy
EXPOSE 2525
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
