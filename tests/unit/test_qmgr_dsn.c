/*
 * Delivery status notifications (common/dsn.c): RFC 3461 parameters and
 * the RFC 3464 report text, checked line by line.
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

static void
test_notify(void **state)
{
	char	 buf[DSN_NOTIFY_TEXT_MAX];

	assert_int_equal(dsn_notify_parse("NEVER"), DSN_NOTIFY_NEVER);
	assert_int_equal(dsn_notify_parse("never"), DSN_NOTIFY_NEVER);
	assert_int_equal(dsn_notify_parse("SUCCESS"), DSN_NOTIFY_SUCCESS);
	assert_int_equal(dsn_notify_parse("delay, Failure"),
	    DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE);
	assert_int_equal(dsn_notify_parse("SUCCESS,FAILURE,DELAY"),
	    DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY);
	assert_int_equal(dsn_notify_parse(""), -1);
	assert_int_equal(dsn_notify_parse("FAILURE,"), -1);
	assert_int_equal(dsn_notify_parse(",FAILURE"), -1);
	assert_int_equal(dsn_notify_parse("NEVER,FAILURE"), -1);
	assert_int_equal(dsn_notify_parse("FAILURES"), -1);
	assert_int_equal(dsn_notify_parse("FAIL"), -1);

	assert_string_equal(dsn_notify_format(0, buf), "");
	assert_string_equal(dsn_notify_format(DSN_NOTIFY_NEVER, buf), "NEVER");
	assert_string_equal(dsn_notify_format(DSN_NOTIFY_DELAY |
	    DSN_NOTIFY_SUCCESS | DSN_NOTIFY_FAILURE, buf),
	    "SUCCESS,FAILURE,DELAY");
	assert_int_equal(dsn_notify_parse(dsn_notify_format(DSN_NOTIFY_DELAY |
	    DSN_NOTIFY_FAILURE, buf)), DSN_NOTIFY_DELAY | DSN_NOTIFY_FAILURE);
}

static void
test_notify_wants(void **state)
{
	/* Not given: failures always, delays when warnings are on. */
	assert_true(dsn_notify_wants(0, DSN_ACTION_FAILED, 0));
	assert_false(dsn_notify_wants(0, DSN_ACTION_DELAYED, 0));
	assert_true(dsn_notify_wants(0, DSN_ACTION_DELAYED, 1));
	assert_false(dsn_notify_wants(0, DSN_ACTION_DELIVERED, 1));
	/* NEVER: nothing. */
	assert_false(dsn_notify_wants(DSN_NOTIFY_NEVER, DSN_ACTION_FAILED, 1));
	assert_false(dsn_notify_wants(DSN_NOTIFY_NEVER, DSN_ACTION_DELAYED,
	    1));
	/* A list: exactly what it names. */
	assert_false(dsn_notify_wants(DSN_NOTIFY_SUCCESS, DSN_ACTION_FAILED,
	    1));
	assert_true(dsn_notify_wants(DSN_NOTIFY_SUCCESS, DSN_ACTION_DELIVERED,
	    0));
	assert_false(dsn_notify_wants(DSN_NOTIFY_FAILURE, DSN_ACTION_DELAYED,
	    1));
	assert_true(dsn_notify_wants(DSN_NOTIFY_DELAY, DSN_ACTION_DELAYED, 1));
	/* Delay warnings off: not even DELAY gets one. */
	assert_false(dsn_notify_wants(DSN_NOTIFY_DELAY, DSN_ACTION_DELAYED,
	    0));
}

