/*
 * Delivery status notifications to the sender: bounces (Action: failed),
 * delay warnings (delayed) and, when NOTIFY asks, success reports
 * (delivered).  qmgr_deliver.c decides who is reported; this file reads
 * the original from the spool, has common/dsn.c build the RFC 3464
 * report, and queues it as a new message from <> to the original sender
 * through the same commit steps as mail from smtpd (a slot file, synced,
 * qmgr_spool.c), so that it is durable and routed like any other message:
 * through the smarthost when one is set.  Postfix's log line says so:
 *
 *	ID: sender non-delivery notification: BOUNCEID
 *
 * What is returned: for a failure, the whole original when RET is not
 * HDRS and it is at most DSN_FULL_LIMIT octets, else its header; for a
 * delay or a success, the header only (RFC 3461 4.3).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "fileio.h"
#include "log.h"
#include "qmgr.h"
#include "xmalloc.h"

/* A report for up to cap recipients of m; lists are made on first use. */
void
qmgr_report_init(struct qmgr_report *rep, struct qmgr_msg *m, size_t cap)
{
	memset(rep, 0, sizeof(*rep));
	rep->msg = m;
	rep->cap = cap;
}

void
qmgr_report_add(struct qmgr_report *rep, int action, struct qmgr_rcpt *r)
{
	if (action < 0 || action > 2 || rep->n[action] >= rep->cap)
		log_panic("%s: report of %s is full", __func__,
		    rep->msg->env.id);
	if (rep->rcpts[action] == NULL)
		rep->rcpts[action] = xcalloc(rep->cap,
		    sizeof(*rep->rcpts[action]));
	rep->rcpts[action][rep->n[action]++] = r;
}

void
qmgr_report_free(struct qmgr_report *rep)
{
	int	 i;

	for (i = 0; i < 3; i++)
		free(rep->rcpts[i]);
	memset(rep, 0, sizeof(*rep));
}

/*
 * The original message from its slot: up to DSN_FULL_LIMIT octets when
 * full, else its header (at most DSN_HEADER_LIMIT, cut at a line end).
 */
