/*
 * DNS query building and answer reading with ldns (see dns_parse.h).
 *
 * The answer comes from the network: it is accepted only when it is a
 * response (QR) to a standard query with our id and our one question.
 * Records are taken from the answer section by owner name, starting at the
 * question and following CNAMEs present in the same section (a bounded
 * number of links).  The TTL is the smallest along that chain; a negative
 * answer takes the SOA minimum from the authority section (RFC 2308).
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns_parse.h"
#include "proto.h"
#include "xmalloc.h"

/* Letters, digits, '-' and '_': what a host name label may hold here. */
static int
dns_label_char(int c)
{
	return isalnum(c) || c == '-' || c == '_';
}

/* Validate a host name and lowercase it, without the trailing dot. */
int
dns_name_normalize(const char *in, char *out, size_t outlen)
{
	size_t	 len = strlen(in), i, label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX || len >= outlen)
		return -1;
	for (i = 0; i < len; i++) {
		if (in[i] == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (!dns_label_char((unsigned char)in[i]) ||
		    ++label > 63)
			return -1;
		out[i] = tolower((unsigned char)in[i]);
	}
	if (label == 0)
		return -1;
	out[len] = '\0';
	return 0;
}

/*
 * A wire-format domain name as canonical text without the trailing dot
 * ("." for the root); -1 when it holds characters a host name cannot.
 */
static int
dns_dname_str(const ldns_rdf *rdf, char *out, size_t outlen)
{
	const uint8_t	*d;
	size_t		 size, i = 0, o = 0, l, j;

	if (rdf == NULL || ldns_rdf_get_type(rdf) != LDNS_RDF_TYPE_DNAME)
		return -1;
	d = ldns_rdf_data(rdf);
	size = ldns_rdf_size(rdf);
	while (i < size && d[i] != 0) {
		l = d[i++];
		if (l > 63 || i + l > size)
			return -1;
		if (o > 0)
			out[o++] = '.';
		if (o + l >= outlen || o + l > DNS_NAME_MAX)
			return -1;
		for (j = 0; j < l; j++) {
			if (!dns_label_char(d[i + j]))
				return -1;
			out[o++] = tolower(d[i + j]);
		}
		i += l;
	}
	if (o == 0) {
		if (outlen < 2)
			return -1;
		out[o++] = '.';
	}
	out[o] = '\0';
	return 0;
}

/* One question, RD set, optionally EDNS0: the wire bytes. */
uint8_t *
dns_query_build(const char *name, int qtype, uint16_t id, uint16_t edns_size,
    size_t *len)
{
	ldns_rdf	*dname;
	ldns_pkt	*pkt;
	uint8_t		*wire = NULL;

	if ((dname = ldns_dname_new_frm_str(name)) == NULL)
		return NULL;
	/* The packet takes the name over. */
	pkt = ldns_pkt_query_new(dname, (ldns_rr_type)qtype, LDNS_RR_CLASS_IN,
	    LDNS_RD);
	if (pkt == NULL) {
		ldns_rdf_deep_free(dname);
		return NULL;
	}
	ldns_pkt_set_id(pkt, id);
	if (edns_size != 0)
		ldns_pkt_set_edns_udp_size(pkt, edns_size);
	if (ldns_pkt2wire(&wire, pkt, len) != LDNS_STATUS_OK)
		wire = NULL;
	ldns_pkt_free(pkt);
	return wire;
}

void
dns_answer_clear(struct dns_answer *a)
{
	size_t	 i;

	for (i = 0; i < a->n; i++)
		free(a->v[i].value);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

void
dns_answer_add(struct dns_answer *a, uint32_t pref, const char *value)
{
	a->v = xreallocarray(a->v, a->n + 1, sizeof(*a->v));
	a->v[a->n].pref = pref;
	a->v[a->n].value = xstrdup(value);
	a->n++;
}

void
dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src)
{
	size_t	 i;

	memset(dst, 0, sizeof(*dst));
	dst->status = src->status;
	dst->ttl = src->ttl;
	for (i = 0; i < src->n; i++)
		dns_answer_add(dst, src->v[i].pref, src->v[i].value);
}

