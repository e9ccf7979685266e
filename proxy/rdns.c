/*
 * rdns - forward-confirmed reverse DNS for the client (see rdns.h).
 *
 * Lookups are asynchronous (dns_query_async); the answer goes to the
 * owner's callback with the owner's id, which the owner looks up: one that
 * closed meanwhile is simply not found.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/dns.h"
#include "proxy/log.h"
#include "proxy/rdns.h"

/* the layering rule (README.md, Layout), checked by the compiler */
#ifdef SESSION_H
#error "rdns sits below session: answer by id through rdns_done_cb"
#endif

struct rdns_job {
	struct dns *dns;
	void *owner;
	uint64_t owner_id;
	rdns_done_cb done;
	int family;
	unsigned char addr[16];
	char name[256];
};

static void rdns_finish(struct rdns_job *job, const char *name, bool temporary)
{
	job->done(job->owner, job->owner_id, name, temporary);
	free(job);
}

/* hostname_ok - what may stand in a Received header and XCLIENT NAME */
static bool hostname_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > 253)
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
			return false;
	return true;
}

static void forward_done(void *arg, const struct dns_answer *a)
{
	struct rdns_job *job = arg;
	size_t alen = job->family == AF_INET ? 4 : 16;

	if (a->status == DNS_OK) {
		for (size_t i = 0; i < a->n; i++) {
			if (a->rr[i].len == alen && memcmp(a->rr[i].data, job->addr, alen) == 0) {
				rdns_finish(job, job->name, false);
				return;
			}
		}
	}
	log_info("client name %s does not resolve back to the client's address (%s)", job->name,
	    dns_status_name(a->status));
	rdns_finish(job, NULL, a->status == DNS_TIMEOUT || a->status == DNS_SERVFAIL || a->status == DNS_ERROR);
}

static void ptr_done(void *arg, const struct dns_answer *a)
{
	struct rdns_job *job = arg;

	if (a->status != DNS_OK || a->n == 0 || a->rr[0].text == NULL || !hostname_ok(a->rr[0].text)) {
		rdns_finish(job, NULL, a->status == DNS_TIMEOUT || a->status == DNS_SERVFAIL || a->status == DNS_ERROR);
		return;
	}
	snprintf(job->name, sizeof job->name, "%s", a->rr[0].text);
	if (dns_query_async(job->dns, job->family == AF_INET ? DNS_T_A : DNS_T_AAAA, job->name, 0, forward_done, job) < 0)
		rdns_finish(job, NULL, true);
}

int rdns_start(struct dns *dns, const struct sockaddr_storage *peer, void *owner, uint64_t owner_id, rdns_done_cb done)
{
	struct rdns_job *job;
	char qname[80];
	size_t o = 0;

	if ((job = calloc(1, sizeof *job)) == NULL)
		return -1;
	job->dns = dns;
	job->owner = owner;
	job->owner_id = owner_id;
	job->done = done;
	job->family = peer->ss_family;
	if (job->family == AF_INET) {
		const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)peer)->sin_addr;
		memcpy(job->addr, b, 4);
		snprintf(qname, sizeof qname, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
	} else {
		const unsigned char *b = ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr;
		static const char hex[] = "0123456789abcdef";
		memcpy(job->addr, b, 16);
		for (int i = 15; i >= 0; i--) {
			qname[o++] = hex[b[i] & 15];
			qname[o++] = '.';
			qname[o++] = hex[b[i] >> 4];
			qname[o++] = '.';
		}
		snprintf(qname + o, sizeof qname - o, "ip6.arpa");
	}
	if (dns_query_async(dns, DNS_T_PTR, qname, 0, ptr_done, job) < 0) {
		free(job);
		return -1;
	}
	return 0;
}
