/*
 * data: the DATA phase, from the 354 to the final reply.
 *
 *   DATA -> MSG_QMGR_CREATE -> CREATE_OK (msgid, fd) -> 354
 *	-> Received: header + unstuffed message written to the fd
 *	-> CRLF.CRLF -> MSG_QMGR_COMMIT -> COMMIT_OK -> 250 queued as MSGID
 *
 * The message goes through a SMTPD_WBUF userspace buffer and plain
 * blocking write(2)s: the fd is a regular file, and a full buffer per
 * write keeps the system call count low.  smtpd closes its fd before the
 * commit; qmgr fsyncs its own descriptor of the same file, so nothing
 * smtpd wrote can be lost once qmgr says COMMIT_OK.
 *
 * A message that must be refused (too big, bare CR/LF, NUL, overlong line,
 * too many Received: headers, write error) is rolled back as soon as that
 * is known, so its spool file goes away at once; the rest of the input is
 * still read to the end of data and dropped, and the refusal is the reply
 * to the final dot.
 *
 * Until the end of its header section the message goes through the
 * mq_headers filter, which removes the x-mq-* fields and turns them into
 * message properties (DESIGN section 7) and counts Received: fields; the
 * body is written straight into the spool buffer.  The properties are
 * honoured only for a client that may relay: for any other the fields
 * are removed all the same, and the properties dropped with a log line.
 * With smtp-mq-headers off they are neither honoured nor removed.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json.h>

#include "fileio.h"
#include "log.h"
#include "mq_headers.h"
#include "xmalloc.h"
#include "smtpd.h"

static int	data_flush(struct session *);

/* DATA passed the command checks: ask qmgr for a spool file. */
void
data_start(struct session *s)
{
	if (spool_create(s) == -1) {
		session_reply(s, "451 4.3.0 Queue manager unavailable");
		session_log_reject(s, "DATA", NULL);
		return;
	}
	session_enter(s, S_WAIT_CREATE);
}

/* Close the spool fd and tell qmgr to drop the file. */
static void
data_discard(struct session *s, int err)
{
	if (s->data_err == DATA_E_NONE)
		s->data_err = err;
	if (s->spoolfd != -1) {
		close(s->spoolfd);
		s->spoolfd = -1;
		spool_rollback(s);
	}
	free(s->wbuf);
	s->wbuf = NULL;
	s->wlen = 0;
}

/* The transaction is over (or abandoned: RSET, QUIT, shutdown ...). */
void
data_abort(struct session *s)
{
	data_discard(s, DATA_E_NONE);
	if (s->mqh != NULL) {
		mq_headers_clear(s->mqh);
		free(s->mqh);
		s->mqh = NULL;
	}
}

/* Write the buffer out; on error the message is discarded. */
static int
data_flush(struct session *s)
{
	if (fd_write_all(s->spoolfd, s->wbuf, s->wlen) == -1) {
		log_warn("%s: spool write", s->msgid);
		data_discard(s, DATA_E_WRITE);
		return -1;
	}
	s->written += s->wlen;
	s->wlen = 0;
	return 0;
}

/* The trace header (RFC 5321 4.4), first line of the stored message. */
static void
data_received(struct session *s)
{
	char		 date[64], rcpt[SMTP_ADDR_MAX + 16], tls[256];
	struct tm	 tm;
	time_t		 now;
	int		 n;

	tls_comment(s, tls, sizeof(tls));
	now = time(NULL);
	/* localtime_r: no re-read of the zone file inside the chroot. */
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
	rcpt[0] = '\0';
	if (s->nrcpt == 1)
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>",
		    s->rcpts[0].addr);
	n = snprintf(s->wbuf, SMTPD_WBUF,
	    "Received: from %s (unknown [%s%s])\r\n"
	    "%s%s%s"
	    "\tby %s (mtad) with %s id %s%s; %s\r\n",
	    s->helo, s->peer.family == AF_INET6 ? "IPv6:" : "", s->peer_ip,
	    tls[0] != '\0' ? "\t" : "", tls, tls[0] != '\0' ? "\r\n" : "",
	    smtpd_env.hostname, session_proto(s), s->msgid, rcpt, date);
	s->wlen = n > 0 && n < SMTPD_WBUF ? (size_t)n : 0;
}

