/*
 * mtactl: the administration client.  Sends one request over the control
 * socket (MSG_CTL_REQUEST) and prints the answer, as aligned tables or,
 * with --json, as the JSON object the master sent.
 *
 *	mtactl [-s socket] [--json] command [argument] [options]
 *
 * Exit status: 0 success, 1 refused or failed (one line on stderr says
 * why), 2 usage.  Options may come before or after the command.
 */
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <event.h>
#include <json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "mtactl.h"
#include "proto.h"
#include "xmalloc.h"

#define DEFAULT_SOCKET	"/run/mtad/control.sock"
#define ANSWER_TIMEOUT	30	/* seconds; the master answers within 10 */

/* Which argument and options each command takes. */
static const struct command {
	const char	*name;
	int		 arg;
#define ARG_NONE	0
#define ARG_OPTIONAL	1
#define ARG_REQUIRED	2
	int		 paged;		/* --limit, --offset */
	int		 bounce;	/* --bounce */
	const char	*usage;
} commands[] = {
	{ "status",	ARG_NONE,	0, 0, "status" },
	{ "stats",	ARG_NONE,	0, 0, "stats" },
	{ "queue",	ARG_NONE,	1, 0, "queue [--limit N] [--offset N]" },
	{ "list",	ARG_OPTIONAL,	1, 0,
	    "list [QUEUE] [--limit N] [--offset N]" },
	{ "show",	ARG_REQUIRED,	1, 0, "show ID [--limit N] [--offset N]" },
	{ "flush",	ARG_OPTIONAL,	0, 0, "flush [QUEUE | ID]" },
	{ "hold",	ARG_REQUIRED,	0, 0, "hold ID | QUEUE" },
	{ "release",	ARG_REQUIRED,	0, 0, "release ID | QUEUE" },
	{ "remove",	ARG_REQUIRED,	0, 1, "remove ID [--bounce]" },
	{ "reload",	ARG_NONE,	0, 0, "reload" },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

struct request {
	const char		*socket;
	const struct command	*cmd;
	const char		*arg;
	uint32_t		 flags;
	uint32_t		 limit;
	uint32_t		 offset;
	int			 json;
};

/* A usage error: one line saying why, exit 2.  NULL: the help, exit 0. */
static void __attribute__((noreturn))
usage(const char *why)
{
	size_t	 i;

	if (why != NULL) {
		fprintf(stderr, "mtactl: %s (mtactl -h lists the commands)\n",
		    why);
		exit(2);
	}
	printf("usage: mtactl [-s socket] [--json] command\ncommands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		printf("\t%s\n", commands[i].usage);
	exit(0);
}

static const struct command *
command_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* A decimal number within [min, max], or a usage error. */
static uint32_t
number(const char *opt, const char *s, unsigned long min, unsigned long max)
{
	unsigned long	 n;
	char		*end, why[128];

	errno = 0;
	n = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || n < min ||
	    n > max) {
		snprintf(why, sizeof(why), "%s: expected a number from %lu "
		    "to %lu", opt, min, max);
		usage(why);
	}
	return (uint32_t)n;
}

/* "--name=value" or "--name value": the value, advancing *i if needed. */
static const char *
opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t	 len = strlen(name);
	char	 why[64];

	if (strncmp(argv[*i], name, len) == 0 && argv[*i][len] == '=')
		return argv[*i] + len + 1;
	if (strcmp(argv[*i], name) == 0 && *i + 1 < argc)
		return argv[++*i];
	snprintf(why, sizeof(why), "%s needs a value", name);
	usage(why);
}

static int
opt_is(const char *a, const char *name)
{
	size_t	 len = strlen(name);

	return strncmp(a, name, len) == 0 && (a[len] == '\0' || a[len] == '=');
}

