/*
 * The control index: what `mtactl queue` and `mtactl list QUEUE` show,
 * kept up to date as messages change, so that a request costs O(queues)
 * or O(messages of one queue) and never a pass over the whole spool, even
 * with 100,000 messages queued.
 *
 * qmgr calls qmgr_ctlindex_changed() whenever a message was added or its
 * state was saved (qmgr_queue_add_msg, qmgr_spool_update), and
 * qmgr_ctlindex_removed() before it frees one (qmgr_spool_remove).  Each
 * call recomputes that one message's share, O(its recipients), and moves
 * it in the per-queue heaps, O(log n):
 *
 *	ci_msg		a message: its id, arrival, and one ci_member per
 *			queue that holds some of its pending recipients.
 *	ci_member	a message's share of one queue: recipients pending,
 *			deferred and held, and the earliest due time of those
 *			not held and not in flight.
 *	ci_queue	a queue key's sums, and two heaps of its members:
 *			oldest message first, earliest next attempt first.
 *
 * Nothing here points into qmgr's own objects: records are keyed by
 * message id and queue key, copied, so a queue or qmsg that qmgr frees
 * can never leave a dangling pointer here.  Recipients in flight are
 * counted from the job table when asked (a few hundred jobs at most).
 *
 * The same diff of a message's totals before and after a change feeds the
 * counters of `mtactl stats`: recipients newly delivered, newly failed,
 * and attempts that left the recipient pending (deferred).
 *
 * Should a path that adds or removes messages ever bypass the calls,
 * qmgr_ctlindex_check() notices that the number of messages differs and
 * rebuilds the index (logged): a safety net, not the way it works.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "log.h"
#include "qmgr.h"
#include "qmgr_ctl.h"
#include "xmalloc.h"

#define CI_AGE		0
#define CI_NEXT		1

struct ci_member;

struct ci_heap {
	struct ci_member	**v;
	size_t			  n;
	size_t			  cap;
	int			  which;	/* CI_AGE or CI_NEXT */
};

struct ci_msg {
	char			 id[MSGID_SIZE];
	int64_t			 received;
	struct ci_member	*members;
	size_t			 nmembers;
	uint64_t		 attempts;	/* over every recipient */
	size_t			 ndelivered;
	size_t			 nfailed;
};

struct ci_member {
	struct ci_msg		*msg;
	struct ci_queue		*q;
	size_t			 nrcpt;
	size_t			 ndeferred;
	size_t			 nheld;
	int64_t			 next;		/* INT64_MAX: none */
	size_t			 idx[2];	/* in q's heaps */
};

static struct qmgr_table	 ci_msgs;	/* ci_msg by id */
static struct qmgr_table	 ci_queues;	/* ci_queue by key */
static int			 ci_ready;

/* (received, id) for CI_AGE, next for CI_NEXT: a < b? */
static int
ci_less(const struct ci_member *a, const struct ci_member *b, int which)
{
	if (which == CI_NEXT)
		return a->next < b->next;
	if (a->msg->received != b->msg->received)
		return a->msg->received < b->msg->received;
	return strcmp(a->msg->id, b->msg->id) < 0;
}

static void
heap_place(struct ci_heap *h, size_t i, struct ci_member *m)
{
	h->v[i] = m;
	m->idx[h->which] = i;
}

static void
heap_up(struct ci_heap *h, size_t i)
{
	struct ci_member	*m = h->v[i];
	size_t			 p;

	while (i > 0) {
		p = (i - 1) / 2;
		if (!ci_less(m, h->v[p], h->which))
			break;
		heap_place(h, i, h->v[p]);
		i = p;
	}
	heap_place(h, i, m);
}

static void
heap_down(struct ci_heap *h, size_t i)
{
	struct ci_member	*m = h->v[i];
	size_t			 c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && ci_less(h->v[c + 1], h->v[c], h->which))
			c++;
		if (!ci_less(h->v[c], m, h->which))
			break;
		heap_place(h, i, h->v[c]);
		i = c;
	}
	heap_place(h, i, m);
}

