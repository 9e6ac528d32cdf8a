/*
 * command: the SMTP verb table and its handlers (RFC 5321 section 4.1).
 *
 * Each verb declares what it needs (an argument or none, a HELO, a MAIL,
 * a RCPT); command_line() checks that before the handler runs, so
 * handlers only do their own job and every out-of-order command gets the
 * same 503.  Every reply carries an enhanced status code (RFC 3463).
 * Errors (5xx) are counted: after SMTPD_MAX_ERRORS the client is
 * dropped with 421, as a misbehaving client would otherwise keep a
 * session slot for ever.
 */
#include <sys/types.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "xmalloc.h"
#include "smtpd.h"

/* A hard cap keeps a MSG_QMGR_COMMIT within MSG_MAX_PAYLOAD. */
#define COMMAND_RCPT_HARD_MAX	10000

struct command {
	const char	*verb;
	int		 flags;
#define CMD_F_ARG	0x01	/* an argument is required */
#define CMD_F_NOARG	0x02	/* no argument is allowed */
#define CMD_F_HELO	0x04	/* HELO/EHLO must come first */
#define CMD_F_MAIL	0x08	/* inside a transaction (after MAIL) */
#define CMD_F_RCPT	0x10	/* after an accepted RCPT */
	void		(*handler)(struct session *, char *);
};

static void	command_helo(struct session *, char *);
static void	command_ehlo(struct session *, char *);
static void	command_mail(struct session *, char *);
static void	command_rcpt(struct session *, char *);
static void	command_data(struct session *, char *);
static void	command_rset(struct session *, char *);
static void	command_noop(struct session *, char *);
static void	command_quit(struct session *, char *);
static void	command_vrfy(struct session *, char *);
static void	command_expn(struct session *, char *);
static void	command_help(struct session *, char *);

static const struct command commands[] = {
	{ "HELO",	CMD_F_ARG,			command_helo },
	{ "EHLO",	CMD_F_ARG,			command_ehlo },
	{ "MAIL",	CMD_F_ARG | CMD_F_HELO,		command_mail },
	{ "RCPT",	CMD_F_ARG | CMD_F_MAIL,		command_rcpt },
	{ "DATA",	CMD_F_NOARG | CMD_F_RCPT,	command_data },
	{ "RSET",	CMD_F_NOARG,			command_rset },
	{ "NOOP",	0,				command_noop },
	{ "QUIT",	CMD_F_NOARG,			command_quit },
	{ "VRFY",	CMD_F_ARG,			command_vrfy },
	{ "EXPN",	0,				command_expn },
	{ "HELP",	0,				command_help },
	{ "STARTTLS",	CMD_F_NOARG,			tls_command },
	{ "AUTH",	CMD_F_ARG | CMD_F_HELO,		auth_command },
};
#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

_Static_assert(NCOMMANDS <= SMTPD_NVERBS, "raise SMTPD_NVERBS");

static void
command_helo(struct session *s, char *arg)
{
	session_txn_reset(s);
	free(s->helo);
	s->helo = xstrdup(arg);
	s->flags &= ~SF_EHLO;
	session_reply(s, "250 %s", smtpd_env.hostname);
}

static void
command_ehlo(struct session *s, char *arg)
{
	session_txn_reset(s);
	free(s->helo);
	s->helo = xstrdup(arg);
	s->flags |= SF_EHLO;
	session_reply(s, "250-%s", smtpd_env.hostname);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %llu",
	    (unsigned long long)smtpd_env.maxsize);
	session_reply(s, "250-8BITMIME");
	if (tls_offered(s))
		session_reply(s, "250-STARTTLS");
	if (auth_offered(s))
		session_reply(s, "250-AUTH PLAIN LOGIN");
	session_reply(s, "250-DSN");
	session_reply(s, "250-SMTPUTF8");
	session_reply(s, "250 ENHANCEDSTATUSCODES");
}

/*
 * An address with 8-bit octets needs SMTPUTF8 (RFC 6531 3.4) and must be
 * UTF-8; -1 after the reply when it is refused.
 */
