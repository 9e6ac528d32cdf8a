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
 *	qmgr_ctlrec	kept in the message itself (qmgr.h): one
 *			qmgr_ctlshare per queue that holds some of its
 *			pending recipients, and its totals.
 *	qmgr_ctlshare	a message's share of one queue: recipients pending,
 *			deferred and held, and the earliest due time of those
 *			not held and not in flight.
 *	ci_queue	a queue key's sums, and two heaps of its shares:
 *			oldest message first, earliest next attempt first.
 *
 * The record lives in the message, so that a queued message costs no
 * allocation here (100,000 of them would otherwise cost ~15 MB).  The
 * heaps point at messages, which is safe because qmgr_msg_free() takes a
 * message that is still indexed out first.  Queues are the index's own,
 * keyed by a copy of the queue key, so that a qmgr_queue or qmsg that
 * qmgr frees can never leave a dangling pointer here.  Recipients in
 * flight are counted from the job table when asked (a few hundred jobs
 * at most).
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

struct ci_heap {
	struct qmgr_ctlshare	**v;
	size_t			  n;
	size_t			  cap;
	int			  which;	/* CI_AGE or CI_NEXT */
};

/* A message's totals over every recipient, for the counters. */
struct ci_totals {
	uint64_t		 attempts;
	uint32_t		 ndelivered;
	uint32_t		 nfailed;
};

static struct qmgr_table	 ci_queues;	/* ci_queue by key */
static size_t			 ci_nmsgs;	/* messages indexed */
static int			 ci_ready;

/* (received, id) for CI_AGE, next for CI_NEXT: a < b? */
static int
ci_less(const struct qmgr_ctlshare *a, const struct qmgr_ctlshare *b,
    int which)
{
	if (which == CI_NEXT)
		return a->next < b->next;
	if (a->msg->env.received != b->msg->env.received)
		return a->msg->env.received < b->msg->env.received;
	return strcmp(a->msg->env.id, b->msg->env.id) < 0;
}

static void
heap_place(struct ci_heap *h, size_t i, struct qmgr_ctlshare *sh)
{
	h->v[i] = sh;
	sh->idx[h->which] = (uint32_t)i;
}

static void
heap_up(struct ci_heap *h, size_t i)
{
	struct qmgr_ctlshare	*sh = h->v[i];
	size_t			 p;

	while (i > 0) {
		p = (i - 1) / 2;
		if (!ci_less(sh, h->v[p], h->which))
			break;
		heap_place(h, i, h->v[p]);
		i = p;
	}
	heap_place(h, i, sh);
}

static void
heap_down(struct ci_heap *h, size_t i)
{
	struct qmgr_ctlshare	*sh = h->v[i];
	size_t			 c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && ci_less(h->v[c + 1], h->v[c], h->which))
			c++;
		if (!ci_less(h->v[c], sh, h->which))
			break;
		heap_place(h, i, h->v[c]);
		i = c;
	}
	heap_place(h, i, sh);
}

