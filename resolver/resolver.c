/*
 * resolver: entry point and peers.
 *
 * Clients are the smtp workers (several instances) and qmgr.  Each sends
 * MSG_RES_QUERY (peerid = its query id; u32 qtype; str name) and gets one
 * MSG_RES_ANSWER with the same peerid.  The client is trusted: a bad
 * payload or an unknown type is fatal here.  A name that is not a valid
 * host name is answered RES_NXDOMAIN without asking anybody, so nothing a
 * remote party wrote (an MX target, a recipient domain) reaches the wire
 * unchecked.
 *
 * Requests for a question already being looked up wait for that lookup
 * instead of starting another, so a burst of jobs to one domain costs one
 * query.  When a client's channel closes (it crashed or restarts) its
 * requests are dropped, and lookups nobody waits for any more cancelled;
 * a restarted instance arrives as a new peer and replaces it.
 */
#include <sys/queue.h>

#include <event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "child.h"
#include "conf.h"
#include "dns_parse.h"
#include "log.h"
#include "proto.h"
#include "resolver.h"
#include "xmalloc.h"

struct resolver_req;

struct resolver_client {
	TAILQ_ENTRY(resolver_client)	 entry;
	int				 proc;
	uint32_t			 instance;
	struct chan			*chan;
	TAILQ_HEAD(, resolver_req)	 reqs;
};

/* One lookup on the wire, shared by every request for the same question. */
struct resolver_lookup {
	TAILQ_ENTRY(resolver_lookup)	 entry;
	int				 qtype;
	char				 name[DNS_NAME_MAX + 1];
	struct resolver_query		*q;
	TAILQ_HEAD(, resolver_req)	 waiting;
};

struct resolver_req {
	TAILQ_ENTRY(resolver_req)	 centry;	/* client's list */
	TAILQ_ENTRY(resolver_req)	 lentry;	/* lookup's list */
	struct resolver_client		*client;
	struct resolver_lookup		*lookup;
	uint32_t			 id;
};

static TAILQ_HEAD(, resolver_client) clients =
    TAILQ_HEAD_INITIALIZER(clients);
static TAILQ_HEAD(, resolver_lookup) lookups =
    TAILQ_HEAD_INITIALIZER(lookups);

static const char *
resolver_type_name(int qtype)
{
	switch (qtype) {
	case RES_T_A:
		return "A";
	case RES_T_AAAA:
		return "AAAA";
	case RES_T_MX:
		return "MX";
	}
	return "?";
}

static const char *
resolver_status_name(int status)
{
	switch (status) {
	case RES_OK:
		return "ok";
	case RES_NXDOMAIN:
		return "nxdomain";
	case RES_NODATA:
		return "nodata";
	}
	return "tempfail";
}

/* Send one MSG_RES_ANSWER to a client. */
static void
resolver_answer(struct resolver_client *c, uint32_t id, int qtype,
    const char *name, const struct dns_answer *a)
{
	struct msgb	*b;
	size_t		 i;

	log_debug("answer %s %s: %s, ttl %u, %zu record(s)",
	    resolver_type_name(qtype), name, resolver_status_name(a->status),
	    a->ttl, a->n);
	b = msgb_new(MSG_RES_ANSWER, id);
	msgb_u32(b, a->status);
	msgb_u32(b, a->ttl);
	msgb_u32(b, a->n);
	for (i = 0; i < a->n; i++) {
		msgb_u32(b, a->v[i].pref);
		msgb_str(b, a->v[i].value);
	}
	chan_send(c->chan, b);
}

/* A lookup finished: cache it, answer every request waiting for it. */
static void
resolver_done(struct dns_answer *a, void *arg)
{
	struct resolver_lookup	*l = arg;
	struct resolver_req	*r;

	if (a->status != RES_TEMPFAIL)
		a->ttl = resolver_cache_ttl(a->ttl);
	resolver_cache_put(l->qtype, l->name, a);
	while ((r = TAILQ_FIRST(&l->waiting)) != NULL) {
		TAILQ_REMOVE(&l->waiting, r, lentry);
		TAILQ_REMOVE(&r->client->reqs, r, centry);
		resolver_answer(r->client, r->id, l->qtype, l->name, a);
		free(r);
	}
	dns_answer_clear(a);
	TAILQ_REMOVE(&lookups, l, entry);
	free(l);
}

/* Join the lookup in flight for this question, or start one. */
static void
resolver_lookup(struct resolver_client *c, uint32_t id, int qtype,
    const char *name)
{
	struct resolver_lookup	*l;
	struct resolver_req	*r;

	TAILQ_FOREACH(l, &lookups, entry)
		if (l->qtype == qtype && strcmp(l->name, name) == 0)
			break;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->qtype = qtype;
		snprintf(l->name, sizeof(l->name), "%s", name);
		TAILQ_INIT(&l->waiting);
		TAILQ_INSERT_TAIL(&lookups, l, entry);
		l->q = resolver_dns_start(name, qtype, resolver_done, l);
	}
	r = xcalloc(1, sizeof(*r));
	r->client = c;
	r->lookup = l;
	r->id = id;
	TAILQ_INSERT_TAIL(&c->reqs, r, centry);
	TAILQ_INSERT_TAIL(&l->waiting, r, lentry);
}

