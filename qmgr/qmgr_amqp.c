/*
 * The connection to the RabbitMQ broker (librabbitmq-c), fitted into
 * qmgr's libevent loop.
 *
 * Setup (connect, login, channel 1, confirm.select, queue declarations,
 * basic.qos, basic.consume) uses the library's blocking RPCs: it runs from
 * a timer, once per (re)connection, one address per run, and the whole of
 * it shares one budget of AM_SETUP_BUDGET ms (each RPC gets what is left),
 * so a broker that is slow or silent blocks the loop at most that long;
 * a broker further than a few tens of ms away would need a larger budget.
 * After that
 * the connection is only written to (publish, ack, reject: no RPC) and
 * read from the socket's EV_READ callback, which decodes every frame
 * already buffered with a zero time-out and returns, so the loop never
 * waits on the broker.  Content (basic.deliver, basic.return) is put
 * together from its method, header and body frames here.
 *
 * Publisher confirms: every publish gets the channel's next sequence
 * number, kept in order with a callback; basic.ack/basic.nack (multiple or
 * not) call it with QMGR_PUB_OK or QMGR_PUB_NACKED.  A mandatory publish
 * that the broker could not route comes back as basic.return before its
 * ack: the sequence number travels in the x-mtad-seq header, so the
 * return finds its publish, and its ack reports QMGR_PUB_RETURNED.  When
 * the connection is lost, every publish still waiting is reported
 * QMGR_PUB_LOST and the bridge is told (qmgr_mq_lost) before the
 * reconnection, which backs off from 0.5 s to 10 s and tries the
 * addresses of rabbitmq-address in turn.
 *
 * Heartbeats (rabbitmq-heartbeat, as negotiated): a timer sends one every
 * half interval and drops the connection when nothing came from the
 * broker for two intervals; the socket's TCP_USER_TIMEOUT is set to the
 * same bound, so a write to a peer that stopped reading fails rather than
 * blocking for ever (the library's writes wait without a time-out).
 *
 * connection.blocked (asked for in the client capabilities): publishes
 * are held, copied, in order, and sent on connection.unblocked; their
 * confirms come as usual, or QMGR_PUB_LOST with the connection.  Acks
 * still go out (the broker reads them once it reads again).
 */
#include <sys/queue.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "qmgr.h"
#include "xmalloc.h"

#define AM_CHANNEL		1
#define AM_FRAME_MAX		131072
#define AM_SETUP_BUDGET		1000	/* ms, connect to consume, in all */
#define AM_USER_TIMEOUT_DEF	60	/* s, TCP_USER_TIMEOUT without hb */
#define AM_BACKOFF_MIN		500	/* ms */
#define AM_BACKOFF_MAX		10000	/* ms */
#define AM_BODY_MAX		(256u * 1024 * 1024)
#define AM_SEQ_HEADER		"x-mtad-seq"

struct am_pub {
	uint64_t		 seq;
	int			 returned;
	qmgr_amqp_cb		 cb;
	void			*arg;
	TAILQ_ENTRY(am_pub)	 entry;
	/* held while blocked: what to send on connection.unblocked */
	char			*queue;
	char			*body;
	size_t			 len;
	int			 mandatory;
	char			*expiration;
};

/* Content being read: a basic.deliver or basic.return and its body. */
struct am_content {
	int		 kind;
#define AM_C_NONE	0
#define AM_C_DELIVER	1
#define AM_C_RETURN	2
	uint64_t	 tag;		/* delivery tag (deliver) */
	uint64_t	 seq;		/* x-mtad-seq (return), 0: none */
	size_t		 len, got;
	int		 toolarge;
	char		*body;
};

