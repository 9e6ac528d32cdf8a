/*
 * Queues and scheduling.
 *
 * Every recipient that is not final belongs to the queue named by its key:
 * the message's own smarthost ("(smarthost) HOST:PORT"), else
 * "(smarthost)" when a global smarthost is set, else its domain.  Within a
 * queue, recipients are grouped per message (qmgr_qmsg), because one job
 * carries one message to all its due recipients in that queue.
 *
 * A recipient due later waits in the heap (qmgr_heap.c); one timer wakes
 * the scheduler at the earliest due time.  A recipient due now sits on its
 * qmsg's due list, and the qmsg on its queue's due list.  A queue with due
 * work and fewer than max-connections-per-queue jobs is on the ready list;
 * the scheduler takes one job from the queue at the head and puts the
 * queue back at the tail, so queues are served round-robin and one big
 * queue cannot starve the others; max-connections bounds the jobs of all
 * queues together (qmgr_deliver_capacity).  Every step costs O(log n) or
 * O(1) per recipient moved: nothing scans the whole queue per event.
 *
 * Back-off.  A destination that is down would otherwise cost one failed
 * connection per due message.  Each job's result tells its queue whether
 * a server answered (QMGR_FEEDBACK_REPLY) or none could be reached
 * (QMGR_FEEDBACK_CONNFAIL: a deferral without an SMTP reply, relay
 * "none").  After QMGR_BACKOFF_FAILURES connection failures in a row the
 * queue is suspended for the next interval of the retries schedule (the
 * first, then the second... for suspensions in a row).  While suspended,
 * due recipients are not tried: they go on the sweep list and are
 * deferred at once with "delivery temporarily suspended" (so that their
 * retry times, attempts, expiry and delay warnings move on as if tried).
 * When the time is up the queue probes: one job at a time; a connection
 * failure suspends it again for longer, a reply resumes it fully.  With
 * nothing due, the probe is the recipient first on the noreply list
 * (below), so that a queue whose mail all waits for long retry times
 * still notices that its destination is back.
 *
 * Early release.  A recipient deferred because no server could be
 * reached (no reply, relay "none": connection refused or timed out,
 * 4.4.1, as is "delivery temporarily suspended"; DNS failure, 4.4.3)
 * learnt nothing about itself, only that the destination was down.
 * Waiting out its retry time once the destination is back up only delays
 * mail (with retries=3600, by an hour).  So:
 *
 *  - Release on success.  While such a recipient waits in the heap it is
 *    also on its queue's noreply list (through due_entry, unused while
 *    waiting).  When a job of the queue delivers at least one recipient,
 *    the destination is proven up: every recipient on that list becomes
 *    due now, QMGR_RELEASE_BATCH per scheduler run, under the usual
 *    concurrency limits; one log line per release gives the count.
 *    Recipients deferred by a real 4xx reply (greylisting, a full
 *    mailbox) are not on the list and keep their schedule.  A queue that
 *    is suspended again stops releasing until its next success.
 *  - Only deferrals that speak for the destination, or a message that
 *    cannot get through would be retried after every success in its
 *    queue.  Not a source address that cannot be bound (4.4.0) nor a
 *    worker's trouble (4.3.0).  Not a job that failed while another job
 *    of the queue got a reply (the queue's reply count moved while it was
 *    in flight).  Not a recipient that failed again right after its own
 *    release: it waits for its retry time, once.  Deferrals of a
 *    suspended queue always count.  After a restart the envelope tells:
 *    deferred, code 0, no relay, status 4.4.1 or 4.4.3.
 *  - Restart probe.  After the spool is read (qmgr_queue_recovered), every
 *    queue with waiting recipients makes the earliest of them due now,
 *    with the other waiting recipients of its message in that queue: one
 *    job that either delivers, and so releases the rest as above, or
 *    fails and leaves the schedule as it was, at the cost of one attempt.
 *
 * Each step costs O(log n) per recipient moved, plus one pass over the
 * heap at start; nothing scans the heap per result.
 */
#include <sys/time.h>

#include <event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "qmgr.h"
#include "xmalloc.h"

/* Jobs started per scheduler run, so the event loop stays responsive. */
#define QMGR_SCHED_BATCH	1000
/* Recipients released per scheduler run, for the same reason. */
#define QMGR_RELEASE_BATCH	10000

