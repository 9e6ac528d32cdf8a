/*
 * tls: TLS for inbound sessions, with OpenSSL.
 *
 * The context is built once, in configure(), while smtpd is still root
 * and outside its chroot: the certificate chain and the key are read then
 * and never again (a change needs a restart).  TLS 1.2 is the minimum;
 * renegotiation is refused (a client could make us spend CPU at will).
 *
 * A session turns TLS on in two ways: on a smtp-secure-port listener
 * from the first byte, or with STARTTLS (RFC 3207).  STARTTLS answers
 * 220, drops whatever the client pipelined after the command (what
 * arrived in plaintext must never be read as if it came through TLS: the
 * CVE-2011-0411 class), flushes the 220 in S_STARTTLS, and only then
 * puts the SSL object on the socket.  The session then forgets its HELO,
 * transaction and AUTH: the client starts again with EHLO.
 *
 * The handshake is not a state of its own: SSL_read and SSL_write drive
 * it, and a session simply reads and writes as always.  A non-blocking
 * SSL_read may need the socket writable, and SSL_write readable; the
 * SF_TLS_RWANTW and SF_TLS_WWANTR flags tell session.c which event to
 * wait for instead.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "xmalloc.h"
#include "smtpd.h"

static const unsigned char	tls_sid_ctx[] = "mtad-smtpd";

/* The first OpenSSL error as text (the queue is emptied). */
static const char *
tls_errstr(char *buf, size_t len)
{
	unsigned long	e, last = 0;

	while ((e = ERR_get_error()) != 0)
		if (last == 0)
			last = e;
	if (last == 0)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(last, buf, len);
	return buf;
}

/* Build the server context from the configured files. */
int
tls_init(const char *cert, const char *key, const char *ciphers,
    char **cause)
{
	SSL_CTX	*ctx;
	char	 err[256];

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Idle sessions keep no 34 KB of record buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (!SSL_CTX_set_session_id_context(ctx, tls_sid_ctx,
	    sizeof(tls_sid_ctx) - 1))
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		xasprintf(cause, "smtp-certificate %s: %s", cert,
		    tls_errstr(err, sizeof(err)));
		SSL_CTX_free(ctx);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		xasprintf(cause, "smtp-key %s: %s", key,
		    tls_errstr(err, sizeof(err)));
		SSL_CTX_free(ctx);
		return -1;
	}
	if (ciphers != NULL && *ciphers != '\0' &&
	    SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		xasprintf(cause, "smtp-ciphers \"%s\": %s", ciphers,
		    tls_errstr(err, sizeof(err)));
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_free(smtpd_env.tls);
	smtpd_env.tls = ctx;
	return 0;
fail:
	xasprintf(cause, "TLS context: %s", tls_errstr(err, sizeof(err)));
	SSL_CTX_free(ctx);
	return -1;
}

/* Make the session's SSL object (not used yet); -1, logged, on failure. */
static int
tls_new(struct session *s)
{
	char	err[256];

	if (s->ssl != NULL)
		return 0;
	if ((s->ssl = SSL_new(smtpd_env.tls)) == NULL ||
	    SSL_set_fd(s->ssl, s->fd) != 1) {
		log_warnx("unknown[%s]: cannot start TLS: %s", s->peer_ip,
		    tls_errstr(err, sizeof(err)));
		SSL_free(s->ssl);
		s->ssl = NULL;
		return -1;
	}
	SSL_set_accept_state(s->ssl);
	return 0;
}

/* STARTTLS is offered while the session is plaintext and TLS is set up. */
int
tls_offered(struct session *s)
{
	return smtpd_env.tls != NULL && !(s->flags & SF_TLS);
}

