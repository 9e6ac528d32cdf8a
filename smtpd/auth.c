/*
 * auth: SMTP AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN, for the
 * one user of smtp-username/smtp-password.
 *
 * Who may send mail:
 *  - without smtp-username, clients inside smtp-range (the others got
 *    554 at connect);
 *  - with smtp-username, clients inside smtp-range without AUTH, and any
 *    other client once it authenticated.  MAIL before that gets 530.
 * Either way a client "may relay" (session_may_relay: x-mq-* headers are
 * honoured) when it is inside smtp-range or authenticated.
 *
 * AUTH is offered, and accepted, only over TLS or from a loopback
 * client: a password never crosses a network in clear.  A failed attempt
 * is answered 535 after SMTPD_AUTH_DELAY seconds (the S_AUTH_FAIL state:
 * a timer, not a sleep, so other sessions go on), and the
 * SMTPD_AUTH_MAX_FAIL-th failure ends the session with 421.
 *
 * Secrets: the password is kept only as a SHA-256 digest (smtpd.c) and
 * compared in constant time; the AUTH line and every response line are
 * wiped from the buffers once read, and never logged.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "log.h"
#include "sasl.h"
#include "xmalloc.h"
#include "smtpd.h"

/* session.auth_state */
#define AUTH_S_NONE		0
#define AUTH_S_PLAIN		1	/* waiting for the PLAIN response */
#define AUTH_S_LOGIN_USER	2	/* LOGIN: waiting for the user name */
#define AUTH_S_LOGIN_PASS	3	/* LOGIN: waiting for the password */

#define AUTH_DECODED_MAX	(SASL_B64_DECODED(SMTPD_AUTH_LINE_MAX) + 1)

static struct netaddr_range	auth_loopback;

/* Public addresses: if smtp-range holds one of them, it is too wide. */
static const char *const auth_world[] = {
	"1.1.1.1", "8.8.8.8", "100.0.0.1", "128.0.0.1", "200.0.0.1",
	"2001:4860::1", "2a00::1", "2c00::1",
};

/* Keep the AUTH credentials as digests; warn about an open relay. */
void
auth_configure(const struct conf *conf)
{
	struct netaddr	na;
	size_t		i;

	smtpd_env.auth = conf->smtp_username != NULL &&
	    *conf->smtp_username != '\0';
	explicit_bzero(smtpd_env.auth_user, sizeof(smtpd_env.auth_user));
	explicit_bzero(smtpd_env.auth_pass, sizeof(smtpd_env.auth_pass));
	if (smtpd_env.auth) {
		sasl_digest(conf->smtp_username, strlen(conf->smtp_username),
		    smtpd_env.auth_user);
		sasl_digest(conf->smtp_password != NULL ?
		    conf->smtp_password : "", conf->smtp_password != NULL ?
		    strlen(conf->smtp_password) : 0, smtpd_env.auth_pass);
	}
	for (i = 0; i < sizeof(auth_world) / sizeof(auth_world[0]); i++)
		if (netaddr_parse(&na, auth_world[i]) == 0 &&
		    netaddr_range_match(&smtpd_env.range, &na)) {
			log_warnx("smtp-range lets the world relay without "
			    "AUTH (it holds %s): this is an open relay",
			    auth_world[i]);
			break;
		}
}

/* 127.0.0.0/8 and ::1: the clients AUTH is offered to without TLS. */
int
auth_is_loopback(const struct netaddr *na)
{
	char	*cause;

	if (auth_loopback.n == 0 && netaddr_range_parse(&auth_loopback,
	    "127.0.0.0/8;::1/128", &cause) == -1)
		fatalx("auth_is_loopback: %s", cause);
	return netaddr_range_match(&auth_loopback, na);
}

int
auth_offered(struct session *s)
{
	return smtpd_env.auth &&
	    ((s->flags & SF_TLS) || auth_is_loopback(&s->peer));
}

/* Forget a half-done AUTH exchange (STARTTLS, cancel, free). */
void
auth_reset(struct session *s)
{
	s->auth_state = AUTH_S_NONE;
	xfreestr(s->auth_user);
	s->auth_user = NULL;
}

