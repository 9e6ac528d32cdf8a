/*
 * smtpd: the inbound SMTP process.  Entry point, the configuration slice
 * it keeps, and its wiring to the master (listeners, the qmgr channel,
 * reload, shutdown).
 *
 * The master binds the listening sockets and hands them over, so smtpd
 * runs chrooted and unprivileged from the start; it never opens a spool
 * file either: qmgr passes it one descriptor per message (spool.c).
 *
 * Shutdown (SIGTERM): the listeners close at once, idle sessions get
 * "421" and close, sessions in a transaction may finish it for
 * SMTPD_SHUTDOWN_GRACE seconds; then whatever is left is dropped (their
 * spool files rolled back) and the process exits 0.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "conf.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"
#include "smtpd.h"

#define SMTPD_DEFAULT_TIMEOUT	300

struct smtpd_env	 smtpd_env;

static struct event	 smtpd_grace_ev;
static int		 smtpd_exiting;

static void	smtpd_configure(struct conf *);
static void	smtpd_run(void);
static void	smtpd_peer(int, uint32_t, int);
static void	smtpd_listener(int, uint32_t, const char *);
static void	smtpd_reload(struct conf *);
static void	smtpd_shutdown(void);

static const struct child_ops smtpd_ops = {
	.proc = PROC_SMTPD,
	.chroot = 1,
	.configure = smtpd_configure,
	.run = smtpd_run,
	.peer = smtpd_peer,
	.listener = smtpd_listener,
	.reload = smtpd_reload,
	.shutdown = smtpd_shutdown,
};

int
main(int argc, char **argv)
{
	child_main(argc, argv, &smtpd_ops);
}

/* The name in the greeting and Received: smtp-hostname, or the host's. */
static int
smtpd_hostname(const struct conf *conf, char *buf, size_t len, char **cause)
{
	const char	*p;

	if (conf->smtp_hostname != NULL && *conf->smtp_hostname != '\0') {
		if (strlen(conf->smtp_hostname) >= len) {
			xasprintf(cause, "smtp-hostname: too long");
			return -1;
		}
		snprintf(buf, len, "%s", conf->smtp_hostname);
	} else if (gethostname(buf, len) == -1) {
		log_warn("gethostname");
		snprintf(buf, len, "localhost");
	}
	buf[len - 1] = '\0';
	/* It goes into every greeting and header: one printable word. */
	for (p = buf; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f) {
			xasprintf(cause, "smtp-hostname: \"%s\" is not a "
			    "host name", buf);
			return -1;
		}
	return 0;
}

/* Keep the keys smtpd uses; -1 with *cause when one is unusable. */
static int
smtpd_apply(const struct conf *conf, char **cause)
{
	struct netaddr_range	 range, proxy;
	char			 host[sizeof(smtpd_env.hostname)], *why;

	if (netaddr_range_parse(&range,
	    conf->smtp_range != NULL ? conf->smtp_range : "", &why) == -1) {
		xasprintf(cause, "smtp-range: %s", why);
		free(why);
		return -1;
	}
	if (smtpd_hostname(conf, host, sizeof(host), cause) == -1) {
		netaddr_range_clear(&range);
		return -1;
	}
	if (netaddr_range_parse(&proxy,
	    conf->smtp_proxy != NULL ? conf->smtp_proxy : "", &why) == -1) {
		netaddr_range_clear(&range);
		xasprintf(cause, "smtp-proxy: %s", why);
		free(why);
		return -1;
	}
	netaddr_range_clear(&smtpd_env.proxy);
	smtpd_env.proxy = proxy;
	if (range.n == 0)
		log_warnx("smtp-range is empty: every client will be refused");
	netaddr_range_clear(&smtpd_env.range);
	smtpd_env.range = range;
	auth_configure(conf);
	memcpy(smtpd_env.hostname, host, sizeof(host));
	smtpd_env.maxsize = conf->smtp_maxsize;
	smtpd_env.max_recipients = conf->smtp_max_recipients > 0 ?
	    conf->smtp_max_recipients : 0;
	smtpd_env.timeout = conf->smtp_timeout > 0 ?
	    conf->smtp_timeout : SMTPD_DEFAULT_TIMEOUT;
	smtpd_env.max_connections = conf->smtp_max_connections > 0 ?
	    conf->smtp_max_connections : 0;
	smtpd_env.max_conn_per_ip = conf->smtp_max_connections_per_ip;
	smtpd_env.session_timeout = conf->smtp_session_timeout;
	smtpd_env.greet_delay = conf->smtp_greet_delay;
	smtpd_env.mq_headers = conf->smtp_mq_headers;
	return 0;
}

