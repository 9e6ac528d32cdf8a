/*
 * The pure parts of smtpd's AUTH (common/sasl.c): strict base64 decoding
 * with its bounds, PLAIN response splitting, and the credential check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sasl.h"

static void
test_b64_good(void **state)
{
	unsigned char	out[64];
	size_t		n;

	assert_int_equal(sasl_b64_decode("", 0, out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(sasl_b64_decode("Zg==", 4, out, sizeof(out), &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(out, "f\0", 2);
	assert_int_equal(sasl_b64_decode("Zm8=", 4, out, sizeof(out), &n), 0);
	assert_memory_equal(out, "fo\0", 3);
	assert_int_equal(sasl_b64_decode("Zm9vYmFy", 8, out, sizeof(out), &n),
	    0);
	assert_int_equal(n, 6);
	assert_string_equal((char *)out, "foobar");
	/* "\0user\0pass", as a client sends AUTH PLAIN. */
	assert_int_equal(sasl_b64_decode("AHVzZXIAcGFzcw==", 16, out,
	    sizeof(out), &n), 0);
	assert_int_equal(n, 10);
	assert_memory_equal(out, "\0user\0pass", 10);
	assert_int_equal(sasl_b64_decode("+/+/", 4, out, sizeof(out), &n), 0);
	assert_memory_equal(out, "\xfb\xff\xbf", 3);
}

static void
test_b64_bad(void **state)
{
	static const char *const bad[] = {
		"Zg=", "Zg", "Z", "Zg==Zg==", "Z===", "====", "Zm9v YmFy",
		"Zm9\n", "Zh==",	/* non-zero bits under the padding */
		"Zm9=", "Zg=a", "Zm9vY!Fy", "Zm\0v",
	};
	unsigned char	out[64];
	size_t		i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(sasl_b64_decode(bad[i], strlen(bad[i]) ?
		    strlen(bad[i]) : 4, out, sizeof(out), &n), -1);
	/* The output must fit, its NUL included. */
	assert_int_equal(sasl_b64_decode("Zm9vYmFy", 8, out, 6, &n), -1);
	assert_int_equal(sasl_b64_decode("Zm9vYmFy", 8, out, 7, &n), 0);
}

static void
test_plain_split(void **state)
{
	char		 a[] = "\0user\0pass", b[] = "user\0user\0pass";
	char		 c[] = "other\0user\0pass", d[] = "\0user\0";
	char		 e[] = "\0\0pass", f[] = "\0user\0pa\0ss";
	char		 g[] = "userpass";
	const char	*user, *pass;

	assert_int_equal(sasl_plain_split(a, sizeof(a) - 1, &user, &pass), 0);
	assert_string_equal(user, "user");
	assert_string_equal(pass, "pass");
	assert_int_equal(sasl_plain_split(b, sizeof(b) - 1, &user, &pass), 0);
	assert_string_equal(user, "user");
	/* Acting for another identity, empty fields, a third NUL. */
	assert_int_equal(sasl_plain_split(c, sizeof(c) - 1, &user, &pass), -1);
	assert_int_equal(sasl_plain_split(d, sizeof(d) - 1, &user, &pass), -1);
	assert_int_equal(sasl_plain_split(e, sizeof(e) - 1, &user, &pass), -1);
	assert_int_equal(sasl_plain_split(f, sizeof(f) - 1, &user, &pass), -1);
	assert_int_equal(sasl_plain_split(g, sizeof(g) - 1, &user, &pass), -1);
}

static void
test_check(void **state)
{
	unsigned char	u[SASL_DIGEST_LEN], p[SASL_DIGEST_LEN];

	sasl_digest("user", 4, u);
	sasl_digest("s3cret", 6, p);
	assert_int_equal(sasl_check(u, p, "user", "s3cret"), 1);
	assert_int_equal(sasl_check(u, p, "user", "s3cre"), 0);
	assert_int_equal(sasl_check(u, p, "user", "s3cret "), 0);
	assert_int_equal(sasl_check(u, p, "User", "s3cret"), 0);
	assert_int_equal(sasl_check(u, p, "", ""), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_good),
		cmocka_unit_test(test_b64_bad),
		cmocka_unit_test(test_plain_split),
		cmocka_unit_test(test_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
