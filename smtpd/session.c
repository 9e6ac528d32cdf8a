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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "smtpd.h"

static TAILQ_HEAD(, session)	sessions = TAILQ_HEAD_INITIALIZER(sessions);

static void	session_read_cb(int, short, void *);
static void	session_write_cb(int, short, void *);
static void	session_timer_cb(int, short, void *);
static void	session_process(struct session *);

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

/* A new connection from a listener: check the client, then greet it. */
void
session_accept(int fd, const struct sockaddr *sa, unsigned slen)
{
	struct session		*s;
	struct netaddr		 peer, local;
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 ip[NETADDR_STRLEN];

	if (netaddr_from_sockaddr(&peer, sa) == -1) {
		log_warnx("connection from a non-IP address, closed");
		close(fd);
		return;
	}
	netaddr_ntop(&peer, ip, sizeof(ip));
	if (!netaddr_range_match(&smtpd_env.range, &peer)) {
		session_refuse(fd, ip, "554 5.7.1 Access denied");
		return;
	}
	if (smtpd_env.max_connections > 0 &&
	    smtpd_env.nsessions >= (unsigned)smtpd_env.max_connections) {
		session_refuse(fd, ip,
		    "421 4.7.0 Too many connections, try again later");
		return;
	}

	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->spoolfd = -1;
	s->peer = peer;
	memcpy(s->peer_ip, ip, sizeof(ip));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
	    netaddr_from_sockaddr(&local, (struct sockaddr *)&ss) == 0)
		netaddr_ntop(&local, s->local_ip, sizeof(s->local_ip));
	else
		snprintf(s->local_ip, sizeof(s->local_ip), "0.0.0.0");
	s->last_verb = "CONNECT";
	event_set(&s->ev_read, fd, EV_READ | EV_PERSIST, session_read_cb, s);
	event_set(&s->ev_write, fd, EV_WRITE | EV_PERSIST, session_write_cb,
	    s);
	evtimer_set(&s->ev_timer, session_timer_cb, s);
	TAILQ_INSERT_TAIL(&sessions, s, entry);
	smtpd_env.nsessions++;

	log_info("connect from unknown[%s]", s->peer_ip);
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
	size_t	i;

	data_abort(s);
	free(s->sender);
	s->sender = NULL;
	for (i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = 0;
	s->body = SMTP_BODY_UNSET;
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
	case S_COMMAND:
	case S_DATA:
		evtimer_add(&s->ev_timer, &tv);
		break;
	case S_WAIT_CREATE:
	case S_WAIT_COMMIT:
		evtimer_del(&s->ev_timer);
		break;
	case S_CLOSING:
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

	if (s->state == S_COMMAND || s->state == S_DATA)
		evtimer_add(&s->ev_timer, &tv);
}

/* Add or remove the read and write events to match the state. */
static void
session_update(struct session *s)
{
	int	want_read, want_write;

	want_write = s->outlen > s->outoff;
	want_read = !(s->flags & SF_EOF) && s->state != S_CLOSING &&
	    (s->inoff > 0 || s->inlen < SMTPD_INBUF);
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
}

/* Send the output buffer as far as the socket takes it; -1: it failed. */
static int
session_write(struct session *s)
{
	ssize_t	n;

	while (s->outoff < s->outlen) {
		n = send(s->fd, s->outbuf + s->outoff, s->outlen - s->outoff,
		    MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return -1;
		}
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
		session_lost(s, strerror(errno));
		return;
	}
	if (s->state == S_CLOSING && s->outlen == 0) {
		session_free(s);
		return;
	}
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

	while (progress && (s->state == S_COMMAND || s->state == S_DATA)) {
		/* Back-pressure: stop while a reply might not fit. */
		if (SMTPD_OUTBUF - (s->outlen - s->outoff) < SMTPD_REPLY_MAX) {
			if (session_write(s) == -1) {
				session_lost(s, strerror(errno));
				return;
			}
			if (SMTPD_OUTBUF - (s->outlen - s->outoff) <
			    SMTPD_REPLY_MAX)
				break;	/* EV_WRITE brings us back */
		}
		if (s->state == S_DATA)
			progress = data_input(s);
		else
			progress = session_command(s);
	}
	if (!progress)
		session_idle(s);
	else
		session_flush(s);
}

static void
session_read_cb(int fd, short ev, void *arg)
{
	struct session	*s = arg;
	ssize_t		 n;

	if (s->inoff > 0) {
		memmove(s->inbuf, s->inbuf + s->inoff, s->inlen - s->inoff);
		s->inlen -= s->inoff;
		s->inoff = 0;
	}
	if (s->inlen == SMTPD_INBUF) {
		session_update(s);
		return;
	}
	n = recv(fd, s->inbuf + s->inlen, SMTPD_INBUF - s->inlen, 0);
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		session_lost(s, strerror(errno));
		return;
	}
	if (n == 0)
		s->flags |= SF_EOF;
	else {
		s->inlen += (size_t)n;
		session_touch(s);
	}
	session_process(s);
}

static void
session_write_cb(int fd, short ev, void *arg)
{
	session_process(arg);
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
		if (s->state != S_CLOSING)
			session_reply(s, "421 4.3.2 %s Service shutting down",
			    smtpd_env.hostname);
		if (s->outlen > s->outoff &&
		    send(s->fd, s->outbuf + s->outoff, s->outlen - s->outoff,
		    MSG_NOSIGNAL) == -1)
			log_debug("unknown[%s]: %s", s->peer_ip,
			    strerror(errno));
		session_free(s);
	}
}
