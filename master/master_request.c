/*
 * Requests the master makes of its children on behalf of an mtactl
 * client, and their answers (OpenSMTPD's wait trees: a request id in
 * peerid, a record of what waits for it, a timeout).
 *
 *	qmgr	queue, list, show, flush, hold, release, remove go to qmgr as
 *		MSG_CTL_QMGR_REQUEST; its MSG_CTL_QMGR_REPLY is the answer.
 *	stats	MSG_CTL_STATS goes to every running child; the answers
 *		(counter.h) are added up.  A child that does not answer in
 *		time is named in "missing" and the rest is answered.
 *
 * A record outlives its client (gone, or answered after a timeout) until
 * every child asked has answered or gone away, so that a late answer is
 * never taken for another request's.  An answer nothing waits for, or a
 * malformed one, comes from a broken child: it is killed and restarted
 * (the master itself must not die of a child's bug).
 */
#include <sys/queue.h>

#include <event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "counter.h"
#include "log.h"
#include "master.h"
#include "proto.h"
#include "xmalloc.h"

#define REQUEST_MAX		256	/* records at once */
#define REQUEST_QMGR_TIMEOUT	10	/* seconds */
#define REQUEST_STATS_TIMEOUT	3

struct request {
	uint32_t		 id;
	int			 kind;
#define REQUEST_QMGR		1
#define REQUEST_STATS		2
	struct chan		*client;	/* NULL once answered or gone */
	struct event		 ev_timeout;
	/* REQUEST_QMGR: the qmgr asked; REQUEST_STATS: who still owes */
	struct child		**await;
	size_t			  nawait;
	char			 *missing;	/* names, ", "-separated */
	uint64_t		  sums[COUNTER_COUNT];
	master_stats_cb		  cb;
	TAILQ_ENTRY(request)	  entry;
};

static TAILQ_HEAD(, request)	 requests = TAILQ_HEAD_INITIALIZER(requests);
static size_t			 nrequests;
static uint32_t			 request_last_id;

static struct request *
request_find(uint32_t id)
{
	struct request	*r;

	TAILQ_FOREACH(r, &requests, entry)
		if (r->id == id)
			return r;
	return NULL;
}

static struct request *
request_new(int kind, struct chan *client)
{
	struct request	*r;

	r = xcalloc(1, sizeof(*r));
	do {
		request_last_id++;
	} while (request_last_id == 0 || request_find(request_last_id));
	r->id = request_last_id;
	r->kind = kind;
	r->client = client;
	r->await = xcalloc(mtad->nchildren, sizeof(*r->await));
	TAILQ_INSERT_TAIL(&requests, r, entry);
	nrequests++;
	return r;
}

static void
request_free(struct request *r)
{
	evtimer_del(&r->ev_timeout);
	TAILQ_REMOVE(&requests, r, entry);
	nrequests--;
	free(r->await);
	free(r->missing);
	free(r);
}

/* Forget a child in r's list of those that still owe an answer. */
static int
request_unawait(struct request *r, struct child *c)
{
	size_t	 i;

	for (i = 0; i < r->nawait; i++) {
		if (r->await[i] == c) {
			r->await[i] = r->await[--r->nawait];
			return 1;
		}
	}
	return 0;
}

/* Whether the ", "-separated list names name as a whole word. */
static int
request_missing_has(const char *list, const char *name)
{
	size_t		 n = strlen(name);
	const char	*p;

	for (p = list; p != NULL && (p = strstr(p, name)) != NULL; p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == '\0' ||
		    p[n] == ','))
			return 1;
	return 0;
}

/* Add a process name to r->missing. */
static void
request_missing(struct request *r, const char *name)
{
	char	*s;

	if (request_missing_has(r->missing, name))
		return;
	xasprintf(&s, "%s%s%s", r->missing ? r->missing : "",
	    r->missing ? ", " : "", name);
	free(r->missing);
	r->missing = s;
}

/* A child sent something no request explains: restart it. */
static void
child_bad(struct child *c, const char *what)
{
	log_warnx("%s (pid %ld): %s; killing it", proc_name(c->proc),
	    (long)c->pid, what);
	if (c->pid != 0)
		kill(c->pid, SIGKILL);
}

/* The stats sums are complete (or the time is up): answer the client. */
static void
stats_answer(struct request *r)
{
	size_t	 i;

	for (i = 0; i < r->nawait; i++)
		request_missing(r, proc_name(r->await[i]->proc));
	if (r->client != NULL)
		r->cb(r->client, r->sums, r->missing);
	r->client = NULL;
}

static void
request_timeout(int fd, short ev, void *arg)
{
	struct request	*r = arg;

	if (r->kind == REQUEST_QMGR) {
		log_warnx("control: qmgr did not answer request %u in %d s",
		    r->id, REQUEST_QMGR_TIMEOUT);
		if (r->client != NULL)
			master_control_reply(r->client, 1,
			    "qmgr did not answer in time");
		r->client = NULL;
	} else
		stats_answer(r);
	if (r->nawait == 0)
		request_free(r);
}

static int
request_room(struct chan *client)
{
	if (nrequests < REQUEST_MAX)
		return 1;
	master_control_reply(client, 1, "too many requests in progress");
	return 0;
}

