/*
 * The spool: where a message becomes durable, and what a restart finds.
 *
 * Under spool-dir (absolute; qmgr is not chrooted):
 *
 *	slots/NUM	slot files, one message each (format and torn-write
 *			rules in common/spool_slot.h).  NUM is a decimal
 *			number from 1.
 *	corrupt/	what recovery could not use, moved aside.
 *	queue/, incoming/	the older format (queue/ID with queue/ID.env):
 *			imported into slots at start, then removed.
 *
 * Why slots.  A file per message that is created, then deleted when the
 * message is done, costs the file system an inode allocation and a block
 * release per message; on ext4 without a journal, mounted with discard,
 * the release waits for the device (~1 ms) and the allocation walks every
 * recently deleted inode (BENCHMARKS.md).  A slot file is reused: a done
 * message's slot is marked free and goes to the pool, and the next message
 * is written over it, so that in a steady state the spool allocates and
 * frees nothing, and a commit is two fdatasync()s of blocks that already
 * exist.  The pool keeps POOL_MAX free slots (and no slot grown past
 * SLOT_KEEP_MAX): after a burst, the extra slots are deleted, oldest
 * first, at most TRIM_BATCH a second, so that draining a large queue is
 * not slowed by as many deletions at once.
 *
 * Create (MSG_QMGR_CREATE): take a slot from the pool (when it is empty,
 * make SLOT_BATCH new files and fsync slots/ once, so that their names
 * survive a crash) and pass smtpd a descriptor positioned at the data
 * offset; smtpd writes the message through it.  The slot's header still
 * says free: a crash loses nothing.
 *
 * Commit (MSG_QMGR_COMMIT): the envelope goes after the data, fdatasync,
 * the header naming the message in the other half, fdatasync.  Only then
 * does smtpd hear COMMIT_OK and answer 250.  A failure marks the slot free
 * again and answers 4xx.  The writes run on qmgr_sync.c's threads, so
 * that the loop goes on with other messages meanwhile and concurrent
 * commits share the device's flushes.  Messages qmgr makes itself (DSNs,
 * qmgr_bounce.c) take the same steps in the loop: qmgr_spool_new, write,
 * qmgr_spool_inject.
 *
 * Update (a message that stays queued): a new envelope clear of the
 * current one, the header in the other half, one fdatasync (the CRC of
 * the envelope tells a torn one; the data does not change).  In the loop:
 * two updates of one message must not cross.
 *
 * Removal, once every recipient is final: a free header, synced on a
 * thread, and only then is the slot back in the pool.  Otherwise a power
 * failure after the next message was written over the data could bring
 * back the old envelope with the new data.
 *
 * Recovery at start: every slot is read; a message is scheduled again and
 * a slot whose header or envelope is not usable is moved to corrupt/ with
 * a log line, so that a bad file never crash-loops qmgr.  Then the older
 * format is imported.  A free slot found at start is not reused but
 * deleted (gradually, as the pool is trimmed): a process of the previous
 * run (an smtpd still writing a message it will never commit) may still
 * hold it open, and only an inode nobody else can reach is safe to write
 * a new message into.  Within one run, a slot is reused only once nothing
 * holds it: smtpd closes its descriptor before the commit or rollback,
 * every job reading a message is back before the message is removed, and
 * the smtp workers and smtpd drop the descriptors of a qmgr that went
 * away before they talk to the next one.
 */
#include <sys/stat.h>
#include <sys/time.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "counter.h"
#include "dsn.h"
#include "fileio.h"
#include "log.h"
#include "proto.h"
#include "qmgr.h"
#include "spool_slot.h"
#include "xmalloc.h"

#define ENV_SUFFIX	".env"
#define TMP_SUFFIX	".env.tmp"
#define NAME_SIZE	(MSGID_SIZE + sizeof(TMP_SUFFIX))
#define LOG_TEXT	512
#define POOL_MAX	4096		/* free slots kept for reuse */
#define TRIM_BATCH	200		/* extra slots deleted per second */
#define SLOT_BATCH	32		/* new slot files made at once */
#define SLOT_KEEP_MAX	(1024 * 1024)	/* bigger slots are not reused */
#define COPY_CHUNK	65536

/* A message smtpd is receiving: created, not committed. */
struct pending {
	char		 id[MSGID_SIZE];
	int		 fd;		/* ours, O_RDWR */
	struct qmgr_slot slot;
	uint32_t	 reqid;		/* smtpd's request id */
	struct chan	*chan;		/* the smtpd that asked; NULL: gone */
	int		 committing;	/* its commit is on a thread */
};

/* A free slot: its free header is on disk. */
struct pool_entry {
	uint32_t	 num;
	int32_t		 half;
};

static int		 spool_fd = -1;
static int		 slots_fd = -1;
static int		 corrupt_fd = -1;
static uint64_t		 last_id;
static uint64_t		 last_seq;	/* of the newest header written */
static uint32_t		 next_num = 1;	/* of the next new slot file */
static struct pool_entry *pool;		/* a stack: the top is reused */
static size_t		 npool, poolcap;
static uint32_t		*graves;	/* free at start: to delete */
static size_t		 ngraves, gravescap;
static struct event	 trim_ev;

static void	 pool_trim(int, short, void *);

