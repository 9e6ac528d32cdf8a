/*
 * qmgr: the queue manager.  It owns the spool (qmgr_spool.c), keeps every
 * queued message's envelope in memory (qmgr_envelope.c), sorts recipients
 * into queues and decides when each is tried (qmgr_queue.c, qmgr_heap.c),
 * and hands jobs to the smtp workers and records their results
 * (qmgr_deliver.c), telling senders about failures, delays and, when
 * asked, successes with RFC 3464 DSNs (qmgr_bounce.c, common/dsn.c).
 * qmgr.c is the entry point and the message dispatch.
 *
 * Objects and who owns what:
 *	qmgr_msg	one committed message: its envelope, one qmgr_rcpt
 *			per recipient; lives until every recipient is final.
 *	qmgr_queue	a scheduling key (recipient domain, "(smarthost)" or
 *			"(smarthost) HOST:PORT"): concurrency is counted here.
 *	qmgr_qmsg	the part of one message that is in one queue: the
 *			unit a job is made of.  Holds a reference on its
 *			queue; freed when no recipient is attached to it.
 *	qmgr_job	recipients of one qmsg in flight on one smtp worker.
 *	qmgr_report	outcomes of one batch (a job's result, a sweep of a
 *			suspended queue) of one message that its sender is
 *			told about: at most one DSN per kind and batch.
 *
 * A recipient that is not final is in exactly one place: the wait heap
 * (due later), its qmsg's due list (due now, waiting for capacity) or a
 * job (in flight) -- or nowhere but its qmsg while held (mtactl hold).
 */
#ifndef MTAD_QMGR_H
#define MTAD_QMGR_H

#include <sys/queue.h>
#include <sys/types.h>

#include <event.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "envelope.h"
#include "msgid.h"
#include "msgprops.h"

struct chan;
struct msg;

#define QMGR_JOB_MAX_RCPT	100	/* RFC 5321 4.5.3.1.8: servers take 100 */
#define QMGR_BACKOFF_FAILURES	3	/* connection failures in a row */
#define QMGR_SMARTHOST_KEY	"(smarthost)"
#define QMGR_NODOMAIN_KEY	"(nodomain)"
#define QMGR_STAGE_MAX		16	/* "starttls" and the like */

/* A hash table from byte-string keys to objects that hold the key. */
struct qmgr_tentry;
struct qmgr_table {
	struct qmgr_tentry	**buckets;
	size_t			  nbuckets;
	size_t			  count;
};

/* Iteration: deleting the entry just returned is allowed. */
struct qmgr_titer {
	size_t			 bucket;
	struct qmgr_tentry	*next;
};

void	 qmgr_table_init(struct qmgr_table *);
void	*qmgr_table_get(struct qmgr_table *, const void *, size_t);
void	 qmgr_table_put(struct qmgr_table *, const void *, size_t, void *);
void	*qmgr_table_del(struct qmgr_table *, const void *, size_t);
void	 qmgr_titer_init(struct qmgr_table *, struct qmgr_titer *);
void	*qmgr_titer_next(struct qmgr_table *, struct qmgr_titer *);

/* Narrow fields at the end: one per queued recipient (48 bytes). */
struct qmgr_rcpt {
	struct qmgr_msg		*msg;
	struct qmgr_qmsg	*qmsg;		/* NULL when final */
	TAILQ_ENTRY(qmgr_rcpt)	 due_entry;	/* qmsg->due; while waiting
						   with noreply: queue->noreply */
	uint32_t		 idx;		/* in msg->env.rcpts */
	uint32_t		 heap_idx;
	uint8_t			 where;
#define QMGR_RCPT_FINAL		0	/* delivered or failed: nowhere */
#define QMGR_RCPT_WAIT		1	/* in the heap until env next */
#define QMGR_RCPT_DUE		2	/* in qmsg->due */
#define QMGR_RCPT_FLIGHT	3	/* in a job */
#define QMGR_RCPT_HELD		4	/* env "held" (mtactl hold): in its
					   qmsg, in no list until released */
	uint8_t			 noreply;	/* last deferred because the
						   destination was down: may be
						   released early (qmgr_queue.c) */
	uint8_t			 released;	/* due by such a release */
	uint8_t			 stage;		/* of the last attempt, for the
						   RabbitMQ results:
						   qmgr_stage_name() */
};

