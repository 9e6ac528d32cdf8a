/*
 * netaddr: IP addresses and CIDR ranges, without DNS.
 *
 * A range list is the text form of smtp-range: CIDRs separated by ';'
 * (',' and blanks are tolerated), e.g. "127.0.0.0/8;::1/128".  A bare
 * address is a host (/32 or /128); host bits beyond the prefix are
 * ignored, as Postfix's mynetworks does.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, what a dual-stack listener
 * reports for an IPv4 client) are turned into plain IPv4 by
 * netaddr_from_sockaddr(), so "10.0.0.0/8" matches them; an IPv6 range
 * written as ::ffff:10.0.0.0/104 matches them too.
 */
#ifndef MTAD_NETADDR_H
#define MTAD_NETADDR_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* Large enough for any text form produced by netaddr_ntop(). */
#define NETADDR_STRLEN	46

struct netaddr {
	int		 family;	/* AF_INET or AF_INET6 */
	uint8_t		 addr[16];	/* network order; 4 bytes used for IPv4 */
};

struct netaddr_cidr {
	struct netaddr	 net;		/* host bits cleared */
	int		 prefix;	/* 0..32 or 0..128 */
};

struct netaddr_range {
	struct netaddr_cidr	*v;
	size_t			 n;
};

/* From a socket address; IPv4-mapped IPv6 becomes IPv4.  -1: not IP. */
int		 netaddr_from_sockaddr(struct netaddr *, const struct sockaddr *);
/* Parse a textual IPv4 or IPv6 address.  -1 on error. */
int		 netaddr_parse(struct netaddr *, const char *);
/* Text form into buf (at least NETADDR_STRLEN bytes); returns buf. */
const char	*netaddr_ntop(const struct netaddr *, char *buf, size_t len);

/* Parse "a/n;b/m"; -1 with an allocated *cause on error. */
int		 netaddr_range_parse(struct netaddr_range *, const char *spec,
		    char **cause);
void		 netaddr_range_clear(struct netaddr_range *);
/* Non-zero when the address lies inside one of the range's CIDRs. */
int		 netaddr_range_match(const struct netaddr_range *,
		    const struct netaddr *);

#endif