static void
request_arm(struct request *r, int seconds)
{
	struct timeval	 tv = { seconds, 0 };

	evtimer_set(&r->ev_timeout, request_timeout, r);
	evtimer_add(&r->ev_timeout, &tv);
}

/* The running, ready qmgr, or NULL. */
static struct child *
qmgr_child(void)
{
	size_t	 i;

	for (i = 0; i < mtad->nchildren; i++) {
		struct child	*c = &mtad->children[i];

		if (c->proc == PROC_QMGR && c->pid != 0 && c->ready &&
		    c->chan != NULL)
			return c;
	}
	return NULL;
}

/* Forward a queue command to qmgr; its answer goes to the client. */
void
master_request_qmgr(struct chan *client, const char *cmd, const char *arg,
    uint32_t flags, uint32_t limit, uint32_t offset)
{
	struct request	*r;
	struct child	*q;
	struct msgb	*b;

	if ((q = qmgr_child()) == NULL) {
		master_control_reply(client, 1, "qmgr unavailable");
		return;
	}
	if (!request_room(client))
		return;
	r = request_new(REQUEST_QMGR, client);
	r->await[r->nawait++] = q;
	b = msgb_new(MSG_CTL_QMGR_REQUEST, r->id);
	msgb_str(b, cmd);
	msgb_str(b, arg);
	msgb_u32(b, flags);
	msgb_u32(b, limit);
	msgb_u32(b, offset);
	chan_send(q->chan, b);
	request_arm(r, REQUEST_QMGR_TIMEOUT);
	log_debug("control: request %u: %s to qmgr", r->id, cmd);
}

/* Ask every running child for its counters; cb gets the sums. */
void
master_request_stats(struct chan *client, master_stats_cb cb)
{
	struct request	*r;
	size_t		 i;

	if (!request_room(client))
		return;
	r = request_new(REQUEST_STATS, client);
	r->cb = cb;
	for (i = 0; i < mtad->nchildren; i++) {
		struct child	*c = &mtad->children[i];

		if (c->pid == 0 || !c->ready || c->chan == NULL) {
			request_missing(r, proc_name(c->proc));
			continue;
		}
		r->await[r->nawait++] = c;
		chan_send(c->chan, msgb_new(MSG_CTL_STATS, r->id));
	}
	if (r->nawait == 0) {
		stats_answer(r);
		request_free(r);
		return;
	}
	request_arm(r, REQUEST_STATS_TIMEOUT);
}

/* MSG_CTL_QMGR_REPLY: pass qmgr's answer on to the client. */
void
master_request_qmgr_reply(struct child *c, struct msg *m)
{
	struct request	*r;
	const char	*text;
	uint32_t	 status;

	status = msg_get_u32(m);
	text = msg_get_str(m);
	if (msg_end(m) == -1 || status > 1) {
		child_bad(c, "malformed MSG_CTL_QMGR_REPLY");
		return;
	}
	if ((r = request_find(m->hdr.peerid)) == NULL ||
	    r->kind != REQUEST_QMGR || !request_unawait(r, c)) {
		child_bad(c, "answer to no request");
		return;
	}
	if (r->client != NULL)
		master_control_reply(r->client, status, text);
	request_free(r);
}

/* MSG_CTL_STATS_REPLY: add one child's counters. */
void
master_request_stats_reply(struct child *c, struct msg *m)
{
	struct request	*r;
	uint64_t	 v[COUNTER_COUNT];
	uint32_t	 n;
	int		 i;

	n = msg_get_u32(m);
	if (n != COUNTER_COUNT) {
		child_bad(c, "MSG_CTL_STATS_REPLY with another counter list");
		return;
	}
	for (i = 0; i < COUNTER_COUNT; i++)
		v[i] = msg_get_u64(m);
	if (msg_end(m) == -1) {
		child_bad(c, "malformed MSG_CTL_STATS_REPLY");
		return;
	}
	if ((r = request_find(m->hdr.peerid)) == NULL ||
	    r->kind != REQUEST_STATS || !request_unawait(r, c)) {
		child_bad(c, "counters for no request");
		return;
	}
	for (i = 0; i < COUNTER_COUNT; i++)
		r->sums[i] += v[i];
	if (r->nawait > 0)
		return;
	stats_answer(r);
	request_free(r);
}

/* A child's channel is gone: nothing it owed will come. */
void
master_request_child_gone(struct child *c)
{
	struct request	*r, *next;

	for (r = TAILQ_FIRST(&requests); r != NULL; r = next) {
		next = TAILQ_NEXT(r, entry);
		if (!request_unawait(r, c))
			continue;
		if (r->kind == REQUEST_QMGR) {
			if (r->client != NULL)
				master_control_reply(r->client, 1,
				    "qmgr unavailable");
			r->client = NULL;
		} else {
			request_missing(r, proc_name(c->proc));
			if (r->nawait == 0)
				stats_answer(r);
		}
		if (r->nawait == 0)
			request_free(r);
	}
}

/* A client left: its requests run on, unanswered. */
void
master_request_client_gone(struct chan *client)
{
	struct request	*r;

	TAILQ_FOREACH(r, &requests, entry)
		if (r->client == client)
			r->client = NULL;
}
