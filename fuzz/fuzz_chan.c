/*
 * Fuzz target: the channel's input side (common/chan.h) as a peer's byte
 * stream drives it, through the real path: a socketpair, recvmsg() into
 * the growing buffer, the header and sender checks, the descriptor queue,
 * dispatch to the callback, and the typed payload reader (msg_get_*,
 * msg_end) in a sequence the input chooses.
 *
 * Input: byte 0 picks the two ends (and whether a descriptor rides along
 * with the stream), bytes 1..8 are the reader's program (two bits per
 * step: u32, u64, str, data), the rest is what the peer wrote.
 *
 * The channel is untrusted here (CHAN_UNTRUSTED): bad input must close it
 * (callback with NULL), never crash.  Properties: a message that reads to
 * a clean msg_end() is rebuilt with the builder into exactly the same
 * payload (reader and builder agree); a string read is NUL-terminated and
 * NUL-free inside the payload; reads never leave the payload.
 */
#include <sys/socket.h>

#include <event.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "fuzz.h"
#include "proto.h"

#define PROG_STEPS	32

struct run {
	const uint8_t	*prog;
	int		 closed;
	int		 nmsg;
};

/* Read one message with the program; rebuild it when it read cleanly. */
static void
run_program(struct msg *m, const uint8_t *prog)
{
	struct msgb	*b;
	const uint8_t	*wire, *base = m->data;
	const char	*s;
	const void	*d;
	size_t		 len, wlen;
	int		 i, n, ops[PROG_STEPS];
	uint64_t	 vals[PROG_STEPS];
	const void	*ptrs[PROG_STEPS];
	size_t		 lens[PROG_STEPS];

	for (n = 0; n < PROG_STEPS && m->pos < m->hdr.len && !m->err; n++) {
		ops[n] = (prog[n / 4] >> ((n % 4) * 2)) & 3;
		switch (ops[n]) {
		case 0:
			vals[n] = msg_get_u32(m);
			break;
		case 1:
			vals[n] = msg_get_u64(m);
			break;
		case 2:
			s = msg_get_str(m);
			if (!m->err)
				FUZZ_CHECK((const uint8_t *)s >= base &&
				    (const uint8_t *)s + strlen(s) <
				    base + m->hdr.len);
			ptrs[n] = s;
			break;
		case 3:
			d = msg_get_data(m, &len);
			if (!m->err)
				FUZZ_CHECK(len <= m->hdr.len &&
				    (len == 0 || ((const uint8_t *)d >= base &&
				    (const uint8_t *)d + len <=
				    base + m->hdr.len)));
			ptrs[n] = d;
			lens[n] = len;
			break;
		}
		FUZZ_CHECK(m->pos <= m->hdr.len);
	}
	if (msg_end(m) != 0)
		return;
	/* Clean read: the builder must produce the same payload. */
	b = msgb_new(m->hdr.type, m->hdr.peerid);
	for (i = 0; i < n; i++) {
		switch (ops[i]) {
		case 0:
			msgb_u32(b, (uint32_t)vals[i]);
			break;
		case 1:
			msgb_u64(b, vals[i]);
			break;
		case 2:
			msgb_str(b, ptrs[i]);
			break;
		case 3:
			msgb_data(b, ptrs[i], lens[i]);
			break;
		}
	}
	wire = msgb_wire(b, &wlen);
	FUZZ_CHECK(wlen == sizeof(struct msg_hdr) + m->hdr.len);
	FUZZ_CHECK(memcmp(wire + sizeof(struct msg_hdr), base,
	    m->hdr.len) == 0);
	msgb_free(b);
}

static void
fuzz_cb(struct chan *c, struct msg *m, void *arg)
{
	struct run	*r = arg;
	int		 fd;

	if (m == NULL) {
		r->closed = 1;
		chan_free(c);
		return;
	}
	FUZZ_CHECK(m->hdr.len <= MSG_MAX_PAYLOAD);
	r->nmsg++;
	run_program(m, r->prog);
	if (m->hdr.flags & MSG_F_FD) {
		fd = msg_take_fd(m);
		FUZZ_CHECK(fd >= 0);
		close(fd);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 inited;
	struct msghdr	 mh;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr	*c;
	struct run	 r;
	int		 sv[2], fd = -1, self, peer, i;

	if (size < 9 || size > 65536)
		return 0;
	if (!inited) {
		event_init();
		inited = 1;
	}
	self = data[0] % PROC_COUNT;
	peer = (data[0] >> 3) % PROC_COUNT;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		abort();
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = (void *)(data + 9);
	iov.iov_len = size - 9;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if ((data[0] & 0x80) && (fd = open("/dev/null", O_RDONLY)) != -1) {
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (iov.iov_len > 0)
		(void)sendmsg(sv[1], &mh, 0);
	if (fd != -1)
		close(fd);
	close(sv[1]);

	memset(&r, 0, sizeof(r));
	r.prog = data + 1;
	/* The callback frees the channel at its end. */
	(void)chan_new(sv[0], self, peer, CHAN_UNTRUSTED, fuzz_cb, &r);
	for (i = 0; i < 64 && !r.closed; i++)
		event_loop(EVLOOP_ONCE | EVLOOP_NONBLOCK);
	FUZZ_CHECK(r.closed);	/* EOF must reach the callback */
	return 0;
}