static void
heap_push(struct ci_heap *h, struct ci_member *m)
{
	if (h->n == h->cap) {
		h->cap = h->cap == 0 ? 16 : h->cap * 2;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	heap_place(h, h->n++, m);
	heap_up(h, h->n - 1);
}

static void
heap_remove(struct ci_heap *h, struct ci_member *m)
{
	size_t			 i = m->idx[h->which];
	struct ci_member	*last;

	if (i >= h->n || h->v[i] != m)
		log_panic("%s: member not in its heap", __func__);
	last = h->v[--h->n];
	if (i == h->n)
		return;
	heap_place(h, i, last);
	if (i > 0 && ci_less(last, h->v[(i - 1) / 2], h->which))
		heap_up(h, i);
	else
		heap_down(h, i);
}

static void
ci_init(void)
{
	if (ci_ready)
		return;
	qmgr_table_init(&ci_msgs);
	qmgr_table_init(&ci_queues);
	ci_ready = 1;
}

static struct ci_queue *
queue_get(const char *key)
{
	struct ci_queue	*q;

	if ((q = qmgr_table_get(&ci_queues, key, strlen(key))) != NULL)
		return q;
	q = xcalloc(1, sizeof(*q));
	q->key = xstrdup(key);
	q->by_age = xcalloc(1, sizeof(*q->by_age));
	q->by_next = xcalloc(1, sizeof(*q->by_next));
	q->by_age->which = CI_AGE;
	q->by_next->which = CI_NEXT;
	qmgr_table_put(&ci_queues, q->key, strlen(q->key), q);
	return q;
}

/* Take a message's shares out of their queues and free it. */
static void
msg_drop(struct ci_msg *cm)
{
	struct ci_member	*mb;
	struct ci_queue		*q;
	size_t			 i;

	for (i = 0; i < cm->nmembers; i++) {
		mb = &cm->members[i];
		q = mb->q;
		heap_remove(q->by_age, mb);
		heap_remove(q->by_next, mb);
		q->nrcpt -= mb->nrcpt;
		q->ndeferred -= mb->ndeferred;
		q->nheld -= mb->nheld;
		if (q->by_age->n > 0)
			continue;
		qmgr_table_del(&ci_queues, q->key, strlen(q->key));
		free(q->by_age->v);
		free(q->by_next->v);
		free(q->by_age);
		free(q->by_next);
		free(q->key);
		free(q);
	}
	qmgr_table_del(&ci_msgs, cm->id, MSGID_LEN);
	free(cm->members);
	free(cm);
}

static int
ptr_cmp(const void *a, const void *b)
{
	uintptr_t	 x = (uintptr_t)*(void *const *)a;
	uintptr_t	 y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

/* Index of qm in the sorted array qms[0..n), or n when absent. */
static size_t
qmsg_find(struct qmgr_qmsg **qms, size_t n, struct qmgr_qmsg *qm)
{
	struct qmgr_qmsg	**p;

	p = bsearch(&qm, qms, n, sizeof(*qms), ptr_cmp);
	return p == NULL ? n : (size_t)(p - qms);
}

/* Add recipient r's share to member mb. */
static void
member_add_rcpt(struct ci_member *mb, const struct qmgr_rcpt *r)
{
	const struct envelope_rcpt	*er = &r->msg->env.rcpts[r->idx];

	mb->nrcpt++;
	if (er->state == ENV_RCPT_DEFERRED)
		mb->ndeferred++;
	if (er->held)
		mb->nheld++;
	else if (r->where != QMGR_RCPT_FLIGHT && er->next < mb->next)
		mb->next = er->next;
}

/* Attempts, deliveries and failures over all of m's recipients. */
static void
msg_totals(const struct qmgr_msg *m, struct ci_msg *cm)
{
	const struct envelope_rcpt	*er;
	size_t				 i;

	cm->attempts = 0;
	cm->ndelivered = cm->nfailed = 0;
	for (i = 0; i < m->env.nrcpt; i++) {
		er = &m->env.rcpts[i];
		cm->attempts += er->attempts;
		if (er->state == ENV_RCPT_DELIVERED)
			cm->ndelivered++;
		else if (er->state == ENV_RCPT_FAILED)
			cm->nfailed++;
	}
}

/* A new record for m: one member per queue with a pending recipient. */
static struct ci_msg *
msg_build(struct qmgr_msg *m)
{
	struct ci_msg		 *cm;
	struct qmgr_qmsg	 *qm, **qms;
	const struct envelope_rcpt *er;
	size_t			  k = 0, i, j;

	cm = xcalloc(1, sizeof(*cm));
	memcpy(cm->id, m->env.id, MSGID_SIZE);
	cm->received = m->env.received;
	TAILQ_FOREACH(qm, &m->qmsgs, msg_entry)
		k++;
	qms = xcalloc(k > 0 ? k : 1, sizeof(*qms));
	k = 0;
	TAILQ_FOREACH(qm, &m->qmsgs, msg_entry)
		qms[k++] = qm;
	qsort(qms, k, sizeof(*qms), ptr_cmp);
	cm->members = xcalloc(k > 0 ? k : 1, sizeof(*cm->members));
	for (i = 0; i < k; i++) {
		cm->members[i].msg = cm;
		cm->members[i].next = INT64_MAX;
	}
	msg_totals(m, cm);
	for (i = 0; i < m->env.nrcpt; i++) {
		er = &m->env.rcpts[i];
		if (!ENV_RCPT_FINAL(er->state) && m->rcpts[i].qmsg != NULL &&
		    (j = qmsg_find(qms, k, m->rcpts[i].qmsg)) < k)
			member_add_rcpt(&cm->members[j], &m->rcpts[i]);
	}
	/* Keep only the shares with recipients, in their queues. */
	for (i = j = 0; i < k; i++) {
		if (cm->members[i].nrcpt == 0)
			continue;
		cm->members[j] = cm->members[i];
		cm->members[j].q = queue_get(qms[i]->queue->key);
		j++;
	}
	cm->nmembers = j;
	free(qms);
	return cm;
}

static void
msg_insert(struct ci_msg *cm)
{
	struct ci_member	*mb;
	size_t			 i;

	qmgr_table_put(&ci_msgs, cm->id, MSGID_LEN, cm);
	for (i = 0; i < cm->nmembers; i++) {
		mb = &cm->members[i];
		mb->q->nrcpt += mb->nrcpt;
		mb->q->ndeferred += mb->ndeferred;
		mb->q->nheld += mb->nheld;
		heap_push(mb->q->by_age, mb);
		heap_push(mb->q->by_next, mb);
	}
}

/* What happened between two records of one message: the counters. */
static void
count_diff(const struct ci_msg *old, const struct ci_msg *new)
{
	uint64_t	 attempts, finals;

	if (new->ndelivered > old->ndelivered)
		counter_add(COUNTER_DELIVERED,
		    new->ndelivered - old->ndelivered);
	if (new->nfailed > old->nfailed)
		counter_add(COUNTER_BOUNCED, new->nfailed - old->nfailed);
	if (new->attempts <= old->attempts)
		return;
	/* Attempts that did not end the recipient were deferrals. */
	attempts = new->attempts - old->attempts;
	finals = (new->ndelivered + new->nfailed) -
	    (old->ndelivered + old->nfailed);
	if (attempts > finals)
		counter_add(COUNTER_DEFERRED, attempts - finals);
}

/* Drop m's old record, if any, keeping its totals in *was. */
static int
msg_forget(const struct qmgr_msg *m, struct ci_msg *was)
{
	struct ci_msg	*old;

	if ((old = qmgr_table_get(&ci_msgs, m->env.id, MSGID_LEN)) == NULL)
		return 0;
	*was = *old;
	was->members = NULL;
	was->nmembers = 0;
	msg_drop(old);
	return 1;
}

/* A message was added or saved: recompute its share. */
void
qmgr_ctlindex_changed(struct qmgr_msg *m)
{
	struct ci_msg	 was, *cm;
	int		 had;

	ci_init();
	/* The old share goes first: it may hold the last ref of a queue. */
	had = msg_forget(m, &was);
	cm = msg_build(m);
	if (had)
		count_diff(&was, cm);
	msg_insert(cm);
	qmgr_control_changed(m);
}

/* A message is about to be freed: count its end, forget it. */
void
qmgr_ctlindex_removed(struct qmgr_msg *m)
{
	struct ci_msg	 was, now;

	ci_init();
	if (!msg_forget(m, &was))
		return;
	msg_totals(m, &now);
	count_diff(&was, &now);
}

/* Forget a message without counting (mtactl remove). */
void
qmgr_ctlindex_forget(const char *id)
{
	struct ci_msg	*old;

	ci_init();
	if ((old = qmgr_table_get(&ci_msgs, id, MSGID_LEN)) != NULL)
		msg_drop(old);
}

/* Rebuild everything from qmgr's messages (queue keys changed). */
void
qmgr_ctlindex_rebuild(void)
{
	struct qmgr_titer	 it;
	struct qmgr_msg		*m;
	struct ci_msg		*cm;

	ci_init();
	qmgr_titer_init(&ci_msgs, &it);
	while ((cm = qmgr_titer_next(&ci_msgs, &it)) != NULL)
		msg_drop(cm);
	qmgr_titer_init(&qmgr.msgs, &it);
	while ((m = qmgr_titer_next(&qmgr.msgs, &it)) != NULL)
		msg_insert(msg_build(m));
}

/* Before answering: the index must know exactly qmgr's messages. */
void
qmgr_ctlindex_check(void)
{
	ci_init();
	if (ci_msgs.count == qmgr.msgs.count)
		return;
	log_warnx("control index: %zu messages, qmgr has %zu: rebuilding",
	    ci_msgs.count, qmgr.msgs.count);
	qmgr_ctlindex_rebuild();
}

struct ci_queue *
qmgr_ctlindex_queue(const char *key)
{
	ci_init();
	return qmgr_table_get(&ci_queues, key, strlen(key));
}

struct qmgr_table *
qmgr_ctlindex_queues(void)
{
	ci_init();
	return &ci_queues;
}

size_t
qmgr_ctlindex_nmsg(const struct ci_queue *q)
{
	return q->by_age->n;
}

/* The i-th message of q in heap order (any order; for a full pass). */
const char *
qmgr_ctlindex_msgid(const struct ci_queue *q, size_t i)
{
	return q->by_age->v[i]->msg->id;
}

/* Arrival of q's oldest message; 0 when empty. */
int64_t
qmgr_ctlindex_oldest(const struct ci_queue *q)
{
	return q->by_age->n > 0 ? q->by_age->v[0]->msg->received : 0;
}

/* q's earliest next attempt; INT64_MAX when nothing waits. */
int64_t
qmgr_ctlindex_next(const struct ci_queue *q)
{
	return q->by_next->n > 0 ? q->by_next->v[0]->next : INT64_MAX;
}
