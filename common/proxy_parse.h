/*
 * proxy_parse: the HAProxy PROXY protocol header, versions 1 (text) and
 * 2 (binary), as a pure function over a buffer so that it is unit tested
 * (www.haproxy.org/download/2.9/doc/proxy-protocol.txt).
 *
 *   v1: "PROXY TCP4 192.0.2.1 198.51.100.1 56324 25\r\n", at most 107
 *       octets with its CRLF; "PROXY UNKNOWN ...\r\n" says nothing.
 *   v2: a 12-octet signature, version/command, family/protocol, a 16-bit
 *       length, then the addresses and TLVs (skipped, but their framing is
 *       checked).  The LOCAL command (a health check) and the UNSPEC and
 *       UNIX families say nothing either: the connection's own addresses
 *       stay.
 *
 * The parser is fed what arrived so far.  It says PROXY_MORE as long as
 * every octet seen may still be part of a header, so the caller may read
 * exactly up to the end of the header and not one octet beyond it: what
 * follows belongs to SMTP or to a TLS handshake.
 */
#ifndef MTAD_PROXY_PARSE_H
#define MTAD_PROXY_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "netaddr.h"

#define PROXY_V1_MAX		107	/* v1 line, CRLF included */
#define PROXY_V2_HDR		16	/* v2 fixed part */
#define PROXY_V2_MAXLEN		2048	/* v2 addresses + TLVs we accept */
#define PROXY_MAX		(PROXY_V2_HDR + PROXY_V2_MAXLEN)

/* proxy_parse() results */
#define PROXY_BAD		-1	/* not a valid header: *why says why */
#define PROXY_MORE		0	/* a valid beginning: read on */
#define PROXY_OK		1	/* a header of *hdrlen octets */

struct proxy_hdr {
	int		 version;	/* 1 or 2 */
	int		 local;		/* no addresses: keep the socket's */
	struct netaddr	 src, dst;	/* client, and the address it reached */
	uint16_t	 sport, dport;
};

/*
 * Parse the header at the start of buf (len octets so far).  With
 * PROXY_OK, *hdr and *hdrlen are set; with PROXY_BAD, *why is a static
 * string.  Never reads beyond buf[len - 1].
 */
int	proxy_parse(const void *buf, size_t len, struct proxy_hdr *hdr,
	    size_t *hdrlen, const char **why);

#endif