struct qmgr_qmsg {
	struct qmgr_msg		*msg;
	struct qmgr_queue	*queue;
	uint32_t		 nrcpt;		/* attached recipients */
	int			 on_due;	/* in queue->due */
	TAILQ_HEAD(, qmgr_rcpt)	 due;
	TAILQ_ENTRY(qmgr_qmsg)	 msg_entry;
	TAILQ_ENTRY(qmgr_qmsg)	 due_entry;
};

struct qmgr_queue {
	char			*key;
	size_t			 nqmsg;		/* references */
	size_t			 ninflight;	/* jobs */
	int			 on_list;
#define QMGR_QLIST_NONE		0
#define QMGR_QLIST_READY	1	/* due work and capacity */
#define QMGR_QLIST_SWEEP	2	/* suspended, with due work */
	TAILQ_HEAD(, qmgr_qmsg)	 due;		/* qmsgs with due recipients */
	TAILQ_ENTRY(qmgr_queue)	 ready_entry;	/* on either list */

	/* Back-off of a destination that cannot be reached (qmgr_queue.c) */
	int			 state;
#define QMGR_QUEUE_OK		0
#define QMGR_QUEUE_SUSPENDED	1	/* no connection until "until" */
#define QMGR_QUEUE_PROBING	2	/* one job at a time */
	uint32_t		 nconnfail;	/* failures in a row */
	uint32_t		 nbackoff;	/* suspensions in a row */
	int64_t			 until;
	char			*reason;	/* last connection failure */
	struct event		 timer;		/* end of the suspension */

	/* Early release of deferrals without a reply (qmgr_queue.c) */
	TAILQ_HEAD(, qmgr_rcpt)	 noreply;	/* waiting rcpts with noreply */
	size_t			 nnoreply;
	size_t			 nwait;		/* recipients in the heap */
	uint32_t		 nreply;	/* results with a reply (wraps) */
	int			 releasing;	/* on the release list */
	TAILQ_ENTRY(qmgr_queue)	 release_entry;
	struct qmgr_rcpt	*probe;		/* qmgr_queue_recovered() only */
};

/* A job's result classified for the queue's back-off. */
#define QMGR_FEEDBACK_NONE	0	/* says nothing about the host */
#define QMGR_FEEDBACK_REPLY	1	/* an SMTP server answered */
#define QMGR_FEEDBACK_CONNFAIL	2	/* no server could be reached */

/* Where a message lives in the spool (qmgr_spool.c, common/spool_slot.h). */
struct qmgr_slot {
	uint32_t		 num;		/* file slots/NUM */
	int32_t			 half;		/* of the current header, -1 none */
	uint32_t		 env_len;	/* the current envelope, 0: none */
	uint64_t		 env_off;
	uint64_t		 data_len;
};

/*
 * A message's share of one queue in mtactl's index (qmgr_ctlindex.c):
 * its pending recipients there, of which deferred and held, and the
 * earliest due time of those neither held nor in flight.
 */
struct ci_queue;
struct qmgr_ctlshare {
	struct qmgr_msg		*msg;
	struct ci_queue		*q;
	int64_t			 next;		/* INT64_MAX: none */
	uint32_t		 nrcpt;
	uint32_t		 ndeferred;
	uint32_t		 nheld;
	uint32_t		 idx[2];	/* in q's two heaps */
};

/* A message's record in mtactl's index, kept with the message. */
struct qmgr_ctlrec {
	struct qmgr_ctlshare	 share;		/* the first (most have one) */
	struct qmgr_ctlshare	*more;		/* nshares - 1 others */
	uint32_t		 nshares;
	uint32_t		 indexed;	/* the index has the message */
	uint64_t		 attempts;	/* totals for mtactl stats */
	uint32_t		 ndelivered;
	uint32_t		 nfailed;
};

/*
 * One allocation holds the message, its props (when it has any), its
 * qmgr_rcpts, its env.rcpts and their addresses (qmgr_msg_new); the
 * other strings of env are shared with other messages (envelope_share):
 * change them with envelope_set().
 */
struct qmgr_msg {
	struct envelope		 env;
	struct qmgr_slot	 slot;
	struct qmgr_rcpt	*rcpts;		/* env.nrcpt of them */
	uint32_t		 nfinal;
	int			 transient;	/* from the outbox: data in its
						   slot, never committed */
	char			*route_key;	/* per-message smarthost */
	struct msgprops		*props;		/* per-message settings; never
						   NULL (a shared empty one) */
	TAILQ_HEAD(, qmgr_qmsg)	 qmsgs;
	struct qmgr_mq		*mq;		/* RabbitMQ state, qmgr_mq.c */
	struct qmgr_ctlrec	 ctl;		/* qmgr_ctlindex.c */
};

