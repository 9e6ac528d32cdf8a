/*
 * Children: fork + exec of each process from LIBEXEC, its setup over the
 * channel on fd 3, the socketpairs between peers, and restarts.
 *
 * Peers (who talks to whom) are the edges of peer_edges[].  When a child
 * (re)starts, a fresh socketpair is made to every running peer: one end
 * goes to the new child in its setup, the other to the peer as a runtime
 * MSG_SETUP_PEER.  So a restarted qmgr reconnects to smtpd and every smtp
 * worker without restarting them.
 *
 * Restarts back off (Postfix master_spawn.c): 0.5 s after a death, doubling
 * up to 60 s while the child keeps dying within 30 s of its start.  A child
 * that exits during its very first setup (e.g. a bad setting only it can
 * check) stops mtad: crash-looping on a config error helps nobody.  One
 * killed by a signal then is restarted as usual.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "child.h"
#include "conf.h"
#include "log.h"
#include "master.h"
#include "proto.h"
#include "xmalloc.h"

#define READY_TIMEOUT		10	/* seconds for the setup handshake */
#define RESTART_MIN_MS		500
#define RESTART_MAX_MS		60000
#define RESTART_STABLE		30	/* seconds alive that reset back-off */

static const struct {
	int	a;
	int	b;
} peer_edges[] = {
	{ PROC_SMTPD, PROC_QMGR },
	{ PROC_QMGR, PROC_SMTP },
	{ PROC_SMTP, PROC_RESOLVER },
	{ PROC_QMGR, PROC_RESOLVER },
};

static void	child_spawn(struct child *);
static void	child_chan_cb(struct chan *, struct msg *, void *);

/* Number of smtp workers: smtp-workers, or the number of CPUs. */
static int
smtp_worker_count(void)
{
	long	 n = mtad->conf->smtp_workers;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	return (int)n;
}

static void
child_add(int proc, uint32_t instance)
{
	struct child	*c;

	mtad->children = xreallocarray(mtad->children, mtad->nchildren + 1,
	    sizeof(*c));
	c = &mtad->children[mtad->nchildren++];
	memset(c, 0, sizeof(*c));
	c->proc = proc;
	c->instance = instance;
}

/* The table of children; started in an order where peers exist first. */
void
master_children_init(void)
{
	int	 i, n = smtp_worker_count();

	child_add(PROC_RESOLVER, 0);
	child_add(PROC_QMGR, 0);
	for (i = 0; i < n; i++)
		child_add(PROC_SMTP, i);
	child_add(PROC_SMTPD, 0);
	/* event structures need stable addresses: the array is final now */
	for (i = 0; i < (int)mtad->nchildren; i++)
		mtad->children[i].pid = 0;
}

static int
are_peers(int a, int b)
{
	size_t	 i;

	for (i = 0; i < sizeof(peer_edges) / sizeof(peer_edges[0]); i++)
		if ((peer_edges[i].a == a && peer_edges[i].b == b) ||
		    (peer_edges[i].a == b && peer_edges[i].b == a))
			return 1;
	return 0;
}

/* Send one end of a new socketpair to each of two children. */
static void
connect_peers(struct child *a, struct child *b)
{
	struct msgb	*m;
	int		 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		log_warn("socketpair for %s-%s", proc_name(a->proc),
		    proc_name(b->proc));
		return;
	}
	m = msgb_new(MSG_SETUP_PEER, b->instance);
	msgb_u32(m, b->proc);
	msgb_fd(m, sv[0]);
	chan_send(a->chan, m);
	m = msgb_new(MSG_SETUP_PEER, a->instance);
	msgb_u32(m, a->proc);
	msgb_fd(m, sv[1]);
	chan_send(b->chan, m);
}

