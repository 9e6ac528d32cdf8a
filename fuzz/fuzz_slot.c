/*
 * Fuzz target: the spool slot reader (common/spool_slot.h), which qmgr
 * runs at recovery on whatever the disk holds in slots/.  The input is the
 * whole file.
 *
 * Properties: reading never fails on a readable file and never crashes;
 * a message it returns lies inside the file, after its data, with a valid
 * queue id and exactly env_len octets of envelope; corrupt comes with a
 * cause.  Then the writer: a new envelope written over whatever state was
 * read (as an update or a first commit) reads back as the current one,
 * and the state it replaced is untouched (a write never overlaps the
 * current envelope); a free header written after it reads back as free.
 */
#include <sys/mman.h>

#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "fuzz.h"
#include "spool_slot.h"

#define NEW_ENV	"{\"fuzz\":\"a new envelope\"}"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct slot_read	 r, again;
	struct slot_hdr		 h;
	char			*old = NULL;
	uint64_t		 off = 0, seq;
	uint32_t		 len = 0;
	int			 fd, half;

	if ((fd = memfd_create("fuzz_slot", 0)) == -1)
		abort();
	if (size > 0 && fd_pwrite_all(fd, data, size, 0) == -1)
		abort();
	FUZZ_CHECK(slot_read_file(fd, &r) == 0);
	switch (r.status) {
	case SLOT_READ_MSG:
		FUZZ_CHECK(r.env != NULL && msgid_valid(r.hdr.id));
		FUZZ_CHECK(r.hdr.env_off >= SLOT_DATA_OFF + r.hdr.data_len);
		FUZZ_CHECK(r.hdr.env_off + r.hdr.env_len <= size);
		FUZZ_CHECK(r.hdr.env_len > 0 && r.env[r.hdr.env_len] == '\0');
		FUZZ_CHECK(memcmp(r.env, data + r.hdr.env_off,
		    r.hdr.env_len) == 0);
		FUZZ_CHECK(r.half == 0 || r.half == 1);
		off = r.hdr.env_off;
		len = r.hdr.env_len;
		old = r.env;
		break;
	case SLOT_READ_FREE:
		FUZZ_CHECK(r.env == NULL);
		break;
	case SLOT_READ_CORRUPT:
		FUZZ_CHECK(r.env == NULL && r.cause != NULL);
		close(fd);
		return 0;
	default:
		FUZZ_CHECK(0);
	}

	/* Write a new state over the one read: it becomes the current one. */
	memset(&h, 0, sizeof(h));
	seq = r.maxseq + 1;
	h.seq = seq;
	memcpy(h.id, r.status == SLOT_READ_MSG ? r.hdr.id : "0A1B2C3D4E5F",
	    MSGID_SIZE);
	h.data_len = r.status == SLOT_READ_MSG ? r.hdr.data_len : 0;
	half = r.half;
	FUZZ_CHECK(slot_write_msg(fd, &h, &half, NEW_ENV, strlen(NEW_ENV), off,
	    len, SLOT_SYNC_NONE) == 0);
	FUZZ_CHECK(half != r.half);
	FUZZ_CHECK(slot_read_file(fd, &again) == 0);
	FUZZ_CHECK(again.status == SLOT_READ_MSG);
	FUZZ_CHECK(strcmp(again.env, NEW_ENV) == 0);
	FUZZ_CHECK(again.half == half && again.hdr.seq == seq);
	free(again.env);

	/* The state it replaced is still whole where it was. */
	if (old != NULL) {
		char	*buf = malloc(len);

		FUZZ_CHECK(fd_pread_upto(fd, buf, len, (off_t)off) ==
		    (ssize_t)len);
		FUZZ_CHECK(memcmp(buf, old, len) == 0);
		free(buf);
		free(old);
	}

	FUZZ_CHECK(slot_write_free(fd, seq + 1, &half) == 0);
	FUZZ_CHECK(slot_read_file(fd, &again) == 0);
	FUZZ_CHECK(again.status == SLOT_READ_FREE && again.half == half);
	close(fd);
	return 0;
}
