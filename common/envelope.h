/*
 * The envelope of a queued message: who sent it, from where, its message
 * properties (x-mq-* headers / JSON) and every recipient's delivery state.
 * qmgr keeps it in memory and on disk in the message's slot file
 * (common/spool_slot.h; queue/ID.env in the older spool format), one JSON
 * object:
 *
 *   { "id": "0A1B2C3D4E5F", "envelope": "sender@example.org",
 *     "received": 1764000000, "client": "host[192.0.2.1]",
 *     "local-ip": "192.0.2.10", ["bind-ip": "10.0.0.5",]
 *     "helo": "host.example.org",
 *     "size": 4211, "properties": { ... },
 *     "recipients": [ { "address": "rcpt@example.com",
 *                       "state": "queued|deferred|delivered|failed",
 *                       "attempts": 0, "next": 1764000000,
 *                       "last": "last reply text",
 *                       "notify": "", "orcpt": "",
 *                       "status": "4.2.0", "code": 451,
 *                       "relay": "host[ip]:port", "warned": false } ] }
 *
 * notify and orcpt are the RFC 3461 parameters of the recipient ("" when
 * not given: notify is "NEVER" or a list of SUCCESS, FAILURE, DELAY;
 * orcpt is "addr-type;address").  status, code and relay describe the
 * last attempt (status "" and code 0 when there was no SMTP reply; relay
 * "" or "none" when no server was reached); warned is set once a delay
 * warning was sent.  These six are optional when read, so that older
 * envelope files still load.  "held": true (written only when true) is
 * set by `mtactl hold`: qmgr does not schedule the recipient until it is
 * released, across restarts.
 *
 * "bind-ip" is there only when a PROXY header named another local address
 * than the socket's own: "local-ip" is then the header's (what is logged
 * and reported) and "bind-ip" the address to send from.
 *
 * This file only converts between the struct and that text, so that the
 * format is unit tested without a spool.  Times are unix seconds.
 */
#ifndef MTAD_ENVELOPE_H
#define MTAD_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "msgid.h"

#define ENV_RCPT_QUEUED		0	/* never attempted */
#define ENV_RCPT_DEFERRED	1	/* attempted, retried later */
#define ENV_RCPT_DELIVERED	2	/* final */
#define ENV_RCPT_FAILED		3	/* final */
#define ENV_RCPT_FINAL(s)	((s) == ENV_RCPT_DELIVERED || \
				    (s) == ENV_RCPT_FAILED)

/* Used when the retries list is empty. */
#define ENV_RETRY_DEFAULT	600

/* Narrow fields at the end: qmgr keeps one per queued recipient. */
struct envelope_rcpt {
	char		*address;
	char		*last;		/* last reply text, "" if none */
	char		*orcpt;		/* "" when not given */
	char		*relay;		/* last server reached, "" if none */
	int64_t		 next;		/* due time */
	char		 status[16];	/* last status "4.2.0", "" if none */
	uint32_t	 attempts;
	uint32_t	 code;		/* last SMTP reply code, 0 if none */
	int8_t		 state;		/* ENV_RCPT_* */
	int8_t		 notify;	/* DSN_NOTIFY_* flags, 0: not given */
	uint8_t		 warned;	/* a delay warning was sent */
	uint8_t		 held;		/* mtactl hold: not scheduled */
};

struct envelope {
	char			 id[MSGID_SIZE];
	char			*sender;	/* "" for the null sender */
	int64_t			 received;
	char			*client;
	char			*local_ip;
	char			*bind_ip;	/* NULL: local_ip (see above) */
	char			*helo;
	uint64_t		 size;
	char			*properties;	/* JSON object text */
	struct envelope_rcpt	*rcpts;
	size_t			 nrcpt;
};

void		 envelope_init(struct envelope *);
/* Frees every string, plain or shared (below), and the rcpts array. */
void		 envelope_clear(struct envelope *);
/*
 * Strings shared with other envelopes (common/intern.h) for every string
 * but the recipients' addresses, which are mostly distinct: qmgr's queued
 * messages, thousands of which repeat one sender, client, HELO, local
 * address, properties and last reply.  A shared string is never changed
 * in place nor freed: envelope_set() replaces it.
 */
void		 envelope_share(struct envelope *);
/* *field (a string of an envelope) becomes a shared copy of value. */
void		 envelope_set(char **field, const char *value);
/* envelope_clear() but the rcpts array and addresses: the caller's. */
void		 envelope_clear_keep_rcpts(struct envelope *);
void		 envelope_add_rcpt(struct envelope *, const char *address,
		    int64_t next);
/* JSON text (allocated), or NULL with *cause set. */
char		*envelope_to_json(const struct envelope *, char **cause);
/* Fill a cleared envelope from JSON text: -1 with *cause on bad input. */
int		 envelope_from_json(struct envelope *, const char *text,
		    size_t len, char **cause);
const char	*envelope_state_name(int state);
int		 envelope_state_from_name(const char *name);
/* The properties as compact JSON object text; -1 if not an object. */
int		 envelope_properties_normalize(const char *text, char **out);

/* Seconds before retry number "attempts" (1 = after the first failure). */
int		 envelope_retry_delay(const int *retries, size_t nretries,
		    uint32_t attempts);
/*
 * When to try again after attempt number "attempts" was deferred at
 * "now": the schedule's delay later, but no later than "expire", so that
 * the last attempt is made at the expiry rather than a bounce coming late.
 */
int64_t		 envelope_retry_next(const int *retries, size_t nretries,
		    uint32_t attempts, int64_t now, int64_t expire);
/* The lowercased part after the last '@' ("" when none), allocated. */
char		*envelope_domain(const char *address);
/* "ip:port", "[ip6]:port" or a bare address: the address, allocated. */
char		*envelope_addr_host(const char *addr);
/*
 * The queue key "(smarthost) HOST:PORT" when the properties name a
 * per-message smarthost (an object with a hostname, port a number or a
 * numeric string, default 25), else NULL.
 */
char		*envelope_smarthost_key(const char *properties);

#endif
