/*
 * Interned strings: one shared, reference-counted copy of each distinct
 * text, for the strings that thousands of queued messages repeat (the
 * sender, the client, its HELO, the local address, a down destination's
 * last reply, the empty string).  qmgr keeps 100,000 messages in memory;
 * one copy per message of each would cost more than the message itself.
 *
 * An interned string must not be changed and is given back with
 * intern_release(), never free().  intern_release() also takes a string
 * that did not come from intern_str() and frees it, so that a struct can
 * hold either kind (envelope.c: an envelope being built holds plain
 * strings, a queued message's envelope interned ones) and be cleared by
 * one function.  The table is per process and not thread-safe.
 */
#ifndef MTAD_INTERN_H
#define MTAD_INTERN_H

#include <stddef.h>

/* The shared copy of s, with one more reference. */
char	*intern_str(const char *s);
/* One reference less (interned), or free(s) (not interned); NULL: none. */
void	 intern_release(char *s);
/* Whether s is the table's copy of its text. */
int	 intern_owns(const char *s);
/* Distinct strings held (tests, statistics). */
size_t	 intern_count(void);

#endif
