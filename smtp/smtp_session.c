/*
 * The SMTP client session: a state enum, smtp_session_enter() to change
 * state, and one libevent callback for every I/O event (connected, data
 * in, room to write, timeout).
 *
 *   CONNECT -> GREETING -> EHLO (-> HELO on 5xx) [-> STARTTLS -> TLS ->
 *   EHLO] [-> AUTH] -> MAIL -> RCPT... -> DATA -> BODY -> DOT -> IDLE
 *   (reused by a later job: START -> MAIL) -> QUIT; an aborted
 *   transaction goes through RSET to IDLE.
 *
 * STARTTLS (RFC 3207) is used whenever the server offers it, unless the
 * TLS policy (tls_policy.h) is none or the route asks for plaintext after
 * a failed handshake; under the required policy a server that does not
 * offer it or refuses it fails the attempt (4.7.4).  Anything the server
 * sent after its 220 and before the handshake is an injection attempt
 * and ends the session.  After the handshake the capabilities are
 * forgotten and EHLO goes out again.  AUTH (RFC 4954, PLAIN preferred,
 * else LOGIN) follows when the destination has credentials and the
 * server offers AUTH: only over TLS, or in plaintext to a loopback
 * address when the server offers no STARTTLS.  AUTH lines are logged
 * with the credentials masked.
 *
 * Before MAIL, a failure (no connection, a 4xx/5xx greeting, EHLO and
 * HELO refused, STARTTLS or AUTH trouble, a timeout) belongs to the
 * route: the job moves on to the next address.  From MAIL on, outcomes belong to recipients: MAIL's reply
 * to all of them, each RCPT's to its recipient, DATA's and the final
 * reply to those accepted; a timeout or a lost connection defers every
 * recipient still without an outcome.
 *
 * With PIPELINING, MAIL, up to SMTP_RCPT_WINDOW RCPTs and DATA go out
 * together (RFC 2920) and replies are matched in order; without it one
 * command waits for its reply.  Replies are read line by line into a
 * bounded buffer: a line over SMTP_REPLY_LINE_MAX, a reply over
 * SMTP_REPLY_LINES_MAX lines or a malformed line ends the session as a
 * protocol error.  Nothing a server sends can grow memory or crash us.
 *
 * After a transaction the connection is kept idle for SMTP_IDLE_TIME
 * seconds for the next job to the same address and source with the same
 * credentials (TLS state and all), at most
 * SMTP_REUSE_MAX transactions; anything unexpected drops it, and a reused
 * connection found dead before MAIL's reply is replaced by a fresh one.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hostport.h"
#include "log.h"
#include "proto.h"
#include "smtp.h"
#include "smtp_auth.h"
#include "smtp_reply.h"
#include "tls_policy.h"
#include "xmalloc.h"

enum smtp_state {
	S_CONNECT,		/* non-blocking connect in progress */
	S_GREETING,
	S_EHLO,
	S_HELO,
	S_STARTTLS,		/* awaiting STARTTLS's reply */
	S_TLS,			/* the TLS handshake */
	S_AUTH,			/* awaiting an AUTH reply */
	S_START,		/* reused: MAIL goes out from the event loop */
	S_MAIL,			/* awaiting MAIL's reply (then RCPTs') */
	S_RCPT,			/* awaiting RCPT replies */
	S_DATA,			/* awaiting DATA's reply */
	S_BODY,			/* writing the message */
	S_DOT,			/* awaiting the final reply */
	S_RSET,
	S_IDLE,
	S_QUIT,
	S_CLOSED
};

static const struct {
	const char	*name;
	const char	*doing;		/* "... while <doing>" */
	int		 timeout;
} smtp_states[] = {
	[S_CONNECT] =	{ "CONNECT", "connecting", 0 },
	[S_GREETING] =	{ "GREETING", "receiving the initial server "
			  "greeting", SMTP_TO_GREETING },
	[S_EHLO] =	{ "EHLO", "performing the EHLO handshake",
			  SMTP_TO_EHLO },
	[S_HELO] =	{ "HELO", "performing the HELO handshake",
			  SMTP_TO_EHLO },
	[S_STARTTLS] =	{ "STARTTLS", "sending STARTTLS", SMTP_TO_STARTTLS },
	[S_TLS] =	{ "TLS", "performing the TLS handshake", SMTP_TO_TLS },
	[S_AUTH] =	{ "AUTH", "authenticating", SMTP_TO_AUTH },
	[S_START] =	{ "START", "starting a transaction", 0 },
	[S_MAIL] =	{ "MAIL", "sending MAIL FROM", SMTP_TO_MAIL },
	[S_RCPT] =	{ "RCPT", "sending RCPT TO", SMTP_TO_RCPT },
	[S_DATA] =	{ "DATA", "sending the DATA command", SMTP_TO_DATA },
	[S_BODY] =	{ "BODY", "sending the message body", SMTP_TO_BODY },
	[S_DOT] =	{ "DOT", "sending end of data -- message may be sent "
			  "more than once", SMTP_TO_DOT },
	[S_RSET] =	{ "RSET", "sending RSET", SMTP_TO_RSET },
	[S_IDLE] =	{ "IDLE", "idle", SMTP_IDLE_TIME },
	[S_QUIT] =	{ "QUIT", "sending QUIT", SMTP_TO_QUIT },
	[S_CLOSED] =	{ "CLOSED", "closed", 0 },
};

struct smtp_session {
	TAILQ_ENTRY(smtp_session) entry;	/* idle list */
	enum smtp_state		 state;
	time_t			 deadline;	/* monotonic: the state's end */
	int			 fd;
	struct event		 ev;
	int			 ev_on;
	int			 in_cb;		/* free after the callback */
	int			 idle;		/* on the idle list */

