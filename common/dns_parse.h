/*
 * DNS messages for the resolver, built and read with ldns: the query for
 * one (name, type), and the answer turned into what MSG_RES_ANSWER carries
 * (a RES_* status, a TTL, and records as text: MX exchanges sorted by
 * preference, A/AAAA addresses).  Kept apart from the resolver's I/O so
 * that it is unit tested with packets built in the test.
 *
 * Names are handled as text: lowercase, no trailing dot, at most
 * DNS_NAME_MAX octets of letters, digits, '-' and '_' in dot-separated
 * labels of 1..63 octets.
 */
#ifndef MTAD_DNS_PARSE_H
#define MTAD_DNS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX	253
#define DNS_RECS_MAX	64	/* records kept from one answer */
#define DNS_CNAME_MAX	8	/* CNAME links followed in one answer */
#define DNS_NEG_TTL	60	/* negative TTL when no SOA says otherwise */

struct dns_rec {
	uint32_t	 pref;		/* MX preference, 0 for A/AAAA */
	char		*value;		/* host (no trailing dot) or address */
};

struct dns_answer {
	int		 status;	/* RES_* (proto.h) */
	uint32_t	 ttl;
	size_t		 n;
	struct dns_rec	*v;
};

/*
 * Check a name and write its canonical form (lowercase, no trailing dot)
 * into out (at least DNS_NAME_MAX + 1 bytes).  -1 when it is not a valid
 * host name.
 */
int	 dns_name_normalize(const char *in, char *out, size_t outlen);
/* A wire query (RD set; EDNS0 with edns_size when non-zero); free(). */
uint8_t	*dns_query_build(const char *name, int qtype, uint16_t id,
	    uint16_t edns_size, size_t *len);
/* dns_answer_parse() flags */
#define DNS_REPLY_TC		0x1	/* truncated: ask again over TCP */
#define DNS_REPLY_FORMERR	0x2	/* FORMERR: perhaps no EDNS there */

/*
 * Read a reply to the query (id, name, qtype).  -1 when it is not a
 * well-formed reply to that query (to be ignored).  Otherwise 0 with ans
 * filled (free it with dns_answer_clear()) and *flags set; with
 * DNS_REPLY_TC, ans is left empty.
 */
int	 dns_answer_parse(const uint8_t *wire, size_t len, uint16_t id,
	    const char *name, int qtype, struct dns_answer *ans, int *flags);
void	 dns_answer_clear(struct dns_answer *);
void	 dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src);
void	 dns_answer_add(struct dns_answer *, uint32_t pref, const char *value);

#endif