static int
command_8bit(struct session *s, const char *addr, int smtputf8,
    const char *who)
{
	if (!smtp_has_8bit(addr))
		return 0;
	if (!smtputf8)
		session_reply(s, "553 5.6.7 Non-ASCII %s address requires "
		    "SMTPUTF8", who);
	else if (!smtp_utf8_valid(addr, strlen(addr)))
		session_reply(s, "553 5.6.7 The %s address is not valid "
		    "UTF-8", who);
	else
		return 0;
	return -1;
}

static void
command_mail(struct session *s, char *arg)
{
	struct smtp_mail_params	 mp;
	char			 addr[SMTP_ADDR_MAX + 1], esc[1024];
	const char		*params, *reply;

	if (s->sender != NULL) {
		session_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	if (!auth_may_mail(s))
		return;		/* 530: AUTH first (auth.c) */
	switch (smtp_parse_path(arg, "FROM", addr, sizeof(addr), &params)) {
	case SMTP_PATH_ESYNTAX:
		session_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		return;
	case SMTP_PATH_EADDR:
		session_reply(s, "501 5.1.7 Bad sender address syntax");
		session_log_reject(s, "MAIL", NULL);
		return;
	}
	if (smtp_parse_mail_params(params, &mp, &reply) != 0) {
		session_reply(s, "%s", reply);
		return;
	}
	if (command_8bit(s, addr, mp.smtputf8, "sender") == -1) {
		session_log_reject(s, "MAIL", NULL);
		return;
	}
	if (smtpd_env.maxsize > 0 && mp.size > smtpd_env.maxsize) {
		session_reply(s, "552 5.3.4 Message size exceeds fixed limit");
		log_info("NOQUEUE: reject: MAIL from unknown[%s]: %s; "
		    "from=<%s> size=%llu", s->peer_ip, s->last_reply,
		    log_escape(esc, sizeof(esc), addr, strlen(addr)),
		    (unsigned long long)mp.size);
		return;
	}
	txn_set_sender(s, addr, &mp);
	session_reply(s, "250 2.1.0 Ok");
}

static void
command_rcpt(struct session *s, char *arg)
{
	struct smtp_rcpt_params	 rp;
	char			 addr[SMTP_ADDR_MAX + 1];
	const char		*params, *reply;
	size_t			 max;

	switch (smtp_parse_path(arg, "TO", addr, sizeof(addr), &params)) {
	case SMTP_PATH_ESYNTAX:
		session_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	case SMTP_PATH_EADDR:
		session_reply(s, "501 5.1.3 Bad recipient address syntax");
		session_log_reject(s, "RCPT", NULL);
		return;
	}
	if (*addr == '\0') {
		session_reply(s, "501 5.1.3 Bad recipient address syntax");
		session_log_reject(s, "RCPT", "");
		return;
	}
	if (smtp_parse_rcpt_params(params, &rp, &reply) != 0) {
		session_reply(s, "%s", reply);
		return;
	}
	if (command_8bit(s, addr, s->smtputf8, "recipient") == -1) {
		session_log_reject(s, "RCPT", addr);
		return;
	}
	max = smtpd_env.max_recipients;
	if (max == 0 || max > COMMAND_RCPT_HARD_MAX)
		max = COMMAND_RCPT_HARD_MAX;
	if (s->nrcpt >= max || txn_add_rcpt(s, addr, &rp) == -1) {
		session_reply(s, "452 4.5.3 Error: too many recipients");
		session_log_reject(s, "RCPT", addr);
		return;
	}
	session_reply(s, "250 2.1.5 Ok");
}

static void
command_data(struct session *s, char *arg)
{
	data_start(s);
}

static void
command_rset(struct session *s, char *arg)
{
	session_txn_reset(s);
	session_reply(s, "250 2.0.0 Ok");
}

static void
command_noop(struct session *s, char *arg)
{
	session_reply(s, "250 2.0.0 Ok");
}

static void
command_quit(struct session *s, char *arg)
{
	s->flags |= SF_ENDED;
	session_reply(s, "221 2.0.0 Bye");
	session_close(s);
}

static void
command_vrfy(struct session *s, char *arg)
{
	session_reply(s, "252 2.0.0 Cannot VRFY user, but will accept "
	    "message and attempt delivery");
}

static void
command_expn(struct session *s, char *arg)
{
	session_reply(s, "502 5.5.1 Error: command not implemented");
}

static void
command_help(struct session *s, char *arg)
{
	session_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
	    "NOOP QUIT VRFY HELP%s%s", tls_offered(s) ? " STARTTLS" : "",
	    auth_offered(s) ? " AUTH" : "");
}

