/*
 * sasl: the pure parts of the server side of SMTP AUTH (RFC 4954) with
 * the PLAIN (RFC 4616) and LOGIN mechanisms: strict, bounded base64
 * decoding, splitting a PLAIN response, and comparing credentials in
 * constant time.
 *
 * Credentials are compared as SHA-256 digests with CRYPTO_memcmp, so the
 * time taken tells nothing about the configured user name or password,
 * not even their length, and the process keeps only the digests.
 */
#ifndef MTAD_SASL_H
#define MTAD_SASL_H

#include <stddef.h>

#define SASL_DIGEST_LEN		32

/* Octets decoded from n base64 characters, at most. */
#define SASL_B64_DECODED(n)	(((n) / 4) * 3)

/*
 * Decode RFC 4648 base64 (padded, no whitespace) into out, then add a NUL
 * (not counted in *outlen).  -1 on bad input or when out (outcap octets,
 * NUL included) is too small.
 */
int	sasl_b64_decode(const char *in, size_t inlen, unsigned char *out,
	    size_t outcap, size_t *outlen);

/*
 * Split a decoded PLAIN response "authzid NUL authcid NUL passwd" (len
 * octets, buf[len] == NUL) in place.  The authorization identity must be
 * empty or equal to the authentication identity.  -1 when malformed.
 */
int	sasl_plain_split(char *buf, size_t len, const char **authcid,
	    const char **passwd);

/* SHA-256 of len octets. */
void	sasl_digest(const void *, size_t, unsigned char out[SASL_DIGEST_LEN]);

/* Do user and pass match the digests?  Constant time; 1 when they do. */
int	sasl_check(const unsigned char user_digest[SASL_DIGEST_LEN],
	    const unsigned char pass_digest[SASL_DIGEST_LEN],
	    const char *user, const char *pass);

#endif
