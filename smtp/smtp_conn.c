/*
 * Opening an outbound TCP connection: non-blocking, bound to the job's
 * source address when it names one (the local IP the message came in on,
 * or x-mq-ip), so that replies and reputation follow that address.  A
 * source of another family than the destination, or the wildcard, means
 * "any"; an address that is not (or no longer) ours falls back to any.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hostport.h"
#include "log.h"
#include "smtp.h"

/* Bind fd to source when it applies; failures fall back to any. */
static void
smtp_conn_bind(int fd, const struct sockaddr *dst, const char *source)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	char			 ip[HOSTPORT_IPSTRLEN];
	int			 on = 1;

	if (source[0] == '\0')
		return;
	if (hostport_ip(source, 0, &ss, &len) == -1) {
		log_debug("source address %s is not an IP address: using any",
		    source);
		return;
	}
	if (ss.ss_family != dst->sa_family ||
	    hostport_is_any((struct sockaddr *)&ss))
		return;
#ifdef IP_BIND_ADDRESS_NO_PORT
	/* Let connect() pick the port: binding first would pin one. */
	(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
	    sizeof(on));
#else
	(void)on;
#endif
	if (bind(fd, (struct sockaddr *)&ss, len) == -1) {
		if (errno == EADDRNOTAVAIL)
			log_debug("source address %s not available: using any",
			    hostport_ntop((struct sockaddr *)&ss, ip,
			    sizeof(ip)));
		else
			log_warn("bind %s", hostport_ntop((struct sockaddr *)
			    &ss, ip, sizeof(ip)));
	}
}

/* A non-blocking socket connecting to dst; -1 with *why on failure. */
int
smtp_conn_open(const char *host, const struct sockaddr *dst, socklen_t len,
    const char *source, char *why, size_t whylen)
{
	char	 ip[HOSTPORT_IPSTRLEN];
	int	 fd;

	fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	smtp_conn_bind(fd, dst, source);
	if (connect(fd, dst, len) == -1 && errno != EINPROGRESS) {
		snprintf(why, whylen, "connect to %s[%s]:%d: %s", host,
		    hostport_ntop(dst, ip, sizeof(ip)), hostport_port(dst),
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}