/* Is this the reply to our question?  Only the header and question. */
static int
dns_check_reply(const ldns_pkt *pkt, uint16_t id, const char *name,
    int qtype)
{
	const ldns_rr_list	*q;
	const ldns_rr		*rr;
	char			 owner[DNS_NAME_MAX + 2];
	ldns_pkt_rcode		 rcode = ldns_pkt_get_rcode(pkt);

	if (ldns_pkt_id(pkt) != id || !ldns_pkt_qr(pkt) ||
	    ldns_pkt_get_opcode(pkt) != LDNS_PACKET_QUERY)
		return -1;
	q = ldns_pkt_question(pkt);
	/* Some servers drop the question from an error reply. */
	if (ldns_rr_list_rr_count(q) == 0 && rcode != LDNS_RCODE_NOERROR &&
	    rcode != LDNS_RCODE_NXDOMAIN)
		return 0;
	if (ldns_rr_list_rr_count(q) != 1)
		return -1;
	rr = ldns_rr_list_rr(q, 0);
	if ((int)ldns_rr_get_type(rr) != qtype ||
	    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
	    dns_dname_str(ldns_rr_owner(rr), owner, sizeof(owner)) == -1 ||
	    strcmp(owner, name) != 0)
		return -1;
	return 0;
}

/* Add one record of the asked type as text; 0 when it was skipped. */
static int
dns_add_rr(struct dns_answer *a, const ldns_rr *rr, int qtype)
{
	const ldns_rdf	*rdf;
	char		 buf[DNS_NAME_MAX + 2];
	uint32_t	 pref;

	if (a->n >= DNS_RECS_MAX)
		return 0;
	switch (qtype) {
	case RES_T_A:
	case RES_T_AAAA:
		if (ldns_rr_rd_count(rr) != 1)
			return 0;
		rdf = ldns_rr_rdf(rr, 0);
		if (ldns_rdf_size(rdf) != (qtype == RES_T_A ? 4u : 16u) ||
		    inet_ntop(qtype == RES_T_A ? AF_INET : AF_INET6,
		    ldns_rdf_data(rdf), buf, sizeof(buf)) == NULL)
			return 0;
		pref = 0;
		break;
	case RES_T_MX:
		if (ldns_rr_rd_count(rr) != 2 ||
		    ldns_rdf_get_type(ldns_rr_rdf(rr, 0)) !=
		    LDNS_RDF_TYPE_INT16 ||
		    dns_dname_str(ldns_rr_rdf(rr, 1), buf, sizeof(buf)) == -1)
			return 0;
		pref = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
		break;
	default:
		return 0;
	}
	dns_answer_add(a, pref, buf);
	return 1;
}

/*
 * Walk the answer section from the question name through CNAMEs and
 * collect the records of qtype; the chain's smallest TTL into *ttl, the
 * number of records of qtype found (usable or not) into *seen.
 */
static void
dns_collect(const ldns_pkt *pkt, const char *name, int qtype,
    struct dns_answer *a, uint32_t *ttl, size_t *seen)
{
	const ldns_rr_list	*an = ldns_pkt_answer(pkt);
	const ldns_rr		*rr, *cname;
	char			 target[DNS_NAME_MAX + 2];
	char			 owner[DNS_NAME_MAX + 2];
	size_t			 i, hops;

	*ttl = UINT32_MAX;
	*seen = 0;
	snprintf(target, sizeof(target), "%s", name);
	for (hops = 0; hops <= DNS_CNAME_MAX; hops++) {
		cname = NULL;
		for (i = 0; i < ldns_rr_list_rr_count(an); i++) {
			rr = ldns_rr_list_rr(an, i);
			if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
			    dns_dname_str(ldns_rr_owner(rr), owner,
			    sizeof(owner)) == -1 || strcmp(owner, target) != 0)
				continue;
			if ((int)ldns_rr_get_type(rr) == qtype) {
				(*seen)++;
				if (dns_add_rr(a, rr, qtype) &&
				    ldns_rr_ttl(rr) < *ttl)
					*ttl = ldns_rr_ttl(rr);
			} else if (ldns_rr_get_type(rr) ==
			    LDNS_RR_TYPE_CNAME && ldns_rr_rd_count(rr) == 1)
				cname = rr;
		}
		if (*seen > 0 || cname == NULL)
			return;
		if (dns_dname_str(ldns_rr_rdf(cname, 0), target,
		    sizeof(target)) == -1)
			return;
		if (ldns_rr_ttl(cname) < *ttl)
			*ttl = ldns_rr_ttl(cname);
	}
}

