/* Queue ids: generation, formatting and validation (see msgid.h). */
#include <stdint.h>
#include <stdio.h>

#include "msgid.h"

uint64_t
msgid_from_time(uint64_t sec, uint32_t usec)
{
	return ((sec << 20) | (usec & 0xfffff)) & MSGID_MASK;
}

/*
 * Never hand out the same id twice in one process, even when two messages
 * arrive within one microsecond or the clock steps back: take the clock's
 * id only when it is ahead of the last one issued.
 */
uint64_t
msgid_next(uint64_t last, uint64_t now)
{
	if (now > last)
		return now & MSGID_MASK;
	return (last + 1) & MSGID_MASK;
}

void
msgid_format(uint64_t id, char buf[MSGID_SIZE])
{
	snprintf(buf, MSGID_SIZE, "%012llX",
	    (unsigned long long)(id & MSGID_MASK));
}

int
msgid_valid(const char *s)
{
	int	 i;

	for (i = 0; i < MSGID_LEN; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'A' && s[i] <= 'F')))
			return 0;
	}
	return s[MSGID_LEN] == '\0';
}

int
msgid_parse(const char *s, uint64_t *id)
{
	uint64_t	 v = 0;
	int		 i;

	if (!msgid_valid(s))
		return -1;
	for (i = 0; i < MSGID_LEN; i++)
		v = (v << 4) | (uint64_t)(s[i] <= '9' ? s[i] - '0' :
		    s[i] - 'A' + 10);
	*id = v;
	return 0;
}
