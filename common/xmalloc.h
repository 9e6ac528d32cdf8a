/*
 * Checked allocation: every function aborts the process (via fatal) when
 * memory is exhausted, so callers never test for NULL.
 */
#ifndef MTAD_XMALLOC_H
#define MTAD_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Wipe then free: for passwords and keys. */
void	 xfreezero(void *, size_t);
void	 xfreestr(char *);	/* xfreezero for a NUL-terminated secret */

#endif
