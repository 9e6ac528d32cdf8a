/*
 * session: one SMTP client connection.
 *
 * Input is read into a fixed buffer and processed in order, a command or
 * a chunk of DATA at a time; replies are appended to a fixed output buffer
 * and written when processing stops (the input is drained, qmgr must
 * answer, or the output buffer is nearly full).  That is RFC 2920
 * pipelining: a client's whole command group is answered in one write.
 *
 * Every event (readable, writable, timeout, an answer from qmgr) ends in
 * session_process(), which may free the session: callers return at once.
 *
 * Reads and writes go through TLS once it is on (tls.c).  A TLS read may
 * need the socket writable and a TLS write readable, so both events share
 * one callback, and session_update() waits for whatever each side needs.
 * OpenSSL may hold decrypted input the socket will not signal again: the
 * read event is then made active by hand.
 *
 * A client in smtp-proxy starts in S_PROXY (proxy.c) and is greeted, or
 * refused, by session_start() once its PROXY header gave its address.
 *
 * The idle timer runs while the session waits for its client (S_COMMAND,
 * S_DATA) and stops while it waits for qmgr: that wait is ours, not the
 * client's.  EOF from the client is remembered and acted upon only once
 * the buffered input has been processed, so "...QUIT" followed by a
 * half-close gets every reply.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "smtpd.h"

static TAILQ_HEAD(, session)	sessions = TAILQ_HEAD_INITIALIZER(sessions);

_Static_assert(offsetof(struct session, outbuf) ==
    offsetof(struct session, inbuf) + SMTPD_INBUF &&
    sizeof(struct session) - offsetof(struct session, outbuf) -
    SMTPD_OUTBUF < sizeof(void *), "the I/O buffers must come last");

static void	session_io_cb(int, short, void *);
static void	session_update(struct session *);
static void	session_timer_cb(int, short, void *);
static void	session_process(struct session *);
static void	session_greet(struct session *);

/* Refuse a connection before it becomes a session: one reply, close. */
static void
session_refuse(int fd, const char *ip, const char *reply)
{
	char	line[256];
	int	n;

	log_info("NOQUEUE: reject: CONNECT from unknown[%s]: %s", ip, reply);
	n = snprintf(line, sizeof(line), "%s\r\n", reply);
	/* A fresh socket's send buffer is empty: this does not block. */
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) == -1)
		log_debug("reject to %s: %s", ip, strerror(errno));
	close(fd);
}

/*
 * May this client talk to us?  Inside smtp-range; or, with smtp-username,
 * anyone who can AUTH (over TLS, or from loopback).
 */
static int
session_client_ok(const struct netaddr *peer)
{
	if (netaddr_range_match(&smtpd_env.range, peer))
		return 1;
	return smtpd_env.auth &&
	    (smtpd_env.tls != NULL || auth_is_loopback(peer));
}

/* A new connection from a listener: check the client, then greet it. */
void
session_accept(int fd, const struct sockaddr *sa, unsigned slen, int tls)
{
	struct session		*s;
	struct netaddr		 peer, local;
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 ip[NETADDR_STRLEN];
	int			 proxied;

	if (netaddr_from_sockaddr(&peer, sa) == -1) {
		log_warnx("connection from a non-IP address, closed");
		close(fd);
		return;
	}
	netaddr_ntop(&peer, ip, sizeof(ip));
	proxied = netaddr_range_match(&smtpd_env.proxy, &peer);
	/* Refused before any allocation, unless TLS or PROXY come first. */
	if (!proxied && !tls && !session_client_ok(&peer)) {
		session_refuse(fd, ip, "554 5.7.1 Access denied");
		return;
	}
	if (smtpd_env.max_connections > 0 &&
	    smtpd_env.nsessions >= (unsigned)smtpd_env.max_connections) {
		session_refuse(fd, ip,
		    "421 4.7.0 Too many connections, try again later");
		return;
	}

	/*
	 * The buffers are written before they are read: leaving them out of
	 * the zeroing keeps an idle session to the pages it really uses.
	 */
	s = xmalloc(sizeof(*s));
	memset(s, 0, offsetof(struct session, inbuf));
	s->fd = fd;
	s->spoolfd = -1;
	s->peer = peer;
	memcpy(s->peer_ip, ip, sizeof(ip));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    netaddr_from_sockaddr(&local, (struct sockaddr *)&ss) == 0)
		netaddr_ntop(&local, s->local_ip, sizeof(s->local_ip));
	else
		snprintf(s->local_ip, sizeof(s->local_ip), "0.0.0.0");
	/* A PROXY header may replace local_ip; this stays ours to bind. */
	memcpy(s->bind_ip, s->local_ip, sizeof(s->bind_ip));
	s->last_verb = "CONNECT";
	event_set(&s->ev_read, fd, EV_READ | EV_PERSIST, session_io_cb, s);
	event_set(&s->ev_write, fd, EV_WRITE | EV_PERSIST, session_io_cb, s);
	evtimer_set(&s->ev_timer, session_timer_cb, s);
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	smtpd_env.nsessions++;
	limits_life_start(s);

	if (tls)
		s->flags |= SF_TLS_IMPLICIT;
	if (proxied) {
		log_debug("connection from proxy [%s], waiting for its PROXY "
		    "header", s->peer_ip);
		session_enter(s, S_PROXY);
		session_update(s);
		return;
	}
	session_start(s);
}

