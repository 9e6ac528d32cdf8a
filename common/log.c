/*
 * Logging to syslog (LOG_MAIL, ident "mtad/NAME") or, in the foreground, to
 * stderr with the same "mtad/NAME[PID]: " prefix so that test harnesses and
 * syslog consumers read the same lines.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 log_fg = 1;
static int	 log_lvl = LOG_LEVEL_INFO;
static char	 log_ident[64] = "mtad/master";

static const char *level_names[] = { "err", "warning", "info", "debug" };
static pid_t	 cached_pid;

/* A fork's child is another process: it asks the kernel again. */
static void
pid_forget(void)
{
	cached_pid = 0;
}

/*
 * getpid(), asked once: every log line and every channel message carries
 * the pid, and glibc no longer caches it (a system call each time).
 */
pid_t
proc_pid(void)
{
	static int	 registered;

	if (!registered) {
		(void)pthread_atfork(NULL, NULL, pid_forget);
		registered = 1;
	}
	if (cached_pid == 0)
		cached_pid = getpid();
	return cached_pid;
}

void
log_init(int foreground, int level)
{
	log_fg = foreground;
	log_lvl = level;
	if (!log_fg)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	tzset();
}

/* Name this process in every line it logs from now on. */
void
log_procinit(const char *name)
{
	snprintf(log_ident, sizeof(log_ident), "mtad/%s", name);
	if (!log_fg) {
		closelog();
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

void
log_setlevel(int level)
{
	log_lvl = level;
}

int
log_getlevel(void)
{
	return log_lvl;
}

int
log_foreground(void)
{
	return log_fg;
}

int
log_level_from_name(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

/* Emit one line; a single write(2) keeps lines of concurrent processes whole. */
static void
log_line(int level, const char *prefix, const char *msg)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char	 line[8192];
	int	 n;

	if (level > log_lvl)
		return;
	if (!log_fg) {
		syslog(prio[level], "%s%s", prefix, msg);
		return;
	}
	n = snprintf(line, sizeof(line) - 1, "%s[%ld]: %s%s", log_ident,
	    (long)proc_pid(), prefix, msg);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

/* Format and emit; with_errno appends ": strerror(errno)" like warn(3). */
static void
log_vlog(int level, const char *prefix, int with_errno, const char *fmt,
    va_list ap)
{
	char	 msg[4096], full[4352];
	int	 saved = errno;

	if (level > log_lvl) {
		errno = saved;
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		snprintf(full, sizeof(full), "%s: %s", msg, strerror(saved));
		log_line(level, prefix, full);
	} else
		log_line(level, prefix, msg);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_WARNING, "warning: ", 1, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_WARNING, "warning: ", 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_INFO, "", 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_DEBUG, "debug: ", 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERR, "fatal: ", 1, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERR, "fatal: ", 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/* A broken invariant: log and dump core for the post-mortem. */
void
log_panic(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_ERR, "panic: ", 0, fmt, ap);
	va_end(ap);
	abort();
}

const char *
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t	 i, o = 0;
	unsigned char c;

	if (dstlen == 0)
		return dst;
	for (i = 0; i < srclen; i++) {
		c = (unsigned char)src[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = c;
		} else {
			if (o + 4 >= dstlen)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 0xf];
		}
	}
	dst[o] = '\0';
	return dst;
}
