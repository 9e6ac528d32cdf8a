/*
 * smtp: entry point, configuration and peers.
 *
 * Peers: one qmgr (jobs in, results out) and one resolver.  Either may be
 * restarted by the master; the new instance arrives as a new peer.  When
 * qmgr goes away every job in flight is dropped without a word, because
 * the new qmgr schedules those recipients again.  When the resolver goes
 * away its pending lookups fail as temporary (smtp_res.c).
 */
#include <errno.h>
#include <event.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "child.h"
#include "conf.h"
#include "log.h"
#include "proto.h"
#include "smarthost_order.h"
#include "smtp.h"
#include "tls_policy.h"
#include "xmalloc.h"

struct smtp_conf	 smtp_conf;
static struct chan	*qmgr_chan;

/* Results go to the current qmgr; none while it restarts. */
void
smtp_qmgr_send(struct msgb *b)
{
	if (qmgr_chan == NULL) {
		msgb_free(b);
		return;
	}
	chan_send(qmgr_chan, b);
}

/* Messages from qmgr; its EOF drops every job (the new qmgr retries). */
static void
smtp_qmgr_dispatch(struct chan *c, struct msg *m, void *arg)
{
	if (m == NULL) {
		log_info("qmgr went away: dropping the jobs in flight");
		if (c == qmgr_chan)
			qmgr_chan = NULL;
		chan_free(c);
		smtp_job_abort_all();
		return;
	}
	switch (m->hdr.type) {
	case MSG_SMTP_DELIVER:
		smtp_job_deliver(m);
		break;
	default:
		fatalx("unexpected %s from qmgr", msg_name(m->hdr.type));
	}
}

/* A new qmgr (at setup or after it restarted) or a new resolver. */
static void
smtp_peer(int proc, uint32_t instance, int fd)
{
	switch (proc) {
	case PROC_QMGR:
		if (qmgr_chan != NULL) {
			/* The old one is gone even if we did not see EOF. */
			chan_free(qmgr_chan);
			qmgr_chan = NULL;
			smtp_job_abort_all();
		}
		qmgr_chan = chan_new(fd, PROC_SMTP, PROC_QMGR, 0,
		    smtp_qmgr_dispatch, NULL);
		break;
	case PROC_RESOLVER:
		smtp_res_peer(fd);
		smtp_sink_kick();
		break;
	default:
		fatalx("unexpected peer %s", proc_name(proc));
	}
}

/* "" for NULL, so that the fields are always strings. */
static const char *
smtp_str(const char *s)
{
	return s != NULL ? s : "";
}

/* Replace the routing settings with those of conf (taken over). */
static void
smtp_set_conf(struct conf *conf)
{
	struct conf	*old = smtp_conf.conf;
	char		 host[HOST_NAME_MAX + 1];

	free(smtp_conf.helo);
	smtp_conf.conf = conf;
	smtp_conf.smarthost = smtp_str(conf->smarthost);
	smtp_conf.smarthost_port = conf->smarthost_port;
	smtp_conf.smarthost_username = smtp_str(conf->smarthost_username);
	smtp_conf.smarthost_password = smtp_str(conf->smarthost_password);
	smtp_conf.shosts = conf->smarthosts.v;
	smtp_conf.nshosts = conf->smarthosts.n;
	smtp_conf.routes = conf->routes.v;
	smtp_conf.nroutes = conf->routes.n;
	smtp_conf.sink = smtp_str(conf->smtp_sink_address);
	smtp_conf.sink_port = conf->smtp_sink_port;
	smtp_conf.sink_username = smtp_str(conf->smtp_sink_username);
	smtp_conf.sink_password = smtp_str(conf->smtp_sink_password);
	smtp_conf.mx_port = conf->smtp_mx_port;
	smtp_conf.connect_timeout = conf->smtp_connect_timeout;
	/* The loader checked the name; unset means the default. */
	if ((smtp_conf.tls_policy = tls_policy_parse(conf->smtp_tls_policy)) ==
	    -1)
		smtp_conf.tls_policy = TLS_POLICY_OPPORTUNISTIC;
	if (conf->smtp_hostname != NULL && conf->smtp_hostname[0] != '\0')
		smtp_conf.helo = xstrdup(conf->smtp_hostname);
	else if (gethostname(host, sizeof(host)) == 0 && host[0] != '\0') {
		host[sizeof(host) - 1] = '\0';
		smtp_conf.helo = xstrdup(host);
	} else
		smtp_conf.helo = xstrdup("localhost");

	if (smtp_conf.nshosts > 0 && smtp_conf.smarthost[0] != '\0')
		log_warnx("both smarthost and smarthosts are set: using the "
		    "smarthosts list");
	if (smtp_conf.nshosts > SMARTHOST_MAX)
		log_warnx("smarthosts: only the first %d entries are used",
		    SMARTHOST_MAX);
	smtp_smarthost_reset();
	smtp_sink_configure();
	if (old != NULL)
		conf_free(old);
	if (smtp_conf.smarthost[0] != '\0')
		log_debug("smarthost %s port %d", smtp_conf.smarthost,
		    smtp_conf.smarthost_port);
}

/* Still root, before the chroot: keep the routing slice, load OpenSSL. */
static void
smtp_configure(struct conf *conf)
{
	smtp_tls_init();
	smtp_set_conf(conf);
}

static void
smtp_run(void)
{
	log_debug("smtp worker ready, EHLO %s", smtp_conf.helo);
	smtp_sink_kick();
}

/* SIGHUP: new routing values apply to the next jobs. */
static void
smtp_reload(struct conf *conf)
{
	smtp_set_conf(conf);
}

int
main(int argc, char **argv)
{
	static const struct child_ops ops = {
		.proc = PROC_SMTP,
		.chroot = 1,
		.configure = smtp_configure,
		.run = smtp_run,
		.peer = smtp_peer,
		.reload = smtp_reload,
	};

	child_main(argc, argv, &ops);
}
