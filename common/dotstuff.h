/*
 * The SMTP DATA transparency procedure (RFC 5321 4.5.2) as a stream
 * filter: a line starting with '.' gets one more '.', a bare LF becomes
 * CR LF, and the end adds CR LF when the last line was not ended, then
 * ".\r\n".  The state carries across chunks, so a message is converted
 * piece by piece with bounded buffers.
 */
#ifndef MTAD_DOTSTUFF_H
#define MTAD_DOTSTUFF_H

#include <stddef.h>

/* Worst case output of dotstuff_chunk(): every byte may double. */
#define DOTSTUFF_MAXOUT(len)	(2 * (len))
/* Output of dotstuff_end(): at most CR LF "." CR LF. */
#define DOTSTUFF_ENDLEN		5

struct dotstuff {
	int	 bol;		/* at the beginning of a line */
	int	 cr;		/* the last byte written was a CR */
};

void	dotstuff_init(struct dotstuff *);
/* Convert len bytes of in into out (DOTSTUFF_MAXOUT(len)); bytes written. */
size_t	dotstuff_chunk(struct dotstuff *, const char *in, size_t len,
	    char *out);
/* Write the end of data into out (DOTSTUFF_ENDLEN); bytes written. */
size_t	dotstuff_end(struct dotstuff *, char *out);

#endif
