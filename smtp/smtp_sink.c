/*
 * The sink (smtp-sink-address, -port): when set, every connection goes
 * there instead of the host the route chose (DESIGN section 5).  Its name
 * is resolved once, when the worker starts (or a reload names another
 * sink), through the resolver: A first, AAAA when there is no A; an IP
 * address needs no lookup.  The first address found is the sink's.
 *
 * Until it is known, jobs wait here.  The resolver may not be connected
 * yet when the worker starts, or may be restarting: a failed lookup is
 * tried again every second while jobs wait (else after 1 s, doubling up
 * to 30 s), and a job that has waited SMTP_SINK_WAIT seconds when a
 * lookup fails is deferred (4.4.3) rather than kept without bound.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns_parse.h"
#include "hostport.h"
#include "log.h"
#include "proto.h"
#include "smtp.h"
#include "xmalloc.h"

#define SINK_RETRY_MIN	1
#define SINK_RETRY_MAX	30

static struct {
	char			*name;		/* what is resolved, "" none */
	int			 port;
	int			 ready;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	struct smtp_res_req	*q;
	int			 qtype;
	int			 retry;		/* seconds to the next try */
	struct event		 ev;
	int			 ev_set;
	char			 err[SMTP_TEXT_MAX];
} sink;

static TAILQ_HEAD(, smtp_job)	 sink_jobs = TAILQ_HEAD_INITIALIZER(sink_jobs);

static void	smtp_sink_lookup(int qtype);
static void	smtp_sink_timer_cb(int, short, void *);

static time_t
smtp_sink_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/*
 * Jobs waiting: on with the route once the address is known (or the sink
 * is gone from the config); deferred when they waited long enough.
 */
static void
smtp_sink_release(void)
{
	struct smtp_job	*j, *next;
	time_t		 now = smtp_sink_now();
	int		 go = sink.ready || sink.name[0] == '\0';

	for (j = TAILQ_FIRST(&sink_jobs); j != NULL; j = next) {
		next = TAILQ_NEXT(j, swait);
		if (!go && now - j->sink_since < SMTP_SINK_WAIT)
			continue;
		TAILQ_REMOVE(&sink_jobs, j, swait);
		j->sink_waiting = 0;
		if (go)
			smtp_route_start(j);
		else {
			smtp_job_rcpt_all(j, RCPT_DEFERRED, 0, "4.4.3",
			    sink.err, NULL);
			smtp_job_done(j);
		}
	}
}

/* Arm the one timer in secs, unless it is armed already. */
static void
smtp_sink_timer(int secs)
{
	struct timeval	 tv = { secs, 0 };

	if (!sink.ev_set) {
		evtimer_set(&sink.ev, smtp_sink_timer_cb, NULL);
		sink.ev_set = 1;
	}
	if (!evtimer_pending(&sink.ev, NULL))
		evtimer_add(&sink.ev, &tv);
}

/* A retry is due, or waiting jobs are checked: both, every time. */
static void
smtp_sink_timer_cb(int fd, short ev, void *arg)
{
	smtp_sink_release();
	smtp_sink_kick();
	if (!TAILQ_EMPTY(&sink_jobs))
		smtp_sink_timer(1);
}

/* The lookup failed: say why, defer who waited long, try again later. */
static void
smtp_sink_failed(const char *what)
{
	int	 secs;

	/* Every second while jobs wait; backing off while none does. */
	secs = TAILQ_EMPTY(&sink_jobs) ? sink.retry : SINK_RETRY_MIN;
	snprintf(sink.err, sizeof(sink.err), "sink %s: %s", sink.name, what);
	log_warnx("%s; trying again in %ds", sink.err, secs);
	if (sink.ev_set)
		evtimer_del(&sink.ev);
	smtp_sink_timer(secs);
	sink.retry = sink.retry * 2 > SINK_RETRY_MAX ? SINK_RETRY_MAX :
	    sink.retry * 2;
	smtp_sink_release();
}

/* An answer: the first usable address is the sink's; else AAAA, else wait. */
static void
smtp_sink_answer(const struct dns_answer *a, void *arg)
{
	char	 ip[HOSTPORT_IPSTRLEN];
	size_t	 i;

	sink.q = NULL;
	for (i = 0; a->status == RES_OK && i < a->n; i++)
		if (hostport_ip(a->v[i].value, sink.port, &sink.ss,
		    &sink.sslen) == 0) {
			sink.ready = 1;
			log_info("sink %s is %s port %d", sink.name,
			    hostport_ntop((struct sockaddr *)&sink.ss, ip,
			    sizeof(ip)), sink.port);
			smtp_sink_release();
			return;
		}
	if (sink.qtype == RES_T_A && a->status != RES_TEMPFAIL) {
		smtp_sink_lookup(RES_T_AAAA);
		return;
	}
	smtp_sink_failed(a->status == RES_TEMPFAIL ? "name service error, "
	    "try again" : "no address for this name");
}

static void
smtp_sink_lookup(int qtype)
{
	sink.qtype = qtype;
	sink.q = smtp_res_query(qtype, sink.name, smtp_sink_answer, NULL);
}

/* Resolve now if it is needed and the resolver is there to ask. */
void
smtp_sink_kick(void)
{
	if (sink.name == NULL || sink.name[0] == '\0' || sink.ready ||
	    sink.q != NULL || !smtp_res_connected())
		return;
	if (sink.ev_set && evtimer_pending(&sink.ev, NULL) &&
	    TAILQ_EMPTY(&sink_jobs))
		evtimer_del(&sink.ev);
	log_debug("resolving sink %s", sink.name);
	smtp_sink_lookup(RES_T_A);
}

void
smtp_sink_configure(void)
{
	if (sink.name != NULL && strcmp(sink.name, smtp_conf.sink) == 0 &&
	    sink.port == smtp_conf.sink_port)
		return;
	if (sink.q != NULL)
		smtp_res_cancel(sink.q);
	if (sink.ev_set)
		evtimer_del(&sink.ev);
	free(sink.name);
	sink.name = xstrdup(smtp_conf.sink);
	sink.port = smtp_conf.sink_port;
	sink.q = NULL;
	sink.ready = 0;
	sink.retry = SINK_RETRY_MIN;
	snprintf(sink.err, sizeof(sink.err), "sink %s: not resolved yet",
	    sink.name);
	if (sink.name[0] != '\0' &&
	    hostport_ip(sink.name, sink.port, &sink.ss, &sink.sslen) == 0) {
		sink.ready = 1;
		log_info("sink %s port %d", sink.name, sink.port);
	}
	smtp_sink_release();
	smtp_sink_kick();
	if (!TAILQ_EMPTY(&sink_jobs))
		smtp_sink_timer(1);
}

const struct sockaddr *
smtp_sink_addr(socklen_t *len)
{
	if (!sink.ready)
		return NULL;
	*len = sink.sslen;
	return (struct sockaddr *)&sink.ss;
}

void
smtp_sink_wait(struct smtp_job *j)
{
	log_debug("%s: waiting for the sink's address", j->msgid);
	j->sink_waiting = 1;
	j->sink_since = smtp_sink_now();
	TAILQ_INSERT_TAIL(&sink_jobs, j, swait);
	smtp_sink_kick();
	smtp_sink_timer(1);
}

void
smtp_sink_forget(struct smtp_job *j)
{
	if (!j->sink_waiting)
		return;
	TAILQ_REMOVE(&sink_jobs, j, swait);
	j->sink_waiting = 0;
}