/* Send the setup sequence to a freshly forked child. */
static void
child_send_setup(struct child *c)
{
	struct msgb	*m;
	char		*slice;
	size_t		 i;
	int		 fd;

	slice = conf_slice(mtad->conf, c->proc);
	m = msgb_new(MSG_SETUP_CONF, 0);
	msgb_str(m, slice);
	chan_send(c->chan, m);
	xfreezero(slice, strlen(slice));

	if (c->proc == PROC_SMTPD) {
		for (i = 0; i < mtad->nlisteners; i++) {
			if ((fd = fcntl(mtad->listeners[i].fd, F_DUPFD_CLOEXEC,
			    0)) == -1)
				fatal("dup listener");
			m = msgb_new(MSG_SETUP_LISTENER, 0);
			msgb_u32(m, mtad->listeners[i].flags);
			msgb_str(m, mtad->listeners[i].addr);
			msgb_fd(m, fd);
			chan_send(c->chan, m);
		}
	}
	for (i = 0; i < mtad->nchildren; i++) {
		struct child	*p = &mtad->children[i];

		if (p != c && p->pid != 0 && p->chan != NULL &&
		    are_peers(c->proc, p->proc))
			connect_peers(c, p);
	}
	m = msgb_new(MSG_SETUP_DONE, 0);
	msgb_u32(m, PROTO_VERSION);
	msgb_u32(m, c->instance);
	chan_send(c->chan, m);
}

/* In the forked child: put the channel on fd 3 and exec the program. */
static void __attribute__((noreturn))
child_exec(struct child *c, int fd)
{
	char	 path[4200];
	char	*argv[4];
	int	 argc = 0;

	if (fd == CHILD_MASTER_FD) {
		if (fcntl(fd, F_SETFD, 0) == -1)
			_exit(127);
	} else if (dup2(fd, CHILD_MASTER_FD) == -1)
		_exit(127);
	snprintf(path, sizeof(path), "%s/%s", mtad->libexec,
	    proc_name(c->proc));
	argv[argc++] = (char *)proc_name(c->proc);
	if (mtad->foreground)
		argv[argc++] = "-d";
	if (mtad->verbose)
		argv[argc++] = "-v";
	argv[argc] = NULL;
	signal(SIGPIPE, SIG_DFL);
	execv(path, argv);
	log_warn("exec %s", path);
	_exit(127);
}

static void
child_ready_timeout(int fd, short ev, void *arg)
{
	struct child	*c = arg;

	log_warnx("%s (pid %ld) did not finish its setup in %d s: killing it",
	    proc_name(c->proc), (long)c->pid, READY_TIMEOUT);
	kill(c->pid, SIGKILL);
}

static void
child_spawn(struct child *c)
{
	struct timeval	 tv = { READY_TIMEOUT, 0 };
	int		 sv[2];
	pid_t		 pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		fatal("socketpair");
	switch ((pid = fork())) {
	case -1:
		fatal("fork");
	case 0:
		child_exec(c, sv[1]);
	}
	close(sv[1]);
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl");
	c->pid = pid;
	c->ready = 0;
	c->started = time(NULL);
	c->chan = chan_new(sv[0], PROC_MASTER, c->proc, 0, child_chan_cb, c);
	log_debug("started %s (pid %ld)", proc_name(c->proc), (long)pid);
	child_send_setup(c);
	evtimer_set(&c->ev_ready, child_ready_timeout, c);
	evtimer_add(&c->ev_ready, &tv);
}

void
master_children_start(void)
{
	size_t	 i;

	for (i = 0; i < mtad->nchildren; i++)
		child_spawn(&mtad->children[i]);
}

/* Messages from a child: the setup handshake, answers for mtactl. */
static void
child_chan_cb(struct chan *ch, struct msg *m, void *arg)
{
	struct child	*c = arg;

	if (m == NULL) {
		/* The process is gone or going; SIGCHLD does the rest. */
		chan_free(ch);
		c->chan = NULL;
		master_request_child_gone(c);
		return;
	}
	switch (m->hdr.type) {
	case MSG_CTL_QMGR_REPLY:
		master_request_qmgr_reply(c, m);
		break;
	case MSG_CTL_STATS_REPLY:
		master_request_stats_reply(c, m);
		break;
	case MSG_SETUP_READY:
		if (msg_end(m) == -1 || c->ready)
			fatalx("bad MSG_SETUP_READY from %s",
			    proc_name(c->proc));
		c->ready = 1;
		c->ever_ready = 1;
		evtimer_del(&c->ev_ready);
		log_debug("%s (pid %ld) ready", proc_name(c->proc),
		    (long)c->pid);
		break;
	default:
		fatalx("unexpected %s from %s", msg_name(m->hdr.type),
		    proc_name(c->proc));
	}
}