static struct {
	char			**addrs;
	size_t			  naddrs, next_addr;
	amqp_connection_state_t	  conn;
	int			  up;
	int			  dead;		/* lost, loss not handled yet */
	int			  blocked;
	uint32_t		  gen;
	uint64_t		  seq;
	int			  backoff;	/* ms */
	struct event		  rev;
	struct event		  timer;	/* reconnect */
	struct event		  losstimer;	/* handle a loss outside calls */
	struct event		  hbtimer;	/* heartbeats */
	int			  heartbeat;	/* s, negotiated; 0: off */
	struct timespec		  last_rx;	/* something came in */
	struct timespec		  setup_end;	/* budget of this attempt */
	size_t			  tried;	/* addresses failed this round */
	TAILQ_HEAD(, am_pub)	  pubs;
	TAILQ_HEAD(, am_pub)	  held;		/* while blocked */
	struct am_content	  c;
} am;

static void	 am_schedule(void);
static void	 am_lost(const char *);
static void	 pub_free(struct am_pub *);
static void	 am_fail_later(int);
static void	 pub_send(struct am_pub *, const char *, const char *, size_t,
		    int, const char *);

/* Milliseconds from a to b. */
static long long
ms_between(const struct timespec *a, const struct timespec *b)
{
	return (long long)(b->tv_sec - a->tv_sec) * 1000 +
	    (b->tv_nsec - a->tv_nsec) / 1000000;
}

/*
 * What is left of this attempt's setup budget, into tv (at least 1 ms
 * so that the library does not read 0 as "no time-out"); -1 when spent.
 */
static int
budget_left(struct timeval *tv)
{
	struct timespec	 now;
	long long	 ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((ms = ms_between(&now, &am.setup_end)) <= 0)
		return -1;
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
	return 0;
}

/* Give the next setup RPC what is left of the budget. */
static int
budget_rpc(void)
{
	struct timeval	 tv;

	if (budget_left(&tv) == -1)
		return -1;
	(void)amqp_set_rpc_timeout(am.conn, &tv);
	return 0;
}

/* Is the broker there to publish to and take messages from? */
int
qmgr_amqp_up(void)
{
	return am.up && !am.dead;
}

/* Changes with every connection: delivery tags are only good in one. */
uint32_t
qmgr_amqp_generation(void)
{
	return am.gen;
}

/* An RPC reply as text for the log. */
static const char *
reply_text(amqp_rpc_reply_t r, char *buf, size_t len)
{
	amqp_connection_close_t	*cc;
	amqp_channel_close_t	*ch;

	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return "ok";
	case AMQP_RESPONSE_NONE:
		return "no reply";
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		return amqp_error_string2(r.library_error);
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			cc = r.reply.decoded;
			snprintf(buf, len, "connection closed: %u %.*s",
			    cc->reply_code, (int)cc->reply_text.len,
			    (char *)cc->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			ch = r.reply.decoded;
			snprintf(buf, len, "channel closed: %u %.*s",
			    ch->reply_code, (int)ch->reply_text.len,
			    (char *)ch->reply_text.bytes);
		} else
			snprintf(buf, len, "server error, method %#x",
			    r.reply.id);
		return buf;
	}
	return "unknown reply";
}

/* Declare a durable queue (name "" : disabled, nothing to do). */
static int
declare(const char *name, amqp_table_t args, char *why, size_t len)
{
	char			 buf[256];
	amqp_rpc_reply_t	 r;

	if (name == NULL || *name == '\0')
		return 0;
	if (budget_rpc() == -1) {
		snprintf(why, len, "setup took over %d ms (declaring %s)",
		    AM_SETUP_BUDGET, name);
		return -1;
	}
	amqp_queue_declare(am.conn, AM_CHANNEL, amqp_cstring_bytes(name), 0,
	    1, 0, 0, args);
	r = amqp_get_rpc_reply(am.conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		snprintf(why, len, "declaring queue %s: %s", name,
		    reply_text(r, buf, sizeof(buf)));
		return -1;
	}
	return 0;
}

