/*
 * mtad: the master process.
 *
 *	mtad [-dnv] [-f file] [--KEY=VALUE ...]
 *
 * Parses and checks the config (-n stops there), prepares the spool, binds
 * the listeners and the control socket, writes the pid file, then starts
 * and supervises the children.  SIGTERM/SIGINT: smtpd stops taking mail and
 * finishes its sessions, then the others stop.  SIGHUP: re-read the config
 * and hand each child its new slice.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <event.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "proto.h"
#include "xmalloc.h"

#define DEFAULT_CONF		"/etc/mtad/mtad.conf"
#define SHUTDOWN_SMTPD_WAIT	15	/* seconds for sessions to finish */
#define SHUTDOWN_HARD_LIMIT	30	/* then everything is killed */

struct master		*mtad;
static struct master	 master_state;
static struct event	 ev_sigterm, ev_sigint, ev_sighup, ev_sigchld;
static struct event	 ev_shutdown_phase, ev_shutdown_hard;
static int		 shutdown_phase;	/* 1: smtpd, 2: the rest */
static char		**flag_argv;		/* argv without the overrides */

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: mtad [-dnv] [-f file] [--KEY=VALUE ...]\n");
	exit(2);
}

/* Load the file, then the command-line overrides, then cross-checks. */
int
master_load_conf(struct conf **out, char **cause)
{
	struct conf	*conf = conf_new();
	char		*kv, *eq;
	int		 i;

	if (conf_load_file(conf, mtad->conf_path, cause) == -1)
		goto fail;
	for (i = 0; i < mtad->noverrides; i++) {
		kv = xstrdup(mtad->overrides[i] + 2);
		if ((eq = strchr(kv, '=')) == NULL) {
			xasprintf(cause, "--%s: expected --KEY=VALUE", kv);
			free(kv);
			goto fail;
		}
		*eq = '\0';
		if (conf_override(conf, kv, eq + 1, cause) == -1) {
			free(kv);
			goto fail;
		}
		free(kv);
	}
	if (conf_validate(conf, cause) == -1)
		goto fail;
	*out = conf;
	return 0;
fail:
	conf_free(conf);
	return -1;
}

/* Children live in ../libexec/mtad relative to this executable. */
static void
find_libexec(void)
{
	char	 self[4096];
	ssize_t	 n;

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) == -1)
		fatal("readlink /proc/self/exe");
	self[n] = '\0';
	snprintf(mtad->libexec, sizeof(mtad->libexec), "%s/../libexec/mtad",
	    dirname(self));
}

/* As root, the uid/gid that children drop to must exist. */
static void
resolve_user(void)
{
	struct passwd	*pw;

	mtad->root = (geteuid() == 0);
	if (!mtad->root) {
		mtad->uid = geteuid();
		mtad->gid = getegid();
		return;
	}
	if ((pw = getpwnam(mtad->conf->user)) == NULL)
		fatalx("user: %s does not exist", mtad->conf->user);
	if (pw->pw_uid == 0)
		fatalx("user: %s is root; mtad's processes must not run as "
		    "root", mtad->conf->user);
	mtad->uid = pw->pw_uid;
	mtad->gid = pw->pw_gid;
}

static void
master_exit(int code)
{
	master_control_close();
	master_pidfile_remove();
	log_info("stopped");
	exit(code);
}

/* Advance the shutdown: smtpd first, then the rest, then exit. */
void
master_shutdown_step(void)
{
	if (shutdown_phase == 1 && master_children_running(P_SMTPD) == 0) {
		shutdown_phase = 2;
		master_children_signal(P_CHILDREN & ~P_SMTPD, SIGTERM);
	}
	if (master_children_running(P_CHILDREN) == 0)
		master_exit(0);
}

static void
shutdown_phase_timeout(int fd, short ev, void *arg)
{
	log_warnx("smtpd still running after %d s: stopping the rest",
	    SHUTDOWN_SMTPD_WAIT);
	master_children_signal(P_SMTPD, SIGKILL);
	shutdown_phase = 2;
	master_children_signal(P_CHILDREN & ~P_SMTPD, SIGTERM);
}

static void
shutdown_hard_timeout(int fd, short ev, void *arg)
{
	log_warnx("children still running after %d s: killing them",
	    SHUTDOWN_HARD_LIMIT);
	master_children_signal(P_CHILDREN, SIGKILL);
	master_exit(1);
}

