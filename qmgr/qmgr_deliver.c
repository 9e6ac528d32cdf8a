/*
 * Jobs to the smtp workers, and their results.
 *
 * A job is one message and up to QMGR_JOB_MAX_RCPT of its recipients in
 * one queue.  It goes to the worker with the fewest jobs in flight as
 * MSG_SMTP_DELIVER, with a fresh read-only descriptor of the queue file,
 * so that no two jobs share a file offset; at most max-connections jobs
 * are in flight in all.  The worker answers MSG_SMTP_RESULT with the job
 * id in peerid and one status per recipient:
 *
 *	RCPT_DELIVERED	final; the worker has logged the delivery line; a
 *			"delivered" DSN when the recipient's NOTIFY asks
 *	RCPT_FAILED	final; the worker logged the reply; a bounce (RFC
 *			3464 DSN) goes to the sender unless it is <> or
 *			NOTIFY says otherwise
 *	RCPT_DEFERRED	retried after the message's own retries or the
 *			config's (the last interval repeats); failed as
 *			expired at maxdelivertime (else max-delivery-time
 *			after arrival) or after maxattempts; a delay
 *			warning once delay-warning-time has passed
 *
 * The recipients of one result that end the same way are reported in one
 * DSN (struct qmgr_report), written before the envelope is updated: a
 * crash in between sends a DSN twice, never not at all.  A bounce that
 * cannot be queued (disk full) leaves its recipients deferred, to fail
 * and bounce again on a later attempt.  After each result the envelope
 * on disk is updated, or the message is removed when every recipient is
 * final.  When a worker goes away, its jobs' recipients become due at
 * once: a duplicate delivery is allowed, a lost message is not.
 *
 * Each result also tells the queue whether its destination answered at
 * all (qmgr_queue_feedback), which drives the queue's back-off; the due
 * recipients of a suspended queue are deferred here without a job
 * (qmgr_deliver_suspended).  A recipient deferred because the
 * destination could not be reached is marked noreply, so that the
 * queue's next delivery releases it early (qmgr_queue_delivered), unless
 * the failure looks like its own: another job of the queue got a reply
 * while this one was in flight, or it had just been released.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "dsn.h"
#include "log.h"
#include "proto.h"
#include "qmgr.h"
#include "spool_slot.h"
#include "xmalloc.h"

#define QMGR_LOG_TEXT	512

/* One recipient's entry in a MSG_SMTP_RESULT, valid while it is read. */
struct result {
	uint32_t	 idx;
	uint32_t	 status;
	uint32_t	 code;
	const char	*dsn;
	const char	*text;
	const char	*relay;
	const char	*stage;		/* "connect"... "data", or "" */
};

static uint32_t	 job_last_id;

struct qmgr_worker *
qmgr_deliver_worker_find(uint32_t instance)
{
	struct qmgr_worker	*w;

	TAILQ_FOREACH(w, &qmgr.workers, entry)
		if (w->instance == instance)
			return w;
	return NULL;
}

/* A new worker; the caller attaches its channel. */
struct qmgr_worker *
qmgr_deliver_worker_new(uint32_t instance)
{
	struct qmgr_worker	*w;

	w = xcalloc(1, sizeof(*w));
	w->instance = instance;
	TAILQ_INIT(&w->jobs);
	TAILQ_INSERT_TAIL(&qmgr.workers, w, entry);
	qmgr_queue_kick();
	return w;
}

/* The worker with the fewest jobs in flight, NULL when there is none. */
static struct qmgr_worker *
worker_pick(void)
{
	struct qmgr_worker	*w, *best = NULL;

	TAILQ_FOREACH(w, &qmgr.workers, entry)
		if (best == NULL || w->ninflight < best->ninflight)
			best = w;
	return best;
}

/* May one more job start: below max-connections, and a worker there? */
int
qmgr_deliver_capacity(void)
{
	return qmgr.ninflight < (size_t)qmgr.max_inflight &&
	    !TAILQ_EMPTY(&qmgr.workers);
}

/* Forget a job: off its worker and the table, its queue slot freed. */
static void
job_unlink(struct qmgr_job *job)
{
	if (job->worker != NULL) {
		TAILQ_REMOVE(&job->worker->jobs, job, entry);
		job->worker->ninflight--;
	}
	qmgr.ninflight--;
	qmgr_table_del(&qmgr.jobs, &job->id, sizeof(job->id));
	qmgr_queue_job_done(job->qmsg->queue);
}

