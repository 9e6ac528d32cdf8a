/*
 * MAIL and RCPT parameters of RFC 3461 (DSN) and RFC 6531 (SMTPUTF8),
 * xtext decoding, UTF-8 checks, address length limits and NUL octets in
 * DATA (common/smtp_parse.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dsn.h"
#include "smtp_parse.h"

static void
test_mail_dsn(void **state)
{
	struct smtp_mail_params	 mp;
	const char		*reply;

	assert_int_equal(smtp_parse_mail_params("RET=HDRS ENVID=abc+2Bd",
	    &mp, &reply), 0);
	assert_int_equal(mp.ret, DSN_RET_HDRS);
	assert_string_equal(mp.envid, "abc+d");
	assert_int_equal(smtp_parse_mail_params("ret=full", &mp, &reply), 0);
	assert_int_equal(mp.ret, DSN_RET_FULL);
	assert_string_equal(mp.envid, "");
	assert_int_equal(mp.smtputf8, 0);

	assert_int_equal(smtp_parse_mail_params("RET=ALL", &mp, &reply), 501);
	assert_string_equal(reply, "501 5.5.4 Bad RET parameter");
	assert_int_equal(smtp_parse_mail_params("RET=FULL RET=HDRS", &mp,
	    &reply), 501);
	assert_int_equal(smtp_parse_mail_params("ENVID=a ENVID=b", &mp,
	    &reply), 501);
	assert_string_equal(reply, "501 5.5.4 Bad ENVID parameter");
	/* A bad escape, a control character once decoded. */
	assert_int_equal(smtp_parse_mail_params("ENVID=a+4", &mp, &reply),
	    501);
	assert_int_equal(smtp_parse_mail_params("ENVID=a+0A", &mp, &reply),
	    501);
	assert_int_equal(smtp_parse_mail_params("ENVID=", &mp, &reply), 501);
}

static void
test_envid_bound(void **state)
{
	struct smtp_mail_params	 mp;
	const char		*reply;
	char			 buf[256];

	memcpy(buf, "ENVID=", 6);
	memset(buf + 6, 'e', DSN_ENVID_MAX);
	buf[6 + DSN_ENVID_MAX] = '\0';
	assert_int_equal(smtp_parse_mail_params(buf, &mp, &reply), 0);
	assert_int_equal(strlen(mp.envid), DSN_ENVID_MAX);
	buf[6 + DSN_ENVID_MAX] = 'e';
	buf[7 + DSN_ENVID_MAX] = '\0';
	assert_int_equal(smtp_parse_mail_params(buf, &mp, &reply), 501);
}

static void
test_mail_smtputf8(void **state)
{
	struct smtp_mail_params	 mp;
	const char		*reply;

	assert_int_equal(smtp_parse_mail_params("SMTPUTF8 BODY=8BITMIME",
	    &mp, &reply), 0);
	assert_int_equal(mp.smtputf8, 1);
	assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
	assert_int_equal(smtp_parse_mail_params("SMTPUTF8=yes", &mp, &reply),
	    501);
	assert_int_equal(smtp_parse_mail_params("SMTPUTF8 SMTPUTF8", &mp,
	    &reply), 501);
}

static void
test_rcpt_dsn(void **state)
{
	struct smtp_rcpt_params	 rp;
	const char		*reply;

	assert_int_equal(smtp_parse_rcpt_params("", &rp, &reply), 0);
	assert_int_equal(rp.notify, 0);
	assert_string_equal(rp.orcpt, "");
	assert_int_equal(smtp_parse_rcpt_params("NOTIFY=SUCCESS,DELAY "
	    "ORCPT=rfc822;a+2Bb@c.example", &rp, &reply), 0);
	assert_int_equal(rp.notify, DSN_NOTIFY_SUCCESS | DSN_NOTIFY_DELAY);
	assert_string_equal(rp.orcpt, "rfc822;a+b@c.example");
	assert_int_equal(smtp_parse_rcpt_params("notify=never", &rp, &reply),
	    0);
	assert_int_equal(rp.notify, DSN_NOTIFY_NEVER);

	assert_int_equal(smtp_parse_rcpt_params("NOTIFY=NEVER,SUCCESS", &rp,
	    &reply), 501);
	assert_string_equal(reply, "501 5.5.4 Bad NOTIFY parameter");
	assert_int_equal(smtp_parse_rcpt_params("NOTIFY=SOMETIMES", &rp,
	    &reply), 501);
	assert_int_equal(smtp_parse_rcpt_params("NOTIFY=DELAY NOTIFY=DELAY",
	    &rp, &reply), 501);
	assert_int_equal(smtp_parse_rcpt_params("ORCPT=a@b.example", &rp,
	    &reply), 501);
	assert_string_equal(reply, "501 5.5.4 Bad ORCPT parameter");
	assert_int_equal(smtp_parse_rcpt_params("ORCPT=rfc822;", &rp,
	    &reply), 501);
	assert_int_equal(smtp_parse_rcpt_params("ORCPT=;a@b", &rp, &reply),
	    501);
	assert_int_equal(smtp_parse_rcpt_params("ORCPT=rfc822;a+00b", &rp,
	    &reply), 501);
	assert_int_equal(smtp_parse_rcpt_params("FOO=bar", &rp, &reply), 555);
}