/* The client's address is known for good: check it, then greet it. */
void
session_start(struct session *s)
{
	if (netaddr_range_match(&smtpd_env.range, &s->peer))
		s->flags |= SF_RANGE;
	log_info("connect from unknown[%s]", s->peer_ip);
	if ((s->flags & SF_TLS_IMPLICIT) && tls_start(s) == -1) {
		s->flags |= SF_ENDED;
		session_free(s);
		return;
	}
	if (!session_client_ok(&s->peer)) {
		log_info("NOQUEUE: reject: CONNECT from unknown[%s]: 554 5.7.1 "
		    "Access denied", s->peer_ip);
		session_reply(s, "554 5.7.1 Access denied");
		s->flags |= SF_ENDED;
		session_resume(s, S_CLOSING);
		return;
	}
	/* The client address is final here (after PROXY): count it. */
	if (limits_ip_take(s) == -1) {
		log_info("NOQUEUE: reject: CONNECT from unknown[%s]: 421 4.7.0 "
		    "Too many connections from this address", s->peer_ip);
		session_reply(s, "421 4.7.0 %s Error: too many connections "
		    "from %s", smtpd_env.hostname, s->peer_ip);
		s->flags |= SF_ENDED;
		session_resume(s, S_CLOSING);
		return;
	}
	/* TLS clients speak first (their hello): no pre-greet rule then. */
	if (smtpd_env.greet_delay > 0 && !(s->flags & SF_TLS_IMPLICIT)) {
		session_enter(s, S_GREET);
		session_update(s);
		return;
	}
	session_greet(s);
}

/*
 * The client talked before the greeting: it does not wait for replies,
 * so it is no SMTP client (a spam engine, a misdirected protocol).  Its
 * input is never read as commands: drop it, reply, disconnect, as
 * Postfix's postscreen and smtpd_forbid_unauth_pipelining do.
 */
static void
session_pregreet(struct session *s)
{
	char	buf[4096];

	log_info("NOQUEUE: reject: CONNECT from unknown[%s]: 554 5.5.0 Error: "
	    "SMTP protocol synchronization; pre-greet data", s->peer_ip);
	/* Discard what is there, so that close() does not reset the 554. */
	(void)recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
	session_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
	s->flags |= SF_ENDED;
	session_resume(s, S_CLOSING);
}

/* Send the 220, unless the client already talked. */
static void
session_greet(struct session *s)
{
	char	c;

	if (!(s->flags & SF_TLS_IMPLICIT) &&
	    recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
		session_pregreet(s);
		return;
	}
	session_reply(s, "220 %s ESMTP mtad", smtpd_env.hostname);
	session_resume(s, S_COMMAND);
}

void
session_free(struct session *s)
{
	char	stats[512];

	/* An answer from qmgr for this session is now dropped. */
	spool_detach(s);
	session_txn_reset(s);
	command_stats(s, stats, sizeof(stats));
	log_info("disconnect from unknown[%s]%s", s->peer_ip, stats);

	event_del(&s->ev_read);
	event_del(&s->ev_write);
	evtimer_del(&s->ev_timer);
	limits_life_stop(s);
	limits_ip_release(s);
	tls_free(s);
	auth_reset(s);
	close(s->fd);
	free(s->helo);
	TAILQ_REMOVE(&sessions, s, entry);
	free(s);
	smtpd_env.nsessions--;
	if (smtpd_env.shutting_down && smtpd_env.nsessions == 0)
		smtpd_exit_soon();
}