static TAILQ_HEAD(, qmgr_queue)	 ready = TAILQ_HEAD_INITIALIZER(ready);
static TAILQ_HEAD(, qmgr_queue)	 sweep = TAILQ_HEAD_INITIALIZER(sweep);
static TAILQ_HEAD(, qmgr_queue)	 releasing =
				    TAILQ_HEAD_INITIALIZER(releasing);
static struct event		 sched_ev;
static int			 sched_kicked;

static void	 sched_run(int, short, void *);
static void	 queue_timer(int, short, void *);

void
qmgr_queue_init(void)
{
	qmgr_table_init(&qmgr.queues);
	evtimer_set(&sched_ev, sched_run, NULL);
}

/* The queue key for a recipient under the current configuration. */
static char *
rcpt_key(const struct qmgr_rcpt *r)
{
	char	*domain;

	if (r->msg->route_key != NULL)
		return xstrdup(r->msg->route_key);
	if (qmgr.smarthost)
		return xstrdup(QMGR_SMARTHOST_KEY);
	domain = envelope_domain(r->msg->env.rcpts[r->idx].address);
	if (*domain == '\0') {
		free(domain);
		return xstrdup(QMGR_NODOMAIN_KEY);
	}
	return domain;
}

/* Find or create the queue for key; takes ownership of key. */
static struct qmgr_queue *
queue_get(char *key)
{
	struct qmgr_queue	*q;

	if ((q = qmgr_table_get(&qmgr.queues, key, strlen(key))) != NULL) {
		free(key);
		return q;
	}
	q = xcalloc(1, sizeof(*q));
	q->key = key;
	TAILQ_INIT(&q->due);
	TAILQ_INIT(&q->noreply);
	evtimer_set(&q->timer, queue_timer, q);
	qmgr_table_put(&qmgr.queues, q->key, strlen(q->key), q);
	return q;
}

/* Jobs the queue may have in flight in its state. */
static size_t
queue_cap(const struct qmgr_queue *q)
{
	switch (q->state) {
	case QMGR_QUEUE_SUSPENDED:
		return 0;
	case QMGR_QUEUE_PROBING:
		return 1;
	}
	return (size_t)qmgr.max_per_queue;
}

static void
queue_list_remove(struct qmgr_queue *q)
{
	if (q->on_list == QMGR_QLIST_READY)
		TAILQ_REMOVE(&ready, q, ready_entry);
	else if (q->on_list == QMGR_QLIST_SWEEP)
		TAILQ_REMOVE(&sweep, q, ready_entry);
	q->on_list = QMGR_QLIST_NONE;
}

/* Put q on the ready or sweep list, or on none, to match its state. */
static void
queue_update_ready(struct qmgr_queue *q)
{
	int	 want = QMGR_QLIST_NONE;

	if (!TAILQ_EMPTY(&q->due)) {
		if (q->state == QMGR_QUEUE_SUSPENDED)
			want = QMGR_QLIST_SWEEP;
		else if (q->ninflight < queue_cap(q))
			want = QMGR_QLIST_READY;
	}
	if (want == q->on_list)
		return;
	queue_list_remove(q);
	if (want == QMGR_QLIST_READY)
		TAILQ_INSERT_TAIL(&ready, q, ready_entry);
	else if (want == QMGR_QLIST_SWEEP)
		TAILQ_INSERT_TAIL(&sweep, q, ready_entry);
	q->on_list = want;
}

/* Drop a reference (a qmsg's, or a sweep's); the last frees the queue. */
static void
queue_unref(struct qmgr_queue *q)
{
	if (--q->nqmsg > 0)
		return;
	if (q->ninflight != 0 || !TAILQ_EMPTY(&q->due) || q->nwait != 0)
		log_panic("%s: queue %s still busy", __func__, q->key);
	queue_list_remove(q);
	if (q->releasing)
		TAILQ_REMOVE(&releasing, q, release_entry);
	evtimer_del(&q->timer);
	qmgr_table_del(&qmgr.queues, q->key, strlen(q->key));
	free(q->reason);
	free(q->key);
	free(q);
}

