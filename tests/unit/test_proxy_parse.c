/*
 * The PROXY protocol header parser (common/proxy_parse.c): v1 TCP4, TCP6
 * and UNKNOWN, v2 PROXY and LOCAL over IPv4 and IPv6, TLVs, and every
 * way a header can be truncated, overlong or wrong.  A valid header fed
 * one octet at a time must say PROXY_MORE until its last octet, so that
 * smtpd never reads past it.
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
#include "proxy_parse.h"

static const uint8_t v2sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static int
parse(const void *buf, size_t len, struct proxy_hdr *h, size_t *hdrlen)
{
	const char	*why;
	int		 r;

	r = proxy_parse(buf, len, h, hdrlen, &why);
	if (r == PROXY_BAD)
		assert_true(*why != '\0');
	return r;
}

static void
assert_addr(const struct netaddr *na, const char *text)
{
	char	buf[NETADDR_STRLEN];

	assert_string_equal(netaddr_ntop(na, buf, sizeof(buf)), text);
}

/* Every proper prefix is PROXY_MORE; the whole is PROXY_OK. */
static void
assert_prefixes_more(const void *buf, size_t len)
{
	struct proxy_hdr	h;
	size_t			i, hl;

	for (i = 0; i < len; i++)
		assert_int_equal(parse(buf, i, &h, &hl), PROXY_MORE);
	assert_int_equal(parse(buf, len, &h, &hl), PROXY_OK);
	assert_int_equal(hl, len);
}

/* A v2 header: signature, ver/cmd, fam/proto, then body. */
static size_t
v2(uint8_t *out, uint8_t vercmd, uint8_t famproto, const void *body,
    size_t blen)
{
	memcpy(out, v2sig, 12);
	out[12] = vercmd;
	out[13] = famproto;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	memcpy(out + 16, body, blen);
	return 16 + blen;
}

/* --- v1 ------------------------------------------------------------- */

static void
test_v1_tcp4(void **state)
{
	const char		*hdr = "PROXY TCP4 192.0.2.10 198.51.100.1 "
				    "56324 25\r\n";
	char			 buf[256];
	struct proxy_hdr	 h;
	size_t			 hl;

	/* What follows the header is not part of it. */
	snprintf(buf, sizeof(buf), "%sEHLO x\r\n", hdr);
	assert_int_equal(parse(buf, strlen(buf), &h, &hl), PROXY_OK);
	assert_int_equal(hl, strlen(hdr));
	assert_int_equal(h.version, 1);
	assert_int_equal(h.local, 0);
	assert_addr(&h.src, "192.0.2.10");
	assert_addr(&h.dst, "198.51.100.1");
	assert_int_equal(h.sport, 56324);
	assert_int_equal(h.dport, 25);
	assert_prefixes_more(hdr, strlen(hdr));
}

static void
test_v1_tcp6(void **state)
{
	const char		*hdr = "PROXY TCP6 2001:db8::10 2001:db8::1 "
				    "65535 587\r\n";
	struct proxy_hdr	 h;
	size_t			 hl;

	assert_int_equal(parse(hdr, strlen(hdr), &h, &hl), PROXY_OK);
	assert_int_equal(h.src.family, AF_INET6);
	assert_addr(&h.src, "2001:db8::10");
	assert_addr(&h.dst, "2001:db8::1");
	assert_int_equal(h.sport, 65535);
	assert_int_equal(h.dport, 587);
	assert_prefixes_more(hdr, strlen(hdr));
}

static void
test_v1_unknown(void **state)
{
	const char		*a = "PROXY UNKNOWN\r\n";
	const char		*b = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
	struct proxy_hdr	 h;
	size_t			 hl;

	assert_int_equal(parse(a, strlen(a), &h, &hl), PROXY_OK);
	assert_int_equal(h.local, 1);
	assert_int_equal(hl, strlen(a));
	assert_int_equal(parse(b, strlen(b), &h, &hl), PROXY_OK);
	assert_int_equal(h.local, 1);
}

