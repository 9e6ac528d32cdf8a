/*
 * Fuzz target: the SMTP client's reply and EHLO parsers
 * (common/smtp_reply.h), fed what a hostile server sends, line by line.
 *
 * Properties: a complete reply has one code for all its lines, 200..599;
 * the kept text is printable (escaped) and NUL-terminated within its
 * buffer; the enhanced status is empty or "c.s.d" of the reply's class;
 * the line count stays within SMTP_REPLY_LINES_MAX; nothing is accepted
 * after the last line.
 */
#include <ctype.h>
#include <string.h>

#include "fuzz.h"
#include "smtp_reply.h"

static void
check_reply(const struct smtp_reply *r)
{
	char	 dsn[SMTP_DSN_MAX];
	size_t	 i;

	FUZZ_CHECK(r->code >= 200 && r->code <= 599);
	FUZZ_CHECK(r->nlines >= 1 && r->nlines <= SMTP_REPLY_LINES_MAX);
	FUZZ_CHECK(memchr(r->text, '\0', sizeof(r->text)) != NULL);
	FUZZ_CHECK(memchr(r->status, '\0', sizeof(r->status)) != NULL);
	for (i = 0; r->text[i] != '\0'; i++)
		FUZZ_CHECK(isprint((unsigned char)r->text[i]));
	if (r->status[0] != '\0') {
		FUZZ_CHECK(r->status[0] - '0' == r->code / 100);
		FUZZ_CHECK(r->status[1] == '.');
	}
	smtp_reply_dsn(r, dsn, sizeof(dsn));
	FUZZ_CHECK(dsn[0] - '0' == r->code / 100 && dsn[1] == '.');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply	 r;
	struct smtp_caps	 caps;
	const char		*p = (const char *)data, *end = p + size, *nl;
	const char		*text;
	size_t			 len, textlen;
	int			 rv, first = 1;

	smtp_reply_reset(&r);
	smtp_caps_reset(&caps);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);
		if (len > 0 && p[len - 1] == '\r')
			len--;
		text = NULL;
		textlen = 0;
		rv = smtp_reply_line(&r, p, len, &text, &textlen);
		FUZZ_CHECK(rv == -1 || rv == 0 || rv == 1);
		if (rv >= 0) {
			FUZZ_CHECK(text >= p && text + textlen <= p + len);
			/* EHLO lines after the greeting name, as the client. */
			if (!first)
				smtp_caps_line(&caps, text, textlen);
			first = 0;
		}
		if (rv == 1) {
			check_reply(&r);
			smtp_reply_reset(&r);
			first = 1;
		} else if (rv == -1)
			smtp_reply_reset(&r);
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	/* Every caps line may also come first in its reply. */
	smtp_caps_line(&caps, (const char *)data, size);
	FUZZ_CHECK((caps.auth & ~3u) == 0);
	return 0;
}