/* The part of message m in queue q, created on first use. */
static struct qmgr_qmsg *
qmsg_get(struct qmgr_msg *m, struct qmgr_queue *q)
{
	struct qmgr_qmsg	*qm;

	/* A message has one qmsg per distinct key: usually one or a few. */
	TAILQ_FOREACH(qm, &m->qmsgs, msg_entry)
		if (qm->queue == q)
			return qm;
	qm = xcalloc(1, sizeof(*qm));
	qm->msg = m;
	qm->queue = q;
	TAILQ_INIT(&qm->due);
	TAILQ_INSERT_TAIL(&m->qmsgs, qm, msg_entry);
	q->nqmsg++;
	return qm;
}

/* Detach a recipient that is in no list from its qmsg. */
static void
rcpt_detach(struct qmgr_rcpt *r)
{
	struct qmgr_qmsg	*qm = r->qmsg;

	r->qmsg = NULL;
	if (--qm->nrcpt > 0)
		return;
	if (qm->on_due)
		log_panic("%s: %s: empty qmsg still due", __func__,
		    qm->msg->env.id);
	TAILQ_REMOVE(&qm->msg->qmsgs, qm, msg_entry);
	queue_unref(qm->queue);
	free(qm);
}

/*
 * A recipient is due later: into the heap, and on its queue's noreply
 * list too when its last deferral may be released early.
 */
static void
rcpt_wait(struct qmgr_rcpt *r)
{
	struct qmgr_queue	*q = r->qmsg->queue;

	r->where = QMGR_RCPT_WAIT;
	qmgr_heap_push(r);
	q->nwait++;
	if (r->noreply) {
		TAILQ_INSERT_TAIL(&q->noreply, r, due_entry);
		q->nnoreply++;
	}
}

/* Take a waiting recipient out of the heap (and noreply list). */
static void
rcpt_unwait(struct qmgr_rcpt *r)
{
	struct qmgr_queue	*q = r->qmsg->queue;

	qmgr_heap_remove(r);
	q->nwait--;
	if (r->noreply) {
		TAILQ_REMOVE(&q->noreply, r, due_entry);
		q->nnoreply--;
	}
	r->where = QMGR_RCPT_FINAL;
}

/* Take a recipient out of the heap or its due list. */
static void
rcpt_unplace(struct qmgr_rcpt *r)
{
	struct qmgr_qmsg	*qm = r->qmsg;

	if (r->where == QMGR_RCPT_WAIT)
		rcpt_unwait(r);
	else if (r->where == QMGR_RCPT_DUE) {
		TAILQ_REMOVE(&qm->due, r, due_entry);
		if (TAILQ_EMPTY(&qm->due) && qm->on_due) {
			TAILQ_REMOVE(&qm->queue->due, qm, due_entry);
			qm->on_due = 0;
			queue_update_ready(qm->queue);
		}
	}
	r->where = QMGR_RCPT_FINAL;
}

/* A recipient is due now: queue it behind the others of its qmsg. */
static void
rcpt_make_due(struct qmgr_rcpt *r)
{
	struct qmgr_qmsg	*qm = r->qmsg;

	r->where = QMGR_RCPT_DUE;
	TAILQ_INSERT_TAIL(&qm->due, r, due_entry);
	if (!qm->on_due) {
		TAILQ_INSERT_TAIL(&qm->queue->due, qm, due_entry);
		qm->on_due = 1;
	}
	queue_update_ready(qm->queue);
}

/*
 * Schedule a recipient that is new or back from a job, at its env "next"
 * time, in the queue its key names now (a reload may have changed it).
 */
void
qmgr_queue_rcpt_schedule(struct qmgr_rcpt *r)
{
	char	*key;

	key = rcpt_key(r);
	if (r->qmsg != NULL && strcmp(r->qmsg->queue->key, key) != 0)
		rcpt_detach(r);
	if (r->qmsg == NULL) {
		r->qmsg = qmsg_get(r->msg, queue_get(key));
		r->qmsg->nrcpt++;
	} else
		free(key);
	/* mtactl hold: in its queue, but in no list until released. */
	if (r->msg->env.rcpts[r->idx].held) {
		r->where = QMGR_RCPT_HELD;
		return;
	}
	if (r->msg->env.rcpts[r->idx].next <= time(NULL))
		rcpt_make_due(r);
	else
		rcpt_wait(r);
	qmgr_queue_kick();
}

