/*
 * The worker's resolver client.  A lookup gets a random query id, is kept
 * in a pending table under that id, and is sent as MSG_RES_QUERY; the
 * answer (same peerid) pops it and calls back.  An answer with an id we
 * never sent is a broken resolver: fatal.
 *
 * A cancelled lookup stays in the table without a callback until its
 * answer arrives, so that answer is still recognised.  When the resolver
 * goes away every pending lookup fails as RES_TEMPFAIL, and lookups asked
 * while there is none fail the same way; both from a zero timer, so a
 * callback never runs inside smtp_res_query() and never recurses.
 */
#include <sys/queue.h>

#include <event.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "dns_parse.h"
#include "log.h"
#include "proto.h"
#include "smtp.h"
#include "xmalloc.h"

#define RES_BUCKETS	256
#define RES_ANSWER_MAX	1024	/* records accepted in one answer */

struct smtp_res_req {
	TAILQ_ENTRY(smtp_res_req)	 entry;
	uint32_t			 id;
	int				 failq;	/* on the fail queue */
	smtp_res_cb			 cb;	/* NULL once cancelled */
	void				*arg;
};

TAILQ_HEAD(res_list, smtp_res_req);

static struct chan	*res_chan;
static struct res_list	 res_pending[RES_BUCKETS];
static struct res_list	 res_failq = TAILQ_HEAD_INITIALIZER(res_failq);
static struct event	 res_failev;
static int		 res_init;

static void	smtp_res_failq_run(int, short, void *);

static struct res_list *
smtp_res_bucket(uint32_t id)
{
	return &res_pending[id % RES_BUCKETS];
}

static void
smtp_res_setup(void)
{
	size_t	 i;

	if (res_init)
		return;
	for (i = 0; i < RES_BUCKETS; i++)
		TAILQ_INIT(&res_pending[i]);
	evtimer_set(&res_failev, smtp_res_failq_run, NULL);
	res_init = 1;
}

static struct smtp_res_req *
smtp_res_find(uint32_t id)
{
	struct smtp_res_req	*r;

	TAILQ_FOREACH(r, smtp_res_bucket(id), entry)
		if (r->id == id)
			return r;
	return NULL;
}

/* Fail everything on the fail queue; callbacks may queue more. */
static void
smtp_res_failq_run(int fd, short ev, void *arg)
{
	struct smtp_res_req	*r;
	struct dns_answer	 a;

	memset(&a, 0, sizeof(a));
	a.status = RES_TEMPFAIL;
	while ((r = TAILQ_FIRST(&res_failq)) != NULL) {
		TAILQ_REMOVE(&res_failq, r, entry);
		if (r->cb != NULL)
			r->cb(&a, r->arg);
		free(r);
	}
}

static void
smtp_res_failq_add(struct smtp_res_req *r)
{
	struct timeval	 now = { 0, 0 };

	r->failq = 1;
	TAILQ_INSERT_TAIL(&res_failq, r, entry);
	evtimer_add(&res_failev, &now);
}

/* MSG_RES_ANSWER: read it whole, then hand it to the waiting lookup. */
static void
smtp_res_answer(struct msg *m)
{
	struct smtp_res_req	*r;
	struct dns_answer	 a;
	uint32_t		 n, i, pref;
	const char		*v;

	memset(&a, 0, sizeof(a));
	a.status = msg_get_u32(m);
	a.ttl = msg_get_u32(m);
	n = msg_get_u32(m);
	for (i = 0; i < n && i < RES_ANSWER_MAX && !m->err; i++) {
		pref = msg_get_u32(m);
		v = msg_get_str(m);
		if (!m->err)
			dns_answer_add(&a, pref, v);
	}
	if (msg_end(m) == -1 || n > RES_ANSWER_MAX || a.status > RES_TEMPFAIL)
		fatalx("bad MSG_RES_ANSWER from resolver");
	if ((r = smtp_res_find(m->hdr.peerid)) == NULL)
		fatalx("MSG_RES_ANSWER for unknown query %u", m->hdr.peerid);
	TAILQ_REMOVE(smtp_res_bucket(r->id), r, entry);
	if (r->cb != NULL)
		r->cb(&a, r->arg);
	free(r);
	dns_answer_clear(&a);
}

/* Answers from the resolver; at its EOF, pending lookups fail soon. */
static void
smtp_res_dispatch(struct chan *c, struct msg *m, void *arg)
{
	struct smtp_res_req	*r;
	size_t			 i;

	if (m == NULL) {
		log_info("resolver went away: pending lookups fail");
		if (c == res_chan)
			res_chan = NULL;
		chan_free(c);
		for (i = 0; i < RES_BUCKETS; i++)
			while ((r = TAILQ_FIRST(&res_pending[i])) != NULL) {
				TAILQ_REMOVE(&res_pending[i], r, entry);
				smtp_res_failq_add(r);
			}
		return;
	}
	switch (m->hdr.type) {
	case MSG_RES_ANSWER:
		smtp_res_answer(m);
		break;
	default:
		fatalx("unexpected %s from resolver", msg_name(m->hdr.type));
	}
}

/* A (new) resolver: the old channel, if any, counts as closed. */
void
smtp_res_peer(int fd)
{
	struct chan	*old = res_chan;

	smtp_res_setup();
	res_chan = NULL;
	if (old != NULL)
		smtp_res_dispatch(old, NULL, NULL);
	res_chan = chan_new(fd, PROC_SMTP, PROC_RESOLVER, 0,
	    smtp_res_dispatch, NULL);
}

/* Is a resolver there to answer? */
int
smtp_res_connected(void)
{
	return res_chan != NULL;
}

/* Ask the resolver; the callback runs later, never from here. */
struct smtp_res_req *
smtp_res_query(int qtype, const char *name, smtp_res_cb cb, void *arg)
{
	struct smtp_res_req	*r;
	struct msgb		*b;

	smtp_res_setup();
	r = xcalloc(1, sizeof(*r));
	r->cb = cb;
	r->arg = arg;
	if (res_chan == NULL) {
		smtp_res_failq_add(r);
		return r;
	}
	do {
		r->id = arc4random();
	} while (smtp_res_find(r->id) != NULL);
	TAILQ_INSERT_TAIL(smtp_res_bucket(r->id), r, entry);
	b = msgb_new(MSG_RES_QUERY, r->id);
	msgb_u32(b, qtype);
	msgb_str(b, name);
	chan_send(res_chan, b);
	return r;
}

/* The caller goes away; a sent query stays to match its answer. */
void
smtp_res_cancel(struct smtp_res_req *r)
{
	if (r->failq) {
		TAILQ_REMOVE(&res_failq, r, entry);
		free(r);
		return;
	}
	r->cb = NULL;		/* its answer will still come */
}
