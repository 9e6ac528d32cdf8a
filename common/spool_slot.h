/*
 * Spool slot files: one file holds one queued message, and is reused for
 * the next message when this one is done, so that the spool neither
 * creates nor deletes a file per message (see qmgr/qmgr_spool.c for why).
 *
 * Layout of a slot file (all integers little-endian):
 *
 *	0	header half 0 (SLOT_HDR_SIZE bytes)
 *	512	header half 1
 *	4096	the message as smtpd wrote it, data_len bytes
 *	env_off	the envelope: the JSON object of common/envelope.h,
 *		env_len bytes, somewhere after the data
 *
 * A header:
 *
 *	0	magic "MTADSLT1"
 *	8	u64 seq		a number that grows with every header written
 *				(at most 2^63 - 1)
 *	16	u32 state	0 free, 1 a message
 *	20	u32 env_len
 *	24	u64 data_len
 *	32	u64 env_off
 *	40	u32 env_crc	CRC-32C of the envelope bytes
 *	44	12 bytes	the queue id (state 1), else zero
 *	56..507		zero
 *	508	u32 hdr_crc	CRC-32C of bytes 0..507
 *
 * The current header is the valid one with the higher seq whose envelope
 * (for state 1) is whole; a write always goes to the other half, and a
 * new envelope never overlaps the current one, so a write torn by a power
 * failure leaves the previous state readable.  Both halves share one
 * page: the kernel writes the unchanged half back with the same bytes.
 *
 * Durability (slot_write_msg): a commit syncs data and envelope before it
 * writes the header, then syncs again, because nothing checks the data
 * itself; an update (same data, new envelope) writes both and syncs once,
 * the envelope's CRC covering a torn envelope.  A free header is written
 * without a sync: the spool syncs it before the slot's data is reused.
 */
#ifndef MTAD_SPOOL_SLOT_H
#define MTAD_SPOOL_SLOT_H

#include <stddef.h>
#include <stdint.h>

#include "msgid.h"

#define SLOT_HDR_SIZE	512
#define SLOT_DATA_OFF	4096
#define SLOT_ENV_MAX	(64u * 1024 * 1024)	/* 10,000 recipients ~2 MB */

#define SLOT_STATE_FREE	0
#define SLOT_STATE_MSG	1

struct slot_hdr {
	uint64_t	 seq;
	uint32_t	 state;
	char		 id[MSGID_SIZE];
	uint64_t	 data_len;
	uint64_t	 env_off;
	uint32_t	 env_len;
	uint32_t	 env_crc;
};

void	 slot_hdr_encode(const struct slot_hdr *,
	    unsigned char buf[SLOT_HDR_SIZE]);
/* 0, or -1 when buf is not a whole, well-formed header. */
int	 slot_hdr_decode(const unsigned char buf[SLOT_HDR_SIZE],
	    struct slot_hdr *);

/* What a slot file holds. */
struct slot_read {
	int		 status;
#define SLOT_READ_FREE		0	/* reusable (also: never committed) */
#define SLOT_READ_MSG		1	/* a message: hdr and env are set */
#define SLOT_READ_CORRUPT	2	/* cause says why */
	int		 half;		/* of the current header, -1 if none */
	uint64_t	 maxseq;	/* highest seq of a valid header */
	struct slot_hdr	 hdr;
	char		*env;		/* MSG: NUL-terminated, the caller's */
	const char	*cause;		/* CORRUPT: a fixed text */
};

/* Read a slot file: 0, or -1 with errno on an I/O error. */
int	 slot_read_file(int fd, struct slot_read *);

/* Where a new envelope of len bytes goes, clear of the current one. */
uint64_t slot_env_place(uint64_t data_len, uint64_t cur_off,
	    uint32_t cur_len, size_t len);

#define SLOT_SYNC_NONE		0
#define SLOT_SYNC_ONCE		1	/* envelope + header, then sync */
#define SLOT_SYNC_ORDERED	2	/* sync, header, sync: a commit */

/*
 * Write env as h's envelope and h as the new current header (h->seq,
 * h->id and h->data_len set by the caller; env_off, env_len and env_crc
 * filled in here), in the half after *half, which becomes *half.
 * cur_off/cur_len: the current envelope (0/0 for none).  0, or -1 with
 * errno set; on failure the previous state is still the current one.
 */
int	 slot_write_msg(int fd, struct slot_hdr *h, int *half,
	    const char *env, size_t envlen, uint64_t cur_off,
	    uint32_t cur_len, int sync);
/* Mark the slot free (seq given), in the half after *half; no sync. */
int	 slot_write_free(int fd, uint64_t seq, int *half);

#endif