static void
child_restart_cb(int fd, short ev, void *arg)
{
	struct child	*c = arg;

	if (mtad->shutting_down || c->pid != 0)
		return;
	c->total_restarts++;
	child_spawn(c);
}

/* Say how a child ended, as Postfix does: status or signal. */
static void
child_log_death(struct child *c, pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		log_warnx("%s (pid %ld) killed by signal %d",
		    proc_name(c->proc), (long)pid, WTERMSIG(status));
	else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		log_warnx("%s (pid %ld) exited with status %d",
		    proc_name(c->proc), (long)pid, WEXITSTATUS(status));
	else if (!mtad->shutting_down)
		log_warnx("%s (pid %ld) exited", proc_name(c->proc),
		    (long)pid);
	else
		log_debug("%s (pid %ld) exited", proc_name(c->proc),
		    (long)pid);
}

void
master_child_reaped(pid_t pid, int status)
{
	struct timeval	 tv;
	struct child	*c = NULL;
	unsigned	 ms;
	size_t		 i;

	for (i = 0; i < mtad->nchildren; i++)
		if (mtad->children[i].pid == pid)
			c = &mtad->children[i];
	if (c == NULL)
		return;
	child_log_death(c, pid, status);
	c->pid = 0;
	c->ready = 0;
	evtimer_del(&c->ev_ready);
	if (c->chan != NULL) {
		chan_free(c->chan);
		c->chan = NULL;
	}
	master_request_child_gone(c);
	if (mtad->shutting_down) {
		master_shutdown_step();
		return;
	}
	/*
	 * A child that exits during its first setup refused its config: stop.
	 * One killed by a signal then (an admin, the OOM killer) is restarted
	 * like any other, or a kill -9 at the wrong moment stops all mail.
	 */
	if (!c->ever_ready && !WIFSIGNALED(status))
		fatalx("%s failed during its first setup; stopping",
		    proc_name(c->proc));
	if (time(NULL) - c->started >= RESTART_STABLE)
		c->restarts = 0;
	ms = RESTART_MIN_MS << (c->restarts < 7 ? c->restarts : 7);
	if (ms > RESTART_MAX_MS)
		ms = RESTART_MAX_MS;
	c->restarts++;
	log_info("restarting %s in %u.%u s", proc_name(c->proc), ms / 1000,
	    (ms % 1000) / 100);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_set(&c->ev_restart, child_restart_cb, c);
	evtimer_add(&c->ev_restart, &tv);
}

void
master_children_signal(int proc_mask, int sig)
{
	size_t	 i;

	for (i = 0; i < mtad->nchildren; i++)
		if (mtad->children[i].pid != 0 &&
		    (proc_mask & (1 << mtad->children[i].proc)))
			kill(mtad->children[i].pid, sig);
}

int
master_children_running(int proc_mask)
{
	size_t	 i;
	int	 n = 0;

	for (i = 0; i < mtad->nchildren; i++)
		if (mtad->children[i].pid != 0 &&
		    (proc_mask & (1 << mtad->children[i].proc)))
			n++;
	return n;
}

/* Send each running child its slice of the new config. */
void
master_children_reload(void)
{
	struct msgb	*m;
	char		*slice;
	size_t		 i;

	for (i = 0; i < mtad->nchildren; i++) {
		struct child	*c = &mtad->children[i];

		if (c->pid == 0 || c->chan == NULL || !c->ready)
			continue;
		slice = conf_slice(mtad->conf, c->proc);
		m = msgb_new(MSG_CONF_RELOAD, 0);
		msgb_str(m, slice);
		chan_send(c->chan, m);
		xfreezero(slice, strlen(slice));
	}
}
