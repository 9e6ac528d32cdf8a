/*
 * chan: the imsg-like channel between mtad processes over a UNIX stream
 * socket, driven by libevent.
 *
 * Wire format: a fixed header (struct msg_hdr, host byte order: both ends
 * are the same machine) followed by hdr.len payload bytes.  A message may
 * carry one file descriptor (SCM_RIGHTS), flagged in hdr.flags.  Payload
 * fields are tagged (u32, u64, str, data): a reader that asks for the wrong
 * tag, reads past the end, or leaves bytes unread gets an error, never a
 * crash.  Strings are length-prefixed, NUL-terminated and NUL-free inside.
 *
 * Trust: on a trusted channel (internal peer) a malformed message, a type
 * not allowed from that peer (proto.h matrix), or an oversized header is
 * fatal for the receiver.  On an untrusted channel (mtactl client) the same
 * closes the channel: the callback is called with msg == NULL.
 *
 * Sending: msgb_new() -> msgb_u32()/... -> chan_send(), which queues it;
 * EV_WRITE is armed only while data is queued.  chan_flush_sync() writes
 * everything synchronously (used before exit).
 */
#ifndef MTAD_CHAN_H
#define MTAD_CHAN_H

#include <stddef.h>
#include <stdint.h>

#define MSG_MAX_PAYLOAD	(4u * 1024 * 1024)
#define MSG_F_FD	0x0001

struct msg_hdr {
	uint16_t	type;
	uint16_t	flags;
	uint32_t	len;		/* payload bytes after the header */
	uint32_t	peerid;		/* request id, instance number... */
	uint32_t	pid;		/* sender's pid */
};

/* A received message: read it with msg_get_*(), then check msg_end(). */
struct msg {
	struct msg_hdr	 hdr;
	const uint8_t	*data;
	size_t		 pos;
	int		 fd;		/* -1 when none or taken */
	int		 err;
};

struct chan;
struct msgb;

#define CHAN_UNTRUSTED	0x1

/*
 * Called once per complete message; msg == NULL when the channel is closed
 * (EOF, error, or bad input on an untrusted channel): the callback must then
 * chan_free() it (it may do so at once).  The payload is valid until the
 * callback returns; an fd not taken with msg_take_fd() is closed then.
 */
typedef void (*chan_cb)(struct chan *, struct msg *, void *);

struct chan	*chan_new(int fd, int self_proc, int peer_proc, int flags,
		    chan_cb cb, void *arg);
void		 chan_free(struct chan *);
int		 chan_fd(struct chan *);
int		 chan_peer_proc(struct chan *);
void		*chan_arg(struct chan *);
void		 chan_set_arg(struct chan *, void *);
size_t		 chan_queued(struct chan *);	/* bytes waiting to be sent */
void		 chan_send(struct chan *, struct msgb *);
/* Write all queued data now, blocking; -1 on error. */
int		 chan_flush_sync(struct chan *);
/*
 * Block until one message arrives (no event loop needed).  Returns 1 with
 * *out filled (free with msg_free()), 0 on EOF, -1 on error.
 */
int		 chan_read_sync(struct chan *, struct msg **out);
void		 msg_free(struct msg *);

/* Builder. */
struct msgb	*msgb_new(int type, uint32_t peerid);
void		 msgb_u32(struct msgb *, uint32_t);
void		 msgb_u64(struct msgb *, uint64_t);
void		 msgb_str(struct msgb *, const char *);
void		 msgb_data(struct msgb *, const void *, size_t);
/* Attach an fd: ownership passes to the channel, closed once sent. */
void		 msgb_fd(struct msgb *, int fd);
void		 msgb_free(struct msgb *);
/* Encode a finished builder into one wire buffer (header + payload). */
const uint8_t	*msgb_wire(struct msgb *, size_t *len);

/* Reader: on error these set m->err and return 0 / "" / NULL. */
uint32_t	 msg_get_u32(struct msg *);
uint64_t	 msg_get_u64(struct msg *);
const char	*msg_get_str(struct msg *);
const void	*msg_get_data(struct msg *, size_t *len);
int		 msg_take_fd(struct msg *);
/* 0 when every field was read correctly and nothing is left; else -1. */
int		 msg_end(struct msg *);
/* Parse a header + payload from raw bytes (tests, fuzzing). */
int		 msg_parse(const uint8_t *buf, size_t len, struct msg *out,
		    size_t *used);

#endif
