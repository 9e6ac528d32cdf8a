/*
 * limits: what one client may hold, beyond a single session's bounds.
 *
 * Connections per client IP (smtp-max-connections-per-ip): every session
 * is counted under its client address (an IPv6 client under its /64,
 * since one host easily holds a whole /64), in a hash table whose entries
 * exist only while they count a session: its size is bounded by the
 * number of sessions.  The count is taken once the client address is
 * final (after a PROXY header) and given back when the session is freed.
 *
 * The session time limit (smtp-session-timeout) bounds a whole session,
 * however busy the client keeps it: smtp-timeout alone lets a client
 * that sends a NOOP, or one octet of DATA, now and then hold a slot for
 * ever.  A session waiting for qmgr is given a moment more, so that a
 * message being committed is not cut off between its commit and the 250.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"
#include "smtpd.h"

#define LIMITS_NBUCKETS		1024	/* a power of two */
#define LIMITS_WAIT_MORE	1	/* seconds, while qmgr answers */

struct limits_ip {
	LIST_ENTRY(limits_ip)	 entry;
	struct netaddr		 addr;		/* IPv6 cut to its /64 */
	unsigned		 n;		/* sessions counted */
};

static LIST_HEAD(, limits_ip)	limits_table[LIMITS_NBUCKETS];

/* The address a client is counted under. */
static void
limits_key(const struct netaddr *peer, struct netaddr *key)
{
	memset(key, 0, sizeof(*key));
	key->family = peer->family;
	memcpy(key->addr, peer->addr, peer->family == AF_INET6 ? 8 : 4);
}

/* FNV-1a over the address. */
static unsigned
limits_hash(const struct netaddr *key)
{
	uint32_t	h = 2166136261u;
	size_t		i;

	for (i = 0; i < sizeof(key->addr); i++)
		h = (h ^ key->addr[i]) * 16777619u;
	return h & (LIMITS_NBUCKETS - 1);
}

/* Count the session under its client; -1 when that client has enough. */
int
limits_ip_take(struct session *s)
{
	struct limits_ip	*e;
	struct netaddr		 key;
	unsigned		 b;

	if (s->ipcount != NULL)
		limits_ip_release(s);
	limits_key(&s->peer, &key);
	b = limits_hash(&key);
	LIST_FOREACH(e, &limits_table[b], entry)
		if (memcmp(&e->addr, &key, sizeof(key)) == 0)
			break;
	if (e != NULL && smtpd_env.max_conn_per_ip > 0 &&
	    e->n >= (unsigned)smtpd_env.max_conn_per_ip)
		return -1;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->addr = key;
		LIST_INSERT_HEAD(&limits_table[b], e, entry);
	}
	e->n++;
	s->ipcount = e;
	return 0;
}

/* The session is freed: its client holds one connection less. */
void
limits_ip_release(struct session *s)
{
	struct limits_ip	*e = s->ipcount;

	if (e == NULL)
		return;
	s->ipcount = NULL;
	if (--e->n == 0) {
		LIST_REMOVE(e, entry);
		free(e);
	}
}

/* The session time limit is reached: 421, unless qmgr is answering. */
static void
limits_life_cb(int fd, short ev, void *arg)
{
	struct session	*s = arg;
	struct timeval	 tv = { LIMITS_WAIT_MORE, 0 };

	switch (s->state) {
	case S_CLOSING:
		return;		/* its own linger timer ends it */
	case S_WAIT_CREATE:
	case S_WAIT_COMMIT:
		evtimer_add(&s->ev_life, &tv);
		return;
	default:
		break;
	}
	log_info("session time limit after %s from unknown[%s]",
	    s->last_verb, s->peer_ip);
	s->flags |= SF_ENDED;
	session_reply(s, "421 4.4.2 %s Error: session time limit exceeded",
	    smtpd_env.hostname);
	session_close(s);
	/* Write the 421 now; this may free the session. */
	session_resume(s, S_CLOSING);
}

/* The session begins: arm its time limit. */
void
limits_life_start(struct session *s)
{
	struct timeval	tv = { smtpd_env.session_timeout, 0 };

	if (smtpd_env.session_timeout <= 0 || s->life_armed)
		return;
	evtimer_set(&s->ev_life, limits_life_cb, s);
	evtimer_add(&s->ev_life, &tv);
	s->life_armed = 1;
}

/* The session is freed: no more time limit. */
void
limits_life_stop(struct session *s)
{
	if (s->life_armed)
		evtimer_del(&s->ev_life);
	s->life_armed = 0;
}