/* Output of the header filter: into the spool buffer, flushed as needed. */
static void
data_emit(void *arg, const char *buf, size_t len)
{
	struct session	*s = arg;
	size_t		 n;

	while (len > 0 && s->data_err == DATA_E_NONE) {
		if (s->wlen == SMTPD_WBUF && data_flush(s) == -1)
			return;
		n = SMTPD_WBUF - s->wlen;
		if (n > len)
			n = len;
		memcpy(s->wbuf + s->wlen, buf, n);
		s->wlen += n;
		buf += n;
		len -= n;
	}
}

/* qmgr created the spool file: 354, and the message may flow. */
void
data_created(struct session *s, const char *msgid, int fd)
{
	int	opts = 0;

	snprintf(s->msgid, sizeof(s->msgid), "%s", msgid);
	s->spoolfd = fd;
	s->wbuf = xmalloc(SMTPD_WBUF);
	s->wlen = 0;
	s->written = s->msgsize = 0;
	s->data_err = DATA_E_NONE;
	smtp_data_init(&s->framer);
	if (smtpd_env.mq_headers)
		opts |= MQH_F_STRIP;
	if (s->smtputf8)
		opts |= MQH_F_UTF8;
	s->mqh = xmalloc(sizeof(*s->mqh));
	mq_headers_init(s->mqh, opts, data_emit, s);
	log_info("%s: client=unknown[%s]", s->msgid, s->peer_ip);
	data_received(s);
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	session_resume(s, S_DATA);
}

/* qmgr refused (or is gone): the reply says why; the transaction stays. */
void
data_create_failed(struct session *s, unsigned code, const char *text)
{
	session_reply(s, "%u %s", code, text);
	session_log_reject(s, "DATA", NULL);
	session_resume(s, S_COMMAND);
}

/* What the framer saw so far decides whether the message is refused. */
static void
data_check(struct session *s)
{
	if (s->framer.flags & SMTP_DATA_F_BARE)
		data_discard(s, DATA_E_BARE);
	else if (s->framer.flags & SMTP_DATA_F_NUL)
		data_discard(s, DATA_E_NUL);
	else if (s->framer.flags & SMTP_DATA_F_LONG)
		data_discard(s, DATA_E_LONG);
	else if (smtpd_env.maxsize > 0 && s->msgsize > smtpd_env.maxsize)
		data_discard(s, DATA_E_TOOBIG);
	else if (s->mqh != NULL && s->mqh->nreceived > SMTPD_HOPS_MAX)
		data_discard(s, DATA_E_LOOP);
}

/* The reply to the final dot of a refused message. */
static void
data_refuse(struct session *s)
{
	switch (s->data_err) {
	case DATA_E_TOOBIG:
		session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		break;
	case DATA_E_BARE:
		session_reply(s, "554 5.6.0 Message contains bare CR or LF "
		    "characters");
		break;
	case DATA_E_NUL:
		session_reply(s, "554 5.6.0 Message contains NUL characters");
		break;
	case DATA_E_LONG:
		session_reply(s, "554 5.6.0 Message contains a line longer "
		    "than %d octets", SMTP_TEXT_LINE_MAX);
		break;
	case DATA_E_LOOP:
		session_reply(s, "554 5.4.6 Too many hops: over %d Received "
		    "headers", SMTPD_HOPS_MAX);
		break;
	case DATA_E_WRITE:
		session_reply(s, "451 4.3.0 Error writing message");
		break;
	default:
		session_reply(s, "451 4.3.0 Queue manager unavailable");
		break;
	}
	session_log_reject(s, "END-OF-MESSAGE", NULL);
	session_txn_reset(s);
	session_enter(s, S_COMMAND);
}

/* The property names, for a log line that shows no value. */
static void
data_prop_names(struct json_object *props, char *buf, size_t len)
{
	size_t	off = 0;
	int	n;

	buf[0] = '\0';
	json_object_object_foreach(props, key, val) {
		(void)val;
		n = snprintf(buf + off, len - off, "%s%s", off ? " " : "", key);
		if (n < 0 || (size_t)n >= len - off) {
			buf[off] = '\0';	/* no half name */
			break;
		}
		off += (size_t)n;
	}
}

/*
 * The message's properties from its x-mq-* fields, if the client may set
 * them; a client that may relay may also replace the envelope sender.
 */