	struct smtp_job		*job;
	char			*host;
	struct sockaddr_storage	 addr;
	char			*source;
	char			 relay[SMTP_RELAY_MAX];	/* host[ip]:port */
	unsigned		 ntrans;	/* transactions started */
	char			*sni;		/* TLS server name, or NULL */
	char			*user;		/* NULL: no AUTH */
	char			*pass;
	int			 notls;		/* STARTTLS not to be used */
	int			 policy;	/* TLS_POLICY_* */

	struct ssl_st		*ssl;		/* from STARTTLS on */
	int			 tls;		/* the handshake is done */
	int			 tls_rwant;	/* what a read (or the handshake)
						   waits on: EV_READ/EV_WRITE */
	int			 tls_wwant;	/* what a write waits on */
	char			 tls_err[128];	/* the last TLS error */
	int			 auth_mech;	/* SMTP_AUTH_* in progress */
	int			 auth_step;	/* LOGIN prompts answered */

	struct smtp_caps	 caps;
	struct smtp_reply	 reply;
	char			 ibuf[SMTP_IBUF_SIZE];
	size_t			 ilen;
	char			*obuf;		/* SMTP_OBUF_MAX */
	size_t			 opos, olen;

	/* the transaction */
	size_t			*order;		/* recipients sent, by index */
	size_t			 norder;
	size_t			 rcpt_sent, rcpt_replied;
	size_t			 naccepted;
	int			 pipelining;
	int			 mail_replied;
	int			 mail_failed;
	int			 data_sent;
	int			 dot_ignore;	/* "." after a useless 354 */
	struct smtp_data	 data;
};

static TAILQ_HEAD(, smtp_session) idle_list =
    TAILQ_HEAD_INITIALIZER(idle_list);
static size_t			 idle_count;

static void	smtp_session_io(int, short, void *);
static void	smtp_session_mail(struct smtp_session *);
static void	smtp_session_quit(struct smtp_session *);
static void	smtp_session_lines(struct smtp_session *);
static time_t	smtp_session_now(void);
static const char *smtp_session_stage(enum smtp_state);

static void
smtp_session_enter(struct smtp_session *s, enum smtp_state state)
{
	const char	*stage = smtp_session_stage(state);

	if (s->job != NULL && s->state != state)
		log_debug("%s: %s: %s -> %s", s->job->msgid, s->relay,
		    smtp_states[s->state].name, smtp_states[state].name);
	if (s->job != NULL && stage != NULL)
		s->job->stage = stage;	/* where an outcome is decided */
	/*
	 * A state's timeout runs from its start, not from the last byte: a
	 * server that trickles a reply one byte at a time must still end.
	 */
	if (s->state != state || s->deadline == 0)	/* 0: a new session */
		s->deadline = smtp_session_now() + (state == S_CONNECT ?
		    smtp_conf.connect_timeout : smtp_states[state].timeout);
	s->state = state;
}

/* Seconds on the monotonic clock. */
static time_t
smtp_session_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* What is left of the state's time, at least 0 (then it times out). */
static time_t
smtp_session_left(const struct smtp_session *s)
{
	time_t	 left = s->deadline - smtp_session_now();

	return left > 0 ? left : 0;
}

/* The result "state" (stage) of a session state; NULL: no change. */
static const char *
smtp_session_stage(enum smtp_state state)
{
	switch (state) {
	case S_CONNECT:
	case S_GREETING:
		return "connect";
	case S_EHLO:
	case S_HELO:
		return "ehlo";
	case S_STARTTLS:
	case S_TLS:
		return "starttls";
	case S_AUTH:
		return "auth";
	case S_START:
	case S_MAIL:
		return "mailfrom";
	case S_RCPT:
		return "rcptto";
	case S_DATA:
	case S_BODY:
	case S_DOT:
		return "data";
	default:
		return NULL;
	}
}

static void
smtp_session_free(struct smtp_session *s)
{
	free(s->host);
	free(s->source);
	free(s->sni);
	free(s->user);
	if (s->pass != NULL)
		xfreestr(s->pass);
	/* The output buffer held the credentials: wipe it. */
	if (s->user != NULL)
		xfreezero(s->obuf, SMTP_OBUF_MAX);
	else
		free(s->obuf);
	free(s->order);
	free(s);
}