static void
test_small_parsers(void **state)
{
	char	 buf[64];

	assert_int_equal(dsn_ret_parse("FULL"), DSN_RET_FULL);
	assert_int_equal(dsn_ret_parse("hdrs"), DSN_RET_HDRS);
	assert_int_equal(dsn_ret_parse("HEADERS"), -1);

	assert_true(dsn_status_ok("5.1.1", 0));
	assert_true(dsn_status_ok("4.4.7", 4));
	assert_true(dsn_status_ok("2.123.999", 2));
	assert_false(dsn_status_ok("4.4.7", 5));
	assert_false(dsn_status_ok("3.1.1", 0));
	assert_false(dsn_status_ok("5.1", 0));
	assert_false(dsn_status_ok("5.1.1.", 0));
	assert_false(dsn_status_ok("5.1234.1", 0));
	assert_false(dsn_status_ok("", 0));

	assert_true(dsn_text_ok("abc+2B@x", DSN_ENVID_MAX));
	assert_false(dsn_text_ok("", DSN_ENVID_MAX));
	assert_false(dsn_text_ok("a b", DSN_ENVID_MAX));
	assert_false(dsn_text_ok("a\r\n", DSN_ENVID_MAX));
	assert_false(dsn_text_ok("\xc3\xa9", DSN_ENVID_MAX));
	assert_false(dsn_text_ok("abcd", 3));

	assert_int_equal(dsn_header_len("A: b\r\n\r\nbody", 13), 8);
	assert_int_equal(dsn_header_len("\r\nbody", 6), 2);
	assert_int_equal(dsn_header_len("A: b\r\nC: d\r\n", 12), 12);
	assert_int_equal(dsn_header_len("", 0), 0);

	dsn_date(1763769600, buf, sizeof(buf));
	assert_string_equal(buf, "Sat, 22 Nov 2025 00:00:00 +0000");
}

/* The lines of text between "--boundary" delimiters: part i (0-based). */
static char *
part(const char *text, const char *boundary, int i)
{
	char		 delim[256];
	const char	*p, *end;

	snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	p = text;
	for (; i >= 0; i--) {
		p = strstr(p, delim);
		assert_non_null(p);
		p += strlen(delim);
	}
	assert_memory_equal(p, "\r\n", 2);
	p += 2;
	end = strstr(p, delim);
	assert_non_null(end);
	return strndup(p, (size_t)(end - p));
}

static const char orig[] =
    "Received: from client.test\r\n"
    "From: <sender@a.test>\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "Body line 1\r\n"
    "Body line 2\r\n";

static void
fill(struct dsn_report *r, struct dsn_rcpt *rc)
{
	memset(rc, 0, 2 * sizeof(*rc));
	rc[0].address = "a@b.test";
	rc[0].orcpt = "rfc822;A@B.test";
	rc[0].action = DSN_ACTION_FAILED;
	rc[0].status = "5.1.1";
	rc[0].remote_mta = "mx.b.test";
	rc[0].diag = "550 5.1.1 no such user";
	rc[0].diag_smtp = 1;
	rc[0].last_attempt = 1763769660;
	rc[1].address = "c@b.test";
	rc[1].orcpt = "";
	rc[1].action = DSN_ACTION_FAILED;
	rc[1].status = "4.4.7";
	rc[1].remote_mta = "";
	rc[1].diag = "451 4.3.0 try later";
	rc[1].diag_smtp = 1;
	rc[1].reason = "delivery time expired";
	memset(r, 0, sizeof(*r));
	r->reporting_mta = "mta.test";
	r->queue_id = "0A1B2C3D4E5F";
	r->sender = "sender@a.test";
	r->envid = "env-42";
	r->boundary = "0A1B2C3D4E60.1763769660/mta.test";
	r->message_id = "<1763769660.0A1B2C3D4E60@mta.test>";
	r->arrival = 1763769600;
	r->now = 1763769660;
	r->action = DSN_ACTION_FAILED;
	r->full = 1;
	r->orig = orig;
	r->origlen = strlen(orig);
	r->rcpts = rc;
	r->nrcpt = 2;
}

/* Every line ends in CRLF, none is longer than RFC 5322 allows. */
static void
check_lines(const char *text, size_t len)
{
	size_t	 i, col = 0;

	assert_int_equal(strlen(text), len);
	for (i = 0; i < len; i++) {
		if (text[i] == '\n') {
			assert_true(i > 0 && text[i - 1] == '\r');
			col = 0;
			continue;
		}
		if (text[i] == '\r')
			assert_true(i + 1 < len && text[i + 1] == '\n');
		assert_true(++col <= 998);
	}
	assert_int_equal(col, 0);
}

