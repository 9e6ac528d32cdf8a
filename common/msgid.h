/*
 * Queue ids: 12 uppercase hex digits that name a message in the spool and
 * start every log line about it ("0A1B2C3D4E5F: removed").
 *
 * An id is time based, (seconds << 20 | microseconds) masked to 48 bits,
 * so ids sort roughly by arrival and a restarted qmgr does not reuse the
 * ids of messages still queued.  The issuer keeps the last id it handed
 * out (msgid_next) and still creates files with O_EXCL, because a clock
 * may step backwards.
 */
#ifndef MTAD_MSGID_H
#define MTAD_MSGID_H

#include <stdint.h>

#define MSGID_LEN	12
#define MSGID_SIZE	(MSGID_LEN + 1)
#define MSGID_MASK	((UINT64_C(1) << 48) - 1)

uint64_t	 msgid_from_time(uint64_t sec, uint32_t usec);
/* The id to issue after "last", given the clock's id "now". */
uint64_t	 msgid_next(uint64_t last, uint64_t now);
void		 msgid_format(uint64_t id, char buf[MSGID_SIZE]);
/* Non-zero when s is exactly 12 uppercase hex digits. */
int		 msgid_valid(const char *s);
/* Parse a valid id; -1 when s is not one. */
int		 msgid_parse(const char *s, uint64_t *id);

#endif