static void
test_v1_bad(void **state)
{
	static const char *const bad[] = {
		"PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\n",  /* bare LF */
		"PROXY TCP4 2001:db8::1 198.51.100.1 1 25\r\n",   /* family */
		"PROXY TCP6 192.0.2.10 2001:db8::1 1 25\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 65536 25\r\n", /* port */
		"PROXY TCP4 192.0.2.10 198.51.100.1 -1 25\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 1\r\n",	   /* fields */
		"PROXY TCP4 192.0.2.10 198.51.100.1 1 2 3\r\n",
		"PROXY TCP4  192.0.2.10 198.51.100.1 1 2\r\n", /* 2 spaces */
		"PROXY UDP4 192.0.2.10 198.51.100.1 1 2\r\n",
		"PROXY TCP4 192.0.2.300 198.51.100.1 1 2\r\n",
		"PROXY \r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.1 1 2 \r\n",
		"EHLO client.test\r\n",			   /* no header */
		"proxy TCP4 192.0.2.10 198.51.100.1 1 2\r\n",
	};
	struct proxy_hdr	h;
	size_t			i, hl;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], strlen(bad[i]), &h, &hl),
		    PROXY_BAD);
}

static void
test_v1_overlong(void **state)
{
	char			buf[200];
	struct proxy_hdr	h;
	size_t			hl;

	memset(buf, 'x', sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	/* 106 octets without LF: still possible; 107: too long. */
	assert_int_equal(parse(buf, PROXY_V1_MAX - 1, &h, &hl), PROXY_MORE);
	assert_int_equal(parse(buf, PROXY_V1_MAX, &h, &hl), PROXY_BAD);
	/* Exactly 107 with its CRLF is fine. */
	buf[PROXY_V1_MAX - 2] = '\r';
	buf[PROXY_V1_MAX - 1] = '\n';
	assert_int_equal(parse(buf, PROXY_V1_MAX, &h, &hl), PROXY_OK);
	assert_int_equal(hl, PROXY_V1_MAX);
	/* An LF one octet too far is never looked for. */
	buf[PROXY_V1_MAX - 2] = 'x';
	buf[PROXY_V1_MAX - 1] = '\r';
	buf[PROXY_V1_MAX] = '\n';
	assert_int_equal(parse(buf, PROXY_V1_MAX + 1, &h, &hl), PROXY_BAD);
}

/* --- v2 ------------------------------------------------------------- */

static void
test_v2_proxy_inet(void **state)
{
	uint8_t			 body[12 + 8], buf[64];
	struct proxy_hdr	 h;
	size_t			 n, hl;

	inet_pton(AF_INET, "192.0.2.10", body);
	inet_pton(AF_INET, "198.51.100.1", body + 4);
	body[8] = 0xdc; body[9] = 0x04;		/* 56324 */
	body[10] = 0x00; body[11] = 0x19;	/* 25 */
	/* Two TLVs: an ALPN of 2 octets and an empty NOOP. */
	memcpy(body + 12, "\x01\x00\x02h2\x04\x00\x00", 8);
	n = v2(buf, 0x21, 0x11, body, sizeof(body));
	memcpy(buf + n, "\x16\x03\x01", 3);	/* a ClientHello follows */
	assert_int_equal(parse(buf, n + 3, &h, &hl), PROXY_OK);
	assert_int_equal(hl, n);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.local, 0);
	assert_addr(&h.src, "192.0.2.10");
	assert_addr(&h.dst, "198.51.100.1");
	assert_int_equal(h.sport, 56324);
	assert_int_equal(h.dport, 25);
	assert_prefixes_more(buf, n);
}

static void
test_v2_proxy_inet6(void **state)
{
	uint8_t			 body[36], buf[64];
	struct proxy_hdr	 h;
	size_t			 n, hl;

	inet_pton(AF_INET6, "2001:db8::10", body);
	inet_pton(AF_INET6, "2001:db8::1", body + 16);
	body[32] = 0x04; body[33] = 0x00;	/* 1024 */
	body[34] = 0x02; body[35] = 0x4b;	/* 587 */
	n = v2(buf, 0x21, 0x21, body, sizeof(body));
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_OK);
	assert_int_equal(h.src.family, AF_INET6);
	assert_addr(&h.src, "2001:db8::10");
	assert_addr(&h.dst, "2001:db8::1");
	assert_int_equal(h.sport, 1024);
	assert_int_equal(h.dport, 587);
	assert_prefixes_more(buf, n);
}

