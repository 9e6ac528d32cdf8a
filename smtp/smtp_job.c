/*
 * Jobs from qmgr: MSG_SMTP_DELIVER in, MSG_SMTP_RESULT out.
 *
 * A job is one message to one destination for one or more recipients.
 * Each recipient ends the attempt with an outcome: delivered (2xx),
 * deferred (4xx, timeouts, lost connections, DNS trouble) or failed
 * (5xx, a domain that does not exist or does not take mail).  The first
 * outcome set sticks; when every recipient has one, smtp_job_done() sends
 * the result and logs one line per recipient in Postfix's shape:
 *
 *   ID: to=<rcpt>, relay=host[ip]:port, delay=0.31,
 *       delays=a/b/c/d, dsn=2.0.0, status=sent (250 2.0.0 Ok)
 * and, for an outcome other than sent, " stage=rcptto" (where it was
 * decided: connect, ehlo, starttls, auth, mailfrom, rcptto, data) last.
 *
 * with delays: a = time in the queue before this job (0 here), b =
 * connection setup including DNS, c = greeting and EHLO, d = the
 * transaction.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"
#include "proto.h"
#include "smtp.h"
#include "xmalloc.h"

static TAILQ_HEAD(, smtp_job)	 jobs = TAILQ_HEAD_INITIALIZER(jobs);
static size_t			 ips_turn;	/* rotation over "ips" */

double
smtp_elapsed(const struct timespec *from, const struct timespec *to)
{
	double	 d;

	d = (double)(to->tv_sec - from->tv_sec) +
	    (double)(to->tv_nsec - from->tv_nsec) / 1e9;
	return d < 0 ? 0 : d;
}

int
smtp_job_status(int code)
{
	if (code >= 200 && code < 300)
		return RCPT_DELIVERED;
	if (code >= 500 && code < 600)
		return RCPT_FAILED;
	return RCPT_DEFERRED;
}

/*
 * Can the address go on the wire inside <...>?  No controls, no angle
 * brackets, bounded.  Sets *utf8 when it holds non-ASCII octets.
 */
static int
smtp_job_addr_ok(const char *a, int *utf8)
{
	const unsigned char	*p;

	if (strlen(a) > SMTP_ADDR_MAX)
		return 0;
	for (p = (const unsigned char *)a; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return 0;
		if (*p >= 0x80)
			*utf8 = 1;
	}
	return 1;
}

static struct smtp_job *
smtp_job_find(uint32_t id)
{
	struct smtp_job	*j;

	TAILQ_FOREACH(j, &jobs, entry)
		if (j->id == id)
			return j;
	return NULL;
}

/*
 * The message's own TLS policy and source addresses.  A bad value is
 * ignored, as msgprops does: logged by name, never with its value.
 */
static void
smtp_job_props(struct smtp_job *j)
{
	struct props_route	 pr;

	props_route(j->props, &pr);
	if (pr.security_bad)
		log_warnx("%s: ignoring property security: not none, "
		    "opportunistic or required", j->msgid);
	if (pr.ips_bad)
		log_warnx("%s: ignoring property ips: not a list of at most "
		    "%d IP addresses", j->msgid, PROPS_IPS_MAX);
	j->policy = pr.security;
	if (pr.nips > 0) {
		j->ips = xreallocarray(NULL, pr.nips, sizeof(*j->ips));
		memcpy(j->ips, pr.ips, pr.nips * sizeof(*j->ips));
		j->nips = pr.nips;
		j->ipfirst = ips_turn++ % pr.nips;
	}
}

/* Read MSG_SMTP_DELIVER into a new job; fatal on a malformed payload. */
static struct smtp_job *
smtp_job_parse(struct msg *m)
{
	struct smtp_job	*j;
	uint32_t	 n, i, idx;
	const char	*s;

	j = xcalloc(1, sizeof(*j));
	j->id = m->hdr.peerid;
	j->msgid = xstrdup(msg_get_str(m));
	j->key = xstrdup(msg_get_str(m));
	j->sender = xstrdup(msg_get_str(m));
	j->source = xstrdup(msg_get_str(m));
	j->props = xstrdup(msg_get_str(m));
	j->size = msg_get_u64(m);
	j->data_off = msg_get_u64(m);
	j->data_len = msg_get_u64(m);
	n = msg_get_u32(m);
	for (i = 0; i < n && !m->err; i++) {
		idx = msg_get_u32(m);
		s = msg_get_str(m);
		if (m->err)
			break;
		j->rcpts = xreallocarray(j->rcpts, j->nrcpt + 1,
		    sizeof(*j->rcpts));
		memset(&j->rcpts[j->nrcpt], 0, sizeof(*j->rcpts));
		j->rcpts[j->nrcpt].idx = idx;
		j->rcpts[j->nrcpt].addr = xstrdup(s);
		j->nrcpt++;
	}
	j->fd = msg_take_fd(m);
	if (msg_end(m) == -1 || j->fd == -1 || n == 0 ||
	    j->data_off > INT64_MAX / 2 || j->data_len > INT64_MAX / 2)
		fatalx("bad MSG_SMTP_DELIVER from qmgr");
	if (smtp_job_find(j->id) != NULL)
		fatalx("MSG_SMTP_DELIVER: job %u already in flight", j->id);
	snprintf(j->relay, sizeof(j->relay), "none");
	clock_gettime(CLOCK_MONOTONIC, &j->t_start);
	smtp_job_props(j);
	return j;
}

