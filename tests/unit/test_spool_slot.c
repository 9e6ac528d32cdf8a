/*
 * Spool slot files (common/spool_slot.c): headers round-trip and refuse
 * damage; a slot file reads back as free, a message or corrupt; a torn
 * update (envelope or header) falls back to the previous state; new
 * envelopes never overlap the current one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "crc32c.h"
#include "fileio.h"
#include "spool_slot.h"

#define ID	"0A1B2C3D4E5F"

static void
test_crc32c(void **state)
{
	(void)state;
	/* RFC 3720 B.4 check value, and 32 zero bytes. */
	assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(crc32c(0, (char[32]){ 0 }, 32), 0x8A9136AAu);
	/* Continuing gives the same as one pass. */
	assert_int_equal(crc32c(crc32c(0, "1234", 4), "56789", 5),
	    0xE3069283u);
}

static void
msg_hdr(struct slot_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->seq = 77;
	h->state = SLOT_STATE_MSG;
	memcpy(h->id, ID, MSGID_SIZE);
	h->data_len = 1000;
	h->env_off = SLOT_DATA_OFF + 1000;
	h->env_len = 300;
	h->env_crc = 0xdeadbeef;
}

static void
test_header_roundtrip(void **state)
{
	unsigned char	 buf[SLOT_HDR_SIZE];
	struct slot_hdr	 h, g;

	(void)state;
	msg_hdr(&h);
	slot_hdr_encode(&h, buf);
	assert_int_equal(slot_hdr_decode(buf, &g), 0);
	assert_int_equal(g.seq, 77);
	assert_int_equal(g.state, SLOT_STATE_MSG);
	assert_string_equal(g.id, ID);
	assert_int_equal(g.data_len, 1000);
	assert_int_equal(g.env_off, SLOT_DATA_OFF + 1000);
	assert_int_equal(g.env_len, 300);
	assert_int_equal(g.env_crc, 0xdeadbeef);

	memset(&h, 0, sizeof(h));
	h.seq = INT64_MAX;
	slot_hdr_encode(&h, buf);
	assert_int_equal(slot_hdr_decode(buf, &g), 0);
	assert_int_equal(g.state, SLOT_STATE_FREE);
	assert_int_equal(g.seq, INT64_MAX);
	/* Past it the next seq could wrap: refused. */
	h.seq = (uint64_t)INT64_MAX + 1;
	slot_hdr_encode(&h, buf);
	assert_int_equal(slot_hdr_decode(buf, &g), -1);
}

/* Re-encode h, damage it with f, and expect decode to refuse it. */
static void
refused(struct slot_hdr *h, int fix_crc, size_t at, unsigned char byte)
{
	unsigned char	buf[SLOT_HDR_SIZE];
	struct slot_hdr	g;
	uint32_t	c;
	int		i;

	slot_hdr_encode(h, buf);
	buf[at] = byte;
	if (fix_crc) {
		c = crc32c(0, buf, SLOT_HDR_SIZE - 4);
		for (i = 0; i < 4; i++)
			buf[SLOT_HDR_SIZE - 4 + i] = (unsigned char)(c >> 8 * i);
	}
	assert_int_equal(slot_hdr_decode(buf, &g), -1);
}

static void
test_header_refused(void **state)
{
	struct slot_hdr	h;
	size_t		at;

	(void)state;
	msg_hdr(&h);
	/* Any flipped byte: the CRC. */
	for (at = 0; at < SLOT_HDR_SIZE; at += 7)
		refused(&h, 0, at, 0x5a);
	/* Well-formed CRC, bad fields. */
	refused(&h, 1, 0, 'X');			/* magic */
	refused(&h, 1, 16, 2);			/* state */
	refused(&h, 1, 44, 'g');		/* id: lowercase */
	msg_hdr(&h);
	h.env_len = 0;
	refused(&h, 0, 60, 0);			/* no envelope (60 is zero) */
	msg_hdr(&h);
	h.env_off = SLOT_DATA_OFF + 999;	/* overlaps the data */
	refused(&h, 0, 60, 0);
	msg_hdr(&h);
	h.env_len = SLOT_ENV_MAX + 1;
	refused(&h, 0, 60, 0);
	msg_hdr(&h);
	h.data_len = UINT64_MAX - 10;
	h.env_off = UINT64_MAX - 5;
	refused(&h, 0, 60, 0);
}

static void
test_env_place(void **state)
{
	(void)state;
	/* No envelope yet: right after the data. */
	assert_int_equal(slot_env_place(100, 0, 0, 50), SLOT_DATA_OFF + 100);
	/* The current one is there: after it. */
	assert_int_equal(slot_env_place(100, SLOT_DATA_OFF + 100, 50, 50),
	    SLOT_DATA_OFF + 150);
	/* The current one is second and the new one fits before it. */
	assert_int_equal(slot_env_place(100, SLOT_DATA_OFF + 150, 50, 50),
	    SLOT_DATA_OFF + 100);
	/* It does not fit before it: after it. */
	assert_int_equal(slot_env_place(100, SLOT_DATA_OFF + 150, 50, 51),
	    SLOT_DATA_OFF + 200);
	/* An envelope of a longer, earlier message inside the data. */
	assert_int_equal(slot_env_place(100, SLOT_DATA_OFF + 20, 50, 50),
	    SLOT_DATA_OFF + 100);
}

static int
tmpfile_fd(void)
{
	char	path[] = "/tmp/test_spool_slot.XXXXXX";
	int	fd;

	fd = mkstemp(path);
	assert_true(fd != -1);
	unlink(path);
	return fd;
}