static void
sig_term(int sig, short ev, void *arg)
{
	struct timeval	 tv = { SHUTDOWN_SMTPD_WAIT, 0 };
	struct timeval	 hard = { SHUTDOWN_HARD_LIMIT, 0 };

	if (mtad->shutting_down) {
		log_warnx("second signal: killing children");
		master_children_signal(P_CHILDREN, SIGKILL);
		master_exit(1);
	}
	log_info("received signal %d: shutting down", sig);
	mtad->shutting_down = 1;
	shutdown_phase = 1;
	master_listen_close();
	master_control_close();
	master_children_signal(P_SMTPD, SIGTERM);
	evtimer_set(&ev_shutdown_phase, shutdown_phase_timeout, NULL);
	evtimer_add(&ev_shutdown_phase, &tv);
	evtimer_set(&ev_shutdown_hard, shutdown_hard_timeout, NULL);
	evtimer_add(&ev_shutdown_hard, &hard);
	master_shutdown_step();
}

/*
 * Re-read the config and hand each child its new slice.  Keys that only
 * a restart applies keep their running values; those that changed are
 * named in the log and in *restart (allocated, or NULL).
 */
int
master_reload(char **restart, char **cause)
{
	struct conf	*conf;

	*restart = NULL;
	if (mtad->shutting_down) {
		*cause = xstrdup("mtad is shutting down");
		return -1;
	}
	if (master_load_conf(&conf, cause) == -1) {
		log_warnx("reload failed, keeping the running config: %s",
		    *cause);
		return -1;
	}
	if ((*restart = conf_keep_restart(conf, mtad->conf)) != NULL)
		log_warnx("reload: %s changed: kept as running until mtad "
		    "is restarted", *restart);
	conf_free(mtad->conf);
	mtad->conf = conf;
	log_setlevel(mtad->verbose ? LOG_LEVEL_DEBUG :
	    log_level_from_name(conf->log_level));
	master_children_reload();
	log_info("configuration reloaded");
	return 0;
}

static void
sig_hup(int sig, short ev, void *arg)
{
	char	*cause = NULL, *restart = NULL;

	if (master_reload(&restart, &cause) == -1)
		free(cause);
	free(restart);
}

static void
sig_chld(int sig, short ev, void *arg)
{
	pid_t	 pid;
	int	 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		master_child_reaped(pid, status);
}

/* Split argv into --KEY=VALUE overrides and ordinary flags. */
static int
split_args(int argc, char **argv, char **flags)
{
	int	 i, n = 0;

	mtad->overrides = xcalloc(argc + 1, sizeof(char *));
	flags[n++] = argv[0];
	for (i = 1; i < argc; i++) {
		if (strncmp(argv[i], "--", 2) == 0 && argv[i][2] != '\0')
			mtad->overrides[mtad->noverrides++] = argv[i];
		else
			flags[n++] = argv[i];
	}
	flags[n] = NULL;
	return n;
}

int
main(int argc, char *argv[])
{
	char	*cause = NULL;
	int	 ch, nflag = 0, nflags, level;

	mtad = &master_state;
	mtad->conf_path = DEFAULT_CONF;
	flag_argv = xcalloc(argc + 1, sizeof(char *));
	nflags = split_args(argc, argv, flag_argv);
	while ((ch = getopt(nflags, flag_argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd':
			mtad->foreground = 1;
			break;
		case 'f':
			mtad->conf_path = optarg;
			break;
		case 'n':
			nflag = 1;
			break;
		case 'v':
			mtad->verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != nflags)
		usage();

	log_init(1, LOG_LEVEL_INFO);
	log_procinit("master");
	if (master_load_conf(&mtad->conf, &cause) == -1) {
		fprintf(stderr, "%s\n", cause);
		exit(1);
	}
	if (nflag) {
		if (mtad->verbose)
			conf_print(mtad->conf, stdout);
		printf("configuration OK\n");
		exit(0);
	}
	level = mtad->verbose ? LOG_LEVEL_DEBUG :
	    log_level_from_name(mtad->conf->log_level);
	log_init(mtad->foreground, level);
	log_procinit("master");

	find_libexec();
	resolve_user();
	if (!mtad->root)
		log_info("not running as root: children keep uid %ld",
		    (long)mtad->uid);
	master_spool_prepare();
	master_listen();
	if (!mtad->foreground && daemon(0, 0) == -1)
		fatal("daemon");
	master_pidfile_write();
	mtad->start_time = time(NULL);

	signal(SIGPIPE, SIG_IGN);
	event_init();
	signal_set(&ev_sigterm, SIGTERM, sig_term, NULL);
	signal_set(&ev_sigint, SIGINT, sig_term, NULL);
	signal_set(&ev_sighup, SIGHUP, sig_hup, NULL);
	signal_set(&ev_sigchld, SIGCHLD, sig_chld, NULL);
	signal_add(&ev_sigterm, NULL);
	signal_add(&ev_sigint, NULL);
	signal_add(&ev_sighup, NULL);
	signal_add(&ev_sigchld, NULL);

	master_control_open();
	master_children_init();
	master_children_start();
	log_info("started (pid %ld)", (long)getpid());
	event_dispatch();
	fatalx("exited event loop");
}
