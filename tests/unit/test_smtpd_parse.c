/*
 * The pure parts of smtpd: command line framing (common/smtp_parse.c),
 * MAIL/RCPT paths and parameters, DATA framing with dot-unstuffing and
 * the SMTP smuggling cases, and smtp-range CIDR matching
 * (common/netaddr.c).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "netaddr.h"
#include "smtp_parse.h"

/* --- command line framing ------------------------------------------------ */

static void
test_line_basic(void **state)
{
	const char	*buf = "EHLO x\r\nMAIL FROM:<>\nNOOP";
	size_t		 len = strlen(buf), linelen, used, off = 0;
	int		 discard = 0;

	assert_int_equal(smtp_line_next(&discard, buf, len, &linelen, &used),
	    SMTP_LINE_OK);
	assert_int_equal(linelen, 6);
	assert_int_equal(used, 8);
	off += used;
	/* A bare LF ends a command line too (commands are not smuggled). */
	assert_int_equal(smtp_line_next(&discard, buf + off, len - off,
	    &linelen, &used), SMTP_LINE_OK);
	assert_int_equal(linelen, 12);
	assert_memory_equal(buf + off, "MAIL FROM:<>", 12);
	off += used;
	assert_int_equal(smtp_line_next(&discard, buf + off, len - off,
	    &linelen, &used), SMTP_LINE_MORE);
	assert_int_equal(used, 0);
}

static void
test_line_limit(void **state)
{
	char	 buf[2048];
	size_t	 linelen, used;
	int	 discard = 0;

	/* 510 octets + CRLF = 512: the longest legal line. */
	memset(buf, 'a', 510);
	memcpy(buf + 510, "\r\n", 2);
	assert_int_equal(smtp_line_next(&discard, buf, 512, &linelen, &used),
	    SMTP_LINE_OK);
	assert_int_equal(linelen, 510);

	/* 511 + CRLF: too long, dropped through its LF, next line kept. */
	memset(buf, 'a', 511);
	memcpy(buf + 511, "\r\nNOOP\r\n", 8);
	assert_int_equal(smtp_line_next(&discard, buf, 519, &linelen, &used),
	    SMTP_LINE_LONG);
	assert_int_equal(used, 513);
	assert_int_equal(discard, 0);
	assert_int_equal(smtp_line_next(&discard, buf + used, 519 - used,
	    &linelen, &used), SMTP_LINE_OK);
	assert_int_equal(linelen, 4);

	/* Less than a limit's worth without LF: wait for more. */
	memset(buf, 'b', 511);
	assert_int_equal(smtp_line_next(&discard, buf, 511, &linelen, &used),
	    SMTP_LINE_MORE);
	assert_int_equal(used, 0);
}

static void
test_line_discard(void **state)
{
	char	 buf[1024];
	size_t	 linelen, used;
	int	 discard = 0;

	/* A 1024-octet start without LF: reported once, all dropped. */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(smtp_line_next(&discard, buf, sizeof(buf), &linelen,
	    &used), SMTP_LINE_LONG);
	assert_int_equal(used, sizeof(buf));
	assert_int_equal(discard, 1);
	/* More of it: silently dropped, whatever its size. */
	assert_int_equal(smtp_line_next(&discard, buf, sizeof(buf), &linelen,
	    &used), SMTP_LINE_MORE);
	assert_int_equal(used, sizeof(buf));
	assert_int_equal(discard, 1);
	/* Its end: dropped through the LF, framing is back. */
	memcpy(buf, "yy\r\nQUIT\r\n", 10);
	assert_int_equal(smtp_line_next(&discard, buf, 10, &linelen, &used),
	    SMTP_LINE_MORE);
	assert_int_equal(used, 4);
	assert_int_equal(discard, 0);
	assert_int_equal(smtp_line_next(&discard, buf + 4, 6, &linelen,
	    &used), SMTP_LINE_OK);
	assert_int_equal(linelen, 4);
}

