/*
 * The imsg-like channel (see chan.h for the wire format and trust rules).
 *
 * Input: recvmsg() into a growing buffer; descriptors that arrive with
 * SCM_RIGHTS are queued in arrival order and handed to the messages whose
 * header carries MSG_F_FD, in order (Linux delivers the descriptors of one
 * sendmsg() with the first byte of that send, and a stream recvmsg() never
 * merges two sends' descriptors).
 *
 * Output: a queue of encoded messages.  A message with a descriptor is sent
 * alone with sendmsg(); runs of plain messages go out with one writev().
 * The callback may free the channel: freeing is deferred until dispatch
 * returns.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <event.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

#define TAG_U32		1
#define TAG_U64		2
#define TAG_STR		3
#define TAG_DATA	4

#define CHAN_READ_CHUNK	65536
#define CHAN_MAX_FDS	16	/* per recvmsg() */
#define CHAN_MAX_QFDS	1024	/* received, not yet claimed */
#define CHAN_IOV_MAX	64

struct obuf {
	TAILQ_ENTRY(obuf)	 entry;
	uint8_t			*data;
	size_t			 len;
	size_t			 off;
	int			 fd;
};

struct msgb {
	struct msg_hdr		 hdr;
	uint8_t			*buf;	/* header space, then payload */
	size_t			 len;
	size_t			 cap;
	int			 fd;
};

struct chan {
	int			 fd;
	int			 self;
	int			 peer;
	int			 flags;
	chan_cb			 cb;
	void			*arg;
	struct event		 rev;
	struct event		 wev;
	struct event		 pending;	/* input left by chan_read_sync */
	int			 wev_on;
	uint8_t			*ibuf;
	size_t			 ioff;		/* start of unread input */
	size_t			 ilen;		/* end of input */
	size_t			 icap;
	int			*qfds;
	size_t			 nqfds;
	TAILQ_HEAD(, obuf)	 outq;
	size_t			 queued;
	int			 closed;	/* bad input or write error */
	int			 eof;		/* the peer closed or read failed */
	int			 in_dispatch;
	int			 freed;
};

struct msg_owned {
	struct msg		 m;
	uint8_t			 payload[];
};

static void	chan_read_cb(int, short, void *);
static void	chan_write_cb(int, short, void *);
static void	chan_pending_cb(int, short, void *);

struct chan *
chan_new(int fd, int self_proc, int peer_proc, int flags, chan_cb cb,
    void *arg)
{
	struct chan	*c;

	c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->self = self_proc;
	c->peer = peer_proc;
	c->flags = flags;
	c->cb = cb;
	c->arg = arg;
	TAILQ_INIT(&c->outq);
	event_set(&c->rev, fd, EV_READ | EV_PERSIST, chan_read_cb, c);
	event_set(&c->wev, fd, EV_WRITE | EV_PERSIST, chan_write_cb, c);
	evtimer_set(&c->pending, chan_pending_cb, c);
	event_add(&c->rev, NULL);
	return c;
}

/* Release everything; deferred while the channel's callback runs. */
void
chan_free(struct chan *c)
{
	struct obuf	*ob;
	size_t		 i;

	if (c == NULL)
		return;
	if (c->in_dispatch) {
		c->freed = 1;
		return;
	}
	event_del(&c->rev);
	event_del(&c->wev);
	evtimer_del(&c->pending);
	while ((ob = TAILQ_FIRST(&c->outq)) != NULL) {
		TAILQ_REMOVE(&c->outq, ob, entry);
		if (ob->fd != -1)
			close(ob->fd);
		free(ob->data);
		free(ob);
	}
	for (i = 0; i < c->nqfds; i++)
		close(c->qfds[i]);
	free(c->qfds);
	free(c->ibuf);
	close(c->fd);
	free(c);
}

int
chan_fd(struct chan *c)
{
	return c->fd;
}

int
chan_peer_proc(struct chan *c)
{
	return c->peer;
}

void *
chan_arg(struct chan *c)
{
	return c->arg;
}

void
chan_set_arg(struct chan *c, void *arg)
{
	c->arg = arg;
}

size_t
chan_queued(struct chan *c)
{
	return c->queued;
}

/* --- builder ----------------------------------------------------------- */

