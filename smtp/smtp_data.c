/*
 * The body of DATA: the spool file is read with pread() from offset 0 (the
 * fd's own offset is nobody's contract), in SMTP_CHUNK pieces, and each
 * piece goes through the dot-stuffer into the session's output buffer.
 * The session asks for more only when the buffer has room for a whole
 * stuffed chunk, so memory stays bounded whatever the message size.
 */
#include <errno.h>
#include <unistd.h>

#include "dotstuff.h"
#include "smtp.h"

void
smtp_data_start(struct smtp_data *d)
{
	d->off = 0;
	d->eof = 0;
	dotstuff_init(&d->dot);
}

/* One pread() of the message, stuffed into buf; the end when it is read. */
ssize_t
smtp_data_fill(struct smtp_data *d, int fd, char *buf, size_t room)
{
	char	 in[SMTP_CHUNK];
	ssize_t	 n;

	if (d->eof || room < SMTP_DATA_ROOM)
		return 0;
	do {
		n = pread(fd, in, sizeof(in), d->off);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return -1;
	if (n == 0) {
		d->eof = 1;
		return dotstuff_end(&d->dot, buf);
	}
	d->off += n;
	return dotstuff_chunk(&d->dot, in, n, buf);
}
