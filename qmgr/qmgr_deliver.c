/*
 * Jobs to the smtp workers, and their results.
 *
 * A job is one message and up to QMGR_JOB_MAX_RCPT of its recipients in
 * one queue.  It goes to the worker with the fewest jobs in flight (at
 * most QMGR_WORKER_MAX_INFLIGHT each) as MSG_SMTP_DELIVER, with a fresh
 * read-only descriptor of the queue file, so that no two jobs share a
 * file offset.  The worker answers MSG_SMTP_RESULT with the job id in
 * peerid and one status per recipient:
 *
 *	RCPT_DELIVERED	final; the worker has logged the delivery line
 *	RCPT_FAILED	final; the worker logged the reply; qmgr logs that
 *			no bounce was sent (RFC 3464 bounces: a later issue)
 *	RCPT_DEFERRED	retried after retries[attempts - 1] seconds (the
 *			last interval repeats), or failed as expired once
 *			the message is max-delivery-time old
 *
 * After each result the envelope on disk is updated, or the message is
 * removed when every recipient is final.  When a worker goes away, its
 * jobs' recipients become due at once: a duplicate delivery is allowed,
 * a lost message is not.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "log.h"
#include "proto.h"
#include "qmgr.h"
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

/* The worker with the fewest jobs in flight, NULL when all are full. */
static struct qmgr_worker *
worker_pick(void)
{
	struct qmgr_worker	*w, *best = NULL;

	TAILQ_FOREACH(w, &qmgr.workers, entry) {
		if (w->ninflight >= QMGR_WORKER_MAX_INFLIGHT)
			continue;
		if (best == NULL || w->ninflight < best->ninflight)
			best = w;
	}
	return best;
}

int
qmgr_deliver_capacity(void)
{
	return worker_pick() != NULL;
}

/* Forget a job: off its worker and the table, its queue slot freed. */
static void
job_unlink(struct qmgr_job *job)
{
	if (job->worker != NULL) {
		TAILQ_REMOVE(&job->worker->jobs, job, entry);
		job->worker->ninflight--;
	}
	qmgr_table_del(&qmgr.jobs, &job->id, sizeof(job->id));
	qmgr_queue_job_done(job->qmsg->queue);
}

/* Log what happened to a failed recipient, since no bounce is sent yet. */
static void
log_failed(struct qmgr_msg *m, struct envelope_rcpt *er)
{
	char	 rcpt[QMGR_LOG_TEXT], sender[QMGR_LOG_TEXT];

	log_escape(rcpt, sizeof(rcpt), er->address, strlen(er->address));
	log_escape(sender, sizeof(sender), m->env.sender,
	    strlen(m->env.sender));
	log_warnx("%s: to=<%s> failed after %u attempt%s: "
	    "no bounce sent to <%s> (not implemented yet)", m->env.id, rcpt,
	    er->attempts, er->attempts == 1 ? "" : "s", sender);
}

/* A deferral: retry later, or fail the recipient once the message expired. */
static void
rcpt_deferred(struct qmgr_rcpt *r, time_t now)
{
	struct qmgr_msg		*m = r->msg;
	struct envelope_rcpt	*er = &m->env.rcpts[r->idx];
	char			 rcpt[QMGR_LOG_TEXT];

	er->attempts++;
	if (qmgr.max_delivery_time > 0 &&
	    now - m->env.received >= qmgr.max_delivery_time) {
		er->state = ENV_RCPT_FAILED;
		free(er->last);
		er->last = xstrdup("message expired");
		log_escape(rcpt, sizeof(rcpt), er->address,
		    strlen(er->address));
		log_info("%s: to=<%s>, status=expired, returned to sender",
		    m->env.id, rcpt);
		log_failed(m, er);
		qmgr_queue_rcpt_final(r);
		return;
	}
	er->state = ENV_RCPT_DEFERRED;
	er->next = now + envelope_retry_delay(qmgr.retries, qmgr.nretries,
	    er->attempts);
	qmgr_queue_rcpt_schedule(r);
}