static void
test_line_check(void **state)
{
	assert_int_equal(smtp_line_check("NOOP", 4), 0);
	assert_int_equal(smtp_line_check("NO\0OP", 5), -1);
	assert_int_equal(smtp_line_check("NO\rOP", 5), -1);
	assert_int_equal(smtp_line_check("HELO a\tb", 8), 0);
}

/* --- MAIL / RCPT ------------------------------------------------------------ */

/* Parse and compare the address and parameters; want NULL: an error. */
static void
path(const char *arg, const char *kw, int want_rc, const char *want_addr,
    const char *want_params)
{
	char		 addr[SMTP_ADDR_MAX + 1];
	const char	*params;

	assert_int_equal(smtp_parse_path(arg, kw, addr, sizeof(addr),
	    &params), want_rc);
	if (want_rc == SMTP_PATH_OK) {
		assert_string_equal(addr, want_addr);
		assert_string_equal(params, want_params);
	}
}

static void
test_path_ok(void **state)
{
	path("FROM:<a@b.example>", "FROM", SMTP_PATH_OK, "a@b.example", "");
	path("from:<a@b.example> SIZE=10", "FROM", SMTP_PATH_OK,
	    "a@b.example", "SIZE=10");
	path("FROM: <a@b.example>", "FROM", SMTP_PATH_OK, "a@b.example", "");
	path("FROM:<>", "FROM", SMTP_PATH_OK, "", "");
	path("FROM:<> BODY=8BITMIME", "FROM", SMTP_PATH_OK, "",
	    "BODY=8BITMIME");
	path("TO:<x.y+tag@[192.0.2.1]>", "TO", SMTP_PATH_OK,
	    "x.y+tag@[192.0.2.1]", "");
	path("TO:<\"a b>c\"@d.example>", "TO", SMTP_PATH_OK,
	    "\"a b>c\"@d.example", "");
	path("TO:<@r1.example,@r2.example:u@d.example>", "TO", SMTP_PATH_OK,
	    "u@d.example", "");
	path("TO:u@d.example", "TO", SMTP_PATH_OK, "u@d.example", "");
}

static void
test_path_bad(void **state)
{
	char	 long_addr[400];

	path("FROM <a@b>", "FROM", SMTP_PATH_ESYNTAX, NULL, NULL);
	path("TO:<a@b>", "FROM", SMTP_PATH_ESYNTAX, NULL, NULL);
	path("FROM:<a@b", "FROM", SMTP_PATH_ESYNTAX, NULL, NULL);
	path("FROM:<a@b>x", "FROM", SMTP_PATH_ESYNTAX, NULL, NULL);
	path("FROM:", "FROM", SMTP_PATH_ESYNTAX, NULL, NULL);
	path("TO:<postmaster>", "TO", SMTP_PATH_EADDR, NULL, NULL);
	path("TO:<a b@c.example>", "TO", SMTP_PATH_EADDR, NULL, NULL);
	path("TO:<a@>", "TO", SMTP_PATH_EADDR, NULL, NULL);
	path("TO:<@c.example>", "TO", SMTP_PATH_EADDR, NULL, NULL);
	path("TO:<a@b..example>", "TO", SMTP_PATH_EADDR, NULL, NULL);
	path("TO:<a@b.example.>", "TO", SMTP_PATH_EADDR, NULL, NULL);
	path("TO:<a@b\x01.example>", "TO", SMTP_PATH_EADDR, NULL, NULL);
	path("TO:<a@[1.2.3.4>", "TO", SMTP_PATH_EADDR, NULL, NULL);
	snprintf(long_addr, sizeof(long_addr), "TO:<%0300d@b.example>", 0);
	path(long_addr, "TO", SMTP_PATH_EADDR, NULL, NULL);
}