/* When the message's recipients fail as expired. */
int64_t
qmgr_deliver_expiry(const struct qmgr_msg *m)
{
	if (m->props->maxdelivertime != 0)
		return m->props->maxdelivertime;
	return m->env.received + qmgr.max_delivery_time;
}

/*
 * The next attempt's time on the message's own schedule or ours, up to
 * expire (INT64_MAX: the plain schedule).
 */
static int64_t
msg_retry_next(const struct qmgr_msg *m, uint32_t attempts, time_t now,
    int64_t expire)
{
	if (m->props->retries != NULL)
		return envelope_retry_next(m->props->retries,
		    m->props->nretries, attempts, now, expire);
	return envelope_retry_next(qmgr.retries, qmgr.nretries, attempts, now,
	    expire);
}

/* Does the sender want to hear about this recipient's action? */
static int
rcpt_wants(const struct qmgr_msg *m, const struct envelope_rcpt *er,
    int action)
{
	int	 notify = er->notify != 0 ? er->notify : m->props->notify;

	if (m->env.sender[0] == '\0')
		return 0;		/* never to <> (RFC 5321 4.5.5) */
	return dsn_notify_wants(notify, action, qmgr.delay_warning_time > 0);
}

/* A recipient ran out of time or attempts: it fails, status 4.4.7. */
static void
rcpt_expire(struct qmgr_rcpt *r, struct qmgr_report *rep, const char *why)
{
	struct qmgr_msg		*m = r->msg;
	struct envelope_rcpt	*er = &m->env.rcpts[r->idx];
	char			 rcpt[QMGR_LOG_TEXT];

	er->state = ENV_RCPT_FAILED;
	snprintf(er->status, sizeof(er->status), "4.4.7");
	log_escape(rcpt, sizeof(rcpt), er->address, strlen(er->address));
	log_info("%s: to=<%s>, dsn=4.4.7, status=expired (%s after %u "
	    "attempt%s)", m->env.id, rcpt, why, er->attempts,
	    er->attempts == 1 ? "" : "s");
	qmgr_report_add(rep, DSN_ACTION_FAILED, r);
}

/* A deferral: retry later, or fail the recipient once it expired. */
static void
rcpt_deferred(struct qmgr_rcpt *r, time_t now, struct qmgr_report *rep)
{
	struct qmgr_msg		*m = r->msg;
	struct envelope_rcpt	*er = &m->env.rcpts[r->idx];
	int64_t			 expire = qmgr_deliver_expiry(m);

	er->attempts++;
	if (now >= expire) {
		rcpt_expire(r, rep, "maximum delivery time reached");
		return;
	}
	if (m->props->maxattempts != 0 &&
	    er->attempts >= m->props->maxattempts) {
		rcpt_expire(r, rep, "maximum number of attempts reached");
		return;
	}
	er->state = ENV_RCPT_DEFERRED;
	er->next = msg_retry_next(m, er->attempts, now, expire);
	if (qmgr.delay_warning_time > 0 && !er->warned &&
	    now - m->env.received >= qmgr.delay_warning_time)
		qmgr_report_add(rep, DSN_ACTION_DELAYED, r);
	qmgr_queue_rcpt_schedule(r);
}

/* Keep what the attempt said, for the envelope and a DSN. */
static void
rcpt_record(struct envelope_rcpt *er, const struct result *res)
{
	char	*last;

	/* Shared strings (envelope_share): a down host's text is common. */
	if (res->code != 0) {
		xasprintf(&last, "%u %s %s", res->code, res->dsn, res->text);
		envelope_set(&er->last, last);
		free(last);
	} else
		envelope_set(&er->last, res->text);
	er->code = res->code;
	snprintf(er->status, sizeof(er->status), "%s", res->dsn);
	envelope_set(&er->relay, res->relay);
}

/*
 * Record one recipient's outcome.  A failed recipient stays attached
 * until report_flush() knows whether its bounce could be queued.  A
 * deferral because the destination was down may be released early, if
 * may_release.
 */