/* Create (when missing) and open a spool subdirectory. */
static int
dir_open(int parent, const char *name)
{
	if (mkdirat(parent, name, 0700) == -1 && errno != EEXIST)
		return -1;
	return openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* mkdir -p for the spool directory itself (development, tests). */
static void
mkdir_p(const char *path)
{
	char	*p, *s;

	s = xstrdup(path);
	for (p = s + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(s, 0755);
		*p = '/';
	}
	(void)mkdir(s, 0755);
	free(s);
}

/*
 * Open the spool directories.  The master creates them when it runs as
 * root; an unprivileged qmgr (development, tests) creates what is missing.
 */
void
qmgr_spool_init(void)
{
	if (qmgr.spool_dir == NULL || qmgr.spool_dir[0] != '/')
		fatalx("spool-dir must be an absolute path");
	mkdir_p(qmgr.spool_dir);
	spool_fd = open(qmgr.spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (spool_fd == -1)
		fatal("%s", qmgr.spool_dir);
	if ((slots_fd = dir_open(spool_fd, "slots")) == -1)
		fatal("%s/slots", qmgr.spool_dir);
	evtimer_set(&trim_ev, pool_trim, NULL);
	qmgr_sync_init();
}

/* ---- slot files and the pool ------------------------------------------ */

static void
slot_name(uint32_t num, char buf[16])
{
	snprintf(buf, 16, "%u", num);
}

/* A slot number from a file name: digits, no leading zero; 0 if not. */
static uint32_t
slot_num_parse(const char *name)
{
	unsigned long	 v;
	char		*end;

	if (name[0] < '1' || name[0] > '9' || strlen(name) > 10)
		return 0;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (*end != '\0' || errno != 0 || v > UINT32_MAX - 1)
		return 0;
	return (uint32_t)v;
}

static int
slot_open(uint32_t num, int flags)
{
	char	name[16];

	slot_name(num, name);
	return openat(slots_fd, name, flags | O_CLOEXEC | O_NOFOLLOW, 0600);
}

/* Delete a slot file that holds nothing any more. */
static void
slot_unlink(uint32_t num)
{
	char	name[16];

	slot_name(num, name);
	if (unlinkat(slots_fd, name, 0) == -1 && errno != ENOENT)
		log_warn("%s/slots/%s: unlink", qmgr.spool_dir, name);
}

/*
 * Delete a few slots a second: those found free at start, then the free
 * slots beyond POOL_MAX, least recently used first.
 */
static void
pool_trim(int fd, short ev, void *arg)
{
	struct timeval	 tv = { 1, 0 };
	size_t		 n, i, budget = TRIM_BATCH;

	while (ngraves > 0 && budget > 0) {
		slot_unlink(graves[--ngraves]);
		budget--;
	}
	if (ngraves == 0) {
		free(graves);
		graves = NULL;
		gravescap = 0;
	}
	if (npool > POOL_MAX && budget > 0) {
		n = npool - POOL_MAX < budget ? npool - POOL_MAX : budget;
		for (i = 0; i < n; i++)
			slot_unlink(pool[i].num);
		memmove(pool, pool + n, (npool - n) * sizeof(*pool));
		npool -= n;
	}
	if (ngraves > 0 || npool > POOL_MAX)
		evtimer_add(&trim_ev, &tv);
}

/* A free slot back to the pool; a big one is deleted at once. */
static void
pool_put(const struct qmgr_slot *s)
{
	struct timeval	 tv = { 1, 0 };

	if (SLOT_DATA_OFF + s->data_len + s->env_len > SLOT_KEEP_MAX) {
		slot_unlink(s->num);
		return;
	}
	if (npool >= POOL_MAX && !evtimer_pending(&trim_ev, NULL))
		evtimer_add(&trim_ev, &tv);
	if (npool == poolcap) {
		poolcap = poolcap == 0 ? 64 : poolcap * 2;
		pool = xreallocarray(pool, poolcap, sizeof(*pool));
	}
	pool[npool].num = s->num;
	pool[npool].half = s->half;
	npool++;
}

/* A new, empty slot file: 0, or -1 with errno set. */
static int
slot_create_one(uint32_t *num)
{
	int	fd, tries;

	for (tries = 0; tries < 1000; tries++) {
		if (next_num == UINT32_MAX)
			next_num = 1;
		*num = next_num++;
		fd = slot_open(*num, O_RDWR | O_CREAT | O_EXCL);
		if (fd == -1 && errno == EEXIST)
			continue;	/* a pooled or busy slot */
		if (fd == -1)
			return -1;
		close(fd);
		return 0;
	}
	errno = EEXIST;
	return -1;
}

/*
 * The pool is empty: make up to SLOT_BATCH new slot files and one fsync
 * of slots/ for all of their names (a burst of intake pays it once per
 * batch, not per message).  0 when at least one was made, else -1.
 */
static int
slot_create_batch(void)
{
	struct qmgr_slot s;
	uint32_t	 nums[SLOT_BATCH];
	size_t		 n = 0, i;
	int		 error = 0;

	while (n < SLOT_BATCH && slot_create_one(&nums[n]) == 0)
		n++;
	if (n < SLOT_BATCH)
		error = errno;
	if (n > 0 && fsync(slots_fd) == -1) {
		error = errno;
		for (i = 0; i < n; i++)
			slot_unlink(nums[i]);
		n = 0;
	}
	memset(&s, 0, sizeof(s));
	s.half = -1;
	/* The lowest number on top: taken first. */
	for (i = n; i > 0; i--) {
		s.num = nums[i - 1];
		pool_put(&s);
	}
	if (n == 0) {
		errno = error;
		return -1;
	}
	return 0;
}

/*
 * A slot for a new message, from the pool (most recently freed first: its
 * pages are likely cached) or new: an O_RDWR fd positioned at the data
 * offset, or -1 with errno set.
 */
static int
slot_take(struct qmgr_slot *s)
{
	struct pool_entry	 e;
	int			 fd = -1, error;

	memset(s, 0, sizeof(*s));
	if (npool == 0 && slot_create_batch() == -1)
		return -1;
	while (npool > 0) {
		e = pool[--npool];
		if ((fd = slot_open(e.num, O_RDWR)) == -1) {
			log_warn("%s/slots/%u", qmgr.spool_dir, e.num);
			continue;	/* gone: forget it */
		}
		s->num = e.num;
		s->half = e.half;
		break;
	}
	if (fd == -1) {
		errno = ENOENT;		/* every pooled slot was gone */
		return -1;
	}
	if (lseek(fd, SLOT_DATA_OFF, SEEK_SET) == -1) {
		error = errno;
		close(fd);
		pool_put(s);
		errno = error;
		return -1;
	}
	return fd;
}

/* A slot being marked free on a thread (qmgr_sync.c). */
struct release_job {
	struct qmgr_slot slot;
	uint64_t	 seq;
	int		 error;
};

/* Thread: write the free header and sync it. */
static void
release_work(void *arg)
{
	struct release_job	*rj = arg;
	int			 fd;

	if ((fd = slot_open(rj->slot.num, O_RDWR)) == -1 ||
	    slot_write_free(fd, rj->seq, &rj->slot.half) == -1 ||
	    fdatasync(fd) == -1)
		rj->error = errno;
	if (fd != -1)
		close(fd);
}

/* Loop: the slot is free on disk, back to the pool (or deleted). */
static void
release_done(void *arg)
{
	struct release_job	*rj = arg;

	if (rj->error != 0) {
		errno = rj->error;
		log_warn("%s/slots/%u: cannot mark it free: deleted",
		    qmgr.spool_dir, rj->slot.num);
		slot_unlink(rj->slot.num);
	} else
		pool_put(&rj->slot);
	free(rj);
}

/* Mark a slot free on disk and give it back to the pool, soon. */
static void
slot_release(const struct qmgr_slot *s)
{
	struct release_job	*rj;

	rj = xcalloc(1, sizeof(*rj));
	rj->slot = *s;
	rj->seq = ++last_seq;
	qmgr_sync_submit(release_work, release_done, rj);
}

/* Write env as the slot's envelope (mode: SLOT_SYNC_*); 0, -1 errno. */
static int
slot_save(int fd, struct qmgr_slot *s, const struct envelope *env, int mode)
{
	struct slot_hdr	 h;
	char		*text, *cause;
	int		 rv;

	if ((text = envelope_to_json(env, &cause)) == NULL) {
		/* Properties are checked at commit: this is a bug. */
		log_panic("%s", cause);
	}
	memset(&h, 0, sizeof(h));
	h.seq = ++last_seq;
	memcpy(h.id, env->id, MSGID_SIZE);
	h.data_len = s->data_len;
	rv = slot_write_msg(fd, &h, &s->half, text, strlen(text), s->env_off,
	    s->env_len, mode);
	free(text);
	if (rv == 0) {
		s->env_off = h.env_off;
		s->env_len = h.env_len;
	}
	return rv;
}

/* ---- recovery ----------------------------------------------------------- */

/* Move dir/name to corrupt/, or leave it and say so. */
static void
move_aside(int dirfd, const char *dirname, const char *name, const char *why)
{
	char	 ename[LOG_TEXT], dest[LOG_TEXT];

	log_escape(ename, sizeof(ename), name, strlen(name));
	if (corrupt_fd == -1 &&
	    (corrupt_fd = dir_open(spool_fd, "corrupt")) == -1) {
		log_warn("%s/%s: %s, but %s/corrupt is not usable; left there",
		    dirname, ename, why, qmgr.spool_dir);
		return;
	}
	/* Slot numbers are reused: never replace an earlier slot's file. */
	if (dirfd == slots_fd) {
		snprintf(dest, sizeof(dest), "slot-%s", name);
		if (faccessat(corrupt_fd, dest, F_OK,
		    AT_SYMLINK_NOFOLLOW) == 0)
			snprintf(dest, sizeof(dest), "slot-%s.%lld", name,
			    (long long)time(NULL));
	} else
		snprintf(dest, sizeof(dest), "%s", name);
	if (renameat(dirfd, name, corrupt_fd, dest) == -1) {
		log_warn("%s/%s: %s, but moving it to corrupt/ failed",
		    dirname, ename, why);
		return;
	}
	log_warnx("%s/%s: %s: moved to %s/corrupt/%s", dirname, ename, why,
	    qmgr.spool_dir, dest);
}

/* Every name in a directory but "." and "..". */
static char **
dir_names(int dirfd, size_t *np)
{
	DIR		*d;
	struct dirent	*de;
	char		**names = NULL;
	size_t		  n = 0, cap = 0;
	int		  fd;

	if ((fd = dup(dirfd)) == -1 || (d = fdopendir(fd)) == NULL)
		fatal("%s: opendir", __func__);
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap) {
			cap = cap == 0 ? 256 : cap * 2;
			names = xreallocarray(names, cap, sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	*np = n;
	return names;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
msg_cmp(const void *a, const void *b)
{
	return strcmp((*(struct qmgr_msg *const *)a)->env.id,
	    (*(struct qmgr_msg *const *)b)->env.id);
}

/* Messages found at recovery, scheduled in id (arrival) order. */
struct found {
	struct qmgr_msg	**m;
	size_t		  n, cap;
};

static void
found_add(struct found *f, struct qmgr_msg *m)
{
	if (f->n == f->cap) {
		f->cap = f->cap == 0 ? 256 : f->cap * 2;
		f->m = xreallocarray(f->m, f->cap, sizeof(*f->m));
	}
	f->m[f->n++] = m;
}

/* The message a slot holds, or NULL (moved aside) when unusable. */
static struct qmgr_msg *
recover_msg(const char *name, struct slot_read *r)
{
	struct envelope	 env;
	struct qmgr_msg	*m;
	char		*cause = NULL, *why;

	if (envelope_from_json(&env, r->env, r->hdr.env_len, &cause) == 0 &&
	    strcmp(env.id, r->hdr.id) != 0) {
		envelope_clear(&env);
		cause = xstrdup("its envelope names another id");
	} else if (cause == NULL &&
	    qmgr_table_get(&qmgr.msgs, env.id, MSGID_LEN) != NULL) {
		envelope_clear(&env);
		cause = xstrdup("a second copy of a queued message");
	}
	if (cause != NULL) {
		xasprintf(&why, "%s: corrupt envelope (%s)", r->hdr.id, cause);
		move_aside(slots_fd, "slots", name, why);
		free(why);
		free(cause);
		return NULL;
	}
	m = qmgr_msg_new(&env);
	m->slot.half = r->half;
	m->slot.env_off = r->hdr.env_off;
	m->slot.env_len = r->hdr.env_len;
	m->slot.data_len = r->hdr.data_len;
	qmgr_table_put(&qmgr.msgs, m->env.id, MSGID_LEN, m);
	return m;
}

/* One name in slots/: a message to schedule, a free slot, or corrupt. */
static void
recover_slot(const char *name, struct found *f)
{
	struct slot_read	 r;
	struct qmgr_msg		*m;
	uint32_t		 num;
	int			 fd;

	if ((num = slot_num_parse(name)) == 0) {
		move_aside(slots_fd, "slots", name, "unexpected file");
		return;
	}
	if (num >= next_num)
		next_num = num + 1;
	if ((fd = openat(slots_fd, name, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW | O_NONBLOCK)) == -1) {
		if (errno == ELOOP)
			move_aside(slots_fd, "slots", name, "not a file");
		else
			log_warn("%s/slots/%s: left alone", qmgr.spool_dir,
			    name);
		return;
	}
	if (slot_read_file(fd, &r) == -1) {
		log_warn("%s/slots/%s: read: left alone", qmgr.spool_dir, name);
		close(fd);
		return;
	}
	close(fd);
	if (r.maxseq > last_seq)
		last_seq = r.maxseq;
	switch (r.status) {
	case SLOT_READ_CORRUPT:
		move_aside(slots_fd, "slots", name, r.cause);
		break;
	case SLOT_READ_FREE:
		/* Not reused (see the top of this file): deleted soon. */
		if (ngraves == gravescap) {
			gravescap = gravescap == 0 ? 256 : gravescap * 2;
			graves = xreallocarray(graves, gravescap,
			    sizeof(*graves));
		}
		graves[ngraves++] = num;
		break;
	case SLOT_READ_MSG:
		if ((m = recover_msg(name, &r)) != NULL) {
			m->slot.num = num;
			found_add(f, m);
		}
		free(r.env);
		break;
	}
}

/* Copy the legacy data file into a slot at the data offset. */
static int
copy_data(int from, int to, uint64_t *lenp)
{
	char		*buf;
	ssize_t		 n;
	uint64_t	 len = 0;
	int		 rv = 0;

	buf = xmalloc(COPY_CHUNK);
	while ((n = fd_read_upto(from, buf, COPY_CHUNK)) > 0) {
		if (fd_write_all(to, buf, (size_t)n) == -1) {
			rv = -1;
			break;
		}
		len += (uint64_t)n;
	}
	if (n == -1)
		rv = -1;
	free(buf);
	*lenp = len;
	return rv;
}

/* Is every recipient delivered or failed? */
static int
envelope_done(const struct envelope *env)
{
	size_t	i;

	for (i = 0; i < env->nrcpt; i++)
		if (!ENV_RCPT_FINAL(env->rcpts[i].state))
			return 0;
	return 1;
}

/* Is there a regular file by this name in dirfd? */
static int
dir_has_file(int dirfd, const char *name)
{
	struct stat	 st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

/*
 * Import queue/ID.env with queue/ID (the older format) into a slot, then
 * delete both.  A message already in a slot was imported by a run that
 * crashed before the deletion.
 */
static void
import_env(int queue_fd, const char *name, struct found *f)
{
	struct envelope	 env;
	struct qmgr_slot s;
	struct qmgr_msg	*m;
	char		 id[MSGID_SIZE], *cause = NULL, *why;
	int		 dfd, fd;

	memcpy(id, name, MSGID_LEN);
	id[MSGID_LEN] = '\0';
	if (qmgr_table_get(&qmgr.msgs, id, MSGID_LEN) != NULL) {
		(void)unlinkat(queue_fd, name, 0);
		(void)unlinkat(queue_fd, id, 0);
		return;
	}
	if (!dir_has_file(queue_fd, id)) {
		move_aside(queue_fd, "queue", name,
		    "envelope without a data file");
		return;
	}
	if (qmgr_envelope_read(queue_fd, name, &env, &cause) == 0 &&
	    strcmp(env.id, id) != 0) {
		envelope_clear(&env);
		cause = xstrdup("it names another id");
	}
	if (cause != NULL) {
		xasprintf(&why, "corrupt envelope (%s)", cause);
		move_aside(queue_fd, "queue", name, why);
		move_aside(queue_fd, "queue", id, "its envelope is corrupt");
		free(why);
		free(cause);
		return;
	}
	if (envelope_done(&env)) {
		/* A removal that crashed half way: nothing to import. */
		(void)unlinkat(queue_fd, name, 0);
		(void)unlinkat(queue_fd, id, 0);
		envelope_clear(&env);
		return;
	}
	if ((dfd = openat(queue_fd, id, O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1 || (fd = slot_take(&s)) == -1) {
		log_warn("%s: cannot import queue/%s: left there", id, id);
		if (dfd != -1)
			close(dfd);
		envelope_clear(&env);
		return;
	}
	if (copy_data(dfd, fd, &s.data_len) == -1 ||
	    slot_save(fd, &s, &env, SLOT_SYNC_ORDERED) == -1) {
		log_warn("%s: cannot import queue/%s: left there", id, id);
		close(fd);
		slot_release(&s);
		close(dfd);
		envelope_clear(&env);
		return;
	}
	close(dfd);
	close(fd);
	if (unlinkat(queue_fd, name, 0) == -1 ||
	    unlinkat(queue_fd, id, 0) == -1)
		log_warn("%s: imported, but queue/%s stays", id, name);
	m = qmgr_msg_new(&env);
	m->slot = s;
	qmgr_table_put(&qmgr.msgs, m->env.id, MSGID_LEN, m);
	log_info("%s: imported from %s/queue/ (older spool format)", id,
	    qmgr.spool_dir);
	found_add(f, m);
}

/* One name in queue/ of the older format. */
static void
import_name(int queue_fd, const char *name, struct found *f)
{
	char	 envname[NAME_SIZE];
	size_t	 len = strlen(name);

	if (len == MSGID_LEN && msgid_valid(name)) {
		snprintf(envname, sizeof(envname), "%s%s", name, ENV_SUFFIX);
		/*
		 * Data without an envelope: an interrupted commit or
		 * removal, never answered 250 or already delivered.  An
		 * envelope that is there but not a file moves both aside.
		 */
		if (dir_has_file(queue_fd, name) &&
		    faccessat(queue_fd, envname, F_OK,
		    AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT) {
			log_info("%s: discarding a data file without an "
			    "envelope (interrupted commit or removal)", name);
			(void)unlinkat(queue_fd, name, 0);
		}
		return;
	}
	if (len > MSGID_LEN && name[MSGID_LEN] == '.') {
		memcpy(envname, name, MSGID_LEN);
		envname[MSGID_LEN] = '\0';
		if (msgid_valid(envname) &&
		    strcmp(name + MSGID_LEN, ENV_SUFFIX) == 0) {
			import_env(queue_fd, name, f);
			return;
		}
		if (msgid_valid(envname) &&
		    strcmp(name + MSGID_LEN, TMP_SUFFIX) == 0) {
			(void)unlinkat(queue_fd, name, 0);
			return;
		}
	}
	move_aside(queue_fd, "queue", name, "unexpected file");
}

/* The older format: incoming/ emptied, queue/ imported. */
static void
import_legacy(struct found *f)
{
	char	**names;
	size_t	  n, i;
	int	  dfd;

	if ((dfd = openat(spool_fd, "incoming", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC | O_NOFOLLOW)) != -1) {
		names = dir_names(dfd, &n);
		for (i = 0; i < n; i++) {
			if (unlinkat(dfd, names[i], 0) == -1)
				log_warn("%s/incoming/%s", qmgr.spool_dir,
				    names[i]);
			free(names[i]);
		}
		free(names);
		close(dfd);
		(void)unlinkat(spool_fd, "incoming", AT_REMOVEDIR);
	}
	if ((dfd = openat(spool_fd, "queue", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC | O_NOFOLLOW)) == -1)
		return;
	names = dir_names(dfd, &n);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		/* Data files sort before their envelopes: ".env" last. */
		import_name(dfd, names[i], f);
		free(names[i]);
	}
	free(names);
	close(dfd);
}

/*
 * Before accepting work: read every slot, import the older format, then
 * schedule what is not final yet, oldest first.
 */
void
qmgr_spool_recover(void)
{
	struct found	 f = { NULL, 0, 0 };
	struct timeval	 tv = { 1, 0 };
	char		**names;
	size_t		  n, i, loaded = 0;

	names = dir_names(slots_fd, &n);
	for (i = 0; i < n; i++) {
		recover_slot(names[i], &f);
		free(names[i]);
	}
	free(names);
	import_legacy(&f);

	if (f.n > 0)
		qsort(f.m, f.n, sizeof(*f.m), msg_cmp);
	for (i = 0; i < f.n; i++) {
		if (qmgr_msg_done(f.m[i])) {
			qmgr_spool_remove(f.m[i]);	/* crashed removing */
			continue;
		}
		loaded++;
		if (!qmgr_mq_take(f.m[i]))
			qmgr_queue_add_msg(f.m[i]);
	}
	free(f.m);
	log_info("spool %s: %zu message%s in the queue, %zu free slot%s to "
	    "delete", qmgr.spool_dir, loaded, loaded == 1 ? "" : "s", ngraves,
	    ngraves == 1 ? "" : "s");
	if (ngraves > 0)
		evtimer_add(&trim_ev, &tv);
}

/* ---- receiving ---------------------------------------------------------- */

/* A new id that no message or pending file has. */
static void
spool_new_id(char id[MSGID_SIZE])
{
	struct timeval	 tv;

	do {
		gettimeofday(&tv, NULL);
		last_id = msgid_next(last_id,
		    msgid_from_time((uint64_t)tv.tv_sec, (uint32_t)tv.tv_usec));
		msgid_format(last_id, id);
	} while (qmgr_table_get(&qmgr.msgs, id, MSGID_LEN) != NULL ||
	    qmgr_table_get(&qmgr.pending, id, MSGID_LEN) != NULL);
}

/* Answer a failed create or commit: 452 when the disk is full. */
static void
reply_fail(struct chan *chan, int type, uint32_t reqid, int error)
{
	struct msgb	*b;

	b = msgb_new(type, reqid);
	if (error == ENOSPC || error == EDQUOT) {
		msgb_u32(b, 452);
		msgb_str(b, "4.3.1 Insufficient system storage");
	} else {
		msgb_u32(b, 451);
		msgb_str(b, "4.3.0 Local error in processing: queue file");
	}
	chan_send(chan, b);
}

/* MSG_QMGR_CREATE: a slot for a new message, its descriptor to smtpd. */
void
qmgr_spool_create(struct chan *chan, struct msg *msg)
{
	struct pending	*p;
	struct msgb	*b;
	struct qmgr_slot s;
	char		 id[MSGID_SIZE];
	int		 fd, dupfd = -1, error;

	if (msg_end(msg) != 0)
		fatalx("smtpd: malformed %s", msg_name(msg->hdr.type));
	if (qmgr_mq_full()) {
		/* The broker is away and the spool at its high-water mark. */
		reply_fail(chan, MSG_QMGR_CREATE_FAIL, msg->hdr.peerid,
		    ENOSPC);
		return;
	}
	if ((fd = qmgr_spool_new(id, &s)) == -1 ||
	    (dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		error = errno;
		log_warn("cannot make a queue file in %s/slots",
		    qmgr.spool_dir);
		if (fd != -1)
			qmgr_spool_discard(&s, fd);
		reply_fail(chan, MSG_QMGR_CREATE_FAIL, msg->hdr.peerid, error);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	memcpy(p->id, id, MSGID_SIZE);
	p->fd = fd;
	p->slot = s;
	p->reqid = msg->hdr.peerid;
	p->chan = chan;
	qmgr_table_put(&qmgr.pending, p->id, MSGID_LEN, p);

	b = msgb_new(MSG_QMGR_CREATE_OK, p->reqid);
	msgb_str(b, p->id);
	msgb_fd(b, dupfd);
	chan_send(chan, b);
}

/* Forget a pending message; its slot back to the pool unless committed. */
static void
pending_free(struct pending *p, int give_back)
{
	qmgr_table_del(&qmgr.pending, p->id, MSGID_LEN);
	if (give_back)
		qmgr_spool_discard(&p->slot, p->fd);
	else
		close(p->fd);
	free(p);
}

/*
 * The data of a message written through fd ends at the descriptor's
 * offset (shared with the writer), and must be as long as announced:
 * 0 with s->data_len set, or -1 (logged) with errno set.
 */
static int
commit_check(int fd, struct qmgr_slot *s, const struct envelope *env)
{
	off_t	 end;
	int	 error;

	if ((end = lseek(fd, 0, SEEK_CUR)) == -1) {
		error = errno;
		log_warn("%s: commit failed", env->id);
		errno = error;
		return -1;
	}
	if (end < SLOT_DATA_OFF || (uint64_t)(end - SLOT_DATA_OFF) !=
	    env->size) {
		log_warnx("%s: commit failed: %lld bytes in the queue file, "
		    "%llu announced", env->id, (long long)end - SLOT_DATA_OFF,
		    (unsigned long long)env->size);
		errno = EIO;
		return -1;
	}
	s->data_len = (uint64_t)(end - SLOT_DATA_OFF);
	s->env_off = 0;
	s->env_len = 0;
	return 0;
}

/*
 * Make a message written through fd durable in its slot, in the loop:
 * 0, or -1 (logged) with errno set (fd left open; the caller frees the
 * slot).
 */
static int
commit_slot(int fd, struct qmgr_slot *s, const struct envelope *env)
{
	int	 error;

	if (commit_check(fd, s, env) == -1)
		return -1;
	if (slot_save(fd, s, env, SLOT_SYNC_ORDERED) == -1) {
		error = errno;
		log_warn("%s: commit failed", env->id);
		errno = error;
		return -1;
	}
	return 0;
}

/*
 * A recipient's NOTIFY and ORCPT from smtpd.  They are the client's
 * words, checked by smtpd: one that is still not valid is dropped with a
 * log line rather than taken or made fatal.
 */
static void
commit_rcpt_dsn(struct envelope_rcpt *er, const char *id, const char *notify,
    const char *orcpt)
{
	char	 rcpt[LOG_TEXT];
	int	 n;

	log_escape(rcpt, sizeof(rcpt), er->address, strlen(er->address));
	if (*notify != '\0') {
		if ((n = dsn_notify_parse(notify)) == -1)
			log_warnx("%s: to=<%s>: ignoring a bad NOTIFY", id,
			    rcpt);
		else
			er->notify = n;
	}
	if (*orcpt != '\0') {
		if (strlen(orcpt) > DSN_ORCPT_MAX ||
		    strchr(orcpt, ';') == NULL ||
		    strpbrk(orcpt, "\r\n") != NULL)
			log_warnx("%s: to=<%s>: ignoring a bad ORCPT", id,
			    rcpt);
		else {
			free(er->orcpt);
			er->orcpt = xstrdup(orcpt);
		}
	}
}

/* Read MSG_QMGR_COMMIT into env; anything malformed is fatal (trusted). */
static struct pending *
commit_read(struct chan *chan, struct msg *msg, struct envelope *env)
{
	struct pending	*p;
	const char	*id, *sender, *helo, *client, *local, *bind, *props;
	const char	**rcpts;
	char		 eid[LOG_TEXT];
	uint64_t	 size;
	uint32_t	 nrcpt, i;
	time_t		 now = time(NULL);

	id = msg_get_str(msg);
	sender = msg_get_str(msg);
	helo = msg_get_str(msg);
	client = msg_get_str(msg);
	local = msg_get_str(msg);
	bind = msg_get_str(msg);
	size = msg_get_u64(msg);
	props = msg_get_str(msg);
	nrcpt = msg_get_u32(msg);
	/* Each recipient takes payload bytes: this bounds the allocation. */
	if (msg->err || nrcpt == 0 || nrcpt > msg->hdr.len / 3)
		fatalx("smtpd: malformed %s", msg_name(msg->hdr.type));
	/* Three strings each: recipient, NOTIFY, ORCPT. */
	rcpts = xcalloc(nrcpt, 3 * sizeof(*rcpts));
	for (i = 0; i < 3 * nrcpt && !msg->err; i++)
		rcpts[i] = msg_get_str(msg);
	if (msg_end(msg) != 0)
		fatalx("smtpd: malformed %s", msg_name(msg->hdr.type));

	log_escape(eid, sizeof(eid), id, strlen(id));
	if ((p = qmgr_table_get(&qmgr.pending, id, strlen(id))) == NULL ||
	    p->chan != chan)
		fatalx("smtpd: commit of unknown message %s", eid);
	if (p->committing)
		fatalx("smtpd: second commit of message %s", eid);

	envelope_init(env);
	if (envelope_properties_normalize(props, &env->properties) == -1)
		fatalx("smtpd: %s: properties are not a JSON object", eid);
	memcpy(env->id, p->id, MSGID_SIZE);
	env->sender = xstrdup(sender);
	env->received = now;
	env->client = xstrdup(client);
	env->local_ip = envelope_addr_host(local);
	if (*bind != '\0' && strcmp(bind, env->local_ip) != 0)
		env->bind_ip = envelope_addr_host(bind);	/* PROXY */
	env->helo = xstrdup(helo);
	env->size = size;
	for (i = 0; i < nrcpt; i++) {
		envelope_add_rcpt(env, rcpts[3 * i], now);
		commit_rcpt_dsn(&env->rcpts[i], eid, rcpts[3 * i + 1],
		    rcpts[3 * i + 2]);
	}
	free(rcpts);
	return p;
}

/* A committed envelope becomes a known message, logged as queued. */
static struct qmgr_msg *
spool_accept(struct envelope *env, const struct qmgr_slot *s)
{
	struct qmgr_msg	*m;
	char		 sender[LOG_TEXT];

	m = qmgr_msg_new(env);
	m->slot = *s;
	qmgr_table_put(&qmgr.msgs, m->env.id, MSGID_LEN, m);
	log_escape(sender, sizeof(sender), m->env.sender,
	    strlen(m->env.sender));
	log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)",
	    m->env.id, sender, (unsigned long long)m->env.size,
	    m->env.nrcpt);
	return m;
}

/* A commit on a thread: everything prepared in the loop. */
struct commit_job {
	struct pending	*p;
	struct envelope	 env;
	uint32_t	 reqid;
	struct slot_hdr	 h;
	int32_t		 half;
	char		*text;
	int		 error;
};

/* Thread: the envelope, a sync, the header, a sync (spool_slot.h). */
static void
commit_work(void *arg)
{
	struct commit_job	*cj = arg;

	if (slot_write_msg(cj->p->fd, &cj->h, &cj->half, cj->text,
	    strlen(cj->text), 0, 0, SLOT_SYNC_ORDERED) == -1)
		cj->error = errno;
}

/* Loop: the message is durable (or not): tell smtpd, schedule it. */
static void
commit_done(void *arg)
{
	struct commit_job	*cj = arg;
	struct pending		*p = cj->p;
	struct qmgr_msg		*m;
	struct msgb		*b;

	free(cj->text);
	if (cj->error != 0) {
		errno = cj->error;
		log_warn("%s: commit failed", p->id);
		if (p->chan != NULL)
			reply_fail(p->chan, MSG_QMGR_COMMIT_FAIL, cj->reqid,
			    cj->error);
		slot_release(&p->slot);
		pending_free(p, 0);
		envelope_clear(&cj->env);
		free(cj);
		return;
	}
	p->slot.half = cj->half;
	p->slot.env_off = cj->h.env_off;
	p->slot.env_len = cj->h.env_len;
	m = spool_accept(&cj->env, &p->slot);
	counter_add(COUNTER_RECEIVED, 1);	/* mtactl stats */
	if (p->chan != NULL) {
		b = msgb_new(MSG_QMGR_COMMIT_OK, cj->reqid);
		msgb_str(b, m->env.id);
		chan_send(p->chan, b);
	}
	pending_free(p, 0);
	free(cj);
	if (!qmgr_mq_take(m))
		qmgr_queue_add_msg(m);
}

/* MSG_QMGR_COMMIT: make the message durable, then let smtpd say 250. */
void
qmgr_spool_commit(struct chan *chan, struct msg *msg)
{
	struct commit_job	*cj;
	struct pending		*p;
	char			*cause;

	cj = xcalloc(1, sizeof(*cj));
	cj->reqid = msg->hdr.peerid;
	p = commit_read(chan, msg, &cj->env);
	cj->p = p;
	if (commit_check(p->fd, &p->slot, &cj->env) == -1) {
		reply_fail(chan, MSG_QMGR_COMMIT_FAIL, cj->reqid, errno);
		pending_free(p, 1);	/* its header was not touched */
		envelope_clear(&cj->env);
		free(cj);
		return;
	}
	if ((cj->text = envelope_to_json(&cj->env, &cause)) == NULL)
		log_panic("%s", cause);	/* properties are checked above */
	cj->h.seq = ++last_seq;
	memcpy(cj->h.id, p->id, MSGID_SIZE);
	cj->h.data_len = p->slot.data_len;
	cj->half = p->slot.half;
	p->committing = 1;
	qmgr_sync_submit(commit_work, commit_done, cj);
}

/*
 * A slot for a message qmgr writes itself, under a new id: an fd to
 * write() the data through from its current offset, or -1 with errno.
 */
int
qmgr_spool_new(char id[MSGID_SIZE], struct qmgr_slot *s)
{
	int	fd;

	if ((fd = slot_take(s)) == -1)
		return -1;
	spool_new_id(id);
	return fd;
}

/* Give up on a slot from qmgr_spool_new() before its commit. */
void
qmgr_spool_discard(struct qmgr_slot *s, int fd)
{
	/* Its header was not touched: still free, and already on disk. */
	if (fd != -1)
		close(fd);
	pool_put(s);
}

/*
 * Commit a message qmgr wrote into fd (from qmgr_spool_new, named
 * env->id) like one from smtpd, and schedule it: 0, or -1 (logged) with
 * the slot free again.  Takes env's contents and closes fd either way.
 */
int
qmgr_spool_inject(int fd, struct qmgr_slot *s, struct envelope *env)
{
	struct qmgr_msg	*m;

	if (commit_slot(fd, s, env) == -1) {
		close(fd);
		slot_release(s);
		envelope_clear(env);
		return -1;
	}
	close(fd);
	m = spool_accept(env, s);
	if (!qmgr_mq_take(m))
		qmgr_queue_add_msg(m);
	return 0;
}

/*
 * MSG_QMGR_ROLLBACK: the transaction was abandoned.  An unknown id is not
 * fatal: smtpd may give up on a message whose commit just failed (and was
 * forgotten) or just succeeded (it stays queued: a duplicate at worst).
 */
void
qmgr_spool_rollback(struct chan *chan, struct msg *msg)
{
	struct pending	*p;
	const char	*id;

	id = msg_get_str(msg);
	if (msg_end(msg) != 0)
		fatalx("smtpd: malformed %s", msg_name(msg->hdr.type));
	if ((p = qmgr_table_get(&qmgr.pending, id, strlen(id))) == NULL) {
		log_debug("rollback of a message not pending");
		return;
	}
	if (p->chan != chan)
		fatalx("smtpd: rollback of another smtpd's message %s", p->id);
	if (p->committing) {
		/* Too late: it will be queued, as if the commit came first. */
		log_debug("%s: rollback during its commit", p->id);
		return;
	}
	pending_free(p, 1);
}

/* smtpd went away: every message it was receiving is abandoned. */
void
qmgr_spool_smtpd_closed(struct chan *chan)
{
	struct qmgr_titer	 it;
	struct pending		*p;
	size_t			 n = 0;

	qmgr_titer_init(&qmgr.pending, &it);
	while ((p = qmgr_titer_next(&qmgr.pending, &it)) != NULL) {
		if (p->chan != chan)
			continue;
		if (p->committing) {
			/* Queued when its commit is done; nobody to tell. */
			p->chan = NULL;
			continue;
		}
		pending_free(p, 1);
		n++;
	}
	if (n > 0)
		log_info("smtpd gone: %zu message%s rolled back", n,
		    n == 1 ? "" : "s");
}

/* ---- queued messages ---------------------------------------------------- */

/*
 * A new read-only descriptor of the message's slot, for one delivery job:
 * the data is m->slot.data_len bytes from SLOT_DATA_OFF.
 */
int
qmgr_spool_open_data(const struct qmgr_msg *m)
{
	return slot_open(m->slot.num, O_RDONLY);
}

/* Up to len bytes of the message's data into buf: the count, or -1. */
ssize_t
qmgr_spool_read_data(const struct qmgr_msg *m, char *buf, size_t len)
{
	ssize_t	n;
	int	fd, error;

	if ((fd = qmgr_spool_open_data(m)) == -1)
		return -1;
	if (len > m->slot.data_len)
		len = (size_t)m->slot.data_len;
	n = fd_pread_upto(fd, buf, len, SLOT_DATA_OFF);
	error = errno;
	close(fd);
	if (n >= 0 && (size_t)n != len) {
		n = -1;
		error = EIO;	/* the file is shorter than its header says */
	}
	errno = error;
	return n;
}

/*
 * Save recipient states of a message that stays queued.  A delivered
 * message is removed without an update, so the common path pays nothing.
 */
void
qmgr_spool_update(struct qmgr_msg *m)
{
	int	fd;

	if (m->transient) {
		/* The broker holds the durable copy. */
		qmgr_ctlindex_changed(m);
		return;
	}
	if ((fd = slot_open(m->slot.num, O_RDWR)) == -1 ||
	    slot_save(fd, &m->slot, &m->env, SLOT_SYNC_ONCE) == -1) {
		/* The old state stays: at worst a duplicate delivery. */
		log_warn("%s: envelope update", m->env.id);
	}
	if (fd != -1)
		close(fd);
	qmgr_ctlindex_changed(m);	/* mtactl's view follows */
}

/* Every recipient is final: the slot is free again, then the memory. */
void
qmgr_spool_remove(struct qmgr_msg *m)
{
	qmgr_ctlindex_removed(m);	/* mtactl's view follows */
	if (m->mq != NULL)
		qmgr_mq_forget(m);
	if (m->transient) {
		/* Never committed: the header on disk still says free. */
		pool_put(&m->slot);
		log_debug("%s: released", m->env.id);
	} else {
		slot_release(&m->slot);
		log_info("%s: removed", m->env.id);
	}
	qmgr_table_del(&qmgr.msgs, m->env.id, MSGID_LEN);
	qmgr_msg_free(m);
}