/* A recipient back from a job reached a final state. */
void
qmgr_queue_rcpt_final(struct qmgr_rcpt *r)
{
	r->where = QMGR_RCPT_FINAL;
	rcpt_detach(r);
	r->msg->nfinal++;
}

/* Take a waiting, due or held recipient out of the scheduler (mtactl). */
void
qmgr_queue_rcpt_unplace(struct qmgr_rcpt *r)
{
	rcpt_unplace(r);
}

/* Take a recipient that is not in flight out of the scheduler for good. */
void
qmgr_queue_rcpt_drop(struct qmgr_rcpt *r)
{
	if (r->where == QMGR_RCPT_FLIGHT)
		log_panic("%s: %s: recipient in flight", __func__,
		    r->msg->env.id);
	rcpt_unplace(r);
	if (r->qmsg != NULL)
		rcpt_detach(r);
}

/*
 * Does a deferral (reply code, enhanced status, relay) say only that the
 * destination was down: no server reached, because the connection failed
 * (4.4.1, also a suspended queue's) or DNS did (4.4.3)?
 */
int
qmgr_queue_unreached(uint32_t code, const char *status, const char *relay)
{
	if (code != 0 || status == NULL)
		return 0;
	if (relay != NULL && relay[0] != '\0' && strcmp(relay, "none") != 0)
		return 0;
	return strcmp(status, "4.4.1") == 0 || strcmp(status, "4.4.3") == 0;
}

/* Was the recipient's last attempt, as its envelope tells, unreached? */
static int
rcpt_env_noreply(const struct envelope_rcpt *er)
{
	return er->state == ENV_RCPT_DEFERRED &&
	    qmgr_queue_unreached(er->code, er->status, er->relay);
}

/* Schedule every recipient of a newly committed or recovered message. */
void
qmgr_queue_add_msg(struct qmgr_msg *m)
{
	size_t	 i;

	for (i = 0; i < m->env.nrcpt; i++) {
		if (ENV_RCPT_FINAL(m->env.rcpts[i].state))
			continue;
		m->rcpts[i].noreply = rcpt_env_noreply(&m->env.rcpts[i]);
		m->rcpts[i].released = 0;
		qmgr_queue_rcpt_schedule(&m->rcpts[i]);
	}
	qmgr_ctlindex_changed(m);	/* mtactl's view follows */
}

/* A job of queue q ended (result or lost worker): free its slot. */
void
qmgr_queue_job_done(struct qmgr_queue *q)
{
	if (q->ninflight == 0)
		log_panic("%s: queue %s has no job in flight", __func__,
		    q->key);
	q->ninflight--;
	queue_update_ready(q);
	qmgr_queue_kick();
}

/* Stop connecting to q's destination for the next back-off interval. */
static void
queue_suspend(struct qmgr_queue *q, const char *why)
{
	struct timeval	 tv;
	char		 key[512], reason[512];
	int		 delay;

	q->nbackoff++;
	delay = envelope_retry_delay(qmgr.retries, qmgr.nretries,
	    q->nbackoff);
	q->state = QMGR_QUEUE_SUSPENDED;
	q->until = (int64_t)time(NULL) + delay;
	tv.tv_sec = delay;
	tv.tv_usec = 0;
	evtimer_add(&q->timer, &tv);
	log_escape(key, sizeof(key), q->key, strlen(q->key));
	log_escape(reason, sizeof(reason), q->reason != NULL ? q->reason : "",
	    q->reason != NULL ? strlen(q->reason) : 0);
	log_info("queue %s: %s, backed off for %ds: %s", key, why, delay,
	    reason);
	queue_update_ready(q);
	qmgr_queue_kick();
}

/* End a suspension: let one job through to see. */
static void
queue_probe(struct qmgr_queue *q)
{
	char	 key[512];

	q->state = QMGR_QUEUE_PROBING;
	log_escape(key, sizeof(key), q->key, strlen(q->key));
	log_info("queue %s: back-off over, probing with one delivery", key);
	queue_update_ready(q);
	qmgr_queue_kick();
}

/*
 * The suspension's time is up.  With nothing due, the probe is the
 * recipient that has waited longest only because the destination was
 * down; else the queue would stay silent until some retry time came,
 * however soon the destination was back.  (mtactl flush makes its own
 * recipients due: it only needs queue_probe.)
 */