struct qmgr_worker {
	struct chan		*chan;
	uint32_t		 instance;
	size_t			 ninflight;
	TAILQ_HEAD(, qmgr_job)	 jobs;
	TAILQ_ENTRY(qmgr_worker) entry;
};

struct qmgr_job {
	uint32_t		 id;
	struct qmgr_worker	*worker;
	struct qmgr_qmsg	*qmsg;
	struct qmgr_rcpt	**rcpts;
	size_t			 nrcpt;
	uint32_t		 nreply;	/* its queue's nreply at the start */
	TAILQ_ENTRY(qmgr_job)	 entry;
};

/* Recipients of one message to report on, by DSN action. */
struct qmgr_report {
	struct qmgr_msg		*msg;
	struct qmgr_rcpt	**rcpts[3];	/* by DSN_ACTION_* */
	size_t			  n[3];
	size_t			  cap;
};

/* Process-wide state: the config slice and every table. */
struct qmgr {
	char			*spool_dir;
	char			*hostname;	/* Reporting-MTA of DSNs */
	int			*retries;
	size_t			 nretries;
	int			 max_delivery_time;
	int			 delay_warning_time;	/* 0: off */
	int			 max_per_queue;	/* jobs in flight per queue */
	int			 max_inflight;	/* jobs in flight in all */
	size_t			 ninflight;
	int			 smarthost;	/* a global smarthost is set */

	/* RabbitMQ bridge (qmgr_mq.c); mq_on when rabbitmq-address is set */
	int			 mq_on;
	char			*mq_address;
	char			*mq_inbox;	/* "" : the outbox */
	char			*mq_outbox;
	char			*mq_results;
	char			*mq_success;
	char			*mq_failure;
	char			*mq_retry;
	int			 mq_prefetch;
	int			 mq_spool_max;
	int			 mq_heartbeat;	/* s, 0: off */

	struct chan		*smtpd;
	struct chan		*resolver;
	TAILQ_HEAD(, qmgr_worker) workers;

	struct qmgr_table	 msgs;		/* committed, by id */
	struct qmgr_table	 pending;	/* created, by id */
	struct qmgr_table	 queues;	/* by key */
	struct qmgr_table	 jobs;		/* by job id */
};

extern struct qmgr	 qmgr;

/* qmgr_spool.c */
void	 qmgr_spool_init(void);
void	 qmgr_spool_recover(void);
void	 qmgr_spool_create(struct chan *, struct msg *);
void	 qmgr_spool_commit(struct chan *, struct msg *);
void	 qmgr_spool_rollback(struct chan *, struct msg *);
void	 qmgr_spool_smtpd_closed(struct chan *);
int	 qmgr_spool_open_data(const struct qmgr_msg *);
ssize_t	 qmgr_spool_read_data(const struct qmgr_msg *, char *, size_t);
int	 qmgr_spool_new(char id[MSGID_SIZE], struct qmgr_slot *);
int	 qmgr_spool_inject(int fd, struct qmgr_slot *, struct envelope *);
void	 qmgr_spool_discard(struct qmgr_slot *, int fd);
void	 qmgr_spool_update(struct qmgr_msg *);
void	 qmgr_spool_remove(struct qmgr_msg *);

/* qmgr_sync.c: spool writes on threads, finished in the loop */
void	 qmgr_sync_init(void);
void	 qmgr_sync_submit(void (*)(void *), void (*)(void *), void *);

/* qmgr_envelope.c */
int	 qmgr_envelope_read(int dirfd, const char *name, struct envelope *,
	    char **cause);
struct qmgr_msg *qmgr_msg_new(struct envelope *);
void	 qmgr_msg_free(struct qmgr_msg *);
int	 qmgr_msg_done(struct qmgr_msg *);
uint8_t	 qmgr_stage_index(const char *);
const char *qmgr_stage_name(uint8_t);