/* Options anywhere, then the command and its argument. */
static void
parse_args(int argc, char **argv, struct request *req)
{
	const char	*pos[2] = { NULL, NULL };
	int		 i, npos = 0, paged = 0, bounce = 0;

	memset(req, 0, sizeof(*req));
	req->socket = DEFAULT_SOCKET;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			req->json = 1;
		else if (strcmp(argv[i], "-s") == 0 || opt_is(argv[i], "--socket"))
			req->socket = opt_value(argc, argv, &i,
			    argv[i][1] == 's' ? "-s" : "--socket");
		else if (opt_is(argv[i], "--limit")) {
			req->limit = number("--limit", opt_value(argc, argv,
			    &i, "--limit"), 1, CTL_LIMIT_MAX);
			paged = 1;
		} else if (opt_is(argv[i], "--offset")) {
			req->offset = number("--offset", opt_value(argc, argv,
			    &i, "--offset"), 0, CTL_LIMIT_MAX * 100UL);
			paged = 1;
		} else if (strcmp(argv[i], "--bounce") == 0)
			bounce = 1;
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			usage(NULL);
		else if (argv[i][0] == '-' && argv[i][1] != '\0')
			usage("unknown option");
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			usage("too many arguments");
	}
	if (npos == 0)
		usage("no command given");
	if ((req->cmd = command_find(pos[0])) == NULL)
		usage("unknown command");
	req->arg = pos[1] != NULL ? pos[1] : "";
	if (req->cmd->arg == ARG_NONE && pos[1] != NULL)
		usage("this command takes no argument");
	if (req->cmd->arg == ARG_REQUIRED && pos[1] == NULL)
		usage("this command needs an argument");
	if (paged && !req->cmd->paged)
		usage("--limit and --offset go with queue, list and show");
	if (bounce && !req->cmd->bounce)
		usage("--bounce goes with remove");
	if (strlen(req->arg) > 1024)
		usage("argument too long");
	if (bounce)
		req->flags |= CTL_F_BOUNCE;
	if (req->json)
		req->flags |= CTL_F_JSON;
}

static int
control_connect(const char *path)
{
	struct sockaddr_un	 sun;
	struct timeval		 tv = { ANSWER_TIMEOUT, 0 };
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "mtactl: %s: socket path too long\n", path);
		exit(1);
	}
	strncpy(sun.sun_path, path, sizeof(sun.sun_path) - 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "mtactl: %s: %s (is mtad running?)\n", path,
		    strerror(errno));
		exit(1);
	}
	/* A master that never answers must not hang a script. */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/*
 * Replace control characters in every string of an answer by \xNN before
 * it reaches a terminal: HELO names, addresses and reply texts come from
 * the network, and an escape sequence must not drive the admin's terminal.
 */
static void
terminal_safe(struct json_object *o)
{
	struct json_object	*v;
	const char		*str;
	char			 buf[4096];
	size_t			 i, n, len;

	switch (json_object_get_type(o)) {
	case json_type_string:
		str = json_object_get_string(o);
		len = (size_t)json_object_get_string_len(o);
		for (i = 0; i < len; i++)
			if ((unsigned char)str[i] < 0x20 || str[i] == 0x7f)
				break;
		if (i < len) {
			log_escape(buf, sizeof(buf), str, len);
			json_object_set_string(o, buf);
		}
		break;
	case json_type_object:
		{
			json_object_object_foreach(o, key, val) {
				(void)key;
				if (val != NULL)
					terminal_safe(val);
			}
		}
		break;
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if ((v = json_object_array_get_idx(o, i)) != NULL)
				terminal_safe(v);
		break;
	default:
		break;
	}
}

/* Print the master's answer: the exit status. */
static int
answer(const struct request *req, struct msg *m)
{
	struct json_object	*o;
	const char		*text;
	uint32_t		 status;
	int			 rv = 0;

	status = msg_get_u32(m);
	text = msg_get_str(m);
	if (m->hdr.type != MSG_CTL_REPLY || msg_end(m) == -1) {
		fprintf(stderr, "mtactl: malformed answer\n");
		return 1;
	}
	if (status != 0) {
		fprintf(stderr, "mtactl: %s: %s\n", req->cmd->name, text);
		return 1;
	}
	if (req->json) {
		printf("%s\n", text);
		return 0;
	}
	if ((o = json_tokener_parse(text)) != NULL)
		terminal_safe(o);
	if (o == NULL || print_answer(req->cmd->name, o) == -1) {
		fprintf(stderr, "mtactl: unreadable answer\n");
		rv = 1;
	}
	if (o != NULL)
		json_object_put(o);
	return rv;
}

int
main(int argc, char *argv[])
{
	struct request		 req;
	struct chan		*c;
	struct msgb		*b;
	struct msg		*m;
	int			 rv;

	log_init(1, LOG_LEVEL_WARNING);
	log_procinit("mtactl");
	signal(SIGPIPE, SIG_IGN);
	parse_args(argc, argv, &req);

	event_init();
	c = chan_new(control_connect(req.socket), PROC_CONTROL, PROC_MASTER,
	    CHAN_UNTRUSTED, NULL, NULL);
	b = msgb_new(MSG_CTL_REQUEST, 0);
	msgb_str(b, req.cmd->name);
	msgb_u32(b, req.flags);
	msgb_str(b, req.arg);
	msgb_u32(b, req.limit);
	msgb_u32(b, req.offset);
	chan_send(c, b);
	/* A refused client is told why before the master closes: read on. */
	(void)chan_flush_sync(c);
	if (chan_read_sync(c, &m) != 1) {
		fprintf(stderr, "mtactl: no answer from mtad\n");
		chan_free(c);
		return 1;
	}
	rv = answer(&req, m);
	msg_free(m);
	chan_free(c);
	return rv;
}
