/*
 * listener: the listening sockets the master bound and passed over.
 *
 * Accepting is nonblocking and bounded per wake-up, so one busy port
 * cannot starve the sessions.  When the process runs out of descriptors
 * the listeners pause for a second instead of spinning on EMFILE (the
 * pending connection stays in the kernel backlog until then).
 *
 * A listener with LISTENER_TLS (smtp-secure-port) speaks TLS from the
 * first byte: its sessions start TLS before the greeting (RFC 8314).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "counter.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"
#include "smtpd.h"

#define LISTENER_ACCEPT_BURST	32	/* accepts per wake-up */
#define LISTENER_PAUSE		1	/* seconds, after EMFILE */

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	int			 fd;
	int			 tls;		/* implicit TLS */
	char			*addr;
	struct event		 ev;
};

static TAILQ_HEAD(, listener)	listeners =
    TAILQ_HEAD_INITIALIZER(listeners);
static struct event		listener_pause_ev;
static int			listener_paused;

static void	listener_accept(int, short, void *);

void
listener_add(int fd, uint32_t flags, const char *addr)
{
	struct listener	*l;
	int		 fl;

	if ((flags & LISTENER_TLS) && smtpd_env.tls == NULL) {
		/* conf_validate() prevents it; a restart could still race. */
		log_warnx("listener %s: TLS without smtp-certificate, ignored",
		    addr);
		close(fd);
		return;
	}
	if (smtpd_env.shutting_down) {
		close(fd);
		return;
	}
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		fatal("listener %s: fcntl", addr);
	l = xcalloc(1, sizeof(*l));
	l->fd = fd;
	l->tls = (flags & LISTENER_TLS) != 0;
	l->addr = xstrdup(addr);
	event_set(&l->ev, fd, EV_READ | EV_PERSIST, listener_accept, l);
	if (!listener_paused)
		event_add(&l->ev, NULL);
	TAILQ_INSERT_TAIL(&listeners, l, entry);
	log_debug("listening on %s", addr);
}

/* Out of descriptors: stop accepting for a moment. */
static void
listener_resume(int fd, short ev, void *arg)
{
	struct listener	*l;

	listener_paused = 0;
	TAILQ_FOREACH(l, &listeners, entry)
		event_add(&l->ev, NULL);
}

static void
listener_pause(void)
{
	struct listener	*l;
	struct timeval	 tv = { LISTENER_PAUSE, 0 };

	if (listener_paused)
		return;
	listener_paused = 1;
	TAILQ_FOREACH(l, &listeners, entry)
		event_del(&l->ev);
	evtimer_set(&listener_pause_ev, listener_resume, NULL);
	evtimer_add(&listener_pause_ev, &tv);
}

static void
listener_accept(int fd, short ev, void *arg)
{
	struct listener		*l = arg;
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	int			 i, s;

	for (i = 0; i < LISTENER_ACCEPT_BURST; i++) {
		len = sizeof(ss);
		s = accept4(fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s == -1) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
				continue;
			case EAGAIN:
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				log_warn("listener %s: accept", l->addr);
				listener_pause();
				return;
			default:
				log_warn("listener %s: accept", l->addr);
				return;
			}
		}
		counter_add(COUNTER_CONN_IN, 1);	/* mtactl stats */
		session_accept(s, (struct sockaddr *)&ss, len, l->tls);
	}
}

void
listener_close_all(void)
{
	struct listener	*l;

	if (listener_paused) {
		evtimer_del(&listener_pause_ev);
		listener_paused = 0;
	}
	while ((l = TAILQ_FIRST(&listeners)) != NULL) {
		TAILQ_REMOVE(&listeners, l, entry);
		event_del(&l->ev);
		close(l->fd);
		free(l->addr);
		free(l);
	}
}