/* The socket failed (reset, broken pipe): log it and free. */
static void
session_lost(struct session *s, const char *why)
{
	if (s->flags & SF_ENDED)
		;	/* QUIT, EOF or a timeout was logged already */
	else if (s->state == S_DATA)
		log_info("lost connection after DATA (%llu bytes) from "
		    "unknown[%s]: %s", (unsigned long long)s->msgsize,
		    s->peer_ip, why);
	else
		log_info("lost connection after %s from unknown[%s]: %s",
		    s->last_verb, s->peer_ip, why);
	session_free(s);
}

/* Queue one reply line (CRLF added); the last one is kept for logs. */
void
session_reply(struct session *s, const char *fmt, ...)
{
	char	line[SMTPD_REPLY_MAX];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		log_panic("session_reply: vsnprintf");
	if ((size_t)n >= sizeof(line) - 2)
		n = sizeof(line) - 3;
	s->last_code = atoi(line);
	/* A prefix is enough for the reject log line. */
	memcpy(s->last_reply, line, (size_t)n < sizeof(s->last_reply) ?
	    (size_t)n + 1 : sizeof(s->last_reply));
	s->last_reply[sizeof(s->last_reply) - 1] = '\0';
	log_debug("> %s: %s", s->peer_ip, line);

	if (s->outoff > 0 && s->outlen + (size_t)n + 2 > SMTPD_OUTBUF) {
		memmove(s->outbuf, s->outbuf + s->outoff, s->outlen - s->outoff);
		s->outlen -= s->outoff;
		s->outoff = 0;
	}
	if (s->outlen + (size_t)n + 2 > SMTPD_OUTBUF) {
		/* Only a client that never reads gets here: drop it. */
		log_info("output overflow, closing unknown[%s]", s->peer_ip);
		session_enter(s, S_CLOSING);
		return;
	}
	memcpy(s->outbuf + s->outlen, line, (size_t)n);
	memcpy(s->outbuf + s->outlen + n, "\r\n", 2);
	s->outlen += (size_t)n + 2;
}

/* Log a refused MAIL/RCPT/DATA the way Postfix does. */
void
session_log_reject(struct session *s, const char *stage, const char *rcpt)
{
	char	from[1024], to[1024], helo[1024];

	from[0] = to[0] = helo[0] = '\0';
	if (s->sender != NULL)
		log_escape(from, sizeof(from), s->sender, strlen(s->sender));
	if (rcpt != NULL)
		log_escape(to, sizeof(to), rcpt, strlen(rcpt));
	if (s->helo != NULL)
		log_escape(helo, sizeof(helo), s->helo, strlen(s->helo));
	log_info("%s: reject: %s from unknown[%s]: %s;%s%s%s%s%s%s proto=%s "
	    "helo=<%s>", s->msgid[0] != '\0' ? s->msgid : "NOQUEUE", stage,
	    s->peer_ip, s->last_reply,
	    s->sender != NULL ? " from=<" : "", from,
	    s->sender != NULL ? ">" : "",
	    rcpt != NULL ? " to=<" : "", to, rcpt != NULL ? ">" : "",
	    (s->flags & SF_EHLO) ? "ESMTP" : "SMTP", helo);
}

/* Forget the mail transaction (RSET, HELO, end of DATA, free). */
void
session_txn_reset(struct session *s)
{
	data_abort(s);
	txn_clear(s);
	s->msgid[0] = '\0';
	s->data_err = DATA_E_NONE;
	s->msgsize = s->written = 0;
}

