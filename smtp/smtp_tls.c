/*
 * Outbound TLS with OpenSSL, for STARTTLS (RFC 3207).
 *
 * One client context, made before the chroot (OpenSSL reads its config
 * file then): TLS 1.2 or later, the library's default ciphers, and no
 * certificate verification.  STARTTLS to an MX host is opportunistic
 * (RFC 7435): it defeats passive listening, not an active attacker, and
 * a check that cannot pass for most MX hosts' certificates would only
 * turn mail into plaintext.  The server name goes out as SNI.
 *
 * The socket stays non-blocking: every call that would block returns
 * EAGAIN and says whether the TLS layer waits to read or to write, so the
 * session arms its one event for that.  Partial writes and a moving write
 * buffer are allowed, because the session refills and compacts its output
 * buffer between writes.
 */
#include <sys/types.h>

#include <errno.h>
#include <event.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "hostport.h"
#include "log.h"
#include "smtp.h"

static SSL_CTX	*tls_ctx;

/* Make the context; fatal when OpenSSL cannot (nothing could be sent). */
void
smtp_tls_init(void)
{
	if (tls_ctx != NULL)
		return;
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
		fatalx("OpenSSL initialisation failed");
	if ((tls_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		fatalx("SSL_CTX_new failed");
	if (SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION) != 1)
		fatalx("cannot require TLS 1.2");
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/*
	 * A server that closes without close_notify is common; SMTP replies
	 * carry their own framing, so that is an EOF like any other.
	 */
	SSL_CTX_set_options(tls_ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* One session per connection: nothing to resume across workers. */
	SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
}

/* A client session on the connected socket fd. */
struct ssl_st *
smtp_tls_new(int fd, const char *sni)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len;
	SSL			*ssl;

	if ((ssl = SSL_new(tls_ctx)) == NULL)
		fatalx("SSL_new failed");
	if (SSL_set_fd(ssl, fd) != 1)
		fatalx("SSL_set_fd failed");
	/* SNI is a host name, never an address literal (RFC 6066 3). */
	if (sni != NULL && sni[0] != '\0' && strlen(sni) < 256 &&
	    hostport_ip(sni, 0, &ss, &len) == -1)
		(void)SSL_set_tlsext_host_name(ssl, sni);
	SSL_set_connect_state(ssl);
	return ssl;
}

/*
 * What the last call on ssl that returned rv means: -1 would block
 * (errno EAGAIN, *want set), 0 the peer closed, -2 an error (errno EIO,
 * the reason in err).
 */
static int
smtp_tls_error(SSL *ssl, int rv, int *want, char *err, size_t errlen)
{
	unsigned long	 e;
	int		 saved = errno;

	switch (SSL_get_error(ssl, rv)) {
	case SSL_ERROR_WANT_READ:
		*want = EV_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want = EV_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		e = ERR_get_error();
		if (e == 0)
			snprintf(err, errlen, "%s", saved != 0 && rv == -1 ?
			    strerror(saved) : "unexpected end of stream");
		else
			ERR_error_string_n(e, err, errlen);
		break;
	default:
		e = ERR_get_error();
		if (e != 0)
			ERR_error_string_n(e, err, errlen);
		else
			snprintf(err, errlen, "TLS protocol error");
		break;
	}
	ERR_clear_error();
	errno = EIO;
	return -2;
}

/* One handshake step: 1 done, 0 would block (see *want), -1 failed. */
int
smtp_tls_handshake(struct ssl_st *ssl, int *want, char *err, size_t errlen)
{
	int	 rv;

	ERR_clear_error();
	errno = 0;
	if ((rv = SSL_connect(ssl)) == 1)
		return 1;
	switch (smtp_tls_error(ssl, rv, want, err, errlen)) {
	case -1:
		return 0;
	case 0:
		snprintf(err, errlen, "connection closed during the "
		    "handshake");
		return -1;
	}
	return -1;
}

/* SSL_read as read(2): n, 0 at the end, -1 with errno (see smtp.h). */
ssize_t
smtp_tls_read(struct ssl_st *ssl, void *buf, size_t len, int *want,
    char *err, size_t errlen)
{
	int	 rv;

	ERR_clear_error();
	errno = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	if ((rv = SSL_read(ssl, buf, (int)len)) > 0)
		return rv;
	if (smtp_tls_error(ssl, rv, want, err, errlen) == 0)
		return 0;
	return -1;
}

/* SSL_write as write(2); a close by the peer is an error here. */
ssize_t
smtp_tls_write(struct ssl_st *ssl, const void *buf, size_t len, int *want,
    char *err, size_t errlen)
{
	int	 rv;

	ERR_clear_error();
	errno = 0;
	if (len > INT32_MAX)
		len = INT32_MAX;
	if ((rv = SSL_write(ssl, buf, (int)len)) > 0)
		return rv;
	if (smtp_tls_error(ssl, rv, want, err, errlen) == 0) {
		snprintf(err, errlen, "connection closed by the server");
		errno = EIO;
	}
	return -1;
}

int
smtp_tls_pending(struct ssl_st *ssl)
{
	return SSL_pending(ssl) > 0;
}

const char *
smtp_tls_info(struct ssl_st *ssl, char *buf, size_t len)
{
	const SSL_CIPHER	*c = SSL_get_current_cipher(ssl);
	int			 alg = 0, bits;

	bits = c != NULL ? SSL_CIPHER_get_bits(c, &alg) : 0;
	snprintf(buf, len, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(ssl), c != NULL ? SSL_CIPHER_get_name(c) : "none",
	    bits, alg);
	return buf;
}

void
smtp_tls_free(struct ssl_st *ssl)
{
	if (ssl == NULL)
		return;
	if (SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
	SSL_free(ssl);
}
