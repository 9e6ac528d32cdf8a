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
 * A message that must be refused (too big, bare CR/LF, overlong line,
 * write error) is rolled back as soon as that is known, so its spool file
 * goes away at once; the rest of the input is still read to the end of
 * data and dropped, and the refusal is the reply to the final dot.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "xmalloc.h"
#include "smtpd.h"

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

/* The transaction is abandoned (RSET, QUIT, disconnect, shutdown). */
void
data_abort(struct session *s)
{
	data_discard(s, DATA_E_NONE);
}

/* Write the buffer out; on error the message is discarded. */
static int
data_flush(struct session *s)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < s->wlen) {
		n = write(s->spoolfd, s->wbuf + off, s->wlen - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("%s: spool write", s->msgid);
			data_discard(s, DATA_E_WRITE);
			return -1;
		}
		off += (size_t)n;
	}
	s->written += s->wlen;
	s->wlen = 0;
	return 0;
}

/* The trace header (RFC 5321 4.4), first line of the stored message. */
static void
data_received(struct session *s)
{
	char		 date[64], rcpt[SMTP_ADDR_MAX + 16];
	struct tm	 tm;
	time_t		 now;
	int		 n;

	now = time(NULL);
	/* localtime_r: no re-read of the zone file inside the chroot. */
	if (localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
	rcpt[0] = '\0';
	if (s->nrcpt == 1)
		snprintf(rcpt, sizeof(rcpt), "\r\n\tfor <%s>", s->rcpts[0]);
	n = snprintf(s->wbuf, SMTPD_WBUF,
	    "Received: from %s (unknown [%s%s])\r\n"
	    "\tby %s (mtad) with %s id %s%s; %s\r\n",
	    s->helo, s->peer.family == AF_INET6 ? "IPv6:" : "", s->peer_ip,
	    smtpd_env.hostname, (s->flags & SF_EHLO) ? "ESMTP" : "SMTP",
	    s->msgid, rcpt, date);
	s->wlen = n > 0 && n < SMTPD_WBUF ? (size_t)n : 0;
}

/* qmgr created the spool file: 354, and the message may flow. */
void
data_created(struct session *s, const char *msgid, int fd)
{
	snprintf(s->msgid, sizeof(s->msgid), "%s", msgid);
	s->spoolfd = fd;
	s->wbuf = xmalloc(SMTPD_WBUF);
	s->wlen = 0;
	s->written = s->msgsize = 0;
	s->data_err = DATA_E_NONE;
	smtp_data_init(&s->framer);
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
	else if (s->framer.flags & SMTP_DATA_F_LONG)
		data_discard(s, DATA_E_LONG);
	else if (smtpd_env.maxsize > 0 && s->msgsize > smtpd_env.maxsize)
		data_discard(s, DATA_E_TOOBIG);
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
	case DATA_E_LONG:
		session_reply(s, "554 5.6.0 Message contains a line longer "
		    "than %d octets", SMTP_TEXT_LINE_MAX);
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

/* CRLF.CRLF: hand a valid message to qmgr, or refuse it. */
static void
data_end(struct session *s)
{
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
	if (s->data_err == DATA_E_NONE && spool_commit(s) == -1) {
		spool_rollback(s);
		s->data_err = DATA_E_QMGR;
	}
	if (s->data_err != DATA_E_NONE) {
		data_refuse(s);
		return;
	}
	session_enter(s, S_WAIT_COMMIT);
}

/* Frame the buffered input into the spool buffer; 0: input used up. */
int
data_input(struct session *s)
{
	static char	 scratch[4096];
	char		*out;
	size_t		 cap, used, outlen;
	int		 done;

	if (s->inoff == s->inlen)
		return 0;
	if (s->data_err == DATA_E_NONE && SMTPD_WBUF - s->wlen < 2)
		data_flush(s);
	if (s->data_err == DATA_E_NONE) {
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
	if (s->data_err == DATA_E_NONE) {
		s->wlen += outlen;
		data_check(s);
	}
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
