/*
 * Fuzz target: the SMTP server's command side (common/smtp_parse.h) as a
 * client's byte stream drives it: line framing with the 512-octet limit,
 * the NUL/CR/LF check, then MAIL FROM / RCPT TO paths and their ESMTP
 * parameters on every line, whatever its verb.
 *
 * Properties: the framer never uses more than it was given and always
 * makes progress when it returns something; a line is shorter than the
 * limit; an address fits SMTP_ADDR_MAX, holds no NUL/CR/LF and no '<' or
 * '>' outside quotes; params points into the argument; a parameter error
 * comes with its reply line, whose code is the one returned.
 */
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "smtp_parse.h"

/* Decoded xtext values must be printable ASCII (smtp_parse.h). */
static void
check_printable(const char *s)
{
	for (; *s != '\0'; s++)
		FUZZ_CHECK(*s >= 0x20 && *s < 0x7f);
}

/* The verb's argument checks smtpd runs, on one command line. */
static void
fuzz_command(const char *line, size_t len)
{
	char				 addr[SMTP_ADDR_MAX + 2];
	char				 xt[SMTP_LINE_MAX];
	struct smtp_mail_params		 mp;
	struct smtp_rcpt_params		 rp;
	const char			*params, *reply, *arg;
	int				 r, code;

	arg = len > 5 ? line + 5 : line;
	r = smtp_parse_path(arg, "FROM", addr, sizeof(addr), &params);
	FUZZ_CHECK(r == SMTP_PATH_OK || r == SMTP_PATH_ESYNTAX ||
	    r == SMTP_PATH_EADDR);
	FUZZ_CHECK(strlen(addr) <= SMTP_ADDR_MAX);
	FUZZ_CHECK(params == arg + strlen(arg) - strlen(params) ||
	    params[0] == '\0');
	if (r == SMTP_PATH_OK) {
		FUZZ_CHECK(strpbrk(addr, "\r\n") == NULL);
		reply = NULL;
		code = smtp_parse_mail_params(params, &mp, &reply);
		FUZZ_CHECK(code == 0 || code == 501 || code == 555);
		if (code != 0)
			FUZZ_CHECK(reply != NULL &&
			    (reply[0] - '0') * 100 + (reply[1] - '0') * 10 +
			    (reply[2] - '0') == code);
		else {
			FUZZ_CHECK(mp.body >= SMTP_BODY_UNSET &&
			    mp.body <= SMTP_BODY_8BITMIME);
			FUZZ_CHECK(strlen(mp.envid) <= DSN_ENVID_MAX);
			check_printable(mp.envid);
		}
	}
	r = smtp_parse_path(arg, "TO", addr, sizeof(addr), &params);
	FUZZ_CHECK(strlen(addr) <= SMTP_ADDR_MAX);
	if (r == SMTP_PATH_OK) {
		reply = NULL;
		code = smtp_parse_rcpt_params(params, &rp, &reply);
		FUZZ_CHECK(code == 0 || code == 501 || code == 555);
		FUZZ_CHECK(code == 0 || reply != NULL);
		if (code == 0) {
			FUZZ_CHECK(strlen(rp.orcpt) <= DSN_ORCPT_MAX);
			check_printable(rp.orcpt);
		}
	}
	if (r == SMTP_PATH_OK && addr[0] != '\0')
		(void)smtp_valid_address(addr);
	(void)smtp_has_8bit(line);
	(void)smtp_utf8_valid(line, len);
	if (smtp_xtext_decode(arg, xt, sizeof(xt)) == 0)
		FUZZ_CHECK(strlen(xt) <= strlen(arg));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 line[SMTP_LINE_MAX + 1];
	const char	*buf = (const char *)data;
	size_t		 off = 0, linelen, used, chunk, avail;
	int		 discard = 0, r, longs = 0;

	/* The first byte picks how much of the stream "arrived" at once. */
	if (size == 0)
		return 0;
	chunk = (size_t)data[0] * 8 + 1;
	buf++;
	size--;
	avail = chunk < size ? chunk : size;
	while (off < size) {
		r = smtp_line_next(&discard, buf + off, avail - off, &linelen,
		    &used);
		FUZZ_CHECK(used <= avail - off);
		switch (r) {
		case SMTP_LINE_OK:
			FUZZ_CHECK(used > 0 && linelen < used);
			FUZZ_CHECK(linelen <= SMTP_LINE_MAX - 1);
			FUZZ_CHECK(buf[off + used - 1] == '\n');
			memcpy(line, buf + off, linelen);
			line[linelen] = '\0';
			if (smtp_line_check(buf + off, linelen) == 0) {
				FUZZ_CHECK(strlen(line) == linelen);
				fuzz_command(line, linelen);
			} else
				FUZZ_CHECK(memchr(buf + off, '\0', linelen) ||
				    memchr(buf + off, '\r', linelen) ||
				    memchr(buf + off, '\n', linelen));
			break;
		case SMTP_LINE_LONG:
			FUZZ_CHECK(used >= SMTP_LINE_MAX);
			longs++;
			break;
		case SMTP_LINE_MORE:
			break;
		default:
			FUZZ_CHECK(0);
		}
		off += used;
		if (used == 0) {
			/* Needs more input: the next chunk arrives. */
			if (avail == size)
				break;
			avail = avail + chunk < size ? avail + chunk : size;
		}
	}
	FUZZ_CHECK(longs <= (int)(size / SMTP_LINE_MAX) + 1);
	return 0;
}