static void
rcpt_result(struct qmgr_rcpt *r, const struct result *res, time_t now,
    struct qmgr_report *rep, int may_release)
{
	struct envelope_rcpt	*er = &r->msg->env.rcpts[r->idx];

	rcpt_record(er, res);
	r->stage = qmgr_stage_index(res->stage);
	r->noreply = may_release && res->status == RCPT_DEFERRED &&
	    qmgr_queue_unreached(res->code, res->dsn, res->relay);
	r->released = 0;
	switch (res->status) {
	case RCPT_DELIVERED:
		er->state = ENV_RCPT_DELIVERED;
		er->attempts++;
		qmgr_queue_rcpt_final(r);
		qmgr_report_add(rep, DSN_ACTION_DELIVERED, r);
		break;
	case RCPT_FAILED:
		er->state = ENV_RCPT_FAILED;
		er->attempts++;
		qmgr_report_add(rep, DSN_ACTION_FAILED, r);
		break;
	default:
		rcpt_deferred(r, now, rep);
		break;
	}
}

/* The recipients of list rcpts[0..n) that want a DSN of action. */
static size_t
report_select(struct qmgr_report *rep, int action, struct qmgr_rcpt **out)
{
	struct qmgr_msg		*m = rep->msg;
	struct qmgr_rcpt	*r;
	size_t			 i, n = 0;

	for (i = 0; i < rep->n[action]; i++) {
		r = rep->rcpts[action][i];
		if (rcpt_wants(m, &m->env.rcpts[r->idx], action))
			out[n++] = r;
	}
	return n;
}

/* Say why a failed recipient is not bounced. */
static void
log_no_bounce(struct qmgr_msg *m, struct envelope_rcpt *er)
{
	char	 rcpt[QMGR_LOG_TEXT];

	log_escape(rcpt, sizeof(rcpt), er->address, strlen(er->address));
	log_info("%s: to=<%s>: no non-delivery notification (%s)",
	    m->env.id, rcpt, m->env.sender[0] == '\0' ? "null sender" :
	    "NOTIFY excludes FAILURE");
}

/* Failed recipients: one bounce, then final (or deferred if it failed). */
static void
report_failed(struct qmgr_report *rep, struct qmgr_rcpt **want,
    time_t now)
{
	struct qmgr_msg		*m = rep->msg;
	struct qmgr_rcpt	*r;
	struct envelope_rcpt	*er;
	size_t			 i, n;
	int			 rv = 0;

	if ((n = report_select(rep, DSN_ACTION_FAILED, want)) > 0)
		rv = qmgr_bounce_send(m, DSN_ACTION_FAILED, want, n, now);
	for (i = 0; i < rep->n[DSN_ACTION_FAILED]; i++) {
		r = rep->rcpts[DSN_ACTION_FAILED][i];
		er = &m->env.rcpts[r->idx];
		if (!rcpt_wants(m, er, DSN_ACTION_FAILED))
			log_no_bounce(m, er);
		else if (rv == -1) {
			/* Try again later: it fails and bounces again. */
			er->state = ENV_RCPT_DEFERRED;
			er->next = msg_retry_next(m, er->attempts, now,
			    INT64_MAX);
			qmgr_queue_rcpt_schedule(r);
			continue;
		}
		qmgr_queue_rcpt_final(r);
	}
	if (rv == -1)
		log_warnx("%s: bounce not queued: %zu recipient%s deferred "
		    "instead", m->env.id, n, n == 1 ? "" : "s");
}

/* Send a batch's DSNs: failures, delay warnings, successes. */
static void
report_flush(struct qmgr_report *rep, time_t now)
{
	struct qmgr_msg		*m = rep->msg;
	struct qmgr_rcpt	**want;
	size_t			 i, n;
	int			 rv = 0;

	/* The common case, all deferred or delivered unasked: no work. */
	if (rep->n[DSN_ACTION_FAILED] == 0 && rep->n[DSN_ACTION_DELAYED] == 0 &&
	    (rep->n[DSN_ACTION_DELIVERED] == 0 || m->env.sender[0] == '\0')) {
		qmgr_report_free(rep);
		return;
	}
	want = xcalloc(rep->cap > 0 ? rep->cap : 1, sizeof(*want));
	report_failed(rep, want, now);

	if ((n = report_select(rep, DSN_ACTION_DELAYED, want)) > 0)
		rv = qmgr_bounce_send(m, DSN_ACTION_DELAYED, want, n, now);
	/* Warned once, whether told or not; a failed warning is retried. */
	for (i = 0; i < rep->n[DSN_ACTION_DELAYED]; i++)
		m->env.rcpts[rep->rcpts[DSN_ACTION_DELAYED][i]->idx].warned =
		    1;
	if (rv == -1)
		for (i = 0; i < n; i++)
			m->env.rcpts[want[i]->idx].warned = 0;

	if ((n = report_select(rep, DSN_ACTION_DELIVERED, want)) > 0)
		(void)qmgr_bounce_send(m, DSN_ACTION_DELIVERED, want, n, now);
	free(want);
	qmgr_report_free(rep);
}

