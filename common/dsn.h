/*
 * Delivery status notifications (RFC 3461 parameters, RFC 3464 reports).
 *
 * The parameters a sender gives (NOTIFY and ORCPT per recipient, RET and
 * ENVID per message) and the report qmgr sends back: a multipart/report
 * with a human-readable part, a message/delivery-status part and the
 * original message (message/rfc822) or its header (text/rfc822-headers).
 *
 * Everything here is pure text handling, unit tested without a spool:
 * qmgr (qmgr_bounce.c) chooses the recipients, reads the original and
 * queues the result like any message.
 */
#ifndef MTAD_DSN_H
#define MTAD_DSN_H

#include <stddef.h>
#include <stdint.h>

/* NOTIFY: 0 is "not given", which means FAILURE (and DELAY if enabled). */
#define DSN_NOTIFY_NEVER	0x1
#define DSN_NOTIFY_SUCCESS	0x2
#define DSN_NOTIFY_FAILURE	0x4
#define DSN_NOTIFY_DELAY	0x8
#define DSN_NOTIFY_TEXT_MAX	32	/* "SUCCESS,FAILURE,DELAY" + NUL */

/* RET */
#define DSN_RET_DEFAULT		0	/* full message within the size limit */
#define DSN_RET_FULL		1
#define DSN_RET_HDRS		2

/* RFC 3461 4.4: an ENVID is at most 100 characters. */
#define DSN_ENVID_MAX		100
/* Bounded ORCPT (addr-type ";" address), as smtpd passes it. */
#define DSN_ORCPT_MAX		500

/* Action of a report, and of each recipient in it. */
#define DSN_ACTION_FAILED	0
#define DSN_ACTION_DELAYED	1
#define DSN_ACTION_DELIVERED	2

/* A returned message bigger than this is reduced to its header. */
#define DSN_FULL_LIMIT		(128u * 1024)
/* At most this much header is returned (cut at a line end). */
#define DSN_HEADER_LIMIT	(64u * 1024)
/* Texts (diagnostics, addresses) are cut to fit in one header line. */
#define DSN_TEXT_MAX		900

struct dsn_rcpt {
	const char	*address;	/* Final-Recipient: rfc822;address */
	const char	*orcpt;		/* "type;address" or "" */
	int		 action;	/* DSN_ACTION_* */
	const char	*status;	/* "5.1.1"; checked, else a default */
	const char	*remote_mta;	/* host name, "" when none */
	const char	*diag;		/* reply or error, "" when none */
	int		 diag_smtp;	/* diag is an SMTP reply "550 ..." */
	const char	*reason;	/* in words, e.g. expiry; "" if none */
	int64_t		 last_attempt;	/* unix time, 0 when none */
	int64_t		 retry_until;	/* delayed: the expiry, 0 none */
};

struct dsn_report {
	const char		*reporting_mta;	/* our host name */
	const char		*queue_id;	/* the original's queue id */
	const char		*sender;	/* original envelope sender */
	const char		*envid;		/* "" when none */
	const char		*boundary;	/* unique in the message */
	const char		*message_id;	/* "<...>" */
	int64_t			 arrival;	/* Arrival-Date */
	int64_t			 now;		/* Date: */
	int			 action;	/* the report's kind */
	int			 full;		/* message/rfc822 or header */
	const char		*orig;		/* the original or its header */
	size_t			 origlen;
	const struct dsn_rcpt	*rcpts;
	size_t			 nrcpt;
};

/* "NEVER", "SUCCESS,DELAY" (any case, any order): flags, or -1. */
int		 dsn_notify_parse(const char *);
/* The canonical text of flags into buf ("" for 0). */
const char	*dsn_notify_format(int, char buf[DSN_NOTIFY_TEXT_MAX]);
/* Should this recipient hear about action, given its NOTIFY flags? */
int		 dsn_notify_wants(int notify, int action, int delay_default);
/* "FULL"/"HDRS" (any case): DSN_RET_*, or -1. */
int		 dsn_ret_parse(const char *);
/* Is s printable ASCII of at most max octets (ENVID, ORCPT)? */
int		 dsn_text_ok(const char *s, size_t max);
/* Is s a status code "c.s.d" with class c (0: any of 2, 4, 5)? */
int		 dsn_status_ok(const char *s, int class);
/* Length of the header of msg, including the empty line that ends it. */
size_t		 dsn_header_len(const char *msg, size_t len);
/* RFC 5322 date "Sat, 22 Nov 2025 00:00:00 +0000" of t, in UTC. */
void		 dsn_date(int64_t t, char *buf, size_t len);
/* The complete report message, CRLF line ends; *len is its length. */
char		*dsn_build(const struct dsn_report *, size_t *len);

#endif
