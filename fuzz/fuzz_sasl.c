/*
 * Fuzz target: smtpd's AUTH input (common/sasl.h): the base64 a client
 * sends and the PLAIN response inside it.
 *
 * Properties: decoding never writes past its buffer, accepts only
 * canonical base64 (what is accepted encodes back to the same text with
 * smtp_auth_b64), and the PLAIN split gives two non-empty strings inside
 * the decoded buffer.  The credential check runs on whatever was split.
 */
#include <string.h>

#include "fuzz.h"
#include "sasl.h"
#include "smtp_auth.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char	 ud[SASL_DIGEST_LEN], pd[SASL_DIGEST_LEN];
	static int		 inited;
	unsigned char		*out;
	char			*enc;
	const char		*user, *pass;
	size_t			 cap, outlen;

	if (size > 16384)
		return 0;
	if (!inited) {
		sasl_digest("user", 4, ud);
		sasl_digest("secret", 6, pd);
		inited = 1;
	}
	cap = SASL_B64_DECODED(size) + 1;
	out = malloc(cap);
	if (sasl_b64_decode((const char *)data, size, out, cap, &outlen) == 0) {
		FUZZ_CHECK(outlen < cap && out[outlen] == '\0');
		enc = malloc(SMTP_AUTH_B64LEN(outlen));
		smtp_auth_b64(out, outlen, enc, SMTP_AUTH_B64LEN(outlen));
		FUZZ_CHECK(strlen(enc) == size &&
		    memcmp(enc, data, size) == 0);
		free(enc);
		if (sasl_plain_split((char *)out, outlen, &user, &pass) == 0) {
			FUZZ_CHECK(user > (char *)out && pass > user &&
			    pass < (char *)out + outlen);
			FUZZ_CHECK(*user != '\0' && *pass != '\0');
			(void)sasl_check(ud, pd, user, pass);
		}
	}
	/* A buffer one short must be refused, never overrun. */
	if (cap > 1 && sasl_b64_decode((const char *)data, size, out, cap - 1,
	    &outlen) == 0)
		FUZZ_CHECK(0);
	free(out);
	return 0;
}
