/*
 * SMTP reply parsing (common/smtp_reply.c): single and multi-line replies,
 * enhanced status extraction, malformed lines, and EHLO capabilities.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_auth.h"
#include "smtp_reply.h"

/* Feed lines until one does not return 0; the last result. */
static int
feed(struct smtp_reply *r, const char **lines)
{
	int	 rv = 0;

	smtp_reply_reset(r);
	for (; *lines != NULL; lines++) {
		rv = smtp_reply_line(r, *lines, strlen(*lines), NULL, NULL);
		if (rv != 0)
			break;
	}
	return rv;
}

static void
test_single(void **state)
{
	struct smtp_reply	 r;
	const char		*l[] = { "250 2.1.0 Ok", NULL };
	char			 dsn[SMTP_DSN_MAX];

	assert_int_equal(feed(&r, l), 1);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.status, "2.1.0");
	assert_string_equal(r.text, "Ok");
	assert_string_equal(smtp_reply_dsn(&r, dsn, sizeof(dsn)), "2.1.0");
}

static void
test_multiline(void **state)
{
	struct smtp_reply	 r;
	const char		*l[] = { "550-5.1.1 first", "550-second",
				    "550 5.1.1 last", NULL };

	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_line(&r, l[0], strlen(l[0]), NULL, NULL),
	    0);
	assert_int_equal(smtp_reply_line(&r, l[1], strlen(l[1]), NULL, NULL),
	    0);
	assert_int_equal(smtp_reply_line(&r, l[2], strlen(l[2]), NULL, NULL),
	    1);
	assert_int_equal(r.nlines, 3);
	assert_string_equal(r.status, "5.1.1");
	assert_string_equal(r.text, "first");
}

static void
test_no_status(void **state)
{
	struct smtp_reply	 r;
	const char		*l1[] = { "220 mx.example ESMTP", NULL };
	const char		*l2[] = { "250", NULL };
	const char		*l3[] = { "451 5.0.0 class mismatch", NULL };
	const char		*l4[] = { "250 2.1.0", NULL };
	const char		*l5[] = { "250 2.1234.0 too long", NULL };
	char			 dsn[SMTP_DSN_MAX];

	assert_int_equal(feed(&r, l1), 1);
	assert_string_equal(r.status, "");
	assert_string_equal(r.text, "mx.example ESMTP");
	assert_string_equal(smtp_reply_dsn(&r, dsn, sizeof(dsn)), "2.0.0");
	assert_int_equal(feed(&r, l2), 1);
	assert_int_equal(r.code, 250);
	assert_string_equal(r.text, "");
	assert_int_equal(feed(&r, l3), 1);
	assert_string_equal(r.status, "");
	assert_string_equal(smtp_reply_dsn(&r, dsn, sizeof(dsn)), "4.0.0");
	assert_int_equal(feed(&r, l4), 1);
	assert_string_equal(r.status, "2.1.0");
	assert_string_equal(r.text, "");
	assert_int_equal(feed(&r, l5), 1);
	assert_string_equal(r.status, "");
}

static void
test_malformed(void **state)
{
	struct smtp_reply	 r;
	const char		*bad[] = { "", "25", "abc ok", "199 low",
				    "600 high", "260 x", "250xok", NULL };
	const char		*mixed[] = { "250-a", "251 b", NULL };
	const char		*after[] = { "250 a", NULL };
	char			 lng[SMTP_REPLY_LINE_MAX + 2];
	size_t			 i;

	for (i = 0; bad[i] != NULL; i++) {
		smtp_reply_reset(&r);
		assert_int_equal(smtp_reply_line(&r, bad[i], strlen(bad[i]),
		    NULL, NULL), -1);
	}
	assert_int_equal(feed(&r, mixed), -1);
	assert_int_equal(feed(&r, after), 1);
	assert_int_equal(smtp_reply_line(&r, "250 b", 5, NULL, NULL), -1);

	memset(lng, 'x', sizeof(lng));
	memcpy(lng, "250 ", 4);
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_line(&r, lng, SMTP_REPLY_LINE_MAX,
	    NULL, NULL), 1);
	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_line(&r, lng, SMTP_REPLY_LINE_MAX + 1,
	    NULL, NULL), -1);
}

