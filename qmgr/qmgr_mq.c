/*
 * The RabbitMQ bridge (DESIGN section 6): off unless rabbitmq-address is
 * set.  qmgr_amqp.c holds the connection; this file decides what goes
 * through it.
 *
 * Inbound.  A message committed to the spool (from smtpd, a DSN, or found
 * at recovery) is not scheduled for delivery: it is published, one JSON
 * per recipient (envelope, recipient, mime, its properties, ips), to
 * rabbitmq-inbox (default: the outbox), persistent and mandatory.  A
 * recipient counts as done (state "delivered" in the envelope) on a
 * confirm without a return; the message leaves the spool when every
 * recipient is done.  A returned or nacked publish is logged and tried
 * again after MQ_RETRY_DELAY; one lost with the connection is published
 * again after the reconnection.  At most MQ_INBOUND_WINDOW messages are
 * waiting for confirms at once.  Intake answers 452 4.3.1 once
 * rabbitmq-spool-max messages wait in the spool (qmgr_mq_full).
 *
 * Outbox.  Each message consumed from rabbitmq-outbox (manual acks,
 * prefetch rabbitmq-prefetch) is checked: not JSON, not an object, no
 * recipient, no mime, or addresses that cannot go into SMTP send it to
 * rabbitmq-failure with a "reason" (acked once that publish is
 * confirmed).  A good one becomes a transient message: its mime is
 * written to a slot that is never committed (free again at every start:
 * the broker holds the durable copy), its envelope lives in memory only,
 * with the JSON (without mime) as its properties and the number of
 * entries of its "results" array as its attempts so far.  It is
 * scheduled and delivered by the smtp workers like a spool message.
 * After each attempt (qmgr_mq_settle, from qmgr_deliver.c) the JSON
 * without mime plus one more "results" entry goes to rabbitmq-results,
 * and when final to rabbitmq-success or rabbitmq-failure; a deferral
 * goes, with its mime, to rabbitmq-retry with an expiration (ms) from the
 * retry schedule.
 * The consumed message is acked when every one of those publishes is
 * confirmed; a nack or return makes them go again after MQ_RETRY_DELAY.
 * Without rabbitmq-retry a deferred message stays in qmgr's own
 * scheduler, unacked.  When the connection is lost the delivery tags die
 * with it: the broker gives those messages again (to us or another
 * instance), so qmgr forgets every outbox message that is not in flight,
 * and lets those in flight end without publishing anything.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dsn.h"
#include "fileio.h"
#include "json_strict.h"
#include "log.h"
#include "props_smarthost.h"
#include "proto.h"
#include "qmgr.h"
#include "xmalloc.h"

#define MQ_INBOUND_WINDOW	1000	/* messages waiting for confirms */
#define MQ_RETRY_DELAY		5	/* seconds after a nack or return */
#define MQ_ADDR_MAX		512
#define MQ_LOG_TEXT		512
#define MQ_JSON_FLAGS		(JSON_C_TO_STRING_PLAIN | \
				    JSON_C_TO_STRING_NOSLASHESCAPE)

struct qmgr_mq {
	int			 kind;
#define MQ_INBOUND		1
#define MQ_OUTBOX		2
	uint64_t		 serial;	/* names it in callbacks */
	struct qmgr_msg		*m;
	int			 list;
#define MQ_L_NONE		0
#define MQ_L_WAITING		1	/* inbound, to publish */
#define MQ_L_DELAYED		2	/* to publish again later */
	TAILQ_ENTRY(qmgr_mq)	 entry;
	TAILQ_ENTRY(qmgr_mq)	 oentry;	/* outbox: all of them */
	size_t			 inflight;	/* publishes to be confirmed */
	int			 failed;	/* one returned or nacked */
	int			 lost;		/* one lost with the connection */
	int			 progress;	/* a recipient got published */

	/* outbox */
	uint64_t		 tag;
	uint32_t		 gen;
	struct json_object	*json;		/* the input without mime */
	struct json_object	*mime;
	int			 outcome;
#define MQ_OUT_FINAL		1
#define MQ_OUT_RETRY		2
	int			 orphan;	/* its tag died: publish nothing */
	int64_t			 expiration;	/* retry TTL, ms */
};

