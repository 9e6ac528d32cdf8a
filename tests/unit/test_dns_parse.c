/*
 * DNS answers into records (common/dns_parse.c): replies are built with
 * ldns here, then read back as the resolver reads them from the network.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "dns_parse.h"
#include "proto.h"

#define ID	0x1234

struct spec {
	uint16_t	 id;
	const char	*qname;
	int		 qtype;
	int		 rcode;
	int		 qr;
	int		 tc;
	const char	*an[8];		/* RRs in presentation format */
	const char	*ns[4];
};

/* Build a reply packet from spec into wire (free()). */
static uint8_t *
build(const struct spec *s, size_t *len)
{
	ldns_pkt	*pkt;
	ldns_rr		*rr;
	uint8_t		*wire = NULL;
	size_t		 i;

	pkt = ldns_pkt_query_new(ldns_dname_new_frm_str(s->qname),
	    s->qtype, LDNS_RR_CLASS_IN, LDNS_RD);
	assert_non_null(pkt);
	ldns_pkt_set_id(pkt, s->id);
	ldns_pkt_set_qr(pkt, s->qr);
	ldns_pkt_set_tc(pkt, s->tc);
	ldns_pkt_set_rcode(pkt, s->rcode);
	for (i = 0; i < 8 && s->an[i] != NULL; i++) {
		assert_int_equal(ldns_rr_new_frm_str(&rr, s->an[i], 3600,
		    NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, rr);
	}
	for (i = 0; i < 4 && s->ns[i] != NULL; i++) {
		assert_int_equal(ldns_rr_new_frm_str(&rr, s->ns[i], 3600,
		    NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(pkt, LDNS_SECTION_AUTHORITY, rr);
	}
	assert_int_equal(ldns_pkt2wire(&wire, pkt, len), LDNS_STATUS_OK);
	ldns_pkt_free(pkt);
	return wire;
}

/* Build, parse as an answer to (ID, name, qtype); return parse's result. */
static int
parse(const struct spec *s, const char *name, int qtype,
    struct dns_answer *a, int *tc)
{
	uint8_t	*wire;
	size_t	 len;
	int	 r;

	wire = build(s, &len);
	r = dns_answer_parse(wire, len, ID, name, qtype, a, tc);
	free(wire);
	return r;
}

static void
test_mx_sorted(void **state)
{
	struct spec	 s = { ID, "Example.COM.", RES_T_MX, 0, 1, 0,
	    { "example.com. 300 IN MX 20 MX2.example.com.",
	      "example.com. 200 IN MX 10 mx1.example.com.",
	      "example.com. 300 IN MX 20 mx3.example.com.",
	      "other.example. 1 IN MX 1 wrong.example.", NULL }, { NULL } };
	struct dns_answer a;
	int		 tc;

	assert_int_equal(parse(&s, "example.com", RES_T_MX, &a, &tc), 0);
	assert_int_equal(tc, 0);
	assert_int_equal(a.status, RES_OK);
	assert_int_equal(a.ttl, 200);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.v[0].pref, 10);
	assert_string_equal(a.v[0].value, "mx1.example.com");
	assert_int_equal(a.v[1].pref, 20);
	assert_string_equal(a.v[1].value, "mx2.example.com");
	assert_string_equal(a.v[2].value, "mx3.example.com");
	dns_answer_clear(&a);
}

static void
test_null_mx(void **state)
{
	struct spec	 s = { ID, "example.com.", RES_T_MX, 0, 1, 0,
	    { "example.com. 300 IN MX 0 .", NULL }, { NULL } };
	struct spec	 mixed = { ID, "example.com.", RES_T_MX, 0, 1, 0,
	    { "example.com. 300 IN MX 0 .",
	      "example.com. 300 IN MX 10 mx.example.com.", NULL }, { NULL } };
	struct dns_answer a;
	int		 tc;

	assert_int_equal(parse(&s, "example.com", RES_T_MX, &a, &tc), 0);
	assert_int_equal(a.status, RES_OK);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.v[0].value, ".");
	dns_answer_clear(&a);

	assert_int_equal(parse(&mixed, "example.com", RES_T_MX, &a, &tc), 0);
	assert_int_equal(a.n, 1);
	assert_string_equal(a.v[0].value, "mx.example.com");
	dns_answer_clear(&a);
}

static void
test_cname(void **state)
{
	struct spec	 s = { ID, "www.example.com.", RES_T_A, 0, 1, 0,
	    { "www.example.com. 50 IN CNAME web.example.net.",
	      "web.example.net. 100 IN CNAME edge.example.org.",
	      "edge.example.org. 300 IN A 192.0.2.1",
	      "edge.example.org. 300 IN A 192.0.2.2",
	      "unrelated.example. 1 IN A 192.0.2.99", NULL }, { NULL } };
	struct dns_answer a;
	int		 tc;

	assert_int_equal(parse(&s, "www.example.com", RES_T_A, &a, &tc), 0);
	assert_int_equal(a.status, RES_OK);
	assert_int_equal(a.ttl, 50);
	assert_int_equal(a.n, 2);
	assert_string_equal(a.v[0].value, "192.0.2.1");
	assert_string_equal(a.v[1].value, "192.0.2.2");
	dns_answer_clear(&a);
}

static void
test_cname_loop(void **state)
{
	struct spec	 s = { ID, "a.example.", RES_T_A, 0, 1, 0,
	    { "a.example. 50 IN CNAME b.example.",
	      "b.example. 50 IN CNAME a.example.", NULL },
	    { "example. 30 IN SOA ns.example. h.example. 1 2 3 4 10",
	      NULL } };
	struct dns_answer a;
	int		 tc;

	assert_int_equal(parse(&s, "a.example", RES_T_A, &a, &tc), 0);
	assert_int_equal(a.status, RES_NODATA);
	assert_int_equal(a.ttl, 10);
	dns_answer_clear(&a);
}

static void
test_aaaa(void **state)
{
	struct spec	 s = { ID, "h.example.", RES_T_AAAA, 0, 1, 0,
	    { "h.example. 30 IN AAAA 2001:db8::1", NULL }, { NULL } };
	struct dns_answer a;
	int		 tc;

	assert_int_equal(parse(&s, "h.example", RES_T_AAAA, &a, &tc), 0);
	assert_int_equal(a.status, RES_OK);
	assert_int_equal(a.n, 1);
	assert_int_equal(a.v[0].pref, 0);
	assert_string_equal(a.v[0].value, "2001:db8::1");
	dns_answer_clear(&a);
}

static void
test_negative(void **state)
{
	struct spec	 nx = { ID, "nx.example.", RES_T_MX,
	    LDNS_RCODE_NXDOMAIN, 1, 0, { NULL },
	    { "example. 3600 IN SOA ns.example. h.example. 1 2 3 4 30",
	      NULL } };
	struct spec	 nodata = { ID, "h.example.", RES_T_MX, 0, 1, 0,
	    { NULL }, { NULL } };
	struct spec	 soattl = { ID, "h.example.", RES_T_MX, 0, 1, 0,
	    { NULL },
	    { "example. 20 IN SOA ns.example. h.example. 1 2 3 4 300",
	      NULL } };
	struct dns_answer a;
	int		 tc;

	assert_int_equal(parse(&nx, "nx.example", RES_T_MX, &a, &tc), 0);
	assert_int_equal(a.status, RES_NXDOMAIN);
	assert_int_equal(a.ttl, 30);
	assert_int_equal(a.n, 0);
	assert_int_equal(parse(&nodata, "h.example", RES_T_MX, &a, &tc), 0);
	assert_int_equal(a.status, RES_NODATA);
	assert_int_equal(a.ttl, DNS_NEG_TTL);
	assert_int_equal(parse(&soattl, "h.example", RES_T_MX, &a, &tc), 0);
	assert_int_equal(a.ttl, 20);
}

static void
test_tempfail(void **state)
{
	struct spec	 sf = { ID, "h.example.", RES_T_A,
	    LDNS_RCODE_SERVFAIL, 1, 0, { NULL }, { NULL } };
	struct spec	 ref = { ID, "h.example.", RES_T_A,
	    LDNS_RCODE_REFUSED, 1, 0, { NULL }, { NULL } };
	struct spec	 fe = { ID, "h.example.", RES_T_A,
	    LDNS_RCODE_FORMERR, 1, 0, { NULL }, { NULL } };
	struct spec	 badmx = { ID, "h.example.", RES_T_MX, 0, 1, 0,
	    { "h.example. 30 IN MX 10 bad\\032name.example.", NULL },
	    { NULL } };
	struct dns_answer a;
	int		 tc;

	assert_int_equal(parse(&sf, "h.example", RES_T_A, &a, &tc), 0);
	assert_int_equal(a.status, RES_TEMPFAIL);
	assert_int_equal(tc, 0);
	assert_int_equal(parse(&ref, "h.example", RES_T_A, &a, &tc), 0);
	assert_int_equal(a.status, RES_TEMPFAIL);
	assert_int_equal(parse(&fe, "h.example", RES_T_A, &a, &tc), 0);
	assert_int_equal(a.status, RES_TEMPFAIL);
	assert_int_equal(tc, DNS_REPLY_FORMERR);
	assert_int_equal(parse(&badmx, "h.example", RES_T_MX, &a, &tc), 0);
	assert_int_equal(a.status, RES_TEMPFAIL);
	assert_int_equal(a.n, 0);
}

static void
test_truncated(void **state)
{
	struct spec	 s = { ID, "h.example.", RES_T_MX, 0, 1, 1,
	    { NULL }, { NULL } };
	struct dns_answer a;
	int		 tc;

	assert_int_equal(parse(&s, "h.example", RES_T_MX, &a, &tc), 0);
	assert_int_equal(tc, DNS_REPLY_TC);
}

static void
test_not_ours(void **state)
{
	struct spec	 wrongid = { ID + 1, "h.example.", RES_T_A, 0, 1, 0,
	    { "h.example. 30 IN A 192.0.2.1", NULL }, { NULL } };
	struct spec	 noqr = { ID, "h.example.", RES_T_A, 0, 0, 0,
	    { "h.example. 30 IN A 192.0.2.1", NULL }, { NULL } };
	struct spec	 wrongq = { ID, "x.example.", RES_T_A, 0, 1, 0,
	    { "h.example. 30 IN A 192.0.2.1", NULL }, { NULL } };
	struct dns_answer a;
	uint8_t		*wire;
	size_t		 len;
	int		 tc;

	assert_int_equal(parse(&wrongid, "h.example", RES_T_A, &a, &tc), -1);
	assert_int_equal(parse(&noqr, "h.example", RES_T_A, &a, &tc), -1);
	assert_int_equal(parse(&wrongq, "h.example", RES_T_A, &a, &tc), -1);
	/* the question's type must match too */
	assert_int_equal(parse(&wrongid, "h.example", RES_T_AAAA, &a, &tc),
	    -1);

	/* cut short anywhere: never a crash, never accepted */
	wire = build(&noqr, &len);
	wire[2] |= 0x80;		/* QR */
	while (len-- > 0)
		assert_int_equal(dns_answer_parse(wire, len, ID, "h.example",
		    RES_T_A, &a, &tc), -1);
	free(wire);
}

static void
test_names(void **state)
{
	char	 out[DNS_NAME_MAX + 1];
	char	 lng[300];

	assert_int_equal(dns_name_normalize("Mx1.Example.COM.", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "mx1.example.com");
	assert_int_equal(dns_name_normalize("_dmarc.a-b.example", out,
	    sizeof(out)), 0);
	assert_int_equal(dns_name_normalize("", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize(".", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("a..b", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize(".a", out, sizeof(out)), -1);
	assert_int_equal(dns_name_normalize("a b.example", out, sizeof(out)),
	    -1);
	assert_int_equal(dns_name_normalize("[192.0.2.1]", out, sizeof(out)),
	    -1);
	assert_int_equal(dns_name_normalize("a\\.b", out, sizeof(out)), -1);
	memset(lng, 'a', 64);
	lng[64] = '\0';
	assert_int_equal(dns_name_normalize(lng, out, sizeof(out)), -1);
	lng[63] = '\0';
	assert_int_equal(dns_name_normalize(lng, out, sizeof(out)), 0);
	/* 4 x 63 + 3 dots = 255 > 253 */
	memset(lng, 'a', 255);
	lng[63] = lng[127] = lng[191] = '.';
	lng[255] = '\0';
	assert_int_equal(dns_name_normalize(lng, out, sizeof(out)), -1);
	lng[253] = '\0';
	assert_int_equal(dns_name_normalize(lng, out, sizeof(out)), 0);
}

static void
test_query_build(void **state)
{
	ldns_pkt	*pkt;
	ldns_rr		*q;
	uint8_t		*wire;
	size_t		 len;
	char		*owner;

	wire = dns_query_build("mx.example.com", RES_T_MX, 0xbeef, 1232,
	    &len);
	assert_non_null(wire);
	assert_int_equal(ldns_wire2pkt(&pkt, wire, len), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_id(pkt), 0xbeef);
	assert_true(ldns_pkt_rd(pkt));
	assert_false(ldns_pkt_qr(pkt));
	assert_int_equal(ldns_pkt_edns_udp_size(pkt), 1232);
	assert_int_equal(ldns_rr_list_rr_count(ldns_pkt_question(pkt)), 1);
	q = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);
	assert_int_equal(ldns_rr_get_type(q), LDNS_RR_TYPE_MX);
	owner = ldns_rdf2str(ldns_rr_owner(q));
	assert_string_equal(owner, "mx.example.com.");
	free(owner);
	ldns_pkt_free(pkt);
	free(wire);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_sorted),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_cname),
		cmocka_unit_test(test_cname_loop),
		cmocka_unit_test(test_aaaa),
		cmocka_unit_test(test_negative),
		cmocka_unit_test(test_tempfail),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_query_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
