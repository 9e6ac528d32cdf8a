/*
 * Per-message delivery settings read from a message's properties (the
 * JSON object of DESIGN section 7, filled from x-mq-* headers or a JSON
 * message), overriding the config for that message:
 *
 *	retries		[600, 1800] or "600,1800": seconds between attempts,
 *			the last repeating (like the retries key)
 *	maxattempts	5 or "5": the recipient fails after that many
 *			attempts that ended deferred
 *	maxdelivertime	"2026-11-25 12:00:00" (UTC), a unix time, or one
 *			as a string: the recipient fails when still
 *			deferred at that time (replaces max-delivery-time)
 *	dsn		{ "notify": "SUCCESS,FAILURE,DELAY" | "NEVER",
 *			  "ret": "FULL" | "HDRS", "envid": "..." }
 *
 * A value of the wrong type or out of range is ignored, and said in the
 * warnings text, never fatal: the message is delivered with the config's
 * settings instead.  Other properties are not looked at here.
 */
#ifndef MTAD_MSGPROPS_H
#define MTAD_MSGPROPS_H

#include <stddef.h>
#include <stdint.h>

#define MSGPROPS_RETRIES_MAX	100		/* list entries */
#define MSGPROPS_RETRY_MAX	604800		/* seconds, as the key */
#define MSGPROPS_ATTEMPTS_MAX	100000
#define MSGPROPS_TIME_MAX	INT64_C(253402300799)	/* 9999-12-31 */

struct msgprops {
	int		*retries;	/* NULL: the config's */
	size_t		 nretries;
	uint32_t	 maxattempts;	/* 0: no limit */
	int64_t		 maxdelivertime;	/* unix time, 0: none */
	int		 notify;	/* DSN_NOTIFY_*, 0: not given */
	int		 ret;		/* DSN_RET_* */
	char		*envid;		/* NULL: none */
};

/*
 * Fill p from the properties text.  Returns 0, with *warnings set to an
 * allocated "what; what" text when a value was ignored (else NULL), or -1
 * when text is not a JSON object at all.
 */
int	 msgprops_parse(const char *text, struct msgprops *p,
	    char **warnings);
void	 msgprops_clear(struct msgprops *);
/* "YYYY-MM-DD HH:MM:SS" (UTC) to a unix time: -1 on bad syntax. */
int	 msgprops_parse_time(const char *, int64_t *);

#endif
