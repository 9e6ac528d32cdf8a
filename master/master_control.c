/*
 * The control socket: a UNIX socket (mode 0660, group of `user`) on which
 * mtactl sends one MSG_CTL_REQUEST and gets one MSG_CTL_REPLY.  Clients are
 * untrusted: a peer whose uid is neither root nor `user` is refused, and a
 * malformed request closes that client only.
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
#include "log.h"
#include "master.h"
#include "proto.h"
#include "xmalloc.h"

#define CONTROL_MAX_CLIENTS	64

static int		 control_fd = -1;
static struct event	 control_ev;
static int		 control_clients;
static char		*control_path;

/* The "status" answer: processes, pids, uptime. */
static char *
control_status(void)
{
	struct json_object	*o, *procs, *p;
	char			*out;
	size_t			 i;

	o = json_object_new_object();
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "uptime",
	    json_object_new_int64(time(NULL) - mtad->start_time));
	procs = json_object_new_array();
	for (i = 0; i < mtad->nchildren; i++) {
		struct child	*c = &mtad->children[i];

		p = json_object_new_object();
		json_object_object_add(p, "name",
		    json_object_new_string(proc_name(c->proc)));
		json_object_object_add(p, "instance",
		    json_object_new_int64(c->instance));
		json_object_object_add(p, "pid", json_object_new_int64(c->pid));
		json_object_object_add(p, "ready",
		    json_object_new_boolean(c->ready));
		json_object_object_add(p, "restarts",
		    json_object_new_int64(c->total_restarts));
		json_object_array_add(procs, p);
	}
	json_object_object_add(o, "processes", procs);
	out = xstrdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

static void
control_reply(struct chan *c, uint32_t status, const char *text)
{
	struct msgb	*m;

	m = msgb_new(MSG_CTL_REPLY, 0);
	msgb_u32(m, status);
	msgb_str(m, text);
	chan_send(c, m);
}

static void
control_client_cb(struct chan *c, struct msg *m, void *arg)
{
	const char	*cmd;
	char		*out;

	if (m == NULL) {
		chan_free(c);
		control_clients--;
		return;
	}
	cmd = msg_get_str(m);
	(void)msg_get_u32(m);
	(void)msg_get_str(m);
	if (m->hdr.type != MSG_CTL_REQUEST || msg_end(m) == -1) {
		control_reply(c, 1, "malformed request");
		return;
	}
	if (strcmp(cmd, "status") == 0) {
		out = control_status();
		control_reply(c, 0, out);
		free(out);
	} else
		control_reply(c, 1, "unknown command");
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
	chan_new(s, PROC_MASTER, PROC_CONTROL, CHAN_UNTRUSTED,
	    control_client_cb, NULL);
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