static void
test_mail_params(void **state)
{
	struct smtp_mail_params	 mp;
	struct smtp_rcpt_params	 rp;
	const char		*reply;

	assert_int_equal(smtp_parse_mail_params("", &mp, &reply), 0);
	assert_int_equal(mp.size, 0);
	assert_int_equal(mp.body, SMTP_BODY_UNSET);
	assert_int_equal(smtp_parse_mail_params("SIZE=12345 body=8bitmime",
	    &mp, &reply), 0);
	assert_int_equal(mp.size, 12345);
	assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
	assert_int_equal(smtp_parse_mail_params("BODY=7BIT", &mp, &reply), 0);
	assert_int_equal(mp.body, SMTP_BODY_7BIT);
	assert_int_equal(smtp_parse_mail_params("SIZE=18446744073709551615",
	    &mp, &reply), 0);
	assert_true(mp.size == UINT64_MAX);

	assert_int_equal(smtp_parse_mail_params("SIZE=18446744073709551616",
	    &mp, &reply), 501);
	assert_int_equal(smtp_parse_mail_params("SIZE=1x", &mp, &reply), 501);
	assert_int_equal(smtp_parse_mail_params("SIZE=", &mp, &reply), 501);
	assert_int_equal(smtp_parse_mail_params("SIZE", &mp, &reply), 501);
	assert_int_equal(smtp_parse_mail_params("SIZE=1 SIZE=2", &mp,
	    &reply), 501);
	assert_int_equal(smtp_parse_mail_params("BODY=BINARYMIME", &mp,
	    &reply), 501);
	assert_int_equal(smtp_parse_mail_params("FOO=1", &mp, &reply), 555);
	assert_string_equal(reply, "555 5.5.4 Unsupported MAIL parameter");
	assert_int_equal(smtp_parse_mail_params("=x", &mp, &reply), 501);
	/* AUTH=: "<>" or an xtext mailbox (RFC 4954 5), else 501. */
	assert_int_equal(smtp_parse_mail_params("AUTH=<>", &mp, &reply), 0);
	assert_int_equal(smtp_parse_mail_params("AUTH=u+40a.test", &mp,
	    &reply), 0);
	assert_int_equal(smtp_parse_mail_params("AUTH=u+ZZa.test", &mp,
	    &reply), 501);
	assert_string_equal(reply, "501 5.5.4 Bad AUTH parameter");
	assert_int_equal(smtp_parse_mail_params("AUTH=a+00", &mp, &reply),
	    501);
	assert_int_equal(smtp_parse_mail_params("AUTH", &mp, &reply), 501);
	assert_int_equal(smtp_parse_mail_params("SIZE=-1", &mp, &reply), 501);
	assert_int_equal(smtp_parse_mail_params(
	    "SIZE=99999999999999999999999", &mp, &reply), 501);

	/* DSN and SMTPUTF8 parameters: tests/unit/test_smtpd_dsn.c */
	assert_int_equal(smtp_parse_rcpt_params("", &rp, &reply), 0);
	assert_int_equal(smtp_parse_rcpt_params("FOO=1", &rp, &reply), 555);
}

/* --- DATA framing ------------------------------------------------------------ */

/*
 * Feed in through the framer in chunks of step octets, offering at most
 * outcap octets of output room per call.  Returns whether the end of data was found,
 * the output and how much input was used.
 */
static int
frame(const char *in, size_t len, size_t step, size_t outcap, char *out,
    size_t *outlen, size_t *inused, int *flags)
{
	struct smtp_data	 d;
	size_t			 off = 0, used, n, o;
	int			 done = 0;

	smtp_data_init(&d);
	*outlen = 0;
	while (off < len && !done) {
		n = len - off < step ? len - off : step;
		done = smtp_data_feed(&d, in + off, n, &used,
		    out + *outlen, outcap, &o);
		off += used;
		*outlen += o;
	}
	*inused = off;
	*flags = d.flags;
	return done;
}