static void
test_build_failed(void **state)
{
	struct dsn_report	 r;
	struct dsn_rcpt		 rc[2];
	char			*text, *p;
	size_t			 len;

	fill(&r, rc);
	text = dsn_build(&r, &len);
	check_lines(text, len);
	assert_non_null(strstr(text, "\r\nTo: <sender@a.test>\r\n"));
	assert_non_null(strstr(text, "From: Mail Delivery System "
	    "<MAILER-DAEMON@mta.test>\r\n"));
	assert_non_null(strstr(text, "Subject: Undelivered Mail Returned to "
	    "Sender\r\n"));
	assert_non_null(strstr(text, "Auto-Submitted: auto-replied\r\n"));
	assert_non_null(strstr(text, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\""
	    "0A1B2C3D4E60.1763769660/mta.test\"\r\n"));
	assert_memory_equal(text, "Date: Sat, 22 Nov 2025 00:01:00 +0000\r\n",
	    39);

	p = part(text, r.boundary, 0);
	assert_non_null(strstr(p, "Content-Type: text/plain; "
	    "charset=us-ascii\r\n"));
	assert_non_null(strstr(p, "<a@b.test>: 550 5.1.1 no such user\r\n"));
	assert_non_null(strstr(p, "<c@b.test>: delivery time expired; last "
	    "error: 451 4.3.0 try later\r\n"));
	free(p);

	p = part(text, r.boundary, 1);
	assert_non_null(strstr(p, "Content-Type: message/delivery-status"
	    "\r\n\r\nReporting-MTA: dns; mta.test\r\n"));
	assert_non_null(strstr(p, "Original-Envelope-Id: env-42\r\n"));
	assert_non_null(strstr(p, "Arrival-Date: Sat, 22 Nov 2025 00:00:00 "
	    "+0000\r\n"));
	assert_non_null(strstr(p, "\r\n\r\nFinal-Recipient: rfc822; a@b.test"
	    "\r\nOriginal-Recipient: rfc822;A@B.test\r\nAction: failed\r\n"
	    "Status: 5.1.1\r\nRemote-MTA: dns; mx.b.test\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
	    "Last-Attempt-Date: Sat, 22 Nov 2025 00:01:00 +0000\r\n"));
	assert_non_null(strstr(p, "\r\n\r\nFinal-Recipient: rfc822; c@b.test"
	    "\r\nAction: failed\r\nStatus: 4.4.7\r\n"
	    "Diagnostic-Code: smtp; 451 4.3.0 try later\r\n"));
	assert_null(strstr(p, "Will-Retry-Until"));
	free(p);

	/* RET=FULL (or default) and small: the whole original. */
	p = part(text, r.boundary, 2);
	assert_non_null(strstr(p, "Content-Type: message/rfc822\r\n\r\n"));
	assert_non_null(strstr(p, orig));
	assert_null(strstr(p, "Content-Transfer-Encoding"));
	free(p);
	assert_non_null(strstr(text, "\r\n--0A1B2C3D4E60.1763769660/mta.test--"
	    "\r\n"));
	assert_non_null(strstr(text, "Content-Transfer-Encoding: 7bit\r\n"));
	free(text);
}

static void
test_build_headers_only(void **state)
{
	struct dsn_report	 r;
	struct dsn_rcpt		 rc[2];
	char			*text, *p, *big;
	size_t			 len, hlen = strlen(orig) - 26;

	fill(&r, rc);
	r.full = 0;
	r.envid = "";
	text = dsn_build(&r, &len);
	check_lines(text, len);
	assert_null(strstr(text, "Original-Envelope-Id"));
	p = part(text, r.boundary, 2);
	assert_non_null(strstr(p, "Content-Type: text/rfc822-headers\r\n"));
	assert_non_null(strstr(p, "Subject: hello\r\n"));
	assert_null(strstr(p, "Body line"));
	assert_memory_equal(p + strlen(p) - hlen, orig, hlen);
	free(p);
	free(text);

	/* Full asked, but too big: the header only. */
	big = malloc(DSN_FULL_LIMIT + 100);
	memcpy(big, orig, strlen(orig));
	memset(big + strlen(orig), 'x', DSN_FULL_LIMIT + 100 - strlen(orig));
	fill(&r, rc);
	r.orig = big;
	r.origlen = DSN_FULL_LIMIT + 100;
	text = dsn_build(&r, &len);
	assert_true(len < 8192);
	assert_non_null(strstr(text, "text/rfc822-headers"));
	assert_null(strstr(text, "xxxx"));
	free(text);
	free(big);
}