struct msgb *
msgb_new(int type, uint32_t peerid)
{
	struct msgb	*b;

	if (type <= MSG_NONE || type >= MSG_TYPE_COUNT)
		log_panic("msgb_new: bad type %d", type);
	b = xcalloc(1, sizeof(*b));
	b->hdr.type = type;
	b->hdr.peerid = peerid;
	b->hdr.pid = proc_pid();
	b->cap = 256;
	b->buf = xmalloc(b->cap);
	b->len = sizeof(struct msg_hdr);
	b->fd = -1;
	return b;
}

/* Append raw bytes; an oversized payload is a bug of the sender. */
static void
msgb_put(struct msgb *b, const void *p, size_t len)
{
	if (len > MSG_MAX_PAYLOAD ||
	    b->len - sizeof(struct msg_hdr) + len > MSG_MAX_PAYLOAD)
		log_panic("%s: payload over %u bytes", msg_name(b->hdr.type),
		    MSG_MAX_PAYLOAD);
	while (b->len + len > b->cap) {
		b->cap *= 2;
		b->buf = xreallocarray(b->buf, b->cap, 1);
	}
	if (len)
		memcpy(b->buf + b->len, p, len);
	b->len += len;
}

static void
msgb_tag(struct msgb *b, uint8_t tag)
{
	msgb_put(b, &tag, 1);
}

void
msgb_u32(struct msgb *b, uint32_t v)
{
	msgb_tag(b, TAG_U32);
	msgb_put(b, &v, sizeof(v));
}

void
msgb_u64(struct msgb *b, uint64_t v)
{
	msgb_tag(b, TAG_U64);
	msgb_put(b, &v, sizeof(v));
}

void
msgb_str(struct msgb *b, const char *s)
{
	size_t		 n;
	uint32_t	 len;

	if (s == NULL)
		s = "";
	n = strlen(s) + 1;
	if (n > MSG_MAX_PAYLOAD)
		log_panic("msgb_str: string too long");
	len = n;
	msgb_tag(b, TAG_STR);
	msgb_put(b, &len, sizeof(len));
	msgb_put(b, s, n);
}

void
msgb_data(struct msgb *b, const void *p, size_t n)
{
	uint32_t	 len;

	if (n > MSG_MAX_PAYLOAD)
		log_panic("msgb_data: data too long");
	len = n;
	msgb_tag(b, TAG_DATA);
	msgb_put(b, &len, sizeof(len));
	msgb_put(b, p, n);
}

void
msgb_fd(struct msgb *b, int fd)
{
	if (b->fd != -1)
		log_panic("msgb_fd: one descriptor per message");
	if (fd < 0)
		log_panic("msgb_fd: bad descriptor");
	b->fd = fd;
	b->hdr.flags |= MSG_F_FD;
}

void
msgb_free(struct msgb *b)
{
	if (b == NULL)
		return;
	if (b->fd != -1)
		close(b->fd);
	free(b->buf);
	free(b);
}

const uint8_t *
msgb_wire(struct msgb *b, size_t *len)
{
	b->hdr.len = b->len - sizeof(struct msg_hdr);
	memcpy(b->buf, &b->hdr, sizeof(b->hdr));
	*len = b->len;
	return b->buf;
}

/* --- reader ------------------------------------------------------------ */

/* Check the tag and that n bytes follow it; advance past the tag. */
static const uint8_t *
msg_field(struct msg *m, uint8_t tag, size_t n)
{
	const uint8_t	*p;

	if (m->err)
		return NULL;
	if (m->hdr.len - m->pos < 1 + n || m->data[m->pos] != tag) {
		m->err = 1;
		return NULL;
	}
	p = m->data + m->pos + 1;
	m->pos += 1 + n;
	return p;
}

uint32_t
msg_get_u32(struct msg *m)
{
	const uint8_t	*p;
	uint32_t	 v;

	if ((p = msg_field(m, TAG_U32, sizeof(v))) == NULL)
		return 0;
	memcpy(&v, p, sizeof(v));
	return v;
}