static void
test_orcpt_bound(void **state)
{
	struct smtp_rcpt_params	 rp;
	const char		*reply;
	char			 buf[1024];
	size_t			 n;

	n = (size_t)snprintf(buf, sizeof(buf), "ORCPT=rfc822;");
	/* Exactly DSN_ORCPT_MAX octets as sent: accepted. */
	memset(buf + n, 'o', DSN_ORCPT_MAX - 7);
	buf[n + DSN_ORCPT_MAX - 7] = '\0';
	assert_int_equal(smtp_parse_rcpt_params(buf, &rp, &reply), 0);
	assert_int_equal(strlen(rp.orcpt), DSN_ORCPT_MAX);
	strcat(buf, "o");
	assert_int_equal(smtp_parse_rcpt_params(buf, &rp, &reply), 501);
	/* Far over: a syntax error, not an overflow. */
	memset(buf + n, 'o', 900);
	buf[n + 900] = '\0';
	assert_int_not_equal(smtp_parse_rcpt_params(buf, &rp, &reply), 0);
}

static void
test_xtext(void **state)
{
	char	out[16];

	assert_int_equal(smtp_xtext_decode("a+2B+3Db", out, sizeof(out)), 0);
	assert_string_equal(out, "a+=b");
	assert_int_equal(smtp_xtext_decode("a=b", out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("a b", out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("a+G0", out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("+", out, sizeof(out)), -1);
	assert_int_equal(smtp_xtext_decode("0123456789abcdefX", out,
	    sizeof(out)), -1);
}

static void
test_utf8(void **state)
{
	assert_true(smtp_utf8_valid("plain", 5));
	assert_true(smtp_utf8_valid("j\xc3\xb8rn", 5));
	assert_true(smtp_utf8_valid("\xe2\x82\xac", 3));
	assert_true(smtp_utf8_valid("\xf0\x9f\x93\xa7", 4));
	assert_false(smtp_utf8_valid("\xc3", 1));		/* cut */
	assert_false(smtp_utf8_valid("\xc0\xaf", 2));		/* overlong */
	assert_false(smtp_utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(smtp_utf8_valid("\xf4\x90\x80\x80", 4));	/* > 10FFFF */
	assert_false(smtp_utf8_valid("\xff", 1));
	assert_true(smtp_has_8bit("j\xc3\xb8rn"));
	assert_false(smtp_has_8bit("jorn"));
}

static void
test_address_limits(void **state)
{
	char	 buf[600], addr[SMTP_ADDR_MAX + 1];
	const char *params;

	/* A local part of 64 octets is fine, 65 is not. */
	snprintf(buf, sizeof(buf), "TO:<%064d@b.example>", 0);
	assert_int_equal(smtp_parse_path(buf, "TO", addr, sizeof(addr),
	    &params), SMTP_PATH_OK);
	snprintf(buf, sizeof(buf), "TO:<%065d@b.example>", 0);
	assert_int_equal(smtp_parse_path(buf, "TO", addr, sizeof(addr),
	    &params), SMTP_PATH_EADDR);
	/* The whole path: 254 octets inside the brackets at most. */
	snprintf(buf, sizeof(buf), "TO:<%064d@%063d.%063d.%061d>", 0, 0, 0, 0);
	assert_int_equal(strlen(buf), 4 + 254 + 1);
	assert_int_equal(smtp_parse_path(buf, "TO", addr, sizeof(addr),
	    &params), SMTP_PATH_OK);
	snprintf(buf, sizeof(buf), "TO:<%064d@%063d.%063d.%062d>", 0, 0, 0, 0);
	assert_int_equal(smtp_parse_path(buf, "TO", addr, sizeof(addr),
	    &params), SMTP_PATH_EADDR);
	/* A label over 63 octets. */
	snprintf(buf, sizeof(buf), "TO:<a@%064d.example>", 0);
	assert_int_equal(smtp_parse_path(buf, "TO", addr, sizeof(addr),
	    &params), SMTP_PATH_EADDR);
	assert_true(smtp_valid_address(""));
	assert_true(smtp_valid_address("a@b.example"));
	assert_false(smtp_valid_address("a@"));
	assert_false(smtp_valid_address("postmaster"));
}

static void
test_data_nul(void **state)
{
	struct smtp_data	 d;
	const char		 in[] = "a\0b\r\n.\r\n";
	char			 out[64];
	size_t			 used, outlen;

	smtp_data_init(&d);
	assert_int_equal(smtp_data_feed(&d, in, sizeof(in) - 1, &used, out,
	    sizeof(out), &outlen), 1);
	assert_true(d.flags & SMTP_DATA_F_NUL);
	assert_int_equal(outlen, 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mail_dsn),
		cmocka_unit_test(test_envid_bound),
		cmocka_unit_test(test_mail_smtputf8),
		cmocka_unit_test(test_rcpt_dsn),
		cmocka_unit_test(test_orcpt_bound),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_address_limits),
		cmocka_unit_test(test_data_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
