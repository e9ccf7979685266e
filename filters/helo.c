/*
 * helo - the example check: refuse HELO/EHLO names that no honest client
 * uses (filters/README.md walks through it).
 *
 *   reject_invalid:  the name is neither a domain nor an address literal
 *                    (RFC 5321 4.1.1.1, 4.1.3): 501 5.5.2
 *   reject_own_name: the client claims to be this server ([server]
 *                    hostname) -- a common spambot forgery: 550 5.7.1
 *
 * Stateless and synchronous; runs at FILTER_HELO only.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "filters/filter.h"
#include "proxy/config.h"
#include "smtp/smtp_addr.h"

static bool helo_enabled(const struct config *cfg)
{
	return cfg->helo.reject_invalid || cfg->helo.reject_own_name;
}

static enum filter_result helo_check(const struct filter_env *env, struct filter_verdict *v,
    const struct filter_async *async)
{
	const struct config *cfg = env->cfg;
	const char *helo = env->helo;
	(void)async;

	if (cfg->helo.reject_invalid && !smtp_domain_valid(helo, strlen(helo))) {
		v->code = 501;
		snprintf(v->esc, sizeof v->esc, "5.5.2");
		snprintf(v->text, sizeof v->text, "Error: invalid HELO/EHLO name: not a domain or address literal");
		snprintf(v->note, sizeof v->note, "helo=invalid");
		return FILTER_REJECT;
	}
	if (cfg->helo.reject_own_name && strcasecmp(helo, cfg->server.hostname) == 0) {
		v->code = 550;
		snprintf(v->esc, sizeof v->esc, "5.7.1");
		snprintf(v->text, sizeof v->text, "Error: you are not %s", cfg->server.hostname);
		snprintf(v->note, sizeof v->note, "helo=forged");
		return FILTER_REJECT;
	}
	return FILTER_CONTINUE;
}

const struct filter_ops filter_helo = {
	.name = "helo",
	.enabled = helo_enabled,
	.hook = {[FILTER_HELO] = helo_check},
};
