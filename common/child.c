/*
 * child_main(): the fixed entry order of every child process (see child.h).
 * Setup messages from the master are read synchronously before the event
 * loop runs, so that nothing else happens before the privilege drop.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <event.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "child.h"
#include "conf.h"
#include "counter.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

struct stash {
	int		 kind;		/* MSG_SETUP_PEER or MSG_SETUP_LISTENER */
	uint32_t	 a;		/* peer proc or listener flags */
	uint32_t	 b;		/* peer instance */
	char		*addr;
	int		 fd;
};

static const struct child_ops	*child_ops;
static struct chan		*master_chan;
static uint32_t			 instance;
static int			 verbose;
static struct event		 ev_sigterm;
static int			 chrooted;

int	__lsan_is_turned_off(void);

/*
 * LeakSanitizer's exit check reads /proc, which a chrooted process cannot
 * see; it would fail and turn a clean exit into status 1.  Leak checks of
 * these processes run in the unprivileged (not chrooted) test set-ups.
 * Without a sanitizer nothing calls this.
 */
int
__lsan_is_turned_off(void)
{
	return chrooted;
}

struct chan *
child_master(void)
{
	return master_chan;
}

uint32_t
child_instance(void)
{
	return instance;
}

/* The log level: the config's, raised to debug by -v. */
static void
child_set_loglevel(const struct conf *conf)
{
	int	 level = log_level_from_name(conf->log_level);

	if (level < 0)
		level = LOG_LEVEL_INFO;
	if (verbose)
		level = LOG_LEVEL_DEBUG;
	log_setlevel(level);
}

/* Parse a config slice from the master; a bad one is the master's bug. */
static struct conf *
child_parse_conf(struct msg *m)
{
	struct conf	*conf;
	const char	*text;
	char		*cause = NULL;

	text = msg_get_str(m);
	if (msg_end(m) == -1)
		fatalx("bad %s from master", msg_name(m->hdr.type));
	conf = conf_new();
	if (conf_load_text(conf, text, &cause) == -1)
		fatalx("config from master: %s", cause);
	return conf;
}

/* chroot into SPOOL/empty and drop to the configured user, when root. */
static void
child_drop_privileges(const char *user, const char *spool_dir)
{
	struct passwd	*pw;
	char		*root;

	if (geteuid() != 0) {
		log_info("not running as root: chroot and privilege drop "
		    "skipped");
		return;
	}
	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s", user);
	if (pw->pw_uid == 0)
		fatalx("user %s is root: refusing to run as root",
		    user);
	if (child_ops->chroot) {
		xasprintf(&root, "%s/empty", spool_dir);
		if (chroot(root) == -1)
			fatal("chroot %s", root);
		if (chdir("/") == -1)
			fatal("chdir /");
		chrooted = 1;
		free(root);
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("dropping privileges to %s", user);
	if (setresuid(0, 0, 0) != -1)
		fatalx("privilege drop could be undone");
}

/*
 * Raise the soft descriptor limit to the hard one: an smtp worker holds two
 * descriptors per delivery, smtpd one per session.
 */
static void
child_raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("setrlimit RLIMIT_NOFILE");
}

/* Messages from the master once running: new peers and reloads. */
static void
child_master_cb(struct chan *c, struct msg *m, void *arg)
{
	uint32_t	 proc;
	int		 fd;

	if (m == NULL) {
		log_info("master went away, exiting");
		exit(0);
	}
	switch (m->hdr.type) {
	case MSG_SETUP_PEER:
		proc = msg_get_u32(m);
		fd = msg_take_fd(m);
		if (msg_end(m) == -1 || proc >= PROC_COUNT)
			fatalx("bad MSG_SETUP_PEER from master");
		if (child_ops->peer == NULL)
			fatalx("unexpected peer %s", proc_name(proc));
		child_ops->peer(proc, m->hdr.peerid, fd);
		break;
	case MSG_CONF_RELOAD:
		{
			struct conf	*conf = child_parse_conf(m);

			child_set_loglevel(conf);
			if (child_ops->reload != NULL)
				child_ops->reload(conf);
			else
				conf_free(conf);
		}
		break;
	case MSG_CTL_STATS:
		counter_reply(c, m);
		break;
	default:
		if (child_ops->control == NULL)
			fatalx("unexpected %s from master",
			    msg_name(m->hdr.type));
		child_ops->control(c, m);
	}
}