/* Write the message's new state, or remove it when it is done. */
static void
msg_settle(struct qmgr_msg *m)
{
	if (m->transient)
		qmgr_mq_settle(m);	/* results to the broker */
	else if (qmgr_msg_done(m))
		qmgr_spool_remove(m);
	else
		qmgr_spool_update(m);
}

/* Fail a job before it reached a worker, as if every recipient deferred. */
static void
job_defer_all(struct qmgr_job *job, const char *text)
{
	struct qmgr_msg		*m = job->qmsg->msg;
	struct qmgr_report	 rep;
	struct result		 res = { 0, RCPT_DEFERRED, 451, "4.3.0", text,
				    "none", "" };
	time_t			 now = time(NULL);
	size_t			 i;

	job_unlink(job);
	qmgr_report_init(&rep, m, job->nrcpt);
	for (i = 0; i < job->nrcpt; i++)
		rcpt_result(job->rcpts[i], &res, now, &rep, 0);
	report_flush(&rep, now);
	msg_settle(m);
	free(job->rcpts);
	free(job);
}

/* The next free job id (never 0, never one in flight). */
static uint32_t
job_next_id(void)
{
	do {
		job_last_id++;
	} while (job_last_id == 0 ||
	    qmgr_table_get(&qmgr.jobs, &job_last_id, sizeof(job_last_id)));
	return job_last_id;
}

/*
 * Send recipients rcpts[0..n) of qmsg to the least busy worker; the
 * scheduler only calls this when qmgr_deliver_capacity() said yes.
 * Takes ownership of rcpts.
 */
void
qmgr_deliver_job(struct qmgr_qmsg *qm, struct qmgr_rcpt **rcpts, size_t n)
{
	struct qmgr_msg		*m = qm->msg;
	struct qmgr_job		*job;
	struct msgb		*b;
	size_t			 i;
	int			 fd;

	job = xcalloc(1, sizeof(*job));
	job->id = job_next_id();
	job->qmsg = qm;
	job->rcpts = rcpts;
	job->nrcpt = n;
	job->nreply = qm->queue->nreply;
	qmgr_table_put(&qmgr.jobs, &job->id, sizeof(job->id), job);
	if ((job->worker = worker_pick()) == NULL)
		log_panic("%s: no worker", __func__);
	TAILQ_INSERT_TAIL(&job->worker->jobs, job, entry);
	job->worker->ninflight++;
	qmgr.ninflight++;

	if ((fd = qmgr_spool_open_data(m)) == -1) {
		log_warn("%s: open queue file", m->env.id);
		job_defer_all(job, "cannot open the queue file");
		return;
	}
	b = msgb_new(MSG_SMTP_DELIVER, job->id);
	msgb_str(b, m->env.id);
	msgb_str(b, qm->queue->key);
	msgb_str(b, m->env.sender);
	/* The source: the address the message came in on, as bound here. */
	msgb_str(b, m->env.bind_ip != NULL ? m->env.bind_ip :
	    m->env.local_ip);
	msgb_str(b, m->env.properties);
	msgb_u64(b, m->env.size);
	/* Where the message is in the slot file (common/spool_slot.h). */
	msgb_u64(b, SLOT_DATA_OFF);
	msgb_u64(b, m->slot.data_len);
	msgb_u32(b, (uint32_t)n);
	for (i = 0; i < n; i++) {
		msgb_u32(b, (uint32_t)rcpts[i]->idx);
		msgb_str(b, m->env.rcpts[rcpts[i]->idx].address);
	}
	msgb_fd(b, fd);
	chan_send(job->worker->chan, b);
	log_debug("%s: job %u to smtp worker %u: queue %s, %zu recipient%s",
	    m->env.id, job->id, job->worker->instance, qm->queue->key, n,
	    n == 1 ? "" : "s");
}

