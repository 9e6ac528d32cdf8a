/*
 * mtactl: the administration client.  Sends one request over the control
 * socket and prints the answer, as an aligned table or (--json) as JSON.
 * Exit status: 0 success, 1 refused or failed, 2 usage.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <event.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

#define DEFAULT_SOCKET	"/run/mtad/control.sock"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: mtactl [-s socket] [--json] status\n");
	exit(2);
}

static int
control_connect(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "mtactl: socket path too long\n");
		exit(1);
	}
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "mtactl: %s: %m\n", path);
		exit(1);
	}
	return fd;
}

/* Human form of "status": uptime, then one row per process. */
static void
print_status(const char *text)
{
	struct json_object	*o, *procs, *p, *v;
	size_t			 i, n;

	if ((o = json_tokener_parse(text)) == NULL) {
		fprintf(stderr, "mtactl: unreadable answer\n");
		exit(1);
	}
	if (json_object_object_get_ex(o, "pid", &v))
		printf("mtad pid %lld, ", (long long)json_object_get_int64(v));
	if (json_object_object_get_ex(o, "uptime", &v))
		printf("up %lld s\n", (long long)json_object_get_int64(v));
	printf("%-10s %8s %8s %6s %8s\n", "PROCESS", "INSTANCE", "PID",
	    "READY", "RESTARTS");
	if (json_object_object_get_ex(o, "processes", &procs)) {
		n = json_object_array_length(procs);
		for (i = 0; i < n; i++) {
			p = json_object_array_get_idx(procs, i);
			json_object_object_get_ex(p, "name", &v);
			printf("%-10s ", json_object_get_string(v));
			json_object_object_get_ex(p, "instance", &v);
			printf("%8lld ", (long long)json_object_get_int64(v));
			json_object_object_get_ex(p, "pid", &v);
			printf("%8lld ", (long long)json_object_get_int64(v));
			json_object_object_get_ex(p, "ready", &v);
			printf("%6s ", json_object_get_boolean(v) ? "yes" : "no");
			json_object_object_get_ex(p, "restarts", &v);
			printf("%8lld\n", (long long)json_object_get_int64(v));
		}
	}
	json_object_put(o);
}

int
main(int argc, char *argv[])
{
	const char	*path = DEFAULT_SOCKET, *cmd, *text;
	struct chan	*c;
	struct msgb	*b;
	struct msg	*m;
	uint32_t	 status;
	int		 i, json = 0;

	log_init(1, LOG_LEVEL_WARNING);
	log_procinit("mtactl");
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			path = argv[++i];
		else
			usage();
	}
	if (i != argc - 1)
		usage();
	cmd = argv[i];
	if (strcmp(cmd, "status") != 0)
		usage();

	event_init();
	c = chan_new(control_connect(path), PROC_CONTROL, PROC_MASTER,
	    CHAN_UNTRUSTED, NULL, NULL);
	b = msgb_new(MSG_CTL_REQUEST, 0);
	msgb_str(b, cmd);
	msgb_u32(b, json);
	msgb_str(b, "");
	chan_send(c, b);
	if (chan_flush_sync(c) == -1 || chan_read_sync(c, &m) != 1) {
		fprintf(stderr, "mtactl: no answer from mtad\n");
		return 1;
	}
	status = msg_get_u32(m);
	text = msg_get_str(m);
	if (m->hdr.type != MSG_CTL_REPLY || msg_end(m) == -1) {
		fprintf(stderr, "mtactl: malformed answer\n");
		return 1;
	}
	if (status != 0) {
		fprintf(stderr, "mtactl: %s\n", text);
		return 1;
	}
	if (json)
		printf("%s\n", text);
	else
		print_status(text);
	msg_free(m);
	chan_free(c);
	return 0;
}
