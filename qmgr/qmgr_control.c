/*
 * mtactl's queue commands, answered by qmgr (which owns the queue) for
 * the master: MSG_CTL_QMGR_REQUEST in, one MSG_CTL_QMGR_REPLY out with
 * a JSON answer or the reason of a failure.  The master is trusted: a
 * malformed request is fatal.  What a user typed (the argument) is not:
 * it is checked and a bad one only fails that request.
 *
 *	queue, list, show	read-only views (qmgr_ctlview.c)
 *	flush [QUEUE|ID]	waiting recipients become due now, and the
 *				queues concerned leave their back-off
 *	hold ID|QUEUE		recipients are parked (QMGR_RCPT_HELD) and
 *				marked "held" in the envelope, so that a
 *				restart keeps them parked; one in flight is
 *				parked when it comes back deferred
 *	release ID|QUEUE	held recipients are due at once (the next
 *				failure goes on with their retry schedule)
 *	remove ID		the message leaves the spool; --bounce first
 *				returns its pending recipients to the sender
 *
 * A message with recipients in flight cannot be freed under its job: its
 * other recipients are ended at once, the ones in flight are marked held
 * so that they are never tried again, and the removal is finished when
 * the last of them comes back (qmgr_control_changed, then a zero timer,
 * outside the caller's stack).
 */
#include <event.h>
#include <json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "dsn.h"
#include "intern.h"
#include "log.h"
#include "proto.h"
#include "qmgr.h"
#include "qmgr_ctl.h"
#include "xmalloc.h"

#define REMOVED_TEXT	"removed by the postmaster (mtactl remove)"

/* Messages whose removal waits for recipients in flight. */
static struct qmgr_table	 removing;
static int			 removing_ready;
static struct event		 removing_ev;

static void	 removal_finish(int, short, void *);

static struct json_object *ctl_flush(struct ctl_req *, char **);
static struct json_object *ctl_hold(struct ctl_req *, char **);
static struct json_object *ctl_release(struct ctl_req *, char **);
static struct json_object *ctl_remove(struct ctl_req *, char **);

static const struct {
	const char	 *name;
	struct json_object *(*fn)(struct ctl_req *, char **);
} ctl_cmds[] = {
	{ "queue",	qmgr_ctlview_queue },
	{ "list",	qmgr_ctlview_list },
	{ "show",	qmgr_ctlview_show },
	{ "flush",	ctl_flush },
	{ "hold",	ctl_hold },
	{ "release",	ctl_release },
	{ "remove",	ctl_remove },
};

static void
removing_init(void)
{
	if (removing_ready)
		return;
	qmgr_table_init(&removing);
	evtimer_set(&removing_ev, removal_finish, NULL);
	removing_ready = 1;
}

/* ID, QUEUE or "" (when allowed: every message) into t. */
int
qmgr_control_target(const char *arg, int allow_all, struct ctl_target *t,
    char **cause)
{
	memset(t, 0, sizeof(*t));
	if (*arg == '\0') {
		if (!allow_all) {
			*cause = xstrdup("a queue id or a queue is needed");
			return -1;
		}
		t->all = 1;
		return 0;
	}
	if (msgid_valid(arg) &&
	    (t->msg = qmgr_table_get(&qmgr.msgs, arg, MSGID_LEN)) != NULL)
		return 0;
	if ((t->queue = qmgr_ctlindex_queue(arg)) != NULL) {
		t->key = t->queue->key;
		return 0;
	}
	*cause = xstrdup("no such message or queue");
	return -1;
}

/*
 * The ids of every message t covers, copied (acting may change the
 * tables): n ids of MSGID_SIZE bytes each, one after the other.
 */
