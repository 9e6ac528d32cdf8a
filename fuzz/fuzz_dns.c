/*
 * Fuzz target: the resolver's DNS answer reader (common/dns_parse.h) on
 * packets from the network.  The question it expects (name, type) is
 * picked by byte 0; the id is taken from the packet itself so that the
 * fuzzer gets past the id check at once.
 *
 * Properties: a packet is either refused (-1, to be ignored) or read
 * into a status of RES_*; records only with RES_OK, at most
 * DNS_RECS_MAX; MX exchanges are valid host names (what
 * dns_name_normalize keeps unchanged) sorted by preference, or the one
 * null MX "."; A and AAAA values are addresses of their family; a
 * truncated reply (DNS_REPLY_TC) carries nothing.  Also the name normalizer on the
 * same bytes: its output is the input lowercased, and normalizes to
 * itself.
 */
#include <arpa/inet.h>

#include <ctype.h>
#include <string.h>

#include "dns_parse.h"
#include "fuzz.h"
#include "proto.h"
#include "xmalloc.h"

static const char *const names[] = { "mx.test", "a.test", "example.com",
    "xn--bcher-kva.example", "x" };
static const int types[] = { RES_T_MX, RES_T_A, RES_T_AAAA };

static void
check_answer(const struct dns_answer *a, int qtype, int flags)
{
	char		 norm[DNS_NAME_MAX + 1];
	unsigned char	 addr[16];
	size_t		 i;

	if (flags & DNS_REPLY_TC) {
		/* Truncated: ask again over TCP; nothing else is said. */
		FUZZ_CHECK(a->n == 0 && a->v == NULL);
		return;
	}
	FUZZ_CHECK(a->status >= RES_OK && a->status <= RES_TEMPFAIL);
	if (a->status != RES_OK)
		FUZZ_CHECK(a->n == 0);
	else
		FUZZ_CHECK(a->n > 0);
	FUZZ_CHECK(a->n <= DNS_RECS_MAX);
	for (i = 0; i < a->n; i++) {
		FUZZ_CHECK(a->v[i].value != NULL);
		switch (qtype) {
		case RES_T_MX:
			if (strcmp(a->v[i].value, ".") == 0) {
				FUZZ_CHECK(a->n == 1);
				break;
			}
			FUZZ_CHECK(dns_name_normalize(a->v[i].value, norm,
			    sizeof(norm)) == 0);
			FUZZ_CHECK(strcmp(norm, a->v[i].value) == 0);
			if (i > 0)
				FUZZ_CHECK(a->v[i - 1].pref <= a->v[i].pref);
			break;
		case RES_T_A:
			FUZZ_CHECK(inet_pton(AF_INET, a->v[i].value,
			    addr) == 1);
			break;
		case RES_T_AAAA:
			FUZZ_CHECK(inet_pton(AF_INET6, a->v[i].value,
			    addr) == 1);
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_answer	 ans, copy;
	char			 norm[DNS_NAME_MAX + 1], norm2[DNS_NAME_MAX + 1];
	char			*text;
	const uint8_t		*wire;
	size_t			 len, i;
	uint16_t		 id;
	int			 qtype, flags, r;
	const char		*name;

	if (size < 3)
		return 0;
	name = names[(data[0] & 0x0f) % (sizeof(names) / sizeof(names[0]))];
	qtype = types[(data[0] >> 4) % 3];
	wire = data + 1;
	len = size - 1;
	id = (uint16_t)(wire[0] << 8 | wire[1]);
	r = dns_answer_parse(wire, len, id, name, qtype, &ans, &flags);
	FUZZ_CHECK(r == 0 || r == -1);
	if (r == 0) {
		check_answer(&ans, qtype, flags);
		dns_answer_copy(&copy, &ans);
		FUZZ_CHECK(copy.n == ans.n && copy.status == ans.status);
		dns_answer_clear(&copy);
	} else
		FUZZ_CHECK(ans.n == 0 && ans.v == NULL);
	dns_answer_clear(&ans);

	/* The same bytes as a host name. */
	text = xstrndup((const char *)wire, len);
	if (dns_name_normalize(text, norm, sizeof(norm)) == 0) {
		FUZZ_CHECK(strlen(norm) <= DNS_NAME_MAX);
		for (i = 0; norm[i] != '\0'; i++)
			FUZZ_CHECK(norm[i] == tolower((unsigned char)text[i]));
		FUZZ_CHECK(dns_name_normalize(norm, norm2,
		    sizeof(norm2)) == 0 && strcmp(norm, norm2) == 0);
	}
	free(text);
	return 0;
}
