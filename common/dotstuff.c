/*
 * Dot-stuffing of message data for the wire (see dotstuff.h).  The spool
 * already holds CR LF lines; bare LFs are still repaired so that a stray
 * one can never end the DATA phase early on a lenient server.
 */
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
	size_t	 i, o = 0;
	char	 c;

	for (i = 0; i < len; i++) {
		c = in[i];
		if (c == '.' && d->bol)
			out[o++] = '.';
		if (c == '\n' && !d->cr)
			out[o++] = '\r';
		out[o++] = c;
		d->bol = (c == '\n');
		d->cr = (c == '\r');
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