char *
qmgr_control_target_ids(const struct ctl_target *t, size_t *np)
{
	struct qmgr_titer	 it;
	struct qmgr_msg		*m;
	char			*ids;
	size_t			 n = 0, i, max;

	if (t->msg != NULL) {
		ids = xstrdup(t->msg->env.id);
		*np = 1;
		return ids;
	}
	if (t->queue != NULL) {
		n = qmgr_ctlindex_nmsg(t->queue);
		ids = xcalloc(n > 0 ? n : 1, MSGID_SIZE);
		for (i = 0; i < n; i++)
			memcpy(ids + i * MSGID_SIZE,
			    qmgr_ctlindex_msgid(t->queue, i), MSGID_SIZE);
		*np = n;
		return ids;
	}
	max = qmgr.msgs.count;
	ids = xcalloc(max > 0 ? max : 1, MSGID_SIZE);
	qmgr_titer_init(&qmgr.msgs, &it);
	while (n < max && (m = qmgr_titer_next(&qmgr.msgs, &it)) != NULL)
		memcpy(ids + n++ * MSGID_SIZE, m->env.id, MSGID_SIZE);
	*np = n;
	return ids;
}

/* Is r, pending, a recipient t covers (its queue, when t is a queue)? */
int
qmgr_control_covers(const struct ctl_target *t, const struct qmgr_rcpt *r)
{
	if (ENV_RCPT_FINAL(r->msg->env.rcpts[r->idx].state))
		return 0;
	if (t->key == NULL)
		return 1;
	return r->qmsg != NULL && strcmp(r->qmsg->queue->key, t->key) == 0;
}

/* How a recipient is shown: its state, or held/active when it is so. */
const char *
qmgr_control_rcpt_state(const struct qmgr_rcpt *r)
{
	const struct envelope_rcpt	*er = &r->msg->env.rcpts[r->idx];

	if (ENV_RCPT_FINAL(er->state))
		return envelope_state_name(er->state);
	if (er->held)
		return "held";
	if (r->where == QMGR_RCPT_FLIGHT)
		return "active";
	return envelope_state_name(er->state);
}

/*
 * Run fn on every pending recipient t covers, message by message; fn
 * returns 1 when it changed r.  A message with changes is saved when
 * save is set (held flags must survive a restart), else re-indexed.
 */
static size_t
for_each_rcpt(const struct ctl_target *t, int save, size_t *nmsg,
    int (*fn)(struct qmgr_rcpt *, time_t))
{
	struct qmgr_msg	*m;
	time_t		 now = time(NULL);
	size_t		 n, i, j, changed = 0, before;
	char		*ids;

	*nmsg = 0;
	ids = qmgr_control_target_ids(t, &n);
	for (i = 0; i < n; i++) {
		m = qmgr_table_get(&qmgr.msgs, ids + i * MSGID_SIZE, MSGID_LEN);
		if (m == NULL)
			continue;
		before = changed;
		for (j = 0; j < m->env.nrcpt; j++)
			if (qmgr_control_covers(t, &m->rcpts[j]))
				changed += fn(&m->rcpts[j], now);
		if (changed == before)
			continue;
		(*nmsg)++;
		if (save)
			qmgr_spool_update(m);
		else
			qmgr_ctlindex_changed(m);
	}
	free(ids);
	return changed;
}

/* flush: a recipient waiting for its retry time is due now. */
static int
rcpt_flush(struct qmgr_rcpt *r, time_t now)
{
	if (r->where != QMGR_RCPT_WAIT || r->msg->env.rcpts[r->idx].held)
		return 0;
	qmgr_queue_rcpt_unplace(r);
	r->msg->env.rcpts[r->idx].next = now;
	qmgr_queue_rcpt_schedule(r);
	return 1;
}

/* hold: parked now, or when it comes back from its job. */
static int
rcpt_hold(struct qmgr_rcpt *r, time_t now)
{
	struct envelope_rcpt	*er = &r->msg->env.rcpts[r->idx];

	if (er->held)
		return 0;
	er->held = 1;
	if (r->where == QMGR_RCPT_WAIT || r->where == QMGR_RCPT_DUE) {
		qmgr_queue_rcpt_unplace(r);
		r->where = QMGR_RCPT_HELD;
	}
	return 1;
}