/* MAIL: allowed unless AUTH is required; replies 530 when it is. */
int
auth_may_mail(struct session *s)
{
	if (!smtpd_env.auth || (s->flags & (SF_RANGE | SF_AUTH)))
		return 1;
	if (!auth_offered(s))
		session_reply(s, "530 5.7.0 Must issue a STARTTLS command "
		    "first");
	else
		session_reply(s, "530 5.7.0 Authentication required");
	session_log_reject(s, "MAIL", NULL);
	return 0;
}

/* Credentials checked: 235 now, or 535 after the delay. */
static void
auth_verdict(struct session *s, const char *mech, const char *user,
    const char *pass)
{
	char	esc[1024];
	int	ok;

	ok = user != NULL && pass != NULL &&
	    sasl_check(smtpd_env.auth_user, smtpd_env.auth_pass, user, pass);
	auth_reset(s);
	if (ok) {
		s->flags |= SF_AUTH;
		log_info("unknown[%s]: sasl_method=%s, sasl_username=%s",
		    s->peer_ip, mech, log_escape(esc, sizeof(esc), user,
		    strlen(user)));
		session_reply(s, "235 2.7.0 Authentication successful");
		/* In a command, command_account() counts the 235 itself. */
		if (s->state == S_AUTH)
			command_verb_ok(s, "AUTH");
		session_enter(s, S_COMMAND);
		return;
	}
	s->auth_failures++;
	log_warnx("unknown[%s]: SASL %s authentication failed (%d of %d)",
	    s->peer_ip, mech, s->auth_failures, SMTPD_AUTH_MAX_FAIL);
	session_enter(s, S_AUTH_FAIL);
}

/* The delay of a failed AUTH is over: 535, or 421 after too many. */
void
auth_fail_done(struct session *s)
{
	if (s->auth_failures >= SMTPD_AUTH_MAX_FAIL) {
		log_info("too many AUTH failures from unknown[%s]",
		    s->peer_ip);
		session_reply(s, "421 4.7.0 %s Error: too many authentication "
		    "failures", smtpd_env.hostname);
		s->flags |= SF_ENDED;
		session_resume(s, S_CLOSING);
		return;
	}
	session_reply(s, "535 5.7.8 Error: authentication failed");
	session_resume(s, S_COMMAND);
}

/* Decode one base64 response; replies 501 and returns -1 when bad. */
static int
auth_decode(struct session *s, const char *in, size_t inlen,
    unsigned char *out, size_t *outlen)
{
	if (inlen == 1 && in[0] == '=') {
		/* An empty initial response (RFC 4954 4). */
		out[0] = '\0';
		*outlen = 0;
		return 0;
	}
	if (sasl_b64_decode(in, inlen, out, AUTH_DECODED_MAX, outlen) == -1) {
		auth_reset(s);
		session_reply(s, "501 5.5.2 Error: cannot decode response");
		session_enter(s, S_COMMAND);
		return -1;
	}
	return 0;
}

/* A PLAIN response, decoded. */
static void
auth_plain(struct session *s, char *buf, size_t len)
{
	const char	*user, *pass;

	if (sasl_plain_split(buf, len, &user, &pass) == -1)
		user = pass = NULL;
	auth_verdict(s, "PLAIN", user, pass);
}

/* A LOGIN user name, decoded: ask for the password. */
static void
auth_login_user(struct session *s, const char *buf, size_t len)
{
	xfreestr(s->auth_user);
	s->auth_user = xstrndup(buf, len);
	s->auth_state = AUTH_S_LOGIN_PASS;
	session_reply(s, "334 UGFzc3dvcmQ6");	/* "Password:" */
	session_enter(s, S_AUTH);
}