static char *
read_orig(const struct qmgr_msg *m, int full, size_t *lenp)
{
	char	*buf;
	size_t	 limit = full ? DSN_FULL_LIMIT : DSN_HEADER_LIMIT, len;
	ssize_t	 n;

	buf = xmalloc(limit + 1);
	n = qmgr_spool_read_data(m, buf, limit);
	if (n == -1) {
		free(buf);
		return NULL;
	}
	len = (size_t)n;
	if (!full) {
		len = dsn_header_len(buf, len);
		/* A header larger than the limit: keep whole lines. */
		while (len > 0 && buf[len - 1] != '\n')
			len--;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

/* "host[ip]:port" as the worker reports it: the host, "" for none. */
static char *
relay_host(const char *relay)
{
	size_t	 n = strcspn(relay, "[");

	if (strcmp(relay, "none") == 0)
		return xstrdup("");
	return xstrndup(relay, n);
}

/* Why an expired recipient failed, in words. */
static const char *
expiry_reason(const struct qmgr_msg *m, const struct envelope_rcpt *er)
{
	if (strcmp(er->status, "4.4.7") != 0)
		return NULL;
	if (m->props->maxattempts != 0 && er->attempts >= m->props->maxattempts)
		return "maximum number of delivery attempts reached";
	return "delivery time expired";
}

/* The report's recipients; the remote MTA names are allocated. */
static struct dsn_rcpt *
report_rcpts(const struct qmgr_msg *m, int action, struct qmgr_rcpt **rcpts,
    size_t n, int64_t now)
{
	struct dsn_rcpt		*dr;
	struct envelope_rcpt	*er;
	const char		*why;
	size_t			 i;

	dr = xcalloc(n, sizeof(*dr));
	for (i = 0; i < n; i++) {
		er = &m->env.rcpts[rcpts[i]->idx];
		dr[i].address = er->address;
		dr[i].orcpt = er->orcpt;
		dr[i].action = action;
		dr[i].status = er->status;
		dr[i].remote_mta = relay_host(er->relay);
		dr[i].diag = er->last;
		dr[i].diag_smtp = er->code != 0;
		dr[i].reason = (why = expiry_reason(m, er)) != NULL ? why : "";
		dr[i].last_attempt = now;
		if (action == DSN_ACTION_DELAYED)
			dr[i].retry_until = qmgr_deliver_expiry(m);
	}
	return dr;
}

static void
report_rcpts_free(struct dsn_rcpt *dr, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		free((char *)dr[i].remote_mta);
	free(dr);
}

/* Build the DSN text for message m into a new spool file named bid. */
static char *
bounce_text(struct qmgr_msg *m, int action, struct qmgr_rcpt **rcpts,
    size_t n, int64_t now, const char *bid, size_t *lenp)
{
	struct dsn_report	 rep;
	struct dsn_rcpt		*dr;
	char			*orig, *text, *boundary, *mid;
	size_t			 olen;
	int			 full;

	full = action == DSN_ACTION_FAILED && m->props->ret != DSN_RET_HDRS &&
	    m->env.size <= DSN_FULL_LIMIT;
	if ((orig = read_orig(m, full, &olen)) == NULL) {
		log_warn("%s: reading the message for its DSN", m->env.id);
		return NULL;
	}
	xasprintf(&boundary, "%s.%lld/%s", bid, (long long)now,
	    qmgr.hostname);
	xasprintf(&mid, "<%lld.%s@%s>", (long long)now, bid, qmgr.hostname);
	dr = report_rcpts(m, action, rcpts, n, now);
	memset(&rep, 0, sizeof(rep));
	rep.reporting_mta = qmgr.hostname;
	rep.queue_id = m->env.id;
	rep.sender = m->env.sender;
	rep.envid = m->props->envid != NULL ? m->props->envid : "";
	rep.boundary = boundary;
	rep.message_id = mid;
	rep.arrival = m->env.received;
	rep.now = now;
	rep.action = action;
	rep.full = full;
	rep.orig = orig;
	rep.origlen = olen;
	rep.rcpts = dr;
	rep.nrcpt = n;
	text = dsn_build(&rep, lenp);
	report_rcpts_free(dr, n);
	free(boundary);
	free(mid);
	free(orig);
	return text;
}

/*
 * Queue one DSN of action about rcpts[0..n) of m to m's sender: 0 when
 * it is durable in the queue, -1 (logged) when it could not be made.
 */
int
qmgr_bounce_send(struct qmgr_msg *m, int action, struct qmgr_rcpt **rcpts,
    size_t n, int64_t now)
{
	static const char *kinds[] = {
		[DSN_ACTION_FAILED] = "non-delivery",
		[DSN_ACTION_DELAYED] = "delay",
		[DSN_ACTION_DELIVERED] = "delivery status",
	};
	struct envelope	 env;
	struct qmgr_slot slot;
	char		 bid[MSGID_SIZE], *text;
	size_t		 len;
	int		 fd;

	if ((fd = qmgr_spool_new(bid, &slot)) == -1) {
		log_warn("%s: cannot create a DSN file", m->env.id);
		return -1;
	}
	if ((text = bounce_text(m, action, rcpts, n, now, bid, &len)) == NULL) {
		qmgr_spool_discard(&slot, fd);
		return -1;
	}
	if (fd_write_all(fd, text, len) == -1) {
		log_warn("%s: writing DSN %s", m->env.id, bid);
		free(text);
		qmgr_spool_discard(&slot, fd);
		return -1;
	}
	free(text);

	envelope_init(&env);
	memcpy(env.id, bid, MSGID_SIZE);
	env.sender = xstrdup("");
	env.received = now;
	env.client = xstrdup("localhost[127.0.0.1]");
	env.local_ip = xstrdup("");
	env.helo = xstrdup("");
	env.size = len;
	env.properties = xstrdup("{}");
	envelope_add_rcpt(&env, m->env.sender, now);
	/* Closes fd, success or not. */
	if (qmgr_spool_inject(fd, &slot, &env) == -1)
		return -1;
	log_info("%s: sender %s notification: %s", m->env.id, kinds[action],
	    bid);
	return 0;
}