/* release: due at once (in flight: only the mark goes). */
static int
rcpt_release(struct qmgr_rcpt *r, time_t now)
{
	struct envelope_rcpt	*er = &r->msg->env.rcpts[r->idx];

	if (!er->held)
		return 0;
	er->held = 0;
	if (r->where == QMGR_RCPT_HELD) {
		er->next = now;
		qmgr_queue_rcpt_schedule(r);
	}
	return 1;
}

/* The answer of flush, hold and release; logs what was done. */
static struct json_object *
action_answer(struct ctl_req *req, const char *what, size_t nrcpt,
    size_t nmsg)
{
	struct json_object	*o;
	char			 arg[256];

	log_escape(arg, sizeof(arg), req->arg, strlen(req->arg));
	log_info("mtactl %s %s: %zu recipient%s of %zu message%s", req->cmd,
	    *arg != '\0' ? arg : "(all)", nrcpt, nrcpt == 1 ? "" : "s",
	    nmsg, nmsg == 1 ? "" : "s");
	o = json_object_new_object();
	json_object_object_add(o, "command", json_object_new_string(req->cmd));
	json_object_object_add(o, "target", json_object_new_string(req->arg));
	json_object_object_add(o, what, json_object_new_int64(nrcpt));
	json_object_object_add(o, "messages", json_object_new_int64(nmsg));
	return o;
}

/* A flush also ends the back-off of the queues it names: try now. */
static void
flush_probe(const struct ctl_target *t)
{
	struct qmgr_titer	 it;
	struct qmgr_queue	*q;
	struct qmgr_qmsg	*qm;

	if (t->msg != NULL) {
		TAILQ_FOREACH(qm, &t->msg->qmsgs, msg_entry)
			qmgr_queue_probe_now(qm->queue);
	} else if (t->key != NULL) {
		q = qmgr_table_get(&qmgr.queues, t->key, strlen(t->key));
		if (q != NULL)
			qmgr_queue_probe_now(q);
	} else {
		qmgr_titer_init(&qmgr.queues, &it);
		while ((q = qmgr_titer_next(&qmgr.queues, &it)) != NULL)
			qmgr_queue_probe_now(q);
	}
}

static struct json_object *
ctl_flush(struct ctl_req *req, char **cause)
{
	struct ctl_target	 t;
	size_t			 n, nmsg;

	if (qmgr_control_target(req->arg, 1, &t, cause) == -1)
		return NULL;
	flush_probe(&t);
	n = for_each_rcpt(&t, 0, &nmsg, rcpt_flush);
	qmgr_queue_kick();
	return action_answer(req, "flushed", n, nmsg);
}

static struct json_object *
ctl_hold(struct ctl_req *req, char **cause)
{
	struct ctl_target	 t;
	size_t			 n, nmsg;

	if (qmgr_control_target(req->arg, 0, &t, cause) == -1)
		return NULL;
	n = for_each_rcpt(&t, 1, &nmsg, rcpt_hold);
	return action_answer(req, "held", n, nmsg);
}

static struct json_object *
ctl_release(struct ctl_req *req, char **cause)
{
	struct ctl_target	 t;
	size_t			 n, nmsg;

	if (qmgr_control_target(req->arg, 0, &t, cause) == -1)
		return NULL;
	n = for_each_rcpt(&t, 1, &nmsg, rcpt_release);
	qmgr_queue_kick();
	return action_answer(req, "released", n, nmsg);
}

/* A recipient's last-attempt fields, to put back if no bounce went. */
struct saved_rcpt {
	char		*last;
	char		 status[sizeof(((struct envelope_rcpt *)0)->status)];
	uint32_t	 code;
};

/*
 * Return m's pending recipients (but those in flight, and those whose
 * NOTIFY says NEVER) to the sender, before removing it: the report says
 * 5.0.0 and REMOVED_TEXT for each.
 */