/* The job's recipient with index idx, NULL when it is not in the job. */
static struct qmgr_rcpt *
job_rcpt(struct qmgr_job *job, uint32_t idx, size_t *pos)
{
	size_t	 i;

	for (i = 0; i < job->nrcpt; i++) {
		if (job->rcpts[i] != NULL && job->rcpts[i]->idx == idx) {
			*pos = i;
			return job->rcpts[i];
		}
	}
	return NULL;
}

/* Read a MSG_SMTP_RESULT payload; any malformation is fatal (trusted). */
static struct result *
result_read(struct msg *msg, struct qmgr_job *job, size_t *np)
{
	struct result	*res;
	uint32_t	 n, i;

	n = msg_get_u32(msg);
	if (n > job->nrcpt)
		fatalx("smtp: job %u: %u results for %zu recipients",
		    job->id, n, job->nrcpt);
	res = xcalloc(n > 0 ? n : 1, sizeof(*res));
	for (i = 0; i < n; i++) {
		res[i].idx = msg_get_u32(msg);
		res[i].status = msg_get_u32(msg);
		res[i].code = msg_get_u32(msg);
		res[i].dsn = msg_get_str(msg);
		res[i].text = msg_get_str(msg);
		res[i].relay = msg_get_str(msg);
		res[i].stage = msg_get_str(msg);
		if (res[i].status > RCPT_FAILED)
			fatalx("smtp: job %u: bad recipient status %u",
			    job->id, res[i].status);
		if (res[i].code > 999 || strlen(res[i].dsn) >= 16 ||
		    strlen(res[i].stage) >= QMGR_STAGE_MAX)
			fatalx("smtp: job %u: bad reply code or status",
			    job->id);
	}
	if (msg_end(msg) != 0)
		fatalx("smtp: malformed %s", msg_name(msg->hdr.type));
	*np = n;
	return res;
}

/* Did any recipient of the results get delivered? */
static int
result_delivered(const struct result *res, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (res[i].status == RCPT_DELIVERED)
			return 1;
	return 0;
}

/*
 * What the results say about the destination: a server answered (any
 * reply code, or a delivery), or none could be reached (every recipient
 * deferred without a reply, no relay, and a status that blames the
 * destination: qmgr_queue_unreached), or nothing either way.
 */
static int
result_feedback(const struct result *res, size_t n)
{
	size_t	 i;
	int	 conn = n > 0;

	for (i = 0; i < n; i++) {
		if (res[i].status == RCPT_DELIVERED || res[i].code != 0)
			return QMGR_FEEDBACK_REPLY;
		/*
		 * Only what says the destination is down: not this
		 * machine's trouble (a source address that cannot be bound,
		 * 4.4.0; a queue file that cannot be read, 4.3.0), which
		 * would otherwise suspend the whole queue for one message.
		 */
		if (res[i].status != RCPT_DEFERRED ||
		    !qmgr_queue_unreached(res[i].code, res[i].dsn,
		    res[i].relay))
			conn = 0;
	}
	return conn ? QMGR_FEEDBACK_CONNFAIL : QMGR_FEEDBACK_NONE;
}

