/*
 * One DNS lookup on the wire.  No libc resolver: the query is built with
 * ldns and sent from a fresh non-blocking UDP socket for every try, so
 * each try has its own kernel-chosen random source port and a random
 * 16-bit id.  A reply counts only when it comes from the server asked
 * (address and port), carries our id and repeats our question; anything
 * else is dropped and the try keeps waiting, so a forged packet costs the
 * attacker a guess, not us an answer.
 *
 * Tries: each nameserver in turn for RESOLVER_ROUNDS rounds, each try
 * RESOLVER_TRY_TIMEOUT seconds.  A timeout, a send error, SERVFAIL or
 * REFUSED moves on to the next try; when none is left the answer is
 * RES_TEMPFAIL.  A truncated reply (TC) is asked again of the same server
 * over TCP (2-byte length prefix, RFC 1035 4.2.2); a FORMERR to a query
 * with EDNS0 is asked again of the same server without it.
 *
 * The first try starts from the event loop, so the callback never runs
 * inside resolver_dns_start().
 */
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns_parse.h"
#include "hostport.h"
#include "log.h"
#include "proto.h"
#include "resolver.h"
#include "xmalloc.h"

#define DNS_UDP_MAX	65536
#define DNS_HDR_LEN	12

struct resolver_query {
	char			 name[DNS_NAME_MAX + 1];
	int			 qtype;
	resolver_dns_cb		 cb;
	void			*arg;

	int			 try;		/* tries started */
	int			 ntries;
	int			 fd;		/* -1 between tries */
	int			 tcp;		/* this try is over TCP */
	uint16_t		 id;
	struct sockaddr_storage	 ns;		/* the server of this try */
	socklen_t		 nslen;
	char			 nsname[HOSTPORT_IPSTRLEN + 8];

	uint8_t			*wire;		/* the query; id set per try */
	size_t			 wirelen;
	int			 edns;		/* the query carries OPT */

	uint8_t			*tbuf;		/* TCP: out, then in */
	size_t			 tlen;		/* bytes expected in tbuf */
	size_t			 tpos;		/* bytes done */
	int			 tphase;	/* TCP_* */

	struct event		 ev_io;
	int			 io_on;
	struct event		 ev_timer;
};

#define TCP_WRITE	0	/* sending length + query */
#define TCP_READ_LEN	1	/* reading the 2-byte length */
#define TCP_READ_MSG	2	/* reading the reply */

static void	resolver_dns_timer(int, short, void *);
static void	resolver_dns_udp_cb(int, short, void *);
static void	resolver_dns_tcp_cb(int, short, void *);
static void	resolver_dns_next(struct resolver_query *);

static const char *
resolver_dns_type(int qtype)
{
	switch (qtype) {
	case RES_T_A:
		return "A";
	case RES_T_AAAA:
		return "AAAA";
	case RES_T_MX:
		return "MX";
	}
	return "?";
}

/* Stop the I/O of the current try and close its socket. */
static void
resolver_dns_close(struct resolver_query *q)
{
	if (q->io_on) {
		event_del(&q->ev_io);
		q->io_on = 0;
	}
	if (q->fd != -1) {
		close(q->fd);
		q->fd = -1;
	}
	free(q->tbuf);
	q->tbuf = NULL;
	q->tcp = 0;
}

/* Watch the socket for flags, with the callback of the transport. */
static void
resolver_dns_watch(struct resolver_query *q, short flags)
{
	if (q->io_on)
		event_del(&q->ev_io);
	event_set(&q->ev_io, q->fd, flags, q->tcp ? resolver_dns_tcp_cb :
	    resolver_dns_udp_cb, q);
	event_add(&q->ev_io, NULL);
	q->io_on = 1;
}

static void
resolver_dns_arm_timer(struct resolver_query *q, int secs)
{
	struct timeval	 tv = { secs, 0 };

	evtimer_del(&q->ev_timer);
	evtimer_add(&q->ev_timer, &tv);
}

static void
resolver_dns_free(struct resolver_query *q)
{
	resolver_dns_close(q);
	evtimer_del(&q->ev_timer);
	free(q->wire);
	free(q);
}

/* The lookup is over: hand the answer over and forget the query. */
static void
resolver_dns_finish(struct resolver_query *q, struct dns_answer *ans)
{
	resolver_dns_cb	 cb = q->cb;
	void		*arg = q->arg;

	resolver_dns_free(q);
	cb(ans, arg);
}

/* Every try failed: answer RES_TEMPFAIL. */
static void
resolver_dns_tempfail(struct resolver_query *q)
{
	struct dns_answer	 ans;

	memset(&ans, 0, sizeof(ans));
	ans.status = RES_TEMPFAIL;
	log_debug("%s %s: no usable answer after %d tries",
	    resolver_dns_type(q->qtype), q->name, q->try);
	resolver_dns_finish(q, &ans);
}

