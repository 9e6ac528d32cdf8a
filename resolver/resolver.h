/*
 * resolver: the DNS process.  smtp workers and qmgr send MSG_RES_QUERY
 * (MX, A, AAAA); the answer comes back as MSG_RES_ANSWER with the same
 * peer id.  Lookups go to the configured nameservers over UDP (TCP when
 * the reply is truncated) with ldns building and reading the packets;
 * answers are cached by (type, name) for their TTL.
 *
 *   resolver.c		entry, peers, MSG_RES_QUERY -> MSG_RES_ANSWER
 *   resolver_ns.c	the nameserver list (config or resolv.conf)
 *   resolver_dns.c	one lookup: tries, timeouts, UDP/TCP I/O
 *   resolver_cache.c	the answer cache
 */
#ifndef MTAD_RESOLVER_H
#define MTAD_RESOLVER_H

#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

#include "dns_parse.h"

#define RESOLVER_TRY_TIMEOUT	2	/* seconds per UDP try */
#define RESOLVER_TCP_TIMEOUT	5	/* seconds for a TCP exchange */
#define RESOLVER_ROUNDS		2	/* passes over the nameservers */
#define RESOLVER_EDNS_SIZE	1232	/* advertised UDP payload size */
#define RESOLVER_CACHE_MAX	10000	/* cached answers */
#define RESOLVER_TTL_MIN	5
#define RESOLVER_TTL_MAX	86400

struct resolver_ns {
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			*text;		/* as configured, for logs */
};

struct conf;
struct resolver_query;

/* resolver_ns.c */
/* The list from the config, or from /etc/resolv.conf when empty. */
void		 resolver_ns_configure(const struct conf *);
/* A reload: a new list from the config, kept when the config has none. */
void		 resolver_ns_reload(const struct conf *);
size_t		 resolver_ns_count(void);
const struct resolver_ns *resolver_ns_get(size_t);

/* resolver_dns.c: the answer is the callee's to clear after the call. */
typedef void	(*resolver_dns_cb)(struct dns_answer *, void *);
struct resolver_query *resolver_dns_start(const char *name, int qtype,
		    resolver_dns_cb, void *);
void		 resolver_dns_cancel(struct resolver_query *);

/* resolver_cache.c */
void		 resolver_cache_init(size_t max);
/* A copy of the cached answer, ttl counting down; -1 when not cached. */
int		 resolver_cache_get(int qtype, const char *name,
		    struct dns_answer *);
void		 resolver_cache_put(int qtype, const char *name,
		    const struct dns_answer *);
/* Clamp a TTL to [RESOLVER_TTL_MIN, RESOLVER_TTL_MAX]. */
uint32_t	 resolver_cache_ttl(uint32_t);

#endif
