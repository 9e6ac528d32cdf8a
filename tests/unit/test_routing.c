/*
 * The pure parts of outbound routing: SMTP AUTH payloads and the
 * loopback rule (common/smtp_auth.c), the per-message smarthost in the
 * message properties (common/props_smarthost.c), the order in which
 * the smarthosts list is tried (common/smarthost_order.c), the TLS
 * policy names and precedence (common/tls_policy.c), the "security" and
 * "ips" properties (common/props_route.c), and the config's checks of
 * smtp-tls-policy and of a route's security member (common/conf.c).
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "envelope.h"
#include "props_route.h"
#include "props_smarthost.h"
#include "smarthost_order.h"
#include "smtp_auth.h"
#include "tls_policy.h"
#include "xmalloc.h"

/* RFC 4648 section 10 test vectors. */
static void
test_b64(void **state)
{
	const char	*in[] = { "", "f", "fo", "foo", "foob", "fooba",
			    "foobar" };
	const char	*out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==",
			    "Zm9vYmE=", "Zm9vYmFy" };
	char		 buf[16];
	size_t		 i;

	for (i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		assert_string_equal(smtp_auth_b64(in[i], strlen(in[i]), buf,
		    sizeof(buf)), out[i]);
	/* Too small a buffer gives "", never an overflow. */
	assert_string_equal(smtp_auth_b64("foobar", 6, buf, 8), "");
	assert_int_equal(SMTP_AUTH_B64LEN(6), 9);
}

static void
test_plain_login(void **state)
{
	char	*p;

	/* base64("\0user\0secret"), as Python's base64 gives it */
	p = smtp_auth_plain("user", "secret");
	assert_string_equal(p, "AHVzZXIAc2VjcmV0");
	xfreestr(p);
	p = smtp_auth_plain("", "");
	assert_string_equal(p, "AAA=");
	xfreestr(p);
	p = smtp_auth_login("user");
	assert_string_equal(p, "dXNlcg==");
	xfreestr(p);
}

static void
test_choose(void **state)
{
	assert_int_equal(smtp_auth_choose(SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN),
	    SMTP_AUTH_PLAIN);
	assert_int_equal(smtp_auth_choose(SMTP_AUTH_LOGIN), SMTP_AUTH_LOGIN);
	assert_int_equal(smtp_auth_choose(0), 0);
	assert_string_equal(smtp_auth_name(SMTP_AUTH_PLAIN), "PLAIN");
	assert_string_equal(smtp_auth_name(SMTP_AUTH_LOGIN), "LOGIN");
}

static int
loopback(const char *ip)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		fail_msg("bad test address %s", ip);
	return smtp_auth_loopback((struct sockaddr *)&ss);
}

/* Credentials go without TLS only to these. */
static void
test_loopback(void **state)
{
	assert_true(loopback("127.0.0.1"));
	assert_true(loopback("127.255.0.3"));
	assert_true(loopback("::1"));
	assert_true(loopback("::ffff:127.0.0.1"));
	assert_false(loopback("128.0.0.1"));
	assert_false(loopback("10.0.0.1"));
	assert_false(loopback("::2"));
	assert_false(loopback("::ffff:10.0.0.1"));
	assert_false(loopback("2001:db8::1"));
}

static void
test_props(void **state)
{
	struct props_smarthost	 sh;

	assert_int_equal(props_smarthost("{\"smarthost\":{\"hostname\":"
	    "\"Relay.Example.NET\",\"port\":587,\"username\":\"u\","
	    "\"password\":\"p\"}}", &sh), 1);
	assert_string_equal(sh.hostname, "relay.example.net");
	assert_int_equal(sh.port, 587);
	assert_string_equal(sh.username, "u");
	assert_string_equal(sh.password, "p");
	props_smarthost_clear(&sh);

	/* port as a string, default 25; no username: no AUTH */
	assert_int_equal(props_smarthost("{\"smarthost\":{\"hostname\":"
	    "\"a.test\",\"port\":\"2525\",\"password\":\"p\"}}", &sh), 1);
	assert_int_equal(sh.port, 2525);
	assert_null(sh.username);
	assert_null(sh.password);
	props_smarthost_clear(&sh);
	assert_int_equal(props_smarthost("{\"smarthost\":{\"hostname\":"
	    "\"a.test\",\"username\":\"\"}}", &sh), 1);
	assert_int_equal(sh.port, 25);
	assert_null(sh.username);
	props_smarthost_clear(&sh);
	/* a username without password: an empty one */
	assert_int_equal(props_smarthost("{\"smarthost\":{\"hostname\":"
	    "\"a.test\",\"username\":\"u\"}}", &sh), 1);
	assert_string_equal(sh.password, "");
	props_smarthost_clear(&sh);
}

