/*
 * qmgr's side of mtactl (qmgr_control.c: the requests; qmgr_ctlindex.c:
 * the per-queue index they read).  Only these two files include this;
 * the hooks the rest of qmgr calls are declared in qmgr.h.
 */
#ifndef MTAD_QMGR_CTL_H
#define MTAD_QMGR_CTL_H

#include <stddef.h>
#include <stdint.h>

struct ci_heap;
struct qmgr_msg;
struct qmgr_table;

/* The sums of one queue key over its pending recipients. */
struct ci_queue {
	char		*key;
	size_t		 nrcpt;		/* pending (not final) */
	size_t		 ndeferred;	/* of those, attempted before */
	size_t		 nheld;		/* of those, held */
	size_t		 nactive;	/* in flight: set per request */
	struct ci_heap	*by_age;
	struct ci_heap	*by_next;
};

/* qmgr_ctlindex.c */
void		 qmgr_ctlindex_check(void);
struct ci_queue	*qmgr_ctlindex_queue(const char *key);
struct qmgr_table *qmgr_ctlindex_queues(void);
size_t		 qmgr_ctlindex_nmsg(const struct ci_queue *);
const char	*qmgr_ctlindex_msgid(const struct ci_queue *, size_t);
int64_t		 qmgr_ctlindex_oldest(const struct ci_queue *);
int64_t		 qmgr_ctlindex_next(const struct ci_queue *);

/* One request from the master (MSG_CTL_QMGR_REQUEST). */
struct ctl_req {
	const char	*cmd;
	const char	*arg;
	uint32_t	 flags;		/* CTL_F_* */
	uint32_t	 limit;		/* 1..CTL_LIMIT_MAX */
	uint32_t	 offset;
};

/* What an ID|QUEUE argument names: one message, one queue, or all. */
struct ctl_target {
	struct qmgr_msg	*msg;
	struct ci_queue	*queue;
	const char	*key;		/* queue->key when a queue */
	int		 all;
};

struct json_object;
struct qmgr_rcpt;

/* qmgr_control.c */
void		 qmgr_control_changed(struct qmgr_msg *);
int		 qmgr_control_target(const char *, int allow_all,
		    struct ctl_target *, char **cause);
char		*qmgr_control_target_ids(const struct ctl_target *,
		    size_t *n);
int		 qmgr_control_covers(const struct ctl_target *,
		    const struct qmgr_rcpt *);
const char	*qmgr_control_rcpt_state(const struct qmgr_rcpt *);

/* qmgr_ctlview.c: the read-only answers */
struct json_object *qmgr_ctlview_queue(struct ctl_req *, char **);
struct json_object *qmgr_ctlview_list(struct ctl_req *, char **);
struct json_object *qmgr_ctlview_show(struct ctl_req *, char **);

#endif