/* MSG_RES_QUERY: answer from the cache, or wait for a lookup. */
static void
resolver_query(struct resolver_client *c, struct msg *m)
{
	struct dns_answer	 a;
	const char		*name;
	char			 norm[DNS_NAME_MAX + 1], esc[128];
	uint32_t		 qtype;

	qtype = msg_get_u32(m);
	name = msg_get_str(m);
	if (msg_end(m) == -1)
		fatalx("bad MSG_RES_QUERY from %s", proc_name(c->proc));
	if (qtype != RES_T_A && qtype != RES_T_AAAA && qtype != RES_T_MX)
		fatalx("MSG_RES_QUERY from %s: type %u", proc_name(c->proc),
		    qtype);
	memset(&a, 0, sizeof(a));
	if (dns_name_normalize(name, norm, sizeof(norm)) == -1) {
		log_debug("query %s for an invalid name \"%s\"",
		    resolver_type_name(qtype),
		    log_escape(esc, sizeof(esc), name, strlen(name)));
		a.status = RES_NXDOMAIN;
		a.ttl = RESOLVER_TTL_MIN;
		resolver_answer(c, m->hdr.peerid, qtype, esc, &a);
		return;
	}
	log_debug("query %s %s from %s", resolver_type_name(qtype), norm,
	    proc_name(c->proc));
	if (resolver_cache_get(qtype, norm, &a) == 0) {
		resolver_answer(c, m->hdr.peerid, qtype, norm, &a);
		dns_answer_clear(&a);
		return;
	}
	resolver_lookup(c, m->hdr.peerid, qtype, norm);
}

/* Forget a client; lookups nobody else waits for are cancelled. */
static void
resolver_client_free(struct resolver_client *c)
{
	struct resolver_req	*r;
	struct resolver_lookup	*l;

	while ((r = TAILQ_FIRST(&c->reqs)) != NULL) {
		TAILQ_REMOVE(&c->reqs, r, centry);
		l = r->lookup;
		TAILQ_REMOVE(&l->waiting, r, lentry);
		if (TAILQ_EMPTY(&l->waiting)) {
			resolver_dns_cancel(l->q);
			TAILQ_REMOVE(&lookups, l, entry);
			free(l);
		}
		free(r);
	}
	TAILQ_REMOVE(&clients, c, entry);
	chan_free(c->chan);
	free(c);
}

/* Queries from a client; its EOF cancels what it asked. */
static void
resolver_dispatch(struct chan *ch, struct msg *m, void *arg)
{
	struct resolver_client	*c = arg;

	if (m == NULL) {
		log_debug("%s %u went away", proc_name(c->proc), c->instance);
		resolver_client_free(c);
		return;
	}
	switch (m->hdr.type) {
	case MSG_RES_QUERY:
		resolver_query(c, m);
		break;
	default:
		fatalx("unexpected %s from %s", msg_name(m->hdr.type),
		    proc_name(c->proc));
	}
}

/* A channel to smtp or qmgr; a restarted instance replaces the old one. */
static void
resolver_peer(int proc, uint32_t instance, int fd)
{
	struct resolver_client	*c, *old;

	if (proc != PROC_SMTP && proc != PROC_QMGR)
		fatalx("unexpected peer %s", proc_name(proc));
	TAILQ_FOREACH(old, &clients, entry)
		if (old->proc == proc && old->instance == instance)
			break;
	if (old != NULL)
		resolver_client_free(old);
	c = xcalloc(1, sizeof(*c));
	c->proc = proc;
	c->instance = instance;
	TAILQ_INIT(&c->reqs);
	c->chan = chan_new(fd, PROC_RESOLVER, proc, 0, resolver_dispatch, c);
	TAILQ_INSERT_TAIL(&clients, c, entry);
	log_debug("peer %s %u", proc_name(proc), instance);
}

/* Still root and outside the chroot: read resolv.conf now. */
static void
resolver_configure(struct conf *conf)
{
	resolver_ns_configure(conf);
	conf_free(conf);
	resolver_cache_init(RESOLVER_CACHE_MAX);
}

static void
resolver_run(void)
{
	log_debug("resolver ready, %zu nameserver(s)", resolver_ns_count());
}

static void
resolver_reload(struct conf *conf)
{
	resolver_ns_reload(conf);
	conf_free(conf);
}

int
main(int argc, char **argv)
{
	static const struct child_ops ops = {
		.proc = PROC_RESOLVER,
		.chroot = 1,
		.configure = resolver_configure,
		.run = resolver_run,
		.peer = resolver_peer,
		.reload = resolver_reload,
	};

	child_main(argc, argv, &ops);
}
