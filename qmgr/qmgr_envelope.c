/*
 * Envelope files and in-memory messages.  The JSON format itself lives in
 * common/envelope.c (unit tested); this file reads an envelope file of the
 * older spool format (imported at start, qmgr_spool.c) and turns an
 * envelope into the qmgr_msg that the scheduler works on.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "qmgr.h"
#include "xmalloc.h"

/* Far above any real envelope (10,000 recipients are ~2 MB). */
#define QMGR_ENV_MAX_SIZE	(64u * 1024 * 1024)

/* Read and parse dirfd/name: -1 with *cause when unreadable or corrupt. */
int
qmgr_envelope_read(int dirfd, const char *name, struct envelope *env,
    char **cause)
{
	struct stat	 st;
	char		*buf;
	ssize_t		 n;
	int		 fd, rv;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1 || fstat(fd, &st) == -1) {
		xasprintf(cause, "%s", strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > QMGR_ENV_MAX_SIZE) {
		xasprintf(cause, "not a regular file or too large");
		close(fd);
		return -1;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	n = fd_read_upto(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != (ssize_t)st.st_size) {
		xasprintf(cause, "short read");
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	rv = envelope_from_json(env, buf, (size_t)n, cause);
	free(buf);
	return rv;
}

/* What a message without delivery settings of its own points at. */
static struct msgprops	 no_props;

/*
 * The message's own delivery settings into p: 1 when it has any.  Bad
 * values are the sender's mistake: logged and ignored, the config
 * applies instead.
 */
static int
msg_props(const struct envelope *env, struct msgprops *p)
{
	char	*warnings;

	/* Most messages have none: no need for the JSON parser. */
	if (env->properties == NULL || strcmp(env->properties, "{}") == 0) {
		memset(p, 0, sizeof(*p));
		return 0;
	}
	if (msgprops_parse(env->properties, p, &warnings) == -1) {
		log_warnx("%s: properties are not a JSON object: ignored",
		    env->id);
		return 0;
	}
	if (warnings != NULL) {
		/* Fixed texts only: nothing from the sender is echoed. */
		log_warnx("%s: ignoring bad properties: %s", env->id,
		    warnings);
		free(warnings);
	}
	return p->retries != NULL || p->maxattempts != 0 ||
	    p->maxdelivertime != 0 || p->notify != 0 || p->ret != 0 ||
	    p->envid != NULL;
}

/*
 * Take over env's contents as a new message; nothing is scheduled yet.
 * With 100,000 messages queued, qmgr's memory is mostly theirs: one
 * allocation holds the message, its props when it has any, its
 * qmgr_rcpts, its env.rcpts and their addresses (mostly distinct), and
 * the other strings are shared with the messages that repeat them
 * (envelope_share).
 */
struct qmgr_msg *
qmgr_msg_new(struct envelope *env)
{
	struct qmgr_msg		*m;
	struct msgprops		 props;
	struct envelope_rcpt	*ers;
	char			*p;
	size_t			 i, n = env->nrcpt, size, len;
	int			 has_props;

	has_props = msg_props(env, &props);
	size = sizeof(*m) + (has_props ? sizeof(props) : 0) +
	    n * (sizeof(*m->rcpts) + sizeof(*ers));
	for (i = 0; i < n; i++)
		size += strlen(env->rcpts[i].address) + 1;
	/* Every part's size is a multiple of 8: each stays aligned. */
	m = xcalloc(1, size);
	p = (char *)(m + 1);
	m->props = &no_props;
	if (has_props) {
		m->props = (struct msgprops *)p;
		*m->props = props;
		p += sizeof(props);
	}
	m->rcpts = (struct qmgr_rcpt *)p;
	ers = (struct envelope_rcpt *)(m->rcpts + n);
	p = (char *)(ers + n);

	envelope_share(env);
	m->env = *env;
	m->env.rcpts = ers;
	for (i = 0; i < n; i++) {
		ers[i] = env->rcpts[i];
		len = strlen(ers[i].address) + 1;
		memcpy(p, ers[i].address, len);
		free(ers[i].address);
		ers[i].address = p;
		p += len;

		m->rcpts[i].msg = m;
		m->rcpts[i].idx = (uint32_t)i;
		m->rcpts[i].where = QMGR_RCPT_FINAL;
		if (ENV_RCPT_FINAL(ers[i].state))
			m->nfinal++;
	}
	free(env->rcpts);
	envelope_init(env);
	TAILQ_INIT(&m->qmsgs);
	m->route_key = envelope_smarthost_key(m->env.properties);
	return m;
}

/* Free a message no longer scheduled: every recipient is final. */
void
qmgr_msg_free(struct qmgr_msg *m)
{
	if (!TAILQ_EMPTY(&m->qmsgs))
		log_panic("%s: %s still queued", __func__, m->env.id);
	/* The index points at the message: never leave it a dangling one. */
	if (m->ctl.indexed)
		qmgr_ctlindex_forget(m);
	envelope_clear_keep_rcpts(&m->env);	/* in m's allocation */
	if (m->props != &no_props)
		msgprops_clear(m->props);	/* in m's allocation */
	free(m->route_key);
	free(m);
}

int
qmgr_msg_done(struct qmgr_msg *m)
{
	return m->nfinal == m->env.nrcpt;
}

/*
 * The stage names of the smtp worker's results ("connect"... "data"),
 * kept in each recipient as an index: a name not seen before is learned
 * (the worker is trusted and has a handful), up to 255 of them.
 */
static const char	*stage_names[UINT8_MAX + 1] = {
	"", "connect", "ehlo", "starttls", "auth", "mailfrom", "rcptto",
	"data",
};
static size_t		 nstages = 8;

uint8_t
qmgr_stage_index(const char *name)
{
	size_t	 i;

	for (i = 0; i < nstages; i++)
		if (strcmp(stage_names[i], name) == 0)
			return (uint8_t)i;
	if (nstages == sizeof(stage_names) / sizeof(stage_names[0])) {
		log_warnx("more than %zu stage names: shown as none", nstages);
		return 0;
	}
	stage_names[nstages] = xstrdup(name);
	return (uint8_t)nstages++;
}

const char *
qmgr_stage_name(uint8_t i)
{
	return i < nstages ? stage_names[i] : "";
}
