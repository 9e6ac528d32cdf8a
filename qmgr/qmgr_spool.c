/*
 * The spool: where a message becomes durable, and what a restart finds.
 *
 * Spool file format.  Under spool-dir (absolute; qmgr is not chrooted):
 *
 *	incoming/ID		a message being received.  qmgr creates it
 *				(0600, O_EXCL) and passes a descriptor to
 *				smtpd, which writes the message through it.
 *	incoming/ID.env		its envelope, while it is being committed.
 *	queue/ID		the message as smtpd wrote it (with its
 *				Received: header, without x-mq-* headers);
 *				never changed after the commit.
 *	queue/ID.env		the envelope: one JSON object, format in
 *				common/envelope.h.  Rewritten after each
 *				delivery attempt.
 *	queue/ID.env.tmp	an envelope update being written.
 *	corrupt/		what recovery could not use, moved aside.
 *
 * ID is 12 uppercase hex digits (common/msgid.h).
 *
 * Commit (MSG_QMGR_COMMIT): fsync incoming/ID; write and fsync
 * incoming/ID.env; rename both into queue/, data first; fsync queue/.
 * Only then does smtpd hear COMMIT_OK and answer 250.  queue/ID.env
 * beside queue/ID is the commit point; any failure on the way unlinks
 * what was made and answers 4xx.  Messages qmgr makes itself (DSNs,
 * qmgr_bounce.c) take the same path: qmgr_spool_new, write,
 * qmgr_spool_inject.
 *
 * Update (a message that stays queued): write queue/ID.env.tmp, fsync it,
 * rename it over queue/ID.env.  The rename is not made durable: losing it
 * only makes a delivery happen twice, but a renamed file whose data never
 * reached the disk would be an empty envelope.
 *
 * Removal, once every recipient is final: unlink queue/ID.env, then
 * queue/ID, so that a crash in between leaves no envelope that would be
 * delivered again from a missing file.
 *
 * Recovery at start: incoming/ is emptied (smtpd never answered 250 for
 * it); each queue/ID.env with its queue/ID is loaded; data without an
 * envelope is an interrupted commit or removal and is discarded; an
 * envelope without data, or one that does not parse, is moved to corrupt/
 * with a log line, so a bad file never crash-loops qmgr.
 */
#include <sys/stat.h>
#include <sys/time.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan.h"
#include "dsn.h"
#include "log.h"
#include "proto.h"
#include "qmgr.h"
#include "xmalloc.h"

#define ENV_SUFFIX	".env"
#define TMP_SUFFIX	".env.tmp"
#define NAME_SIZE	(MSGID_SIZE + sizeof(TMP_SUFFIX))
#define LOG_TEXT	512

/* A message smtpd is receiving: created, not committed. */
struct pending {
	char		 id[MSGID_SIZE];
	int		 fd;		/* ours, O_RDWR */
	uint32_t	 reqid;		/* smtpd's request id */
	struct chan	*chan;		/* the smtpd that asked */
};

static int	 spool_fd = -1;
static int	 incoming_fd = -1;
static int	 queue_fd = -1;
static int	 corrupt_fd = -1;
static uint64_t	 last_id;

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
	if ((incoming_fd = dir_open(spool_fd, "incoming")) == -1)
		fatal("%s/incoming", qmgr.spool_dir);
	if ((queue_fd = dir_open(spool_fd, "queue")) == -1)
		fatal("%s/queue", qmgr.spool_dir);
}

/* Is this a regular file in queue/? */
static int
queue_has(const char *name)
{
	struct stat	 st;

	return fstatat(queue_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode);
}

