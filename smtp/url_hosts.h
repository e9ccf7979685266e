/*
 * url_hosts - the hosts of the http:// and https:// URLs in text, for the
 * refused-bounce record (the spamvertised sites of a forged run). No I/O.
 *
 * Fed line by line (a line may come in pieces: a URL cut between two
 * calls is lost, never misread). A host is the authority of the URL
 * without userinfo and port, lowercased, a final dot dropped: letters,
 * digits, '-', '.', '_' (a name) or a bracketed IPv6 literal; anything else
 * ends it, and a host that is empty, longer than URL_HOST_MAX - 1 or has
 * no letter or digit is skipped. Each host is kept once; at most
 * URL_HOSTS_MAX are kept, later new ones are counted in "dropped" only.
 * Memory: the struct itself (URL_HOSTS_MAX * URL_HOST_MAX + a few words,
 * about 1 KiB); time: linear in the text.
 */
#ifndef SMTP_URL_HOSTS_H
#define SMTP_URL_HOSTS_H

#include <stddef.h>

#define URL_HOSTS_MAX 8
#define URL_HOST_MAX 128

struct url_hosts {
	size_t n;
	unsigned dropped;                      /* distinct hosts past URL_HOSTS_MAX */
	char host[URL_HOSTS_MAX][URL_HOST_MAX];
};

/* url_hosts_line - the URLs of line[0..len) added to u (any bytes, NUL too). */
void url_hosts_line(struct url_hosts *u, const char *line, size_t len);

#endif