static void
queue_timer(int fd, short ev, void *arg)
{
	struct qmgr_queue	*q = arg;
	struct qmgr_rcpt	*r;

	if (q->state != QMGR_QUEUE_SUSPENDED)
		return;
	queue_probe(q);
	if (TAILQ_EMPTY(&q->due) && (r = TAILQ_FIRST(&q->noreply)) != NULL) {
		rcpt_unwait(r);
		rcpt_make_due(r);
	}
}

/* mtactl flush: end a suspension now, as if its time were up. */
void
qmgr_queue_probe_now(struct qmgr_queue *q)
{
	if (q->state != QMGR_QUEUE_SUSPENDED)
		return;
	evtimer_del(&q->timer);
	queue_probe(q);
}

/*
 * What a job's result says about q's destination (QMGR_FEEDBACK_*, with
 * the failure text): count connection failures, suspend or resume.
 */
void
qmgr_queue_feedback(struct qmgr_queue *q, int what, const char *text)
{
	char	 key[512], why[64];

	if (what == QMGR_FEEDBACK_REPLY) {
		q->nreply++;
		q->nconnfail = 0;
		if (q->state == QMGR_QUEUE_OK)
			return;
		evtimer_del(&q->timer);
		q->state = QMGR_QUEUE_OK;
		q->nbackoff = 0;
		log_escape(key, sizeof(key), q->key, strlen(q->key));
		log_info("queue %s: resumed", key);
		queue_update_ready(q);
		qmgr_queue_kick();
		return;
	}
	if (what != QMGR_FEEDBACK_CONNFAIL)
		return;
	q->nconnfail++;
	free(q->reason);
	q->reason = xstrdup(text);
	if (q->state == QMGR_QUEUE_PROBING)
		queue_suspend(q, "probe failed");
	else if (q->state == QMGR_QUEUE_OK &&
	    q->nconnfail >= QMGR_BACKOFF_FAILURES) {
		snprintf(why, sizeof(why), "%u connection failures in a row",
		    q->nconnfail);
		queue_suspend(q, why);
	}
}

/*
 * A job of q delivered a recipient: the destination is up, so what waits
 * only because it was down is due now.  The scheduler moves it.
 */
void
qmgr_queue_delivered(struct qmgr_queue *q)
{
	char	 key[512];

	if (q->nnoreply == 0 || q->releasing)
		return;
	q->releasing = 1;
	TAILQ_INSERT_TAIL(&releasing, q, release_entry);
	log_escape(key, sizeof(key), q->key, strlen(q->key));
	log_info("queue %s: delivery succeeded, releasing %zu recipient%s "
	    "deferred without a reply", key, q->nnoreply,
	    q->nnoreply == 1 ? "" : "s");
	qmgr_queue_kick();
}

/*
 * Move up to QMGR_RELEASE_BATCH recipients of the releasing queues from
 * the heap to their due lists; 1 when some are left for the next run.
 */
static int
release_run(void)
{
	struct qmgr_queue	*q;
	struct qmgr_rcpt	*r;
	size_t			 n = 0;

	while ((q = TAILQ_FIRST(&releasing)) != NULL) {
		/* Suspended again: the rest waits for the next success. */
		while (q->state != QMGR_QUEUE_SUSPENDED &&
		    (r = TAILQ_FIRST(&q->noreply)) != NULL) {
			if (n++ == QMGR_RELEASE_BATCH)
				return 1;
			rcpt_unwait(r);
			r->released = 1;
			rcpt_make_due(r);
		}
		TAILQ_REMOVE(&releasing, q, release_entry);
		q->releasing = 0;
	}
	return 0;
}

/*
 * Make the waiting recipients of qm due now (the restart probe); returns
 * how many.  O(recipients of the message), once per queue at start.
 */
static size_t
qmsg_make_due(struct qmgr_qmsg *qm)
{
	struct qmgr_msg		*m = qm->msg;
	struct qmgr_rcpt	*r;
	size_t			 i, n = 0;

	for (i = 0; i < m->env.nrcpt; i++) {
		r = &m->rcpts[i];
		if (r->qmsg != qm || r->where != QMGR_RCPT_WAIT)
			continue;
		rcpt_unwait(r);
		rcpt_make_due(r);
		n++;
	}
	return n;
}