/* qmgr_queue.c */
void	 qmgr_queue_init(void);
void	 qmgr_queue_add_msg(struct qmgr_msg *);
void	 qmgr_queue_rcpt_schedule(struct qmgr_rcpt *);
void	 qmgr_queue_rcpt_final(struct qmgr_rcpt *);
void	 qmgr_queue_rcpt_unplace(struct qmgr_rcpt *);
void	 qmgr_queue_rcpt_drop(struct qmgr_rcpt *);
void	 qmgr_queue_probe_now(struct qmgr_queue *);
void	 qmgr_queue_job_done(struct qmgr_queue *);
void	 qmgr_queue_feedback(struct qmgr_queue *, int, const char *);
void	 qmgr_queue_delivered(struct qmgr_queue *);
int	 qmgr_queue_unreached(uint32_t, const char *, const char *);
void	 qmgr_queue_recovered(void);
void	 qmgr_queue_wake(const char *);
void	 qmgr_queue_rekey(void);
void	 qmgr_queue_recap(void);
void	 qmgr_queue_kick(void);

/* qmgr_heap.c: recipients waiting for their due time, earliest first */
void	 qmgr_heap_push(struct qmgr_rcpt *);
void	 qmgr_heap_remove(struct qmgr_rcpt *);
struct qmgr_rcpt *qmgr_heap_top(void);
struct qmgr_rcpt *qmgr_heap_at(size_t);

/* qmgr_deliver.c */
struct qmgr_worker *qmgr_deliver_worker_new(uint32_t instance);
struct qmgr_worker *qmgr_deliver_worker_find(uint32_t instance);
void	 qmgr_deliver_worker_closed(struct qmgr_worker *);
int	 qmgr_deliver_capacity(void);
void	 qmgr_deliver_job(struct qmgr_qmsg *, struct qmgr_rcpt **, size_t);
void	 qmgr_deliver_result(struct chan *, struct msg *);
void	 qmgr_deliver_suspended(struct qmgr_qmsg *, struct qmgr_rcpt **,
	    size_t, const char *);
int64_t	 qmgr_deliver_expiry(const struct qmgr_msg *);

/* qmgr_amqp.c: the broker connection (publish with confirms, consume) */
#define QMGR_PUB_OK		0	/* confirmed, not returned */
#define QMGR_PUB_RETURNED	1	/* confirmed but unroutable */
#define QMGR_PUB_NACKED		2
#define QMGR_PUB_LOST		3	/* the connection went away */
typedef void	(*qmgr_amqp_cb)(void *, int);
void	 qmgr_amqp_init(const char *);
int	 qmgr_amqp_up(void);
int	 qmgr_amqp_blocked(void);
uint32_t qmgr_amqp_generation(void);
int	 qmgr_amqp_publish(const char *, const char *, size_t, int,
	    const char *, qmgr_amqp_cb, void *);
void	 qmgr_amqp_ack(uint64_t, uint32_t);
void	 qmgr_amqp_reject(uint64_t, uint32_t);

/* qmgr_mq.c: the RabbitMQ bridge (inbox, outbox, results, retries) */
struct qmgr_mq;
void	 qmgr_mq_init(void);
int	 qmgr_mq_take(struct qmgr_msg *);
int	 qmgr_mq_full(void);
void	 qmgr_mq_settle(struct qmgr_msg *);
void	 qmgr_mq_forget(struct qmgr_msg *);
void	 qmgr_mq_connected(void);
void	 qmgr_mq_lost(void);
void	 qmgr_mq_deliver(uint64_t, const char *, size_t);

/* qmgr_bounce.c: delivery status notifications to the sender */
void	 qmgr_report_init(struct qmgr_report *, struct qmgr_msg *, size_t);
void	 qmgr_report_add(struct qmgr_report *, int, struct qmgr_rcpt *);
void	 qmgr_report_free(struct qmgr_report *);
int	 qmgr_bounce_send(struct qmgr_msg *, int, struct qmgr_rcpt **, size_t,
	    int64_t);

/*
 * qmgr_control.c, qmgr_ctlindex.c: mtactl's queue commands.  The index
 * they answer from is told of every message added or saved
 * (qmgr_queue_add_msg, qmgr_spool_update) and removed (qmgr_spool_remove).
 */
void	 qmgr_control_request(struct chan *, struct msg *);
void	 qmgr_ctlindex_changed(struct qmgr_msg *);
void	 qmgr_ctlindex_removed(struct qmgr_msg *);
void	 qmgr_ctlindex_forget(struct qmgr_msg *);	/* not counted */
void	 qmgr_ctlindex_rebuild(void);

#endif
