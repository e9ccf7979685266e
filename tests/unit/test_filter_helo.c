/* test_filter_helo - the example check, called as the session calls it. */
#include <string.h>

#include <stdlib.h>
#include "check.h"
#include "filters/filter.h"
#include "proxy/config.h"

extern const struct filter_ops filter_helo;

static enum filter_result run(const struct config *cfg, const char *helo, struct filter_verdict *v)
{
	struct filter_env env;
	struct filter_async token = {1, 1, NULL};
	memset(&env, 0, sizeof env);
	memset(v, 0, sizeof *v);
	env.helo = helo;
	env.cfg = cfg;
	env.sid = "TEST";
	return filter_helo.hook[FILTER_HELO](&env, v, &token);
}

int main(void)
{
	struct config *cfg = config_defaults();
	struct filter_verdict v;
	static const struct {
		const char *helo;
		enum filter_result want;
		int code;
		const char *note;
	} cases[] = {
		{"mail.example.org", FILTER_CONTINUE, 0, "an ordinary name"},
		{"localhost", FILTER_CONTINUE, 0, "not a FQDN, but valid syntax"},
		{"[192.0.2.1]", FILTER_CONTINUE, 0, "address literal"},
		{"[IPv6:2001:db8::1]", FILTER_CONTINUE, 0, "IPv6 literal"},
		{"192.0.2.1", FILTER_CONTINUE, 0, "bare IP: digits are valid labels"},
		{"bad_name!", FILTER_REJECT, 501, "invalid characters"},
		{"", FILTER_REJECT, 501, "empty"},
		{"a..b", FILTER_REJECT, 501, "empty label"},
		{"[300.1.1.1]", FILTER_REJECT, 501, "bad literal"},
		{"x\xff.example", FILTER_REJECT, 501, "8-bit"},
	};

	CHECK(cfg != NULL);
	free(cfg->server.hostname);
	cfg->server.hostname = strdup("mx.example.org");
	CHECK(filter_helo.enabled(cfg));
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum filter_result r = run(cfg, cases[i].helo, &v);
		CHECK_INT(r, cases[i].want);
		if (r != cases[i].want)
			fprintf(stderr, "  case: %s (%s)\n", cases[i].note, cases[i].helo);
		if (cases[i].code)
			CHECK_INT(v.code, cases[i].code);
	}
	CHECK_INT(run(cfg, "MX.Example.ORG", &v), FILTER_REJECT);
	CHECK_INT(v.code, 550);
	CHECK_STR(v.esc, "5.7.1");
	CHECK_STR(v.note, "helo=forged");

	cfg->helo.reject_own_name = false;
	CHECK_INT(run(cfg, "mx.example.org", &v), FILTER_CONTINUE);
	cfg->helo.reject_invalid = false;
	CHECK(!filter_helo.enabled(cfg));
	config_unref(cfg);
	return check_finish("test_filter_helo");
}
