/*
 * Envelope files and in-memory messages.  The JSON format itself lives in
 * common/envelope.c (unit tested); this file reads and writes it relative
 * to a spool directory descriptor and turns an envelope into the
 * qmgr_msg that the scheduler works on.
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

/*
 * The message's own delivery settings.  Bad values are the sender's
 * mistake: logged and ignored, the config applies instead.
 */
static void
msg_props(struct qmgr_msg *m)
{
	char	*warnings;

	if (msgprops_parse(m->env.properties != NULL ? m->env.properties :
	    "{}", &m->props, &warnings) == -1) {
		log_warnx("%s: properties are not a JSON object: ignored",
		    m->env.id);
		return;
	}
	if (warnings != NULL) {
		/* Fixed texts only: nothing from the sender is echoed. */
		log_warnx("%s: ignoring bad properties: %s", m->env.id,
		    warnings);
		free(warnings);
	}
}

/* Take over env's contents as a new message; nothing is scheduled yet. */
struct qmgr_msg *
qmgr_msg_new(struct envelope *env)
{
	struct qmgr_msg	*m;
	size_t		 i;

	m = xcalloc(1, sizeof(*m));
	m->env = *env;
	envelope_init(env);
	TAILQ_INIT(&m->qmsgs);
	m->rcpts = xcalloc(m->env.nrcpt, sizeof(*m->rcpts));
	for (i = 0; i < m->env.nrcpt; i++) {
		m->rcpts[i].msg = m;
		m->rcpts[i].idx = i;
		m->rcpts[i].where = QMGR_RCPT_FINAL;
		if (ENV_RCPT_FINAL(m->env.rcpts[i].state))
			m->nfinal++;
	}
	m->route_key = envelope_smarthost_key(m->env.properties);
	msg_props(m);
	return m;
}

/* Free a message no longer scheduled: every recipient is final. */
void
qmgr_msg_free(struct qmgr_msg *m)
{
	if (!TAILQ_EMPTY(&m->qmsgs))
		log_panic("%s: %s still queued", __func__, m->env.id);
	envelope_clear(&m->env);
	msgprops_clear(&m->props);
	free(m->rcpts);
	free(m->route_key);
	free(m);
}

int
qmgr_msg_done(struct qmgr_msg *m)
{
	return m->nfinal == m->env.nrcpt;
}