/* Declarations, confirms, prefetch and consumer on a new connection. */
static int
setup_channel(char *why, size_t len)
{
	amqp_table_entry_t	 dl[2];
	amqp_table_t		 args = { 2, dl }, none = amqp_empty_table;
	amqp_rpc_reply_t	 r;
	char			 buf[256];

	if (budget_rpc() == -1)
		goto slow;
	amqp_channel_open(am.conn, AM_CHANNEL);
	if ((r = amqp_get_rpc_reply(am.conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL)
		goto rpc;
	if (budget_rpc() == -1)
		goto slow;
	amqp_confirm_select(am.conn, AM_CHANNEL);
	if ((r = amqp_get_rpc_reply(am.conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL)
		goto rpc;
	if (declare(qmgr.mq_inbox, none, why, len) == -1 ||
	    declare(qmgr.mq_outbox, none, why, len) == -1 ||
	    declare(qmgr.mq_results, none, why, len) == -1 ||
	    declare(qmgr.mq_success, none, why, len) == -1 ||
	    declare(qmgr.mq_failure, none, why, len) == -1)
		return -1;
	dl[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
	dl[0].value.kind = AMQP_FIELD_KIND_UTF8;
	dl[0].value.value.bytes = amqp_cstring_bytes("");
	dl[1].key = amqp_cstring_bytes("x-dead-letter-routing-key");
	dl[1].value.kind = AMQP_FIELD_KIND_UTF8;
	dl[1].value.value.bytes = amqp_cstring_bytes(qmgr.mq_outbox);
	if (declare(qmgr.mq_retry, args, why, len) == -1)
		return -1;
	if (*qmgr.mq_outbox == '\0')
		return 0;
	if (budget_rpc() == -1)
		goto slow;
	amqp_basic_qos(am.conn, AM_CHANNEL, 0, (uint16_t)qmgr.mq_prefetch, 0);
	if ((r = amqp_get_rpc_reply(am.conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL)
		goto rpc;
	if (budget_rpc() == -1)
		goto slow;
	amqp_basic_consume(am.conn, AM_CHANNEL,
	    amqp_cstring_bytes(qmgr.mq_outbox), amqp_empty_bytes, 0, 0, 0,
	    none);
	if ((r = amqp_get_rpc_reply(am.conn)).reply_type !=
	    AMQP_RESPONSE_NORMAL)
		goto rpc;
	return 0;
rpc:
	snprintf(why, len, "%s", reply_text(r, buf, sizeof(buf)));
	return -1;
slow:
	snprintf(why, len, "setup took over %d ms", AM_SETUP_BUDGET);
	return -1;
}

/* Bound how long written data may stay unacknowledged by the peer. */
static void
set_user_timeout(int fd)
{
	unsigned int	 ms;

	ms = am.heartbeat > 0 ? (unsigned int)am.heartbeat * 2000 :
	    AM_USER_TIMEOUT_DEF * 1000;
	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms,
	    sizeof(ms)) == -1)
		log_warn("rabbitmq: setsockopt TCP_USER_TIMEOUT");
}

/* One connection attempt to url: 0, or -1 with why filled in. */
static int
try_connect(const char *url, char *why, size_t len)
{
	struct amqp_connection_info	 ci;
	struct timeval			 tv;
	amqp_table_entry_t		 cap[2], prop[1];
	amqp_table_t			 props = { 1, prop };
	amqp_socket_t			*sock;
	amqp_rpc_reply_t		 r;
	char				*u, buf[256];
	int				 rv;

	u = xstrdup(url);
	amqp_default_connection_info(&ci);
	if (amqp_parse_url(u, &ci) != AMQP_STATUS_OK) {
		snprintf(why, len, "not an amqp:// address");
		free(u);
		return -1;
	}
	/* "amqp://host/" names the empty vhost; everyone means "/". */
	if (ci.vhost == NULL || *ci.vhost == '\0')
		ci.vhost = "/";
	am.conn = amqp_new_connection();
	if ((sock = amqp_tcp_socket_new(am.conn)) == NULL)
		fatalx("amqp_tcp_socket_new");
	(void)budget_left(&tv);
	if ((rv = amqp_socket_open_noblock(sock, ci.host, ci.port, &tv)) !=
	    AMQP_STATUS_OK) {
		snprintf(why, len, "connect to %s:%d: %s", ci.host, ci.port,
		    amqp_error_string2(rv));
		goto fail;
	}
	if (budget_left(&tv) == -1) {
		snprintf(why, len, "connect to %s:%d took over %d ms", ci.host,
		    ci.port, AM_SETUP_BUDGET);
		goto fail;
	}
	(void)amqp_set_handshake_timeout(am.conn, &tv);
	(void)amqp_set_rpc_timeout(am.conn, &tv);
	/* Ask for connection.blocked/unblocked. */
	cap[0].key = amqp_cstring_bytes("connection.blocked");
	cap[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	cap[0].value.value.boolean = 1;
	cap[1].key = amqp_cstring_bytes("authentication_failure_close");
	cap[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	cap[1].value.value.boolean = 1;
	prop[0].key = amqp_cstring_bytes("capabilities");
	prop[0].value.kind = AMQP_FIELD_KIND_TABLE;
	prop[0].value.value.table.num_entries = 2;
	prop[0].value.value.table.entries = cap;
	r = amqp_login_with_properties(am.conn, ci.vhost, 0, AM_FRAME_MAX,
	    qmgr.mq_heartbeat, &props, AMQP_SASL_METHOD_PLAIN, ci.user,
	    ci.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		snprintf(why, len, "login at %s:%d: %s", ci.host, ci.port,
		    reply_text(r, buf, sizeof(buf)));
		goto fail;
	}
	am.heartbeat = amqp_get_heartbeat(am.conn);
	set_user_timeout(amqp_get_sockfd(am.conn));
	if (setup_channel(why, len) == -1)
		goto fail;
	free(u);
	return 0;
fail:
	amqp_destroy_connection(am.conn);
	am.conn = NULL;
	free(u);
	return -1;
}

/* The address for the log: amqp://host:port/vhost, no credentials. */
static void
url_public(const char *url, char *buf, size_t len)
{
	const char	*p, *at;

	p = strstr(url, "://");
	p = p != NULL ? p + 3 : url;
	at = strrchr(p, '@');
	snprintf(buf, len, "amqp://%s", at != NULL ? at + 1 : p);
}

static void
am_read(int fd, short ev, void *arg);

/*
 * Timer: try one address within the setup budget; after a failure the
 * next address is tried at once, and once all of them failed in a row,
 * after the back-off.
 */
static void
am_connect(int fd, short ev, void *arg)
{
	struct timeval	 now0 = { 0, 0 }, tv;
	char		 why[512], pub[256];
	size_t		 k = am.next_addr;

	clock_gettime(CLOCK_MONOTONIC, &am.setup_end);
	am.setup_end.tv_sec += AM_SETUP_BUDGET / 1000;
	am.setup_end.tv_nsec += (AM_SETUP_BUDGET % 1000) * 1000000L;
	if (am.setup_end.tv_nsec >= 1000000000L) {
		am.setup_end.tv_sec++;
		am.setup_end.tv_nsec -= 1000000000L;
	}
	url_public(am.addrs[k], pub, sizeof(pub));
	if (try_connect(am.addrs[k], why, sizeof(why)) == -1) {
		log_warnx("rabbitmq: %s: %s", pub, why);
		am.next_addr = (k + 1) % am.naddrs;
		if (++am.tried < am.naddrs)
			evtimer_add(&am.timer, &now0);
		else {
			am.tried = 0;
			am_schedule();
		}
		return;
	}
	am.tried = 0;
	am.up = 1;
	am.dead = 0;
	am.blocked = 0;
	am.seq = 0;
	am.gen++;
	am.backoff = 0;
	clock_gettime(CLOCK_MONOTONIC, &am.last_rx);
	log_info("rabbitmq: connected to %s (heartbeat %d s)", pub,
	    am.heartbeat);
	event_set(&am.rev, amqp_get_sockfd(am.conn), EV_READ | EV_PERSIST,
	    am_read, NULL);
	event_add(&am.rev, NULL);
	if (am.heartbeat > 0) {
		tv.tv_sec = am.heartbeat / 2;
		tv.tv_usec = (am.heartbeat % 2) * 500000;
		evtimer_add(&am.hbtimer, &tv);
	}
	qmgr_mq_connected();
	/* Frames may already be buffered behind the setup replies. */
	am_read(-1, 0, NULL);
}

/* Reconnect after the next back-off interval. */
static void
am_schedule(void)
{
	struct timeval	 tv;

	am.backoff = am.backoff == 0 ? AM_BACKOFF_MIN : am.backoff * 2;
	if (am.backoff > AM_BACKOFF_MAX)
		am.backoff = AM_BACKOFF_MAX;
	tv.tv_sec = am.backoff / 1000;
	tv.tv_usec = (am.backoff % 1000) * 1000;
	log_info("rabbitmq: reconnecting in %d ms", am.backoff);
	evtimer_add(&am.timer, &tv);
}

/* Drop the connection: every waiting publish is lost, then reconnect. */
static void
am_lost(const char *why)
{
	struct am_pub	*p;

	if (!am.up)
		return;
	log_warnx("rabbitmq: connection lost: %s", why);
	event_del(&am.rev);
	evtimer_del(&am.losstimer);
	evtimer_del(&am.hbtimer);
	amqp_destroy_connection(am.conn);
	am.conn = NULL;
	am.up = 0;
	am.dead = 0;
	free(am.c.body);
	memset(&am.c, 0, sizeof(am.c));
	am.blocked = 0;
	TAILQ_CONCAT(&am.pubs, &am.held, entry);
	while ((p = TAILQ_FIRST(&am.pubs)) != NULL) {
		TAILQ_REMOVE(&am.pubs, p, entry);
		if (p->cb != NULL)
			p->cb(p->arg, QMGR_PUB_LOST);
		pub_free(p);
	}
	am.gen++;	/* tags of the old connection are void */
	qmgr_mq_lost();
	am_schedule();
}

static void
am_losstimer(int fd, short ev, void *arg)
{
	am_lost("write failed");
}

/*
 * Heartbeat timer, every half interval: the broker said nothing for two
 * intervals -> gone; else send ours (the library's own are only sent
 * while it waits for a frame, which qmgr never does).
 */
static void
am_heartbeat(int fd, short ev, void *arg)
{
	struct timespec	 now;
	struct timeval	 tv;
	amqp_frame_t	 f;
	long long	 quiet;
	char		 why[128];
	int		 rv;

	if (!am.up || am.dead || am.heartbeat <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	quiet = ms_between(&am.last_rx, &now);
	if (quiet >= (long long)am.heartbeat * 2000) {
		snprintf(why, sizeof(why), "nothing from the broker for %lld "
		    "ms (heartbeat %d s)", quiet, am.heartbeat);
		am_lost(why);
		return;
	}
	memset(&f, 0, sizeof(f));
	f.frame_type = AMQP_FRAME_HEARTBEAT;
	f.channel = 0;
	if ((rv = amqp_send_frame(am.conn, &f)) != AMQP_STATUS_OK) {
		am_fail_later(rv);
		return;
	}
	tv.tv_sec = am.heartbeat / 2;
	tv.tv_usec = (am.heartbeat % 2) * 500000;
	evtimer_add(&am.hbtimer, &tv);
}

/* A write failed inside a caller: handle the loss from the loop. */
static void
am_fail_later(int rv)
{
	struct timeval	 tv = { 0, 0 };

	if (am.dead)
		return;
	log_warnx("rabbitmq: write: %s", amqp_error_string2(rv));
	am.dead = 1;
	evtimer_add(&am.losstimer, &tv);
}

/* Start the bridge's connection; addresses is the comma-separated list. */
void
qmgr_amqp_init(const char *addresses)
{
	char	*s, *p, *tok;

	TAILQ_INIT(&am.pubs);
	TAILQ_INIT(&am.held);
	s = xstrdup(addresses);
	for (p = s; (tok = strsep(&p, ",")) != NULL;) {
		tok += strspn(tok, " \t");
		tok[strcspn(tok, " \t")] = '\0';
		if (*tok == '\0')
			continue;
		am.addrs = xreallocarray(am.addrs, am.naddrs + 1,
		    sizeof(*am.addrs));
		am.addrs[am.naddrs++] = xstrdup(tok);
	}
	free(s);
	if (am.naddrs == 0)
		fatalx("rabbitmq-address: no address");
	evtimer_set(&am.timer, am_connect, NULL);
	evtimer_set(&am.losstimer, am_losstimer, NULL);
	evtimer_set(&am.hbtimer, am_heartbeat, NULL);
	am_connect(-1, 0, NULL);
}

/* basic.ack or basic.nack for tag (and all before it when multiple). */
static void
confirm(uint64_t tag, int multiple, int nack)
{
	struct am_pub	*p, *next;

	for (p = TAILQ_FIRST(&am.pubs); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->seq > tag)
			break;
		if (!multiple && p->seq != tag)
			continue;
		TAILQ_REMOVE(&am.pubs, p, entry);
		if (p->cb != NULL)
			p->cb(p->arg, nack ? QMGR_PUB_NACKED : p->returned ?
			    QMGR_PUB_RETURNED : QMGR_PUB_OK);
		pub_free(p);
		if (!am.up)
			return;		/* the callback lost the connection */
		/* The callback may have published: start over. */
		next = TAILQ_FIRST(&am.pubs);
	}
}

/* The x-mtad-seq header of a returned message, 0 when absent. */
static uint64_t
header_seq(const amqp_basic_properties_t *props)
{
	const amqp_table_entry_t	*e;
	int				 i;

	if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
		return 0;
	for (i = 0; i < props->headers.num_entries; i++) {
		e = &props->headers.entries[i];
		if (e->key.len == strlen(AM_SEQ_HEADER) &&
		    memcmp(e->key.bytes, AM_SEQ_HEADER, e->key.len) == 0 &&
		    e->value.kind == AMQP_FIELD_KIND_I64 &&
		    e->value.value.i64 > 0)
			return (uint64_t)e->value.value.i64;
	}
	return 0;
}

/* A whole message arrived: hand it on. */
static void
content_done(void)
{
	struct am_content	 c = am.c;
	struct am_pub		*p;

	memset(&am.c, 0, sizeof(am.c));
	if (c.kind == AM_C_RETURN) {
		TAILQ_FOREACH(p, &am.pubs, entry)
			if (p->seq == c.seq)
				p->returned = 1;
	} else if (c.toolarge) {
		log_warnx("rabbitmq: outbox message of %zu bytes is too large: "
		    "rejected", c.len);
		(void)amqp_basic_reject(am.conn, AM_CHANNEL, c.tag, 0);
	} else
		qmgr_mq_deliver(c.tag, c.body != NULL ? c.body : "", c.len);
	free(c.body);
}

/* connection.unblocked: send what was held, in order. */
static void
unhold(void)
{
	struct am_pub	*p;

	while (!am.blocked && am.up && !am.dead &&
	    (p = TAILQ_FIRST(&am.held)) != NULL) {
		TAILQ_REMOVE(&am.held, p, entry);
		pub_send(p, p->queue, p->body, p->len, p->mandatory,
		    p->expiration);
		free(p->queue);
		free(p->body);
		free(p->expiration);
		p->queue = p->body = p->expiration = NULL;
	}
}

/* One method frame after setup. */
static int
method(amqp_frame_t *f)
{
	amqp_basic_ack_t	*ack;
	amqp_basic_nack_t	*nack;
	amqp_channel_close_t	*cc;
	amqp_connection_close_t	*xc;
	char			 why[300];

	switch (f->payload.method.id) {
	case AMQP_BASIC_DELIVER_METHOD:
		am.c.kind = AM_C_DELIVER;
		am.c.tag = ((amqp_basic_deliver_t *)
		    f->payload.method.decoded)->delivery_tag;
		return 0;
	case AMQP_BASIC_RETURN_METHOD:
		am.c.kind = AM_C_RETURN;
		return 0;
	case AMQP_BASIC_ACK_METHOD:
		ack = f->payload.method.decoded;
		confirm(ack->delivery_tag, ack->multiple, 0);
		return 0;
	case AMQP_BASIC_NACK_METHOD:
		nack = f->payload.method.decoded;
		confirm(nack->delivery_tag, nack->multiple, 1);
		return 0;
	case AMQP_CONNECTION_BLOCKED_METHOD:
		log_warnx("rabbitmq: connection blocked by the broker");
		am.blocked = 1;
		return 0;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		log_info("rabbitmq: connection unblocked");
		am.blocked = 0;
		unhold();
		return am.up && !am.dead ? 0 : -1;
	case AMQP_CHANNEL_CLOSE_METHOD:
		cc = f->payload.method.decoded;
		snprintf(why, sizeof(why), "channel closed by the broker: "
		    "%u %.*s", cc->reply_code, (int)cc->reply_text.len,
		    (char *)cc->reply_text.bytes);
		am_lost(why);
		return -1;
	case AMQP_CONNECTION_CLOSE_METHOD:
		xc = f->payload.method.decoded;
		snprintf(why, sizeof(why), "closed by the broker: %u %.*s",
		    xc->reply_code, (int)xc->reply_text.len,
		    (char *)xc->reply_text.bytes);
		am_lost(why);
		return -1;
	case AMQP_BASIC_CANCEL_METHOD:
		am_lost("the broker cancelled the outbox consumer");
		return -1;
	default:
		log_debug("rabbitmq: ignoring method %#x",
		    f->payload.method.id);
		return 0;
	}
}

/* One decoded frame: -1 when the connection was dropped. */
static int
frame(amqp_frame_t *f)
{
	amqp_basic_properties_t	*props;
	size_t			 n;

	if (f->channel != AM_CHANNEL && f->frame_type != AMQP_FRAME_METHOD)
		return 0;
	switch (f->frame_type) {
	case AMQP_FRAME_METHOD:
		return method(f);
	case AMQP_FRAME_HEADER:
		if (am.c.kind == AM_C_NONE) {
			am_lost("content header without a method");
			return -1;
		}
		am.c.len = (size_t)f->payload.properties.body_size;
		if (am.c.kind == AM_C_RETURN) {
			props = f->payload.properties.decoded;
			am.c.seq = header_seq(props);
			am.c.toolarge = 1;	/* its body is not kept */
		} else if (f->payload.properties.body_size > AM_BODY_MAX)
			am.c.toolarge = 1;
		else
			am.c.body = xmalloc(am.c.len + 1);
		if (am.c.len == 0)
			content_done();
		return 0;
	case AMQP_FRAME_BODY:
		n = f->payload.body_fragment.len;
		if (am.c.kind == AM_C_NONE || n > am.c.len - am.c.got) {
			am_lost("unexpected content body");
			return -1;
		}
		if (am.c.body != NULL)
			memcpy(am.c.body + am.c.got,
			    f->payload.body_fragment.bytes, n);
		am.c.got += n;
		if (am.c.got == am.c.len) {
			if (am.c.body != NULL)
				am.c.body[am.c.len] = '\0';
			content_done();
		}
		return 0;
	default:
		return 0;	/* heartbeats */
	}
}

/* EV_READ: decode every frame there is, without waiting for more. */
static void
am_read(int fd, short ev, void *arg)
{
	struct timeval	 zero = { 0, 0 };
	amqp_frame_t	 f;
	int		 rv;

	if (ev & EV_READ)
		clock_gettime(CLOCK_MONOTONIC, &am.last_rx);
	while (am.up && !am.dead) {
		rv = amqp_simple_wait_frame_noblock(am.conn, &f, &zero);
		if (rv == AMQP_STATUS_TIMEOUT)
			break;
		if (rv != AMQP_STATUS_OK) {
			am_lost(amqp_error_string2(rv));
			return;
		}
		if (frame(&f) == -1)
			return;
	}
	if (am.up && !am.dead)
		amqp_maybe_release_buffers(am.conn);
}

static void
pub_free(struct am_pub *p)
{
	free(p->queue);
	free(p->body);
	free(p->expiration);
	free(p);
}

/* Send p (its sequence number assigned now) and wait for its confirm. */
static void
pub_send(struct am_pub *p, const char *queue, const char *body, size_t len,
    int mandatory, const char *expiration)
{
	amqp_basic_properties_t	 props;
	amqp_table_entry_t	 h;
	amqp_bytes_t		 b;
	int			 rv;

	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG |
	    AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = 2;
	h.key = amqp_cstring_bytes(AM_SEQ_HEADER);
	h.value.kind = AMQP_FIELD_KIND_I64;
	h.value.value.i64 = (int64_t)(am.seq + 1);
	props.headers.num_entries = 1;
	props.headers.entries = &h;
	if (expiration != NULL) {
		props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
		props.expiration = amqp_cstring_bytes(expiration);
	}
	b.len = len;
	b.bytes = (void *)(uintptr_t)body;
	p->seq = ++am.seq;
	TAILQ_INSERT_TAIL(&am.pubs, p, entry);
	rv = amqp_basic_publish(am.conn, AM_CHANNEL, amqp_empty_bytes,
	    amqp_cstring_bytes(queue), mandatory, 0, &props, b);
	if (rv != AMQP_STATUS_OK)
		am_fail_later(rv);
}

/*
 * Publish body to queue through the default exchange, persistent, with a
 * confirm reported to cb (may be NULL).  expiration: per-message TTL in ms
 * as text, or NULL.  -1 (nothing sent, cb not called) when the broker is
 * not there; a write that fails is reported as QMGR_PUB_LOST later.
 * While the connection is blocked the publish is held (copied) and sent
 * on connection.unblocked.
 */
int
qmgr_amqp_publish(const char *queue, const char *body, size_t len,
    int mandatory, const char *expiration, qmgr_amqp_cb cb, void *arg)
{
	struct am_pub		*p;

	if (!qmgr_amqp_up())
		return -1;
	p = xcalloc(1, sizeof(*p));
	p->cb = cb;
	p->arg = arg;
	if (am.blocked) {
		p->queue = xstrdup(queue);
		p->body = xmalloc(len + 1);
		memcpy(p->body, body, len);
		p->len = len;
		p->mandatory = mandatory;
		p->expiration = expiration != NULL ? xstrdup(expiration) : NULL;
		TAILQ_INSERT_TAIL(&am.held, p, entry);
		return 0;
	}
	pub_send(p, queue, body, len, mandatory, expiration);
	return 0;
}

/* Acknowledge a consumed message of connection generation gen. */
void
qmgr_amqp_ack(uint64_t tag, uint32_t gen)
{
	int	 rv;

	if (!qmgr_amqp_up() || gen != am.gen)
		return;		/* redelivered by the broker anyway */
	if ((rv = amqp_basic_ack(am.conn, AM_CHANNEL, tag, 0)) != 0)
		am_fail_later(rv);
}

/* Reject (no requeue) a consumed message of generation gen. */
void
qmgr_amqp_reject(uint64_t tag, uint32_t gen)
{
	int	 rv;

	if (!qmgr_amqp_up() || gen != am.gen)
		return;
	if ((rv = amqp_basic_reject(am.conn, AM_CHANNEL, tag, 0)) != 0)
		am_fail_later(rv);
}

/* The broker said connection.blocked: publish less (a hint). */
int
qmgr_amqp_blocked(void)
{
	return am.blocked;
}