static int
remove_bounce(struct qmgr_msg *m, char **cause)
{
	struct qmgr_rcpt	**rcpts;
	struct envelope_rcpt	 *er;
	struct saved_rcpt	 *saved;
	size_t			  i, n = 0;
	int			  rv;

	if (*m->env.sender == '\0') {
		*cause = xstrdup("--bounce: the sender is <>, a bounce "
		    "cannot be returned");
		return -1;
	}
	rcpts = xcalloc(m->env.nrcpt, sizeof(*rcpts));
	saved = xcalloc(m->env.nrcpt, sizeof(*saved));
	for (i = 0; i < m->env.nrcpt; i++) {
		er = &m->env.rcpts[i];
		if (ENV_RCPT_FINAL(er->state) ||
		    m->rcpts[i].where == QMGR_RCPT_FLIGHT ||
		    (er->notify & DSN_NOTIFY_NEVER))
			continue;
		/* The old text's reference moves to saved. */
		saved[n].last = er->last;
		memcpy(saved[n].status, er->status, sizeof(er->status));
		saved[n].code = er->code;
		er->last = NULL;
		envelope_set(&er->last, REMOVED_TEXT);
		memcpy(er->status, "5.0.0", sizeof("5.0.0"));
		er->code = 0;
		rcpts[n++] = &m->rcpts[i];
	}
	rv = n > 0 ? qmgr_bounce_send(m, DSN_ACTION_FAILED, rcpts, n,
	    time(NULL)) : 0;
	for (i = 0; i < n; i++) {
		er = &m->env.rcpts[rcpts[i]->idx];
		if (rv == 0) {
			intern_release(saved[i].last);
			continue;
		}
		intern_release(er->last);
		er->last = saved[i].last;
		memcpy(er->status, saved[i].status, sizeof(er->status));
		er->code = saved[i].code;
	}
	free(saved);
	free(rcpts);
	if (rv == -1)
		*cause = xstrdup("--bounce: the bounce could not be queued; "
		    "nothing was removed");
	return rv;
}

/*
 * End every pending recipient of m that is not in flight (marked failed
 * with REMOVED_TEXT), and mark those in flight held so that they are not
 * tried again.  Returns the number still in flight.
 */
static size_t
remove_rcpts(struct qmgr_msg *m)
{
	struct envelope_rcpt	*er;
	struct qmgr_rcpt	*r;
	size_t			 i, inflight = 0;

	for (i = 0; i < m->env.nrcpt; i++) {
		r = &m->rcpts[i];
		er = &m->env.rcpts[i];
		if (ENV_RCPT_FINAL(er->state))
			continue;
		er->held = 1;
		if (r->where == QMGR_RCPT_FLIGHT) {
			inflight++;
			continue;
		}
		if (r->where == QMGR_RCPT_WAIT || r->where == QMGR_RCPT_DUE)
			qmgr_queue_rcpt_unplace(r);
		er->state = ENV_RCPT_FAILED;
		envelope_set(&er->last, REMOVED_TEXT);
		qmgr_queue_rcpt_final(r);
	}
	return inflight;
}

static struct json_object *
ctl_remove(struct ctl_req *req, char **cause)
{
	struct qmgr_msg		*m;
	struct json_object	*o;
	char			 id[MSGID_SIZE], *key;
	size_t			 inflight;

	if (!msgid_valid(req->arg) ||
	    (m = qmgr_table_get(&qmgr.msgs, req->arg, MSGID_LEN)) == NULL) {
		*cause = xstrdup("no such message");
		return NULL;
	}
	if ((req->flags & CTL_F_BOUNCE) && remove_bounce(m, cause) == -1)
		return NULL;
	memcpy(id, m->env.id, MSGID_SIZE);
	/* Ended by hand: not counted as delivered or bounced. */
	qmgr_ctlindex_forget(m);
	inflight = remove_rcpts(m);
	log_info("%s: removed by mtactl%s%s", id,
	    (req->flags & CTL_F_BOUNCE) ? " with a bounce to the sender" : "",
	    inflight > 0 ? " (finished when its delivery in progress ends)" :
	    "");
	if (qmgr_msg_done(m))
		qmgr_spool_remove(m);
	else {
		removing_init();
		if (qmgr_table_get(&removing, id, MSGID_LEN) == NULL) {
			key = xstrdup(id);
			qmgr_table_put(&removing, key, MSGID_LEN, key);
		}
		qmgr_spool_update(m);
	}
	o = json_object_new_object();
	json_object_object_add(o, "command", json_object_new_string("remove"));
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "removed", json_object_new_boolean(
	    inflight == 0));
	json_object_object_add(o, "in-flight", json_object_new_int64(
	    (int64_t)inflight));
	json_object_object_add(o, "bounced", json_object_new_boolean(
	    (req->flags & CTL_F_BOUNCE) != 0));
	return o;
}

