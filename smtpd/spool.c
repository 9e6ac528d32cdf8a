/*
 * spool: smtpd's side of the spool protocol with qmgr (proto.h).
 *
 *	MSG_QMGR_CREATE (peerid = request id)
 *	    -> CREATE_OK (msgid, fd) | CREATE_FAIL (code, text)
 *	MSG_QMGR_COMMIT (peerid = request id; msgid, envelope, size,
 *	    properties, recipients with NOTIFY and ORCPT)
 *	    -> COMMIT_OK (msgid) | COMMIT_FAIL (code, text)
 *	MSG_QMGR_ROLLBACK (msgid): no answer
 *
 * Every request waits in a list under its id until qmgr answers.  A
 * session that goes away leaves its request behind with no session
 * (spool_detach), so the late answer is still recognised: a spool file
 * created for nobody is rolled back at once.  An answer to an id that was
 * never asked, or asked for something else, is a broken qmgr: fatal.
 * The list holds at most one request per session, so a linear search is
 * enough.
 *
 * When qmgr goes away (EOF, or a new channel after it restarted), every
 * waiting session is answered 451 and the generation number changes: a
 * session still receiving a message for the old qmgr then cannot commit
 * it to the new one, which never heard of that msgid.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "dsn.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"
#include "smtpd.h"

#define SPOOL_UNAVAILABLE	"4.3.0 Queue manager unavailable"

struct spool_req {
	TAILQ_ENTRY(spool_req)	 entry;
	uint32_t		 id;
	int			 type;	/* MSG_QMGR_CREATE or _COMMIT */
	struct session		*s;	/* NULL: the client left */
};

static TAILQ_HEAD(, spool_req)	spool_reqs = TAILQ_HEAD_INITIALIZER(spool_reqs);
static struct chan		*spool_chan;
static uint32_t			 spool_gen;
static uint32_t			 spool_nextid;

static void	spool_dispatch(struct chan *, struct msg *, void *);

/* Remember a request until its answer arrives. */
static struct spool_req *
spool_req_new(struct session *s, int type)
{
	struct spool_req	*req;

	req = xcalloc(1, sizeof(*req));
	if (++spool_nextid == 0)
		spool_nextid = 1;
	req->id = spool_nextid;
	req->type = type;
	req->s = s;
	s->req = req;
	TAILQ_INSERT_TAIL(&spool_reqs, req, entry);
	return req;
}

/* Take the request an answer is for; returns its session (or NULL). */
static struct session *
spool_req_pop(struct msg *m, int type)
{
	struct spool_req	*req;
	struct session		*s;

	TAILQ_FOREACH(req, &spool_reqs, entry)
		if (req->id == m->hdr.peerid)
			break;
	if (req == NULL)
		fatalx("%s from qmgr for unknown request %u",
		    msg_name(m->hdr.type), m->hdr.peerid);
	if (req->type != type)
		fatalx("%s from qmgr answers a %s", msg_name(m->hdr.type),
		    msg_name(req->type));
	TAILQ_REMOVE(&spool_reqs, req, entry);
	if ((s = req->s) != NULL)
		s->req = NULL;
	free(req);
	return s;
}

/* qmgr is gone: answer every waiting session, forget the channel. */
static void
spool_lost(void)
{
	struct spool_req	*req;
	struct session		*s;
	int			 type;

	chan_free(spool_chan);
	spool_chan = NULL;
	spool_gen++;
	while ((req = TAILQ_FIRST(&spool_reqs)) != NULL) {
		TAILQ_REMOVE(&spool_reqs, req, entry);
		s = req->s;
		type = req->type;
		free(req);
		if (s == NULL)
			continue;
		s->req = NULL;
		if (type == MSG_QMGR_CREATE)
			data_create_failed(s, 451, SPOOL_UNAVAILABLE);
		else
			data_commit_failed(s, 451, SPOOL_UNAVAILABLE);
	}
}

/* A channel to qmgr, at setup or after qmgr restarted. */
void
spool_set_chan(int fd)
{
	if (spool_chan != NULL) {
		log_info("new qmgr channel, dropping the old one");
		spool_lost();
	}
	spool_chan = chan_new(fd, PROC_SMTPD, PROC_QMGR, 0, spool_dispatch,
	    NULL);
	spool_gen++;
}

/* DATA: ask for a spool file; -1 when qmgr is unavailable. */
int
spool_create(struct session *s)
{
	struct spool_req	*req;

	if (spool_chan == NULL)
		return -1;
	req = spool_req_new(s, MSG_QMGR_CREATE);
	s->reqid = req->id;
	s->spool_gen = spool_gen;
	chan_send(spool_chan, msgb_new(MSG_QMGR_CREATE, req->id));
	return 0;
}

/*
 * End of data: the envelope for the file written, with its properties
 * JSON text; -1 if qmgr changed.
 */
int
spool_commit(struct session *s, const char *props)
{
	struct spool_req	*req;
	struct msgb		*b;
	struct smtpd_rcpt	*r;
	char			 notify[DSN_NOTIFY_TEXT_MAX];
	size_t			 i;

	if (spool_chan == NULL || s->spool_gen != spool_gen)
		return -1;
	req = spool_req_new(s, MSG_QMGR_COMMIT);
	b = msgb_new(MSG_QMGR_COMMIT, req->id);
	msgb_str(b, s->msgid);
	msgb_str(b, s->sender);
	msgb_str(b, s->helo);
	msgb_str(b, s->peer_ip);
	msgb_str(b, s->local_ip);
	msgb_str(b, s->bind_ip);
	msgb_u64(b, s->written);
	msgb_str(b, props);
	msgb_u32(b, (uint32_t)s->nrcpt);
	/* Per recipient: address, NOTIFY ("" = not given), ORCPT. */
	for (i = 0; i < s->nrcpt; i++) {
		r = &s->rcpts[i];
		msgb_str(b, r->addr);
		msgb_str(b, dsn_notify_format(r->notify, notify));
		msgb_str(b, r->orcpt);
	}
	chan_send(spool_chan, b);
	return 0;
}

