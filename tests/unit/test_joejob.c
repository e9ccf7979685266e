/*
 * test_joejob - the structural test of the forged-hop check, called as the
 * session calls it: header hook for each field, then FILTER_EOH. The
 * resolver is not started here, so a message that passes the structural
 * test reaches the lookups and gets joejob=temperror (no lookup could
 * start); one that fails it gets no note at all (no DNS cost). The
 * verdicts after real lookups are in tests/integration/joejob.py.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "filters/filter.h"
#include "proxy/config.h"

extern const struct filter_ops filter_joejob;

struct client {
	const char *ip, *name, *helo, *mail_from, *listener;
};

static const struct client zombie = {"198.51.100.7", "unknown", "zombie.example",
    "x@talk21.com", "inbound"};

/* run - the fields of a message through the hooks; true when it would
 * look the domains up */
static bool looks_up(const struct config *cfg, const struct client *c, const char *const *fields)
{
	struct filter_env env;
	struct filter_verdict v;
	struct filter_async token = {1, 1, NULL};
	void *state = NULL;
	enum filter_result r;

	memset(&env, 0, sizeof env);
	env.sid = "TEST";
	env.listener = c->listener;
	env.client_ip = c->ip;
	env.client_name = c->name;
	env.helo = c->helo;
	env.mail_from = c->mail_from;
	env.null_sender = c->mail_from[0] == '\0';
	env.cfg = cfg;
	env.txn_state = &state;
	for (size_t i = 0; fields[i]; i++) {
		struct filter_header h;
		const char *colon = strchr(fields[i], ':');
		memset(&h, 0, sizeof h);
		h.name = fields[i];
		h.name_len = (size_t)(colon - fields[i]);
		h.value = colon + 1;
		h.value_len = strlen(colon + 1);
		h.field = fields[i];
		h.field_len = strlen(fields[i]);
		CHECK(filter_joejob.header(&env, &h));   /* never drops a field */
	}
	memset(&v, 0, sizeof v);
	r = filter_joejob.hook[FILTER_EOH](&env, &v, &token);
	CHECK_INT(r, FILTER_CONTINUE);   /* no resolver: never refuses */
	filter_joejob.txn_end(&env, FILTER_TXN_RESET);
	CHECK(state == NULL);
	return strcmp(v.note, "joejob=temperror") == 0;
}

#define FIELDS(...) ((const char *const[]){__VA_ARGS__, NULL})

