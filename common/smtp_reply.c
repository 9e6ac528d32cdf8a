/*
 * SMTP reply and EHLO capability parsing for the smtp client (see
 * smtp_reply.h).  Input comes from remote servers: every index is checked
 * against the length given, nothing assumes NUL termination, and what is
 * kept is bounded and escaped.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtp_auth.h"
#include "smtp_reply.h"

void
smtp_reply_reset(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

/* Digits "ddd" with a valid first (2-5) and second (0-5) digit: the code. */
static int
smtp_reply_code(const char *p)
{
	if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' ||
	    !isdigit((unsigned char)p[2]))
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* Length of a run of 1..max digits at p (within len), 0 when none. */
static size_t
smtp_reply_digits(const char *p, size_t len, size_t max)
{
	size_t	 n = 0;

	while (n < len && n <= max && isdigit((unsigned char)p[n]))
		n++;
	return (n >= 1 && n <= max) ? n : 0;
}

/*
 * Length of an enhanced status "c.sss.ddd" at the start of text whose
 * class is the reply's class, followed by a space or the end; else 0.
 */
static size_t
smtp_reply_status_len(const char *p, size_t len, int code)
{
	size_t	 n, i;

	if (len < 5 || p[0] - '0' != code / 100 || p[1] != '.')
		return 0;
	i = 2;
	if ((n = smtp_reply_digits(p + i, len - i, 3)) == 0)
		return 0;
	i += n;
	if (i >= len || p[i] != '.')
		return 0;
	i++;
	if ((n = smtp_reply_digits(p + i, len - i, 3)) == 0)
		return 0;
	i += n;
	if (i < len && p[i] != ' ')
		return 0;
	return i;
}

/* Keep the first line: its enhanced status and its text, escaped. */
static void
smtp_reply_first(struct smtp_reply *r, const char *text, size_t len)
{
	size_t	 n;

	if ((n = smtp_reply_status_len(text, len, r->code)) != 0) {
		memcpy(r->status, text, n);
		r->status[n] = '\0';
		text += n;
		len -= n;
		while (len > 0 && *text == ' ') {
			text++;
			len--;
		}
	}
	log_escape(r->text, sizeof(r->text), text, len);
}

/* One line of a reply: check it against the first, keep the first. */
int
smtp_reply_line(struct smtp_reply *r, const char *line, size_t len,
    const char **text, size_t *textlen)
{
	const char	*t;
	size_t		 tl;
	int		 code;

	if (r->done || len < 3 || len > SMTP_REPLY_LINE_MAX ||
	    r->nlines >= SMTP_REPLY_LINES_MAX)
		return -1;
	if ((code = smtp_reply_code(line)) == -1)
		return -1;
	if (r->nlines > 0 && code != r->code)
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	t = len > 3 ? line + 4 : line + 3;
	tl = len > 3 ? len - 4 : 0;
	r->code = code;
	if (r->nlines++ == 0)
		smtp_reply_first(r, t, tl);
	if (text != NULL)
		*text = t;
	if (textlen != NULL)
		*textlen = tl;
	if (len == 3 || line[3] == ' ')
		r->done = 1;
	return r->done;
}

const char *
smtp_reply_dsn(const struct smtp_reply *r, char *buf, size_t len)
{
	if (r->status[0] != '\0')
		snprintf(buf, len, "%s", r->status);
	else
		snprintf(buf, len, "%d.0.0", r->code / 100);
	return buf;
}

void
smtp_caps_reset(struct smtp_caps *c)
{
	memset(c, 0, sizeof(*c));
}

/* Non-zero when the line's keyword (case-insensitive) is kw. */
static int
smtp_caps_is(const char *text, size_t len, const char *kw)
{
	size_t	 kl = strlen(kw);

	return len >= kl && strncasecmp(text, kw, kl) == 0 &&
	    (len == kl || text[kl] == ' ' || text[kl] == '=');
}

/* SIZE's optional argument: a decimal byte count, 0 when absent or bad. */
static uint64_t
smtp_caps_size(const char *text, size_t len)
{
	uint64_t	 v = 0;
	size_t		 i;

	for (i = 5; i < len && isdigit((unsigned char)text[i]); i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	return (i == len) ? v : 0;
}

/*
 * The mechanisms of "AUTH PLAIN LOGIN" (or the old "AUTH=LOGIN" form):
 * words separated by blanks, compared without case.
 */
static unsigned
smtp_caps_auth(const char *p, size_t len)
{
	const char	*end = p + len, *w;
	unsigned	 m = 0;
	size_t		 wl;

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		for (w = p; p < end && *p != ' ' && *p != '\t'; p++)
			;
		wl = (size_t)(p - w);
		if (wl == 5 && strncasecmp(w, "PLAIN", 5) == 0)
			m |= SMTP_AUTH_PLAIN;
		else if (wl == 5 && strncasecmp(w, "LOGIN", 5) == 0)
			m |= SMTP_AUTH_LOGIN;
	}
	return m;
}

/* Note the keyword of one EHLO line; unknown ones are ignored. */
void
smtp_caps_line(struct smtp_caps *c, const char *text, size_t len)
{
	static const struct {
		const char	*kw;
		unsigned	 flag;
	} caps[] = {
		{ "PIPELINING",		 SMTP_CAP_PIPELINING },
		{ "SIZE",		 SMTP_CAP_SIZE },
		{ "8BITMIME",		 SMTP_CAP_8BITMIME },
		{ "STARTTLS",		 SMTP_CAP_STARTTLS },
		{ "AUTH",		 SMTP_CAP_AUTH },
		{ "ENHANCEDSTATUSCODES", SMTP_CAP_ENHANCED },
		{ "SMTPUTF8",		 SMTP_CAP_SMTPUTF8 },
		{ "DSN",		 SMTP_CAP_DSN },
		{ "CHUNKING",		 SMTP_CAP_CHUNKING },
	};
	size_t	 i;

	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (!smtp_caps_is(text, len, caps[i].kw))
			continue;
		c->flags |= caps[i].flag;
		if (caps[i].flag == SMTP_CAP_SIZE && len > 5)
			c->size_max = smtp_caps_size(text, len);
		if (caps[i].flag == SMTP_CAP_AUTH && len > 5)
			c->auth |= smtp_caps_auth(text + 5, len - 5);
		return;
	}
}
