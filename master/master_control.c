/*
 * The control socket: a UNIX socket (mode 0660, owner root, group of
 * `user`) on which mtactl sends MSG_CTL_REQUEST and gets one
 * MSG_CTL_REPLY per request.  Clients are untrusted: a peer whose uid is
 * neither root nor `user` is refused with a reply saying so, and a
 * malformed request closes that client only.
 *
 * The master answers status, stats and reload itself (status and stats
 * with the counters every child reports, master_request.c); the commands
 * about the queue are forwarded to qmgr, which owns it.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <event.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "conf.h"
#include "counter.h"
#include "log.h"
#include "master.h"
#include "proto.h"
#include "xmalloc.h"

#define CONTROL_MAX_CLIENTS	64
#define CONTROL_MAX_CMD		32	/* bytes of a command name */
#define CONTROL_MAX_ARG		1024	/* bytes of its argument */

static int		 control_fd = -1;
static struct event	 control_ev;
static int		 control_clients;

/*
 * A client may hold a slot for CONTROL_IDLE seconds between requests, and
 * may let at most CONTROL_MAX_QUEUED bytes of replies wait unread: past
 * either, it is closed, so 64 idle or never-reading clients cannot lock
 * mtactl out or grow the master's memory.
 */
#define CONTROL_IDLE		60
#define CONTROL_MAX_QUEUED	(16u * 1024 * 1024)

struct control_client {
	struct chan	*chan;
	struct event	 ev_idle;
};
static char		*control_path;

enum control_target {
	CTL_STATUS,		/* the master, with every child's counters */
	CTL_STATS,
	CTL_RELOAD,
	CTL_QMGR,		/* forwarded to qmgr */
};

static const struct control_cmd {
	const char		*name;
	enum control_target	 target;
	int			 arg;
#define ARG_NONE	0
#define ARG_OPTIONAL	1
#define ARG_REQUIRED	2
} control_cmds[] = {
	{ "status",	CTL_STATUS,	ARG_NONE },
	{ "stats",	CTL_STATS,	ARG_NONE },
	{ "reload",	CTL_RELOAD,	ARG_NONE },
	{ "queue",	CTL_QMGR,	ARG_NONE },
	{ "list",	CTL_QMGR,	ARG_OPTIONAL },
	{ "show",	CTL_QMGR,	ARG_REQUIRED },
	{ "flush",	CTL_QMGR,	ARG_OPTIONAL },
	{ "hold",	CTL_QMGR,	ARG_REQUIRED },
	{ "release",	CTL_QMGR,	ARG_REQUIRED },
	{ "remove",	CTL_QMGR,	ARG_REQUIRED },
};

void
master_control_reply(struct chan *c, uint32_t status, const char *text)
{
	struct msgb	*m;

	m = msgb_new(MSG_CTL_REPLY, 0);
	msgb_u32(m, status);
	msgb_str(m, text);
	chan_send(c, m);
}

