/*
 * mq_headers: the header section of an incoming message, as a filter
 * between the DATA framer and the spool file (DESIGN section 7).
 *
 * The unstuffed message (CRLF line ends) goes in, in chunks of any size;
 * what is to be stored comes out through the emit callback.  Up to the
 * first empty line (the end of the header section), every field whose
 * name starts with "x-mq-" (any case) is removed and, when MQH_F_STRIP is
 * set, parsed into a message property:
 *
 *	x-mq-smarthost-hostname, -port, -username, -password
 *					smarthost { hostname, port, ... }
 *	x-mq-ip (repeatable)		ips [ "192.0.2.10", ... ]
 *	x-mq-tag (repeatable)		tags [ "...", ... ]
 *	x-mq-maxdelivertime		maxdelivertime (number or string)
 *	x-mq-maxattempts		maxattempts (number)
 *	x-mq-retries "600,1800"		retries [ 600, 1800 ]
 *	x-mq-dsn-notify, -ret, -envid	dsn { notify, ret, envid }
 *	x-mq-envelope			the envelope sender (not a property)
 *	x-mq-OTHER			OTHER: the value as a string
 *
 * Without MQH_F_STRIP (smtp-mq-headers: false) every field passes
 * through untouched.  Either way "Received:" fields are counted, for the
 * caller's mail loop check.
 *
 * Everything is bounded whatever the client sends: lines are classified
 * from their first few octets and then streamed, so only one x-mq field
 * is ever held (at most MQH_FIELD_MAX octets, folded lines included), and
 * the number of x-mq fields and of list items are capped.  A field over a
 * bound, with a bad value or a reserved name is still removed, and only
 * named in the warnings (never with its value: one may be a password).
 * When a singular property is given twice, the last one wins.
 */
#ifndef MTAD_MQ_HEADERS_H
#define MTAD_MQ_HEADERS_H

#include <stddef.h>

struct json_object;

#define MQH_NAME_MAX	64	/* octets of NAME in x-mq-NAME */
#define MQH_FIELD_MAX	4096	/* one x-mq field as sent, folding included */
#define MQH_VALUE_MAX	998	/* its value, unfolded */
#define MQH_FIELDS_MAX	100	/* x-mq fields looked at; more: ignored */
#define MQH_IPS_MAX	16
#define MQH_TAGS_MAX	32
#define MQH_WARN_MAX	512	/* octets of warnings text kept */

#define MQH_F_STRIP	0x1	/* remove x-mq-* fields and parse them */
#define MQH_F_UTF8	0x2	/* SMTPUTF8: an 8-bit x-mq-envelope is fine */

typedef void	(*mq_emit_fn)(void *arg, const char *buf, size_t len);

struct mq_headers {
	int			 opts;		/* MQH_F_* */
	int			 state;		/* where in a line we are */
	int			 body;		/* past the header section */
	char			 pre[16];	/* a line's start, unclassified */
	size_t			 prelen;
	int			 infield;	/* the field is an x-mq one */
	char			*field;		/* that field, as sent */
	size_t			 fieldlen;
	int			 fieldlong;	/* it went over MQH_FIELD_MAX */
	unsigned		 nreceived;	/* Received: fields */
	unsigned		 nfields;	/* x-mq fields removed */
	unsigned		 nprops;	/* ... that set something */
	struct json_object	*props;		/* the properties object */
	char			*envelope;	/* x-mq-envelope, NULL: none */
	char			 warn[MQH_WARN_MAX];
	mq_emit_fn		 emit;
	void			*arg;
};

void	 mq_headers_init(struct mq_headers *, int opts, mq_emit_fn,
	    void *arg);
/* Filter the next chunk of the message. */
void	 mq_headers_feed(struct mq_headers *, const char *buf, size_t len);
/* The end of the message: finish a field still held. */
void	 mq_headers_end(struct mq_headers *);
void	 mq_headers_clear(struct mq_headers *);

/*
 * Take the properties object (a new reference, an empty object when no
 * x-mq field set anything); the caller puts it.
 */
struct json_object *mq_headers_props(struct mq_headers *);

#endif