/* Still root and not chrooted: read what needs the real file system. */
static void
smtpd_configure(struct conf *conf)
{
	char	*cause;

	/* Load the zone file now; Received: dates are made in the chroot. */
	tzset();
	if (smtpd_apply(conf, &cause) == -1)
		fatalx("%s", cause);
	/* The certificate and key are read now, as root, once. */
	if (conf->smtp_certificate != NULL && *conf->smtp_certificate != '\0' &&
	    tls_init(conf->smtp_certificate, conf->smtp_key != NULL &&
	    *conf->smtp_key != '\0' ? conf->smtp_key : conf->smtp_certificate,
	    conf->smtp_ciphers, &cause) == -1)
		fatalx("%s", cause);
	conf_free(conf);
}

static void
smtpd_run(void)
{
	log_debug("ready as %s, %llu-octet messages, %d recipients, "
	    "%d s timeout", smtpd_env.hostname,
	    (unsigned long long)smtpd_env.maxsize,
	    smtpd_env.max_recipients, smtpd_env.timeout);
}

static void
smtpd_peer(int proc, uint32_t instance, int fd)
{
	if (proc != PROC_QMGR) {
		log_warnx("unexpected peer %s, ignored", proc_name(proc));
		close(fd);
		return;
	}
	spool_set_chan(fd);
}

static void
smtpd_listener(int fd, uint32_t flags, const char *addr)
{
	listener_add(fd, flags, addr);
}

/* SIGHUP: new limits apply to new commands and sessions. */
static void
smtpd_reload(struct conf *conf)
{
	char	*cause;

	if (smtpd_apply(conf, &cause) == -1) {
		log_warnx("reload: %s; keeping the previous settings", cause);
		free(cause);
	} else
		log_info("configuration reloaded");
	conf_free(conf);
}

/* Exit from the event loop, after the last ROLLBACKs reached qmgr. */
static void
smtpd_exit_cb(int fd, short ev, void *arg)
{
	spool_flush();
	log_info("exiting");
	exit(0);
}

/* Called when the last session is gone during shutdown. */
void
smtpd_exit_soon(void)
{
	struct timeval	tv = { 0, 0 };

	if (smtpd_exiting)
		return;
	smtpd_exiting = 1;
	if (event_once(-1, EV_TIMEOUT, smtpd_exit_cb, NULL, &tv) == -1)
		smtpd_exit_cb(-1, 0, NULL);
}

/* The grace period is over: drop every session left. */
static void
smtpd_grace_cb(int fd, short ev, void *arg)
{
	log_info("shutdown grace period over, dropping %u session(s)",
	    smtpd_env.nsessions);
	session_kill_all();
	smtpd_exit_soon();
}

static void
smtpd_shutdown(void)
{
	struct timeval	tv = { SMTPD_SHUTDOWN_GRACE, 0 };

	if (smtpd_env.shutting_down)
		return;
	smtpd_env.shutting_down = 1;
	listener_close_all();
	log_info("shutting down, %u session(s) open", smtpd_env.nsessions);
	if (smtpd_env.nsessions == 0) {
		smtpd_exit_soon();
		return;
	}
	evtimer_set(&smtpd_grace_ev, smtpd_grace_cb, NULL);
	evtimer_add(&smtpd_grace_ev, &tv);
	session_shutdown_all();
}
