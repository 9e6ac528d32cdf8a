/*
 * qmgr entry point: the child_main() callbacks (configure, run, peers,
 * reload, shutdown) and one dispatch table per kind of peer.
 *
 * qmgr runs as `user` without a chroot: it needs the spool by absolute
 * path.  Its peers are one smtpd (replaced when smtpd restarts), several
 * smtp workers (one channel each, by instance number; a worker that
 * crashes comes back on a new channel) and the resolver (kept for later
 * use).  Each message type goes to one handler; proto.h's matrix has
 * already refused types the sender may not send, so a type without a
 * handler here is a bug in a trusted peer and fatal.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "child.h"
#include "conf.h"
#include "log.h"
#include "proto.h"
#include "qmgr.h"
#include "xmalloc.h"

struct handler {
	int	  type;
	void	(*fn)(struct chan *, struct msg *);
};

static const struct handler smtpd_handlers[] = {
	{ MSG_QMGR_CREATE,	qmgr_spool_create },
	{ MSG_QMGR_COMMIT,	qmgr_spool_commit },
	{ MSG_QMGR_ROLLBACK,	qmgr_spool_rollback },
	{ 0, NULL }
};

static const struct handler smtp_handlers[] = {
	{ MSG_SMTP_RESULT,	qmgr_deliver_result },
	{ 0, NULL }
};

static const struct handler resolver_handlers[] = {
	{ 0, NULL }
};

struct qmgr	 qmgr;

static void	 qmgr_conf_apply(struct conf *);
static void	 qmgr_configure(struct conf *);
static void	 qmgr_run(void);
static void	 qmgr_peer(int, uint32_t, int);
static void	 qmgr_reload(struct conf *);
static void	 qmgr_shutdown(void);

static const struct child_ops qmgr_ops = {
	.proc = PROC_QMGR,
	.chroot = 0,
	.configure = qmgr_configure,
	.run = qmgr_run,
	.peer = qmgr_peer,
	.listener = NULL,
	.reload = qmgr_reload,
	.shutdown = qmgr_shutdown,
	.control = qmgr_control_request,
};

int
main(int argc, char **argv)
{
	child_main(argc, argv, &qmgr_ops);
}

/* Call the handler for msg's type from a peer's table. */
static void
dispatch(const struct handler *h, struct chan *chan, struct msg *msg)
{
	for (; h->fn != NULL; h++) {
		if (h->type == msg->hdr.type) {
			h->fn(chan, msg);
			return;
		}
	}
	fatalx("unexpected %s from %s", msg_name(msg->hdr.type),
	    proc_name(chan_peer_proc(chan)));
}

/* The name DSNs are reported under: smtp-hostname, or the host's. */
static char *
conf_hostname(const struct conf *conf)
{
	char	 host[HOST_NAME_MAX + 1];

	if (conf->smtp_hostname != NULL && conf->smtp_hostname[0] != '\0')
		return xstrdup(conf->smtp_hostname);
	if (gethostname(host, sizeof(host)) == -1 || host[0] == '\0')
		return xstrdup("localhost");
	host[sizeof(host) - 1] = '\0';
	return xstrdup(host);
}

/* Retries, expiry, warnings, capacities, smarthost flag: live keys. */
static void
qmgr_conf_apply(struct conf *conf)
{
	size_t	 i;

	free(qmgr.retries);
	qmgr.nretries = conf->retries.n;
	qmgr.retries = xcalloc(qmgr.nretries > 0 ? qmgr.nretries : 1,
	    sizeof(*qmgr.retries));
	for (i = 0; i < qmgr.nretries; i++)
		qmgr.retries[i] = conf->retries.v[i];
	qmgr.max_delivery_time = conf->max_delivery_time;
	qmgr.delay_warning_time = conf->delay_warning_time;
	qmgr.max_per_queue = conf->max_connections_per_queue;
	qmgr.max_inflight = conf->max_connections;
	free(qmgr.hostname);
	qmgr.hostname = conf_hostname(conf);
	qmgr.smarthost = (conf->smarthost != NULL &&
	    conf->smarthost[0] != '\0') || conf->smarthosts.n > 0;
}