/* Reply with a JSON object, which is consumed. */
static void
reply_json(struct chan *c, struct json_object *o)
{
	master_control_reply(c, 0, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static void
add_int(struct json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

/* The counters object of status and stats. */
static struct json_object *
counters_json(const uint64_t *sums, const char *missing)
{
	struct json_object	*o, *a;
	char			*s, *p, *tok;
	int			 i;

	o = json_object_new_object();
	add_int(o, "since", mtad->start_time);
	add_int(o, "uptime", time(NULL) - mtad->start_time);
	for (i = 0; i < COUNTER_COUNT; i++)
		add_int(o, counter_name(i), (int64_t)sums[i]);
	a = json_object_new_array();
	if (missing != NULL) {
		s = xstrdup(missing);
		for (p = s; (tok = strsep(&p, ",")) != NULL;) {
			tok += strspn(tok, " ");
			json_object_array_add(a, json_object_new_string(tok));
		}
		free(s);
	}
	json_object_object_add(o, "missing", a);
	return o;
}

static void
stats_done(struct chan *c, const uint64_t *sums, const char *missing)
{
	reply_json(c, counters_json(sums, missing));
}

/* The "status" answer: processes, pids, uptime, counters. */
static void
status_done(struct chan *c, const uint64_t *sums, const char *missing)
{
	struct json_object	*o, *procs, *p;
	size_t			 i;

	o = json_object_new_object();
	add_int(o, "pid", getpid());
	add_int(o, "uptime", time(NULL) - mtad->start_time);
	procs = json_object_new_array();
	for (i = 0; i < mtad->nchildren; i++) {
		struct child	*ch = &mtad->children[i];

		p = json_object_new_object();
		json_object_object_add(p, "name",
		    json_object_new_string(proc_name(ch->proc)));
		add_int(p, "instance", ch->instance);
		add_int(p, "pid", ch->pid);
		json_object_object_add(p, "ready",
		    json_object_new_boolean(ch->ready));
		add_int(p, "restarts", ch->total_restarts);
		json_object_array_add(procs, p);
	}
	json_object_object_add(o, "processes", procs);
	json_object_object_add(o, "counters", counters_json(sums, missing));
	reply_json(c, o);
}

/* "reload": as SIGHUP, but the client hears whether it worked. */
static void
control_reload(struct chan *c)
{
	struct json_object	*o, *a;
	char			*cause = NULL, *restart = NULL, *p, *s, *tok;

	if (master_reload(&restart, &cause) == -1) {
		master_control_reply(c, 1, cause);
		free(cause);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "reloaded", json_object_new_boolean(1));
	a = json_object_new_array();
	if (restart != NULL) {
		s = restart;
		for (p = s; (tok = strsep(&p, ",")) != NULL;) {
			tok += strspn(tok, " ");
			json_object_array_add(a, json_object_new_string(tok));
		}
		free(s);
	}
	json_object_object_add(o, "restart-needed", a);
	reply_json(c, o);
}

static const struct control_cmd *
control_cmd_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(control_cmds) / sizeof(control_cmds[0]); i++)
		if (strcmp(control_cmds[i].name, name) == 0)
			return &control_cmds[i];
	return NULL;
}

/* Only printable ASCII in an argument (queue keys contain spaces). */
static int
arg_valid(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return 0;
	return 1;
}

/* One request: check it against the command table, then run it. */
static void
control_request(struct chan *c, const char *name, const char *arg,
    uint32_t flags, uint32_t limit, uint32_t offset)
{
	const struct control_cmd	*cmd;

	if ((cmd = control_cmd_find(name)) == NULL) {
		master_control_reply(c, 1, "unknown command");
		return;
	}
	if (strlen(arg) > CONTROL_MAX_ARG || !arg_valid(arg)) {
		master_control_reply(c, 1, "bad argument");
		return;
	}
	if ((cmd->arg == ARG_NONE && *arg != '\0') ||
	    (cmd->arg == ARG_REQUIRED && *arg == '\0')) {
		master_control_reply(c, 1, cmd->arg == ARG_NONE ?
		    "this command takes no argument" :
		    "this command needs an argument");
		return;
	}
	if (limit > CTL_LIMIT_MAX || offset > CTL_LIMIT_MAX * 100u) {
		master_control_reply(c, 1, "limit or offset out of range");
		return;
	}
	if (mtad->shutting_down) {
		master_control_reply(c, 1, "mtad is shutting down");
		return;
	}
	switch (cmd->target) {
	case CTL_STATUS:
		master_request_stats(c, status_done);
		break;
	case CTL_STATS:
		master_request_stats(c, stats_done);
		break;
	case CTL_RELOAD:
		control_reload(c);
		break;
	case CTL_QMGR:
		master_request_qmgr(c, cmd->name, arg, flags, limit, offset);
		break;
	}
}

/* Forget a client: its pending requests, its channel, its slot. */
static void
control_client_close(struct control_client *cc)
{
	evtimer_del(&cc->ev_idle);
	master_request_client_gone(cc->chan);
	chan_free(cc->chan);
	free(cc);
	control_clients--;
}

static void
control_client_idle(int fd, short ev, void *arg)
{
	log_warnx("control: a client was idle for %d s: closing it",
	    CONTROL_IDLE);
	control_client_close(arg);
}

static void
control_client_cb(struct chan *c, struct msg *m, void *arg)
{
	const char	*cmd, *cmdarg;
	uint32_t	 flags, limit, offset;

	struct control_client	*cc = arg;
	struct timeval		 tv = { CONTROL_IDLE, 0 };

	if (m == NULL) {
		control_client_close(cc);
		return;
	}
	if (chan_queued(c) > CONTROL_MAX_QUEUED) {
		log_warnx("control: a client does not read its replies: "
		    "closing it");
		control_client_close(cc);
		return;
	}
	evtimer_add(&cc->ev_idle, &tv);
	cmd = msg_get_str(m);
	flags = msg_get_u32(m);
	cmdarg = msg_get_str(m);
	limit = msg_get_u32(m);
	offset = msg_get_u32(m);
	if (m->hdr.type != MSG_CTL_REQUEST || msg_end(m) == -1 ||
	    strlen(cmd) > CONTROL_MAX_CMD) {
		master_control_reply(c, 1, "malformed request");
		return;
	}
	control_request(c, cmd, cmdarg, flags, limit, offset);
}

/* Tell a refused client why in one small write, then close. */
static void
control_refuse(int s, const char *why)
{
	struct msgb	*m;
	const uint8_t	*wire;
	size_t		 len;

	m = msgb_new(MSG_CTL_REPLY, 0);
	msgb_u32(m, 1);
	msgb_str(m, why);
	wire = msgb_wire(m, &len);
	(void)!write(s, wire, len);
	msgb_free(m);
	close(s);
}

static void
control_accept(int fd, short ev, void *arg)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);
	struct control_client	*cc;
	struct timeval		 tv = { CONTROL_IDLE, 0 };
	int		 s;

	if ((s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("control accept");
		return;
	}
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    (cred.uid != 0 && cred.uid != mtad->uid)) {
		log_warnx("control: refused a client with uid %ld",
		    (long)cred.uid);
		control_refuse(s, "permission denied");
		return;
	}
	if (control_clients >= CONTROL_MAX_CLIENTS) {
		log_warnx("control: too many clients");
		control_refuse(s, "too many clients");
		return;
	}
	control_clients++;
	cc = xcalloc(1, sizeof(*cc));
	cc->chan = chan_new(s, PROC_MASTER, PROC_CONTROL, CHAN_UNTRUSTED,
	    control_client_cb, cc);
	evtimer_set(&cc->ev_idle, control_client_idle, cc);
	evtimer_add(&cc->ev_idle, &tv);
}

void
master_control_open(void)
{
	struct sockaddr_un	 sun;
	const char		*path = mtad->conf->control_socket;
	char			*dir, *slash;
	mode_t			 old;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		fatalx("control-socket: path too long: %s", path);
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == -1 && errno != EEXIST)
			fatal("mkdir %s", dir);
	}
	free(dir);
	if ((control_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		fatal("socket");
	if (unlink(path) == -1 && errno != ENOENT)
		fatal("unlink %s", path);
	old = umask(0117);
	if (bind(control_fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		fatal("bind %s", path);
	umask(old);
	if (mtad->root && chown(path, 0, mtad->gid) == -1)
		fatal("chown %s", path);
	if (chmod(path, 0660) == -1)
		fatal("chmod %s", path);
	if (listen(control_fd, 16) == -1)
		fatal("listen %s", path);
	control_path = xstrdup(path);
	event_set(&control_ev, control_fd, EV_READ | EV_PERSIST,
	    control_accept, NULL);
	event_add(&control_ev, NULL);
}

void
master_control_close(void)
{
	if (control_fd == -1)
		return;
	event_del(&control_ev);
	close(control_fd);
	control_fd = -1;
	unlink(control_path);
	free(control_path);
	control_path = NULL;
}
