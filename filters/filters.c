/*
 * filters - the table of compiled-in checks, in the order they run.
 * A new check is one struct filter_ops in its own file and one line here.
 */
#include <stdio.h>
#include <string.h>

#include "filters/filter.h"

extern const struct filter_ops filter_ratelimit;
extern const struct filter_ops filter_helo;
extern const struct filter_ops filter_batv;
extern const struct filter_ops filter_bounce;
extern const struct filter_ops filter_outbound_sig;
extern const struct filter_ops filter_spf;
extern const struct filter_ops filter_dkim;
extern const struct filter_ops filter_dmarc;
extern const struct filter_ops filter_joejob;
extern const struct filter_ops filter_dnsbl;

const struct filter_ops *const filter_table[] = {
	&filter_ratelimit,  /* first: cheap, and spares a flood the DNS lookups of later checks */
	&filter_helo,
	&filter_dnsbl,   /* early: at connect, and at MAIL FROM:<> before SPF's lookups */
	&filter_batv,
	&filter_bounce,  /* after BATV: with refuse_at = content it gives BATV's verdict */
	&filter_outbound_sig,
	&filter_spf,
	&filter_dkim,
	&filter_dmarc,  /* after SPF and DKIM: it reads their results */
	&filter_joejob,
};
const size_t filter_table_len = sizeof filter_table / sizeof filter_table[0];

_Static_assert(sizeof filter_table / sizeof filter_table[0] <= FILTER_TABLE_MAX,
    "struct filter_loop has a slot per filter");

int filters_init(struct filter_loop *fl, const struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < filter_table_len; i++) {
		char why[512] = "";
		if (filter_table[i]->init && filter_table[i]->init(&fl->state[i], fl->loop, cfg, why, sizeof why) < 0) {
			snprintf(err, errlen, "%s: %s", filter_table[i]->name, why);
			return -1;
		}
	}
	return 0;
}

int filters_check(const struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < filter_table_len; i++) {
		char why[512] = "";
		if (filter_table[i]->check && filter_table[i]->check(cfg, why, sizeof why) < 0) {
			snprintf(err, errlen, "%s: %s", filter_table[i]->name, why);
			return -1;
		}
	}
	return 0;
}

void filters_shutdown(struct filter_loop *fl)
{
	for (size_t i = filter_table_len; i-- > 0;)
		if (filter_table[i]->shutdown != NULL)
			filter_table[i]->shutdown(&fl->state[i]);
}

size_t filter_index(const struct filter_ops *ops)
{
	size_t i = 0;

	while (i < filter_table_len && filter_table[i] != ops)
		i++;
	return i;
}

void *filter_loop_state(const struct filter_loop *fl, const struct filter_ops *ops)
{
	size_t i = filter_index(ops);

	return fl != NULL && i < filter_table_len ? fl->state[i] : NULL;
}

const char *filter_stage_name(enum filter_stage stage)
{
	static const char *const names[FILTER_STAGE_COUNT] = {
		"connect", "helo", "mail", "rcpt", "data", "eoh", "eod",
	};
	return (unsigned)stage < FILTER_STAGE_COUNT ? names[stage] : "?";
}