static void
test_v2_local(void **state)
{
	uint8_t			 buf[64], body[12] = { 0 };
	struct proxy_hdr	 h;
	size_t			 n, hl;

	/* LOCAL (a health check): addresses, if any, are ignored. */
	n = v2(buf, 0x20, 0x00, body, 0);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_OK);
	assert_int_equal(hl, 16);
	assert_int_equal(h.local, 1);
	n = v2(buf, 0x20, 0x11, body, sizeof(body));
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_OK);
	assert_int_equal(h.local, 1);
	/* PROXY with UNSPEC family says nothing either. */
	n = v2(buf, 0x21, 0x00, body, 0);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_OK);
	assert_int_equal(h.local, 1);
}

static void
test_v2_bad(void **state)
{
	uint8_t			 buf[PROXY_MAX + 64], body[40] = { 0 };
	struct proxy_hdr	 h;
	size_t			 n, hl;

	/* Version 1 in the binary header; unknown command. */
	n = v2(buf, 0x11, 0x11, body, 12);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_BAD);
	n = v2(buf, 0x22, 0x11, body, 12);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_BAD);
	/* Address block too short for its family. */
	n = v2(buf, 0x21, 0x11, body, 11);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_BAD);
	n = v2(buf, 0x21, 0x21, body, 35);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_BAD);
	/* Datagrams; an unknown family. */
	n = v2(buf, 0x21, 0x12, body, 12);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_BAD);
	n = v2(buf, 0x21, 0x41, body, 12);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_BAD);
	/* A TLV longer than what is left. */
	memcpy(body + 12, "\x01\x00\x05xy", 5);
	n = v2(buf, 0x21, 0x11, body, 17);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_BAD);
	/* A TLV header cut short. */
	n = v2(buf, 0x21, 0x11, body, 14);
	assert_int_equal(parse(buf, n, &h, &hl), PROXY_BAD);
	/* Overlong: refused from the length alone, before the body. */
	memcpy(buf, v2sig, 12);
	buf[12] = 0x21;
	buf[13] = 0x11;
	buf[14] = (PROXY_V2_MAXLEN + 1) >> 8;
	buf[15] = (PROXY_V2_MAXLEN + 1) & 0xff;
	assert_int_equal(parse(buf, 16, &h, &hl), PROXY_BAD);
	buf[14] = 0xff;
	buf[15] = 0xff;
	assert_int_equal(parse(buf, 16, &h, &hl), PROXY_BAD);
}

static void
test_v2_truncated_and_signature(void **state)
{
	uint8_t			 buf[64];
	struct proxy_hdr	 h;
	size_t			 hl;

	memcpy(buf, v2sig, 12);
	/* A truncated signature is still possible. */
	assert_int_equal(parse(buf, 5, &h, &hl), PROXY_MORE);
	/* One wrong octet in the signature: not a header. */
	buf[7] = 'q';
	assert_int_equal(parse(buf, 12, &h, &hl), PROXY_BAD);
	buf[7] = 'Q';
	buf[11] = '\r';
	assert_int_equal(parse(buf, 12, &h, &hl), PROXY_BAD);
	/* An empty line is a v2 prefix, a NUL alone is not anything. */
	assert_int_equal(parse("\r\n", 2, &h, &hl), PROXY_MORE);
	assert_int_equal(parse("\0", 1, &h, &hl), PROXY_BAD);
	assert_int_equal(parse("", 0, &h, &hl), PROXY_MORE);
	/* A TLS ClientHello where a header should be. */
	assert_int_equal(parse("\x16\x03\x01\x02\x00", 5, &h, &hl),
	    PROXY_BAD);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_tcp4),
		cmocka_unit_test(test_v1_tcp6),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_bad),
		cmocka_unit_test(test_v1_overlong),
		cmocka_unit_test(test_v2_proxy_inet),
		cmocka_unit_test(test_v2_proxy_inet6),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_bad),
		cmocka_unit_test(test_v2_truncated_and_signature),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