/* MSG_SMTP_DELIVER: bad addresses fail at once, the rest are routed. */
void
smtp_job_deliver(struct msg *m)
{
	struct smtp_job	*j;
	size_t		 i, left = 0;

	j = smtp_job_parse(m);
	TAILQ_INSERT_TAIL(&jobs, j, entry);
	log_debug("%s: job %u for %s, %zu recipient(s)", j->msgid, j->id,
	    j->key, j->nrcpt);
	if (!smtp_job_addr_ok(j->sender, &j->smtputf8))
		smtp_job_rcpt_all(j, RCPT_FAILED, 0, "5.1.7",
		    "bad sender address syntax", NULL);
	for (i = 0; i < j->nrcpt; i++) {
		if (j->rcpts[i].addr[0] == '\0' ||
		    !smtp_job_addr_ok(j->rcpts[i].addr, &j->smtputf8))
			smtp_job_rcpt(j, &j->rcpts[i], RCPT_FAILED, 0, "5.1.3",
			    "bad recipient address syntax", NULL);
		if (!j->rcpts[i].done)
			left++;
	}
	if (left == 0)
		smtp_job_done(j);
	else
		smtp_route_start(j);
}

/*
 * The stage an outcome was decided at, for the RabbitMQ results: the
 * command a reply answered, else where the session was ("connect" when
 * no server was reached), else "".
 */
static const char *
smtp_job_stage(const struct smtp_job *j, const char *cmd)
{
	if (cmd != NULL && strcmp(cmd, "MAIL FROM") == 0)
		return "mailfrom";
	if (cmd != NULL && strcmp(cmd, "RCPT TO") == 0)
		return "rcptto";
	if (cmd != NULL && strcmp(cmd, "DATA") == 0)
		return "data";
	if (j->stage != NULL)
		return j->stage;
	return strcmp(j->relay, "none") == 0 ? "connect" : "";
}