/* Abandon the session's spool file, if the qmgr that made it is there. */
void
spool_rollback(struct session *s)
{
	struct msgb	*b;

	if (spool_chan == NULL || s->spool_gen != spool_gen ||
	    s->msgid[0] == '\0')
		return;
	b = msgb_new(MSG_QMGR_ROLLBACK, s->reqid);
	msgb_str(b, s->msgid);
	chan_send(spool_chan, b);
}

/* The session is being freed: its pending answer will find nobody. */
void
spool_detach(struct session *s)
{
	if (s->req != NULL) {
		s->req->s = NULL;
		s->req = NULL;
	}
}

/* Before exit: make sure the last ROLLBACKs are sent. */
void
spool_flush(void)
{
	if (spool_chan != NULL && chan_flush_sync(spool_chan) == -1)
		log_warnx("qmgr channel: flush failed");
}

/* qmgr's message ids appear in logs and headers: keep them plain. */
static int
spool_valid_msgid(const char *id)
{
	size_t	len = strlen(id), i;

	if (len == 0 || len >= SMTPD_MSGID_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-' &&
		    id[i] != '_' && id[i] != '.')
			return 0;
	return 1;
}

static void
spool_create_ok(struct msg *m)
{
	struct session	*s;
	struct msgb	*b;
	const char	*msgid;
	int		 fd;

	msgid = msg_get_str(m);
	if (msg_end(m) == -1 || !spool_valid_msgid(msgid))
		fatalx("malformed MSG_QMGR_CREATE_OK from qmgr");
	if ((fd = msg_take_fd(m)) == -1)
		fatalx("MSG_QMGR_CREATE_OK from qmgr without a descriptor");
	if ((s = spool_req_pop(m, MSG_QMGR_CREATE)) == NULL) {
		/* The client left while qmgr created the file. */
		close(fd);
		b = msgb_new(MSG_QMGR_ROLLBACK, m->hdr.peerid);
		msgb_str(b, msgid);
		chan_send(spool_chan, b);
		return;
	}
	data_created(s, msgid, fd);
}

/*
 * The reply text of a CREATE_FAIL/COMMIT_FAIL as one safe SMTP line,
 * with an enhanced status code in front if qmgr gave none.
 */
static void
spool_fail_text(unsigned code, const char *text, char *buf, size_t len)
{
	size_t	off = 0, i;

	if (!(isdigit((unsigned char)text[0]) && text[1] == '.'))
		off = (size_t)snprintf(buf, len, "%u.3.0 ", code / 100);
	for (i = 0; text[i] != '\0' && off < len - 1; i++, off++)
		buf[off] = ((unsigned char)text[i] < ' ' || text[i] == 0x7f) ?
		    ' ' : text[i];
	buf[off] = '\0';
}

static void
spool_fail(struct msg *m)
{
	struct session	*s;
	const char	*text;
	char		 buf[256];
	unsigned	 code;
	int		 type = m->hdr.type;

	code = msg_get_u32(m);
	text = msg_get_str(m);
	if (msg_end(m) == -1 || code < 400 || code > 599)
		fatalx("malformed %s from qmgr", msg_name(type));
	s = spool_req_pop(m, type == MSG_QMGR_CREATE_FAIL ?
	    MSG_QMGR_CREATE : MSG_QMGR_COMMIT);
	if (s == NULL)
		return;
	spool_fail_text(code, text, buf, sizeof(buf));
	if (type == MSG_QMGR_CREATE_FAIL)
		data_create_failed(s, code, buf);
	else
		data_commit_failed(s, code, buf);
}

static void
spool_commit_ok(struct msg *m)
{
	struct session	*s;
	const char	*msgid;

	msgid = msg_get_str(m);
	if (msg_end(m) == -1 || !spool_valid_msgid(msgid))
		fatalx("malformed MSG_QMGR_COMMIT_OK from qmgr");
	if ((s = spool_req_pop(m, MSG_QMGR_COMMIT)) == NULL) {
		log_info("%s: queued, but the client left before the reply",
		    msgid);
		return;
	}
	if (strcmp(msgid, s->msgid) != 0)
		fatalx("MSG_QMGR_COMMIT_OK for %s, expected %s", msgid,
		    s->msgid);
	data_committed(s);
}

static void
spool_dispatch(struct chan *c, struct msg *m, void *arg)
{
	if (m == NULL) {
		log_warnx("qmgr channel closed");
		spool_lost();
		return;
	}
	switch (m->hdr.type) {
	case MSG_QMGR_CREATE_OK:
		spool_create_ok(m);
		break;
	case MSG_QMGR_CREATE_FAIL:
	case MSG_QMGR_COMMIT_FAIL:
		spool_fail(m);
		break;
	case MSG_QMGR_COMMIT_OK:
		spool_commit_ok(m);
		break;
	default:
		fatalx("unexpected %s from qmgr", msg_name(m->hdr.type));
	}
}