static void
write_data(int fd, size_t len)
{
	char	*d = malloc(len);

	memset(d, 'd', len);
	assert_int_equal(fd_pwrite_all(fd, d, len, SLOT_DATA_OFF), 0);
	free(d);
}

/* Commit env text as the message in fd (data of data_len bytes). */
static void
save(int fd, uint64_t seq, int *half, uint64_t data_len, const char *env,
    uint64_t *off, uint32_t *len, int mode)
{
	struct slot_hdr	h;

	memset(&h, 0, sizeof(h));
	h.seq = seq;
	memcpy(h.id, ID, MSGID_SIZE);
	h.data_len = data_len;
	assert_int_equal(slot_write_msg(fd, &h, half, env, strlen(env), *off,
	    *len, mode), 0);
	assert_true(h.env_off >= SLOT_DATA_OFF + data_len);
	/* Never over the envelope that was current. */
	assert_true(*len == 0 || h.env_off >= *off + *len ||
	    h.env_off + h.env_len <= *off);
	*off = h.env_off;
	*len = h.env_len;
}

static void
expect(int fd, int status, const char *env)
{
	struct slot_read	r;

	assert_int_equal(slot_read_file(fd, &r), 0);
	assert_int_equal(r.status, status);
	if (env != NULL) {
		assert_non_null(r.env);
		assert_string_equal(r.env, env);
		assert_string_equal(r.hdr.id, ID);
	} else
		assert_null(r.env);
	free(r.env);
}

static void
test_file_lifecycle(void **state)
{
	struct slot_read	 r;
	uint64_t		 off = 0;
	uint32_t		 len = 0;
	int			 fd, half = -1;

	(void)state;
	fd = tmpfile_fd();
	/* New and empty, or written by smtpd but never committed. */
	expect(fd, SLOT_READ_FREE, NULL);
	write_data(fd, 5000);
	expect(fd, SLOT_READ_FREE, NULL);

	save(fd, 1, &half, 5000, "{\"v\":1}", &off, &len, SLOT_SYNC_ORDERED);
	expect(fd, SLOT_READ_MSG, "{\"v\":1}");
	save(fd, 2, &half, 5000, "{\"v\":2,\"longer\":1}", &off, &len,
	    SLOT_SYNC_ONCE);
	expect(fd, SLOT_READ_MSG, "{\"v\":2,\"longer\":1}");
	save(fd, 3, &half, 5000, "{\"v\":3}", &off, &len, SLOT_SYNC_NONE);
	expect(fd, SLOT_READ_MSG, "{\"v\":3}");
	assert_int_equal(slot_read_file(fd, &r), 0);
	assert_int_equal(r.maxseq, 3);
	assert_int_equal(r.half, half);
	free(r.env);

	/* Free: no envelope, and reused for a smaller message. */
	assert_int_equal(slot_write_free(fd, 4, &half), 0);
	expect(fd, SLOT_READ_FREE, NULL);
	off = len = 0;
	save(fd, 5, &half, 10, "{\"v\":5}", &off, &len, SLOT_SYNC_ORDERED);
	expect(fd, SLOT_READ_MSG, "{\"v\":5}");
	close(fd);
}

static void
test_torn_writes(void **state)
{
	uint64_t	 off = 0, prev_off;
	uint32_t	 len = 0;
	int		 fd, half = -1;

	(void)state;
	fd = tmpfile_fd();
	write_data(fd, 100);
	save(fd, 1, &half, 100, "{\"old\":true}", &off, &len,
	    SLOT_SYNC_ORDERED);
	prev_off = off;
	save(fd, 2, &half, 100, "{\"new\":true}", &off, &len, SLOT_SYNC_ONCE);
	assert_true(off != prev_off);

	/* The new envelope torn: the old state comes back. */
	assert_int_equal(fd_pwrite_all(fd, "X", 1, (off_t)off + 3), 0);
	expect(fd, SLOT_READ_MSG, "{\"old\":true}");
	/* The old one torn too: nothing usable, and it says so. */
	assert_int_equal(fd_pwrite_all(fd, "X", 1, (off_t)prev_off + 3), 0);
	expect(fd, SLOT_READ_CORRUPT, NULL);
	close(fd);

	/* A torn header: the other half is current. */
	fd = tmpfile_fd();
	write_data(fd, 100);
	off = len = 0;
	half = -1;
	save(fd, 1, &half, 100, "{\"old\":true}", &off, &len,
	    SLOT_SYNC_ORDERED);
	save(fd, 2, &half, 100, "{\"new\":true}", &off, &len, SLOT_SYNC_ONCE);
	assert_int_equal(fd_pwrite_all(fd, "\377\377", 2,
	    (off_t)half * SLOT_HDR_SIZE + 100), 0);
	expect(fd, SLOT_READ_MSG, "{\"old\":true}");
	/* Both headers torn: corrupt, not free. */
	assert_int_equal(fd_pwrite_all(fd, "\377\377", 2,
	    (off_t)(1 - half) * SLOT_HDR_SIZE + 100), 0);
	expect(fd, SLOT_READ_CORRUPT, NULL);
	close(fd);

	/* An envelope cut short by the end of the file. */
	fd = tmpfile_fd();
	off = len = 0;
	half = -1;
	save(fd, 1, &half, 0, "{\"a\":1}", &off, &len, SLOT_SYNC_NONE);
	assert_int_equal(ftruncate(fd, (off_t)off + 2), 0);
	expect(fd, SLOT_READ_CORRUPT, NULL);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_header_refused),
		cmocka_unit_test(test_env_place),
		cmocka_unit_test(test_file_lifecycle),
		cmocka_unit_test(test_torn_writes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
