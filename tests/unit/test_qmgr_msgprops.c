/*
 * Per-message delivery settings from the properties JSON
 * (common/msgprops.c): every accepted spelling, and every bad value
 * ignored with a warning rather than taken or fatal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dsn.h"
#include "envelope.h"
#include "msgprops.h"

/* Parse text; the warnings must contain want (NULL: no warning). */
static void
parse(const char *text, struct msgprops *p, const char *want)
{
	char	*w;

	assert_int_equal(msgprops_parse(text, p, &w), 0);
	if (want == NULL) {
		if (w != NULL)
			fail_msg("unexpected warning \"%s\" for %s", w, text);
		return;
	}
	if (w == NULL || strstr(w, want) == NULL)
		fail_msg("warning \"%s\" lacks \"%s\" for %s",
		    w != NULL ? w : "(none)", want, text);
	free(w);
}

static void
test_empty(void **state)
{
	struct msgprops	 p;
	char		*w;

	parse("{}", &p, NULL);
	assert_null(p.retries);
	assert_int_equal(p.maxattempts, 0);
	assert_true(p.maxdelivertime == 0);
	assert_int_equal(p.notify, 0);
	assert_int_equal(p.ret, DSN_RET_DEFAULT);
	assert_null(p.envid);
	msgprops_clear(&p);
	/* Unrelated properties are not looked at. */
	parse("{\"tags\":[1],\"smarthost\":{\"hostname\":\"x\"}}", &p, NULL);
	msgprops_clear(&p);
	assert_int_equal(msgprops_parse("[]", &p, &w), -1);
	assert_int_equal(msgprops_parse("{", &p, &w), -1);
}

static void
test_retries(void **state)
{
	struct msgprops	 p;
	char		 big[2048];
	size_t		 i, off;

	parse("{\"retries\":[600,1800,3600]}", &p, NULL);
	assert_int_equal(p.nretries, 3);
	assert_int_equal(p.retries[0], 600);
	assert_int_equal(p.retries[2], 3600);
	/* The schedule as qmgr uses it: the last repeats. */
	assert_int_equal(envelope_retry_delay(p.retries, p.nretries, 1), 600);
	assert_int_equal(envelope_retry_delay(p.retries, p.nretries, 9), 3600);
	msgprops_clear(&p);

	parse("{\"retries\":\"600, 1800\"}", &p, NULL);	/* x-mq-retries */
	assert_int_equal(p.nretries, 2);
	assert_int_equal(p.retries[1], 1800);
	msgprops_clear(&p);

	parse("{\"retries\":[\"5\",7.0]}", &p, NULL);
	assert_int_equal(p.nretries, 2);
	assert_int_equal(p.retries[0], 5);
	assert_int_equal(p.retries[1], 7);
	msgprops_clear(&p);

	parse("{\"retries\":[]}", &p, "retries");
	assert_null(p.retries);
	msgprops_clear(&p);
	parse("{\"retries\":[0]}", &p, "retries");
	assert_null(p.retries);
	msgprops_clear(&p);
	parse("{\"retries\":[60,-1]}", &p, "retries");
	assert_null(p.retries);
	assert_int_equal(p.nretries, 0);
	msgprops_clear(&p);
	parse("{\"retries\":[604801]}", &p, "retries");
	msgprops_clear(&p);
	parse("{\"retries\":[1.5]}", &p, "retries");
	msgprops_clear(&p);
	parse("{\"retries\":\"60,,120\"}", &p, "retries");
	msgprops_clear(&p);
	parse("{\"retries\":\"60;120\"}", &p, "retries");
	msgprops_clear(&p);
	parse("{\"retries\":{\"a\":1}}", &p, "retries");
	msgprops_clear(&p);
	parse("{\"retries\":null}", &p, "retries");
	msgprops_clear(&p);

	/* Bounded: 100 intervals are fine, 101 are not. */
	off = (size_t)snprintf(big, sizeof(big), "{\"retries\":[");
	for (i = 0; i < 101; i++)
		off += (size_t)snprintf(big + off, sizeof(big) - off, "%s1",
		    i > 0 ? "," : "");
	snprintf(big + off, sizeof(big) - off, "]}");
	parse(big, &p, "retries");
	assert_null(p.retries);
	msgprops_clear(&p);
	memcpy(strrchr(big, ','), "]}", 3);
	parse(big, &p, NULL);
	assert_int_equal(p.nretries, 100);
	msgprops_clear(&p);
}