static void
child_sigterm(int sig, short ev, void *arg)
{
	if (child_ops->shutdown == NULL)
		exit(0);
	child_ops->shutdown();
}

/* Read the setup sequence: config, listeners and peers until DONE. */
static struct conf *
child_read_setup(struct stash **stash, size_t *nstash)
{
	struct conf	*conf = NULL;
	struct msg	*m;
	struct stash	*s;
	uint32_t	 version;

	for (;;) {
		if (chan_read_sync(master_chan, &m) != 1)
			fatalx("master closed the channel during setup");
		switch (m->hdr.type) {
		case MSG_SETUP_CONF:
			if (conf != NULL)
				fatalx("config sent twice");
			conf = child_parse_conf(m);
			break;
		case MSG_SETUP_PEER:
		case MSG_SETUP_LISTENER:
			*stash = xreallocarray(*stash, *nstash + 1,
			    sizeof(**stash));
			s = &(*stash)[(*nstash)++];
			memset(s, 0, sizeof(*s));
			s->kind = m->hdr.type;
			s->a = msg_get_u32(m);
			s->b = m->hdr.peerid;
			if (m->hdr.type == MSG_SETUP_LISTENER)
				s->addr = xstrdup(msg_get_str(m));
			s->fd = msg_take_fd(m);
			if (msg_end(m) == -1 ||
			    (s->kind == MSG_SETUP_PEER && s->a >= PROC_COUNT))
				fatalx("bad %s from master",
				    msg_name(m->hdr.type));
			break;
		case MSG_SETUP_DONE:
			version = msg_get_u32(m);
			instance = msg_get_u32(m);
			if (msg_end(m) == -1)
				fatalx("bad MSG_SETUP_DONE from master");
			if (version != PROTO_VERSION)
				fatalx("protocol version %u, master has %u: "
				    "binaries from different builds",
				    PROTO_VERSION, version);
			if (conf == NULL)
				fatalx("setup done without a config");
			msg_free(m);
			return conf;
		default:
			fatalx("unexpected %s during setup",
			    msg_name(m->hdr.type));
		}
		msg_free(m);
	}
}

/* Hand the stashed listeners and peers to the process, now running. */
static void
child_unstash(struct stash *stash, size_t nstash)
{
	size_t	 i;

	for (i = 0; i < nstash; i++) {
		if (stash[i].kind == MSG_SETUP_LISTENER) {
			if (child_ops->listener == NULL)
				fatalx("unexpected listener");
			child_ops->listener(stash[i].fd, stash[i].a,
			    stash[i].addr);
		} else {
			if (child_ops->peer == NULL)
				fatalx("unexpected peer");
			child_ops->peer(stash[i].a, stash[i].b, stash[i].fd);
		}
		free(stash[i].addr);
	}
	free(stash);
}

void
child_main(int argc, char **argv, const struct child_ops *ops)
{
	struct stash	*stash = NULL;
	size_t		 nstash = 0;
	struct conf	*conf;
	char		*user, *spool;
	int		 ch, foreground = 0;

	child_ops = ops;
	while ((ch = getopt(argc, argv, "dv")) != -1) {
		switch (ch) {
		case 'd':
			foreground = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fatalx("usage: %s [-dv] (started by mtad)",
			    proc_name(ops->proc));
		}
	}
	log_init(foreground, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	log_procinit(proc_name(ops->proc));
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);	/* the master handles ^C with -d */

	child_raise_nofile();
	event_init();
	master_chan = chan_new(CHILD_MASTER_FD, ops->proc, PROC_MASTER, 0,
	    child_master_cb, NULL);
	conf = child_read_setup(&stash, &nstash);
	child_set_loglevel(conf);

	/* Read what the drop needs before configure() takes the conf. */
	user = xstrdup(conf->user);
	spool = xstrdup(conf->spool_dir);
	ops->configure(conf);
	child_drop_privileges(user, spool);
	free(user);
	free(spool);

	signal_set(&ev_sigterm, SIGTERM, child_sigterm, NULL);
	signal_add(&ev_sigterm, NULL);
	ops->run();
	child_unstash(stash, nstash);
	chan_send(master_chan, msgb_new(MSG_SETUP_READY, 0));

	event_dispatch();
	fatalx("exited event loop");
}