/* Record one recipient's outcome. */
static void
rcpt_result(struct qmgr_rcpt *r, const struct result *res, time_t now)
{
	struct envelope_rcpt	*er = &r->msg->env.rcpts[r->idx];

	free(er->last);
	if (*res->text != '\0')
		er->last = xstrdup(res->text);
	else if (res->code != 0)
		xasprintf(&er->last, "%u %s", res->code, res->dsn);
	else
		er->last = xstrdup("");

	switch (res->status) {
	case RCPT_DELIVERED:
		er->state = ENV_RCPT_DELIVERED;
		er->attempts++;
		qmgr_queue_rcpt_final(r);
		break;
	case RCPT_FAILED:
		er->state = ENV_RCPT_FAILED;
		er->attempts++;
		log_failed(r->msg, er);
		qmgr_queue_rcpt_final(r);
		break;
	default:
		rcpt_deferred(r, now);
		break;
	}
}

/* Write the message's new state, or remove it when it is done. */
static void
msg_settle(struct qmgr_msg *m)
{
	if (qmgr_msg_done(m))
		qmgr_spool_remove(m);
	else
		qmgr_spool_update(m);
}

/* Fail a job before it reached a worker, as if every recipient deferred. */
static void
job_defer_all(struct qmgr_job *job, const char *text)
{
	struct qmgr_msg	*m = job->qmsg->msg;
	struct result	 res = { 0, RCPT_DEFERRED, 451, "4.3.0", text, "none" };
	time_t		 now = time(NULL);
	size_t		 i;

	job_unlink(job);
	for (i = 0; i < job->nrcpt; i++)
		rcpt_result(job->rcpts[i], &res, now);
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
	qmgr_table_put(&qmgr.jobs, &job->id, sizeof(job->id), job);
	if ((job->worker = worker_pick()) == NULL)
		log_panic("%s: no worker has room", __func__);
	TAILQ_INSERT_TAIL(&job->worker->jobs, job, entry);
	job->worker->ninflight++;

	if ((fd = qmgr_spool_open_data(m->env.id)) == -1) {
		log_warn("%s: open queue file", m->env.id);
		job_defer_all(job, "4.3.0 cannot open the queue file");
		return;
	}
	b = msgb_new(MSG_SMTP_DELIVER, job->id);
	msgb_str(b, m->env.id);
	msgb_str(b, qm->queue->key);
	msgb_str(b, m->env.sender);
	msgb_str(b, m->env.local_ip);
	msgb_str(b, m->env.properties);
	msgb_u64(b, m->env.size);
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
		if (res[i].status > RCPT_FAILED)
			fatalx("smtp: job %u: bad recipient status %u",
			    job->id, res[i].status);
	}
	if (msg_end(msg) != 0)
		fatalx("smtp: malformed %s", msg_name(msg->hdr.type));
	*np = n;
	return res;
}

/* MSG_SMTP_RESULT: record each recipient's outcome, then settle. */
void
qmgr_deliver_result(struct chan *chan, struct msg *msg)
{
	struct qmgr_worker	*w = chan_arg(chan);
	struct qmgr_job		*job;
	struct qmgr_msg		*m;
	struct qmgr_rcpt	*r;
	struct result		*res, missing = { 0, RCPT_DEFERRED, 0, "",
				    "4.3.0 no result from the smtp worker",
				    "none" };
	time_t			 now = time(NULL);
	size_t			 n, i, pos;

	job = qmgr_table_get(&qmgr.jobs, &msg->hdr.peerid,
	    sizeof(msg->hdr.peerid));
	if (job == NULL || job->worker != w)
		fatalx("smtp: result for unknown job %u", msg->hdr.peerid);
	res = result_read(msg, job, &n);
	m = job->qmsg->msg;
	job_unlink(job);
	for (i = 0; i < n; i++) {
		if ((r = job_rcpt(job, res[i].idx, &pos)) == NULL)
			fatalx("smtp: job %u: recipient %u not in the job",
			    job->id, res[i].idx);
		job->rcpts[pos] = NULL;
		rcpt_result(r, &res[i], now);
	}
	/* A worker that forgot a recipient: retry it, never drop it. */
	for (i = 0; i < job->nrcpt; i++) {
		if (job->rcpts[i] != NULL) {
			log_warnx("%s: job %u: no result for recipient %zu",
			    m->env.id, job->id, job->rcpts[i]->idx);
			rcpt_result(job->rcpts[i], &missing, now);
		}
	}
	msg_settle(m);
	free(res);
	free(job->rcpts);
	free(job);
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