/* Close the connection; the memory goes when no callback is running. */
static void
smtp_session_close(struct smtp_session *s)
{
	if (s->idle) {
		TAILQ_REMOVE(&idle_list, s, entry);
		idle_count--;
		s->idle = 0;
	}
	if (s->ev_on) {
		event_del(&s->ev);
		s->ev_on = 0;
	}
	if (s->ssl != NULL) {
		smtp_tls_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
	s->state = S_CLOSED;
	if (!s->in_cb)
		smtp_session_free(s);
}

/* Unlink session and job; returns the job (NULL when none). */
static struct smtp_job *
smtp_session_detach(struct smtp_session *s)
{
	struct smtp_job	*job = s->job;

	s->job = NULL;
	if (job != NULL)
		job->sess = NULL;
	return job;
}

/*
 * Queue a command line; commands are short, the buffer is not.  The debug
 * log shows the line, or shown instead when it holds a secret.
 */
static void
smtp_session_vcmd(struct smtp_session *s, const char *shown, const char *fmt,
    va_list ap)
{
	int	 n;

	if (s->opos == s->olen)
		s->opos = s->olen = 0;
	n = vsnprintf(s->obuf + s->olen, SMTP_OBUF_MAX - s->olen, fmt, ap);
	if (n < 0 || (size_t)n + 2 > SMTP_OBUF_MAX - s->olen)
		log_panic("smtp output buffer overflow");
	if (s->job != NULL && shown != NULL)
		log_debug("%s: %s: > %s", s->job->msgid, s->relay, shown);
	else if (s->job != NULL)
		log_debug("%s: %s: > %.*s", s->job->msgid, s->relay, n,
		    s->obuf + s->olen);
	s->olen += n;
	memcpy(s->obuf + s->olen, "\r\n", 2);
	s->olen += 2;
}

static void
smtp_session_cmd(struct smtp_session *s, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	smtp_session_vcmd(s, NULL, fmt, ap);
	va_end(ap);
}

/* A command with credentials in it: the log shows only shown. */
static void
smtp_session_cmd_secret(struct smtp_session *s, const char *shown,
    const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	smtp_session_vcmd(s, shown, fmt, ap);
	va_end(ap);
}

/* Arm the one event for what the state waits on, with its timeout. */
static void
smtp_session_update(struct smtp_session *s)
{
	struct timeval	 tv = { 0, 0 };
	short		 flags = 0;

	if (s->state == S_CLOSED)
		return;
	if (s->ev_on)
		event_del(&s->ev);
	switch (s->state) {
	case S_CONNECT:
		flags = EV_WRITE;
		tv.tv_sec = smtp_session_left(s);
		break;
	case S_START:
		break;
	case S_TLS:
		flags = s->tls_rwant != 0 ? s->tls_rwant : EV_READ;
		tv.tv_sec = smtp_session_left(s);	/* whole handshake */
		break;
	case S_BODY:
		/* per write progress: a big body may take long in all */
		flags = s->tls_wwant == EV_READ ? EV_READ : EV_WRITE;
		tv.tv_sec = smtp_states[s->state].timeout;
		break;
	default:
		/* TLS may need the other direction than the operation. */
		flags = EV_READ;
		if (s->opos < s->olen)
			flags |= s->tls_wwant == EV_READ ? EV_READ : EV_WRITE;
		if (s->tls_rwant == EV_WRITE)
			flags |= EV_WRITE;
		tv.tv_sec = smtp_session_left(s);
		break;
	}
	event_set(&s->ev, s->fd, flags, smtp_session_io, s);
	event_add(&s->ev, &tv);
	s->ev_on = 1;
}

/*
 * The session failed (timeout, lost connection, protocol error): before
 * MAIL the route tries elsewhere; after it, recipients without an outcome
 * are deferred.  A reused connection that died before MAIL's reply was
 * stale: the same address is tried again on a fresh one.
 */
static void
smtp_session_fail(struct smtp_session *s, const char *dsn, const char *fmt,
    ...)
{
	struct smtp_job	*job;
	enum smtp_state	 state = s->state;
	char		 text[SMTP_TEXT_MAX];
	va_list		 ap;
	int		 stale;

	stale = state == S_START || state == S_RSET ||
	    (s->ntrans > 1 && !s->mail_replied && state <= S_RCPT);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	log_debug("%s: %s", s->job != NULL ? s->job->msgid : s->relay, text);
	job = smtp_session_detach(s);
	smtp_session_close(s);
	if (job == NULL)
		return;
	if (state == S_TLS)
		smtp_route_tls_failed(job, text);
	else if (state <= S_AUTH)
		smtp_route_failed(job, 1, state <= S_GREETING, 0, dsn, text);
	else if (stale) {
		log_debug("%s: reused connection to %s was stale",
		    job->msgid, job->relay);
		smtp_route_retry(job);
	} else {
		smtp_job_rcpt_all(job, RCPT_DEFERRED, 0, dsn, text, NULL);
		smtp_job_done(job);
	}
}

/* A refused greeting or EHLO/HELO: this host will not do; next one. */
static void
smtp_session_refused(struct smtp_session *s)
{
	struct smtp_job	*job;
	char		 dsn[SMTP_DSN_MAX];
	int		 down = s->state == S_GREETING;

	smtp_reply_dsn(&s->reply, dsn, sizeof(dsn));
	job = smtp_session_detach(s);
	smtp_session_quit(s);
	smtp_route_failed(job, s->reply.code / 100 != 5, down, s->reply.code,
	    dsn, s->reply.text);
}

/*
 * Before MAIL, this server will not do for the job (STARTTLS or AUTH
 * trouble): say goodbye and let the route try the next address.  The
 * failure is temporary: it is about this hop, not about the mail.
 */
static void
smtp_session_giveup(struct smtp_session *s, const char *dsn,
    const char *fmt, ...)
{
	struct smtp_job	*job;
	char		 text[SMTP_TEXT_MAX];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	job = smtp_session_detach(s);
	log_debug("%s: %s", job->msgid, text);
	smtp_session_quit(s);
	smtp_route_failed(job, 1, 0, 0, dsn, text);
}

/*
 * Park a connection for the next job to the same place: idle, or still
 * waiting for RSET's reply (a job may take it then; MAIL follows RSET).
 */
static void
smtp_session_park(struct smtp_session *s, enum smtp_state state)
{
	struct smtp_session	*old;

	if (idle_count >= SMTP_IDLE_MAX) {
		old = TAILQ_FIRST(&idle_list);
		TAILQ_REMOVE(&idle_list, old, entry);
		idle_count--;
		old->idle = 0;
		smtp_session_quit(old);
		smtp_session_update(old);
	}
	TAILQ_INSERT_TAIL(&idle_list, s, entry);
	idle_count++;
	s->idle = 1;
	smtp_session_enter(s, state);
}

/*
 * The transaction is over: report the job, then keep the connection.
 * After the reply to the final dot the server has reset itself (RFC 5321
 * 4.1.1.4), so the connection is idle at once and the next job to the
 * same place needs no round trip; after an aborted transaction RSET goes
 * first.
 */
static void
smtp_session_txn_end(struct smtp_session *s, int clean)
{
	struct smtp_job	*job = smtp_session_detach(s);

	free(s->order);
	s->order = NULL;
	smtp_job_done(job);
	if (s->ntrans >= SMTP_REUSE_MAX) {
		smtp_session_quit(s);
		return;
	}
	if (clean)
		smtp_session_park(s, S_IDLE);
	else {
		smtp_session_cmd(s, "RSET");
		smtp_session_park(s, S_RSET);
	}
}

/* RSET's reply: the job waiting for it goes on, or the connection idles. */
static void
smtp_session_rset_reply(struct smtp_session *s)
{
	if (s->reply.code / 100 != 2) {
		if (s->job != NULL) {
			smtp_session_fail(s, "4.5.0", "RSET refused by %s",
			    s->relay);
			return;
		}
		if (s->idle) {
			TAILQ_REMOVE(&idle_list, s, entry);
			idle_count--;
			s->idle = 0;
		}
		smtp_session_quit(s);
	} else if (s->job != NULL)
		smtp_session_mail(s);
	else
		smtp_session_enter(s, S_IDLE);
}

static void
smtp_session_quit(struct smtp_session *s)
{
	smtp_session_cmd(s, "QUIT");
	smtp_session_enter(s, S_QUIT);
}

/* Outcome of one recipient from the current reply. */
static void
smtp_session_rcpt_reply(struct smtp_session *s, struct smtp_rcpt *r,
    const char *cmd)
{
	char	 dsn[SMTP_DSN_MAX];

	smtp_job_rcpt(s->job, r, smtp_job_status(s->reply.code),
	    s->reply.code, smtp_reply_dsn(&s->reply, dsn, sizeof(dsn)),
	    s->reply.text, cmd);
}

/* Outcome of every accepted recipient from the current reply. */
static void
smtp_session_accepted_reply(struct smtp_session *s, const char *cmd)
{
	size_t	 i;

	for (i = 0; i < s->norder; i++)
		if (s->job->rcpts[s->order[i]].accepted)
			smtp_session_rcpt_reply(s,
			    &s->job->rcpts[s->order[i]], cmd);
}

/* Send what may go now: RCPTs within the window, then DATA. */
static void
smtp_session_pump(struct smtp_session *s)
{
	struct smtp_rcpt	*r;
	size_t			 window;

	if (!s->pipelining && !s->mail_replied)
		return;
	window = s->pipelining ? SMTP_RCPT_WINDOW : 1;
	while (!s->mail_failed && s->rcpt_sent < s->norder &&
	    s->rcpt_sent - s->rcpt_replied < window) {
		r = &s->job->rcpts[s->order[s->rcpt_sent++]];
		smtp_session_cmd(s, "RCPT TO:<%s>", r->addr);
	}
	if (s->data_sent || s->mail_failed || s->rcpt_sent < s->norder)
		return;
	if (s->rcpt_replied == s->norder ? s->naccepted > 0 : s->pipelining) {
		smtp_session_cmd(s, "DATA");
		s->data_sent = 1;
	}
}

/* MAIL FROM and, with PIPELINING, the first RCPTs and DATA. */
static void
smtp_session_mail(struct smtp_session *s)
{
	struct smtp_job	*job = s->job;
	char		 text[SMTP_TEXT_MAX], size[32] = "";
	size_t		 i;

	s->ntrans++;
	clock_gettime(CLOCK_MONOTONIC, &job->t_mail);
	if ((s->caps.flags & SMTP_CAP_SIZE) && s->caps.size_max > 0 &&
	    job->size > s->caps.size_max) {
		snprintf(text, sizeof(text), "message size %" PRIu64 " exceeds "
		    "size limit %" PRIu64 " of server %s", job->size,
		    s->caps.size_max, s->relay);
		smtp_job_rcpt_all(job, RCPT_FAILED, 0, "5.3.4", text, NULL);
		smtp_session_txn_end(s, 1);
		return;
	}
	if (job->smtputf8 && !(s->caps.flags & SMTP_CAP_SMTPUTF8)) {
		snprintf(text, sizeof(text), "SMTPUTF8 is required, but was "
		    "not offered by host %s", s->relay);
		smtp_job_rcpt_all(job, RCPT_FAILED, 0, "5.6.7", text, NULL);
		smtp_session_txn_end(s, 1);
		return;
	}
	s->order = xreallocarray(NULL, job->nrcpt, sizeof(*s->order));
	s->norder = s->rcpt_sent = s->rcpt_replied = s->naccepted = 0;
	for (i = 0; i < job->nrcpt; i++) {
		job->rcpts[i].accepted = 0;
		if (!job->rcpts[i].done)
			s->order[s->norder++] = i;
	}
	if (s->norder == 0) {
		smtp_session_txn_end(s, 1);
		return;
	}
	s->pipelining = (s->caps.flags & SMTP_CAP_PIPELINING) != 0;
	s->mail_replied = s->mail_failed = s->data_sent = s->dot_ignore = 0;
	if (s->caps.flags & SMTP_CAP_SIZE)
		snprintf(size, sizeof(size), " SIZE=%" PRIu64, job->size);
	smtp_session_cmd(s, "MAIL FROM:<%s>%s%s", job->sender, size,
	    job->smtputf8 ? " SMTPUTF8" : "");
	smtp_session_enter(s, S_MAIL);
	smtp_session_pump(s);
}

/* DATA's reply: 354 starts the body; anything else ends the transaction. */
static void
smtp_session_data_reply(struct smtp_session *s)
{
	int	 class = s->reply.code / 100;

	if (class == 3 && s->naccepted > 0 && !s->mail_failed) {
		smtp_data_start(&s->data, s->job->data_off, s->job->data_len);
		smtp_session_enter(s, S_BODY);
	} else if (class == 3) {
		/* Pipelined DATA went through with no recipient (RFC 2920
		 * 3.1): end it with an empty message, whose reply is moot. */
		smtp_session_cmd(s, ".");
		s->dot_ignore = 1;
		smtp_session_enter(s, S_DOT);
	} else if (class == 2)
		smtp_session_fail(s, "4.5.0", "unexpected reply %d to DATA "
		    "from %s", s->reply.code, s->relay);
	else {
		smtp_session_accepted_reply(s, "DATA");
		smtp_session_txn_end(s, 0);
	}
}

/* The reply after the final dot: the outcome of every accepted rcpt. */
static void
smtp_session_dot_reply(struct smtp_session *s)
{
	if (s->reply.code / 100 == 3) {
		smtp_session_fail(s, "4.5.0", "unexpected reply %d to end of "
		    "DATA from %s", s->reply.code, s->relay);
		return;
	}
	if (!s->dot_ignore)
		smtp_session_accepted_reply(s, "end of DATA");
	smtp_session_txn_end(s, 1);
}

/*
 * A reply in the transaction.  Replies come in the order the commands
 * went out, so the counters say whose it is: MAIL's, then each RCPT's,
 * then DATA's, then the final one.
 */
static void
smtp_session_txn_reply(struct smtp_session *s)
{
	struct smtp_rcpt	*r;
	size_t			 i;
	int			 class = s->reply.code / 100;

	if (s->state == S_DOT) {
		smtp_session_dot_reply(s);
		return;
	}
	if (!s->mail_replied) {
		s->mail_replied = 1;
		if (class != 2) {
			/* Pipelined RCPTs still get replies: drain them. */
			s->mail_failed = 1;
			for (i = 0; i < s->norder; i++)
				smtp_session_rcpt_reply(s,
				    &s->job->rcpts[s->order[i]], "MAIL FROM");
		}
	} else if (s->rcpt_replied < s->rcpt_sent) {
		r = &s->job->rcpts[s->order[s->rcpt_replied++]];
		if (class == 2 && !s->mail_failed) {
			r->accepted = 1;
			s->naccepted++;
		} else if (!s->mail_failed)
			smtp_session_rcpt_reply(s, r, "RCPT TO");
	} else if (s->state == S_DATA) {
		smtp_session_data_reply(s);
		return;
	} else {
		smtp_session_fail(s, "4.5.0", "unexpected reply from %s",
		    s->relay);
		return;
	}
	smtp_session_pump(s);
	if (s->rcpt_replied < s->rcpt_sent)
		smtp_session_enter(s, S_RCPT);
	else if (s->data_sent)
		smtp_session_enter(s, S_DATA);
	else
		smtp_session_txn_end(s, 0);
}

/* AUTH when the destination has credentials and may get them; MAIL. */
static void
smtp_session_auth(struct smtp_session *s)
{
	char	*p;

	if (s->user == NULL) {
		smtp_session_mail(s);
		return;
	}
	if (!(s->caps.flags & SMTP_CAP_AUTH)) {
		/* It may relay for us by address; if not, it says so. */
		log_info("%s: %s offers no AUTH: sending without "
		    "authentication", s->job->msgid, s->relay);
		smtp_session_mail(s);
		return;
	}
	if (!s->tls && !smtp_auth_loopback((struct sockaddr *)&s->addr)) {
		smtp_session_giveup(s, "4.7.0", "not sending credentials to "
		    "%s without TLS: %s", s->relay,
		    s->policy == TLS_POLICY_NONE ? "the TLS policy is none" :
		    "the server does not offer STARTTLS");
		return;
	}
	if (strlen(s->user) > SMTP_AUTH_CRED_MAX ||
	    strlen(s->pass) > SMTP_AUTH_CRED_MAX) {
		smtp_session_giveup(s, "4.7.0", "SASL authentication failed: "
		    "user name or password longer than %d octets",
		    SMTP_AUTH_CRED_MAX);
		return;
	}
	if ((s->auth_mech = smtp_auth_choose(s->caps.auth)) == 0) {
		smtp_session_giveup(s, "4.7.0", "SASL authentication failed: "
		    "%s offers no mechanism we support (PLAIN, LOGIN)",
		    s->relay);
		return;
	}
	s->auth_step = 0;
	if (s->auth_mech == SMTP_AUTH_PLAIN) {
		p = smtp_auth_plain(s->user, s->pass);
		smtp_session_cmd_secret(s, "AUTH PLAIN ********",
		    "AUTH PLAIN %s", p);
		xfreestr(p);
	} else
		smtp_session_cmd(s, "AUTH LOGIN");
	smtp_session_enter(s, S_AUTH);
}

/* A reply during AUTH: 235 goes on, LOGIN's 334 prompts get answers. */
static void
smtp_session_auth_reply(struct smtp_session *s)
{
	char	*p;

	if (s->reply.code / 100 == 2) {
		log_debug("%s: authenticated to %s as %s with %s",
		    s->job->msgid, s->relay, s->user,
		    smtp_auth_name(s->auth_mech));
		smtp_session_mail(s);
	} else if (s->reply.code == 334 && s->auth_mech == SMTP_AUTH_LOGIN &&
	    s->auth_step < 2) {
		p = smtp_auth_login(s->auth_step == 0 ? s->user : s->pass);
		smtp_session_cmd_secret(s, "********", "%s", p);
		xfreestr(p);
		s->auth_step++;
	} else
		/*
		 * Deferred, not bounced: wrong credentials are the
		 * operator's to fix, and the mail is fine (Postfix's
		 * smtp_sasl_auth_soft_bounce does the same).
		 */
		smtp_session_giveup(s, "4.7.0", "SASL authentication failed; "
		    "server %s said: %d %s%s%s", s->relay, s->reply.code,
		    s->reply.status, s->reply.status[0] != '\0' ? " " : "",
		    s->reply.text);
}

/*
 * EHLO went through: STARTTLS when offered, unless the policy is none or
 * the route fell back to plaintext; the required policy goes no further
 * without it.  Then AUTH.
 */
static void
smtp_session_ready(struct smtp_session *s)
{
	if (!s->tls && !s->notls && s->policy != TLS_POLICY_NONE &&
	    (s->caps.flags & SMTP_CAP_STARTTLS)) {
		smtp_session_cmd(s, "STARTTLS");
		smtp_session_enter(s, S_STARTTLS);
		return;
	}
	if (!s->tls && s->policy == TLS_POLICY_REQUIRED) {
		if (s->job != NULL)
			s->job->stage = "starttls";	/* the step refused */
		smtp_session_giveup(s, "4.7.4", "TLS is required, but was not "
		    "offered by host %s", s->relay);
		return;
	}
	smtp_session_auth(s);
}

/* One step of the handshake; once done, EHLO again (RFC 3207 4.2). */
static void
smtp_session_tls_step(struct smtp_session *s)
{
	char	 info[256];
	int	 r;

	s->tls_rwant = 0;
	r = smtp_tls_handshake(s->ssl, &s->tls_rwant, s->tls_err,
	    sizeof(s->tls_err));
	if (r == 0)
		return;
	s->tls_rwant = 0;
	if (r == -1) {
		smtp_session_fail(s, "4.7.0", "TLS handshake with %s failed: "
		    "%s", s->relay, s->tls_err);
		return;
	}
	s->tls = 1;
	log_info("%s: Untrusted TLS connection established to %s: %s",
	    s->job->msgid, s->relay, smtp_tls_info(s->ssl, info,
	    sizeof(info)));
	smtp_caps_reset(&s->caps);
	smtp_session_cmd(s, "EHLO %s", smtp_conf.helo);
	smtp_session_enter(s, S_EHLO);
}

/*
 * STARTTLS's reply.  220: the handshake, but anything the server sent
 * after it came in plaintext and would be read as if protected (the
 * STARTTLS injection of CVE-2011-0411): that ends the session.  A refusal
 * means plaintext, except with credentials, which then go elsewhere.
 */
static void
smtp_session_starttls_reply(struct smtp_session *s)
{
	if (s->reply.code == 220) {
		if (s->ilen > 0) {
			smtp_session_fail(s, "4.7.0", "%s sent data after "
			    "its reply to STARTTLS", s->relay);
			return;
		}
		s->ssl = smtp_tls_new(s->fd, s->sni);
		smtp_session_enter(s, S_TLS);
		smtp_session_tls_step(s);
	} else if (s->policy == TLS_POLICY_REQUIRED)
		smtp_session_giveup(s, "4.7.4", "TLS is required, but host %s "
		    "refused to start TLS: %d %s", s->relay, s->reply.code,
		    s->reply.text);
	else if (s->user != NULL)
		smtp_session_giveup(s, "4.7.0", "not sending credentials to "
		    "%s without TLS: STARTTLS refused: %d %s", s->relay,
		    s->reply.code, s->reply.text);
	else {
		log_info("%s: STARTTLS refused by %s: %d %s: going on "
		    "without TLS", s->job->msgid, s->relay, s->reply.code,
		    s->reply.text);
		smtp_session_auth(s);
	}
}

/* A complete reply arrived: what it means depends on the state. */
static void
smtp_session_reply(struct smtp_session *s)
{
	int	 class = s->reply.code / 100;

	if (s->job != NULL)
		log_debug("%s: %s: < %d %s%s%s", s->job->msgid, s->relay,
		    s->reply.code, s->reply.status,
		    s->reply.status[0] != '\0' ? " " : "", s->reply.text);
	switch (s->state) {
	case S_GREETING:
		if (class != 2) {
			smtp_session_refused(s);
			break;
		}
		smtp_caps_reset(&s->caps);
		smtp_session_cmd(s, "EHLO %s", smtp_conf.helo);
		smtp_session_enter(s, S_EHLO);
		break;
	case S_EHLO:
		if (class == 5) {
			smtp_caps_reset(&s->caps);
			smtp_session_cmd(s, "HELO %s", smtp_conf.helo);
			smtp_session_enter(s, S_HELO);
		} else if (class == 2)
			smtp_session_ready(s);
		else
			smtp_session_refused(s);
		break;
	case S_HELO:
		if (class == 2)
			smtp_session_ready(s);
		else
			smtp_session_refused(s);
		break;
	case S_STARTTLS:
		smtp_session_starttls_reply(s);
		break;
	case S_AUTH:
		smtp_session_auth_reply(s);
		break;
	case S_MAIL:
	case S_RCPT:
	case S_DATA:
	case S_DOT:
		smtp_session_txn_reply(s);
		break;
	case S_RSET:
		smtp_session_rset_reply(s);
		break;
	case S_QUIT:
		smtp_session_close(s);
		break;
	default:
		smtp_session_fail(s, "4.5.0", "unexpected reply from %s "
		    "while %s", s->relay, smtp_states[s->state].doing);
		break;
	}
}

/* Split buffered input into lines and feed the reply parser. */
static void
smtp_session_lines(struct smtp_session *s)
{
	const char	*text;
	char		*nl;
	size_t		 len, used, tlen;
	int		 r;

	while (s->state != S_CLOSED && s->state != S_BODY &&
	    s->state != S_TLS) {
		if ((nl = memchr(s->ibuf, '\n', s->ilen)) == NULL) {
			if (s->ilen == sizeof(s->ibuf))
				smtp_session_fail(s, "4.5.0", "reply line too "
				    "long from %s while %s", s->relay,
				    smtp_states[s->state].doing);
			return;
		}
		used = nl - s->ibuf + 1;
		len = used - 1;
		if (len > 0 && s->ibuf[len - 1] == '\r')
			len--;
		r = smtp_reply_line(&s->reply, s->ibuf, len, &text, &tlen);
		if (r != -1 && s->state == S_EHLO && s->reply.nlines > 1)
			smtp_caps_line(&s->caps, text, tlen);
		memmove(s->ibuf, s->ibuf + used, s->ilen - used);
		s->ilen -= used;
		if (r == -1) {
			smtp_session_fail(s, "4.5.0", "malformed reply from %s "
			    "while %s", s->relay, smtp_states[s->state].doing);
			return;
		}
		if (r == 1) {
			smtp_session_reply(s);
			smtp_reply_reset(&s->reply);
		}
	}
}

/* Why the last read or write failed: the TLS error, or errno's. */
static const char *
smtp_session_ioerr(struct smtp_session *s)
{
	return s->ssl != NULL ? s->tls_err : strerror(errno);
}

/* One read, through TLS when it is on: like read(2). */
static ssize_t
smtp_session_read(struct smtp_session *s)
{
	if (s->ssl == NULL)
		return read(s->fd, s->ibuf + s->ilen, sizeof(s->ibuf) - s->ilen);
	s->tls_rwant = 0;
	return smtp_tls_read(s->ssl, s->ibuf + s->ilen,
	    sizeof(s->ibuf) - s->ilen, &s->tls_rwant, s->tls_err,
	    sizeof(s->tls_err));
}

/*
 * Read what the server sent; EOF ends the session unless it was due.
 * TLS may hold decrypted data the socket no longer signals: read on
 * while it does and the state reads replies.
 */
static void
smtp_session_readable(struct smtp_session *s)
{
	ssize_t	 n;

	do {
		if (s->ilen == sizeof(s->ibuf)) {
			smtp_session_fail(s, "4.5.0", "reply line too long "
			    "from %s while %s", s->relay,
			    smtp_states[s->state].doing);
			return;
		}
		n = smtp_session_read(s);
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			if (s->state == S_QUIT || s->state == S_IDLE) {
				smtp_session_close(s);
				return;
			}
			smtp_session_fail(s, "4.4.2", "lost connection with %s "
			    "while %s%s%s", s->relay,
			    smtp_states[s->state].doing, n == -1 ? ": " : "",
			    n == -1 ? smtp_session_ioerr(s) : "");
			return;
		}
		if (s->state == S_IDLE) {
			/* Typically 421 on the server's idle timeout. */
			log_debug("%s: data on an idle connection: closing",
			    s->relay);
			smtp_session_close(s);
			return;
		}
		s->ilen += n;
		smtp_session_lines(s);
	} while (s->ssl != NULL && s->tls && s->state != S_CLOSED &&
	    s->state != S_BODY && smtp_tls_pending(s->ssl));
}

