/*
 * sasl: base64, PLAIN and credential checks for the AUTH server (see
 * sasl.h).  No allocation: callers own every buffer, and those holding
 * secrets are theirs to wipe.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "sasl.h"

/* The value of a base64 character, -1 for anything else. */
static int
sasl_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
sasl_b64_decode(const char *in, size_t inlen, unsigned char *out,
    size_t outcap, size_t *outlen)
{
	size_t		 i, j, o = 0, pad;
	unsigned long	 acc;
	int		 v;

	*outlen = 0;
	if (inlen % 4 != 0 || outcap < SASL_B64_DECODED(inlen) + 1)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		acc = 0;
		pad = 0;
		for (j = 0; j < 4; j++) {
			if (in[i + j] == '=' && i + 4 == inlen && j >= 2) {
				pad++;
				acc <<= 6;
				continue;
			}
			/* Data after padding, or a bad character. */
			if (pad > 0 ||
			    (v = sasl_b64_value((unsigned char)in[i + j])) < 0)
				return -1;
			acc = (acc << 6) | (unsigned long)v;
		}
		/* Canonical form only: the bits under the padding are 0. */
		if ((pad == 1 && (acc & 0xff)) || (pad == 2 && (acc & 0xffff)))
			return -1;
		out[o++] = (unsigned char)(acc >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(acc >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)acc;
	}
	out[o] = '\0';
	*outlen = o;
	return 0;
}

int
sasl_plain_split(char *buf, size_t len, const char **authcid,
    const char **passwd)
{
	char	*n1, *n2;

	if ((n1 = memchr(buf, '\0', len)) == NULL)
		return -1;
	n2 = memchr(n1 + 1, '\0', len - (size_t)(n1 + 1 - buf));
	if (n2 == NULL || memchr(n2 + 1, '\0', len - (size_t)(n2 + 1 - buf))
	    != NULL)
		return -1;
	*authcid = n1 + 1;
	*passwd = n2 + 1;
	if (**authcid == '\0' || **passwd == '\0')
		return -1;
	/* Acting for someone else is not something we offer. */
	if (*buf != '\0' && strcmp(buf, *authcid) != 0)
		return -1;
	return 0;
}

void
sasl_digest(const void *p, size_t len, unsigned char out[SASL_DIGEST_LEN])
{
	unsigned int	n = SASL_DIGEST_LEN;

	if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != SASL_DIGEST_LEN)
		fatalx("sasl_digest: SHA-256 failed");
}

int
sasl_check(const unsigned char user_digest[SASL_DIGEST_LEN],
    const unsigned char pass_digest[SASL_DIGEST_LEN], const char *user,
    const char *pass)
{
	unsigned char	u[SASL_DIGEST_LEN], p[SASL_DIGEST_LEN];
	int		diff;

	sasl_digest(user, strlen(user), u);
	sasl_digest(pass, strlen(pass), p);
	/* Both compared always: no early exit on a wrong user name. */
	diff = CRYPTO_memcmp(u, user_digest, SASL_DIGEST_LEN) |
	    CRYPTO_memcmp(p, pass_digest, SASL_DIGEST_LEN);
	OPENSSL_cleanse(p, sizeof(p));
	return diff == 0;
}
