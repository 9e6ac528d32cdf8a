/*
 * RFC 3461 parameters and RFC 3464 delivery reports (see dsn.h).
 *
 * A report is built in memory: its size is bounded by the caller's
 * original (at most DSN_FULL_LIMIT or DSN_HEADER_LIMIT octets) plus a
 * bounded text per recipient, and a job has at most a few hundred
 * recipients.  Every text that came from outside (addresses, replies,
 * ENVID) is cut to DSN_TEXT_MAX and has its control characters replaced,
 * so that no header line can be split or overlong.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dsn.h"
#include "xmalloc.h"

struct dbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static const struct {
	const char	*name;
	int		 flag;
} notify_words[] = {
	{ "SUCCESS",	DSN_NOTIFY_SUCCESS },
	{ "FAILURE",	DSN_NOTIFY_FAILURE },
	{ "DELAY",	DSN_NOTIFY_DELAY },
};
#define NOTIFY_NWORDS	(sizeof(notify_words) / sizeof(notify_words[0]))

int
dsn_notify_parse(const char *s)
{
	const char	*p, *end;
	size_t		 len, i;
	int		 flags = 0, f;

	if (strcasecmp(s, "NEVER") == 0)
		return DSN_NOTIFY_NEVER;
	for (p = s;; p = end + 1) {
		while (*p == ' ')
			p++;
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		while (len > 0 && p[len - 1] == ' ')
			len--;
		f = 0;
		for (i = 0; i < NOTIFY_NWORDS; i++)
			if (strlen(notify_words[i].name) == len &&
			    strncasecmp(p, notify_words[i].name, len) == 0)
				f = notify_words[i].flag;
		/* An unknown word, an empty item or NEVER in a list. */
		if (f == 0)
			return -1;
		flags |= f;
		if (*end == '\0')
			return flags;
	}
}

const char *
dsn_notify_format(int flags, char buf[DSN_NOTIFY_TEXT_MAX])
{
	size_t	 i, len = 0;

	buf[0] = '\0';
	if (flags & DSN_NOTIFY_NEVER) {
		snprintf(buf, DSN_NOTIFY_TEXT_MAX, "NEVER");
		return buf;
	}
	/* At most "SUCCESS,FAILURE,DELAY": it always fits. */
	for (i = 0; i < NOTIFY_NWORDS; i++) {
		if (!(flags & notify_words[i].flag))
			continue;
		len += (size_t)snprintf(buf + len, DSN_NOTIFY_TEXT_MAX - len,
		    "%s%s", len > 0 ? "," : "", notify_words[i].name);
	}
	return buf;
}

/*
 * RFC 3461 4.1: without NOTIFY, failures are reported and delays may be;
 * we report delays then only when delay warnings are on (delay_default).
 */
int
dsn_notify_wants(int notify, int action, int delay_default)
{
	if (notify & DSN_NOTIFY_NEVER)
		return 0;
	switch (action) {
	case DSN_ACTION_FAILED:
		return notify == 0 || (notify & DSN_NOTIFY_FAILURE);
	case DSN_ACTION_DELAYED:
		if (!delay_default)
			return 0;
		return notify == 0 || (notify & DSN_NOTIFY_DELAY);
	case DSN_ACTION_DELIVERED:
		return (notify & DSN_NOTIFY_SUCCESS) != 0;
	}
	return 0;
}

int
dsn_ret_parse(const char *s)
{
	if (strcasecmp(s, "FULL") == 0)
		return DSN_RET_FULL;
	if (strcasecmp(s, "HDRS") == 0)
		return DSN_RET_HDRS;
	return -1;
}

int
dsn_text_ok(const char *s, size_t max)
{
	size_t	 n;

	for (n = 0; s[n] != '\0'; n++)
		if (n >= max || (unsigned char)s[n] <= 0x20 ||
		    (unsigned char)s[n] >= 0x7f)
			return 0;
	return n > 0;
}

/* RFC 3463: class "." 1*3digit "." 1*3digit. */
int
dsn_status_ok(const char *s, int class)
{
	int	 part, n;

	if (s[0] != '2' && s[0] != '4' && s[0] != '5')
		return 0;
	if (class != 0 && s[0] != '0' + class)
		return 0;
	if (s[1] != '.')
		return 0;
	s += 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; isdigit((unsigned char)*s); n++, s++)
			;
		if (n < 1 || n > 3)
			return 0;
		if (part == 0 && *s++ != '.')
			return 0;
	}
	return *s == '\0';
}

size_t
dsn_header_len(const char *msg, size_t len)
{
	size_t	 i;

	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 2;
	for (i = 0; i + 3 < len; i++)
		if (msg[i] == '\r' && memcmp(msg + i, "\r\n\r\n", 4) == 0)
			return i + 4;
	return len;
}

void
dsn_date(int64_t t, char *buf, size_t len)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 +0000");
}