/* What a confirm callback gets: the message by id, checked by serial. */
struct mq_ref {
	char		 id[MSGID_SIZE];
	uint64_t	 serial;
	size_t		 idx;
	uint64_t	 tag;		/* outbox rejects only */
	uint32_t	 gen;
};

TAILQ_HEAD(mq_list, qmgr_mq);

static struct {
	struct mq_list	 waiting;
	struct mq_list	 delayed;
	struct mq_list	 outbox;
	size_t		 ninbound;	/* inbound messages in the spool */
	size_t		 inbound_inflight;	/* of them, publishing */
	uint64_t	 serial;
	struct event	 delay_ev;
	int		 delay_armed;
} mq;

static void	 inbound_pump(void);
static void	 out_publish(struct qmgr_mq *);
static void	 delay_fire(int, short, void *);

/* Set up the lists; the connection starts after the spool recovery. */
void
qmgr_mq_init(void)
{
	TAILQ_INIT(&mq.waiting);
	TAILQ_INIT(&mq.delayed);
	TAILQ_INIT(&mq.outbox);
	evtimer_set(&mq.delay_ev, delay_fire, NULL);
}

/* The queue received mail goes to. */
static const char *
inbox_name(void)
{
	return *qmgr.mq_inbox != '\0' ? qmgr.mq_inbox : qmgr.mq_outbox;
}

static struct mq_ref *
ref_new(const struct qmgr_mq *q, size_t idx)
{
	struct mq_ref	*r;

	r = xcalloc(1, sizeof(*r));
	memcpy(r->id, q->m->env.id, MSGID_SIZE);
	r->serial = q->serial;
	r->idx = idx;
	return r;
}

/* The message a callback is about, NULL when it is gone. */
static struct qmgr_msg *
ref_msg(const struct mq_ref *r)
{
	struct qmgr_msg	*m;

	m = qmgr_table_get(&qmgr.msgs, r->id, MSGID_LEN);
	if (m == NULL || m->mq == NULL || m->mq->serial != r->serial)
		return NULL;
	return m;
}

static void
list_remove(struct qmgr_mq *q)
{
	if (q->list == MQ_L_WAITING)
		TAILQ_REMOVE(&mq.waiting, q, entry);
	else if (q->list == MQ_L_DELAYED)
		TAILQ_REMOVE(&mq.delayed, q, entry);
	q->list = MQ_L_NONE;
}

/* Publish q again after MQ_RETRY_DELAY. */
static void
list_delay(struct qmgr_mq *q)
{
	struct timeval	 tv = { MQ_RETRY_DELAY, 0 };

	list_remove(q);
	TAILQ_INSERT_TAIL(&mq.delayed, q, entry);
	q->list = MQ_L_DELAYED;
	if (!mq.delay_armed) {
		evtimer_add(&mq.delay_ev, &tv);
		mq.delay_armed = 1;
	}
}

static void
list_wait(struct qmgr_mq *q, int front)
{
	list_remove(q);
	if (front)
		TAILQ_INSERT_HEAD(&mq.waiting, q, entry);
	else
		TAILQ_INSERT_TAIL(&mq.waiting, q, entry);
	q->list = MQ_L_WAITING;
}

/* Are we at the spool's high-water mark? */
int
qmgr_mq_full(void)
{
	return qmgr.mq_on && mq.ninbound >= (size_t)qmgr.mq_spool_max;
}

/* Forget q, before its message is freed (qmgr_spool_remove). */
void
qmgr_mq_forget(struct qmgr_msg *m)
{
	struct qmgr_mq	*q = m->mq;

	list_remove(q);
	if (q->kind == MQ_INBOUND) {
		mq.ninbound--;
		if (q->inflight > 0)
			mq.inbound_inflight--;
	} else
		TAILQ_REMOVE(&mq.outbox, q, oentry);
	if (q->json != NULL)
		json_object_put(q->json);
	if (q->mime != NULL)
		json_object_put(q->mime);
	free(q);
	m->mq = NULL;
}