/* None, exactly when envelope_smarthost_key() makes no queue key. */
static void
test_props_none(void **state)
{
	const char	*none[] = { NULL, "", "not json", "[]", "{}",
			    "{\"smarthost\":\"a.test\"}",
			    "{\"smarthost\":{}}",
			    "{\"smarthost\":{\"hostname\":\"\"}}",
			    "{\"smarthost\":{\"hostname\":7}}",
			    "{\"smarthost\":{\"hostname\":\"a\",\"port\":0}}",
			    "{\"smarthost\":{\"hostname\":\"a\",\"port\":"
			    "65536}}",
			    "{\"smarthost\":{\"hostname\":\"a\",\"port\":"
			    "\"25x\"}}",
			    "{\"smarthost\":{\"hostname\":\"a\",\"port\":"
			    "true}}" };
	struct props_smarthost	 sh;
	char			*key;
	size_t			 i;

	for (i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		assert_int_equal(props_smarthost(none[i], &sh), 0);
		key = envelope_smarthost_key(none[i]);
		assert_null(key);
	}
	key = envelope_smarthost_key("{\"smarthost\":{\"hostname\":"
	    "\"A.test\",\"port\":\"587\"}}");
	assert_string_equal(key, "(smarthost) a.test:587");
	free(key);
}

/* Credentials of the wrong type or too long: the message cannot go. */
static void
test_props_bad_cred(void **state)
{
	struct props_smarthost	 sh;
	char			*big, *json;

	assert_int_equal(props_smarthost("{\"smarthost\":{\"hostname\":"
	    "\"a\",\"username\":5}}", &sh), -1);
	assert_int_equal(props_smarthost("{\"smarthost\":{\"hostname\":"
	    "\"a\",\"username\":\"u\",\"password\":[]}}", &sh), -1);
	big = xcalloc(1, SMTP_AUTH_CRED_MAX + 2);
	memset(big, 'x', SMTP_AUTH_CRED_MAX + 1);
	xasprintf(&json, "{\"smarthost\":{\"hostname\":\"a\",\"username\":"
	    "\"u\",\"password\":\"%s\"}}", big);
	assert_int_equal(props_smarthost(json, &sh), -1);
	free(json);
	big[SMTP_AUTH_CRED_MAX] = '\0';
	xasprintf(&json, "{\"smarthost\":{\"hostname\":\"a\",\"username\":"
	    "\"u\",\"password\":\"%s\"}}", big);
	assert_int_equal(props_smarthost(json, &sh), 1);
	assert_int_equal(strlen(sh.password), SMTP_AUTH_CRED_MAX);
	props_smarthost_clear(&sh);
	free(json);
	free(big);
}

/* A small deterministic generator, so that the tests repeat. */
static uint64_t	 rnd_state;

static uint32_t
rnd(uint32_t bound)
{
	rnd_state = rnd_state * 6364136223846793005ULL +
	    1442695040888963407ULL;
	return (uint32_t)((rnd_state >> 33) % bound);
}

/* The first choice follows the weights: 1:3 within half a percent. */
static void
test_order_weights(void **state)
{
	struct smarthost_cand	 c[2] = { { 1, 0, 0 }, { 3, 0, 0 } };
	size_t			 order[2], first[2] = { 0, 0 }, i;
	const size_t		 draws = 200000;

	rnd_state = 42;
	for (i = 0; i < draws; i++) {
		assert_int_equal(smarthost_order(c, 2, order, rnd), 2);
		assert_int_not_equal(order[0], order[1]);
		first[order[0]]++;
	}
	assert_in_range(first[1] * 1000 / draws, 745, 755);
}