uint64_t
msg_get_u64(struct msg *m)
{
	const uint8_t	*p;
	uint64_t	 v;

	if ((p = msg_field(m, TAG_U64, sizeof(v))) == NULL)
		return 0;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* Read a length-prefixed field of the given tag; NULL on error. */
static const uint8_t *
msg_get_counted(struct msg *m, uint8_t tag, uint32_t *len)
{
	const uint8_t	*p;
	size_t		 save = m->pos;

	if ((p = msg_field(m, tag, sizeof(*len))) == NULL)
		return NULL;
	memcpy(len, p, sizeof(*len));
	if (m->hdr.len - m->pos < *len) {
		m->pos = save;
		m->err = 1;
		return NULL;
	}
	p = m->data + m->pos;
	m->pos += *len;
	return p;
}

const char *
msg_get_str(struct msg *m)
{
	const uint8_t	*p;
	uint32_t	 len;

	if ((p = msg_get_counted(m, TAG_STR, &len)) == NULL)
		return "";
	if (len == 0 || p[len - 1] != '\0' || memchr(p, '\0', len - 1)) {
		m->err = 1;
		return "";
	}
	return (const char *)p;
}

const void *
msg_get_data(struct msg *m, size_t *lenp)
{
	const uint8_t	*p;
	uint32_t	 len;

	if ((p = msg_get_counted(m, TAG_DATA, &len)) == NULL) {
		*lenp = 0;
		return NULL;
	}
	*lenp = len;
	return p;
}

int
msg_take_fd(struct msg *m)
{
	int	 fd = m->fd;

	if (fd == -1)
		m->err = 1;
	m->fd = -1;
	return fd;
}

int
msg_end(struct msg *m)
{
	if (m->err || m->pos != m->hdr.len)
		return -1;
	return 0;
}

/* Validate a header on its own; NULL if fine, else why not. */
static const char *
msg_hdr_check(const struct msg_hdr *h)
{
	if (h->type <= MSG_NONE || h->type >= MSG_TYPE_COUNT)
		return "unknown message type";
	if (h->len > MSG_MAX_PAYLOAD)
		return "payload too large";
	if (h->flags & ~MSG_F_FD)
		return "unknown flags";
	return NULL;
}

int
msg_parse(const uint8_t *buf, size_t len, struct msg *out, size_t *used)
{
	struct msg_hdr	 h;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, buf, sizeof(h));
	if (msg_hdr_check(&h) != NULL)
		return -1;
	if (len - sizeof(h) < h.len)
		return 0;
	memset(out, 0, sizeof(*out));
	out->hdr = h;
	out->data = buf + sizeof(h);
	out->fd = -1;
	*used = sizeof(h) + h.len;
	return 1;
}

void
msg_free(struct msg *m)
{
	struct msg_owned *o;

	if (m == NULL)
		return;
	if (m->fd != -1)
		close(m->fd);
	o = (struct msg_owned *)((char *)m - offsetof(struct msg_owned, m));
	free(o);
}

/* --- input ------------------------------------------------------------- */

/* Bad input: fatal from an internal peer, a closed channel otherwise. */
static int
chan_bad(struct chan *c, const char *why, int type)
{
	if (!(c->flags & CHAN_UNTRUSTED))
		fatalx("bad message %s from %s: %s", msg_name(type),
		    proc_name(c->peer), why);
	log_warnx("bad message from %s: %s", proc_name(c->peer), why);
	c->closed = 1;
	return -1;
}

/* recvmsg() once; 1 data read, 0 EOF, -1 error, -2 would block. */
static int
chan_recv(struct chan *c)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * CHAN_MAX_FDS)];
	} cmsgbuf;
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*cm;
	ssize_t		 n;
	size_t		 i, nfd;
	int		*fds;

	/* Dispatch only advances ioff: compact once, before reading. */
	if (c->ioff > 0) {
		memmove(c->ibuf, c->ibuf + c->ioff, c->ilen - c->ioff);
		c->ilen -= c->ioff;
		c->ioff = 0;
	}
	if (c->icap - c->ilen < CHAN_READ_CHUNK) {
		c->icap = c->ilen + CHAN_READ_CHUNK;
		c->ibuf = xreallocarray(c->ibuf, c->icap, 1);
	}
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = c->ibuf + c->ilen;
	iov.iov_len = c->icap - c->ilen;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cmsgbuf.buf;
	mh.msg_controllen = sizeof(cmsgbuf.buf);
	do {
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -2 : -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)CMSG_DATA(cm);
		for (i = 0; i < nfd; i++) {
			int	 fd;

			memcpy(&fd, &fds[i], sizeof(fd));
			if (c->flags & CHAN_UNTRUSTED) {
				/* mtactl never sends one: don't keep it */
				close(fd);
				chan_bad(c, "descriptor from a client", 0);
				continue;
			}
			if (c->nqfds >= CHAN_MAX_QFDS) {
				close(fd);
				chan_bad(c, "too many descriptors", 0);
				continue;
			}
			c->qfds = xreallocarray(c->qfds, c->nqfds + 1,
			    sizeof(int));
			c->qfds[c->nqfds++] = fd;
		}
	}
	if (mh.msg_flags & MSG_CTRUNC)
		chan_bad(c, "descriptors truncated", 0);
	if (n == 0)
		return 0;
	c->ilen += n;
	return 1;
}