int main(void)
{
	struct config *cfg = config_defaults();
	struct client c;

	if (cfg == NULL)
		return check_error("test_joejob", "config_defaults failed");
	bool listed = false;
	for (size_t i = 0; i < filter_table_len; i++)
		listed |= filter_table[i] == &filter_joejob;
	CHECK(listed);   /* in the table the session runs */
	CHECK(!filter_joejob.enabled(cfg));   /* off by default */
	cfg->joejob.mode = JOEJOB_MODE_ENFORCE;
	CHECK(filter_joejob.enabled(cfg));
	CHECK(!filter_joejob.hold_listener(cfg, "inbound"));
	cfg->joejob.mode = JOEJOB_MODE_MARK;
	CHECK(filter_joejob.hold_listener(cfg, "inbound"));
	CHECK(!filter_joejob.hold_listener(cfg, "outbound"));

	/* the published shape, and the forms of naming the client */
	CHECK(looks_up(cfg, &zombie, FIELDS("Received: from [198.51.100.7] by ns2.bt.net; x",
	    "From: <gladys@talk21.com>")));
	CHECK(looks_up(cfg, &zombie, FIELDS("Received: from h (unknown [198.51.100.7])\r\n\tby "
	    "ns2.bt.net (Postfix)", "From: a@talk21.com")));
	CHECK(looks_up(cfg, &zombie, FIELDS("Received: from [198.51.100.7] (helo=zombie.example)"
	    " by ns2.bt.net with esmtp", "From: a@talk21.com")));
	CHECK(looks_up(cfg, &zombie, FIELDS("Received: from zombie.example by ns2.bt.net",
	    "From: a@talk21.com")));                    /* the HELO, no address */
	CHECK(looks_up(cfg, &zombie, FIELDS("received: from [198.51.100.7] by ns2.bt.net",
	    "FROM: a@talk21.com")));                    /* field names in any case */
	/* the MAIL FROM domain alone is enough (From: unusable) */
	CHECK(looks_up(cfg, &zombie, FIELDS("Received: from [198.51.100.7] by ns2.bt.net",
	    "From: undisclosed")));
	/* the TOP field counts, not a lower one */
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from a.example (a.example [192.0.2.1]) by "
	    "b.example", "Received: from [198.51.100.7] by ns2.bt.net", "From: a@talk21.com")));
	/* another host in the from part */
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from [192.0.2.1] by ns2.bt.net",
	    "From: a@talk21.com")));
	/* an address that is not the client's wins over a name that is */
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from zombie.example ([192.0.2.1]) by "
	    "ns2.bt.net", "From: a@talk21.com")));
	/* the HELO literal in an Exim comment is no address of the client */
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from h.example (helo=[198.51.100.7]) by "
	    "ns2.bt.net", "From: a@talk21.com")));
	/* by is the client itself (its HELO, case and dot aside) */
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from [198.51.100.7] by ZOMBIE.example.",
	    "From: a@talk21.com")));
	/* by is an address, or missing: nothing to look up */
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from [198.51.100.7] by [192.0.2.9]",
	    "From: a@talk21.com")));
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from [198.51.100.7]; x",
	    "From: a@talk21.com")));
	/* no Received field at all */
	CHECK(!looks_up(cfg, &zombie, FIELDS("From: a@talk21.com")));
	/* a malformed top field: what it says before the damage */
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from [198.51.100.7] (by ns2.bt.net",
	    "From: a@talk21.com")));

	/* no domain to look up: null sender and an unusable From: */
	c = zombie;
	c.mail_from = "";
	CHECK(!looks_up(cfg, &c, FIELDS("Received: from [198.51.100.7] by ns2.bt.net",
	    "From: undisclosed")));
	CHECK(looks_up(cfg, &c, FIELDS("Received: from [198.51.100.7] by ns2.bt.net",
	    "From: a@talk21.com")));
	CHECK(!looks_up(cfg, &c, FIELDS("Received: from [198.51.100.7] by ns2.bt.net",
	    "From: a@[192.0.2.1]")));

	/* the reverse name names the client; "unknown" names nobody */
	c = zombie;
	c.name = "dsl-7.isp.example";
	CHECK(looks_up(cfg, &c, FIELDS("Received: from DSL-7.isp.example by ns2.bt.net",
	    "From: a@talk21.com")));
	CHECK(!looks_up(cfg, &c, FIELDS("Received: from [198.51.100.7] by dsl-7.isp.example",
	    "From: a@talk21.com")));
	CHECK(!looks_up(cfg, &zombie, FIELDS("Received: from unknown by ns2.bt.net",
	    "From: a@talk21.com")));

	/* IPv6 clients: any spelling of the address */
	c = zombie;
	c.ip = "2001:db8::7";
	CHECK(looks_up(cfg, &c, FIELDS("Received: from [IPv6:2001:DB8:0::7] by ns2.bt.net",
	    "From: a@talk21.com")));
	CHECK(!looks_up(cfg, &c, FIELDS("Received: from [IPv6:2001:db8::8] by ns2.bt.net",
	    "From: a@talk21.com")));

	/* outbound: our own users' mail is not checked */
	c = zombie;
	c.listener = "outbound";
	CHECK(!looks_up(cfg, &c, FIELDS("Received: from [198.51.100.7] by ns2.bt.net",
	    "From: a@talk21.com")));

	config_unref(cfg);
	return check_finish("test_joejob");
}