static void
test_maxattempts(void **state)
{
	struct msgprops	 p;

	parse("{\"maxattempts\":5}", &p, NULL);
	assert_int_equal(p.maxattempts, 5);
	msgprops_clear(&p);
	parse("{\"maxattempts\":\"3\"}", &p, NULL);
	assert_int_equal(p.maxattempts, 3);
	msgprops_clear(&p);
	parse("{\"maxattempts\":0}", &p, "maxattempts");
	assert_int_equal(p.maxattempts, 0);
	msgprops_clear(&p);
	parse("{\"maxattempts\":-2}", &p, "maxattempts");
	msgprops_clear(&p);
	parse("{\"maxattempts\":\"five\"}", &p, "maxattempts");
	msgprops_clear(&p);
	parse("{\"maxattempts\":100001}", &p, "maxattempts");
	msgprops_clear(&p);
	parse("{\"maxattempts\":true}", &p, "maxattempts");
	assert_int_equal(p.maxattempts, 0);
	msgprops_clear(&p);
}

static void
test_maxdelivertime(void **state)
{
	struct msgprops	 p;
	int64_t		 t;

	parse("{\"maxdelivertime\":\"2026-11-25 12:00:00\"}", &p, NULL);
	assert_true(p.maxdelivertime == INT64_C(1795608000));
	msgprops_clear(&p);
	parse("{\"maxdelivertime\":1795608000}", &p, NULL);
	assert_true(p.maxdelivertime == INT64_C(1795608000));
	msgprops_clear(&p);
	parse("{\"maxdelivertime\":\"1795608000\"}", &p, NULL);
	assert_true(p.maxdelivertime == INT64_C(1795608000));
	msgprops_clear(&p);

	parse("{\"maxdelivertime\":\"2026-11-25\"}", &p, "maxdelivertime");
	assert_true(p.maxdelivertime == 0);
	msgprops_clear(&p);
	parse("{\"maxdelivertime\":\"2026-13-01 00:00:00\"}", &p,
	    "maxdelivertime");
	msgprops_clear(&p);
	parse("{\"maxdelivertime\":\"2026-11-25 12:00:00 tomorrow\"}", &p,
	    "maxdelivertime");
	msgprops_clear(&p);
	parse("{\"maxdelivertime\":0}", &p, "maxdelivertime");
	msgprops_clear(&p);
	parse("{\"maxdelivertime\":99999999999999}", &p, "maxdelivertime");
	msgprops_clear(&p);
	parse("{\"maxdelivertime\":[1]}", &p, "maxdelivertime");
	msgprops_clear(&p);

	assert_int_equal(msgprops_parse_time("1970-01-01 00:00:01", &t), 0);
	assert_true(t == 1);
	assert_int_equal(msgprops_parse_time(" 2025-11-22 00:00:00 ", &t), 0);
	assert_true(t == INT64_C(1763769600));
	assert_int_equal(msgprops_parse_time("2025-11-22T00:00:00", &t), -1);
	assert_int_equal(msgprops_parse_time("", &t), -1);
}

static void
test_dsn(void **state)
{
	struct msgprops	 p;

	parse("{\"dsn\":{\"notify\":\"FAILURE,DELAY\",\"ret\":\"HDRS\","
	    "\"envid\":\"abc\"}}", &p, NULL);
	assert_int_equal(p.notify, DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
	assert_int_equal(p.ret, DSN_RET_HDRS);
	assert_string_equal(p.envid, "abc");
	msgprops_clear(&p);
	parse("{\"dsn\":{\"notify\":\"never\",\"ret\":\"full\"}}", &p, NULL);
	assert_int_equal(p.notify, DSN_NOTIFY_NEVER);
	assert_int_equal(p.ret, DSN_RET_FULL);
	msgprops_clear(&p);

	parse("{\"dsn\":\"FAILURE\"}", &p, "dsn");
	msgprops_clear(&p);
	parse("{\"dsn\":{\"notify\":\"SOMETIMES\"}}", &p, "dsn.notify");
	assert_int_equal(p.notify, 0);
	msgprops_clear(&p);
	parse("{\"dsn\":{\"ret\":\"BODY\"}}", &p, "dsn.ret");
	assert_int_equal(p.ret, DSN_RET_DEFAULT);
	msgprops_clear(&p);
	parse("{\"dsn\":{\"envid\":\"a\\r\\nBcc: x\"}}", &p, "dsn.envid");
	assert_null(p.envid);
	msgprops_clear(&p);
}

static void
test_several_bad(void **state)
{
	struct msgprops	 p;
	char		*w;

	/* Bad values are all named; good ones beside them still count. */
	assert_int_equal(msgprops_parse("{\"retries\":\"x\",\"maxattempts\":2,"
	    "\"maxdelivertime\":\"soon\"}", &p, &w), 0);
	assert_non_null(w);
	assert_non_null(strstr(w, "retries"));
	assert_non_null(strstr(w, "; maxdelivertime"));
	assert_null(strstr(w, "maxattempts"));
	assert_int_equal(p.maxattempts, 2);
	free(w);
	msgprops_clear(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_retries),
		cmocka_unit_test(test_maxattempts),
		cmocka_unit_test(test_maxdelivertime),
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_several_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