/*
 * Cut the next complete message out of the input buffer into *m (payload
 * still in the buffer); 1 found, 0 need more, -1 bad input.
 */
static int
chan_next(struct chan *c, struct msg *m, size_t *used)
{
	struct msg_hdr	 h;
	const char	*why;
	int		 r;

	if (c->ilen - c->ioff < sizeof(h))
		return 0;
	memcpy(&h, c->ibuf + c->ioff, sizeof(h));
	if ((why = msg_hdr_check(&h)) != NULL)
		return chan_bad(c, why, h.type);
	if (!msg_allowed(h.type, c->peer, c->self))
		return chan_bad(c, "not allowed from this peer", h.type);
	if ((r = msg_parse(c->ibuf + c->ioff, c->ilen - c->ioff, m,
	    used)) != 1)
		return r;
	if (h.flags & MSG_F_FD) {
		if (c->nqfds == 0)
			return chan_bad(c, "descriptor missing", h.type);
		m->fd = c->qfds[0];
		memmove(c->qfds, c->qfds + 1, (c->nqfds - 1) * sizeof(int));
		c->nqfds--;
	}
	return 1;
}

static void
chan_consume(struct chan *c, size_t used)
{
	c->ioff += used;
	if (c->ioff == c->ilen)
		c->ioff = c->ilen = 0;
}

/* Hand every complete buffered message to the callback, then EOF if seen. */
static void
chan_dispatch(struct chan *c)
{
	struct msg	 m;
	size_t		 used;
	int		 r;

	c->in_dispatch = 1;
	while (!c->freed && !c->closed) {
		if ((r = chan_next(c, &m, &used)) != 1)
			break;
		c->cb(c, &m, c->arg);
		if (m.fd != -1)
			close(m.fd);
		chan_consume(c, used);
	}
	/* Messages read before the EOF were dispatched above. */
	if ((c->closed || c->eof) && !c->freed) {
		event_del(&c->rev);
		event_del(&c->wev);
		c->cb(c, NULL, c->arg);
	}
	c->in_dispatch = 0;
	if (c->freed) {
		c->freed = 0;
		chan_free(c);
	}
}

static void
chan_read_cb(int fd, short ev, void *arg)
{
	struct chan	*c = arg;
	int		 r;

	r = chan_recv(c);
	if (r == -2)
		return;
	if (r <= 0)
		c->eof = 1;
	chan_dispatch(c);
}

static void
chan_pending_cb(int fd, short ev, void *arg)
{
	chan_dispatch(arg);
}

int
chan_read_sync(struct chan *c, struct msg **out)
{
	struct msg_owned *o;
	struct msg	 m;
	struct pollfd	 pfd;
	size_t		 used;
	int		 r;

	for (;;) {
		if ((r = chan_next(c, &m, &used)) == -1 || c->closed)
			return -1;
		if (r == 1)
			break;
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, -1) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if ((r = chan_recv(c)) == 0) {
			c->eof = 1;
			return 0;
		}
		if (r == -1)
			return -1;
	}
	o = xmalloc(sizeof(*o) + m.hdr.len + 1);
	memcpy(o->payload, m.data, m.hdr.len);
	o->m = m;
	o->m.data = o->payload;
	chan_consume(c, used);
	/* Whatever else was read waits for the event loop. */
	if (c->ilen > c->ioff) {
		struct timeval	 tv = { 0, 0 };

		evtimer_add(&c->pending, &tv);
	}
	*out = &o->m;
	return 1;
}

/* --- output ------------------------------------------------------------ */

static void
chan_obuf_free(struct chan *c, struct obuf *ob)
{
	TAILQ_REMOVE(&c->outq, ob, entry);
	if (ob->fd != -1)
		close(ob->fd);
	free(ob->data);
	free(ob);
}