/* Backups come after every healthy primary; down hosts come last. */
static void
test_order_classes(void **state)
{
	struct smarthost_cand	 c[5] = {
		{ 5, 1, 0 },	/* 0: backup */
		{ 1, 0, 1 },	/* 1: primary, down */
		{ 1, 0, 0 },	/* 2: primary */
		{ 9, 1, 1 },	/* 3: backup, down */
		{ 2, 0, 0 },	/* 4: primary */
	};
	size_t			 order[5], i;

	rnd_state = 7;
	for (i = 0; i < 1000; i++) {
		assert_int_equal(smarthost_order(c, 5, order, rnd), 5);
		assert_true(order[0] == 2 || order[0] == 4);
		assert_true(order[1] == 2 || order[1] == 4);
		assert_int_equal(order[2], 0);
		assert_int_equal(order[3], 1);
		assert_int_equal(order[4], 3);
	}
	/* Every primary down: the healthy backup first. */
	c[2].down = c[4].down = 1;
	assert_int_equal(smarthost_order(c, 5, order, rnd), 5);
	assert_int_equal(order[0], 0);
	assert_int_equal(order[4], 3);
}

static void
test_order_bounds(void **state)
{
	struct smarthost_cand	 c[SMARTHOST_MAX + 1];
	size_t			 order[SMARTHOST_MAX + 1], seen[SMARTHOST_MAX];
	size_t			 i;

	for (i = 0; i < SMARTHOST_MAX + 1; i++) {
		c[i].weight = 1000;
		c[i].backup = (int)(i % 3 == 0);
		c[i].down = (int)(i % 5 == 0);
	}
	rnd_state = 1;
	assert_int_equal(smarthost_order(c, 0, order, rnd), 0);
	assert_int_equal(smarthost_order(c, SMARTHOST_MAX + 1, order, rnd),
	    SMARTHOST_MAX);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < SMARTHOST_MAX; i++) {
		assert_true(order[i] < SMARTHOST_MAX);
		seen[order[i]]++;
	}
	for (i = 0; i < SMARTHOST_MAX; i++)
		assert_int_equal(seen[i], 1);
}

static void
test_tls_policy(void **state)
{
	assert_int_equal(tls_policy_parse("none"), TLS_POLICY_NONE);
	assert_int_equal(tls_policy_parse("Opportunistic"),
	    TLS_POLICY_OPPORTUNISTIC);
	assert_int_equal(tls_policy_parse("REQUIRED"), TLS_POLICY_REQUIRED);
	assert_int_equal(tls_policy_parse(""), -1);
	assert_int_equal(tls_policy_parse("unset"), -1);
	assert_int_equal(tls_policy_parse("required "), -1);
	assert_int_equal(tls_policy_parse(NULL), -1);
	assert_string_equal(tls_policy_name(TLS_POLICY_REQUIRED), "required");
	assert_string_equal(tls_policy_name(42), "?");
	/* message > route > global; nothing set: opportunistic */
	assert_int_equal(tls_policy_pick(TLS_POLICY_NONE, TLS_POLICY_REQUIRED,
	    TLS_POLICY_REQUIRED), TLS_POLICY_NONE);
	assert_int_equal(tls_policy_pick(0, TLS_POLICY_REQUIRED,
	    TLS_POLICY_NONE), TLS_POLICY_REQUIRED);
	assert_int_equal(tls_policy_pick(0, 0, TLS_POLICY_NONE),
	    TLS_POLICY_NONE);
	assert_int_equal(tls_policy_pick(0, 0, 0), TLS_POLICY_OPPORTUNISTIC);
}

static void
test_props_route(void **state)
{
	struct props_route	 r;

	props_route("{\"security\": \"required\", \"ips\": "
	    "[\"192.0.2.10\", \"2001:db8::1\", \"0.0.0.0\"]}", &r);
	assert_int_equal(r.security, TLS_POLICY_REQUIRED);
	assert_false(r.security_bad || r.ips_bad);
	assert_int_equal(r.nips, 3);
	assert_string_equal(r.ips[0], "192.0.2.10");
	assert_string_equal(r.ips[1], "2001:db8::1");
	assert_string_equal(r.ips[2], "0.0.0.0");

	/* One string will do; case does not matter in the policy. */
	props_route("{\"security\": \"None\", \"ips\": \"10.0.0.1\"}",
	    &r);
	assert_int_equal(r.security, TLS_POLICY_NONE);
	assert_int_equal(r.nips, 1);
	assert_string_equal(r.ips[0], "10.0.0.1");

	/* Absent, or not an object: nothing set, nothing flagged. */
	props_route("{\"tags\": [\"x\"]}", &r);
	assert_int_equal(r.security, TLS_POLICY_UNSET);
	assert_int_equal(r.nips, 0);
	assert_false(r.security_bad || r.ips_bad);
	props_route("[1, 2]", &r);
	assert_int_equal(r.nips + r.security + r.ips_bad + r.security_bad, 0);
	props_route("{ not json", &r);
	assert_int_equal(r.nips + r.security + r.ips_bad + r.security_bad, 0);
	props_route(NULL, &r);
	assert_int_equal(r.nips, 0);
	props_route("{\"ips\": []}", &r);
	assert_false(r.ips_bad);
	assert_int_equal(r.nips, 0);
}

