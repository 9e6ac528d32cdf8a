/*
 * proxy: the PROXY protocol header (HAProxy v1 and v2) that a client in
 * smtp-proxy must send before anything else.
 *
 * Such a session starts in S_PROXY with no greeting.  The header is read
 * with MSG_PEEK and then consumed exactly up to its end (the parser in
 * common/proxy_parse.c says how far it goes), so the first octet after it
 * stays in the socket: on a smtp-secure-port that is the TLS ClientHello,
 * which OpenSSL must read itself.  Octets that are all header so far are
 * consumed at once, so a peek never sees the same bytes twice and a slow
 * sender cannot make us spin.
 *
 * The header's source and destination then replace the peer and local
 * address of the session for everything: smtp-range, AUTH's loopback
 * rule, logs, the Received: header and the local IP stored with the
 * message.  A LOCAL (v2) or UNKNOWN (v1) header keeps the connection's
 * own addresses.  No header within SMTPD_PROXY_TIMEOUT seconds, a
 * malformed or overlong one, or EOF: the connection is dropped without a
 * word, with a log line.  A client outside smtp-proxy never gets here:
 * a header it sends is an unknown SMTP command.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "proxy_parse.h"
#include "smtpd.h"

/* Drop the connection: the header is missing or bad. */
static void
proxy_drop(struct session *s, const char *why)
{
	log_info("PROXY header from [%s] refused: %s; connection dropped",
	    s->peer_ip, why);
	s->flags |= SF_ENDED;
	session_free(s);
}

/* ::ffff:a.b.c.d is a.b.c.d, as netaddr_from_sockaddr() does. */
static void
proxy_unmap(struct netaddr *na)
{
	static const uint8_t	mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	if (na->family == AF_INET6 && memcmp(na->addr, mapped, 12) == 0) {
		memmove(na->addr, na->addr + 12, 4);
		memset(na->addr + 4, 0, 12);
		na->family = AF_INET;
	}
}

/* Take the header's addresses in place of the connection's. */
static void
proxy_apply(struct session *s, struct proxy_hdr *hdr)
{
	memcpy(s->proxy_ip, s->peer_ip, sizeof(s->proxy_ip));
	if (hdr->local) {
		log_info("PROXY v%d from [%s]: no addresses, keeping the "
		    "connection's", hdr->version, s->proxy_ip);
		return;
	}
	proxy_unmap(&hdr->src);
	proxy_unmap(&hdr->dst);
	s->peer = hdr->src;
	netaddr_ntop(&hdr->src, s->peer_ip, sizeof(s->peer_ip));
	netaddr_ntop(&hdr->dst, s->local_ip, sizeof(s->local_ip));
	s->flags |= SF_PROXIED;
	log_info("PROXY v%d from [%s]: client [%s]:%u, server [%s]:%u",
	    hdr->version, s->proxy_ip, s->peer_ip, hdr->sport, s->local_ip,
	    hdr->dport);
}

/* S_PROXY and readable: take what is there of the header. */
void
proxy_input(struct session *s)
{
	struct proxy_hdr	 hdr;
	const char		*why;
	size_t			 hdrlen, take;
	ssize_t			 n;
	int			 r;

	n = recv(s->fd, s->inbuf + s->inlen, PROXY_MAX - s->inlen, MSG_PEEK);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		proxy_drop(s, strerror(errno));
		return;
	}
	if (n == 0) {
		proxy_drop(s, "connection closed before the header");
		return;
	}
	r = proxy_parse(s->inbuf, s->inlen + (size_t)n, &hdr, &hdrlen, &why);
	if (r == PROXY_BAD) {
		proxy_drop(s, why);
		return;
	}
	take = r == PROXY_OK ? hdrlen - s->inlen : (size_t)n;
	/* The peeked octets are there: this read cannot come up short. */
	if (recv(s->fd, s->inbuf + s->inlen, take, 0) != (ssize_t)take) {
		proxy_drop(s, "short read");
		return;
	}
	s->inlen += take;
	if (r == PROXY_MORE)
		return;
	s->inoff = s->inlen = 0;
	proxy_apply(s, &hdr);
	session_start(s);
}