/* (Re)build the wire query, with or without EDNS0. */
static void
resolver_dns_build(struct resolver_query *q, int edns)
{
	free(q->wire);
	q->edns = edns;
	q->wire = dns_query_build(q->name, q->qtype, 0,
	    edns ? RESOLVER_EDNS_SIZE : 0, &q->wirelen);
	if (q->wire == NULL || q->wirelen < DNS_HDR_LEN)
		fatalx("cannot build a query for %s", q->name);
}

/*
 * A reply arrived on this try: finish with it, or move on when the
 * server could not answer.  Returns 1 when TC asks for TCP.
 */
static int
resolver_dns_reply(struct resolver_query *q, const uint8_t *buf, size_t len)
{
	struct dns_answer	 ans;
	int			 flags;

	if (dns_answer_parse(buf, len, q->id, q->name, q->qtype, &ans,
	    &flags) == -1) {
		log_debug("%s %s: ignored a reply from %s that does not "
		    "match", resolver_dns_type(q->qtype), q->name,
		    q->nsname);
		return -1;
	}
	if (flags & DNS_REPLY_TC)
		return 1;
	if ((flags & DNS_REPLY_FORMERR) && q->edns) {
		/* An old server that chokes on the OPT record. */
		log_debug("%s %s: FORMERR from %s, asking again without EDNS",
		    resolver_dns_type(q->qtype), q->name, q->nsname);
		resolver_dns_close(q);
		resolver_dns_build(q, 0);
		q->try--;		/* the same server, not a new try */
		resolver_dns_next(q);
		return 0;
	}
	if (ans.status == RES_TEMPFAIL) {
		log_debug("%s %s: server failure from %s",
		    resolver_dns_type(q->qtype), q->name, q->nsname);
		resolver_dns_close(q);
		resolver_dns_next(q);
		return 0;
	}
	resolver_dns_finish(q, &ans);
	return 0;
}

/* Open a UDP socket to the try's server and send the query. */
static int
resolver_dns_udp_send(struct resolver_query *q)
{
	q->fd = socket(q->ns.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (q->fd == -1) {
		log_warn("socket");
		return -1;
	}
	/* Connected: the kernel already drops datagrams from elsewhere. */
	if (connect(q->fd, (struct sockaddr *)&q->ns, q->nslen) == -1 ||
	    send(q->fd, q->wire, q->wirelen, 0) != (ssize_t)q->wirelen) {
		log_debug("%s %s: send to %s: %s", resolver_dns_type(q->qtype),
		    q->name, q->nsname, strerror(errno));
		resolver_dns_close(q);
		return -1;
	}
	resolver_dns_watch(q, EV_READ | EV_PERSIST);
	return 0;
}

/* Start the next try, or answer RES_TEMPFAIL when none is left. */
static void
resolver_dns_next(struct resolver_query *q)
{
	const struct resolver_ns	*ns;
	size_t				 nns = resolver_ns_count();

	while (q->try < q->ntries && nns > 0) {
		ns = resolver_ns_get((size_t)q->try % nns);
		q->try++;
		memcpy(&q->ns, &ns->ss, sizeof(q->ns));
		q->nslen = ns->sslen;
		snprintf(q->nsname, sizeof(q->nsname), "%s", ns->text);
		q->id = arc4random() & 0xffff;
		q->wire[0] = q->id >> 8;
		q->wire[1] = q->id & 0xff;
		log_debug("%s %s: asking %s (try %d)",
		    resolver_dns_type(q->qtype), q->name, q->nsname, q->try);
		if (resolver_dns_udp_send(q) == 0) {
			resolver_dns_arm_timer(q, RESOLVER_TRY_TIMEOUT);
			return;
		}
	}
	resolver_dns_tempfail(q);
}

/* The try's time is up (or the first try is due): on to the next one. */
static void
resolver_dns_timer(int fd, short ev, void *arg)
{
	struct resolver_query	*q = arg;

	if (q->fd != -1) {
		log_debug("%s %s: timeout from %s%s",
		    resolver_dns_type(q->qtype), q->name, q->nsname,
		    q->tcp ? " over TCP" : "");
		resolver_dns_close(q);
	}
	resolver_dns_next(q);
}

/* Switch the current try to TCP after a truncated UDP reply. */
static void
resolver_dns_tcp_start(struct resolver_query *q)
{
	resolver_dns_close(q);
	log_debug("%s %s: truncated reply from %s, retrying over TCP",
	    resolver_dns_type(q->qtype), q->name, q->nsname);
	q->fd = socket(q->ns.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (q->fd == -1) {
		log_warn("socket");
		resolver_dns_next(q);
		return;
	}
	if (connect(q->fd, (struct sockaddr *)&q->ns, q->nslen) == -1 &&
	    errno != EINPROGRESS) {
		log_debug("%s %s: connect to %s: %s",
		    resolver_dns_type(q->qtype), q->name, q->nsname,
		    strerror(errno));
		resolver_dns_close(q);
		resolver_dns_next(q);
		return;
	}
	q->tcp = 1;
	q->tlen = q->wirelen + 2;
	q->tbuf = xmalloc(q->tlen);
	q->tbuf[0] = q->wirelen >> 8;
	q->tbuf[1] = q->wirelen & 0xff;
	memcpy(q->tbuf + 2, q->wire, q->wirelen);
	q->tpos = 0;
	q->tphase = TCP_WRITE;
	resolver_dns_watch(q, EV_WRITE | EV_PERSIST);
	resolver_dns_arm_timer(q, RESOLVER_TCP_TIMEOUT);
}

/* Datagrams on the try's socket: drain them, keep only a real reply. */
static void
resolver_dns_udp_cb(int fd, short ev, void *arg)
{
	static uint8_t		 buf[DNS_UDP_MAX];
	struct resolver_query	*q = arg;
	struct sockaddr_storage	 from;
	socklen_t		 fromlen;
	ssize_t			 n;
	int			 r;

	for (;;) {
		fromlen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &fromlen);
		if (n == -1) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR)
				return;
			/* ECONNREFUSED from ICMP: nobody serves there. */
			log_debug("%s %s: receive from %s: %s",
			    resolver_dns_type(q->qtype), q->name, q->nsname,
			    strerror(errno));
			resolver_dns_close(q);
			resolver_dns_next(q);
			return;
		}
		if (!hostport_equal((struct sockaddr *)&from,
		    (struct sockaddr *)&q->ns)) {
			log_debug("%s %s: ignored a datagram from elsewhere",
			    resolver_dns_type(q->qtype), q->name);
			continue;
		}
		if ((r = resolver_dns_reply(q, buf, n)) == 1) {
			resolver_dns_tcp_start(q);
			return;
		}
		if (r == 0)
			return;		/* q may be gone */
	}
}

