/*
 * Spool writes off the event loop.  A commit waits for two fdatasync()s
 * and a freed slot for one; made in qmgr's only event loop they would
 * stall every other message behind each of them (three syncs of ~16 us
 * each on the benchmark machine: a third of the loop's time at 7,000
 * messages a second, and far more on a disk where a sync takes
 * milliseconds), and one at a time the device never sees two flushes at
 * once.  So they run on QMGR_SYNC_THREADS threads: the loop prepares
 * everything (the envelope text, the header, the sequence number), a
 * thread makes the system calls, and the loop finishes the job (the reply
 * to smtpd, the pool) when told through a pipe.  Several commits are in
 * flight at once, so concurrent sessions share the device's flushes: a
 * group commit without a group.
 *
 * A job's work function runs on a thread and may only make system calls
 * on what its argument holds (and read constants such as the spool's
 * directory descriptors): no logging, no allocation shared with the loop,
 * no qmgr state.  Its done function runs in the loop, in submission order
 * per thread (not overall: callers must not depend on the order of jobs).
 */
#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"
#include "qmgr.h"
#include "xmalloc.h"

#define QMGR_SYNC_THREADS	4

struct sync_job {
	TAILQ_ENTRY(sync_job)	 entry;
	void			(*work)(void *);
	void			(*done)(void *);
	void			*arg;
};
TAILQ_HEAD(sync_list, sync_job);

static pthread_mutex_t	 sync_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 sync_cond = PTHREAD_COND_INITIALIZER;
static struct sync_list	 queued = TAILQ_HEAD_INITIALIZER(queued);
static struct sync_list	 finished = TAILQ_HEAD_INITIALIZER(finished);
static int		 wake[2] = { -1, -1 };
static struct event	 wake_ev;

/* A thread: take a job, do its work, hand it back to the loop. */
static void *
sync_thread(void *unused)
{
	struct sync_job	*job;
	int		 was_empty;
	char		 c = 0;

	for (;;) {
		pthread_mutex_lock(&sync_lock);
		while ((job = TAILQ_FIRST(&queued)) == NULL)
			pthread_cond_wait(&sync_cond, &sync_lock);
		TAILQ_REMOVE(&queued, job, entry);
		pthread_mutex_unlock(&sync_lock);

		job->work(job->arg);

		pthread_mutex_lock(&sync_lock);
		was_empty = TAILQ_EMPTY(&finished);
		TAILQ_INSERT_TAIL(&finished, job, entry);
		pthread_mutex_unlock(&sync_lock);
		/* A full pipe already holds a wakeup: EAGAIN is fine. */
		if (was_empty)
			(void)!write(wake[1], &c, 1);
	}
	return NULL;
}

/* The loop's side: run the done functions of every finished job. */
static void
sync_wake(int fd, short ev, void *arg)
{
	struct sync_list	 done = TAILQ_HEAD_INITIALIZER(done);
	struct sync_job		*job;
	char			 buf[64];

	while (read(wake[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&sync_lock);
	TAILQ_CONCAT(&done, &finished, entry);
	pthread_mutex_unlock(&sync_lock);
	while ((job = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, job, entry);
		job->done(job->arg);
		free(job);
	}
}

/* Start the threads (after the privilege drop: they inherit it). */
void
qmgr_sync_init(void)
{
	pthread_t	 t;
	sigset_t	 all, old;
	int		 i, error;

	/* crc32c() builds its table on first use: not on two threads. */
	(void)crc32c(0, NULL, 0);
	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("%s: pipe", __func__);
	event_set(&wake_ev, wake[0], EV_READ | EV_PERSIST, sync_wake, NULL);
	event_add(&wake_ev, NULL);
	/* Signals are the loop's: the threads start with all blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < QMGR_SYNC_THREADS; i++) {
		if ((error = pthread_create(&t, NULL, sync_thread, NULL)) != 0) {
			errno = error;
			fatal("%s: pthread_create", __func__);
		}
		pthread_detach(t);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Run work(arg) on a thread, then done(arg) in the loop. */
void
qmgr_sync_submit(void (*work)(void *), void (*done)(void *), void *arg)
{
	struct sync_job	*job;

	job = xcalloc(1, sizeof(*job));
	job->work = work;
	job->done = done;
	job->arg = arg;
	pthread_mutex_lock(&sync_lock);
	TAILQ_INSERT_TAIL(&queued, job, entry);
	pthread_cond_signal(&sync_cond);
	pthread_mutex_unlock(&sync_lock);
}
