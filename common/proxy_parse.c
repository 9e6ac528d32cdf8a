/*
 * proxy_parse: the PROXY protocol v1 and v2 header (see proxy_parse.h).
 * Everything is checked against the length seen so far; nothing is
 * trusted from the header but what the specification allows.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <string.h>

#include "proxy_parse.h"

static const char	proxy_v1_sig[] = "PROXY ";
#define PROXY_V1_SIGLEN	6

static const uint8_t	proxy_v2_sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

/* v2 commands, families and protocols */
#define V2_CMD_LOCAL	0x0
#define V2_CMD_PROXY	0x1
#define V2_FAM_UNSPEC	0x0
#define V2_FAM_INET	0x1
#define V2_FAM_INET6	0x2
#define V2_FAM_UNIX	0x3
#define V2_PROTO_UNSPEC	0x0
#define V2_PROTO_STREAM	0x1

#define V2_INET_LEN	12	/* src4 dst4 sport dport */
#define V2_INET6_LEN	36	/* src6 dst6 sport dport */
#define V2_UNIX_LEN	216	/* two 108-octet paths */

/* Does buf (len octets) begin like sig?  Compares what is there. */
static int
proxy_prefix(const void *buf, size_t len, const void *sig, size_t siglen)
{
	return memcmp(buf, sig, len < siglen ? len : siglen) == 0;
}

