/*
 * Retry schedule and queue keys (common/envelope.c): the delay before each
 * retry, the recipient domain, the source address, per-message smarthost.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>

#include <cmocka.h>

#include "envelope.h"

static void
test_retry_delay(void **state)
{
	static const int	 retries[] = { 600, 1800, 3600 };
	static const struct {
		uint32_t	 attempts;
		int		 delay;
	} t[] = {
		{ 0, 600 },	/* defensive: no attempt counted yet */
		{ 1, 600 },
		{ 2, 1800 },
		{ 3, 3600 },
		{ 4, 3600 },	/* the last one repeats */
		{ 1000, 3600 },
		{ UINT32_MAX, 3600 },
	};
	size_t	 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_int_equal(envelope_retry_delay(retries, 3,
		    t[i].attempts), t[i].delay);
}

static void
test_retry_edge(void **state)
{
	static const int	 one[] = { 60 };
	static const int	 zero[] = { 0 };

	assert_int_equal(envelope_retry_delay(one, 1, 1), 60);
	assert_int_equal(envelope_retry_delay(one, 1, 9), 60);
	/* No schedule: a default, never "at once". */
	assert_int_equal(envelope_retry_delay(NULL, 0, 1), ENV_RETRY_DEFAULT);
	assert_int_equal(envelope_retry_delay(zero, 1, 1), 1);
}

static void
test_retry_next(void **state)
{
	static const int	 retries[] = { 60, 600 };

	/* The schedule's delay, from now. */
	assert_true(envelope_retry_next(retries, 2, 1, 1000, 100000) == 1060);
	assert_true(envelope_retry_next(retries, 2, 2, 1000, 100000) == 1600);
	assert_true(envelope_retry_next(retries, 2, 7, 1000, 100000) == 1600);
	/* Not past the expiry: the last attempt is made at it. */
	assert_true(envelope_retry_next(retries, 2, 2, 1000, 1200) == 1200);
	assert_true(envelope_retry_next(retries, 2, 1, 1000, 1060) == 1060);
	/* Expired already (the caller fails it first): never "at once". */
	assert_true(envelope_retry_next(retries, 2, 1, 1000, 1000) == 1001);
	assert_true(envelope_retry_next(retries, 2, 1, 1000, 10) == 1001);
}

static void
check_str(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

static void
test_domain(void **state)
{
	check_str(envelope_domain("a@Example.COM"), "example.com");
	check_str(envelope_domain("\"a@b\"@x.org"), "x.org");
	check_str(envelope_domain("postmaster"), "");
	check_str(envelope_domain("a@"), "");
}

static void
test_addr_host(void **state)
{
	check_str(envelope_addr_host("192.0.2.1:25"), "192.0.2.1");
	check_str(envelope_addr_host("192.0.2.1"), "192.0.2.1");
	check_str(envelope_addr_host("[2001:db8::1]:25"), "2001:db8::1");
	check_str(envelope_addr_host("2001:db8::1"), "2001:db8::1");
	check_str(envelope_addr_host(""), "");
}

static void
test_smarthost_key(void **state)
{
	char	*k;

	check_str(envelope_smarthost_key(
	    "{\"smarthost\":{\"hostname\":\"Relay.example.net\"}}"),
	    "(smarthost) relay.example.net:25");
	check_str(envelope_smarthost_key(
	    "{\"smarthost\":{\"hostname\":\"r.example\",\"port\":587}}"),
	    "(smarthost) r.example:587");
	check_str(envelope_smarthost_key(
	    "{\"smarthost\":{\"hostname\":\"r.example\",\"port\":\"2525\"}}"),
	    "(smarthost) r.example:2525");
	k = envelope_smarthost_key("{}");
	assert_null(k);
	k = envelope_smarthost_key("{\"smarthost\":{\"port\":25}}");
	assert_null(k);
	k = envelope_smarthost_key("{\"smarthost\":{\"hostname\":\"\"}}");
	assert_null(k);
	k = envelope_smarthost_key(
	    "{\"smarthost\":{\"hostname\":\"r\",\"port\":\"x\"}}");
	assert_null(k);
	k = envelope_smarthost_key(
	    "{\"smarthost\":{\"hostname\":\"r\",\"port\":70000}}");
	assert_null(k);
	k = envelope_smarthost_key("not json");
	assert_null(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_delay),
		cmocka_unit_test(test_retry_edge),
		cmocka_unit_test(test_retry_next),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_addr_host),
		cmocka_unit_test(test_smarthost_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
