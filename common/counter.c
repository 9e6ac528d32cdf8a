/*
 * Event counters of one process, reported to the master on request
 * (counter.h).  Plain integers: each process is single-threaded.
 */
#include <stdint.h>

#include "chan.h"
#include "counter.h"
#include "log.h"
#include "proto.h"

static uint64_t	 counters[COUNTER_COUNT];

static const char *counter_names[COUNTER_COUNT] = {
	[COUNTER_RECEIVED] = "received",
	[COUNTER_DELIVERED] = "delivered",
	[COUNTER_DEFERRED] = "deferred",
	[COUNTER_BOUNCED] = "bounced",
	[COUNTER_CONN_IN] = "connections-in",
	[COUNTER_CONN_OUT] = "connections-out",
};

void
counter_add(enum counter c, uint64_t n)
{
	if ((unsigned)c < COUNTER_COUNT)
		counters[c] += n;
}

uint64_t
counter_get(enum counter c)
{
	return (unsigned)c < COUNTER_COUNT ? counters[c] : 0;
}

const char *
counter_name(int c)
{
	if (c < 0 || c >= COUNTER_COUNT)
		return "unknown";
	return counter_names[c];
}

void
counter_reply(struct chan *c, struct msg *m)
{
	struct msgb	*b;
	int		 i;

	if (msg_end(m) == -1)
		fatalx("bad %s from master", msg_name(m->hdr.type));
	b = msgb_new(MSG_CTL_STATS_REPLY, m->hdr.peerid);
	msgb_u32(b, COUNTER_COUNT);
	for (i = 0; i < COUNTER_COUNT; i++)
		msgb_u64(b, counters[i]);
	chan_send(c, b);
}