/*
 * The spool has been read: every queue with waiting recipients probes
 * its destination now with the message due first, rather than let the
 * whole queue wait out retry times that a down destination set.  One
 * pass over the heap, once; a second call does nothing.
 */
void
qmgr_queue_recovered(void)
{
	static int		 done;
	struct qmgr_titer	 it;
	struct qmgr_queue	*q;
	struct qmgr_rcpt	*r;
	char			 key[512];
	size_t			 i, n;

	if (done++)
		return;
	for (i = 0; (r = qmgr_heap_at(i)) != NULL; i++) {
		q = r->qmsg->queue;
		if (q->probe == NULL || r->msg->env.rcpts[r->idx].next <
		    q->probe->msg->env.rcpts[q->probe->idx].next)
			q->probe = r;
	}
	qmgr_titer_init(&qmgr.queues, &it);
	while ((q = qmgr_titer_next(&qmgr.queues, &it)) != NULL) {
		if ((r = q->probe) == NULL)
			continue;
		q->probe = NULL;
		n = qmsg_make_due(r->qmsg);
		log_escape(key, sizeof(key), q->key, strlen(q->key));
		log_info("queue %s: restart probe with 1 message, %zu "
		    "waiting", key, q->nwait);
		log_debug("queue %s: probe of %s: %zu recipient%s", key,
		    r->msg->env.id, n, n == 1 ? "" : "s");
	}
	qmgr_queue_kick();
}

/* A suspended queue probes now: one job, as when its time is up. */
static void
queue_wake(struct qmgr_queue *q)
{
	qmgr_queue_probe_now(q);
}

/*
 * End the back-off of the queue named key, or of every queue (NULL),
 * e.g. for mtactl flush: the destination is probed at once.
 */
void
qmgr_queue_wake(const char *key)
{
	struct qmgr_titer	 it;
	struct qmgr_queue	*q;

	if (key != NULL) {
		q = qmgr_table_get(&qmgr.queues, key, strlen(key));
		if (q != NULL)
			queue_wake(q);
		return;
	}
	qmgr_titer_init(&qmgr.queues, &it);
	while ((q = qmgr_titer_next(&qmgr.queues, &it)) != NULL)
		queue_wake(q);
}

/* Capacities changed (reload): every queue's list membership may too. */
void
qmgr_queue_recap(void)
{
	struct qmgr_titer	 it;
	struct qmgr_queue	*q;

	qmgr_titer_init(&qmgr.queues, &it);
	while ((q = qmgr_titer_next(&qmgr.queues, &it)) != NULL)
		queue_update_ready(q);
	qmgr_queue_kick();
}

/*
 * The smarthost setting changed: move every recipient not in flight to
 * the queue its new key names.  A full pass, but only on such a reload.
 */
void
qmgr_queue_rekey(void)
{
	struct qmgr_titer	 it;
	struct qmgr_msg		*m;
	struct qmgr_rcpt	*r;
	size_t			 i;

	qmgr_titer_init(&qmgr.msgs, &it);
	while ((m = qmgr_titer_next(&qmgr.msgs, &it)) != NULL) {
		for (i = 0; i < m->env.nrcpt; i++) {
			r = &m->rcpts[i];
			if (r->where != QMGR_RCPT_WAIT &&
			    r->where != QMGR_RCPT_DUE &&
			    r->where != QMGR_RCPT_HELD)
				continue;
			rcpt_unplace(r);
			qmgr_queue_rcpt_schedule(r);
		}
	}
}

/* Run the scheduler soon, once, however many changes asked for it. */
void
qmgr_queue_kick(void)
{
	struct timeval	 tv = { 0, 0 };

	if (sched_kicked)
		return;
	sched_kicked = 1;
	evtimer_add(&sched_ev, &tv);
}

