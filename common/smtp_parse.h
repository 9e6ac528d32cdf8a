/*
 * smtp_parse: the pure parts of an SMTP server (RFC 5321), free of I/O so
 * that they are unit-tested and can be fuzzed:
 *
 *  - command line framing with the 512-octet limit (4.5.3.1.4): an
 *    overlong line is reported once and then discarded up to its LF, so
 *    memory stays bounded whatever the client sends;
 *  - MAIL/RCPT path and ESMTP parameter parsing: SIZE, BODY, SMTPUTF8
 *    (RFC 6531), RET/ENVID and NOTIFY/ORCPT (RFC 3461, values xtext-decoded
 *    and bounded); local part, domain and path lengths (4.5.3.1);
 *  - DATA framing: dot-unstuffing, the 1000-octet text line limit
 *    (4.5.3.1.6), and the end-of-data search.
 *
 * Only <CR><LF>.<CR><LF> ends DATA.  A bare CR or LF anywhere in the
 * message is flagged (the message must be refused) and never counts as a
 * line end, so "<LF>.<LF>" or "<LF>.<CR><LF>" cannot end DATA early: two
 * servers that disagree on where a message ends are how SMTP smuggling
 * works.
 */
#ifndef MTAD_SMTP_PARSE_H
#define MTAD_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "dsn.h"

#define SMTP_LINE_MAX		512	/* command line, CRLF included */
#define SMTP_TEXT_LINE_MAX	1000	/* DATA line, CRLF included */
#define SMTP_ADDR_MAX		254	/* path (256) without the brackets */
#define SMTP_LOCAL_MAX		64	/* local part (4.5.3.1.1) */
#define SMTP_DOMAIN_MAX		255	/* domain (4.5.3.1.2) */

/* smtp_line_next() results */
#define SMTP_LINE_MORE		0	/* no complete line (drop *used) */
#define SMTP_LINE_OK		1	/* a line of *linelen octets */
#define SMTP_LINE_LONG		2	/* a line over the limit began */

/*
 * Find the next command line at the start of buf.  *discard is the
 * framer's state (start at 0): set while an overlong line is skipped.
 * The caller drops *used octets in every case; with SMTP_LINE_OK the line
 * is buf[0 .. *linelen) without its CRLF (or bare LF).
 */
int	smtp_line_next(int *discard, const char *buf, size_t len,
	    size_t *linelen, size_t *used);
/* 0 when a command line holds no NUL, CR or LF; -1 otherwise. */
int	smtp_line_check(const char *line, size_t len);

/* smtp_parse_path() results */
#define SMTP_PATH_OK		0
#define SMTP_PATH_ESYNTAX	-1	/* not "KW:<path>" */
#define SMTP_PATH_EADDR		-2	/* the address is malformed */

/*
 * Parse "FROM:<addr> params" (kw "FROM") or "TO:<addr> params" (kw "TO").
 * The address is copied without brackets or source route into addr
 * (addrsz > SMTP_ADDR_MAX); "" is the null path, left to the caller to
 * allow.  *params points at the parameters (maybe "").
 */
int	smtp_parse_path(const char *arg, const char *kw, char *addr,
	    size_t addrsz, const char **params);

#define SMTP_BODY_UNSET		0
#define SMTP_BODY_7BIT		1
#define SMTP_BODY_8BITMIME	2

struct smtp_mail_params {
	uint64_t	 size;		/* SIZE=, 0 when not given */
	int		 body;		/* SMTP_BODY_* */
	int		 smtputf8;	/* SMTPUTF8 given */
	int		 ret;		/* RET=: DSN_RET_*, 0 when not given */
	char		 envid[DSN_ENVID_MAX + 1]; /* ENVID=, decoded; "" none */
};

struct smtp_rcpt_params {
	int		 notify;	/* NOTIFY=: DSN_NOTIFY_*, 0 not given */
	char		 orcpt[DSN_ORCPT_MAX + 1]; /* "type;addr" decoded, "" */
};

/*
 * MAIL parameters (SIZE, BODY, SMTPUTF8, RET, ENVID) and RCPT parameters
 * (NOTIFY, ORCPT).  Return 0, or the SMTP code (501, 555) with *reply set
 * to the whole reply line.  ENVID and ORCPT are at most DSN_ENVID_MAX and
 * DSN_ORCPT_MAX octets as sent (xtext) and must decode to printable ASCII.
 */
int	smtp_parse_mail_params(const char *params, struct smtp_mail_params *,
	    const char **reply);
int	smtp_parse_rcpt_params(const char *params, struct smtp_rcpt_params *,
	    const char **reply);

/* Decode RFC 3461 xtext into out (outsz octets): -1 on bad syntax or NUL. */
int	smtp_xtext_decode(const char *in, char *out, size_t outsz);
/* Non-zero when s holds an octet over 0x7f. */
int	smtp_has_8bit(const char *s);
/* Non-zero when s[0 .. len) is well-formed UTF-8 (RFC 3629). */
int	smtp_utf8_valid(const char *s, size_t len);
/*
 * Non-zero when addr is a mailbox as MAIL/RCPT accept it (local part at
 * most SMTP_LOCAL_MAX octets, domain at most SMTP_DOMAIN_MAX, the whole at
 * most SMTP_ADDR_MAX; 8-bit octets are left to the caller), or "".
 */
int	smtp_valid_address(const char *addr);

/* DATA framer state; flags say why the message must be refused. */
struct smtp_data {
	int		 state;
	size_t		 linelen;	/* octets of the current line */
	int		 flags;
#define SMTP_DATA_F_BARE	0x1	/* a bare CR or LF */
#define SMTP_DATA_F_LONG	0x2	/* a line over SMTP_TEXT_LINE_MAX */
#define SMTP_DATA_F_NUL		0x4	/* a NUL octet (RFC 5321 4.1.1.4) */
};

void	smtp_data_init(struct smtp_data *);
/*
 * Consume DATA input: the unstuffed message, with CRLF line ends, goes to
 * out (at most outcap octets; give it at least 2).  Stops when the input
 * is used up, out is full, or the end of data was consumed: then it
 * returns 1 (the terminating ".CRLF" is not part of the output).
 */
int	smtp_data_feed(struct smtp_data *, const char *in, size_t inlen,
	    size_t *used, char *out, size_t outcap, size_t *outlen);

/*
 * Dot-separated labels of 1..63 octets (letters, digits, '-', '_', and
 * octets >= 0x80 when allow_8bit), 255 octets in all: 1 when valid.
 */
int	smtp_valid_labels(const char *, int allow_8bit);

#endif