/* Write what is queued: 1 all written, 0 would block, -1 error. */
static int
smtp_session_flush(struct smtp_session *s)
{
	ssize_t	 n;

	while (s->opos < s->olen) {
		if (s->ssl != NULL) {
			s->tls_wwant = 0;
			n = smtp_tls_write(s->ssl, s->obuf + s->opos,
			    s->olen - s->opos, &s->tls_wwant, s->tls_err,
			    sizeof(s->tls_err));
		} else
			n = write(s->fd, s->obuf + s->opos, s->olen - s->opos);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return 0;
		if (n == -1)
			return -1;
		s->opos += n;
	}
	s->opos = s->olen = 0;
	return 1;
}

/* BODY: refill the buffer from the file while the socket takes data. */
static void
smtp_session_body(struct smtp_session *s)
{
	ssize_t	 n;
	int	 r;

	for (;;) {
		if (s->opos > 0 && SMTP_OBUF_MAX - s->olen < SMTP_DATA_ROOM) {
			memmove(s->obuf, s->obuf + s->opos, s->olen - s->opos);
			s->olen -= s->opos;
			s->opos = 0;
		}
		if (!s->data.eof && SMTP_OBUF_MAX - s->olen >= SMTP_DATA_ROOM) {
			n = smtp_data_fill(&s->data, s->job->fd,
			    s->obuf + s->olen, SMTP_OBUF_MAX - s->olen);
			if (n == -1) {
				smtp_session_fail(s, "4.3.0", "error reading "
				    "the message file: %s", strerror(errno));
				return;
			}
			s->olen += n;
		}
		if ((r = smtp_session_flush(s)) == -1)
			break;
		if (r == 0)
			return;
		if (s->data.eof) {
			smtp_session_enter(s, S_DOT);
			smtp_session_lines(s);	/* a reply read early */
			return;
		}
	}
	smtp_session_fail(s, "4.4.2", "lost connection with %s while %s: %s",
	    s->relay, smtp_states[s->state].doing, smtp_session_ioerr(s));
}