static void
test_build_delayed_delivered(void **state)
{
	struct dsn_report	 r;
	struct dsn_rcpt		 rc[2];
	char			*text, *p;
	size_t			 len;

	fill(&r, rc);
	r.action = DSN_ACTION_DELAYED;
	r.full = 0;
	r.nrcpt = 1;
	rc[0].action = DSN_ACTION_DELAYED;
	rc[0].status = "4.2.0";
	rc[0].diag = "451 4.2.0 later";
	rc[0].retry_until = 1764201600;
	text = dsn_build(&r, &len);
	check_lines(text, len);
	assert_non_null(strstr(text, "Subject: Delayed Mail (still being "
	    "retried)\r\n"));
	assert_non_null(strstr(text, "THIS IS A WARNING ONLY"));
	p = part(text, r.boundary, 1);
	assert_non_null(strstr(p, "Action: delayed\r\nStatus: 4.2.0\r\n"));
	assert_non_null(strstr(p, "Will-Retry-Until: Thu, 27 Nov 2025 "
	    "00:00:00 +0000\r\n"));
	assert_null(strstr(p, "c@b.test"));
	free(p);
	free(text);

	/* A failure without an SMTP reply: our own diagnostic type. */
	rc[0].diag = "connect to mx.b.test[192.0.2.1]:25: Connection refused";
	rc[0].diag_smtp = 0;
	rc[0].remote_mta = "";
	text = dsn_build(&r, &len);
	assert_non_null(strstr(text, "\r\nDiagnostic-Code: X-mtad; connect to "
	    "mx.b.test[192.0.2.1]:25: Connection refused\r\n"));
	assert_null(strstr(text, "Remote-MTA"));
	free(text);

	r.action = DSN_ACTION_DELIVERED;
	rc[0].action = DSN_ACTION_DELIVERED;
	rc[0].status = "garbage";	/* replaced by a valid one */
	rc[0].diag = "250 2.0.0 Ok";
	text = dsn_build(&r, &len);
	check_lines(text, len);
	assert_non_null(strstr(text, "Subject: Successful Mail Delivery "
	    "Report\r\n"));
	assert_non_null(strstr(text, "Action: delivered\r\nStatus: 2.0.0\r\n"));
	free(text);
}

static void
test_build_hostile(void **state)
{
	struct dsn_report	 r;
	struct dsn_rcpt		 rc[2];
	char			*text, *diag, *p;
	size_t			 len;

	fill(&r, rc);
	/* Header injection through every outside text, an overlong reply. */
	diag = malloc(5000);
	memset(diag, 'd', 4999);
	diag[4999] = '\0';
	memcpy(diag, "550 x\r\nBcc: evil@x\r\n", 20);
	rc[0].diag = diag;
	rc[0].address = "a@b.test\r\nX-Evil: 1";
	rc[0].status = "5.1.1\r\nX: y";
	r.envid = "e\nX-Evil: 2";
	r.sender = "s@a.test>\r\nBcc: <evil@x";
	text = dsn_build(&r, &len);
	check_lines(text, len);
	assert_null(strstr(text, "\r\nBcc:"));
	assert_null(strstr(text, "\r\nX-Evil"));
	assert_null(strstr(text, "\nX: y"));
	p = part(text, r.boundary, 1);
	assert_non_null(strstr(p, "Action: failed\r\nStatus: 5.0.0\r\n"));
	free(p);
	free(text);
	free(diag);

	/* 8-bit text (SMTPUTF8) is declared, not hidden. */
	fill(&r, rc);
	rc[0].address = "j\xc3\xb6rg@b.test";
	text = dsn_build(&r, &len);
	assert_non_null(strstr(text, "Content-Transfer-Encoding: 8bit\r\n"));
	assert_non_null(strstr(text, "charset=utf-8"));
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_notify_wants),
		cmocka_unit_test(test_small_parsers),
		cmocka_unit_test(test_build_failed),
		cmocka_unit_test(test_build_headers_only),
		cmocka_unit_test(test_build_delayed_delivered),
		cmocka_unit_test(test_build_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