/* The framed output of in must be want (NUL: no end), for every chunking. */
static void
data(const char *in, int want_done, const char *want, int want_flags)
{
	size_t		 len = strlen(in), step, outlen, used;
	char		 out[4096];
	int		 flags, done;

	const size_t	 caps[] = { 2, 3, 4096 };
	size_t		 c;

	for (step = 1; step <= len; step++) {
		for (c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
			done = frame(in, len, step, caps[c], out, &outlen,
			    &used, &flags);
			assert_int_equal(done, want_done);
			assert_int_equal(flags, want_flags);
			if (want != NULL) {
				assert_int_equal(outlen, strlen(want));
				assert_memory_equal(out, want, outlen);
			}
		}
	}
}

/*
 * The octet-at-a-time framer (states as in common/smtp_parse.c) that the
 * one with runs of plain octets must match, output and flags alike.
 */
enum { R_BOL, R_TEXT, R_CR, R_DOT, R_DOTCR };

static void
ref_count(struct smtp_data *d)
{
	if (++d->linelen > SMTP_TEXT_LINE_MAX - 2)
		d->flags |= SMTP_DATA_F_LONG;
}

static int
ref_feed(struct smtp_data *d, const char *in, size_t inlen, size_t *used,
    char *out, size_t outcap, size_t *outlen)
{
	size_t	 i = 0;
	char	 c;

	*outlen = 0;
	while (i < inlen && outcap - *outlen >= 2) {
		c = in[i];
		switch (d->state) {
		case R_BOL:
			if (c == '.') {
				d->state = R_DOT;
				ref_count(d);
				i++;
			} else
				d->state = R_TEXT;
			break;
		case R_DOT:
			if (c == '\r') {
				d->state = R_DOTCR;
				i++;
			} else
				d->state = R_TEXT;
			break;
		case R_DOTCR:
			if (c == '\n') {
				d->state = R_BOL;
				d->linelen = 0;
				*used = i + 1;
				return 1;
			}
			d->flags |= SMTP_DATA_F_BARE;
			d->state = R_TEXT;
			break;
		case R_TEXT:
			i++;
			if (c == '\r')
				d->state = R_CR;
			else if (c == '\n') {
				d->flags |= SMTP_DATA_F_BARE;
				ref_count(d);
			} else {
				if (c == '\0')
					d->flags |= SMTP_DATA_F_NUL;
				out[(*outlen)++] = c;
				ref_count(d);
			}
			break;
		case R_CR:
			if (c == '\n') {
				out[(*outlen)++] = '\r';
				out[(*outlen)++] = '\n';
				d->state = R_BOL;
				d->linelen = 0;
				i++;
			} else {
				d->flags |= SMTP_DATA_F_BARE;
				ref_count(d);
				d->state = R_TEXT;
			}
			break;
		}
	}
	*used = i;
	return 0;
}

/* Random DATA (long lines, dots, bare CR/LF, NULs), random chunks. */
static void
test_data_random_against_reference(void **state)
{
	struct smtp_data	 d, r;
	char			 in[3000], out[3000], ref[3000];
	size_t			 len, i, off, n, cap, used, rused, o, ro;
	int			 round, done, rdone;

	(void)state;
	srandom(11);
	for (round = 0; round < 3000; round++) {
		len = (size_t)random() % sizeof(in);
		for (i = 0; i < len; i++) {
			switch (random() % 40) {
			case 0: in[i] = '.'; break;
			case 1: case 2: in[i] = '\r'; break;
			case 3: case 4: in[i] = '\n'; break;
			case 5: in[i] = random() % 8 == 0 ? '\0' : '.'; break;
			default: in[i] = 'a' + (char)(random() % 26); break;
			}
		}
		smtp_data_init(&d);
		smtp_data_init(&r);
		for (off = 0; off < len; off += used) {
			n = 1 + (size_t)random() % 700;
			if (n > len - off)
				n = len - off;
			cap = 2 + (size_t)random() % 900;
			done = smtp_data_feed(&d, in + off, n, &used, out, cap,
			    &o);
			rdone = ref_feed(&r, in + off, n, &rused, ref, cap,
			    &ro);
			assert_int_equal(done, rdone);
			assert_int_equal(used, rused);
			assert_int_equal(o, ro);
			assert_memory_equal(out, ref, o);
			assert_int_equal(d.flags, r.flags);
			assert_int_equal(d.linelen, r.linelen);
			assert_int_equal(d.state, r.state);
			if (done)
				break;
		}
	}
}

