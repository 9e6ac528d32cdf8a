/*
 * Fuzz target: DATA framing (smtp_data_feed, common/smtp_parse.h), the
 * part of the server where SMTP smuggling lives.
 *
 * The stream is framed twice: in one call with room to spare, and in
 * chunks of a size and an output room taken from the first two bytes.
 * Properties: both give the same output, the same end position and the
 * same flags (the framer's state really carries across chunks); only
 * CRLF.CRLF ends the data; without the BARE flag the output holds no
 * bare CR or LF, and without LONG no line over SMTP_TEXT_LINE_MAX.  And a
 * round trip: an accepted message, dot-stuffed again by the client side
 * (common/dotstuff.h) and framed, is the same message.
 */
#include <string.h>

#include "dotstuff.h"
#include "fuzz.h"
#include "smtp_parse.h"

/* Frame in[0..len) in pieces; returns 1 when the end of data was seen. */
static int
frame(const char *in, size_t len, size_t chunk, size_t room, char *out,
    size_t *outlen, size_t *endpos, int *flags)
{
	struct smtp_data	 d;
	size_t			 off = 0, used, n, piece;
	int			 done = 0;

	smtp_data_init(&d);
	*outlen = 0;
	while (off < len && !done) {
		piece = len - off < chunk ? len - off : chunk;
		done = smtp_data_feed(&d, in + off, piece, &used,
		    out + *outlen, room, &n);
		FUZZ_CHECK(used <= piece && n <= room);
		FUZZ_CHECK(used > 0 || n > 0 || done);
		off += used;
		*outlen += n;
	}
	*endpos = off;
	*flags = d.flags;
	return done;
}

/* No CR without its LF, no LF without its CR, no overlong line. */
static void
check_clean(const char *p, size_t len, int flags)
{
	size_t	 i, line = 0;

	for (i = 0; i < len; i++) {
		if (!(flags & SMTP_DATA_F_BARE)) {
			if (p[i] == '\r')
				FUZZ_CHECK(i + 1 < len && p[i + 1] == '\n');
			if (p[i] == '\n')
				FUZZ_CHECK(i > 0 && p[i - 1] == '\r');
		}
		if (p[i] == '\n')
			line = 0;
		else if (p[i] != '\r' && ++line > SMTP_TEXT_LINE_MAX - 2)
			FUZZ_CHECK(flags & SMTP_DATA_F_LONG);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dotstuff	 ds;
	char		*a, *b, *st;
	const char	*in;
	size_t		 len, chunk, room, alen, blen, aend, bend, slen, send;
	int		 adone, bdone, aflags, bflags, sflags, sdone;

	if (size < 2)
		return 0;
	chunk = (size_t)data[0] + 1;
	room = (size_t)data[1] % 64 + 2;
	in = (const char *)data + 2;
	len = size - 2;

	/* The output never grows: every input octet gives at most one. */
	a = malloc(len + 2);
	b = malloc(len + 2);
	adone = frame(in, len, len + 1, len + 2, a, &alen, &aend, &aflags);
	bdone = frame(in, len, chunk, room, b, &blen, &bend, &bflags);
	FUZZ_CHECK(adone == bdone && aend == bend && aflags == bflags);
	FUZZ_CHECK(alen == blen && memcmp(a, b, alen) == 0);
	FUZZ_CHECK(alen <= len);
	if (adone) {
		FUZZ_CHECK(aend >= 3);
		FUZZ_CHECK(memcmp(in + aend - 3, ".\r\n", 3) == 0);
		/* Only <CRLF>.<CRLF>, or ".CRLF" as the very first line. */
		FUZZ_CHECK(aend == 3 ||
		    (aend >= 5 && memcmp(in + aend - 5, "\r\n", 2) == 0));
	}
	check_clean(a, alen, aflags);

	if (adone && aflags == 0) {
		/* What a client sends for this message frames back to it. */
		st = malloc(DOTSTUFF_MAXOUT(alen) + DOTSTUFF_ENDLEN);
		dotstuff_init(&ds);
		slen = dotstuff_chunk(&ds, a, alen, st);
		slen += dotstuff_end(&ds, st + slen);
		sdone = frame(st, slen, chunk, room, b, &blen, &send, &sflags);
		FUZZ_CHECK(sdone && send == slen && sflags == 0);
		FUZZ_CHECK(blen == alen && memcmp(a, b, alen) == 0);
		free(st);
	}
	free(a);
	free(b);
	return 0;
}