/* A message was saved: one being removed may be ready to go now. */
void
qmgr_control_changed(struct qmgr_msg *m)
{
	struct timeval	 tv = { 0, 0 };

	if (!removing_ready || removing.count == 0 ||
	    qmgr_table_get(&removing, m->env.id, MSGID_LEN) == NULL)
		return;
	evtimer_add(&removing_ev, &tv);
}

/* Finish removals whose recipients in flight have all come back. */
static void
removal_finish(int fd, short ev, void *arg)
{
	struct qmgr_titer	 it;
	struct qmgr_msg		*m;
	char			**ids, *id;
	size_t			 n = 0, i;

	ids = xcalloc(removing.count > 0 ? removing.count : 1, sizeof(*ids));
	qmgr_titer_init(&removing, &it);
	while (n < removing.count && (id = qmgr_titer_next(&removing, &it)))
		ids[n++] = id;
	for (i = 0; i < n; i++) {
		m = qmgr_table_get(&qmgr.msgs, ids[i], MSGID_LEN);
		if (m != NULL && remove_rcpts(m) > 0)
			continue;
		qmgr_table_del(&removing, ids[i], MSGID_LEN);
		if (m != NULL && qmgr_msg_done(m)) {
			qmgr_ctlindex_forget(m);
			qmgr_spool_remove(m);
		}
		free(ids[i]);
	}
	free(ids);
}

/* Send the answer (or the failure) of one request to the master. */
static void
reply(struct chan *c, uint32_t id, struct json_object *o, const char *cause)
{
	struct msgb	*b;
	const char	*text;

	b = msgb_new(MSG_CTL_QMGR_REPLY, id);
	if (o == NULL) {
		msgb_u32(b, 1);
		msgb_str(b, cause);
	} else {
		text = json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (strlen(text) > MSG_MAX_PAYLOAD - 4096) {
			msgb_u32(b, 1);
			msgb_str(b, "the answer is too large: ask for fewer "
			    "rows with --limit");
		} else {
			msgb_u32(b, 0);
			msgb_str(b, text);
		}
		json_object_put(o);
	}
	chan_send(c, b);
}

/* child_ops.control: MSG_CTL_QMGR_REQUEST from the master. */
void
qmgr_control_request(struct chan *c, struct msg *m)
{
	struct ctl_req		 req;
	struct json_object	*o = NULL;
	char			*cause = NULL;
	size_t			 i;

	if (m->hdr.type != MSG_CTL_QMGR_REQUEST)
		fatalx("unexpected %s from master", msg_name(m->hdr.type));
	req.cmd = msg_get_str(m);
	req.arg = msg_get_str(m);
	req.flags = msg_get_u32(m);
	req.limit = msg_get_u32(m);
	req.offset = msg_get_u32(m);
	if (msg_end(m) == -1)
		fatalx("malformed %s from master", msg_name(m->hdr.type));
	if (req.limit == 0 || req.limit > CTL_LIMIT_MAX)
		req.limit = CTL_LIMIT_DEFAULT;
	qmgr_ctlindex_check();
	for (i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++)
		if (strcmp(ctl_cmds[i].name, req.cmd) == 0)
			break;
	if (i == sizeof(ctl_cmds) / sizeof(ctl_cmds[0]))
		cause = xstrdup("unknown command");
	else
		o = ctl_cmds[i].fn(&req, &cause);
	if (o == NULL && cause == NULL)
		cause = xstrdup("failed");
	reply(c, m->hdr.peerid, o, cause);
	free(cause);
}
