/* Spool slot files: format and torn-write rules in spool_slot.h. */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "fileio.h"
#include "spool_slot.h"
#include "xmalloc.h"

#define SLOT_MAGIC	"MTADSLT1"
#define SLOT_MAGIC_LEN	8
#define OFF_SEQ		8
#define OFF_STATE	16
#define OFF_ENVLEN	20
#define OFF_DATALEN	24
#define OFF_ENVOFF	32
#define OFF_ENVCRC	40
#define OFF_ID		44
#define OFF_CRC		(SLOT_HDR_SIZE - 4)

static void
put32(unsigned char *p, uint32_t v)
{
	int	i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void
put64(unsigned char *p, uint64_t v)
{
	int	i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t
get32(const unsigned char *p)
{
	uint32_t	v = 0;
	int		i;

	for (i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint64_t
get64(const unsigned char *p)
{
	uint64_t	v = 0;
	int		i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void
slot_hdr_encode(const struct slot_hdr *h, unsigned char buf[SLOT_HDR_SIZE])
{
	memset(buf, 0, SLOT_HDR_SIZE);
	memcpy(buf, SLOT_MAGIC, SLOT_MAGIC_LEN);
	put64(buf + OFF_SEQ, h->seq);
	put32(buf + OFF_STATE, h->state);
	put32(buf + OFF_ENVLEN, h->env_len);
	put64(buf + OFF_DATALEN, h->data_len);
	put64(buf + OFF_ENVOFF, h->env_off);
	put32(buf + OFF_ENVCRC, h->env_crc);
	if (h->state == SLOT_STATE_MSG)
		memcpy(buf + OFF_ID, h->id, MSGID_LEN);
	put32(buf + OFF_CRC, crc32c(0, buf, OFF_CRC));
}

int
slot_hdr_decode(const unsigned char buf[SLOT_HDR_SIZE], struct slot_hdr *h)
{
	memset(h, 0, sizeof(*h));
	if (memcmp(buf, SLOT_MAGIC, SLOT_MAGIC_LEN) != 0 ||
	    get32(buf + OFF_CRC) != crc32c(0, buf, OFF_CRC))
		return -1;
	h->seq = get64(buf + OFF_SEQ);
	h->state = get32(buf + OFF_STATE);
	h->env_len = get32(buf + OFF_ENVLEN);
	h->data_len = get64(buf + OFF_DATALEN);
	h->env_off = get64(buf + OFF_ENVOFF);
	h->env_crc = get32(buf + OFF_ENVCRC);
	/* A seq no writer reaches: the next one would wrap past it. */
	if (h->seq > INT64_MAX)
		return -1;
	if (h->state == SLOT_STATE_FREE)
		return 0;
	if (h->state != SLOT_STATE_MSG)
		return -1;
	memcpy(h->id, buf + OFF_ID, MSGID_LEN);
	h->id[MSGID_LEN] = '\0';
	/* Bounds that keep every later sum and allocation sane. */
	if (!msgid_valid(h->id) || h->env_len == 0 ||
	    h->env_len > SLOT_ENV_MAX || h->data_len > INT64_MAX / 2 ||
	    h->env_off < SLOT_DATA_OFF + h->data_len ||
	    h->env_off > INT64_MAX / 2)
		return -1;
	return 0;
}

static int
all_zero(const unsigned char *p, size_t len)
{
	while (len-- > 0)
		if (*p++ != 0)
			return 0;
	return 1;
}

/* h's envelope when it lies in the file and matches its CRC, else NULL. */
static char *
env_load(int fd, const struct slot_hdr *h, uint64_t size, int *ioerr)
{
	char	*env;
	ssize_t	 n;

	if (h->env_off + h->env_len > size)
		return NULL;
	env = xmalloc((size_t)h->env_len + 1);
	n = fd_pread_upto(fd, env, h->env_len, (off_t)h->env_off);
	if (n == -1)
		*ioerr = errno;
	if (n != (ssize_t)h->env_len ||
	    crc32c(0, env, h->env_len) != h->env_crc) {
		free(env);
		return NULL;
	}
	env[h->env_len] = '\0';
	return env;
}

int
slot_read_file(int fd, struct slot_read *r)
{
	unsigned char	 page[2 * SLOT_HDR_SIZE];
	struct slot_hdr	 h[2];
	struct stat	 st;
	ssize_t		 n;
	int		 valid[2], order[2], i, k, ioerr = 0;

	memset(r, 0, sizeof(*r));
	r->half = -1;
	if (fstat(fd, &st) == -1)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		r->status = SLOT_READ_CORRUPT;
		r->cause = "not a regular file";
		return 0;
	}
	memset(page, 0, sizeof(page));
	if ((n = fd_pread_upto(fd, page, sizeof(page), 0)) == -1)
		return -1;
	for (i = 0; i < 2; i++) {
		valid[i] = slot_hdr_decode(page + i * SLOT_HDR_SIZE,
		    &h[i]) == 0;
		if (valid[i] && h[i].seq > r->maxseq)
			r->maxseq = h[i].seq;
	}
	/* Newer first. */
	order[0] = valid[1] && (!valid[0] || h[1].seq > h[0].seq);
	order[1] = !order[0];
	for (k = 0; k < 2; k++) {
		i = order[k];
		if (!valid[i])
			continue;
		if (h[i].state == SLOT_STATE_FREE) {
			r->status = SLOT_READ_FREE;
			r->half = i;
			r->hdr = h[i];
			return 0;
		}
		if ((r->env = env_load(fd, &h[i], (uint64_t)st.st_size,
		    &ioerr)) != NULL) {
			r->status = SLOT_READ_MSG;
			r->half = i;
			r->hdr = h[i];
			return 0;
		}
		if (ioerr != 0) {
			errno = ioerr;
			return -1;
		}
	}
	if (valid[0] || valid[1]) {
		r->status = SLOT_READ_CORRUPT;
		r->cause = "its envelope does not match its checksum";
	} else if (all_zero(page, sizeof(page))) {
		/* Created, maybe written by smtpd, never committed. */
		r->status = SLOT_READ_FREE;
	} else {
		r->status = SLOT_READ_CORRUPT;
		r->cause = "no valid header";
	}
	return 0;
}

uint64_t
slot_env_place(uint64_t data_len, uint64_t cur_off, uint32_t cur_len,
    size_t len)
{
	uint64_t	p0 = SLOT_DATA_OFF + data_len;

	if (cur_len == 0 || cur_off < p0 || p0 + len <= cur_off)
		return p0;
	return cur_off + cur_len;
}

/* Write h into the half after *half, which becomes the current one. */
static int
hdr_write(int fd, const struct slot_hdr *h, int *half)
{
	unsigned char	buf[SLOT_HDR_SIZE];
	int		next = *half == 0 ? 1 : 0;

	slot_hdr_encode(h, buf);
	if (fd_pwrite_all(fd, buf, sizeof(buf),
	    (off_t)next * SLOT_HDR_SIZE) == -1)
		return -1;
	*half = next;
	return 0;
}

int
slot_write_msg(int fd, struct slot_hdr *h, int *half, const char *env,
    size_t envlen, uint64_t cur_off, uint32_t cur_len, int sync)
{
	int	tmp = *half;

	if (envlen == 0 || envlen > SLOT_ENV_MAX) {
		errno = EFBIG;
		return -1;
	}
	h->state = SLOT_STATE_MSG;
	h->env_off = slot_env_place(h->data_len, cur_off, cur_len, envlen);
	h->env_len = (uint32_t)envlen;
	h->env_crc = crc32c(0, env, envlen);
	if (fd_pwrite_all(fd, env, envlen, (off_t)h->env_off) == -1)
		return -1;
	if (sync == SLOT_SYNC_ORDERED && fdatasync(fd) == -1)
		return -1;
	if (hdr_write(fd, h, &tmp) == -1)
		return -1;
	if (sync != SLOT_SYNC_NONE && fdatasync(fd) == -1)
		return -1;
	*half = tmp;
	return 0;
}

int
slot_write_free(int fd, uint64_t seq, int *half)
{
	struct slot_hdr	h;

	memset(&h, 0, sizeof(h));
	h.seq = seq;
	h.state = SLOT_STATE_FREE;
	return hdr_write(fd, &h, half);
}