/* The first outcome of a recipient sticks; later ones are ignored. */
void
smtp_job_rcpt(struct smtp_job *j, struct smtp_rcpt *r, int status, int code,
    const char *dsn, const char *text, const char *cmd)
{
	char	*p;

	if (r->done)
		return;
	r->done = 1;
	r->status = status;
	r->code = code;
	snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
	/* The class follows the outcome: a 3xx where none belongs defers. */
	r->dsn[0] = status == RCPT_DELIVERED ? '2' :
	    status == RCPT_FAILED ? '5' : '4';
	r->text = xstrndup(text, SMTP_TEXT_MAX);
	/* Reply texts come escaped; a domain in our own text might not. */
	for (p = r->text; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	r->cmd = cmd;
	r->stage = smtp_job_stage(j, cmd);
	snprintf(r->relay, sizeof(r->relay), "%s", j->relay);
}

void
smtp_job_rcpt_all(struct smtp_job *j, int status, int code, const char *dsn,
    const char *text, const char *cmd)
{
	size_t	 i;

	for (i = 0; i < j->nrcpt; i++)
		smtp_job_rcpt(j, &j->rcpts[i], status, code, dsn, text, cmd);
}

/* A delay as Postfix prints it: "0" when tiny, else up to 2 decimals. */
static const char *
smtp_job_fmt_delay(double d, char *buf, size_t len)
{
	char	*p;

	if (d < 0.005) {
		snprintf(buf, len, "0");
		return buf;
	}
	snprintf(buf, len, d >= 10 ? "%.1f" : "%.2f", d);
	if ((p = strchr(buf, '.')) != NULL) {
		p += strlen(p) - 1;
		while (*p == '0')
			*p-- = '\0';
		if (*p == '.')
			*p = '\0';
	}
	return buf;
}

/* The outcome line of one recipient. */
static void
smtp_job_log(const struct smtp_job *j, const struct smtp_rcpt *r,
    const struct timespec *now)
{
	static const char *names[] = { "sent", "deferred", "bounced" };
	char		 to[SMTP_ADDR_MAX * 4 + 1], what[SMTP_TEXT_MAX + 600];
	char		 dl[16], da[16], db[16], dc[16], dd[16];
	double		 b, c, d;

	if (j->t_conn.tv_sec == 0) {
		b = smtp_elapsed(&j->t_start, now);
		c = d = 0;
	} else {
		b = smtp_elapsed(&j->t_start, &j->t_conn);
		c = j->t_mail.tv_sec == 0 ? smtp_elapsed(&j->t_conn, now) :
		    smtp_elapsed(&j->t_conn, &j->t_mail);
		d = j->t_mail.tv_sec == 0 ? 0 : smtp_elapsed(&j->t_mail, now);
	}
	if (r->code == 0)
		snprintf(what, sizeof(what), "%s", r->text);
	else if (r->status == RCPT_DELIVERED)
		snprintf(what, sizeof(what), "%d %s %s", r->code, r->dsn,
		    r->text);
	else
		snprintf(what, sizeof(what), "host %.*s said: %d %s %s%s%s%s",
		    (int)(strrchr(r->relay, ':') != NULL ?
		    strrchr(r->relay, ':') - r->relay : (int)strlen(r->relay)),
		    r->relay, r->code, r->dsn, r->text,
		    r->cmd != NULL ? " (in reply to " : "",
		    r->cmd != NULL ? r->cmd : "",
		    r->cmd != NULL ? " command)" : "");
	/*
	 * The stage goes after the reply text: Postfix-reading tools match
	 * "dsn=..., status=X(.*)$", so nothing may stand between the fields.
	 */
	log_info("%s: to=<%s>, relay=%s, delay=%s, delays=%s/%s/%s/%s, "
	    "dsn=%s, status=%s (%s)%s%s", j->msgid,
	    log_escape(to, sizeof(to), r->addr, strlen(r->addr)), r->relay,
	    smtp_job_fmt_delay(smtp_elapsed(&j->t_start, now), dl,
	    sizeof(dl)), smtp_job_fmt_delay(0, da, sizeof(da)),
	    smtp_job_fmt_delay(b, db, sizeof(db)),
	    smtp_job_fmt_delay(c, dc, sizeof(dc)),
	    smtp_job_fmt_delay(d, dd, sizeof(dd)), r->dsn,
	    names[r->status], what,
	    r->status != RCPT_DELIVERED && r->stage != NULL &&
	    *r->stage != '\0' ? " stage=" : "",
	    r->status != RCPT_DELIVERED && r->stage != NULL ? r->stage : "");
}

static void
smtp_job_free(struct smtp_job *j)
{
	size_t	 i;

	TAILQ_REMOVE(&jobs, j, entry);
	smtp_sink_forget(j);
	smtp_route_free(j->route);
	if (j->fd != -1)
		close(j->fd);
	for (i = 0; i < j->nrcpt; i++) {
		free(j->rcpts[i].addr);
		free(j->rcpts[i].text);
	}
	free(j->rcpts);
	free(j->msgid);
	free(j->key);
	free(j->sender);
	free(j->source);
	free(j->ips);
	xfreestr(j->props);	/* may hold smarthost credentials */
	free(j);
}

/* Send MSG_SMTP_RESULT with every recipient, log each, free the job. */
void
smtp_job_done(struct smtp_job *j)
{
	struct timespec	 now;
	struct msgb	*b;
	size_t		 i;

	if (j->sess != NULL)
		log_panic("job %u done while a session works for it", j->id);
	/* Every path sets outcomes; this is only a net. */
	smtp_job_rcpt_all(j, RCPT_DEFERRED, 0, "4.3.0",
	    "delivery ended without an outcome", NULL);
	clock_gettime(CLOCK_MONOTONIC, &now);
	b = msgb_new(MSG_SMTP_RESULT, j->id);
	msgb_u32(b, j->nrcpt);
	for (i = 0; i < j->nrcpt; i++) {
		msgb_u32(b, j->rcpts[i].idx);
		msgb_u32(b, j->rcpts[i].status);
		msgb_u32(b, j->rcpts[i].code);
		msgb_str(b, j->rcpts[i].dsn);
		msgb_str(b, j->rcpts[i].text);
		msgb_str(b, j->rcpts[i].relay);
		msgb_str(b, j->rcpts[i].stage != NULL ?
		    j->rcpts[i].stage : "");
		smtp_job_log(j, &j->rcpts[i], &now);
	}
	smtp_qmgr_send(b);
	smtp_job_free(j);
}

/* qmgr went away: forget every job without a result. */
void
smtp_job_abort_all(void)
{
	struct smtp_job	*j;

	while ((j = TAILQ_FIRST(&jobs)) != NULL) {
		log_debug("%s: job %u dropped", j->msgid, j->id);
		if (j->sess != NULL)
			smtp_session_abort(j->sess);
		j->sess = NULL;
		smtp_job_free(j);
	}
}