static void
db_add(struct dbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap == 0 ? 4096 : b->cap * 2;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
db_printf(struct dbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
db_printf(struct dbuf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n == -1)
		abort();
	db_add(b, s, (size_t)n);
	free(s);
}

/* Outside text made safe for one header line: cut, controls replaced. */
static char *
clean(const char *s)
{
	char	*c, *p;

	c = xstrndup(s != NULL ? s : "", DSN_TEXT_MAX);
	for (p = c; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return c;
}

static int
has_8bit(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* Does any recipient text need 8 bits (SMTPUTF8 addresses, replies)? */
static int
rcpts_8bit(const struct dsn_report *r)
{
	const struct dsn_rcpt	*rc;
	size_t			 i;

	for (i = 0; i < r->nrcpt; i++) {
		rc = &r->rcpts[i];
		if (has_8bit(rc->address, strlen(rc->address)) ||
		    has_8bit(rc->diag, strlen(rc->diag)) ||
		    (rc->reason != NULL &&
		    has_8bit(rc->reason, strlen(rc->reason))) ||
		    has_8bit(rc->orcpt, strlen(rc->orcpt)))
			return 1;
	}
	return has_8bit(r->sender, strlen(r->sender));
}

static const char *
action_name(int action)
{
	switch (action) {
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	}
	return "failed";
}

/* A recipient's status, or the action's generic one when it is not valid. */
static const char *
rcpt_status(const struct dsn_rcpt *rc)
{
	switch (rc->action) {
	case DSN_ACTION_DELAYED:
		return dsn_status_ok(rc->status, 4) ? rc->status : "4.0.0";
	case DSN_ACTION_DELIVERED:
		return dsn_status_ok(rc->status, 2) ? rc->status : "2.0.0";
	}
	return dsn_status_ok(rc->status, 5) || dsn_status_ok(rc->status, 4) ?
	    rc->status : "5.0.0";
}

/* The top-level header. */
static void
build_header(struct dbuf *b, const struct dsn_report *r, int eight)
{
	static const char *subjects[] = {
		[DSN_ACTION_FAILED] = "Undelivered Mail Returned to Sender",
		[DSN_ACTION_DELAYED] = "Delayed Mail (still being retried)",
		[DSN_ACTION_DELIVERED] = "Successful Mail Delivery Report",
	};
	char	 date[64], *host, *to, *mid;

	host = clean(r->reporting_mta);
	to = clean(r->sender);
	mid = clean(r->message_id);
	dsn_date(r->now, date, sizeof(date));
	db_printf(b, "Date: %s\r\n"
	    "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	    "To: <%s>\r\n"
	    "Subject: %s\r\n"
	    "Message-ID: %s\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n"
	    "Content-Transfer-Encoding: %s\r\n"
	    "\r\n"
	    "This is a MIME-encapsulated message.\r\n"
	    "\r\n", date, host, to, subjects[r->action], mid, r->boundary,
	    eight ? "8bit" : "7bit");
	free(host);
	free(to);
	free(mid);
}

/* The first part: what happened, in words. */
static void
build_text(struct dbuf *b, const struct dsn_report *r, int eight)
{
	const struct dsn_rcpt	*rc;
	char			*host, *addr, *diag, *reason, date[64];
	size_t			 i;

	host = clean(r->reporting_mta);
	db_printf(b, "--%s\r\n"
	    "Content-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=%s\r\n"
	    "\r\n"
	    "This is the mail system at host %s.\r\n\r\n", r->boundary,
	    eight ? "utf-8" : "us-ascii", host);
	free(host);
	switch (r->action) {
	case DSN_ACTION_FAILED:
		db_printf(b, "I'm sorry to have to inform you that your "
		    "message could not\r\nbe delivered to one or more "
		    "recipients. It's attached below.\r\n\r\n");
		break;
	case DSN_ACTION_DELAYED:
		db_printf(b, "####################################"
		    "################################\r\n"
		    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND "
		    "YOUR MESSAGE. #\r\n"
		    "####################################"
		    "################################\r\n\r\n"
		    "Your message could not be delivered yet to the "
		    "recipients below.\r\nThe mail system will keep trying");
		if (r->nrcpt > 0 && r->rcpts[0].retry_until != 0) {
			dsn_date(r->rcpts[0].retry_until, date, sizeof(date));
			db_printf(b, " until\r\n%s", date);
		}
		db_printf(b, ".\r\n\r\n");
		break;
	default:
		db_printf(b, "Your message was successfully delivered to the "
		    "destination(s)\r\nlisted below.\r\n\r\n");
		break;
	}
	for (i = 0; i < r->nrcpt; i++) {
		rc = &r->rcpts[i];
		addr = clean(rc->address);
		diag = clean(rc->diag);
		reason = clean(rc->reason);
		if (*reason != '\0' && *diag != '\0')
			db_printf(b, "<%s>: %s; last error: %s\r\n", addr,
			    reason, diag);
		else
			db_printf(b, "<%s>: %s\r\n", addr, *reason != '\0' ?
			    reason : *diag != '\0' ? diag :
			    action_name(rc->action));
		free(addr);
		free(diag);
		free(reason);
	}
	db_printf(b, "\r\n");
}

/* One per-recipient block of the message/delivery-status part. */
static void
build_rcpt(struct dbuf *b, const struct dsn_rcpt *rc)
{
	char	*s, date[64];

	s = clean(rc->address);
	db_printf(b, "\r\nFinal-Recipient: rfc822; %s\r\n", s);
	free(s);
	if (rc->orcpt[0] != '\0' && strchr(rc->orcpt, ';') != NULL) {
		s = clean(rc->orcpt);
		db_printf(b, "Original-Recipient: %s\r\n", s);
		free(s);
	}
	db_printf(b, "Action: %s\r\nStatus: %s\r\n", action_name(rc->action),
	    rcpt_status(rc));
	if (rc->remote_mta[0] != '\0') {
		s = clean(rc->remote_mta);
		db_printf(b, "Remote-MTA: dns; %s\r\n", s);
		free(s);
	}
	if (rc->diag[0] != '\0') {
		s = clean(rc->diag);
		db_printf(b, "Diagnostic-Code: %s; %s\r\n",
		    rc->diag_smtp ? "smtp" : "X-mtad", s);
		free(s);
	}
	if (rc->last_attempt != 0) {
		dsn_date(rc->last_attempt, date, sizeof(date));
		db_printf(b, "Last-Attempt-Date: %s\r\n", date);
	}
	if (rc->action == DSN_ACTION_DELAYED && rc->retry_until != 0) {
		dsn_date(rc->retry_until, date, sizeof(date));
		db_printf(b, "Will-Retry-Until: %s\r\n", date);
	}
}

/* The second part: message/delivery-status (RFC 3464 2.2, 2.3). */
static void
build_status(struct dbuf *b, const struct dsn_report *r)
{
	char	*host, *s, date[64];
	size_t	 i;

	host = clean(r->reporting_mta);
	db_printf(b, "--%s\r\n"
	    "Content-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n"
	    "\r\n"
	    "Reporting-MTA: dns; %s\r\n", r->boundary, host);
	free(host);
	s = clean(r->queue_id);
	db_printf(b, "X-Mtad-Queue-ID: %s\r\n", s);
	free(s);
	if (r->envid[0] != '\0') {
		s = clean(r->envid);
		db_printf(b, "Original-Envelope-Id: %s\r\n", s);
		free(s);
	}
	s = clean(r->sender);
	db_printf(b, "X-Mtad-Sender: rfc822; %s\r\n", s);
	free(s);
	dsn_date(r->arrival, date, sizeof(date));
	db_printf(b, "Arrival-Date: %s\r\n", date);
	for (i = 0; i < r->nrcpt; i++)
		build_rcpt(b, &r->rcpts[i]);
	db_printf(b, "\r\n");
}

/* The third part: the original, whole or its header only. */
static void
build_orig(struct dbuf *b, const struct dsn_report *r)
{
	size_t	 len = r->origlen;
	int	 full = r->full;

	if (full && len > DSN_FULL_LIMIT)
		full = 0;
	if (!full)
		len = dsn_header_len(r->orig, len);
	db_printf(b, "--%s\r\n"
	    "Content-Description: %s\r\n"
	    "Content-Type: %s\r\n", r->boundary,
	    r->action == DSN_ACTION_FAILED ?
	    (full ? "Undelivered Message" : "Undelivered Message Headers") :
	    (full ? "Message" : "Message Headers"),
	    full ? "message/rfc822" : "text/rfc822-headers");
	if (has_8bit(r->orig, len))
		db_printf(b, "Content-Transfer-Encoding: 8bit\r\n");
	db_printf(b, "\r\n");
	db_add(b, r->orig, len);
	if (len < 2 || memcmp(r->orig + len - 2, "\r\n", 2) != 0)
		db_add(b, "\r\n", 2);
	db_printf(b, "\r\n--%s--\r\n", r->boundary);
}

char *
dsn_build(const struct dsn_report *r, size_t *len)
{
	struct dbuf	 b = { NULL, 0, 0 };
	size_t		 olen;
	int		 eight;

	olen = r->full && r->origlen <= DSN_FULL_LIMIT ? r->origlen :
	    dsn_header_len(r->orig, r->origlen);
	eight = rcpts_8bit(r) || has_8bit(r->orig, olen);
	build_header(&b, r, eight);
	build_text(&b, r, eight);
	build_status(&b, r);
	build_orig(&b, r);
	*len = b.len;
	return b.p;
}
