/*
 * Whole-buffer reads and writes on blocking descriptors (spool files),
 * retrying on EINTR and short transfers.
 */
#ifndef MTAD_FILEIO_H
#define MTAD_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/* Write all of buf: 0, or -1 with errno set. */
int	fd_write_all(int fd, const void *buf, size_t len);
/* Read until len bytes or end of file: the count, or -1 with errno set. */
ssize_t	fd_read_upto(int fd, void *buf, size_t len);
/* The same at a file offset, leaving the descriptor's offset alone. */
int	fd_pwrite_all(int fd, const void *buf, size_t len, off_t off);
ssize_t	fd_pread_upto(int fd, void *buf, size_t len, off_t off);

#endif
