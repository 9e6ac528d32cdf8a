/*
 * Opening an outbound TCP connection: non-blocking, bound to the job's
 * source address (DESIGN section 5), so that replies and reputation
 * follow that address.
 *
 * The source is one of the message's "ips" (x-mq-ip) when it has any:
 * the first of the destination's family, counted from the job's place
 * in the rotation, so that a list spreads the jobs over its addresses.
 * Else it is the local address the message came in on, except a
 * loopback one for a destination that is not on loopback (mail submitted
 * on 127.0.0.1 goes out to the world; the kernel would refuse that
 * pair).  A wildcard (0.0.0.0, ::), an empty address or one of another
 * family than the destination means "any".
 *
 * An address that cannot be bound (not on this machine...) is never
 * replaced by another one behind the user's back: the job is deferred
 * with the reason (issue 4).  The address the message came in on is the
 * socket's own local address, so normally it can be bound: behind a
 * PROXY-protocol load balancer, smtpd reports the header's destination
 * as the message's local IP but qmgr sends the socket's address here.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "counter.h"
#include "hostport.h"
#include "log.h"
#include "smtp.h"
#include "smtp_auth.h"

/*
 * The address text s for a connection to dst: -1 not of its family (or
 * not an address), 0 the wildcard of its family, 1 an address to bind.
 */
static int
smtp_conn_fits(const char *s, const struct sockaddr *dst, int *loopback)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;

	if (hostport_ip(s, 0, &ss, &len) == -1 ||
	    ss.ss_family != dst->sa_family)
		return -1;
	if (hostport_is_any((struct sockaddr *)&ss))
		return 0;
	*loopback = smtp_auth_loopback((struct sockaddr *)&ss);
	return 1;
}

const char *
smtp_conn_source(const struct smtp_job *job, const struct sockaddr *dst)
{
	size_t	 i, k;
	int	 lo = 0;

	if (job->nips > 0) {
		/* The first of dst's family, counted from the job's turn. */
		for (i = 0; i < job->nips; i++) {
			k = (job->ipfirst + i) % job->nips;
			switch (smtp_conn_fits(job->ips[k], dst, &lo)) {
			case 0:
				return "";
			case 1:
				return job->ips[k];
			}
		}
		return "";
	}
	if (smtp_conn_fits(job->source, dst, &lo) != 1 ||
	    (lo && !smtp_auth_loopback(dst)))
		return "";
	return job->source;
}

/* Bind fd to source ("": nothing to do); -1 with *why when it fails. */
static int
smtp_conn_bind(int fd, const char *source, char *why, size_t whylen)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 on = 1;

	if (source[0] == '\0')
		return 0;
	if (hostport_ip(source, 0, &ss, &len) == -1) {
		snprintf(why, whylen, "cannot bind source address %s: not an "
		    "IP address", source);
		return -1;
	}
#ifdef IP_BIND_ADDRESS_NO_PORT
	/* Let connect() pick the port: binding first would pin one. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
	    sizeof(on));
#else
	(void)on;
#endif
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		snprintf(why, whylen, "cannot bind source address %s: %s",
		    source, strerror(errno));
		return -1;
	}
	return 0;
}

/* A non-blocking socket connecting to d; -1 or -2 with *why. */
int
smtp_conn_open(const char *id, const struct smtp_dest *d, char *why,
    size_t whylen)
{
	char	 ip[HOSTPORT_IPSTRLEN];
	int	 fd, on = 1;

	fd = socket(d->sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	/*
	 * Writes are whole buffers already; with Nagle the final ".\r\n"
	 * waited for the ACK of the body, which the server delays: ~40 ms
	 * per delivery (BENCHMARKS.md).
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		log_debug("%s: TCP_NODELAY: %s", id, strerror(errno));
	if (smtp_conn_bind(fd, d->source, why, whylen) == -1) {
		close(fd);
		return -2;
	}
	if (connect(fd, d->sa, d->salen) == -1 && errno != EINPROGRESS) {
		snprintf(why, whylen, "connect to %s[%s]:%d%s%s: %s", d->name,
		    hostport_ntop(d->sa, ip, sizeof(ip)), hostport_port(d->sa),
		    d->source[0] != '\0' ? " from " : "", d->source,
		    strerror(errno));
		close(fd);
		return -1;
	}
	counter_add(COUNTER_CONN_OUT, 1);	/* mtactl stats */
	return fd;
}
