/*
 * Unit tests of the channel: framing, typed payloads, length checks, fd
 * passing, trust rules (fatal for internal peers, close for clients).
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <event.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chan.h"
#include "log.h"
#include "proto.h"

struct pair {
	struct chan	*a;	/* plays qmgr */
	struct chan	*b;	/* plays smtpd */
};

static int
setup(void **state)
{
	static int	 inited;
	struct pair	*p;
	int		 sv[2];

	if (!inited) {
		log_init(1, LOG_LEVEL_ERR);
		event_init();
		inited = 1;
	}
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	p = calloc(1, sizeof(*p));
	p->a = chan_new(sv[0], PROC_QMGR, PROC_SMTPD, 0, NULL, NULL);
	p->b = chan_new(sv[1], PROC_SMTPD, PROC_QMGR, 0, NULL, NULL);
	*state = p;
	return 0;
}

static int
teardown(void **state)
{
	struct pair	*p = *state;

	chan_free(p->a);
	chan_free(p->b);
	free(p);
	return 0;
}

/* Every field type survives the trip, in order. */
static void
test_roundtrip(void **state)
{
	struct pair	*p = *state;
	struct msgb	*b;
	struct msg	*m;
	const void	*d;
	size_t		 len;

	b = msgb_new(MSG_QMGR_CREATE, 42);
	msgb_u32(b, 7);
	msgb_u64(b, 1ULL << 40);
	msgb_str(b, "hello");
	msgb_str(b, "");
	msgb_data(b, "\0\1\2", 3);
	chan_send(p->b, b);
	assert_int_equal(chan_read_sync(p->a, &m), 1);
	assert_int_equal(m->hdr.type, MSG_QMGR_CREATE);
	assert_int_equal(m->hdr.peerid, 42);
	assert_int_equal(m->hdr.pid, getpid());
	assert_int_equal(msg_get_u32(m), 7);
	assert_true(msg_get_u64(m) == 1ULL << 40);
	assert_string_equal(msg_get_str(m), "hello");
	assert_string_equal(msg_get_str(m), "");
	d = msg_get_data(m, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(d, "\0\1\2", 3);
	assert_int_equal(msg_end(m), 0);
	msg_free(m);
}

/* Build a message and parse it back from its wire form. */
static struct msg *
wire_msg(struct msgb *b, uint8_t **keep)
{
	static struct msg m;
	const uint8_t	*w;
	size_t		 len, used;

	w = msgb_wire(b, &len);
	*keep = malloc(len);
	memcpy(*keep, w, len);
	msgb_free(b);
	assert_int_equal(msg_parse(*keep, len, &m, &used), 1);
	assert_int_equal(used, len);
	return &m;
}

static void
test_wrong_tag(void **state)
{
	struct msgb	*b = msgb_new(MSG_QMGR_CREATE, 0);
	struct msg	*m;
	uint8_t		*buf;

	msgb_u32(b, 1);
	m = wire_msg(b, &buf);
	assert_string_equal(msg_get_str(m), "");
	assert_int_equal(msg_end(m), -1);
	free(buf);
}

static void
test_short_payload(void **state)
{
	struct msgb	*b = msgb_new(MSG_QMGR_CREATE, 0);
	struct msg	*m;
	uint8_t		*buf;

	msgb_u32(b, 1);
	m = wire_msg(b, &buf);
	assert_int_equal(msg_get_u32(m), 1);
	assert_int_equal(msg_get_u32(m), 0);	/* nothing left */
	assert_int_equal(msg_end(m), -1);
	free(buf);
}

static void
test_trailing_data(void **state)
{
	struct msgb	*b = msgb_new(MSG_QMGR_CREATE, 0);
	struct msg	*m;
	uint8_t		*buf;

	msgb_u32(b, 1);
	msgb_u32(b, 2);
	m = wire_msg(b, &buf);
	assert_int_equal(msg_get_u32(m), 1);
	assert_int_equal(msg_end(m), -1);
	free(buf);
}

/* A string whose length claims more than the payload holds. */
static void
test_overlong_string(void **state)
{
	struct msgb	*b = msgb_new(MSG_QMGR_CREATE, 0);
	struct msg	*m;
	uint8_t		*buf;
	uint32_t	 big = 1000;

	msgb_str(b, "abc");
	m = wire_msg(b, &buf);
	/* the length field follows the header and the 1-byte tag */
	memcpy(buf + sizeof(struct msg_hdr) + 1, &big, sizeof(big));
	assert_string_equal(msg_get_str(m), "");
	assert_int_equal(msg_end(m), -1);
	free(buf);
}

/* A string with a NUL inside, or without its final NUL, is refused. */
static void
test_bad_string_nul(void **state)
{
	struct msgb	*b = msgb_new(MSG_QMGR_CREATE, 0);
	struct msg	*m;
	uint8_t		*buf;
	size_t		 off = sizeof(struct msg_hdr) + 1 + 4;

	msgb_str(b, "abc");
	m = wire_msg(b, &buf);
	buf[off + 1] = '\0';		/* "a\0c\0" */
	assert_string_equal(msg_get_str(m), "");
	assert_int_equal(msg_end(m), -1);
	m->err = 0;
	m->pos = 0;
	buf[off + 1] = 'b';
	buf[off + 3] = 'd';		/* "abcd": no terminator */
	assert_string_equal(msg_get_str(m), "");
	assert_int_equal(msg_end(m), -1);
	free(buf);
}

static void
test_bad_headers(void **state)
{
	struct msg_hdr	 h;
	struct msg	 m;
	size_t		 used;

	memset(&h, 0, sizeof(h));
	h.type = MSG_QMGR_CREATE;
	h.len = MSG_MAX_PAYLOAD + 1;
	assert_int_equal(msg_parse((uint8_t *)&h, sizeof(h), &m, &used), -1);
	h.len = 0;
	h.type = MSG_TYPE_COUNT;
	assert_int_equal(msg_parse((uint8_t *)&h, sizeof(h), &m, &used), -1);
	h.type = MSG_NONE;
	assert_int_equal(msg_parse((uint8_t *)&h, sizeof(h), &m, &used), -1);
	h.type = MSG_QMGR_CREATE;
	h.flags = 0x80;
	assert_int_equal(msg_parse((uint8_t *)&h, sizeof(h), &m, &used), -1);
	h.flags = 0;
	h.len = 10;			/* incomplete: wait for more */
	assert_int_equal(msg_parse((uint8_t *)&h, sizeof(h), &m, &used), 0);
	assert_int_equal(msg_parse((uint8_t *)&h, 3, &m, &used), 0);
}

/* Descriptors arrive with their own messages, in order. */
static void
test_fd_passing(void **state)
{
	struct pair	*p = *state;
	struct msgb	*b;
	struct msg	*m;
	int		 pipes[3][2], i, fd;
	char		 c;

	for (i = 0; i < 3; i++) {
		assert_int_equal(pipe(pipes[i]), 0);
		b = msgb_new(MSG_QMGR_CREATE_OK, i);
		msgb_str(b, "ID");
		msgb_fd(b, pipes[i][1]);
		chan_send(p->a, b);
		/* a message without a descriptor in between */
		b = msgb_new(MSG_QMGR_COMMIT_OK, 100 + i);
		msgb_str(b, "x");
		chan_send(p->a, b);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(chan_read_sync(p->b, &m), 1);
		assert_int_equal(m->hdr.peerid, i);
		assert_string_equal(msg_get_str(m), "ID");
		fd = msg_take_fd(m);
		assert_true(fd >= 0);
		assert_int_equal(msg_end(m), 0);
		c = '0' + i;
		assert_int_equal(write(fd, &c, 1), 1);
		close(fd);
		c = 0;
		assert_int_equal(read(pipes[i][0], &c, 1), 1);
		assert_int_equal(c, '0' + i);
		close(pipes[i][0]);
		msg_free(m);
		assert_int_equal(chan_read_sync(p->b, &m), 1);
		assert_int_equal(m->hdr.peerid, 100 + i);
		assert_int_equal(m->fd, -1);
		assert_int_equal(msg_take_fd(m), -1);	/* none: an error */
		msg_free(m);
	}
}

static int	 got_msgs;
static int	 got_close;
static size_t	 got_bytes;

static void
count_cb(struct chan *c, struct msg *m, void *arg)
{
	size_t	 len;

	if (m == NULL) {
		got_close++;
		return;
	}
	got_msgs++;
	(void)msg_get_data(m, &len);
	got_bytes += len;
}

/* A large message through the event loop: queued, written in parts. */
static void
test_large_async(void **state)
{
	struct chan	*a, *b;
	struct msgb	*mb;
	char		*big;
	int		 sv[2], i;
	size_t		 n = 1024 * 1024;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	a = chan_new(sv[0], PROC_QMGR, PROC_SMTP, 0, NULL, NULL);
	b = chan_new(sv[1], PROC_SMTP, PROC_QMGR, 0, count_cb, NULL);
	big = calloc(1, n);
	got_msgs = 0;
	got_bytes = 0;
	for (i = 0; i < 3; i++) {
		mb = msgb_new(MSG_SMTP_DELIVER, i);
		msgb_data(mb, big, n);
		chan_send(a, mb);
	}
	assert_true(chan_queued(a) > 0);
	for (i = 0; i < 1000 && got_msgs < 3; i++)
		event_loop(EVLOOP_ONCE);
	assert_int_equal(got_msgs, 3);
	assert_int_equal(got_bytes, 3 * n);
	assert_int_equal(chan_queued(a), 0);
	free(big);
	chan_free(a);
	chan_free(b);
}

/* An untrusted client sending a type it may not send is just closed. */
static void
test_untrusted_closed(void **state)
{
	struct chan	*srv, *cli;
	struct msgb	*mb;
	int		 sv[2], i;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	srv = chan_new(sv[0], PROC_MASTER, PROC_CONTROL, CHAN_UNTRUSTED,
	    count_cb, NULL);
	cli = chan_new(sv[1], PROC_SMTPD, PROC_MASTER, 0, NULL, NULL);
	got_msgs = 0;
	got_close = 0;
	mb = msgb_new(MSG_SETUP_DONE, 0);	/* master -> child only */
	chan_send(cli, mb);
	for (i = 0; i < 100 && got_close == 0; i++)
		event_loop(EVLOOP_ONCE);
	assert_int_equal(got_msgs, 0);
	assert_int_equal(got_close, 1);
	chan_free(srv);
	chan_free(cli);
}

/* A client may not send descriptors: the channel is closed, none kept. */
static void
test_untrusted_fd_refused(void **state)
{
	struct chan	*srv, *cli;
	struct msgb	*mb;
	int		 sv[2], p[2], i;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	assert_int_equal(pipe(p), 0);
	srv = chan_new(sv[0], PROC_MASTER, PROC_CONTROL, CHAN_UNTRUSTED,
	    count_cb, NULL);
	cli = chan_new(sv[1], PROC_CONTROL, PROC_MASTER, 0, NULL, NULL);
	got_msgs = 0;
	got_close = 0;
	mb = msgb_new(MSG_CTL_REQUEST, 0);
	msgb_str(mb, "status");
	msgb_u32(mb, 0);
	msgb_str(mb, "");
	msgb_fd(mb, p[1]);
	chan_send(cli, mb);
	for (i = 0; i < 100 && got_close == 0; i++)
		event_loop(EVLOOP_ONCE);
	assert_int_equal(got_msgs, 0);
	assert_int_equal(got_close, 1);
	chan_free(srv);
	chan_free(cli);
	/* every copy of the write end is closed: the read end sees EOF */
	{
		char	 ch;

		assert_int_equal(read(p[0], &ch, 1), 0);
	}
	close(p[0]);
}

/* The same from an internal peer is fatal: the receiver exits 1. */
static void
test_trusted_fatal(void **state)
{
	struct chan	*cli;
	struct msgb	*mb;
	pid_t		 pid;
	int		 sv[2], status;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	if ((pid = fork()) == 0) {
		struct chan	*srv;
		struct msg	*m;

		close(sv[1]);
		srv = chan_new(sv[0], PROC_QMGR, PROC_SMTPD, 0, NULL, NULL);
		(void)chan_read_sync(srv, &m);
		_exit(0);		/* not reached: fatalx exits 1 */
	}
	close(sv[0]);
	cli = chan_new(sv[1], PROC_SMTPD, PROC_QMGR, 0, NULL, NULL);
	mb = msgb_new(MSG_SMTP_RESULT, 0);	/* smtp -> qmgr only */
	chan_send(cli, mb);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	chan_free(cli);
}

/* EOF after a final message: the message is delivered, then the close. */
static void
test_message_then_eof(void **state)
{
	struct chan	*a, *b;
	int		 sv[2], i;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	a = chan_new(sv[0], PROC_QMGR, PROC_SMTP, 0, NULL, NULL);
	b = chan_new(sv[1], PROC_SMTP, PROC_QMGR, 0, count_cb, NULL);
	got_msgs = 0;
	got_close = 0;
	chan_send(a, msgb_new(MSG_SMTP_DELIVER, 1));
	chan_free(a);
	for (i = 0; i < 100 && got_close == 0; i++)
		event_loop(EVLOOP_ONCE);
	assert_int_equal(got_msgs, 1);
	assert_int_equal(got_close, 1);
	chan_free(b);
}

static void
test_matrix(void **state)
{
	assert_true(msg_allowed(MSG_QMGR_CREATE, PROC_SMTPD, PROC_QMGR));
	assert_false(msg_allowed(MSG_QMGR_CREATE, PROC_QMGR, PROC_SMTPD));
	assert_true(msg_allowed(MSG_RES_QUERY, PROC_QMGR, PROC_RESOLVER));
	assert_true(msg_allowed(MSG_RES_QUERY, PROC_SMTP, PROC_RESOLVER));
	assert_false(msg_allowed(MSG_RES_QUERY, PROC_SMTPD, PROC_RESOLVER));
	assert_false(msg_allowed(MSG_CTL_REQUEST, PROC_SMTPD, PROC_MASTER));
	assert_false(msg_allowed(MSG_TYPE_COUNT, PROC_SMTPD, PROC_QMGR));
	assert_string_equal(msg_name(MSG_SMTP_RESULT), "MSG_SMTP_RESULT");
	assert_string_equal(proc_name(PROC_RESOLVER), "resolver");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup,
		    teardown),
		cmocka_unit_test(test_wrong_tag),
		cmocka_unit_test(test_short_payload),
		cmocka_unit_test(test_trailing_data),
		cmocka_unit_test(test_overlong_string),
		cmocka_unit_test(test_bad_string_nul),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test_setup_teardown(test_fd_passing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_large_async, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_closed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_fd_refused, setup,
		    teardown),
		cmocka_unit_test(test_trusted_fatal),
		cmocka_unit_test_setup_teardown(test_message_then_eof, setup,
		    teardown),
		cmocka_unit_test(test_matrix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