/* Start one job from q: its first due qmsg, up to QMGR_JOB_MAX_RCPT. */
static void
queue_start_job(struct qmgr_queue *q)
{
	struct qmgr_qmsg	*qm;
	struct qmgr_rcpt	*r, **rcpts;
	size_t			 n = 0;

	qm = TAILQ_FIRST(&q->due);
	TAILQ_REMOVE(&q->due, qm, due_entry);
	qm->on_due = 0;
	rcpts = xcalloc(QMGR_JOB_MAX_RCPT, sizeof(*rcpts));
	while (n < QMGR_JOB_MAX_RCPT && (r = TAILQ_FIRST(&qm->due)) != NULL) {
		TAILQ_REMOVE(&qm->due, r, due_entry);
		r->where = QMGR_RCPT_FLIGHT;
		rcpts[n++] = r;
	}
	/* More than one job's worth: the rest waits for its next turn. */
	if (!TAILQ_EMPTY(&qm->due)) {
		TAILQ_INSERT_TAIL(&q->due, qm, due_entry);
		qm->on_due = 1;
	}
	q->ninflight++;
	queue_update_ready(q);
	qmgr_deliver_job(qm, rcpts, n);
}

/*
 * Defer the due recipients of one qmsg of a suspended queue without
 * trying them, in chunks of a job's size.  The caller holds a reference
 * on q: deferring may expire recipients and free the qmsg.
 */
static void
queue_sweep_one(struct qmgr_queue *q)
{
	struct qmgr_qmsg	*qm;
	struct qmgr_rcpt	*r, **rcpts;
	size_t			 n;
	int			 more;

	qm = TAILQ_FIRST(&q->due);
	TAILQ_REMOVE(&q->due, qm, due_entry);
	qm->on_due = 0;
	do {
		rcpts = xcalloc(QMGR_JOB_MAX_RCPT, sizeof(*rcpts));
		n = 0;
		while (n < QMGR_JOB_MAX_RCPT &&
		    (r = TAILQ_FIRST(&qm->due)) != NULL) {
			TAILQ_REMOVE(&qm->due, r, due_entry);
			r->where = QMGR_RCPT_FLIGHT;
			rcpts[n++] = r;
		}
		more = !TAILQ_EMPTY(&qm->due);
		/* Takes rcpts; qm may be freed when the last one is final. */
		qmgr_deliver_suspended(qm, rcpts, n, q->reason != NULL ?
		    q->reason : "destination not reachable");
	} while (more);
	queue_update_ready(q);
}

/* Arm the timer for the earliest recipient in the heap, if any. */
static void
sched_arm(time_t now)
{
	struct qmgr_rcpt	*r;
	struct timeval		 tv;
	int64_t			 next;

	if ((r = qmgr_heap_top()) == NULL) {
		evtimer_del(&sched_ev);
		return;
	}
	next = r->msg->env.rcpts[r->idx].next;
	tv.tv_sec = next > now ? (time_t)(next - now) : 0;
	tv.tv_usec = 0;
	evtimer_add(&sched_ev, &tv);
}

/*
 * The scheduler: move recipients whose time has come from the heap to
 * their due lists, then start jobs round-robin over the ready queues
 * while some worker has room.
 */
static void
sched_run(int fd, short ev, void *arg)
{
	struct qmgr_queue	*q;
	struct qmgr_rcpt	*r;
	time_t			 now = time(NULL);
	int			 started = 0;

	sched_kicked = 0;
	while ((r = qmgr_heap_top()) != NULL &&
	    r->msg->env.rcpts[r->idx].next <= now) {
		rcpt_unwait(r);
		rcpt_make_due(r);
	}
	if (release_run())
		qmgr_queue_kick();
	/* Suspended queues first: they need no worker. */
	while ((q = TAILQ_FIRST(&sweep)) != NULL) {
		if (started++ == QMGR_SCHED_BATCH) {
			qmgr_queue_kick();
			return;
		}
		q->nqmsg++;		/* q stays while its qmsgs go */
		queue_sweep_one(q);
		queue_unref(q);
	}
	while ((q = TAILQ_FIRST(&ready)) != NULL && qmgr_deliver_capacity()) {
		if (started++ == QMGR_SCHED_BATCH) {
			qmgr_queue_kick();
			return;
		}
		/* Off the head, back at the tail if it still has work. */
		TAILQ_REMOVE(&ready, q, ready_entry);
		q->on_list = QMGR_QLIST_NONE;
		queue_start_job(q);	/* q may be gone after this */
	}
	if (!sched_kicked)
		sched_arm(now);
}