/* Timer: publish what was nacked or returned once more. */
static void
delay_fire(int fd, short ev, void *arg)
{
	struct qmgr_mq	*q;

	mq.delay_armed = 0;
	if (!qmgr_amqp_up())
		return;		/* all of it goes again at the reconnection */
	while ((q = TAILQ_FIRST(&mq.delayed)) != NULL) {
		list_remove(q);
		if (q->kind == MQ_INBOUND)
			list_wait(q, 0);
		else
			out_publish(q);
	}
	inbound_pump();
}

/* ---- inbound --------------------------------------------------------- */

/* The whole message of m; NULL (logged) when it cannot be read. */
static char *
read_data(struct qmgr_msg *m, size_t *lenp)
{
	char		*buf;
	ssize_t		 n;

	if (m->slot.data_len >= SIZE_MAX) {
		log_warnx("%s: queue file too large", m->env.id);
		return NULL;
	}
	/* One allocation of the message's size: it does not change. */
	buf = xmalloc((size_t)m->slot.data_len + 1);
	n = qmgr_spool_read_data(m, buf, (size_t)m->slot.data_len);
	if (n == -1) {
		log_warn("%s: read queue file", m->env.id);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*lenp = (size_t)n;
	return buf;
}

/*
 * The recipient's own RFC 3461 parameters (NOTIFY, ORCPT) go into the
 * "dsn" object, next to the message's ret and envid.
 */
static void
inbound_dsn(struct json_object *o, const struct envelope_rcpt *er)
{
	struct json_object	*dsn;
	char			 buf[DSN_NOTIFY_TEXT_MAX];

	if (er->notify == 0 && (er->orcpt == NULL || *er->orcpt == '\0'))
		return;
	if (!json_object_object_get_ex(o, "dsn", &dsn) ||
	    !json_object_is_type(dsn, json_type_object)) {
		dsn = json_object_new_object();
		json_object_object_add(o, "dsn", dsn);
	}
	if (er->notify != 0)
		json_object_object_add(dsn, "notify", json_object_new_string(
		    dsn_notify_format(er->notify, buf)));
	if (er->orcpt != NULL && *er->orcpt != '\0')
		json_object_object_add(dsn, "orcpt",
		    json_object_new_string(er->orcpt));
}

/* The inbox JSON of recipient i of m. */
static char *
inbound_json(struct qmgr_msg *m, size_t i, const char *data, size_t len)
{
	struct json_object	*o, *ips;
	char			*text;

	if (m->env.properties == NULL || (o = json_parse_object(
	    m->env.properties, strlen(m->env.properties))) == NULL)
		o = json_object_new_object();
	json_object_object_add(o, "envelope",
	    json_object_new_string(m->env.sender));
	json_object_object_add(o, "recipient",
	    json_object_new_string(m->env.rcpts[i].address));
	inbound_dsn(o, &m->env.rcpts[i]);
	json_object_object_add(o, "mime",
	    json_object_new_string_len(data, (int)len));
	if (!json_object_object_get_ex(o, "ips", NULL) &&
	    m->env.local_ip != NULL && *m->env.local_ip != '\0') {
		ips = json_object_new_array();
		json_object_array_add(ips,
		    json_object_new_string(m->env.local_ip));
		json_object_object_add(o, "ips", ips);
	}
	text = xstrdup(json_object_to_json_string_ext(o, MQ_JSON_FLAGS));
	json_object_put(o);
	return text;
}

static void	 inbound_cb(void *, int);

/* Publish every recipient of q's message not yet published. */
static void
inbound_publish(struct qmgr_mq *q)
{
	struct qmgr_msg	*m = q->m;
	struct mq_ref	*ref;
	char		*data, *text;
	size_t		 len, i;

	q->failed = q->lost = q->progress = 0;
	if ((data = read_data(m, &len)) == NULL) {
		list_delay(q);
		return;
	}
	if (len > INT32_MAX) {
		log_warnx("%s: too large to publish", m->env.id);
		free(data);
		list_delay(q);
		return;
	}
	for (i = 0; i < m->env.nrcpt; i++) {
		if (ENV_RCPT_FINAL(m->env.rcpts[i].state))
			continue;
		text = inbound_json(m, i, data, len);
		ref = ref_new(q, i);
		/* Not sent (the broker is away): no callback will free it. */
		if (qmgr_amqp_publish(inbox_name(), text, strlen(text), 1,
		    NULL, inbound_cb, ref) == 0)
			q->inflight++;
		else
			free(ref);
		free(text);
	}
	free(data);
	if (q->inflight > 0)
		mq.inbound_inflight++;
	else if (qmgr_msg_done(m))
		qmgr_spool_remove(m);
	else
		list_wait(q, 1);	/* the broker went away */
}

/* Publish waiting messages while the window allows. */
static void
inbound_pump(void)
{
	struct qmgr_mq	*q;

	while (qmgr_amqp_up() && mq.inbound_inflight < MQ_INBOUND_WINDOW &&
	    (q = TAILQ_FIRST(&mq.waiting)) != NULL) {
		list_remove(q);
		inbound_publish(q);
	}
}

/* The confirm of one recipient's inbox JSON. */
static void
inbound_cb(void *arg, int outcome)
{
	struct mq_ref		*ref = arg;
	struct qmgr_msg		*m;
	struct qmgr_mq		*q;
	struct envelope_rcpt	*er;
	char			 rcpt[MQ_LOG_TEXT];

	if ((m = ref_msg(ref)) == NULL || ref->idx >= m->env.nrcpt) {
		free(ref);
		return;
	}
	q = m->mq;
	er = &m->env.rcpts[ref->idx];
	log_escape(rcpt, sizeof(rcpt), er->address, strlen(er->address));
	switch (outcome) {
	case QMGR_PUB_OK:
		if (!ENV_RCPT_FINAL(er->state)) {
			er->state = ENV_RCPT_DELIVERED;
			m->nfinal++;
		}
		q->progress = 1;
		log_info("%s: to=<%s>, relay=rabbitmq, status=published "
		    "(queue %s)", m->env.id, rcpt, inbox_name());
		break;
	case QMGR_PUB_RETURNED:
		q->failed = 1;
		log_warnx("%s: to=<%s>: returned by the broker as unroutable "
		    "(queue %s): kept, published again later", m->env.id,
		    rcpt, inbox_name());
		break;
	case QMGR_PUB_NACKED:
		q->failed = 1;
		log_warnx("%s: to=<%s>: nacked by the broker: kept, published "
		    "again later", m->env.id, rcpt);
		break;
	default:
		q->lost = 1;
		break;
	}
	free(ref);
	if (--q->inflight > 0)
		return;
	mq.inbound_inflight--;
	if (qmgr_msg_done(m))
		qmgr_spool_remove(m);
	else {
		if (q->progress)
			qmgr_spool_update(m);
		if (q->failed)
			list_delay(q);
		else
			list_wait(q, 1);
	}
	inbound_pump();
}

/*
 * A message committed to the spool: in RabbitMQ mode it goes to the
 * inbox instead of the scheduler.  1 when taken.
 */
int
qmgr_mq_take(struct qmgr_msg *m)
{
	struct qmgr_mq	*q;

	if (!qmgr.mq_on)
		return 0;
	q = xcalloc(1, sizeof(*q));
	q->kind = MQ_INBOUND;
	q->serial = ++mq.serial;
	q->m = m;
	m->mq = q;
	mq.ninbound++;
	list_wait(q, 0);
	qmgr_ctlindex_changed(m);	/* mtactl shows it */
	inbound_pump();
	return 1;
}

/* ---- outbox ------------------------------------------------------------ */

static void	 reject_cb(void *, int);

/* A consumed message that cannot be delivered: to the failure queue. */
static void
out_reject(uint64_t tag, uint32_t gen, struct json_object *o,
    const char *body, size_t len, const char *reason)
{
	struct mq_ref	*ref;
	const char	*text;

	if (*qmgr.mq_failure == '\0') {
		log_warnx("rabbitmq: outbox message refused (%s); no "
		    "rabbitmq-failure: dropped", reason);
		qmgr_amqp_ack(tag, gen);
		if (o != NULL)
			json_object_put(o);
		return;
	}
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		if (o != NULL)
			json_object_put(o);
		o = json_object_new_object();
		json_object_object_add(o, "message",
		    json_object_new_string_len(body, (int)len));
	}
	json_object_object_add(o, "reason", json_object_new_string(reason));
	text = json_object_to_json_string_ext(o, MQ_JSON_FLAGS);
	ref = xcalloc(1, sizeof(*ref));
	ref->tag = tag;
	ref->gen = gen;
	log_warnx("rabbitmq: outbox message refused (%s): to queue %s",
	    reason, qmgr.mq_failure);
	if (qmgr_amqp_publish(qmgr.mq_failure, text, strlen(text), 0, NULL,
	    reject_cb, ref) == -1)
		free(ref);
	json_object_put(o);
}