/* Keep qmgr's slice of the config (ours to free); still root. */
static void
qmgr_configure(struct conf *conf)
{
	TAILQ_INIT(&qmgr.workers);
	qmgr_table_init(&qmgr.msgs);
	qmgr_table_init(&qmgr.pending);
	qmgr_table_init(&qmgr.jobs);
	if (conf->spool_dir == NULL)
		fatalx("no spool-dir");
	qmgr.spool_dir = xstrdup(conf->spool_dir);
	/* The bridge's keys need a restart (CONF_F_RESTART). */
	qmgr.mq_on = conf->rabbitmq_address != NULL &&
	    conf->rabbitmq_address[0] != '\0';
	qmgr.mq_address = xstrdup(qmgr.mq_on ? conf->rabbitmq_address : "");
	qmgr.mq_inbox = xstrdup(conf->rabbitmq_inbox);
	qmgr.mq_outbox = xstrdup(conf->rabbitmq_outbox);
	qmgr.mq_results = xstrdup(conf->rabbitmq_results);
	qmgr.mq_success = xstrdup(conf->rabbitmq_success);
	qmgr.mq_failure = xstrdup(conf->rabbitmq_failure);
	qmgr.mq_retry = xstrdup(conf->rabbitmq_retry);
	qmgr.mq_prefetch = conf->rabbitmq_prefetch;
	qmgr.mq_spool_max = conf->rabbitmq_spool_max;
	qmgr.mq_heartbeat = conf->rabbitmq_heartbeat;
	if (qmgr.mq_on && *qmgr.mq_outbox == '\0' && *qmgr.mq_inbox == '\0')
		fatalx("rabbitmq-inbox and rabbitmq-outbox are both empty");
	qmgr_conf_apply(conf);
	conf_free(conf);
}

/* Privileges are dropped: recover the spool before any peer is served. */
static void
qmgr_run(void)
{
	qmgr_queue_init();
	qmgr_mq_init();
	qmgr_spool_init();
	qmgr_spool_recover();
	qmgr_queue_recovered();		/* probe each queue once */
	if (qmgr.mq_on)
		qmgr_amqp_init(qmgr.mq_address);
}

static void
smtpd_cb(struct chan *chan, struct msg *msg, void *arg)
{
	if (msg != NULL) {
		dispatch(smtpd_handlers, chan, msg);
		return;
	}
	log_info("smtpd channel closed");
	qmgr_spool_smtpd_closed(chan);
	if (qmgr.smtpd == chan)
		qmgr.smtpd = NULL;
	chan_free(chan);
}

static void
smtp_cb(struct chan *chan, struct msg *msg, void *arg)
{
	struct qmgr_worker	*w = arg;

	if (msg != NULL) {
		dispatch(smtp_handlers, chan, msg);
		return;
	}
	log_info("smtp worker %u channel closed", w->instance);
	qmgr_deliver_worker_closed(w);	/* frees chan */
}

static void
resolver_cb(struct chan *chan, struct msg *msg, void *arg)
{
	if (msg != NULL) {
		dispatch(resolver_handlers, chan, msg);
		return;
	}
	if (qmgr.resolver == chan)
		qmgr.resolver = NULL;
	chan_free(chan);
}

/* A channel to a peer, at setup or after that peer restarted. */
static void
qmgr_peer(int proc, uint32_t instance, int fd)
{
	struct qmgr_worker	*w;

	switch (proc) {
	case PROC_SMTPD:
		/* A new smtpd replaces the old: its transactions are gone. */
		if (qmgr.smtpd != NULL) {
			qmgr_spool_smtpd_closed(qmgr.smtpd);
			chan_free(qmgr.smtpd);
		}
		qmgr.smtpd = chan_new(fd, PROC_QMGR, PROC_SMTPD, 0, smtpd_cb,
		    NULL);
		break;
	case PROC_SMTP:
		if ((w = qmgr_deliver_worker_find(instance)) != NULL)
			qmgr_deliver_worker_closed(w);
		w = qmgr_deliver_worker_new(instance);
		w->chan = chan_new(fd, PROC_QMGR, PROC_SMTP, 0, smtp_cb, w);
		break;
	case PROC_RESOLVER:
		if (qmgr.resolver != NULL)
			chan_free(qmgr.resolver);
		qmgr.resolver = chan_new(fd, PROC_QMGR, PROC_RESOLVER, 0,
		    resolver_cb, NULL);
		break;
	default:
		fatalx("unexpected peer %s", proc_name(proc));
	}
	log_debug("peer %s %u connected", proc_name(proc), instance);
}

/* SIGHUP: the live keys of qmgr_conf_apply() take effect at once. */
static void
qmgr_reload(struct conf *conf)
{
	int	 was = qmgr.smarthost;

	qmgr_conf_apply(conf);
	conf_free(conf);
	if (qmgr.smarthost != was) {
		log_info("smarthost %s: re-sorting the queues",
		    qmgr.smarthost ? "set" : "unset");
		qmgr_queue_rekey();
		qmgr_ctlindex_rebuild();	/* queue keys changed */
	}
	qmgr_queue_recap();
}

/* SIGTERM: everything committed is on disk; nothing else to save. */
static void
qmgr_shutdown(void)
{
	log_info("exiting");
	exit(0);
}