/* The non-blocking connect finished: connected, or why not. */
static void
smtp_session_connected(struct smtp_session *s)
{
	socklen_t	 len = sizeof(int);
	char		 ip[HOSTPORT_IPSTRLEN];
	int		 err = 0;

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0) {
		snprintf(s->job->relay, sizeof(s->job->relay), "none");
		errno = err;
		smtp_session_fail(s, "4.4.1", "connect to %s[%s]:%d: %s",
		    s->host, hostport_ntop((struct sockaddr *)&s->addr, ip,
		    sizeof(ip)), hostport_port((struct sockaddr *)&s->addr),
		    strerror(err));
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &s->job->t_conn);
	snprintf(s->job->relay, sizeof(s->job->relay), "%s", s->relay);
	smtp_reply_reset(&s->reply);
	smtp_session_enter(s, S_GREETING);
}

/* The state's timer fired: a failure, or the move it stands for. */
static void
smtp_session_timeout(struct smtp_session *s)
{
	char	 ip[HOSTPORT_IPSTRLEN];

	switch (s->state) {
	case S_START:
		smtp_session_mail(s);
		break;
	case S_CONNECT:
		snprintf(s->job->relay, sizeof(s->job->relay), "none");
		smtp_session_fail(s, "4.4.1", "connect to %s[%s]:%d: "
		    "Connection timed out", s->host,
		    hostport_ntop((struct sockaddr *)&s->addr, ip, sizeof(ip)),
		    hostport_port((struct sockaddr *)&s->addr));
		break;
	case S_IDLE:
		TAILQ_REMOVE(&idle_list, s, entry);
		idle_count--;
		s->idle = 0;
		smtp_session_quit(s);
		break;
	case S_QUIT:
		smtp_session_close(s);
		break;
	default:
		smtp_session_fail(s, "4.4.2", "conversation with %s timed "
		    "out while %s", s->relay, smtp_states[s->state].doing);
		break;
	}
}

