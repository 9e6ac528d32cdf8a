/*
 * Dot-stuffing of message data for the wire (see dotstuff.h).  The spool
 * already holds CR LF lines; bare LFs are still repaired so that a stray
 * one can never end the DATA phase early on a lenient server.
 */
#include <string.h>

#include "dotstuff.h"

void
dotstuff_init(struct dotstuff *d)
{
	d->bol = 1;
	d->cr = 0;
}

/* Stuff one chunk; the line state carries over to the next. */
size_t
dotstuff_chunk(struct dotstuff *d, const char *in, size_t len, char *out)
{
	const char	*nl;
	size_t		 i = 0, o = 0, end;

	/* Line by line: only a line's first octet and its LF need a look. */
	while (i < len) {
		if (d->bol && in[i] == '.')
			out[o++] = '.';
		nl = memchr(in + i, '\n', len - i);
		end = nl != NULL ? (size_t)(nl - in) : len;
		if (end > i) {
			memcpy(out + o, in + i, end - i);
			o += end - i;
			d->cr = in[end - 1] == '\r';
			d->bol = 0;
			i = end;
		}
		if (nl != NULL) {
			if (!d->cr)
				out[o++] = '\r';
			out[o++] = '\n';
			d->bol = 1;
			d->cr = 0;
			i++;
		}
	}
	return o;
}

/* Close the last line if open, then the lone dot. */
size_t
dotstuff_end(struct dotstuff *d, char *out)
{
	size_t	 o = 0;

	if (!d->bol) {
		if (!d->cr)
			out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	d->bol = 1;
	d->cr = 0;
	return o;
}
