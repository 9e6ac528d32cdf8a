/*
 * The read-only answers of mtactl: queue, list and show, as JSON objects
 * (the master passes them on; mtactl prints them as tables or as is).
 *
 *	queue		one row per queue key from the control index, most
 *			messages first: O(queues), plus the jobs in flight.
 *	list [QUEUE]	messages oldest first, --offset and --limit
 *			(default CTL_LIMIT_DEFAULT): O(n log k) for n
 *			messages in the queue (or in all) and k rows.
 *	show ID		one message's envelope and every recipient (also
 *			paged by --offset and --limit).
 *
 * Every answer stays well below the channel's payload limit: rows stop
 * at ANSWER_BUDGET bytes (estimated) with "truncated": true.
 */
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_strict.h"
#include "log.h"
#include "proto.h"
#include "qmgr.h"
#include "qmgr_ctl.h"
#include "xmalloc.h"

#define ANSWER_BUDGET	(2u * 1024 * 1024)
#define LIST_TO_MAX	3	/* addresses shown per message in list */

static void
add_int(struct json_object *o, const char *key, int64_t v)
{
	json_object_object_add(o, key, json_object_new_int64(v));
}

static void
add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static void
add_bool(struct json_object *o, const char *key, int v)
{
	json_object_object_add(o, key, json_object_new_boolean(v));
}

/* The paging members every listing answer carries. */
static void
add_paging(struct json_object *o, const struct ctl_req *req, size_t total,
    size_t shown, int truncated)
{
	add_int(o, "total", (int64_t)total);
	add_int(o, "offset", req->offset);
	add_int(o, "limit", req->limit);
	add_int(o, "shown", (int64_t)shown);
	add_bool(o, "truncated", truncated);
}

/* Jobs in flight per queue key, into the index's nactive. */
static void
count_active(void)
{
	struct qmgr_titer	 it;
	struct qmgr_job		*job;
	struct ci_queue		*q;
	struct qmgr_table	*t = qmgr_ctlindex_queues();

	qmgr_titer_init(t, &it);
	while ((q = qmgr_titer_next(t, &it)) != NULL)
		q->nactive = 0;
	qmgr_titer_init(&qmgr.jobs, &it);
	while ((job = qmgr_titer_next(&qmgr.jobs, &it)) != NULL) {
		if (job->qmsg == NULL ||
		    (q = qmgr_ctlindex_queue(job->qmsg->queue->key)) == NULL)
			continue;
		q->nactive += job->nrcpt;
	}
}

