/*
 * SMTP replies as a client reads them (RFC 5321 4.2): one or more lines
 * "DDD-text" ending with "DDD text" (or a bare "DDD"), every line with the
 * same code.  The parser is fed one line at a time, without its line end,
 * so that the caller owns the buffering and the bounds: a line longer than
 * SMTP_REPLY_LINE_MAX or a reply of more than SMTP_REPLY_LINES_MAX lines is
 * malformed.  The first line's enhanced status code (RFC 3463) is split off
 * when its class matches the reply code.
 *
 * EHLO capability lines are parsed here too, so that both are unit tested
 * without a network.
 */
#ifndef MTAD_SMTP_REPLY_H
#define MTAD_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_LINE_MAX	512	/* octets per line, without CRLF */
#define SMTP_REPLY_LINES_MAX	128	/* lines per reply */
#define SMTP_REPLY_TEXT_MAX	256	/* first line text kept, escaped */
#define SMTP_DSN_MAX		16	/* "5.123.123" and a NUL fit */

struct smtp_reply {
	int	 code;			/* 200..599; 0 before the first line */
	int	 nlines;
	int	 done;			/* the last line was read */
	char	 status[SMTP_DSN_MAX];	/* enhanced status, "" when none */
	char	 text[SMTP_REPLY_TEXT_MAX]; /* first line after code, status */
};

/* EHLO keywords we act on. */
#define SMTP_CAP_PIPELINING	0x0001
#define SMTP_CAP_SIZE		0x0002
#define SMTP_CAP_8BITMIME	0x0004
#define SMTP_CAP_STARTTLS	0x0008
#define SMTP_CAP_AUTH		0x0010
#define SMTP_CAP_ENHANCED	0x0020	/* ENHANCEDSTATUSCODES */
#define SMTP_CAP_SMTPUTF8	0x0040
#define SMTP_CAP_DSN		0x0080
#define SMTP_CAP_CHUNKING	0x0100

struct smtp_caps {
	unsigned	 flags;		/* SMTP_CAP_* */
	uint64_t	 size_max;	/* SIZE parameter; 0: none given */
	unsigned	 auth;		/* SMTP_AUTH_* mechanisms offered */
};

void	smtp_reply_reset(struct smtp_reply *);
/*
 * Feed one line (without CR LF).  Returns 1 when the reply is complete,
 * 0 when more lines follow, -1 when the line is malformed.  *text and
 * *textlen (may be NULL) get this line's text after "DDD-" / "DDD ".
 */
int	smtp_reply_line(struct smtp_reply *, const char *line, size_t len,
	    const char **text, size_t *textlen);
/* The enhanced status, or "X.0.0" derived from the code, into buf. */
const char *smtp_reply_dsn(const struct smtp_reply *, char *buf, size_t len);

void	smtp_caps_reset(struct smtp_caps *);
/* One EHLO line's text (not the first, which is the greeting name). */
void	smtp_caps_line(struct smtp_caps *, const char *text, size_t len);

#endif
