/*
 * test_authres - the authentication results record and the one
 * Authentication-Results writer: format, quoting of hostile values, the
 * record's bound, and the recognition of forged fields with our
 * authserv-id.
 */
#include "filters/authres.h"
#include "tests/unit/check.h"

static void test_format(void)
{
	struct auth_results a = {0};
	struct auth_result r = {0};
	char out[4096];
	int n;

	n = authres_format(&a, "mx.example.net", out, sizeof out);
	CHECK_MEM(out, (size_t)n, "Authentication-Results: mx.example.net; none\r\n");

	snprintf(r.method, sizeof r.method, "spf");
	snprintf(r.result, sizeof r.result, "pass");
	snprintf(r.props, sizeof r.props, "smtp.mailfrom=example.org");
	CHECK(authres_add(&a, &r));
	snprintf(r.method, sizeof r.method, "dkim");
	snprintf(r.result, sizeof r.result, "fail");
	snprintf(r.reason, sizeof r.reason, "body hash mismatch");
	snprintf(r.props, sizeof r.props, "header.d=example.org header.s=sel header.b=abcdefgh");
	CHECK(authres_add(&a, &r));
	n = authres_format(&a, "mx.example.net", out, sizeof out);
	CHECK_MEM(out, (size_t)n, "Authentication-Results: mx.example.net;\r\n"
	    "\tspf=pass smtp.mailfrom=example.org;\r\n"
	    "\tdkim=fail (body hash mismatch) header.d=example.org header.s=sel header.b=abcdefgh\r\n");
	CHECK(authres_find(&a, "dkim", 0) == &a.r[1]);
	CHECK(authres_find(&a, "dkim", 1) == NULL);
	CHECK(authres_format(&a, "mx.example.net", out, 40) == -1);

	/* bounded */
	for (int i = 2; i < AUTHRES_MAX; i++)
		CHECK(authres_add(&a, &r));
	CHECK(!authres_add(&a, &r));
	CHECK_INT(a.n, AUTHRES_MAX);
}

/* outside a transaction a filter's env->auth is NULL (filters/filter.h):
 * the calls take it as an empty record that cannot be written */
static void test_no_record(void)
{
	struct auth_result r = {0};
	char out[256];
	int n;

	snprintf(r.method, sizeof r.method, "spf");
	snprintf(r.result, sizeof r.result, "pass");
	CHECK(!authres_add(NULL, &r));
	CHECK(authres_find(NULL, "spf", 0) == NULL);
	n = authres_format(NULL, "mx.example.net", out, sizeof out);
	CHECK_MEM(out, (size_t)n, "Authentication-Results: mx.example.net; none\r\n");
}

static void test_value(void)
{
	char out[64] = "x=";

	CHECK(authres_value(out, sizeof out, "example.org", 255));
	CHECK_STR(out, "x=example.org");
	out[2] = '\0';
	CHECK(authres_value(out, sizeof out, "a b\"c\\\r\n\x80", 255));
	CHECK_STR(out, "x=\"a b\\\"c\\\\???\"");
	out[2] = '\0';
	CHECK(authres_value(out, sizeof out, ".lead", 255));
	CHECK_STR(out, "x=\".lead\"");
	out[2] = '\0';
	CHECK(!authres_value(out, 10, "0123456789", 255));   /* does not fit */
}

static void test_is_ours(void)
{
	static const struct { const char *v; bool want; } cases[] = {
		{" mx.example.net; spf=pass", true},
		{"MX.Example.NET; spf=pass", true},
		{" (c) \"mx.example.net\"; x", true},
		{"mx.example.net.; none", true},
		{"other.example.net; spf=pass", false},
		{"mx.example.net.evil; spf=pass", false},
		{"", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = strlen(cases[i].v);
		char *g = guarded_copy(cases[i].v, len);
		CHECK_INT(authres_is_ours(g, len, "mx.example.net"), cases[i].want);
		guarded_free(g, len);
	}
	CHECK(!authres_is_ours("x; none", 7, ""));
}

int main(void)
{
	test_format();
	test_no_record();
	test_value();
	test_is_ours();
	return check_finish("test_authres");
}
