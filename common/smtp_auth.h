/*
 * The client side of SMTP AUTH (RFC 4954) as far as it is pure logic:
 * which mechanism to use from what the server offers, the base64 text of
 * the PLAIN initial response (RFC 4616) and of the LOGIN prompts' answers,
 * and whether credentials may go to an address without TLS (loopback
 * only).  Kept out of the session code so that it is unit tested.
 *
 * Every string returned holds a secret: free it with xfreestr().
 */
#ifndef MTAD_SMTP_AUTH_H
#define MTAD_SMTP_AUTH_H

#include <stddef.h>

struct sockaddr;

/* Mechanisms we speak; bits of smtp_caps.auth. */
#define SMTP_AUTH_PLAIN		0x1
#define SMTP_AUTH_LOGIN		0x2

/* Longest user name and password we send (after RFC 4954's 12288). */
#define SMTP_AUTH_CRED_MAX	1024

/* Octets of the base64 text of n octets, with its NUL. */
#define SMTP_AUTH_B64LEN(n)	((((n) + 2) / 3) * 4 + 1)

/* Base64 (RFC 4648, padded) of len octets into out; returns out. */
char		*smtp_auth_b64(const void *in, size_t len, char *out,
		    size_t outlen);
/* The PLAIN initial response: base64 of NUL user NUL pass; allocated. */
char		*smtp_auth_plain(const char *user, const char *pass);
/* base64 of a string (a LOGIN answer); allocated. */
char		*smtp_auth_login(const char *s);
/* PLAIN if offered, else LOGIN if offered, else 0. */
int		 smtp_auth_choose(unsigned offered);
const char	*smtp_auth_name(int mech);
/* Non-zero for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
int		 smtp_auth_loopback(const struct sockaddr *);

#endif
