/*
 * netaddr: IP addresses and CIDR range lists (smtp-range).  See netaddr.h.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "xmalloc.h"

static const uint8_t	v4mapped_prefix[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

int
netaddr_from_sockaddr(struct netaddr *na, const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;

	memset(na, 0, sizeof(*na));
	switch (sa->sa_family) {
	case AF_INET:
		sin = (const struct sockaddr_in *)sa;
		na->family = AF_INET;
		memcpy(na->addr, &sin->sin_addr, 4);
		return 0;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)sa;
		if (memcmp(&sin6->sin6_addr, v4mapped_prefix, 12) == 0) {
			/* A dual-stack socket's view of an IPv4 client. */
			na->family = AF_INET;
			memcpy(na->addr, (const uint8_t *)&sin6->sin6_addr + 12,
			    4);
		} else {
			na->family = AF_INET6;
			memcpy(na->addr, &sin6->sin6_addr, 16);
		}
		return 0;
	default:
		return -1;
	}
}

int
netaddr_parse(struct netaddr *na, const char *s)
{
	memset(na, 0, sizeof(*na));
	if (inet_pton(AF_INET, s, na->addr) == 1) {
		na->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, na->addr) == 1) {
		na->family = AF_INET6;
		return 0;
	}
	return -1;
}

const char *
netaddr_ntop(const struct netaddr *na, char *buf, size_t len)
{
	if (inet_ntop(na->family, na->addr, buf, len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

/* Clear the bits past the prefix so that matching is a plain compare. */
static void
netaddr_mask(uint8_t *addr, int prefix, int bytes)
{
	int	i;

	for (i = 0; i < bytes; i++) {
		if (prefix >= 8)
			prefix -= 8;
		else {
			addr[i] &= (uint8_t)(0xff00 >> prefix);
			prefix = 0;
		}
	}
}

/* Does addr (bytes long) fall inside net/prefix? */
static int
netaddr_prefix_eq(const uint8_t *addr, const uint8_t *net, int prefix)
{
	int	full = prefix / 8, rest = prefix % 8;
	uint8_t	mask;

	if (memcmp(addr, net, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	mask = (uint8_t)(0xff00 >> rest);
	return (addr[full] & mask) == net[full];
}

/* Parse one "addr[/prefix]" entry (NUL-terminated, already trimmed). */
static int
netaddr_cidr_parse(struct netaddr_cidr *c, const char *s)
{
	char		 addr[NETADDR_STRLEN], *end;
	const char	*slash;
	long		 prefix, max;
	size_t		 len;

	slash = strchr(s, '/');
	len = slash != NULL ? (size_t)(slash++ - s) : strlen(s);
	if (len >= sizeof(addr))
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';
	if (netaddr_parse(&c->net, addr) == -1)
		return -1;
	max = c->net.family == AF_INET ? 32 : 128;
	if (slash == NULL)
		prefix = max;
	else {
		if (!isdigit((unsigned char)*slash) || strlen(slash) > 3)
			return -1;
		prefix = strtol(slash, &end, 10);
		if (*end != '\0' || prefix > max)
			return -1;
	}
	c->prefix = (int)prefix;
	netaddr_mask(c->net.addr, c->prefix, (int)max / 8);
	return 0;
}

int
netaddr_range_parse(struct netaddr_range *r, const char *spec, char **cause)
{
	char		*copy, *p, *tok;
	struct netaddr_cidr c;

	r->v = NULL;
	r->n = 0;
	copy = xstrdup(spec);
	p = copy;
	while ((tok = strsep(&p, ";, \t\r\n")) != NULL) {
		if (*tok == '\0')
			continue;
		if (netaddr_cidr_parse(&c, tok) == -1) {
			xasprintf(cause, "bad address or CIDR \"%s\"", tok);
			free(copy);
			netaddr_range_clear(r);
			return -1;
		}
		r->v = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
		r->v[r->n++] = c;
	}
	free(copy);
	return 0;
}

void
netaddr_range_clear(struct netaddr_range *r)
{
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

/* One CIDR against one address, across the IPv4/IPv4-mapped forms. */
static int
netaddr_cidr_match(const struct netaddr_cidr *c, const struct netaddr *a)
{
	uint8_t	 mapped[16];

	if (c->net.family == a->family)
		return netaddr_prefix_eq(a->addr, c->net.addr, c->prefix);
	if (c->net.family == AF_INET6 && a->family == AF_INET) {
		memcpy(mapped, v4mapped_prefix, 12);
		memcpy(mapped + 12, a->addr, 4);
		return netaddr_prefix_eq(mapped, c->net.addr, c->prefix);
	}
	/* An IPv4 CIDR and a mapped address that was not normalised. */
	if (c->net.family == AF_INET && a->family == AF_INET6 &&
	    memcmp(a->addr, v4mapped_prefix, 12) == 0)
		return netaddr_prefix_eq(a->addr + 12, c->net.addr, c->prefix);
	return 0;
}

int
netaddr_range_match(const struct netaddr_range *r, const struct netaddr *a)
{
	size_t	i;

	for (i = 0; i < r->n; i++)
		if (netaddr_cidr_match(&r->v[i], a))
			return 1;
	return 0;
}