static void
test_data_unstuff(void **state)
{
	data(".\r\n", 1, "", 0);
	data("a\r\n.\r\n", 1, "a\r\n", 0);
	data("..\r\n.\r\n", 1, ".\r\n", 0);
	data("..a\r\n...\r\n.b\r\n.\r\n", 1, ".a\r\n..\r\nb\r\n", 0);
	data("x.\r\n. \r\n.\r\n", 1, "x.\r\n \r\n", 0);
	data("\r\n\r\n.\r\n", 1, "\r\n\r\n", 0);
	data("a\r\n.\r", 0, "a\r\n", 0);
}

static void
test_data_rest(void **state)
{
	const char	*in = "a\r\n.\r\nQUIT\r\n";
	char		 out[64];
	size_t		 outlen, used;
	int		 flags;

	/* The input after the end of data stays for the command parser. */
	assert_int_equal(frame(in, strlen(in), 64, sizeof(out), out, &outlen,
	    &used, &flags), 1);
	assert_int_equal(used, 6);
	assert_int_equal(outlen, 3);
}

static void
test_data_smuggling(void **state)
{
	/* Bare LF: flagged; "<LF>.<LF>" and "<LF>.<CR><LF>" do not end. */
	data("a\n.\nMAIL FROM:<x@y.example>\r\n", 0, NULL, SMTP_DATA_F_BARE);
	data("a\n.\r\nRCPT TO:<x@y.example>\r\n", 0, NULL, SMTP_DATA_F_BARE);
	data("a\r\n.\nb\r\n", 0, NULL, SMTP_DATA_F_BARE);
	data("a\r.\r\nb\r\n", 0, NULL, SMTP_DATA_F_BARE);
	data("a\r\n.\r.\r\n", 0, NULL, SMTP_DATA_F_BARE);
	/* Only the real terminator ends, the flag stays. */
	data("a\n.\nx\r\n.\r\n", 1, NULL, SMTP_DATA_F_BARE);
	data("bare\rcr\r\n.\r\n", 1, NULL, SMTP_DATA_F_BARE);
	data("a\r\r\n.\r\n", 1, NULL, SMTP_DATA_F_BARE);
	data(".\r\r\n.\r\n", 1, NULL, SMTP_DATA_F_BARE);
}

static void
test_data_long_line(void **state)
{
	char	 in[1100], out[1100];
	size_t	 outlen, used;
	int	 flags;

	/* 998 + CRLF: fine.  999 + CRLF: flagged. */
	memset(in, 'x', 998);
	memcpy(in + 998, "\r\n.\r\n", 6);
	assert_int_equal(frame(in, strlen(in), 4096, sizeof(out), out,
	    &outlen, &used, &flags), 1);
	assert_int_equal(flags, 0);
	assert_int_equal(outlen, 1000);

	memset(in, 'x', 999);
	memcpy(in + 999, "\r\n.\r\n", 6);
	assert_int_equal(frame(in, strlen(in), 4096, sizeof(out), out,
	    &outlen, &used, &flags), 1);
	assert_int_equal(flags, SMTP_DATA_F_LONG);

	/* The limit is on the wire: the stuffing dot counts. */
	in[0] = '.';
	memset(in + 1, 'x', 997);
	memcpy(in + 998, "\r\n.\r\n", 6);
	assert_int_equal(frame(in, strlen(in), 4096, sizeof(out), out,
	    &outlen, &used, &flags), 1);
	assert_int_equal(flags, 0);
	assert_int_equal(outlen, 999);
	memset(in + 1, 'x', 998);
	memcpy(in + 999, "\r\n.\r\n", 6);
	assert_int_equal(frame(in, strlen(in), 4096, sizeof(out), out,
	    &outlen, &used, &flags), 1);
	assert_int_equal(flags, SMTP_DATA_F_LONG);
}

