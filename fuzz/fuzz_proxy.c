/*
 * Fuzz target: the PROXY protocol v1/v2 header parser
 * (common/proxy_parse.h), the very first octets smtpd reads from a
 * connection in an smtp-proxy range.
 *
 * The parser is fed every prefix of the input, as the octets arrive.
 * Properties: the answers are monotone — PROXY_MORE for a while, then
 * either PROXY_BAD for good, or PROXY_OK with one header length and the
 * same addresses for every longer prefix — and PROXY_OK never claims
 * octets it was not given, nor more than PROXY_MAX (v1: PROXY_V1_MAX, and
 * the line ends in CRLF); nothing is asked for past PROXY_MAX either.
 * Addresses are IPv4 or IPv6 unless the header said LOCAL/UNKNOWN.
 */
#include <sys/socket.h>

#include <string.h>

#include "fuzz.h"
#include "proxy_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr	 hdr, first;
	const char		*why;
	uint8_t			*copy;
	size_t			 len, hdrlen, firstlen = 0;
	int			 r, state = PROXY_MORE;

	if (size > PROXY_MAX + 64)
		return 0;
	memset(&first, 0, sizeof(first));
	for (len = 0; len <= size; len++) {
		memset(&hdr, 0xa5, sizeof(hdr));
		why = NULL;
		hdrlen = (size_t)-1;
		/* An exact-size copy, so that ASan sees any over-read. */
		copy = malloc(len ? len : 1);
		memcpy(copy, data, len);
		r = proxy_parse(copy, len, &hdr, &hdrlen, &why);
		free(copy);
		FUZZ_CHECK(r == PROXY_BAD || r == PROXY_MORE || r == PROXY_OK);
		switch (r) {
		case PROXY_MORE:
			FUZZ_CHECK(state == PROXY_MORE);
			FUZZ_CHECK(len < PROXY_MAX);
			break;
		case PROXY_BAD:
			FUZZ_CHECK(state != PROXY_OK);
			FUZZ_CHECK(why != NULL && why[0] != '\0');
			state = PROXY_BAD;
			break;
		case PROXY_OK:
			FUZZ_CHECK(state != PROXY_BAD);
			FUZZ_CHECK(hdrlen > 0 && hdrlen <= len &&
			    hdrlen <= PROXY_MAX);
			FUZZ_CHECK(hdr.version == 1 || hdr.version == 2);
			if (hdr.version == 1) {
				FUZZ_CHECK(hdrlen <= PROXY_V1_MAX);
				FUZZ_CHECK(data[hdrlen - 2] == '\r' &&
				    data[hdrlen - 1] == '\n');
			}
			if (!hdr.local)
				FUZZ_CHECK((hdr.src.family == AF_INET ||
				    hdr.src.family == AF_INET6) &&
				    hdr.dst.family == hdr.src.family);
			if (state == PROXY_OK) {
				FUZZ_CHECK(hdrlen == firstlen);
				FUZZ_CHECK(hdr.version == first.version &&
				    hdr.local == first.local);
				if (!hdr.local)
					FUZZ_CHECK(memcmp(&hdr.src, &first.src,
					    sizeof(hdr.src)) == 0 &&
					    hdr.sport == first.sport &&
					    hdr.dport == first.dport);
			} else {
				first = hdr;
				firstlen = hdrlen;
				/* The header ends exactly here. */
				FUZZ_CHECK(hdrlen == len);
			}
			state = PROXY_OK;
			break;
		}
	}
	return 0;
}
