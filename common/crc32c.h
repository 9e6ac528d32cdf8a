/*
 * CRC-32C (Castagnoli, RFC 3720 appendix B.4): the checksum of the spool
 * slot headers and envelopes (common/spool_slot.h), to tell a record that
 * was torn by a power failure from one that is whole.
 */
#ifndef MTAD_CRC32C_H
#define MTAD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue crc (0 to start) over len bytes of buf. */
uint32_t	crc32c(uint32_t crc, const void *buf, size_t len);

#endif