/* Arm the timer the new state needs. */
void
session_enter(struct session *s, enum session_state state)
{
	struct timeval	tv = { smtpd_env.timeout, 0 };

	if (s->state == S_CLOSING)
		return;		/* no way back */
	s->state = state;
	switch (state) {
	case S_PROXY:
		/* The header comes at once, or not at all. */
		if (tv.tv_sec > SMTPD_PROXY_TIMEOUT)
			tv.tv_sec = SMTPD_PROXY_TIMEOUT;
		evtimer_add(&s->ev_timer, &tv);
		break;
	case S_AUTH_FAIL:
		tv.tv_sec = SMTPD_AUTH_DELAY;
		evtimer_add(&s->ev_timer, &tv);
		break;
	case S_GREET:
		tv.tv_sec = smtpd_env.greet_delay;
		evtimer_add(&s->ev_timer, &tv);
		break;
	case S_COMMAND:
	case S_DATA:
	case S_STARTTLS:
	case S_AUTH:
		evtimer_add(&s->ev_timer, &tv);
		break;
	case S_WAIT_CREATE:
	case S_WAIT_COMMIT:
		evtimer_del(&s->ev_timer);
		break;
	case S_CLOSING:
		/* A client that does not read keeps its slot no longer. */
		if (tv.tv_sec > SMTPD_CLOSE_LINGER)
			tv.tv_sec = SMTPD_CLOSE_LINGER;
		evtimer_add(&s->ev_timer, &tv);
		break;
	}
}

/* Enter a state and carry on with the buffered input. */
void
session_resume(struct session *s, enum session_state state)
{
	session_enter(s, state);
	session_process(s);
}

void
session_close(struct session *s)
{
	session_enter(s, S_CLOSING);
}

/* Re-arm the idle timer: the client did something. */
static void
session_touch(struct session *s)
{
	struct timeval	tv = { smtpd_env.timeout, 0 };

	if (s->state == S_COMMAND || s->state == S_DATA ||
	    s->state == S_STARTTLS || s->state == S_AUTH)
		evtimer_add(&s->ev_timer, &tv);
}

/* Add or remove the read and write events to match the state. */
static void
session_update(struct session *s)
{
	int	want_read, want_write, out, in;

	out = s->outlen > s->outoff;
	in = !(s->flags & SF_EOF) && s->state != S_CLOSING &&
	    s->state != S_STARTTLS &&
	    (s->inoff > 0 || s->inlen < SMTPD_INBUF);
	want_write = out;
	want_read = in;
	if (s->flags & SF_TLS) {
		/* Which socket event each TLS operation waits for. */
		want_read = (in && !(s->flags & SF_TLS_RWANTW)) ||
		    (out && (s->flags & SF_TLS_WWANTR));
		want_write = (out && !(s->flags & SF_TLS_WWANTR)) ||
		    (in && (s->flags & SF_TLS_RWANTW));
	}
	if (want_read && !(s->flags & SF_READING))
		event_add(&s->ev_read, NULL);
	else if (!want_read && (s->flags & SF_READING))
		event_del(&s->ev_read);
	if (want_write && !(s->flags & SF_WRITING))
		event_add(&s->ev_write, NULL);
	else if (!want_write && (s->flags & SF_WRITING))
		event_del(&s->ev_write);
	s->flags &= ~(SF_READING | SF_WRITING);
	s->flags |= (want_read ? SF_READING : 0) | (want_write ? SF_WRITING : 0);
	/*
	 * Decrypted input OpenSSL holds makes no socket event: run the read
	 * by hand.  After event_add(): libevent does not register an event
	 * that is already active.
	 */
	if (in && tls_pending(s))
		event_active(&s->ev_read, EV_READ, 1);
}

/* Send through TLS or not: n > 0, TLS_IO_AGAIN or TLS_IO_ERROR. */
static ssize_t
session_send(struct session *s, const void *buf, size_t len)
{
	ssize_t	n;

	if (s->flags & SF_TLS)
		return tls_write(s, buf, len);
	while ((n = send(s->fd, buf, len, MSG_NOSIGNAL)) == -1 &&
	    errno == EINTR)
		;
	if (n == -1)
		return errno == EAGAIN ? TLS_IO_AGAIN : TLS_IO_ERROR;
	return n;
}

/* Why the last session_send or session_read failed, for the log. */
static const char *
session_errstr(struct session *s)
{
	return (s->flags & SF_TLS) ? "TLS error" : strerror(errno);
}

/* Send the output buffer as far as the socket takes it; -1: it failed. */
static int
session_write(struct session *s)
{
	ssize_t	n;

	while (s->outoff < s->outlen) {
		n = session_send(s, s->outbuf + s->outoff,
		    s->outlen - s->outoff);
		if (n == TLS_IO_AGAIN)
			break;
		if (n <= 0)
			return -1;
		s->outoff += (size_t)n;
		session_touch(s);
	}
	if (s->outoff == s->outlen)
		s->outoff = s->outlen = 0;
	return 0;
}

