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
 * work and fewer than QMGR_QUEUE_MAX_INFLIGHT jobs is on the ready list;
 * the scheduler takes one job from the queue at the head and puts the
 * queue back at the tail, so queues are served round-robin and one big
 * queue cannot starve the others.  Every step costs O(log n) or O(1) per
 * recipient moved: nothing scans the whole queue per event.
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

static TAILQ_HEAD(, qmgr_queue)	 ready = TAILQ_HEAD_INITIALIZER(ready);
static struct event		 sched_ev;
static int			 sched_kicked;

static void	 sched_run(int, short, void *);

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
	qmgr_table_put(&qmgr.queues, q->key, strlen(q->key), q);
	return q;
}

/* Put q on the ready list, or take it off, to match its state. */
static void
queue_update_ready(struct qmgr_queue *q)
{
	int	 want;

	want = !TAILQ_EMPTY(&q->due) &&
	    q->ninflight < QMGR_QUEUE_MAX_INFLIGHT;
	if (want && !q->on_ready) {
		TAILQ_INSERT_TAIL(&ready, q, ready_entry);
		q->on_ready = 1;
	} else if (!want && q->on_ready) {
		TAILQ_REMOVE(&ready, q, ready_entry);
		q->on_ready = 0;
	}
}

/* Drop a qmsg's reference; the last one frees the queue. */
static void
queue_unref(struct qmgr_queue *q)
{
	if (--q->nqmsg > 0)
		return;
	if (q->ninflight != 0 || !TAILQ_EMPTY(&q->due))
		log_panic("%s: queue %s still busy", __func__, q->key);
	if (q->on_ready)
		TAILQ_REMOVE(&ready, q, ready_entry);
	qmgr_table_del(&qmgr.queues, q->key, strlen(q->key));
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

/* Take a recipient out of the heap or its due list. */
static void
rcpt_unplace(struct qmgr_rcpt *r)
{
	struct qmgr_qmsg	*qm = r->qmsg;

	if (r->where == QMGR_RCPT_WAIT)
		qmgr_heap_remove(r);
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
	if (r->msg->env.rcpts[r->idx].next <= time(NULL))
		rcpt_make_due(r);
	else {
		r->where = QMGR_RCPT_WAIT;
		qmgr_heap_push(r);
	}
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

/* Schedule every recipient of a newly committed or recovered message. */
void
qmgr_queue_add_msg(struct qmgr_msg *m)
{
	size_t	 i;

	for (i = 0; i < m->env.nrcpt; i++)
		if (!ENV_RCPT_FINAL(m->env.rcpts[i].state))
			qmgr_queue_rcpt_schedule(&m->rcpts[i]);
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
			    r->where != QMGR_RCPT_DUE)
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
		qmgr_heap_remove(r);
		rcpt_make_due(r);
	}
	while ((q = TAILQ_FIRST(&ready)) != NULL && qmgr_deliver_capacity()) {
		if (started++ == QMGR_SCHED_BATCH) {
			qmgr_queue_kick();
			return;
		}
		/* Off the head, back at the tail if it still has work. */
		TAILQ_REMOVE(&ready, q, ready_entry);
		q->on_ready = 0;
		queue_start_job(q);	/* q may be gone after this */
	}
	if (!sched_kicked)
		sched_arm(now);
}
