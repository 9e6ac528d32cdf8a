/*
 * Event counters for `mtactl stats`: each process counts what it sees
 * (qmgr: messages received, recipients delivered, deferred and bounced;
 * smtpd: inbound connections; smtp: outbound connections) and answers
 * MSG_CTL_STATS from the master with all of them; the master adds up the
 * answers of every process.  Counters start at 0 when a process starts,
 * so a restarted process reports only what it saw since.
 */
#ifndef MTAD_COUNTER_H
#define MTAD_COUNTER_H

#include <stdint.h>

struct chan;
struct msg;

enum counter {
	COUNTER_RECEIVED,	/* qmgr: messages committed from smtpd */
	COUNTER_DELIVERED,	/* qmgr: recipients delivered */
	COUNTER_DEFERRED,	/* qmgr: attempts that ended deferred */
	COUNTER_BOUNCED,	/* qmgr: recipients failed (5xx, expiry) */
	COUNTER_CONN_IN,	/* smtpd: connections accepted */
	COUNTER_CONN_OUT,	/* smtp: connections opened */
	COUNTER_COUNT
};

void		 counter_add(enum counter, uint64_t);
uint64_t	 counter_get(enum counter);
/* The name in mtactl's JSON ("received", "connections-in"...). */
const char	*counter_name(int);
/* MSG_CTL_STATS from the master: answer with every counter. */
void		 counter_reply(struct chan *, struct msg *);

#endif