/* Account n written bytes against the queue head(s). */
static void
chan_advance(struct chan *c, size_t n)
{
	struct obuf	*ob;
	size_t		 k;

	c->queued -= n;
	while (n > 0 && (ob = TAILQ_FIRST(&c->outq)) != NULL) {
		k = ob->len - ob->off;
		if (k > n)
			k = n;
		ob->off += k;
		n -= k;
		if (ob->off > 0 && ob->fd != -1) {
			close(ob->fd);	/* the peer has its own copy now */
			ob->fd = -1;
		}
		if (ob->off == ob->len)
			chan_obuf_free(c, ob);
	}
}

/* Send what can be sent now; 0 fine (maybe more left), -1 error. */
static int
chan_write_some(struct chan *c)
{
	struct iovec	 iov[CHAN_IOV_MAX];
	struct obuf	*ob;
	struct msghdr	 mh;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct cmsghdr	*cm;
	ssize_t		 n;
	int		 niov;

	while ((ob = TAILQ_FIRST(&c->outq)) != NULL) {
		memset(&mh, 0, sizeof(mh));
		niov = 0;
		if (ob->fd != -1 && ob->off == 0) {
			iov[0].iov_base = ob->data;
			iov[0].iov_len = ob->len;
			niov = 1;
			mh.msg_control = cmsgbuf.buf;
			mh.msg_controllen = sizeof(cmsgbuf.buf);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			memcpy(CMSG_DATA(cm), &ob->fd, sizeof(int));
		} else {
			for (; ob != NULL && niov < CHAN_IOV_MAX;
			    ob = TAILQ_NEXT(ob, entry)) {
				if (ob->fd != -1 && ob->off == 0)
					break;
				iov[niov].iov_base = ob->data + ob->off;
				iov[niov].iov_len = ob->len - ob->off;
				niov++;
			}
		}
		mh.msg_iov = iov;
		mh.msg_iovlen = niov;
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		chan_advance(c, n);
	}
	return 0;
}

/* Arm EV_WRITE only while something is queued. */
static void
chan_update_write(struct chan *c)
{
	int	 want = !TAILQ_EMPTY(&c->outq) && !c->closed && !c->eof;

	if (want && !c->wev_on)
		event_add(&c->wev, NULL);
	else if (!want && c->wev_on)
		event_del(&c->wev);
	c->wev_on = want;
}

/* Writing failed: drop the output; the read side reports the close. */
static void
chan_write_failed(struct chan *c)
{
	struct obuf	*ob;

	while ((ob = TAILQ_FIRST(&c->outq)) != NULL)
		chan_obuf_free(c, ob);
	c->queued = 0;
	chan_update_write(c);
}

static void
chan_write_cb(int fd, short ev, void *arg)
{
	struct chan	*c = arg;

	if (chan_write_some(c) == -1)
		chan_write_failed(c);
	chan_update_write(c);
}

void
chan_send(struct chan *c, struct msgb *b)
{
	struct obuf	*ob;
	const uint8_t	*wire;
	size_t		 len;

	if (c->closed) {
		msgb_free(b);
		return;
	}
	wire = msgb_wire(b, &len);
	(void)wire;
	ob = xcalloc(1, sizeof(*ob));
	ob->data = b->buf;		/* take the buffer over */
	ob->len = len;
	ob->fd = b->fd;
	b->buf = NULL;
	b->fd = -1;
	free(b);
	TAILQ_INSERT_TAIL(&c->outq, ob, entry);
	c->queued += len;
	if (chan_write_some(c) == -1)
		chan_write_failed(c);
	chan_update_write(c);
}

int
chan_flush_sync(struct chan *c)
{
	struct pollfd	 pfd;
	int		 r;

	while (!TAILQ_EMPTY(&c->outq)) {
		if (chan_write_some(c) == -1)
			return -1;
		if (TAILQ_EMPTY(&c->outq))
			break;
		pfd.fd = c->fd;
		pfd.events = POLLOUT;
		/* A peer that reads nothing for 5 s: give up (errno is stale). */
		if ((r = poll(&pfd, 1, 5000)) == 0 ||
		    (r == -1 && errno != EINTR))
			return -1;
	}
	chan_update_write(c);
	return 0;
}