static void
heap_push(struct ci_heap *h, struct qmgr_ctlshare *sh)
{
	if (h->n == h->cap) {
		h->cap = h->cap == 0 ? 16 : h->cap * 2;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	heap_place(h, h->n++, sh);
	heap_up(h, h->n - 1);
}

static void
heap_remove(struct ci_heap *h, struct qmgr_ctlshare *sh)
{
	size_t			 i = sh->idx[h->which];
	struct qmgr_ctlshare	*last;

	if (i >= h->n || h->v[i] != sh)
		log_panic("%s: share not in its heap", __func__);
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

static void
queue_free(struct ci_queue *q)
{
	free(q->by_age->v);
	free(q->by_next->v);
	free(q->by_age);
	free(q->by_next);
	free(q->key);
	free(q);
}

/* The i-th share of a record. */
static struct qmgr_ctlshare *
rec_share(struct qmgr_ctlrec *rec, size_t i)
{
	return i == 0 ? &rec->share : &rec->more[i - 1];
}

/* Take a message's shares out of their queues: it is no longer indexed. */
static void
msg_drop(struct qmgr_msg *m)
{
	struct qmgr_ctlrec	*rec = &m->ctl;
	struct qmgr_ctlshare	*sh;
	struct ci_queue		*q;
	size_t			 i;

	for (i = 0; i < rec->nshares; i++) {
		sh = rec_share(rec, i);
		q = sh->q;
		heap_remove(q->by_age, sh);
		heap_remove(q->by_next, sh);
		q->nrcpt -= sh->nrcpt;
		q->ndeferred -= sh->ndeferred;
		q->nheld -= sh->nheld;
		if (q->by_age->n > 0)
			continue;
		qmgr_table_del(&ci_queues, q->key, strlen(q->key));
		queue_free(q);
	}
	free(rec->more);
	rec->more = NULL;
	rec->nshares = 0;
	rec->indexed = 0;
	ci_nmsgs--;
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

/* Add recipient r's share to sh. */
static void
share_add_rcpt(struct qmgr_ctlshare *sh, const struct qmgr_rcpt *r)
{
	const struct envelope_rcpt	*er = &r->msg->env.rcpts[r->idx];

	sh->nrcpt++;
	if (er->state == ENV_RCPT_DEFERRED)
		sh->ndeferred++;
	if (er->held)
		sh->nheld++;
	else if (r->where != QMGR_RCPT_FLIGHT && er->next < sh->next)
		sh->next = er->next;
}

/* Attempts, deliveries and failures over all of m's recipients. */
static void
msg_totals(const struct qmgr_msg *m, struct ci_totals *t)
{
	const struct envelope_rcpt	*er;
	size_t				 i;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < m->env.nrcpt; i++) {
		er = &m->env.rcpts[i];
		t->attempts += er->attempts;
		if (er->state == ENV_RCPT_DELIVERED)
			t->ndelivered++;
		else if (er->state == ENV_RCPT_FAILED)
			t->nfailed++;
	}
}

/* m's totals as the index last recorded them. */
static void
rec_totals(const struct qmgr_msg *m, struct ci_totals *t)
{
	t->attempts = m->ctl.attempts;
	t->ndelivered = m->ctl.ndelivered;
	t->nfailed = m->ctl.nfailed;
}

/*
 * Fill m's record, not indexed yet: one share per queue with a pending
 * recipient.  Most messages are in one queue: no allocation then.
 */
static void
msg_build(struct qmgr_msg *m)
{
	struct qmgr_ctlrec	 *rec = &m->ctl;
	struct qmgr_ctlshare	  one, *shares;
	struct qmgr_qmsg	 *qm, **qms, *qm1;
	struct ci_totals	  t;
	const struct envelope_rcpt *er;
	size_t			  k = 0, i, j;

	TAILQ_FOREACH(qm, &m->qmsgs, msg_entry)
		k++;
	qm1 = TAILQ_FIRST(&m->qmsgs);
	qms = k > 1 ? xcalloc(k, sizeof(*qms)) : &qm1;
	shares = k > 1 ? xcalloc(k, sizeof(*shares)) : &one;
	if (k > 1) {
		k = 0;
		TAILQ_FOREACH(qm, &m->qmsgs, msg_entry)
			qms[k++] = qm;
		qsort(qms, k, sizeof(*qms), ptr_cmp);
	}
	for (i = 0; i < k; i++) {
		memset(&shares[i], 0, sizeof(shares[i]));
		shares[i].msg = m;
		shares[i].next = INT64_MAX;
	}
	msg_totals(m, &t);
	rec->attempts = t.attempts;
	rec->ndelivered = t.ndelivered;
	rec->nfailed = t.nfailed;
	for (i = 0; i < m->env.nrcpt; i++) {
		er = &m->env.rcpts[i];
		if (!ENV_RCPT_FINAL(er->state) && m->rcpts[i].qmsg != NULL &&
		    (j = qmsg_find(qms, k, m->rcpts[i].qmsg)) < k)
			share_add_rcpt(&shares[j], &m->rcpts[i]);
	}
	/* Keep only the shares with recipients, in their queues. */
	rec->nshares = 0;
	rec->more = NULL;
	for (i = 0; i < k; i++) {
		if (shares[i].nrcpt == 0)
			continue;
		shares[i].q = queue_get(qms[i]->queue->key);
		if (rec->nshares > 0 && rec->more == NULL)
			rec->more = xcalloc(k - 1, sizeof(*rec->more));
		*rec_share(rec, rec->nshares++) = shares[i];
	}
	if (k > 1) {
		free(qms);
		free(shares);
	}
}

/* Put m's freshly built record into its queues' sums and heaps. */
static void
msg_insert(struct qmgr_msg *m)
{
	struct qmgr_ctlrec	*rec = &m->ctl;
	struct qmgr_ctlshare	*sh;
	size_t			 i;

	rec->indexed = 1;
	ci_nmsgs++;
	for (i = 0; i < rec->nshares; i++) {
		sh = rec_share(rec, i);
		sh->q->nrcpt += sh->nrcpt;
		sh->q->ndeferred += sh->ndeferred;
		sh->q->nheld += sh->nheld;
		heap_push(sh->q->by_age, sh);
		heap_push(sh->q->by_next, sh);
	}
}

/* What happened between two records of one message: the counters. */
static void
count_diff(const struct ci_totals *old, const struct ci_totals *new)
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
	finals = ((uint64_t)new->ndelivered + new->nfailed) -
	    ((uint64_t)old->ndelivered + old->nfailed);
	if (attempts > finals)
		counter_add(COUNTER_DEFERRED, attempts - finals);
}

/* A message was added or saved: recompute its share. */
void
qmgr_ctlindex_changed(struct qmgr_msg *m)
{
	struct ci_totals was, now;
	int		 had;

	ci_init();
	/* The old share goes first: it may hold the last ref of a queue. */
	if ((had = m->ctl.indexed)) {
		rec_totals(m, &was);
		msg_drop(m);
	}
	msg_build(m);
	if (had) {
		rec_totals(m, &now);
		count_diff(&was, &now);
	}
	msg_insert(m);
	qmgr_control_changed(m);
}

/* A message is about to be freed: count its end, forget it. */
void
qmgr_ctlindex_removed(struct qmgr_msg *m)
{
	struct ci_totals was, now;

	ci_init();
	if (!m->ctl.indexed)
		return;
	rec_totals(m, &was);
	msg_drop(m);
	msg_totals(m, &now);
	count_diff(&was, &now);
}

/* Forget a message without counting (mtactl remove, a freed message). */
void
qmgr_ctlindex_forget(struct qmgr_msg *m)
{
	ci_init();
	if (m->ctl.indexed)
		msg_drop(m);
}

/* Rebuild everything from qmgr's messages (queue keys changed). */
void
qmgr_ctlindex_rebuild(void)
{
	struct qmgr_titer	 it;
	struct qmgr_msg		*m;

	ci_init();
	qmgr_titer_init(&qmgr.msgs, &it);
	while ((m = qmgr_titer_next(&qmgr.msgs, &it)) != NULL)
		if (m->ctl.indexed)
			msg_drop(m);
	qmgr_titer_init(&qmgr.msgs, &it);
	while ((m = qmgr_titer_next(&qmgr.msgs, &it)) != NULL) {
		msg_build(m);
		msg_insert(m);
	}
}

/* Before answering: the index must know exactly qmgr's messages. */
void
qmgr_ctlindex_check(void)
{
	ci_init();
	if (ci_nmsgs == qmgr.msgs.count)
		return;
	log_warnx("control index: %zu messages, qmgr has %zu: rebuilding",
	    ci_nmsgs, qmgr.msgs.count);
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
	return q->by_age->v[i]->msg->env.id;
}

/* Arrival of q's oldest message; 0 when empty. */
int64_t
qmgr_ctlindex_oldest(const struct ci_queue *q)
{
	return q->by_age->n > 0 ? q->by_age->v[0]->msg->env.received : 0;
}

/* q's earliest next attempt; INT64_MAX when nothing waits. */
int64_t
qmgr_ctlindex_next(const struct ci_queue *q)
{
	return q->by_next->n > 0 ? q->by_next->v[0]->next : INT64_MAX;
}
