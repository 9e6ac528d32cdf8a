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
#include "smtp.h"
#include "xmalloc.h"

struct smtp_conf	 smtp_conf;
static struct chan	*qmgr_chan;
static int		 auth_warned;

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
		break;
	default:
		fatalx("unexpected peer %s", proc_name(proc));
	}
}

/* Replace the routing settings with those of conf (taken over). */
static void
smtp_set_conf(struct conf *conf)
{
	char	 host[HOST_NAME_MAX + 1];

	free(smtp_conf.smarthost);
	free(smtp_conf.smarthost_username);
	if (smtp_conf.smarthost_password != NULL)
		xfreestr(smtp_conf.smarthost_password);
	free(smtp_conf.helo);

	smtp_conf.smarthost = xstrdup(conf->smarthost ? conf->smarthost : "");
	smtp_conf.smarthost_port = conf->smarthost_port;
	smtp_conf.smarthost_username = xstrdup(conf->smarthost_username ?
	    conf->smarthost_username : "");
	smtp_conf.smarthost_password = xstrdup(conf->smarthost_password ?
	    conf->smarthost_password : "");
	smtp_conf.connect_timeout = conf->smtp_connect_timeout;
	if (conf->smtp_hostname != NULL && conf->smtp_hostname[0] != '\0')
		smtp_conf.helo = xstrdup(conf->smtp_hostname);
	else if (gethostname(host, sizeof(host)) == 0 && host[0] != '\0') {
		host[sizeof(host) - 1] = '\0';
		smtp_conf.helo = xstrdup(host);
	} else
		smtp_conf.helo = xstrdup("localhost");
	conf_free(conf);

	if (smtp_conf.smarthost_username[0] != '\0' && !auth_warned) {
		log_warnx("smarthost-username is set but AUTH is not "
		    "implemented yet: delivering without AUTH");
		auth_warned = 1;
	}
	if (smtp_conf.smarthost[0] != '\0')
		log_debug("smarthost %s port %d", smtp_conf.smarthost,
		    smtp_conf.smarthost_port);
}

/* Still root, before the chroot: keep the routing slice. */
static void
smtp_configure(struct conf *conf)
{
	smtp_set_conf(conf);
}

static void
smtp_run(void)
{
	log_debug("smtp worker ready, EHLO %s", smtp_conf.helo);
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