/* Write, then free a finished session or wait for the next event. */
static void
session_flush(struct session *s)
{
	if (session_write(s) == -1) {
		session_lost(s, session_errstr(s));
		return;
	}
	if (s->state == S_CLOSING && s->outlen == 0) {
		session_free(s);
		return;
	}
	/* The 220 to STARTTLS is out: TLS starts now. */
	if (s->state == S_STARTTLS && s->outlen == 0)
		tls_begin(s);
	session_update(s);
}

/* Frame and run the next command line; 0 when a whole line is missing. */
static int
session_command(struct session *s)
{
	const char	*line = s->inbuf + s->inoff;
	size_t		 linelen, used;
	int		 discard, r;

	discard = (s->flags & SF_DISCARD) != 0;
	r = smtp_line_next(&discard, line, s->inlen - s->inoff, &linelen,
	    &used);
	s->inoff += used;
	s->flags = discard ? (s->flags | SF_DISCARD) : (s->flags & ~SF_DISCARD);
	switch (r) {
	case SMTP_LINE_OK:
		command_line(s, line, linelen);
		/*
		 * Without EHLO there is no PIPELINING (RFC 2920): input after
		 * a command, before its reply, means the client does not
		 * wait for replies.  Drop it, as Postfix 3.9 does.
		 */
		if (!(s->flags & SF_EHLO) && s->inoff < s->inlen &&
		    s->state != S_CLOSING && s->state != S_STARTTLS) {
			log_info("improper command pipelining after %s from "
			    "unknown[%s]", s->last_verb, s->peer_ip);
			session_reply(s, "554 5.5.0 Error: SMTP protocol "
			    "synchronization");
			s->flags |= SF_ENDED;
			session_close(s);
		}
		return 1;
	case SMTP_LINE_LONG:
		command_line(s, NULL, 0);
		return 1;
	default:
		return used > 0;
	}
}

/* Nothing more to do until the client sends more: EOF or shutdown? */
static void
session_idle(struct session *s)
{
	if (s->flags & SF_EOF) {
		/* Log it now, but a half-closed client still gets replies. */
		if (s->state == S_DATA)
			log_info("lost connection after DATA (%llu bytes) from "
			    "unknown[%s]", (unsigned long long)s->msgsize,
			    s->peer_ip);
		else
			log_info("lost connection after %s from unknown[%s]",
			    s->last_verb, s->peer_ip);
		s->flags |= SF_ENDED;
		session_close(s);
	}
	if (smtpd_env.shutting_down && s->state == S_COMMAND &&
	    s->sender == NULL && s->inoff == s->inlen) {
		session_reply(s, "421 4.3.2 %s Service shutting down",
		    smtpd_env.hostname);
		s->flags |= SF_ENDED;
		session_close(s);
	}
	session_flush(s);
}

/* Run the buffered input as far as the state allows, then write. */
static void
session_process(struct session *s)
{
	int	progress = 1;

	while (progress && (s->state == S_COMMAND || s->state == S_DATA ||
	    s->state == S_AUTH)) {
		/* Back-pressure: stop while a reply might not fit. */
		if (SMTPD_OUTBUF - (s->outlen - s->outoff) < SMTPD_REPLY_MAX) {
			if (session_write(s) == -1) {
				session_lost(s, session_errstr(s));
				return;
			}
			if (SMTPD_OUTBUF - (s->outlen - s->outoff) <
			    SMTPD_REPLY_MAX)
				break;	/* EV_WRITE brings us back */
		}
		if (s->state == S_DATA)
			progress = data_input(s);
		else if (s->state == S_AUTH)
			progress = auth_input(s);
		else
			progress = session_command(s);
	}
	if (!progress)
		session_idle(s);
	else
		session_flush(s);
}