/* A TCP failure ends this try, not the lookup. */
static void
resolver_dns_tcp_fail(struct resolver_query *q, const char *why)
{
	log_debug("%s %s: TCP to %s: %s", resolver_dns_type(q->qtype),
	    q->name, q->nsname, why);
	resolver_dns_close(q);
	resolver_dns_next(q);
}

/* Advance the TCP exchange: write the query, read length, read reply. */
static void
resolver_dns_tcp_cb(int fd, short ev, void *arg)
{
	struct resolver_query	*q = arg;
	ssize_t			 n;
	size_t			 len;

	if (q->tphase == TCP_WRITE)
		n = write(fd, q->tbuf + q->tpos, q->tlen - q->tpos);
	else
		n = read(fd, q->tbuf + q->tpos, q->tlen - q->tpos);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n == -1) {
		resolver_dns_tcp_fail(q, strerror(errno));
		return;
	}
	if (n == 0 && q->tphase != TCP_WRITE) {
		resolver_dns_tcp_fail(q, "connection closed");
		return;
	}
	q->tpos += n;
	if (q->tpos < q->tlen)
		return;
	switch (q->tphase) {
	case TCP_WRITE:
		free(q->tbuf);
		q->tbuf = xmalloc(2);
		q->tlen = 2;
		q->tpos = 0;
		q->tphase = TCP_READ_LEN;
		resolver_dns_watch(q, EV_READ | EV_PERSIST);
		break;
	case TCP_READ_LEN:
		len = (size_t)q->tbuf[0] << 8 | q->tbuf[1];
		if (len < DNS_HDR_LEN) {
			resolver_dns_tcp_fail(q, "short reply");
			return;
		}
		free(q->tbuf);
		q->tbuf = xmalloc(len);
		q->tlen = len;
		q->tpos = 0;
		q->tphase = TCP_READ_MSG;
		break;
	case TCP_READ_MSG:
		/* Over TCP a mismatch or a second TC ends the try. */
		if (resolver_dns_reply(q, q->tbuf, q->tlen) != 0)
			resolver_dns_tcp_fail(q, "unusable reply");
		break;
	}
}

/* A new lookup; its first try starts from the event loop. */
struct resolver_query *
resolver_dns_start(const char *name, int qtype, resolver_dns_cb cb,
    void *arg)
{
	struct resolver_query	*q;
	struct timeval		 now = { 0, 0 };

	q = xcalloc(1, sizeof(*q));
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->qtype = qtype;
	q->cb = cb;
	q->arg = arg;
	q->fd = -1;
	q->ntries = RESOLVER_ROUNDS * (int)resolver_ns_count();
	resolver_dns_build(q, 1);
	evtimer_set(&q->ev_timer, resolver_dns_timer, q);
	evtimer_add(&q->ev_timer, &now);
	return q;
}

void
resolver_dns_cancel(struct resolver_query *q)
{
	resolver_dns_free(q);
}