/* The one I/O callback: dispatch the event, then re-arm for the state. */
static void
smtp_session_io(int fd, short ev, void *arg)
{
	struct smtp_session	*s = arg;

	s->ev_on = 0;
	s->in_cb = 1;
	if (ev & EV_TIMEOUT)
		smtp_session_timeout(s);
	else if (s->state == S_CONNECT)
		smtp_session_connected(s);
	else if (s->state == S_TLS)
		smtp_session_tls_step(s);
	else if (s->state == S_BODY)
		smtp_session_body(s);
	else {
		/* With TLS either event may serve either direction. */
		if (((ev & EV_WRITE) || s->ssl != NULL) &&
		    smtp_session_flush(s) == -1)
			smtp_session_fail(s, "4.4.2", "lost connection with "
			    "%s while %s: %s", s->relay,
			    smtp_states[s->state].doing,
			    smtp_session_ioerr(s));
		if (((ev & EV_READ) || s->ssl != NULL) &&
		    s->state != S_CLOSED && s->state != S_BODY)
			smtp_session_readable(s);
	}
	s->in_cb = 0;
	if (s->state == S_CLOSED)
		smtp_session_free(s);
	else
		smtp_session_update(s);
}

static struct smtp_session *
smtp_session_new(const struct smtp_dest *d, int fd)
{
	struct smtp_session	*s;
	char			 ip[HOSTPORT_IPSTRLEN];

	s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->host = xstrdup(d->name);
	memcpy(&s->addr, d->sa, d->salen);
	s->source = xstrdup(d->source);
	s->sni = d->sni != NULL ? xstrdup(d->sni) : NULL;
	if (d->user != NULL) {
		s->user = xstrdup(d->user);
		s->pass = xstrdup(d->pass != NULL ? d->pass : "");
	}
	s->notls = d->notls;
	s->policy = d->policy;
	s->obuf = xmalloc(SMTP_OBUF_MAX);
	snprintf(s->relay, sizeof(s->relay), "%s[%s]:%d", d->name,
	    hostport_ntop(d->sa, ip, sizeof(ip)), hostport_port(d->sa));
	return s;
}