/* Is there anything by this name in queue/ (a file or not)? */
static int
queue_exists(const char *name)
{
	struct stat	 st;

	return fstatat(queue_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT;
}

/* Move queue/name to corrupt/name, or leave it and say so. */
static void
move_aside(const char *name, const char *why)
{
	char	 ename[LOG_TEXT];

	log_escape(ename, sizeof(ename), name, strlen(name));
	if (corrupt_fd == -1 &&
	    (corrupt_fd = dir_open(spool_fd, "corrupt")) == -1) {
		log_warn("%s: %s, but %s/corrupt is not usable; left in queue/",
		    ename, why, qmgr.spool_dir);
		return;
	}
	if (renameat(queue_fd, name, corrupt_fd, name) == -1) {
		log_warn("%s: %s, but moving it to corrupt/ failed", ename,
		    why);
		return;
	}
	log_warnx("%s: %s: moved to %s/corrupt/", ename, why,
	    qmgr.spool_dir);
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

/* Load queue/ID.env (with queue/ID) and schedule its recipients. */
static int
recover_env(const char *name)
{
	struct envelope	 env;
	struct qmgr_msg	*m;
	char		 id[MSGID_SIZE], *cause, *why;
	int		 rv;

	memcpy(id, name, MSGID_LEN);
	id[MSGID_LEN] = '\0';
	if (!queue_has(id)) {
		move_aside(name, "envelope without a data file");
		return 0;
	}
	rv = qmgr_envelope_read(queue_fd, name, &env, &cause);
	if (rv == 0 && strcmp(env.id, id) != 0) {
		envelope_clear(&env);
		cause = xstrdup("it names another id");
		rv = -1;
	}
	if (rv == -1) {
		xasprintf(&why, "corrupt envelope (%s)", cause);
		move_aside(name, why);
		move_aside(id, "its envelope is corrupt");
		free(why);
		free(cause);
		return 0;
	}
	m = qmgr_msg_new(&env);
	qmgr_table_put(&qmgr.msgs, m->env.id, MSGID_LEN, m);
	if (qmgr_msg_done(m))
		qmgr_spool_remove(m);	/* crashed while removing it */
	else if (!qmgr_mq_take(m))
		qmgr_queue_add_msg(m);
	return 1;
}

/* One name found in queue/. */
static int
recover_name(const char *name)
{
	char	 envname[NAME_SIZE];
	size_t	 len = strlen(name);

	if (len == MSGID_LEN && msgid_valid(name)) {
		snprintf(envname, sizeof(envname), "%s%s", name, ENV_SUFFIX);
		/*
		 * Data without an envelope: a commit that crashed between its
		 * two renames (never answered 250) or a removal that crashed
		 * between its two unlinks (delivered).  Either way, discard.
		 * An envelope that is there but not a file is not missing:
		 * its own entry moves both aside.
		 */
		if (queue_has(name) && !queue_exists(envname)) {
			log_info("%s: discarding a data file without an "
			    "envelope (interrupted commit or removal)", name);
			(void)unlinkat(queue_fd, name, 0);
		}
		return 0;
	}
	if (len > MSGID_LEN && name[MSGID_LEN] == '.') {
		memcpy(envname, name, MSGID_LEN);
		envname[MSGID_LEN] = '\0';
		if (msgid_valid(envname) &&
		    strcmp(name + MSGID_LEN, ENV_SUFFIX) == 0)
			return recover_env(name);
		if (msgid_valid(envname) &&
		    strcmp(name + MSGID_LEN, TMP_SUFFIX) == 0) {
			(void)unlinkat(queue_fd, name, 0);
			return 0;
		}
	}
	move_aside(name, "unexpected file");
	return 0;
}

/*
 * Before accepting work: empty incoming/, then load every committed
 * message from queue/ and schedule what is not final yet.
 */
void
qmgr_spool_recover(void)
{
	char	**names;
	size_t	  n, i, loaded = 0;

	names = dir_names(incoming_fd, &n);
	for (i = 0; i < n; i++) {
		if (unlinkat(incoming_fd, names[i], 0) == -1)
			log_warn("%s/incoming/%s", qmgr.spool_dir, names[i]);
		free(names[i]);
	}
	free(names);
	if (n > 0)
		log_info("removed %zu uncommitted file%s from incoming/", n,
		    n == 1 ? "" : "s");

	names = dir_names(queue_fd, &n);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		loaded += recover_name(names[i]);
		free(names[i]);
	}
	free(names);
	log_info("spool %s: %zu message%s in the queue", qmgr.spool_dir,
	    loaded, loaded == 1 ? "" : "s");
}

/* An id that is free: no message, pending file or queue file has it. */
static int
id_in_use(const char *id)
{
	return qmgr_table_get(&qmgr.msgs, id, MSGID_LEN) != NULL ||
	    qmgr_table_get(&qmgr.pending, id, MSGID_LEN) != NULL ||
	    queue_has(id);
}

/* Create incoming/ID under a new id: the fd, or -1 with errno set. */
static int
spool_new_file(char id[MSGID_SIZE])
{
	struct timeval	 tv;
	int		 fd, tries;

	for (tries = 0; tries < 1000; tries++) {
		gettimeofday(&tv, NULL);
		last_id = msgid_next(last_id,
		    msgid_from_time((uint64_t)tv.tv_sec, (uint32_t)tv.tv_usec));
		msgid_format(last_id, id);
		if (id_in_use(id))
			continue;
		fd = openat(incoming_fd, id, O_RDWR | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (fd != -1 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
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

/* MSG_QMGR_CREATE: a new incoming file, its descriptor to smtpd. */
void
qmgr_spool_create(struct chan *chan, struct msg *msg)
{
	struct pending	*p;
	struct msgb	*b;
	char		 id[MSGID_SIZE];
	int		 fd, dupfd, error;

	if (msg_end(msg) != 0)
		fatalx("smtpd: malformed %s", msg_name(msg->hdr.type));
	if (qmgr_mq_full()) {
		/* The broker is away and the spool at its high-water mark. */
		reply_fail(chan, MSG_QMGR_CREATE_FAIL, msg->hdr.peerid,
		    ENOSPC);
		return;
	}
	if ((fd = spool_new_file(id)) == -1 ||
	    (dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		error = errno;
		log_warn("cannot create a queue file in %s/incoming",
		    qmgr.spool_dir);
		if (fd != -1) {
			(void)unlinkat(incoming_fd, id, 0);
			close(fd);
		}
		reply_fail(chan, MSG_QMGR_CREATE_FAIL, msg->hdr.peerid, error);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	memcpy(p->id, id, MSGID_SIZE);
	p->fd = fd;
	p->reqid = msg->hdr.peerid;
	p->chan = chan;
	qmgr_table_put(&qmgr.pending, p->id, MSGID_LEN, p);

	b = msgb_new(MSG_QMGR_CREATE_OK, p->reqid);
	msgb_str(b, p->id);
	msgb_fd(b, dupfd);
	chan_send(chan, b);
}

/* Forget a pending message; unlink its incoming file unless committed. */
static void
pending_free(struct pending *p, int unlink_file)
{
	qmgr_table_del(&qmgr.pending, p->id, MSGID_LEN);
	if (unlink_file && unlinkat(incoming_fd, p->id, 0) == -1 &&
	    errno != ENOENT)
		log_warn("%s: unlink", p->id);
	close(p->fd);
	free(p);
}

/* rename(2) that refuses to replace a file already there. */
static int
rename_noreplace(int olddir, const char *old, int newdir, const char *new)
{
	if (renameat2(olddir, old, newdir, new, RENAME_NOREPLACE) == 0)
		return 0;
	/* A filesystem without RENAME_NOREPLACE: ids are checked free. */
	if (errno == EINVAL || errno == ENOSYS)
		return renameat(olddir, old, newdir, new);
	return -1;
}

/*
 * Make a pending message durable (spool file format above): 0, or -1
 * with errno set and every file of the message removed.
 */
static int
commit_files(const char *id, int fd, const struct envelope *env)
{
	char	 envname[NAME_SIZE];
	int	 stage = 0, error;

	snprintf(envname, sizeof(envname), "%s%s", id, ENV_SUFFIX);
	if (fsync(fd) == -1 ||
	    qmgr_envelope_write(incoming_fd, envname, env, 1) == -1)
		goto fail;
	if (rename_noreplace(incoming_fd, id, queue_fd, id) == -1)
		goto fail;
	stage = 1;
	if (rename_noreplace(incoming_fd, envname, queue_fd, envname) == -1)
		goto fail;
	stage = 2;
	if (fsync(queue_fd) == -1)
		goto fail;
	return 0;

fail:
	error = errno;
	log_warn("%s: commit failed", id);
	if (stage == 2)
		(void)unlinkat(queue_fd, envname, 0);
	else
		(void)unlinkat(incoming_fd, envname, 0);
	(void)unlinkat(stage >= 1 ? queue_fd : incoming_fd, id, 0);
	errno = error;
	return -1;
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
spool_accept(struct envelope *env)
{
	struct qmgr_msg	*m;
	char		 sender[LOG_TEXT];

	m = qmgr_msg_new(env);
	qmgr_table_put(&qmgr.msgs, m->env.id, MSGID_LEN, m);
	log_escape(sender, sizeof(sender), m->env.sender,
	    strlen(m->env.sender));
	log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)",
	    m->env.id, sender, (unsigned long long)m->env.size,
	    m->env.nrcpt);
	return m;
}

/* MSG_QMGR_COMMIT: make the message durable, then let smtpd say 250. */
void
qmgr_spool_commit(struct chan *chan, struct msg *msg)
{
	struct envelope	 env;
	struct pending	*p;
	struct qmgr_msg	*m;
	struct msgb	*b;
	uint32_t	 reqid = msg->hdr.peerid;

	p = commit_read(chan, msg, &env);
	if (commit_files(p->id, p->fd, &env) == -1) {
		reply_fail(chan, MSG_QMGR_COMMIT_FAIL, reqid, errno);
		pending_free(p, 0);
		envelope_clear(&env);
		return;
	}
	pending_free(p, 0);

	m = spool_accept(&env);
	b = msgb_new(MSG_QMGR_COMMIT_OK, reqid);
	msgb_str(b, m->env.id);
	chan_send(chan, b);
	if (!qmgr_mq_take(m))
		qmgr_queue_add_msg(m);
}

/* A new file incoming/ID for a message qmgr writes itself; -1, errno. */
int
qmgr_spool_new(char id[MSGID_SIZE])
{
	return spool_new_file(id);
}

/* Give up on a file from qmgr_spool_new(). */
void
qmgr_spool_discard(const char *id, int fd)
{
	if (unlinkat(incoming_fd, id, 0) == -1 && errno != ENOENT)
		log_warn("%s: unlink", id);
	close(fd);
}

/*
 * Commit a message qmgr wrote into fd (from qmgr_spool_new, named
 * env->id) like one from smtpd, and schedule it: 0, or -1 (logged) with
 * every file removed.  Takes env's contents and closes fd either way.
 */
int
qmgr_spool_inject(int fd, struct envelope *env)
{
	struct qmgr_msg	*m;

	if (commit_files(env->id, fd, env) == -1) {
		close(fd);
		envelope_clear(env);
		return -1;
	}
	close(fd);
	m = spool_accept(env);
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
		pending_free(p, 1);
		n++;
	}
	if (n > 0)
		log_info("smtpd gone: %zu message%s rolled back", n,
		    n == 1 ? "" : "s");
}

/*
 * A new read-only descriptor of the message's data, for one delivery job
 * or a DSN: queue/ID, or incoming/ID for a message from the outbox.
 */
int
qmgr_spool_open_data(const struct qmgr_msg *m)
{
	return openat(m->transient ? incoming_fd : queue_fd, m->env.id,
	    O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/*
 * Save recipient states of a message that stays queued: tmp file, fsync,
 * rename.  Without the fsync a crash can leave the renamed envelope empty
 * on some file systems, and recovery would move a message that got 250
 * to corrupt/.  A delivered message is removed without an update, so the
 * common path pays nothing.
 */
void
qmgr_spool_update(struct qmgr_msg *m)
{
	char	 envname[NAME_SIZE], tmpname[NAME_SIZE];

	if (m->transient) {
		/* The broker holds the durable copy. */
		qmgr_ctlindex_changed(m);
		return;
	}
	snprintf(envname, sizeof(envname), "%s%s", m->env.id, ENV_SUFFIX);
	snprintf(tmpname, sizeof(tmpname), "%s%s", m->env.id, TMP_SUFFIX);
	if (qmgr_envelope_write(queue_fd, tmpname, &m->env, 1) == -1 ||
	    renameat(queue_fd, tmpname, queue_fd, envname) == -1) {
		/* The old state stays: at worst a duplicate delivery. */
		log_warn("%s: envelope update", m->env.id);
		(void)unlinkat(queue_fd, tmpname, 0);
	}
	qmgr_ctlindex_changed(m);	/* mtactl's view follows */
}

/* Every recipient is final: envelope first, then data, then memory. */
void
qmgr_spool_remove(struct qmgr_msg *m)
{
	char	 envname[NAME_SIZE];

	qmgr_ctlindex_removed(m);	/* mtactl's view follows */
	if (m->mq != NULL)
		qmgr_mq_forget(m);
	snprintf(envname, sizeof(envname), "%s%s", m->env.id, ENV_SUFFIX);
	if (m->transient) {
		if (unlinkat(incoming_fd, m->env.id, 0) == -1 &&
		    errno != ENOENT)
			log_warn("%s: unlink data", m->env.id);
		log_debug("%s: released", m->env.id);
	} else if (unlinkat(queue_fd, envname, 0) == -1 && errno != ENOENT)
		log_warn("%s: unlink envelope", m->env.id);
	else if (unlinkat(queue_fd, m->env.id, 0) == -1 && errno != ENOENT)
		log_warn("%s: unlink data", m->env.id);
	else
		log_info("%s: removed", m->env.id);
	qmgr_table_del(&qmgr.msgs, m->env.id, MSGID_LEN);
	qmgr_msg_free(m);
}
