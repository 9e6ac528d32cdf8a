/*
 * Listening sockets: bound by the master (it may need root for port 25) and
 * handed to smtpd, again after every smtpd restart.  An empty smtp-ip binds
 * the IPv6 wildcard with IPV6_V6ONLY off, so one socket takes IPv4 and IPv6;
 * without IPv6 it falls back to 0.0.0.0.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "proto.h"
#include "xmalloc.h"

/* Bind one address:port; fatal with the address named when it fails. */
static int
listen_one(const char *ip, int port, int *dual)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 len;
	int			 fd, on = 1, off = 0;

	memset(&ss, 0, sizeof(ss));
	*dual = 0;
	if (*ip == '\0') {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
		*dual = 1;
	} else if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else
		fatalx("smtp-ip: %s is not an IPv4 or IPv6 address", ip);

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1 && *dual && errno == EAFNOSUPPORT) {
		/* No IPv6 on this host: the IPv4 wildcard will do. */
		memset(&ss, 0, sizeof(ss));
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
		*dual = 0;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	}
	if (fd == -1)
		fatal("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, *dual ? &off : &on,
		    sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, len) == -1)
		fatal("bind %s port %d", *ip ? ip : "*", port);
	if (listen(fd, 1024) == -1)
		fatal("listen %s port %d", *ip ? ip : "*", port);
	return fd;
}

/* Remember a bound socket for handing to smtpd. */
static void
listen_add(int fd, uint32_t flags, const char *ip, int port)
{
	struct listener	*l;

	mtad->listeners = xreallocarray(mtad->listeners,
	    mtad->nlisteners + 1, sizeof(*l));
	l = &mtad->listeners[mtad->nlisteners++];
	l->fd = fd;
	l->flags = flags;
	if (*ip == '\0')
		snprintf(l->addr, sizeof(l->addr), "*:%d", port);
	else if (strchr(ip, ':') != NULL)
		snprintf(l->addr, sizeof(l->addr), "[%s]:%d", ip, port);
	else
		snprintf(l->addr, sizeof(l->addr), "%s:%d", ip, port);
	log_info("listening on %s%s", l->addr,
	    (flags & LISTENER_TLS) ? " (TLS)" : "");
}

/* Bind every port of a list on every address of smtp-ip. */
static void
listen_ports(const struct conf_intlist *ports, uint32_t flags)
{
	char	*ips, *ip, *save = NULL;
	size_t	 i;
	int	 fd, dual;

	for (i = 0; i < ports->n; i++) {
		ips = xstrdup(mtad->conf->smtp_ip);
		if (*ips == '\0') {
			fd = listen_one("", ports->v[i], &dual);
			listen_add(fd, flags, "", ports->v[i]);
		}
		for (ip = strtok_r(ips, ";, ", &save); ip != NULL;
		    ip = strtok_r(NULL, ";, ", &save)) {
			fd = listen_one(ip, ports->v[i], &dual);
			listen_add(fd, flags, ip, ports->v[i]);
		}
		free(ips);
	}
}

void
master_listen(void)
{
	listen_ports(&mtad->conf->smtp_port, 0);
	listen_ports(&mtad->conf->smtp_secure_port, LISTENER_TLS);
}

void
master_listen_close(void)
{
	size_t	 i;

	for (i = 0; i < mtad->nlisteners; i++)
		if (mtad->listeners[i].fd != -1) {
			close(mtad->listeners[i].fd);
			mtad->listeners[i].fd = -1;
		}
}