static void
reject_cb(void *arg, int outcome)
{
	struct mq_ref	*ref = arg;

	if (outcome == QMGR_PUB_OK)
		qmgr_amqp_ack(ref->tag, ref->gen);
	else if (outcome != QMGR_PUB_LOST) {
		log_warnx("rabbitmq: a refused outbox message could not be "
		    "published to %s: rejected", qmgr.mq_failure);
		qmgr_amqp_reject(ref->tag, ref->gen);
	}
	free(ref);
}

/* Can s go into MAIL FROM / RCPT TO: printable, no space, no <>. */
static int
addr_ok(const char *s, int empty_ok)
{
	size_t	 n = strlen(s);

	if ((n == 0 && !empty_ok) || n > MQ_ADDR_MAX)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == '<' ||
		    *s == '>')
			return 0;
	return 1;
}

/* A string member of o, or NULL. */
static const char *
get_str(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Why o cannot be delivered, or NULL. */
static const char *
out_check(struct json_object *o)
{
	struct json_object	*v;
	const char		*s;

	if (o == NULL)
		return "not valid JSON";
	if (!json_object_object_get_ex(o, "recipient", &v))
		return "no recipient";
	if ((s = get_str(o, "recipient")) == NULL || !addr_ok(s, 0))
		return "bad recipient";
	if (json_object_object_get_ex(o, "envelope", &v) &&
	    ((s = get_str(o, "envelope")) == NULL || !addr_ok(s, 1)))
		return "bad envelope";
	if (!json_object_object_get_ex(o, "mime", &v))
		return "no mime";
	if (!json_object_is_type(v, json_type_string))
		return "mime is not a string";
	/* A smarthost it names but mtad cannot use: never another host. */
	if (json_object_object_get_ex(o, "smarthost", &v) && v != NULL &&
	    (s = props_smarthost_check(v)) != NULL)
		return s;
	return NULL;
}

/* When the first attempt was made (the first result's time), else now. */
static int64_t
out_first_time(struct json_object *results, int64_t now)
{
	struct json_object	*e, *t;
	int64_t			 when;

	if (results == NULL || json_object_array_length(results) == 0)
		return now;
	e = json_object_array_get_idx(results, 0);
	if (e == NULL || !json_object_is_type(e, json_type_object) ||
	    !json_object_object_get_ex(e, "time", &t) ||
	    !json_object_is_type(t, json_type_string) ||
	    msgprops_parse_time(json_object_get_string(t), &when) == -1 ||
	    when > now)
		return now;
	return when;
}

/*
 * Write the mime to a slot, never committed (the broker keeps the message
 * until its outcome is final): 0, or -1 (logged).
 */
static int
out_write_mime(char id[MSGID_SIZE], struct qmgr_slot *slot, const char *mime,
    size_t len)
{
	int	 fd;

	if ((fd = qmgr_spool_new(id, slot)) == -1) {
		log_warn("rabbitmq: cannot create a spool file");
		return -1;
	}
	if (fd_write_all(fd, mime, len) == -1) {
		log_warn("%s: write", id);
		qmgr_spool_discard(slot, fd);
		return -1;
	}
	close(fd);
	slot->data_len = len;
	return 0;
}

/* dsn.orcpt of o when usable in an ORCPT= ("type;address"), or NULL. */
static const char *
out_orcpt(struct json_object *o)
{
	struct json_object	*dsn;
	const char		*s;

	if (!json_object_object_get_ex(o, "dsn", &dsn) ||
	    !json_object_is_type(dsn, json_type_object) ||
	    (s = get_str(dsn, "orcpt")) == NULL || strchr(s, ';') == NULL ||
	    !addr_ok(s, 0))
		return NULL;
	return s;
}

/* A checked outbox message becomes a transient message, scheduled. */
static void
out_accept(uint64_t tag, uint32_t gen, struct json_object *o)
{
	struct envelope		 env;
	struct qmgr_slot	 slot;
	struct qmgr_mq		*q;
	struct qmgr_msg		*m;
	struct json_object	*mime, *results = NULL;
	const char		*sender, *text, *orcpt;
	char			 id[MSGID_SIZE], esender[MQ_LOG_TEXT];
	int64_t			 now = time(NULL);
	size_t			 n;

	json_object_object_get_ex(o, "mime", &mime);
	if (out_write_mime(id, &slot, json_object_get_string(mime),
	    (size_t)json_object_get_string_len(mime)) == -1) {
		/* Local trouble: let the broker give it to someone else. */
		json_object_put(o);
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->kind = MQ_OUTBOX;
	q->serial = ++mq.serial;
	q->tag = tag;
	q->gen = gen;
	q->mime = json_object_get(mime);
	json_object_object_del(o, "mime");
	q->json = o;
	if (json_object_object_get_ex(o, "results", &results) &&
	    !json_object_is_type(results, json_type_array))
		results = NULL;

	envelope_init(&env);
	memcpy(env.id, id, MSGID_SIZE);
	sender = get_str(o, "envelope");
	env.sender = xstrdup(sender != NULL ? sender : "");
	env.received = out_first_time(results, now);
	env.client = xstrdup("rabbitmq");
	env.local_ip = xstrdup("");
	env.helo = xstrdup("");
	env.size = (uint64_t)json_object_get_string_len(q->mime);
	text = json_object_to_json_string_ext(o, MQ_JSON_FLAGS);
	if (envelope_properties_normalize(text, &env.properties) == -1)
		log_panic("%s: not an object", __func__);
	envelope_add_rcpt(&env, get_str(o, "recipient"), now);
	if ((orcpt = out_orcpt(o)) != NULL) {
		free(env.rcpts[0].orcpt);
		env.rcpts[0].orcpt = xstrdup(orcpt);
	}
	n = results != NULL ? json_object_array_length(results) : 0;
	env.rcpts[0].attempts = n > MSGPROPS_ATTEMPTS_MAX ?
	    MSGPROPS_ATTEMPTS_MAX : (uint32_t)n;
	if (n > 0)
		env.rcpts[0].state = ENV_RCPT_DEFERRED;

	m = qmgr_msg_new(&env);
	m->slot = slot;
	m->transient = 1;
	m->mq = q;
	q->m = m;
	TAILQ_INSERT_TAIL(&mq.outbox, q, oentry);
	qmgr_table_put(&qmgr.msgs, m->env.id, MSGID_LEN, m);
	log_escape(esender, sizeof(esender), m->env.sender,
	    strlen(m->env.sender));
	log_info("%s: from=<%s>, size=%llu, nrcpt=1 (queue active, from "
	    "rabbitmq %s, attempt %zu)", m->env.id, esender,
	    (unsigned long long)m->env.size, qmgr.mq_outbox, n + 1);
	qmgr_queue_add_msg(m);
}

/* basic.deliver from the outbox (body NUL-terminated, len bytes). */
void
qmgr_mq_deliver(uint64_t tag, const char *body, size_t len)
{
	struct json_object	*o;
	const char		*reason;
	uint32_t		 gen = qmgr_amqp_generation();

	o = json_parse_object(body, len);
	if ((reason = out_check(o)) != NULL) {
		out_reject(tag, gen, o, body, len, reason);
		return;
	}
	out_accept(tag, gen, o);
}

/* "host[ip]:port" -> "ip"; anything else -> "". */
static char *
relay_ip(const char *relay)
{
	const char	*a, *b;
	char		*s;

	if ((a = strrchr(relay, '[')) == NULL ||
	    (b = strchr(a, ']')) == NULL)
		return xstrdup("");
	s = xmalloc((size_t)(b - a));
	memcpy(s, a + 1, (size_t)(b - a - 1));
	s[b - a - 1] = '\0';
	return s;
}

/* Append this attempt to the "results" array of q's JSON. */
static void
out_add_result(struct qmgr_mq *q, const struct qmgr_rcpt *r,
    const struct envelope_rcpt *er, int64_t now)
{
	struct json_object	*results, *e, *ips, *ip;
	const char		*desc = er->last != NULL ? er->last : "";
	const char		*res, *p;
	char			 when[32], *to;
	time_t			 t = (time_t)now;
	struct tm		 tm;

	if (!json_object_object_get_ex(q->json, "results", &results) ||
	    !json_object_is_type(results, json_type_array)) {
		results = json_object_new_array();
		json_object_object_add(q->json, "results", results);
	}
	/* er->last is "code status text" when there was a reply. */
	if (er->code != 0 && (p = strchr(desc, ' ')) != NULL &&
	    (p = strchr(p + 1, ' ')) != NULL)
		desc = p + 1;
	/* mtad-json(5): MailerQ's words. */
	res = er->state == ENV_RCPT_DELIVERED ? "ok" :
	    er->state == ENV_RCPT_FAILED ? "fatal" : "error";
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	e = json_object_new_object();
	json_object_object_add(e, "state", json_object_new_string(
	    qmgr_stage_name(r->stage)));
	json_object_object_add(e, "result", json_object_new_string(res));
	json_object_object_add(e, "code", json_object_new_int((int)er->code));
	json_object_object_add(e, "status",
	    json_object_new_string(er->status));
	json_object_object_add(e, "description",
	    json_object_new_string(desc));
	ip = NULL;
	if (json_object_object_get_ex(q->json, "ips", &ips) &&
	    json_object_is_type(ips, json_type_array) &&
	    json_object_array_length(ips) > 0)
		ip = json_object_array_get_idx(ips, 0);
	json_object_object_add(e, "from", json_object_new_string(
	    ip != NULL && json_object_is_type(ip, json_type_string) ?
	    json_object_get_string(ip) : ""));
	to = relay_ip(er->relay != NULL ? er->relay : "");
	json_object_object_add(e, "to", json_object_new_string(to));
	free(to);
	json_object_object_add(e, "time", json_object_new_string(when));
	json_object_array_add(results, e);
}

static void	 out_cb(void *, int);

/*
 * Publish q's JSON to queue (with its mime when with_mime), its confirm
 * counted in q->inflight unless untracked.
 */
static void
out_send(struct qmgr_mq *q, const char *queue, int with_mime,
    const char *expiration, int untracked)
{
	struct mq_ref	*ref;
	const char	*text;

	if (*queue == '\0')
		return;
	if (with_mime)
		json_object_object_add(q->json, "mime",
		    json_object_get(q->mime));
	text = json_object_to_json_string_ext(q->json, MQ_JSON_FLAGS);
	if (untracked)
		(void)qmgr_amqp_publish(queue, text, strlen(text), 0, NULL,
		    NULL, NULL);
	else if (qmgr_amqp_publish(queue, text, strlen(text), with_mime,
	    expiration, out_cb, (ref = ref_new(q, 0))) == 0)
		q->inflight++;
	else {
		free(ref);	/* not sent: no callback will free it */
		q->lost = 1;
	}
	if (with_mime)
		json_object_object_del(q->json, "mime");
}

/* The message is done here: forget it (acked or not, as decided). */
static void
out_release(struct qmgr_msg *m)
{
	struct qmgr_rcpt	*r = &m->rcpts[0];

	if (r->qmsg != NULL)
		qmgr_queue_rcpt_drop(r);
	qmgr_spool_remove(m);
}

/* Publish the outcome of q's last attempt (again, after a failure). */
static void
out_publish(struct qmgr_mq *q)
{
	struct qmgr_msg		*m = q->m;
	const struct envelope_rcpt *er = &m->env.rcpts[0];
	char			 exp[32];

	q->failed = q->lost = 0;
	if (q->gen != qmgr_amqp_generation() || !qmgr_amqp_up()) {
		out_release(m);		/* the broker gives it again */
		return;
	}
	out_send(q, qmgr.mq_results, 0, NULL, 0);
	if (q->outcome == MQ_OUT_FINAL)
		out_send(q, er->state == ENV_RCPT_DELIVERED ?
		    qmgr.mq_success : qmgr.mq_failure, 0, NULL, 0);
	else {
		snprintf(exp, sizeof(exp), "%lld", (long long)q->expiration);
		out_send(q, qmgr.mq_retry, 1, exp, 0);
	}
	if (q->inflight > 0)
		return;			/* out_cb goes on */
	if (!q->lost)
		qmgr_amqp_ack(q->tag, q->gen);	/* nothing to publish */
	out_release(m);
}

/* The confirm of one of an outcome's publishes. */
static void
out_cb(void *arg, int outcome)
{
	struct mq_ref	*ref = arg;
	struct qmgr_msg	*m;
	struct qmgr_mq	*q;

	m = ref_msg(ref);
	free(ref);
	if (m == NULL)
		return;
	q = m->mq;
	if (outcome == QMGR_PUB_LOST)
		q->lost = 1;
	else if (outcome != QMGR_PUB_OK) {
		q->failed = 1;
		log_warnx("%s: result %s by the broker: published again later",
		    m->env.id, outcome == QMGR_PUB_NACKED ? "nacked" :
		    "returned");
	}
	if (--q->inflight > 0)
		return;
	if (q->lost)
		out_release(m);
	else if (q->failed)
		list_delay(q);
	else {
		log_debug("%s: outcome published, acked", m->env.id);
		qmgr_amqp_ack(q->tag, q->gen);
		out_release(m);
	}
}

/*
 * An attempt of a transient message ended (qmgr_deliver.c): publish its
 * result; when final or deferred through rabbitmq-retry, ack it once that
 * is confirmed.
 */
void
qmgr_mq_settle(struct qmgr_msg *m)
{
	struct qmgr_mq		*q = m->mq;
	struct qmgr_rcpt	*r = &m->rcpts[0];
	struct envelope_rcpt	*er = &m->env.rcpts[0];
	int64_t			 now = time(NULL);

	qmgr_ctlindex_changed(m);
	if (q->orphan || q->gen != qmgr_amqp_generation()) {
		out_release(m);		/* given to another consumer */
		return;
	}
	out_add_result(q, r, er, now);
	if (ENV_RCPT_FINAL(er->state))
		q->outcome = MQ_OUT_FINAL;
	else if (*qmgr.mq_retry != '\0') {
		q->outcome = MQ_OUT_RETRY;
		q->expiration = er->next > now ? (er->next - now) * 1000 : 0;
		qmgr_queue_rcpt_drop(r);
	} else {
		/* Retried here, unacked: only the result goes out. */
		out_send(q, qmgr.mq_results, 0, NULL, 1);
		return;
	}
	out_publish(q);
}

/* ---- the connection ---------------------------------------------------- */

/* Connected: publish what waits. */
void
qmgr_mq_connected(void)
{
	inbound_pump();
}

/*
 * The connection is gone, and with it every delivery tag: the broker
 * gives those messages again.  Forget each outbox message not in flight;
 * one in flight ends without publishing (qmgr_mq_settle).
 */
void
qmgr_mq_lost(void)
{
	struct qmgr_mq	*q, *next;

	for (q = TAILQ_FIRST(&mq.outbox); q != NULL; q = next) {
		next = TAILQ_NEXT(q, oentry);
		q->orphan = 1;
		if (q->m->rcpts[0].where == QMGR_RCPT_FLIGHT ||
		    q->inflight > 0)
			continue;
		out_release(q->m);
	}
}