/* A v1 port: 1 to 5 digits, at most 65535. */
static int
proxy_v1_port(const char *s, uint16_t *port)
{
	unsigned long	v = 0;
	size_t		i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i == 5 || s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Split line in place at single spaces; -1 on an empty field. */
static int
proxy_v1_split(char *line, char **f, size_t maxf, size_t *nf)
{
	char	*p = line;

	*nf = 0;
	for (;;) {
		if (*nf == maxf || *p == ' ' || *p == '\0')
			return -1;
		f[(*nf)++] = p;
		if ((p = strchr(p, ' ')) == NULL)
			return 0;
		*p++ = '\0';
	}
}

/* The fields after "PROXY " of a complete v1 line (no CRLF). */
static int
proxy_v1_fields(char *line, struct proxy_hdr *hdr, const char **why)
{
	char	*f[6];
	size_t	 nf;
	int	 family;

	if (strncmp(line, "UNKNOWN", 7) == 0 &&
	    (line[7] == '\0' || line[7] == ' ')) {
		/* Whatever follows UNKNOWN is to be ignored. */
		hdr->local = 1;
		return PROXY_OK;
	}
	if (proxy_v1_split(line, f, 6, &nf) == -1 || nf != 5) {
		*why = "v1: wrong number of fields";
		return PROXY_BAD;
	}
	if (strcmp(f[0], "TCP4") == 0)
		family = AF_INET;
	else if (strcmp(f[0], "TCP6") == 0)
		family = AF_INET6;
	else {
		*why = "v1: unknown protocol";
		return PROXY_BAD;
	}
	if (netaddr_parse(&hdr->src, f[1]) == -1 ||
	    netaddr_parse(&hdr->dst, f[2]) == -1 ||
	    hdr->src.family != family || hdr->dst.family != family) {
		*why = "v1: bad address";
		return PROXY_BAD;
	}
	if (proxy_v1_port(f[3], &hdr->sport) == -1 ||
	    proxy_v1_port(f[4], &hdr->dport) == -1) {
		*why = "v1: bad port";
		return PROXY_BAD;
	}
	return PROXY_OK;
}

/* Version 1: a text line ending in CRLF within PROXY_V1_MAX octets. */
static int
proxy_v1(const char *buf, size_t len, struct proxy_hdr *hdr, size_t *hdrlen,
    const char **why)
{
	char		 line[PROXY_V1_MAX];
	const char	*lf;
	size_t		 n, i;

	n = len < PROXY_V1_MAX ? len : PROXY_V1_MAX;
	if ((lf = memchr(buf, '\n', n)) == NULL) {
		if (len >= PROXY_V1_MAX) {
			*why = "v1: header too long";
			return PROXY_BAD;
		}
		return PROXY_MORE;
	}
	i = (size_t)(lf - buf);
	if (i < PROXY_V1_SIGLEN + 1 || buf[i - 1] != '\r') {
		*why = "v1: line does not end in CRLF";
		return PROXY_BAD;
	}
	n = i - 1 - PROXY_V1_SIGLEN;
	memcpy(line, buf + PROXY_V1_SIGLEN, n);
	line[n] = '\0';
	if (memchr(line, '\0', n) != NULL || memchr(line, '\r', n) != NULL) {
		*why = "v1: invalid character";
		return PROXY_BAD;
	}
	hdr->version = 1;
	*hdrlen = i + 1;
	return proxy_v1_fields(line, hdr, why);
}

/* The TLVs after the addresses: skipped, but each must fit. */
static int
proxy_v2_tlvs(const uint8_t *p, size_t len)
{
	size_t	off = 0, tlen;

	while (off < len) {
		if (len - off < 3)
			return -1;
		tlen = ((size_t)p[off + 1] << 8) | p[off + 2];
		if (tlen > len - off - 3)
			return -1;
		off += 3 + tlen;
	}
	return 0;
}

/* The address block of a v2 PROXY command for INET or INET6. */
static int
proxy_v2_addrs(const uint8_t *p, size_t len, int fam, struct proxy_hdr *hdr,
    const char **why)
{
	size_t	alen = fam == V2_FAM_INET ? 4 : 16, need = 2 * alen + 4;

	if (len < need) {
		*why = "v2: address block too short";
		return PROXY_BAD;
	}
	memset(&hdr->src, 0, sizeof(hdr->src));
	memset(&hdr->dst, 0, sizeof(hdr->dst));
	hdr->src.family = hdr->dst.family =
	    fam == V2_FAM_INET ? AF_INET : AF_INET6;
	memcpy(hdr->src.addr, p, alen);
	memcpy(hdr->dst.addr, p + alen, alen);
	hdr->sport = (uint16_t)((p[2 * alen] << 8) | p[2 * alen + 1]);
	hdr->dport = (uint16_t)((p[2 * alen + 2] << 8) | p[2 * alen + 3]);
	if (proxy_v2_tlvs(p + need, len - need) == -1) {
		*why = "v2: malformed TLV";
		return PROXY_BAD;
	}
	return PROXY_OK;
}

/* Version 2: the binary header. */
static int
proxy_v2(const uint8_t *buf, size_t len, struct proxy_hdr *hdr,
    size_t *hdrlen, const char **why)
{
	size_t	alen;
	int	cmd, fam, proto;

	if (len < PROXY_V2_HDR)
		return PROXY_MORE;
	if ((buf[12] >> 4) != 2) {
		*why = "v2: unknown version";
		return PROXY_BAD;
	}
	cmd = buf[12] & 0xf;
	fam = buf[13] >> 4;
	proto = buf[13] & 0xf;
	alen = ((size_t)buf[14] << 8) | buf[15];
	if (cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY) {
		*why = "v2: unknown command";
		return PROXY_BAD;
	}
	if (alen > PROXY_V2_MAXLEN) {
		*why = "v2: header too long";
		return PROXY_BAD;
	}
	if (len < PROXY_V2_HDR + alen)
		return PROXY_MORE;
	hdr->version = 2;
	*hdrlen = PROXY_V2_HDR + alen;
	if (cmd == V2_CMD_LOCAL) {
		hdr->local = 1;
		return PROXY_OK;
	}
	switch (fam) {
	case V2_FAM_INET:
	case V2_FAM_INET6:
		if (proto == V2_PROTO_UNSPEC) {
			hdr->local = 1;
			return PROXY_OK;
		}
		if (proto != V2_PROTO_STREAM) {
			*why = "v2: not a stream connection";
			return PROXY_BAD;
		}
		return proxy_v2_addrs(buf + PROXY_V2_HDR, alen, fam, hdr, why);
	case V2_FAM_UNSPEC:
		hdr->local = 1;
		return PROXY_OK;
	case V2_FAM_UNIX:
		if (alen < V2_UNIX_LEN) {
			*why = "v2: address block too short";
			return PROXY_BAD;
		}
		hdr->local = 1;
		return PROXY_OK;
	default:
		*why = "v2: unknown address family";
		return PROXY_BAD;
	}
}

int
proxy_parse(const void *buf, size_t len, struct proxy_hdr *hdr,
    size_t *hdrlen, const char **why)
{
	memset(hdr, 0, sizeof(*hdr));
	*hdrlen = 0;
	*why = "";
	if (len == 0)
		return PROXY_MORE;
	if (proxy_prefix(buf, len, proxy_v1_sig, PROXY_V1_SIGLEN)) {
		if (len < PROXY_V1_SIGLEN)
			return PROXY_MORE;
		return proxy_v1(buf, len, hdr, hdrlen, why);
	}
	if (proxy_prefix(buf, len, proxy_v2_sig, sizeof(proxy_v2_sig)))
		return proxy_v2(buf, len, hdr, hdrlen, why);
	*why = "no PROXY signature";
	return PROXY_BAD;
}
