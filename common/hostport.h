/*
 * Numeric socket addresses written as text, as the config and the
 * protocol carry them: "192.0.2.1", "192.0.2.1:53", "[2001:db8::1]:53",
 * "[2001:db8::1]" or a bare "2001:db8::1" (which then has no port).
 * Nothing here resolves a name.
 */
#ifndef MTAD_HOSTPORT_H
#define MTAD_HOSTPORT_H

#include <sys/socket.h>

#include <stddef.h>

#define HOSTPORT_IPSTRLEN	46	/* INET6_ADDRSTRLEN */

/* "ip", "ip:port", "[ip6]:port"; port defport when absent.  -1 on error. */
int		 hostport_parse(const char *, int defport,
		    struct sockaddr_storage *, socklen_t *);
/* An IP address alone, brackets allowed, with the given port. -1: not one. */
int		 hostport_ip(const char *, int port,
		    struct sockaddr_storage *, socklen_t *);
/* The address as text (no port) into buf. */
const char	*hostport_ntop(const struct sockaddr *, char *buf, size_t len);
int		 hostport_port(const struct sockaddr *);
/* Non-zero when the address is the wildcard 0.0.0.0 or ::. */
int		 hostport_is_any(const struct sockaddr *);
/* Same family, address and port. */
int		 hostport_equal(const struct sockaddr *,
		    const struct sockaddr *);

#endif