/* A new connection for the job; the route hears how it went. */
int
smtp_session_open(struct smtp_job *job, const struct smtp_dest *d,
    char *why, size_t whylen)
{
	struct smtp_session	*s;
	int			 fd;

	if ((fd = smtp_conn_open(job->msgid, d, why, whylen)) < 0) {
		snprintf(job->relay, sizeof(job->relay), "none");
		log_debug("%s: %s", job->msgid, why);
		return fd;
	}
	s = smtp_session_new(d, fd);
	s->job = job;
	job->sess = s;
	memset(&job->t_conn, 0, sizeof(job->t_conn));
	memset(&job->t_mail, 0, sizeof(job->t_mail));
	log_debug("%s: connecting to %s%s%s%s%s, TLS %s", job->msgid,
	    s->relay, s->source[0] != '\0' ? " from " : "", s->source,
	    s->user != NULL ? " as " : "", s->user != NULL ? s->user : "",
	    tls_policy_name(s->policy));
	smtp_session_enter(s, S_CONNECT);
	smtp_session_update(s);
	return 0;
}

/* Same credentials: both none, or the same user and password. */
static int
smtp_session_same_cred(const struct smtp_session *s,
    const struct smtp_dest *d)
{
	if (s->user == NULL || d->user == NULL)
		return s->user == NULL && d->user == NULL;
	return strcmp(s->user, d->user) == 0 &&
	    strcmp(s->pass, d->pass != NULL ? d->pass : "") == 0;
}

