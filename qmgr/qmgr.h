/*
 * qmgr: the queue manager.  It owns the spool (qmgr_spool.c), keeps every
 * queued message's envelope in memory (qmgr_envelope.c), sorts recipients
 * into queues and decides when each is tried (qmgr_queue.c, qmgr_heap.c),
 * and hands jobs to the smtp workers and records their results
 * (qmgr_deliver.c).  qmgr.c is the entry point and the message dispatch.
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
 *
 * A recipient that is not final is in exactly one place: the wait heap
 * (due later), its qmsg's due list (due now, waiting for capacity) or a
 * job (in flight).
 */
#ifndef MTAD_QMGR_H
#define MTAD_QMGR_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "envelope.h"
#include "msgid.h"

struct chan;
struct msg;

#define QMGR_QUEUE_MAX_INFLIGHT	20	/* jobs per queue */
#define QMGR_WORKER_MAX_INFLIGHT 100	/* jobs per smtp worker */
#define QMGR_JOB_MAX_RCPT	100	/* RFC 5321 4.5.3.1.8: servers take 100 */
#define QMGR_SMARTHOST_KEY	"(smarthost)"
#define QMGR_NODOMAIN_KEY	"(nodomain)"

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

struct qmgr_rcpt {
	struct qmgr_msg		*msg;
	size_t			 idx;		/* in msg->env.rcpts */
	int			 where;
#define QMGR_RCPT_FINAL		0	/* delivered or failed: nowhere */
#define QMGR_RCPT_WAIT		1	/* in the heap until env next */
#define QMGR_RCPT_DUE		2	/* in qmsg->due */
#define QMGR_RCPT_FLIGHT	3	/* in a job */
	struct qmgr_qmsg	*qmsg;		/* NULL when final */
	size_t			 heap_idx;
	TAILQ_ENTRY(qmgr_rcpt)	 due_entry;
};

struct qmgr_qmsg {
	struct qmgr_msg		*msg;
	struct qmgr_queue	*queue;
	size_t			 nrcpt;		/* attached recipients */
	int			 on_due;	/* in queue->due */
	TAILQ_HEAD(, qmgr_rcpt)	 due;
	TAILQ_ENTRY(qmgr_qmsg)	 msg_entry;
	TAILQ_ENTRY(qmgr_qmsg)	 due_entry;
};

struct qmgr_queue {
	char			*key;
	size_t			 nqmsg;		/* references */
	size_t			 ninflight;	/* jobs */
	int			 on_ready;
	TAILQ_HEAD(, qmgr_qmsg)	 due;		/* qmsgs with due recipients */
	TAILQ_ENTRY(qmgr_queue)	 ready_entry;
};

struct qmgr_msg {
	struct envelope		 env;
	struct qmgr_rcpt	*rcpts;		/* env.nrcpt of them */
	size_t			 nfinal;
	char			*route_key;	/* per-message smarthost */
	TAILQ_HEAD(, qmgr_qmsg)	 qmsgs;
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
	TAILQ_ENTRY(qmgr_job)	 entry;
};

/* Process-wide state: the config slice and every table. */
struct qmgr {
	char			*spool_dir;
	int			*retries;
	size_t			 nretries;
	int			 max_delivery_time;
	int			 smarthost;	/* a global smarthost is set */

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
int	 qmgr_spool_open_data(const char *id);
void	 qmgr_spool_update(struct qmgr_msg *);
void	 qmgr_spool_remove(struct qmgr_msg *);

/* qmgr_envelope.c */
int	 qmgr_envelope_read(int dirfd, const char *name, struct envelope *,
	    char **cause);
int	 qmgr_envelope_write(int dirfd, const char *name,
	    const struct envelope *, int sync);
struct qmgr_msg *qmgr_msg_new(struct envelope *);
void	 qmgr_msg_free(struct qmgr_msg *);
int	 qmgr_msg_done(struct qmgr_msg *);

/* qmgr_queue.c */
void	 qmgr_queue_init(void);
void	 qmgr_queue_add_msg(struct qmgr_msg *);
void	 qmgr_queue_rcpt_schedule(struct qmgr_rcpt *);
void	 qmgr_queue_rcpt_final(struct qmgr_rcpt *);
void	 qmgr_queue_job_done(struct qmgr_queue *);
void	 qmgr_queue_rekey(void);
void	 qmgr_queue_kick(void);

/* qmgr_heap.c: recipients waiting for their due time, earliest first */
void	 qmgr_heap_push(struct qmgr_rcpt *);
void	 qmgr_heap_remove(struct qmgr_rcpt *);
struct qmgr_rcpt *qmgr_heap_top(void);

/* qmgr_deliver.c */
struct qmgr_worker *qmgr_deliver_worker_new(uint32_t instance);
struct qmgr_worker *qmgr_deliver_worker_find(uint32_t instance);
void	 qmgr_deliver_worker_closed(struct qmgr_worker *);
int	 qmgr_deliver_capacity(void);
void	 qmgr_deliver_job(struct qmgr_qmsg *, struct qmgr_rcpt **, size_t);
void	 qmgr_deliver_result(struct chan *, struct msg *);

#endif