/* A decoded response, in the exchange's current step. */
static void
auth_step(struct session *s, char *buf, size_t len)
{
	char	*user;

	/* A NUL ends a C string early: only PLAIN may carry one. */
	if (s->auth_state != AUTH_S_PLAIN && memchr(buf, '\0', len) != NULL) {
		auth_verdict(s, "LOGIN", NULL, NULL);
		return;
	}
	switch (s->auth_state) {
	case AUTH_S_PLAIN:
		auth_plain(s, buf, len);
		break;
	case AUTH_S_LOGIN_USER:
		auth_login_user(s, buf, len);
		break;
	case AUTH_S_LOGIN_PASS:
		user = s->auth_user;
		s->auth_user = NULL;
		auth_verdict(s, "LOGIN", user, buf);
		xfreestr(user);
		break;
	default:
		log_panic("auth_step: state %d", s->auth_state);
	}
}

/* The AUTH command: "AUTH mechanism [initial-response]". */
void
auth_command(struct session *s, char *arg)
{
	unsigned char	 out[AUTH_DECODED_MAX];
	char		*mech = arg, *ir;
	size_t		 outlen;

	if ((ir = strchr(arg, ' ')) != NULL)
		*ir++ = '\0';
	if (!smtpd_env.auth)
		session_reply(s, "503 5.5.1 Error: authentication not enabled");
	else if (!auth_offered(s))
		session_reply(s, "538 5.7.11 Encryption required for requested "
		    "authentication mechanism");
	else if (s->flags & SF_AUTH)
		session_reply(s, "503 5.5.1 Error: already authenticated");
	else if (s->sender != NULL)
		session_reply(s, "503 5.5.1 Error: MAIL transaction in "
		    "progress");
	else if (ir != NULL && (*ir == '\0' || strchr(ir, ' ') != NULL))
		session_reply(s, "501 5.5.4 Syntax: AUTH mechanism "
		    "[initial-response]");
	else if (strcasecmp(mech, "PLAIN") == 0) {
		s->auth_state = AUTH_S_PLAIN;
		if (ir == NULL) {
			session_reply(s, "334 ");
			session_enter(s, S_AUTH);
		} else if (auth_decode(s, ir, strlen(ir), out, &outlen) == 0)
			auth_step(s, (char *)out, outlen);
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		s->auth_state = AUTH_S_LOGIN_USER;
		if (ir == NULL) {
			session_reply(s, "334 VXNlcm5hbWU6"); /* "Username:" */
			session_enter(s, S_AUTH);
		} else if (auth_decode(s, ir, strlen(ir), out, &outlen) == 0)
			auth_step(s, (char *)out, outlen);
	} else
		session_reply(s, "504 5.5.4 Unrecognized authentication type");
	explicit_bzero(out, sizeof(out));
	if (ir != NULL)
		explicit_bzero(ir, strlen(ir));
}

/*
 * S_AUTH: the next line is a response, up to SMTPD_AUTH_LINE_MAX octets,
 * not a command.  Returns 0 when a whole line is not there yet.
 */
int
auth_input(struct session *s)
{
	unsigned char	 out[AUTH_DECODED_MAX];
	char		*line = s->inbuf + s->inoff, *lf;
	size_t		 avail = s->inlen - s->inoff, len, outlen;

	lf = memchr(line, '\n', avail < SMTPD_AUTH_LINE_MAX + 2 ? avail :
	    SMTPD_AUTH_LINE_MAX + 2);
	if (lf == NULL) {
		if (avail < SMTPD_AUTH_LINE_MAX + 2)
			return 0;
		/* Too long: skip to its end like an overlong command. */
		if ((lf = memchr(line, '\n', avail)) != NULL)
			avail = (size_t)(lf - line) + 1;
		else
			s->flags |= SF_DISCARD;
		explicit_bzero(line, avail);
		s->inoff += avail;
		auth_reset(s);
		session_reply(s, "500 5.5.6 Authentication exchange line is "
		    "too long");
		session_enter(s, S_COMMAND);
		return 1;
	}
	len = (size_t)(lf - line);
	s->inoff += len + 1;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 1 && line[0] == '*') {
		auth_reset(s);
		session_reply(s, "501 5.7.0 Error: authentication aborted");
		session_enter(s, S_COMMAND);
	} else if (auth_decode(s, line, len, out, &outlen) == 0)
		auth_step(s, (char *)out, outlen);
	explicit_bzero(line, (size_t)(lf - line));
	explicit_bzero(out, sizeof(out));
	return 1;
}