/*
 * Hand an idle connection to the job: same address, same source, same
 * credentials (a session authenticated as one user must not carry
 * another's mail), and a TLS state the job's policy accepts: TLS, or a
 * plaintext session opened under the same policy (so that a session left
 * in plaintext by the none policy does not serve an opportunistic job).
 * Its TLS state goes with it.
 */
int
smtp_session_reuse(struct smtp_job *job, const struct smtp_dest *d)
{
	struct smtp_session	*s;

	TAILQ_FOREACH(s, &idle_list, entry)
		if (hostport_equal((struct sockaddr *)&s->addr, d->sa) &&
		    strcmp(s->source, d->source) == 0 &&
		    smtp_session_same_cred(s, d) &&
		    (s->tls || s->policy == d->policy))
			break;
	if (s == NULL)
		return -1;
	TAILQ_REMOVE(&idle_list, s, entry);
	idle_count--;
	s->idle = 0;
	s->job = job;
	job->sess = s;
	clock_gettime(CLOCK_MONOTONIC, &job->t_conn);
	memset(&job->t_mail, 0, sizeof(job->t_mail));
	snprintf(job->relay, sizeof(job->relay), "%s", s->relay);
	log_debug("%s: reusing the connection to %s%s", job->msgid, s->relay,
	    s->tls ? " (TLS)" : "");
	/* Still in RSET: MAIL goes out when its reply comes. */
	if (s->state == S_IDLE) {
		smtp_session_enter(s, S_START);
		smtp_session_update(s);
	}
	return 0;
}

/* The job is gone: drop the connection, mid-transaction or not. */
void
smtp_session_abort(struct smtp_session *s)
{
	smtp_session_detach(s);
	smtp_session_close(s);
}
