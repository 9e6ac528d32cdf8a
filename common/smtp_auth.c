/*
 * SMTP AUTH client helpers: base64, the PLAIN and LOGIN payloads, the
 * choice of mechanism, and the loopback test that decides whether
 * credentials may travel without TLS.  See smtp_auth.h.
 */
#include <sys/socket.h>

#include <netinet/in.h>

#include <string.h>

#include "smtp_auth.h"
#include "xmalloc.h"

char *
smtp_auth_b64(const void *in, size_t len, char *out, size_t outlen)
{
	static const char	 tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char	*p = in;
	unsigned		 v;
	size_t			 i, o = 0;

	if (outlen < SMTP_AUTH_B64LEN(len)) {
		if (outlen > 0)
			out[0] = '\0';
		return out;
	}
	for (i = 0; i + 2 < len; i += 3) {
		v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = tab[v >> 6 & 63];
		out[o++] = tab[v & 63];
	}
	if (i < len) {
		v = (unsigned)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < len ? tab[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd, with an empty authzid. */
char *
smtp_auth_plain(const char *user, const char *pass)
{
	size_t	 ul = strlen(user), pl = strlen(pass), n = ul + pl + 2;
	char	*raw, *out;

	raw = xmalloc(n);
	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[ul + 1] = '\0';
	memcpy(raw + ul + 2, pass, pl);
	out = xmalloc(SMTP_AUTH_B64LEN(n));
	smtp_auth_b64(raw, n, out, SMTP_AUTH_B64LEN(n));
	xfreezero(raw, n);
	return out;
}

char *
smtp_auth_login(const char *s)
{
	size_t	 n = strlen(s);
	char	*out;

	out = xmalloc(SMTP_AUTH_B64LEN(n));
	return smtp_auth_b64(s, n, out, SMTP_AUTH_B64LEN(n));
}

/* PLAIN is one round trip; LOGIN, undocumented but common, is three. */
int
smtp_auth_choose(unsigned offered)
{
	if (offered & SMTP_AUTH_PLAIN)
		return SMTP_AUTH_PLAIN;
	if (offered & SMTP_AUTH_LOGIN)
		return SMTP_AUTH_LOGIN;
	return 0;
}

const char *
smtp_auth_name(int mech)
{
	switch (mech) {
	case SMTP_AUTH_PLAIN:
		return "PLAIN";
	case SMTP_AUTH_LOGIN:
		return "LOGIN";
	}
	return "none";
}

int
smtp_auth_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	const unsigned char		*a;

	if (sa->sa_family == AF_INET) {
		sin = (const struct sockaddr_in *)(const void *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	sin6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
		return 1;
	a = sin6->sin6_addr.s6_addr;
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && a[12] == 127;
}