/* Does the session's state allow this verb?  Replies 501/503 if not. */
static int
command_allowed(struct session *s, const struct command *cmd,
    const char *arg)
{
	if ((cmd->flags & CMD_F_ARG) && *arg == '\0')
		session_reply(s, "501 5.5.4 Syntax: %s requires an argument",
		    cmd->verb);
	else if ((cmd->flags & CMD_F_NOARG) && *arg != '\0')
		session_reply(s, "501 5.5.4 Syntax: %s takes no argument",
		    cmd->verb);
	else if ((cmd->flags & CMD_F_HELO) && s->helo == NULL)
		session_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
	else if ((cmd->flags & (CMD_F_MAIL | CMD_F_RCPT)) && s->sender == NULL)
		session_reply(s, "503 5.5.1 Error: need MAIL command");
	else if ((cmd->flags & CMD_F_RCPT) && s->nrcpt == 0)
		session_reply(s, "503 5.5.1 Error: need RCPT command");
	else
		return 1;
	return 0;
}

/* Count the command for the disconnect line, and the client's errors. */
static void
command_account(struct session *s, int idx)
{
	unsigned	*st = s->stats[idx < 0 ? SMTPD_NVERBS : idx];

	st[1]++;
	/*
	 * No reply yet (DATA waits for qmgr, a failed AUTH for its delay),
	 * or 334 (AUTH goes on): command_verb_ok() decides later.
	 */
	if (s->last_code != 0 && s->last_code < 300)
		st[0]++;
	if (s->last_code >= 500 && ++s->errors >= SMTPD_MAX_ERRORS) {
		log_info("too many errors after %s from unknown[%s]",
		    s->last_verb, s->peer_ip);
		s->flags |= SF_ENDED;
		session_reply(s, "421 4.7.0 %s Error: too many errors",
		    smtpd_env.hostname);
		session_close(s);
	}
}

/*
 * Is this unknown verb another protocol talking to our port: an HTTP
 * request line (a proxy abused to reach us, a browser form) or a header
 * line ("Host: ...")?  Postfix's smtpd_forbidden_commands: disconnect.
 */
static int
command_forbidden(const char *verb)
{
	static const char *const http[] = { "GET", "POST", "CONNECT", "HEAD",
	    "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH" };
	size_t	i, len = strlen(verb);

	if (len > 1 && verb[len - 1] == ':')
		return 1;
	for (i = 0; i < sizeof(http) / sizeof(http[0]); i++)
		if (strcasecmp(verb, http[i]) == 0)
			return 1;
	return 0;
}