static void
test_too_many_lines(void **state)
{
	struct smtp_reply	 r;
	int			 i;

	smtp_reply_reset(&r);
	for (i = 0; i < SMTP_REPLY_LINES_MAX; i++)
		assert_int_equal(smtp_reply_line(&r, "250-x", 5, NULL, NULL),
		    0);
	assert_int_equal(smtp_reply_line(&r, "250 x", 5, NULL, NULL), -1);
}

static void
test_escape(void **state)
{
	struct smtp_reply	 r;
	const char		 line[] = "550 bad\x01text\\";

	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_line(&r, line, sizeof(line) - 1, NULL,
	    NULL), 1);
	assert_string_equal(r.text, "bad\\x01text\\x5c");
}

static void
test_text_out(void **state)
{
	struct smtp_reply	 r;
	const char		*t;
	size_t			 tl;

	smtp_reply_reset(&r);
	assert_int_equal(smtp_reply_line(&r, "250-PIPELINING", 14, &t, &tl),
	    0);
	assert_int_equal(tl, 10);
	assert_memory_equal(t, "PIPELINING", 10);
	assert_int_equal(smtp_reply_line(&r, "250", 3, &t, &tl), 1);
	assert_int_equal(tl, 0);
}

static void
test_caps(void **state)
{
	struct smtp_caps	 c;
	const char		*lines[] = { "PIPELINING", "SIZE 10240000",
				    "8BITMIME", "starttls", "AUTH PLAIN LOGIN",
				    "ENHANCEDSTATUSCODES", "SMTPUTF8",
				    "PIPELININGX", "DSN", NULL };
	size_t			 i;

	smtp_caps_reset(&c);
	for (i = 0; lines[i] != NULL; i++)
		smtp_caps_line(&c, lines[i], strlen(lines[i]));
	assert_int_equal(c.flags, SMTP_CAP_PIPELINING | SMTP_CAP_SIZE |
	    SMTP_CAP_8BITMIME | SMTP_CAP_STARTTLS | SMTP_CAP_AUTH |
	    SMTP_CAP_ENHANCED | SMTP_CAP_SMTPUTF8 | SMTP_CAP_DSN);
	assert_int_equal(c.size_max, 10240000);
	assert_int_equal(c.auth, SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN);

	smtp_caps_reset(&c);
	smtp_caps_line(&c, "SIZE", 4);
	assert_int_equal(c.flags, SMTP_CAP_SIZE);
	assert_int_equal(c.size_max, 0);
	smtp_caps_line(&c, "SIZE 12x", 8);
	assert_int_equal(c.size_max, 0);
	smtp_caps_line(&c, "SIZE 99999999999999999999999", 28);
	assert_int_equal(c.size_max, 0);
	smtp_caps_line(&c, "AUTH=LOGIN", 10);
	assert_true(c.flags & SMTP_CAP_AUTH);
	assert_int_equal(c.auth, SMTP_AUTH_LOGIN);
}

/* AUTH mechanism lists: any case, blanks, unknown and look-alike words. */
static void
test_caps_auth(void **state)
{
	struct smtp_caps	 c;
	const struct {
		const char	*line;
		unsigned	 auth;
	} t[] = {
		{ "AUTH PLAIN", SMTP_AUTH_PLAIN },
		{ "auth login  plain", SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN },
		{ "AUTH CRAM-MD5 DIGEST-MD5", 0 },
		{ "AUTH PLAINX LOGINS XLOGIN", 0 },
		{ "AUTH XOAUTH2 LOGIN", SMTP_AUTH_LOGIN },
		{ "AUTH", 0 },
		{ "AUTHX PLAIN", 0 },
	};
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		smtp_caps_reset(&c);
		smtp_caps_line(&c, t[i].line, strlen(t[i].line));
		assert_int_equal(c.auth, t[i].auth);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_multiline),
		cmocka_unit_test(test_no_status),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_too_many_lines),
		cmocka_unit_test(test_caps_auth),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_text_out),
		cmocka_unit_test(test_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