/* Read what the client sent into inbuf; -1 when the session is gone. */
static int
session_read(struct session *s)
{
	ssize_t	n;

	/* Plaintext after STARTTLS is not read: TLS will read it. */
	if (s->state == S_STARTTLS || s->state == S_CLOSING ||
	    (s->flags & SF_EOF))
		return 0;
	if (s->inoff > 0) {
		memmove(s->inbuf, s->inbuf + s->inoff, s->inlen - s->inoff);
		s->inlen -= s->inoff;
		s->inoff = 0;
	}
	if (s->inlen == SMTPD_INBUF)
		return 0;
	if (s->flags & SF_TLS)
		n = tls_read(s, s->inbuf + s->inlen, SMTPD_INBUF - s->inlen);
	else if ((n = recv(s->fd, s->inbuf + s->inlen,
	    SMTPD_INBUF - s->inlen, 0)) == -1)
		n = (errno == EAGAIN || errno == EINTR) ? TLS_IO_AGAIN :
		    TLS_IO_ERROR;
	if (n == TLS_IO_AGAIN)
		return 0;
	if (n == TLS_IO_ERROR) {
		session_lost(s, session_errstr(s));
		return -1;
	}
	if (n == 0)
		s->flags |= SF_EOF;
	else {
		s->inlen += (size_t)n;
		session_touch(s);
	}
	return 0;
}

/* The socket is readable or writable: read, run, write. */
static void
session_io_cb(int fd, short ev, void *arg)
{
	struct session	*s = arg;

	if (s->state == S_PROXY) {
		proxy_input(s);		/* may free s, or greet */
		return;
	}
	if (s->state == S_GREET) {
		session_pregreet(s);	/* input or EOF before the 220 */
		return;
	}
	if (((ev & EV_READ) || (s->flags & SF_TLS_RWANTW)) &&
	    session_read(s) == -1)
		return;
	session_process(s);
}

static void
session_timer_cb(int fd, short ev, void *arg)
{
	struct session	*s = arg;

	if (s->state == S_CLOSING) {
		/* The last reply could not be delivered in time. */
		session_free(s);
		return;
	}
	if (s->state == S_AUTH_FAIL) {
		auth_fail_done(s);
		return;
	}
	if (s->state == S_GREET) {
		session_greet(s);
		return;
	}
	if (s->state == S_PROXY) {
		log_info("PROXY header from [%s] refused: timeout; connection "
		    "dropped", s->peer_ip);
		s->flags |= SF_ENDED;
		session_free(s);
		return;
	}
	if (s->state == S_DATA)
		log_info("timeout after DATA (%llu bytes) from unknown[%s]",
		    (unsigned long long)s->msgsize, s->peer_ip);
	else
		log_info("timeout after %s from unknown[%s]", s->last_verb,
		    s->peer_ip);
	s->flags |= SF_ENDED;
	session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
	    smtpd_env.hostname);
	session_close(s);
	session_flush(s);
}

/* SIGTERM: idle sessions get 421 now, busy ones when they are done. */
void
session_shutdown_all(void)
{
	struct session	*s, *next;

	for (s = TAILQ_FIRST(&sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state == S_COMMAND)
			session_process(s);
	}
}

/* End of the grace period: tell everyone left and drop them. */
void
session_kill_all(void)
{
	struct session	*s;

	while ((s = TAILQ_FIRST(&sessions)) != NULL) {
		/* A proxy that has not sent its header was never greeted. */
		if (s->state != S_CLOSING && s->state != S_PROXY &&
		    s->state != S_GREET)
			session_reply(s, "421 4.3.2 %s Service shutting down",
			    smtpd_env.hostname);
		if (s->outlen > s->outoff &&
		    session_send(s, s->outbuf + s->outoff,
		    s->outlen - s->outoff) < 0)
			log_debug("unknown[%s]: %s", s->peer_ip,
			    session_errstr(s));
		session_free(s);
	}
}

/* Inside smtp-range, or authenticated: x-mq-* headers are honoured. */
int
session_may_relay(struct session *s)
{
	return (s->flags & (SF_RANGE | SF_AUTH)) != 0;
}

/* The protocol for Received: "with ..." (RFC 3848). */
const char *
session_proto(struct session *s)
{
	if (!(s->flags & SF_EHLO))
		return "SMTP";
	switch (s->flags & (SF_TLS | SF_AUTH)) {
	case SF_TLS:
		return "ESMTPS";
	case SF_AUTH:
		return "ESMTPA";
	case SF_TLS | SF_AUTH:
		return "ESMTPSA";
	default:
		return "ESMTP";
	}
}