static void
test_props_route_bad(void **state)
{
	struct props_route	 r;
	char			 buf[2048];
	size_t			 i, off;

	props_route("{\"security\": \"sometimes\"}", &r);
	assert_true(r.security_bad);
	assert_int_equal(r.security, TLS_POLICY_UNSET);
	props_route("{\"security\": 3}", &r);
	assert_true(r.security_bad);

	/* ips: all good or none at all */
	props_route("{\"ips\": [\"192.0.2.1\", \"mail.example\"]}", &r);
	assert_true(r.ips_bad);
	assert_int_equal(r.nips, 0);
	props_route("{\"ips\": [\"192.0.2.1\", 7]}", &r);
	assert_true(r.ips_bad);
	props_route("{\"ips\": {\"a\": \"192.0.2.1\"}}", &r);
	assert_true(r.ips_bad);
	props_route("{\"ips\": \"192.0.2.1:25\"}", &r);
	assert_true(r.ips_bad);

	/* PROPS_IPS_MAX entries are fine, one more is not. */
	off = (size_t)snprintf(buf, sizeof(buf), "{\"ips\": [");
	for (i = 0; i < PROPS_IPS_MAX; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
		    "%s\"10.0.0.%zu\"", i > 0 ? ", " : "", i + 1);
	snprintf(buf + off, sizeof(buf) - off, "]}");
	props_route(buf, &r);
	assert_false(r.ips_bad);
	assert_int_equal(r.nips, PROPS_IPS_MAX);
	snprintf(buf + off, sizeof(buf) - off, ", \"10.0.1.1\"]}");
	props_route(buf, &r);
	assert_true(r.ips_bad);
	assert_int_equal(r.nips, 0);
}

/* smtp-tls-policy and a route's security are checked at load time. */
static void
test_conf_tls_policy(void **state)
{
	struct conf	*c = conf_new();
	char		*cause = NULL;

	assert_string_equal(c->smtp_tls_policy, "opportunistic");
	assert_int_equal(conf_load_text(c, "smtp-tls-policy = \"required\";\n"
	    "routes = ( { domain = \"a.test\"; host = \"h\"; "
	    "security = \"none\"; }, { domain = \"b.test\"; host = \"h\"; "
	    "} );\n", &cause), 0);
	assert_string_equal(c->smtp_tls_policy, "required");
	assert_int_equal(c->routes.n, 2);
	assert_string_equal(c->routes.v[0].security, "none");
	assert_null(c->routes.v[1].security);
	conf_free(c);

	c = conf_new();
	assert_int_equal(conf_load_text(c, "routes = ( { domain = \"a.test\"; "
	    "host = \"h\"; },\n { domain = \"b.test\"; host = \"h\"; "
	    "security = \"maybe\"; } );\n", &cause), -1);
	assert_non_null(strstr(cause, ":2: routes: entry 2: security: "
	    "\"maybe\" is not one of none, opportunistic, required"));
	free(cause);
	conf_free(c);

	c = conf_new();
	assert_int_equal(conf_override(c, "smtp-tls-policy", "tight", &cause),
	    -1);
	assert_non_null(strstr(cause, "\"tight\" is not one of none, "
	    "opportunistic, required"));
	free(cause);
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_plain_login),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_loopback),
		cmocka_unit_test(test_props),
		cmocka_unit_test(test_props_none),
		cmocka_unit_test(test_props_bad_cred),
		cmocka_unit_test(test_order_weights),
		cmocka_unit_test(test_order_classes),
		cmocka_unit_test(test_order_bounds),
		cmocka_unit_test(test_tls_policy),
		cmocka_unit_test(test_props_route),
		cmocka_unit_test(test_props_route_bad),
		cmocka_unit_test(test_conf_tls_policy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