/* The STARTTLS command (RFC 3207). */
void
tls_command(struct session *s, char *arg)
{
	if (smtpd_env.tls == NULL) {
		session_reply(s, "502 5.5.1 Error: command not implemented");
		return;
	}
	if (s->flags & SF_TLS) {
		session_reply(s, "554 5.5.1 Error: TLS already active");
		return;
	}
	if (tls_new(s) == -1) {
		session_reply(s, "454 4.7.0 TLS not available due to "
		    "temporary reason");
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	/* Pipelined plaintext after STARTTLS is never executed. */
	if (s->inoff < s->inlen)
		log_info("unknown[%s]: %zu octets pipelined after STARTTLS "
		    "discarded", s->peer_ip, s->inlen - s->inoff);
	s->inoff = s->inlen = 0;
	session_enter(s, S_STARTTLS);
}

/* From now on the socket speaks TLS, as a server; -1 when it cannot. */
int
tls_start(struct session *s)
{
	int	on = 1;

	if (tls_new(s) == -1)
		return -1;
	/*
	 * OpenSSL writes each record on its own: with Nagle, a reply after
	 * the session tickets waits for the client's delayed ACK (40 ms).
	 */
	if (setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == -1)
		log_debug("unknown[%s]: TCP_NODELAY: %s", s->peer_ip,
		    strerror(errno));
	s->flags |= SF_TLS;
	s->flags &= ~(SF_TLS_UP | SF_TLS_RWANTW | SF_TLS_WWANTR);
	return 0;
}

/*
 * The 220 to STARTTLS is out: start TLS and forget everything the client
 * said before (RFC 3207 4.2).  The input buffer is emptied again: nothing
 * read while the 220 was being flushed came through TLS either.
 */
void
tls_begin(struct session *s)
{
	s->inoff = s->inlen = 0;
	s->flags &= ~(SF_DISCARD | SF_EHLO);
	session_txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	auth_reset(s);
	s->flags &= ~SF_AUTH;
	(void)tls_start(s);	/* the SSL object exists: cannot fail */
	s->last_verb = "STARTTLS";
	session_enter(s, S_COMMAND);
}

/* Send close_notify if the socket takes it now, and free. */
void
tls_free(struct session *s)
{
	if (s->ssl == NULL)
		return;
	if (s->flags & SF_TLS_UP) {
		ERR_clear_error();
		(void)SSL_shutdown(s->ssl);
	}
	SSL_free(s->ssl);
	s->ssl = NULL;
	ERR_clear_error();
}

/* Log the handshake once it is complete. */
static void
tls_check_up(struct session *s)
{
	const SSL_CIPHER	*c;
	int			 alg, bits;

	if ((s->flags & SF_TLS_UP) || !SSL_is_init_finished(s->ssl))
		return;
	s->flags |= SF_TLS_UP;
	c = SSL_get_current_cipher(s->ssl);
	bits = SSL_CIPHER_get_bits(c, &alg);
	log_info("TLS connection established from unknown[%s]: %s with "
	    "cipher %s (%d/%d bits)", s->peer_ip, SSL_get_version(s->ssl),
	    SSL_CIPHER_get_name(c), bits, alg);
}

/*
 * What an SSL_read/SSL_write result means for the caller.  cross is the
 * flag of this direction: set while it waits for the other event.
 */
static ssize_t
tls_result(struct session *s, int r, int reading)
{
	char	err[256];
	int	cross = reading ? SF_TLS_RWANTW : SF_TLS_WWANTR;

	if (r > 0) {
		s->flags &= ~cross;
		tls_check_up(s);
		return r;
	}
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (reading)
			s->flags &= ~cross;
		else
			s->flags |= cross;
		tls_check_up(s);
		return TLS_IO_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			s->flags |= cross;
		else
			s->flags &= ~cross;
		tls_check_up(s);
		return TLS_IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && (r == 0 || errno == 0))
			return 0;	/* EOF without close_notify */
		if (ERR_peek_error() == 0) {
			log_info("TLS %s error from unknown[%s]: %s",
			    (s->flags & SF_TLS_UP) ? "I/O" : "handshake",
			    s->peer_ip, strerror(errno));
			return TLS_IO_ERROR;
		}
		/* FALLTHROUGH */
	default:
		log_info("TLS %s failed from unknown[%s]: %s",
		    (s->flags & SF_TLS_UP) ? "I/O" : "handshake", s->peer_ip,
		    tls_errstr(err, sizeof(err)));
		return TLS_IO_ERROR;
	}
}

ssize_t
tls_read(struct session *s, void *buf, size_t len)
{
	ERR_clear_error();
	errno = 0;
	return tls_result(s, SSL_read(s->ssl, buf, (int)len), 1);
}

ssize_t
tls_write(struct session *s, const void *buf, size_t len)
{
	ERR_clear_error();
	errno = 0;
	return tls_result(s, SSL_write(s->ssl, buf, (int)len), 0);
}

/* Decrypted octets OpenSSL holds that the socket will not signal. */
int
tls_pending(struct session *s)
{
	return (s->flags & SF_TLS) && SSL_pending(s->ssl) > 0;
}

/* The Received: comment, e.g. " (using TLSv1.3 with cipher ...)". */
void
tls_comment(struct session *s, char *buf, size_t len)
{
	const SSL_CIPHER	*c;
	int			 alg, bits;

	buf[0] = '\0';
	if (s->ssl == NULL || !(s->flags & SF_TLS_UP) ||
	    (c = SSL_get_current_cipher(s->ssl)) == NULL)
		return;
	bits = SSL_CIPHER_get_bits(c, &alg);
	snprintf(buf, len, "(using %s with cipher %s (%d/%d bits))",
	    SSL_get_version(s->ssl), SSL_CIPHER_get_name(c), bits, alg);
}