/* MSG_SMTP_RESULT: record each recipient's outcome, report, settle. */
void
qmgr_deliver_result(struct chan *chan, struct msg *msg)
{
	struct qmgr_worker	*w = chan_arg(chan);
	struct qmgr_job		*job;
	struct qmgr_msg		*m;
	struct qmgr_queue	*q;
	struct qmgr_rcpt	*r;
	struct qmgr_report	 rep;
	struct result		*res, missing = { 0, RCPT_DEFERRED, 0, "4.3.0",
				    "no result from the smtp worker", "none", "" };
	time_t			 now = time(NULL);
	size_t			 n, i, pos;
	int			 own;

	job = qmgr_table_get(&qmgr.jobs, &msg->hdr.peerid,
	    sizeof(msg->hdr.peerid));
	if (job == NULL || job->worker != w)
		fatalx("smtp: result for unknown job %u", msg->hdr.peerid);
	res = result_read(msg, job, &n);
	m = job->qmsg->msg;
	job_unlink(job);
	/* The queue lives on: the job's recipients still hold its qmsg. */
	q = job->qmsg->queue;
	/* Others got replies meanwhile: a failure here is the job's own. */
	own = job->nreply != q->nreply;
	qmgr_queue_feedback(q, result_feedback(res, n),
	    n > 0 ? res[0].text : "");
	if (result_delivered(res, n))
		qmgr_queue_delivered(q);
	qmgr_report_init(&rep, m, job->nrcpt);
	for (i = 0; i < n; i++) {
		if ((r = job_rcpt(job, res[i].idx, &pos)) == NULL)
			fatalx("smtp: job %u: recipient %u not in the job",
			    job->id, res[i].idx);
		job->rcpts[pos] = NULL;
		rcpt_result(r, &res[i], now, &rep, !own && !r->released);
	}
	/* A worker that forgot a recipient: retry it, never drop it. */
	for (i = 0; i < job->nrcpt; i++) {
		if (job->rcpts[i] != NULL) {
			log_warnx("%s: job %u: no result for recipient %u",
			    m->env.id, job->id, job->rcpts[i]->idx);
			rcpt_result(job->rcpts[i], &missing, now, &rep, 0);
		}
	}
	report_flush(&rep, now);
	msg_settle(m);
	free(res);
	free(job->rcpts);
	free(job);
}

/*
 * Recipients rcpts[0..n) of qm are due in a suspended queue: defer them
 * without trying, as the worker would after a failed connection, with
 * Postfix's "delivery temporarily suspended" line.  Takes rcpts.
 */
void
qmgr_deliver_suspended(struct qmgr_qmsg *qm, struct qmgr_rcpt **rcpts,
    size_t n, const char *reason)
{
	struct qmgr_msg		*m = qm->msg;
	struct qmgr_report	 rep;
	struct result		 res = { 0, RCPT_DEFERRED, 0, "4.4.1", NULL,
				    "none", "connect" };
	struct envelope_rcpt	*er;
	char			*text, rcpt[QMGR_LOG_TEXT];
	char			 etext[QMGR_LOG_TEXT];
	time_t			 now = time(NULL);
	size_t			 i;

	xasprintf(&text, "delivery temporarily suspended: %s", reason);
	res.text = text;
	log_escape(etext, sizeof(etext), text, strlen(text));
	qmgr_report_init(&rep, m, n);
	for (i = 0; i < n; i++) {
		er = &m->env.rcpts[rcpts[i]->idx];
		log_escape(rcpt, sizeof(rcpt), er->address,
		    strlen(er->address));
		log_info("%s: to=<%s>, relay=none, delay=%lld, dsn=4.4.1, "
		    "status=deferred (%s)", m->env.id, rcpt,
		    (long long)(now - m->env.received), etext);
		/* Suspended: the destination's fault, released early. */
		rcpt_result(rcpts[i], &res, now, &rep, 1);
	}
	report_flush(&rep, now);
	msg_settle(m);
	free(text);
	free(rcpts);
}

/*
 * A worker's channel closed (it crashed or was replaced): every job in
 * flight on it is due again at once, without counting an attempt.
 */
void
qmgr_deliver_worker_closed(struct qmgr_worker *w)
{
	struct qmgr_job		*job;
	struct envelope_rcpt	*er;
	time_t			 now = time(NULL);
	size_t			 i, njobs = 0;

	while ((job = TAILQ_FIRST(&w->jobs)) != NULL) {
		job_unlink(job);
		for (i = 0; i < job->nrcpt; i++) {
			/* Not via job->qmsg: a re-key may free it. */
			er = &job->rcpts[i]->msg->env.rcpts[job->rcpts[i]->idx];
			er->next = now;
			qmgr_queue_rcpt_schedule(job->rcpts[i]);
		}
		free(job->rcpts);
		free(job);
		njobs++;
	}
	if (njobs > 0)
		log_warnx("smtp worker %u gone: %zu job%s back in the queue",
		    w->instance, njobs, njobs == 1 ? "" : "s");
	TAILQ_REMOVE(&qmgr.workers, w, entry);
	if (w->chan != NULL)
		chan_free(w->chan);
	free(w);
}