/* Split off the verb, look it up; -1 when unknown. */
static int
command_find(char *buf, char **arg)
{
	char	*p, *end;
	size_t	 i;

	end = buf + strlen(buf);
	while (end > buf && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if ((p = strchr(buf, ' ')) != NULL) {
		*p++ = '\0';
		while (*p == ' ')
			p++;
	} else
		p = buf + strlen(buf);
	*arg = p;
	for (i = 0; i < NCOMMANDS; i++)
		if (strcasecmp(buf, commands[i].verb) == 0)
			return (int)i;
	return -1;
}

/*
 * Run one command line (without CRLF).  line == NULL: the line was over
 * SMTP_LINE_MAX and has been discarded.
 */
void
command_line(struct session *s, const char *line, size_t len)
{
	char	 buf[SMTP_LINE_MAX + 1], esc[SMTP_LINE_MAX * 4 + 1], *arg;
	int	 idx = -1, secret = 0;

	s->last_code = 0;
	if (line == NULL)
		session_reply(s, "500 5.5.2 Error: line too long");
	else if (smtp_line_check(line, len) == -1)
		session_reply(s, "500 5.5.2 Error: invalid character in "
		    "command");
	else {
		memcpy(buf, line, len);
		buf[len] = '\0';
		idx = command_find(buf, &arg);
		/*
		 * AUTH carries credentials, whatever blank follows it (a tab
		 * makes it an unknown command, still with credentials).
		 */
		secret = len >= 4 && strncasecmp(line, "AUTH", 4) == 0 &&
		    (len == 4 || line[4] == ' ' || line[4] == '\t');
		if (log_getlevel() >= LOG_LEVEL_DEBUG)
			log_debug("< %s: %s", s->peer_ip, secret ? "AUTH ..." :
			    log_escape(esc, sizeof(esc), line, len));
		if (idx == -1 && command_forbidden(buf)) {
			log_warnx("non-SMTP command from unknown[%s]: %s",
			    s->peer_ip, log_escape(esc, sizeof(esc), line,
			    len));
			s->flags |= SF_ENDED;
			session_reply(s, "221 2.7.0 Error: I can break rules, "
			    "too. Goodbye.");
			session_close(s);
		} else if (idx == -1)
			session_reply(s, "500 5.5.2 Error: command not "
			    "recognized");
		else {
			s->last_verb = commands[idx].verb;
			if (command_allowed(s, &commands[idx], arg))
				commands[idx].handler(s, arg);
		}
		if (secret) {
			/* The line in the input buffer is ours to wipe. */
			explicit_bzero(buf, sizeof(buf));
			explicit_bzero((char *)line, len);
		}
	}
	command_account(s, idx);
}

/* The message of a DATA was accepted: count that DATA as a success. */
void
command_data_ok(struct session *s)
{
	size_t	i;

	for (i = 0; i < NCOMMANDS; i++)
		if (commands[i].handler == command_data)
			s->stats[i][0]++;
}

/* A command answered later (AUTH) succeeded: count it as such. */
void
command_verb_ok(struct session *s, const char *verb)
{
	size_t	i;

	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].verb, verb) == 0)
			s->stats[i][0]++;
}

/* The lower-case name of stats slot i, as the disconnect line shows it. */
static const char *
command_stat_name(size_t i, char *buf, size_t len)
{
	size_t	j;

	if (i >= NCOMMANDS)
		return "unknown";
	for (j = 0; commands[i].verb[j] != '\0' && j < len - 1; j++)
		buf[j] = (char)tolower((unsigned char)commands[i].verb[j]);
	buf[j] = '\0';
	return buf;
}

/* " ehlo=1 mail=1 rcpt=1/2 ... commands=5", as Postfix logs it. */
void
command_stats(struct session *s, char *buf, size_t len)
{
	unsigned	 ok = 0, total = 0, *st;
	size_t		 i, off = 0;
	char		 name[16];
	int		 n;

	buf[0] = '\0';
	for (i = 0; i <= NCOMMANDS && off < len; i++) {
		st = s->stats[i == NCOMMANDS ? SMTPD_NVERBS : i];
		if (st[1] == 0)
			continue;
		if (st[0] == st[1])
			n = snprintf(buf + off, len - off, " %s=%u",
			    command_stat_name(i, name, sizeof(name)), st[1]);
		else
			n = snprintf(buf + off, len - off, " %s=%u/%u",
			    command_stat_name(i, name, sizeof(name)), st[0],
			    st[1]);
		off += n > 0 ? (size_t)n : 0;
		ok += st[0];
		total += st[1];
	}
	if (off < len && total > 0) {
		if (ok == total)
			snprintf(buf + off, len - off, " commands=%u", total);
		else
			snprintf(buf + off, len - off, " commands=%u/%u", ok,
			    total);
	}
}