/* Most messages first, then by key. */
static int
queue_cmp(const void *a, const void *b)
{
	const struct ci_queue	*x = *(struct ci_queue *const *)a;
	const struct ci_queue	*y = *(struct ci_queue *const *)b;
	size_t			 nx = qmgr_ctlindex_nmsg(x);
	size_t			 ny = qmgr_ctlindex_nmsg(y);

	if (nx != ny)
		return nx > ny ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* The back-off state qmgr keeps for a queue: ok, suspended, probing. */
static void
add_queue_state(struct json_object *o, const char *key)
{
	struct qmgr_queue	*qq;

	qq = qmgr_table_get(&qmgr.queues, key, strlen(key));
	if (qq == NULL || qq->state == QMGR_QUEUE_OK) {
		add_str(o, "state", "ok");
		return;
	}
	add_str(o, "state", qq->state == QMGR_QUEUE_SUSPENDED ?
	    "suspended" : "probing");
	if (qq->state == QMGR_QUEUE_SUSPENDED)
		add_int(o, "until", qq->until);
}

static struct json_object *
queue_row(const struct ci_queue *q, time_t now)
{
	struct json_object	*o;
	int64_t			 oldest, next;

	o = json_object_new_object();
	add_str(o, "queue", q->key);
	add_int(o, "messages", (int64_t)qmgr_ctlindex_nmsg(q));
	add_int(o, "recipients", (int64_t)q->nrcpt);
	add_int(o, "active", (int64_t)q->nactive);
	add_int(o, "deferred", (int64_t)q->ndeferred);
	add_int(o, "held", (int64_t)q->nheld);
	oldest = qmgr_ctlindex_oldest(q);
	add_int(o, "oldest", oldest);
	add_int(o, "age", now > oldest ? now - oldest : 0);
	if ((next = qmgr_ctlindex_next(q)) == INT64_MAX)
		json_object_object_add(o, "next-attempt", NULL);
	else
		add_int(o, "next-attempt", next);
	add_queue_state(o, q->key);
	return o;
}

struct json_object *
qmgr_ctlview_queue(struct ctl_req *req, char **cause)
{
	struct qmgr_table	*t = qmgr_ctlindex_queues();
	struct qmgr_titer	 it;
	struct ci_queue		**qs, *q;
	struct json_object	*o, *rows, *tot;
	size_t			 n = 0, i, shown = 0, msgs = 0, rcpts = 0;
	size_t			 active = 0, deferred = 0, held = 0;
	time_t			 now = time(NULL);

	count_active();
	qs = xcalloc(t->count > 0 ? t->count : 1, sizeof(*qs));
	qmgr_titer_init(t, &it);
	while (n < t->count && (q = qmgr_titer_next(t, &it)) != NULL) {
		qs[n++] = q;
		msgs += qmgr_ctlindex_nmsg(q);
		rcpts += q->nrcpt;
		active += q->nactive;
		deferred += q->ndeferred;
		held += q->nheld;
	}
	qsort(qs, n, sizeof(*qs), queue_cmp);
	rows = json_object_new_array();
	for (i = req->offset; i < n && shown < req->limit; i++, shown++)
		json_object_array_add(rows, queue_row(qs[i], now));
	free(qs);

	o = json_object_new_object();
	json_object_object_add(o, "queues", rows);
	tot = json_object_new_object();
	add_int(tot, "queues", (int64_t)n);
	add_int(tot, "messages", (int64_t)msgs);
	add_int(tot, "recipients", (int64_t)rcpts);
	add_int(tot, "active", (int64_t)active);
	add_int(tot, "deferred", (int64_t)deferred);
	add_int(tot, "held", (int64_t)held);
	json_object_object_add(o, "totals", tot);
	add_paging(o, req, n, shown, 0);
	return o;
}

/* Oldest first: (received, id). */
static int
msg_before(const struct qmgr_msg *a, const struct qmgr_msg *b)
{
	if (a->env.received != b->env.received)
		return a->env.received < b->env.received;
	return strcmp(a->env.id, b->env.id) < 0;
}

static int
msg_cmp(const void *a, const void *b)
{
	const struct qmgr_msg	*x = *(struct qmgr_msg *const *)a;
	const struct qmgr_msg	*y = *(struct qmgr_msg *const *)b;

	return msg_before(x, y) ? -1 : msg_before(y, x) ? 1 : 0;
}

/*
 * Keep the k oldest of the messages offered: a max-heap of k, the
 * newest kept at its root, replaced when an older one comes.
 */
struct select {
	struct qmgr_msg	**v;
	size_t		  n;
	size_t		  k;
};

static void
select_down(struct select *s, size_t i)
{
	struct qmgr_msg	*m = s->v[i];
	size_t		 c;

	for (;;) {
		c = 2 * i + 1;
		if (c >= s->n)
			break;
		if (c + 1 < s->n && msg_before(s->v[c], s->v[c + 1]))
			c++;
		if (!msg_before(m, s->v[c]))
			break;
		s->v[i] = s->v[c];
		i = c;
	}
	s->v[i] = m;
}

static void
select_offer(struct select *s, struct qmgr_msg *m)
{
	size_t	 i, p;

	if (s->k == 0)
		return;
	if (s->n < s->k) {
		i = s->n++;
		while (i > 0 && msg_before(s->v[p = (i - 1) / 2], m)) {
			s->v[i] = s->v[p];
			i = p;
		}
		s->v[i] = m;
		return;
	}
	if (msg_before(m, s->v[0])) {
		s->v[0] = m;
		select_down(s, 0);
	}
}

/* One message of a listing: its pending recipients t covers. */
static struct json_object *
list_row(const struct ctl_target *t, struct qmgr_msg *m, size_t *bytes)
{
	struct json_object	*o, *to;
	const struct qmgr_rcpt	*r;
	const char		*st;
	size_t			 i, n = 0, nq = 0, nd = 0, nh = 0, na = 0;
	char			 state[64];

	to = json_object_new_array();
	*bytes += 160 + strlen(m->env.sender);
	for (i = 0; i < m->env.nrcpt; i++) {
		r = &m->rcpts[i];
		if (!qmgr_control_covers(t, r))
			continue;
		st = qmgr_control_rcpt_state(r);
		n++;
		nh += strcmp(st, "held") == 0;
		na += strcmp(st, "active") == 0;
		nd += strcmp(st, "deferred") == 0;
		nq += strcmp(st, "queued") == 0;
		if (n <= LIST_TO_MAX) {
			json_object_array_add(to, json_object_new_string(
			    m->env.rcpts[i].address));
			*bytes += strlen(m->env.rcpts[i].address) + 4;
		}
	}
	/* "active+deferred+queued+held", the states present, in order. */
	snprintf(state, sizeof(state), "%s%s%s%s", na > 0 ? "+active" : "",
	    nd > 0 ? "+deferred" : "", nq > 0 ? "+queued" : "",
	    nh > 0 ? "+held" : "");

	o = json_object_new_object();
	add_str(o, "id", m->env.id);
	add_int(o, "size", (int64_t)m->env.size);
	add_int(o, "received", m->env.received);
	add_str(o, "sender", m->env.sender);
	add_int(o, "recipients", (int64_t)n);
	add_int(o, "queued", (int64_t)nq);
	add_int(o, "deferred", (int64_t)nd);
	add_int(o, "active", (int64_t)na);
	add_int(o, "held", (int64_t)nh);
	add_str(o, "state", state[0] != '\0' ? state + 1 : "");
	json_object_object_add(o, "to", to);
	return o;
}

struct json_object *
qmgr_ctlview_list(struct ctl_req *req, char **cause)
{
	struct ctl_target	 t;
	struct select		 sel;
	struct qmgr_msg		*m;
	struct json_object	*o, *rows;
	size_t			 n, i, shown = 0, bytes = 0, total = 0;
	char			*ids;
	int			 truncated = 0;

	if (*req->arg != '\0' &&
	    (qmgr_control_target(req->arg, 0, &t, cause) == -1 ||
	    t.queue == NULL)) {
		free(*cause);
		*cause = xstrdup("no such queue");
		return NULL;
	} else if (*req->arg == '\0')
		memset(&t, 0, sizeof(t));
	ids = qmgr_control_target_ids(&t, &n);
	memset(&sel, 0, sizeof(sel));
	sel.k = (uint64_t)req->offset + req->limit < n ?
	    req->offset + req->limit : n;
	sel.v = xcalloc(sel.k > 0 ? sel.k : 1, sizeof(*sel.v));
	for (i = 0; i < n; i++) {
		m = qmgr_table_get(&qmgr.msgs, ids + i * MSGID_SIZE, MSGID_LEN);
		if (m == NULL)
			continue;
		total++;
		select_offer(&sel, m);
	}
	free(ids);
	qsort(sel.v, sel.n, sizeof(*sel.v), msg_cmp);
	rows = json_object_new_array();
	for (i = req->offset; i < sel.n; i++) {
		if (bytes > ANSWER_BUDGET) {
			truncated = 1;
			break;
		}
		json_object_array_add(rows, list_row(&t, sel.v[i], &bytes));
		shown++;
	}
	free(sel.v);
	o = json_object_new_object();
	if (t.key != NULL)
		add_str(o, "queue", t.key);
	else
		json_object_object_add(o, "queue", NULL);
	json_object_object_add(o, "messages", rows);
	add_paging(o, req, total, shown, truncated);
	return o;
}

/* The message properties, with a smarthost password masked. */
static struct json_object *
show_properties(const char *text)
{
	struct json_object	*p = NULL, *sh, *pw;

	if (text == NULL || (p = json_parse_object(text, strlen(text))) ==
	    NULL) {
		return json_object_new_object();
	}
	if (json_object_object_get_ex(p, "smarthost", &sh) &&
	    json_object_is_type(sh, json_type_object) &&
	    json_object_object_get_ex(sh, "password", &pw))
		add_str(sh, "password", "********");
	return p;
}

static struct json_object *
show_rcpt(const struct qmgr_rcpt *r, size_t *bytes)
{
	const struct envelope_rcpt	*er = &r->msg->env.rcpts[r->idx];
	struct json_object		*o;

	o = json_object_new_object();
	add_str(o, "address", er->address);
	add_str(o, "state", qmgr_control_rcpt_state(r));
	if (r->qmsg != NULL)
		add_str(o, "queue", r->qmsg->queue->key);
	else
		json_object_object_add(o, "queue", NULL);
	add_int(o, "attempts", er->attempts);
	add_int(o, "next", er->next);
	add_str(o, "last", er->last);
	add_str(o, "status", er->status);
	add_int(o, "code", er->code);
	add_str(o, "relay", er->relay);
	*bytes += 200 + strlen(er->address) + strlen(er->last) +
	    strlen(er->relay);
	return o;
}

struct json_object *
qmgr_ctlview_show(struct ctl_req *req, char **cause)
{
	struct qmgr_msg		*m;
	struct json_object	*o, *rows;
	size_t			 i, shown = 0, bytes = 0, pending = 0;
	int			 truncated = 0;

	if (!msgid_valid(req->arg) ||
	    (m = qmgr_table_get(&qmgr.msgs, req->arg, MSGID_LEN)) == NULL) {
		*cause = xstrdup("no such message");
		return NULL;
	}
	o = json_object_new_object();
	add_str(o, "id", m->env.id);
	add_str(o, "sender", m->env.sender);
	add_int(o, "received", m->env.received);
	add_int(o, "age", time(NULL) - m->env.received);
	add_int(o, "size", (int64_t)m->env.size);
	add_str(o, "client", m->env.client);
	add_str(o, "helo", m->env.helo);
	add_str(o, "local-ip", m->env.local_ip);
	json_object_object_add(o, "properties",
	    show_properties(m->env.properties));
	rows = json_object_new_array();
	for (i = 0; i < m->env.nrcpt; i++) {
		if (!ENV_RCPT_FINAL(m->env.rcpts[i].state))
			pending++;
		if (i < req->offset || shown >= req->limit)
			continue;
		if (bytes > ANSWER_BUDGET) {
			truncated = 1;
			continue;
		}
		json_object_array_add(rows, show_rcpt(&m->rcpts[i], &bytes));
		shown++;
	}
	add_int(o, "pending", (int64_t)pending);
	json_object_object_add(o, "recipients", rows);
	add_paging(o, req, m->env.nrcpt, shown, truncated);
	return o;
}