/* The negative TTL: min(SOA TTL, SOA minimum) from the authority section. */
static uint32_t
dns_negative_ttl(const ldns_pkt *pkt)
{
	const ldns_rr_list	*ns = ldns_pkt_authority(pkt);
	const ldns_rr		*rr;
	uint32_t		 min;
	size_t			 i;

	for (i = 0; i < ldns_rr_list_rr_count(ns); i++) {
		rr = ldns_rr_list_rr(ns, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA ||
		    ldns_rr_rd_count(rr) < 7 ||
		    ldns_rdf_size(ldns_rr_rdf(rr, 6)) != 4)
			continue;
		min = ldns_rdf2native_int32(ldns_rr_rdf(rr, 6));
		return min < ldns_rr_ttl(rr) ? min : ldns_rr_ttl(rr);
	}
	return DNS_NEG_TTL;
}

/* Sort MX records by preference, keeping the server's order on ties. */
static void
dns_sort_mx(struct dns_answer *a)
{
	struct dns_rec	 t;
	size_t		 i, j;

	for (i = 1; i < a->n; i++) {
		t = a->v[i];
		for (j = i; j > 0 && a->v[j - 1].pref > t.pref; j--)
			a->v[j] = a->v[j - 1];
		a->v[j] = t;
	}
}

/*
 * RFC 7505: an MX whose exchange is the root means "no mail".  Alone it is
 * a null MX, answered as the one value "."; mixed with real hosts it is
 * dropped, as it names no host to try.
 */
static void
dns_null_mx(struct dns_answer *a)
{
	size_t	 i, o = 0, roots = 0;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].value, ".") == 0)
			roots++;
	if (roots == 0 || roots == a->n) {
		if (roots > 1) {
			for (i = 1; i < a->n; i++)
				free(a->v[i].value);
			a->n = 1;
		}
		if (roots > 0)
			a->v[0].pref = 0;
		return;
	}
	for (i = 0; i < a->n; i++) {
		if (strcmp(a->v[i].value, ".") == 0)
			free(a->v[i].value);
		else
			a->v[o++] = a->v[i];
	}
	a->n = o;
}

/* Check the reply is ours, then turn it into a status and records. */
int
dns_answer_parse(const uint8_t *wire, size_t len, uint16_t id,
    const char *name, int qtype, struct dns_answer *ans, int *flags)
{
	ldns_pkt	*pkt = NULL;
	uint32_t	 ttl;
	size_t		 seen;

	memset(ans, 0, sizeof(*ans));
	*flags = 0;
	if (ldns_wire2pkt(&pkt, wire, len) != LDNS_STATUS_OK)
		return -1;
	if (dns_check_reply(pkt, id, name, qtype) == -1) {
		ldns_pkt_free(pkt);
		return -1;
	}
	if (ldns_pkt_tc(pkt)) {
		*flags |= DNS_REPLY_TC;
		ldns_pkt_free(pkt);
		return 0;
	}
	switch (ldns_pkt_get_rcode(pkt)) {
	case LDNS_RCODE_NOERROR:
		dns_collect(pkt, name, qtype, ans, &ttl, &seen);
		if (seen > 0 && ans->n == 0) {
			/* Records we cannot use (bad names): not "none". */
			ans->status = RES_TEMPFAIL;
		} else if (ans->n > 0) {
			ans->status = RES_OK;
			ans->ttl = ttl;
			if (qtype == RES_T_MX) {
				dns_null_mx(ans);
				dns_sort_mx(ans);
			}
		} else {
			ans->status = RES_NODATA;
			ans->ttl = dns_negative_ttl(pkt);
		}
		break;
	case LDNS_RCODE_NXDOMAIN:
		ans->status = RES_NXDOMAIN;
		ans->ttl = dns_negative_ttl(pkt);
		break;
	default:
		/* SERVFAIL, REFUSED, FORMERR...: this server cannot say. */
		if (ldns_pkt_get_rcode(pkt) == LDNS_RCODE_FORMERR)
			*flags |= DNS_REPLY_FORMERR;
		ans->status = RES_TEMPFAIL;
		ans->ttl = 0;
		break;
	}
	ldns_pkt_free(pkt);
	return 0;
}