/* --- CIDR ranges --------------------------------------------------------------- */

static int
in_range(const char *spec, const char *ip)
{
	struct netaddr_range	 r;
	struct netaddr		 a;
	char			*cause = NULL;
	int			 match;

	assert_int_equal(netaddr_range_parse(&r, spec, &cause), 0);
	assert_int_equal(netaddr_parse(&a, ip), 0);
	match = netaddr_range_match(&r, &a);
	netaddr_range_clear(&r);
	return match;
}

static void
test_cidr_match(void **state)
{
	const char	*def = "127.0.0.0/8;::1/128";

	assert_true(in_range(def, "127.0.0.1"));
	assert_true(in_range(def, "127.255.1.2"));
	assert_false(in_range(def, "128.0.0.1"));
	assert_true(in_range(def, "::1"));
	assert_false(in_range(def, "::2"));
	assert_true(in_range("192.168.0.0/16; 10.0.0.0/8", "10.9.8.7"));
	assert_false(in_range("192.168.0.0/16;10.0.0.0/8", "192.169.0.1"));
	assert_true(in_range("10.1.2.3/8", "10.200.0.1"));	/* host bits */
	assert_true(in_range("192.0.2.1", "192.0.2.1"));
	assert_false(in_range("192.0.2.1", "192.0.2.2"));
	assert_true(in_range("0.0.0.0/0", "203.0.113.9"));
	assert_false(in_range("0.0.0.0/0", "2001:db8::1"));
	assert_true(in_range("::/0", "2001:db8::1"));
	assert_true(in_range("2001:db8::/33", "2001:db8:7fff::1"));
	assert_false(in_range("2001:db8::/33", "2001:db8:8000::1"));
	assert_true(in_range("10.0.0.0/7", "11.255.255.255"));
	assert_false(in_range("10.0.0.0/7", "12.0.0.0"));
	assert_false(in_range("", "127.0.0.1"));
	/* Mapped addresses, either way round. */
	assert_true(in_range("127.0.0.0/8", "::ffff:127.0.0.1"));
	assert_true(in_range("::ffff:10.0.0.0/104", "10.1.1.1"));
	assert_false(in_range("::ffff:10.0.0.0/104", "11.1.1.1"));
}

static void
test_cidr_sockaddr(void **state)
{
	struct sockaddr_in6	 sin6;
	struct netaddr_range	 r;
	struct netaddr		 a;
	char			 buf[NETADDR_STRLEN], *cause = NULL;

	/* What a dual-stack listener reports for an IPv4 client. */
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6.sin6_addr);
	assert_int_equal(netaddr_from_sockaddr(&a,
	    (struct sockaddr *)&sin6), 0);
	assert_int_equal(a.family, AF_INET);
	assert_string_equal(netaddr_ntop(&a, buf, sizeof(buf)), "127.0.0.1");
	assert_int_equal(netaddr_range_parse(&r, "127.0.0.0/8", &cause), 0);
	assert_true(netaddr_range_match(&r, &a));
	netaddr_range_clear(&r);
}

static void
test_cidr_bad(void **state)
{
	const char	*bad[] = {
		"127.0.0.0/33", "::1/129", "127.0.0/8", "host.example",
		"10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x", "1.2.3.4/8/8",
		"127.0.0.1;nonsense",
	};
	struct netaddr_range	 r;
	char			*cause;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cause = NULL;
		assert_int_equal(netaddr_range_parse(&r, bad[i], &cause), -1);
		assert_non_null(cause);
		free(cause);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_basic),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_line_discard),
		cmocka_unit_test(test_line_check),
		cmocka_unit_test(test_path_ok),
		cmocka_unit_test(test_path_bad),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_data_unstuff),
		cmocka_unit_test(test_data_random_against_reference),
		cmocka_unit_test(test_data_rest),
		cmocka_unit_test(test_data_smuggling),
		cmocka_unit_test(test_data_long_line),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_cidr_sockaddr),
		cmocka_unit_test(test_cidr_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
