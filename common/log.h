/*
 * Logging for every mtad process: syslog (mail facility, ident "mtad/NAME")
 * or stderr when running in the foreground with -d.  Lines follow Postfix's
 * shape so that existing log tools read them:
 *	mtad/qmgr[813]: 0A1B2C3D4E5F: removed
 * fatal()/fatalx() exit 1; log_panic() aborts (core) on a broken invariant.
 * Untrusted text must go through log_escape() before it is logged.
 */
#ifndef MTAD_LOG_H
#define MTAD_LOG_H

#include <sys/types.h>

#include <stdarg.h>
#include <stddef.h>

#define LOG_LEVEL_ERR		0
#define LOG_LEVEL_WARNING	1
#define LOG_LEVEL_INFO		2
#define LOG_LEVEL_DEBUG		3

void	log_init(int foreground, int level);
/* This process's pid (cached; forgotten in a fork's child). */
pid_t	proc_pid(void);
void	log_procinit(const char *name);
void	log_setlevel(int level);
int	log_getlevel(void);
int	log_level_from_name(const char *name);
int	log_foreground(void);

void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	log_panic(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

/* Copy untrusted text into dst (size dstlen) with non-printables as \xNN. */
const char *log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);

#endif
