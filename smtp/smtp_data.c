/*
 * The body of DATA: the message is a range of the spool file, read with
 * pread() (the fd's own offset is nobody's contract), in SMTP_CHUNK pieces,
 * and each
 * piece goes through the dot-stuffer into the session's output buffer.
 * The session asks for more only when the buffer has room for a whole
 * stuffed chunk, so memory stays bounded whatever the message size.
 */
#include <errno.h>
#include <unistd.h>

#include "dotstuff.h"
#include "smtp.h"

void
smtp_data_start(struct smtp_data *d, uint64_t off, uint64_t len)
{
	d->off = (off_t)off;
	d->end = (off_t)(off + len);
	d->eof = 0;
	dotstuff_init(&d->dot);
}

/* One pread() of the message, stuffed into buf; the end when it is read. */
ssize_t
smtp_data_fill(struct smtp_data *d, int fd, char *buf, size_t room)
{
	char	 in[SMTP_CHUNK];
	size_t	 want;
	ssize_t	 n = 0;

	if (d->eof || room < SMTP_DATA_ROOM)
		return 0;
	want = d->end - d->off < (off_t)sizeof(in) ?
	    (size_t)(d->end - d->off) : sizeof(in);
	while (want > 0 && (n = pread(fd, in, want, d->off)) == -1 &&
	    errno == EINTR)
		;
	if (n == -1)
		return -1;
	if (want > 0 && n == 0) {
		errno = EIO;	/* the file is shorter than qmgr says */
		return -1;
	}
	if (n == 0) {
		d->eof = 1;
		return dotstuff_end(&d->dot, buf);
	}
	d->off += n;
	return dotstuff_chunk(&d->dot, in, n, buf);
}
