/*
 * The spool's directories and the pid file.  As root the spool directory
 * itself belongs to root (so `user` cannot swap the chroot directory inside
 * it), and its working subdirectories belong to `user`:
 *
 *	SPOOL/		root 0755
 *	SPOOL/empty	root 0555	chroot of smtpd, smtp, resolver
 *	SPOOL/slots	user 0700	slot files: messages being received
 *				and queued (qmgr/qmgr_spool.c)
 *	SPOOL/corrupt	user 0700	files moved aside at recovery
 *
 * SPOOL/queue and SPOOL/incoming of the older one-file-pair-per-message
 * format are not made any more; qmgr imports what it finds there.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master.h"
#include "xmalloc.h"

/* mkdir -p of the parents of path, root-owned when we are root. */
static void
spool_mkparents(const char *path)
{
	char	*p, *s;

	p = xstrdup(path);
	for (s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) == -1 && errno != EEXIST)
			fatal("mkdir %s", p);
		*s = '/';
	}
	free(p);
}

/* Create (or fix) one directory with its owner and mode. */
static void
spool_dir(const char *path, mode_t mode, int user_owned)
{
	struct stat	 st;

	if (mkdir(path, mode) == -1 && errno != EEXIST)
		fatal("mkdir %s", path);
	if (lstat(path, &st) == -1)
		fatal("stat %s", path);
	if (!S_ISDIR(st.st_mode))
		fatalx("%s is not a directory", path);
	if (mtad->root) {
		if (chown(path, user_owned ? mtad->uid : 0,
		    user_owned ? mtad->gid : 0) == -1)
			fatal("chown %s", path);
	}
	if (chmod(path, mode) == -1)
		fatal("chmod %s", path);
}

void
master_spool_prepare(void)
{
	const char	*spool = mtad->conf->spool_dir;
	static const char *subdirs[] = { "slots", "corrupt" };
	char		*path;
	size_t		 i;

	if (*spool != '/')
		fatalx("spool-dir must be an absolute path: %s", spool);
	spool_mkparents(spool);
	spool_dir(spool, 0755, 0);
	xasprintf(&path, "%s/empty", spool);
	spool_dir(path, 0555, 0);
	free(path);
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		xasprintf(&path, "%s/%s", spool, subdirs[i]);
		spool_dir(path, 0700, 1);
		free(path);
	}
}

/* Refuse to start when the pid file names a live mtad; else write ours. */
void
master_pidfile_write(void)
{
	const char	*path = mtad->conf->pid_file;
	char		 buf[32];
	FILE		*fp;
	long		 pid;

	if ((fp = fopen(path, "r")) != NULL) {
		if (fgets(buf, sizeof(buf), fp) != NULL &&
		    (pid = strtol(buf, NULL, 10)) > 1 && pid != getpid() &&
		    kill((pid_t)pid, 0) == 0)
			fatalx("mtad already running with pid %ld (%s)", pid,
			    path);
		fclose(fp);
	}
	spool_mkparents(path);
	if ((fp = fopen(path, "w")) == NULL)
		fatal("pid file %s", path);
	fprintf(fp, "%ld\n", (long)getpid());
	if (fclose(fp) == EOF)
		fatal("pid file %s", path);
}

void
master_pidfile_remove(void)
{
	if (unlink(mtad->conf->pid_file) == -1 && errno != ENOENT)
		log_warn("unlink %s", mtad->conf->pid_file);
}