static struct json_object *
data_properties(struct session *s)
{
	struct mq_headers	*h = s->mqh;
	struct json_object	*props;
	char			 names[256], esc[1024];

	if (h->nfields == 0)
		return json_object_new_object();
	if (!session_may_relay(s)) {
		log_info("%s: %u x-mq header(s) from unknown[%s] removed and "
		    "ignored: the client may not relay", s->msgid, h->nfields,
		    s->peer_ip);
		return json_object_new_object();
	}
	if (h->warn[0] != '\0')
		log_info("%s: x-mq headers: %s", s->msgid, h->warn);
	if (h->envelope != NULL) {
		log_info("%s: envelope sender <%s> from x-mq-envelope",
		    s->msgid, log_escape(esc, sizeof(esc), h->envelope,
		    strlen(h->envelope)));
		free(s->sender);
		s->sender = xstrdup(h->envelope);
	}
	props = mq_headers_props(h);
	data_prop_names(props, names, sizeof(names));
	if (names[0] != '\0')
		log_info("%s: properties from x-mq headers: %s", s->msgid,
		    names);
	return props;
}

/* Hand the written message to qmgr; -1 when qmgr cannot take it. */
static int
data_commit(struct session *s)
{
	char	*props;
	int	 r;

	props = txn_properties(s, data_properties(s));
	r = spool_commit(s, props);
	free(props);
	return r;
}

/* CRLF.CRLF: hand a valid message to qmgr, or refuse it. */
static void
data_end(struct session *s)
{
	if (s->data_err == DATA_E_NONE) {
		/* A message without a body: the header filter holds some. */
		mq_headers_end(s->mqh);
		data_check(s);
	}
	if (s->data_err == DATA_E_NONE)
		data_flush(s);
	if (s->data_err == DATA_E_NONE) {
		free(s->wbuf);
		s->wbuf = NULL;
		if (close(s->spoolfd) == -1) {
			log_warn("%s: spool close", s->msgid);
			s->spoolfd = -1;
			spool_rollback(s);
			s->data_err = DATA_E_WRITE;
		}
		s->spoolfd = -1;
	}
	if (s->data_err == DATA_E_NONE && data_commit(s) == -1) {
		spool_rollback(s);
		s->data_err = DATA_E_QMGR;
	}
	if (s->data_err != DATA_E_NONE) {
		data_refuse(s);
		return;
	}
	session_enter(s, S_WAIT_COMMIT);
}

/*
 * Frame the buffered input into the spool buffer; 0: input used up.
 * The header section goes through the x-mq filter first.
 */
int
data_input(struct session *s)
{
	static char	 scratch[4096];
	char		*out;
	size_t		 cap, used, outlen;
	int		 done, filter;

	if (s->inoff == s->inlen)
		return 0;
	if (s->data_err == DATA_E_NONE && SMTPD_WBUF - s->wlen < 2)
		data_flush(s);
	filter = s->data_err == DATA_E_NONE && !s->mqh->body;
	if (s->data_err == DATA_E_NONE && !filter) {
		out = s->wbuf + s->wlen;
		cap = SMTPD_WBUF - s->wlen;
	} else {
		/* Refused already: read on to the end, keep nothing. */
		out = scratch;
		cap = sizeof(scratch);
	}
	done = smtp_data_feed(&s->framer, s->inbuf + s->inoff,
	    s->inlen - s->inoff, &used, out, cap, &outlen);
	s->inoff += used;
	s->msgsize += outlen;
	if (filter)
		mq_headers_feed(s->mqh, out, outlen);
	else if (s->data_err == DATA_E_NONE)
		s->wlen += outlen;
	if (s->data_err == DATA_E_NONE)
		data_check(s);
	if (done)
		data_end(s);
	return 1;
}

/* COMMIT_OK: the message is durable, say so. */
void
data_committed(struct session *s)
{
	session_reply(s, "250 2.0.0 Ok: queued as %s", s->msgid);
	command_data_ok(s);
	log_debug("%s: queued, %llu octets, %zu recipient(s)", s->msgid,
	    (unsigned long long)s->written, s->nrcpt);
	session_txn_reset(s);
	session_resume(s, S_COMMAND);
}

/* COMMIT_FAIL, or qmgr went away before answering. */
void
data_commit_failed(struct session *s, unsigned code, const char *text)
{
	session_reply(s, "%u %s", code, text);
	session_log_reject(s, "END-OF-MESSAGE", NULL);
	session_txn_reset(s);
	session_resume(s, S_COMMAND);
}
