/*
 * smtp_parse: command line framing, MAIL/RCPT parsing and DATA framing for
 * the SMTP server.  Pure functions over caller buffers; see smtp_parse.h
 * for the rules and why only CRLF.CRLF may end DATA.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dsn.h"
#include "smtp_parse.h"

/* DATA framer states. */
#define D_BOL		0	/* at the start of a line */
#define D_TEXT		1	/* inside a line */
#define D_CR		2	/* CR seen inside a line */
#define D_DOT		3	/* "." at the start of a line */
#define D_DOTCR		4	/* ".<CR>" at the start of a line */

int
smtp_line_next(int *discard, const char *buf, size_t len, size_t *linelen,
    size_t *used)
{
	const char	*lf;
	size_t		 n, i;

	*linelen = 0;
	*used = 0;
	if (*discard) {
		/* Skipping the tail of an overlong line up to its LF. */
		if ((lf = memchr(buf, '\n', len)) == NULL)
			*used = len;
		else {
			*used = (size_t)(lf - buf) + 1;
			*discard = 0;
		}
		return SMTP_LINE_MORE;
	}
	n = len < SMTP_LINE_MAX ? len : SMTP_LINE_MAX;
	if ((lf = memchr(buf, '\n', n)) == NULL) {
		if (len < SMTP_LINE_MAX)
			return SMTP_LINE_MORE;
		/* Too long: drop it through its LF, or all and keep going. */
		if ((lf = memchr(buf, '\n', len)) == NULL) {
			*used = len;
			*discard = 1;
		} else
			*used = (size_t)(lf - buf) + 1;
		return SMTP_LINE_LONG;
	}
	i = (size_t)(lf - buf);
	*used = i + 1;
	*linelen = (i > 0 && buf[i - 1] == '\r') ? i - 1 : i;
	return SMTP_LINE_OK;
}

int
smtp_line_check(const char *line, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return -1;
	return 0;
}

/* RFC 5322 atext, plus 8-bit octets: Postfix-like leniency on input. */
static int
smtp_atext(unsigned char c)
{
	if (isalnum(c) || c >= 0x80)
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* The domain of a mailbox: dot-separated labels or an address literal. */
static int
smtp_valid_domain(const char *d)
{
	size_t	len = strlen(d);

	if (len == 0 || len > 255)
		return 0;
	if (d[0] == '[') {
		if (d[len - 1] != ']' || len < 3)
			return 0;
		for (d++; *d != ']'; d++)
			if (*d <= ' ' || *d >= 0x7f || *d == '[' ||
			    *d == '\\')
				return 0;
		return d[1] == '\0';
	}
	return smtp_valid_labels(d, 1);
}

int
smtp_valid_labels(const char *d, int allow_8bit)
{
	size_t	label = 0;

	if (strlen(d) > 255)
		return 0;
	for (; *d != '\0'; d++) {
		if (*d == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)*d) || *d == '-' ||
		    *d == '_' || (allow_8bit && (unsigned char)*d >= 0x80)) {
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return label > 0;
}

/* local-part "@" domain, the local part a dot-string or quoted string. */
static int
smtp_valid_mailbox(const char *a)
{
	const char	*p = a;

	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\\')
				p++;
			if (*p == '\0' || (unsigned char)*p < ' ' ||
			    *p == 0x7f)
				return 0;
		}
		p++;
	} else {
		for (; *p != '@' && *p != '\0'; p++)
			if (!smtp_atext((unsigned char)*p) && *p != '.')
				return 0;
	}
	if (p == a || *p != '@' || (size_t)(p - a) > SMTP_LOCAL_MAX)
		return 0;
	return smtp_valid_domain(p + 1);
}

int
smtp_valid_address(const char *addr)
{
	size_t	len = strlen(addr);

	if (len == 0)
		return 1;
	return len <= SMTP_ADDR_MAX && smtp_valid_mailbox(addr);
}

int
smtp_has_8bit(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

int
smtp_utf8_valid(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, n, j;
	uint32_t		 cp, min;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0) {
			n = 1;
			cp = p[i] & 0x1f;
			min = 0x80;
		} else if ((p[i] & 0xf0) == 0xe0) {
			n = 2;
			cp = p[i] & 0x0f;
			min = 0x800;
		} else if ((p[i] & 0xf8) == 0xf0) {
			n = 3;
			cp = p[i] & 0x07;
			min = 0x10000;
		} else
			return 0;
		if (len - i <= n)
			return 0;
		for (j = 1; j <= n; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		/* Overlong forms, surrogates and beyond U+10FFFF. */
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += n + 1;
	}
	return 1;
}

/* Find the '>' closing a path, skipping quoted strings; NULL if none. */
static const char *
smtp_path_end(const char *p)
{
	int	 quoted = 0;

	for (; *p != '\0'; p++) {
		if (quoted) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				quoted = 0;
		} else if (*p == '"')
			quoted = 1;
		else if (*p == '>')
			return p;
	}
	return NULL;
}

int
smtp_parse_path(const char *arg, const char *kw, char *addr, size_t addrsz,
    const char **params)
{
	const char	*p = arg, *start, *end, *colon;
	size_t		 len = strlen(kw);

	*addr = '\0';
	*params = "";
	if (strncasecmp(p, kw, len) != 0 || p[len] != ':')
		return SMTP_PATH_ESYNTAX;
	for (p += len + 1; *p == ' '; p++)
		;
	if (*p == '<') {
		start = p + 1;
		if ((end = smtp_path_end(start)) == NULL)
			return SMTP_PATH_ESYNTAX;
		p = end + 1;
		if (*p != '\0' && *p != ' ')
			return SMTP_PATH_ESYNTAX;
	} else {
		/* Without brackets, as lenient servers (Postfix) accept. */
		for (start = p; *p != '\0' && *p != ' '; p++)
			;
		end = p;
		if (start == end)
			return SMTP_PATH_ESYNTAX;
	}
	while (*p == ' ')
		p++;
	*params = p;

	/* A source route (@a,@b:user@c) must be accepted and ignored. */
	if (*start == '@') {
		colon = memchr(start, ':', (size_t)(end - start));
		if (colon == NULL)
			return SMTP_PATH_EADDR;
		start = colon + 1;
	}
	len = (size_t)(end - start);
	if (len > SMTP_ADDR_MAX || len >= addrsz)
		return SMTP_PATH_EADDR;
	memcpy(addr, start, len);
	addr[len] = '\0';
	if (len > 0 && !smtp_valid_mailbox(addr)) {
		*addr = '\0';
		return SMTP_PATH_EADDR;
	}
	return SMTP_PATH_OK;
}

/* Split the next "KEY[=VALUE]" off *p; -1 on bad syntax, 0 at the end. */
static int
smtp_param_next(const char **p, char *key, size_t keysz, char *val,
    size_t valsz)
{
	const char	*s = *p, *k, *v = NULL;
	size_t		 klen, vlen = 0;

	while (*s == ' ')
		s++;
	if (*s == '\0')
		return 0;
	for (k = s; isalnum((unsigned char)*s) || (*s == '-' && s != k); s++)
		;
	klen = (size_t)(s - k);
	if (*s == '=') {
		for (v = ++s; *s > ' ' && *s < 0x7f && *s != '='; s++)
			;
		vlen = (size_t)(s - v);
		if (vlen == 0)
			return -1;
	}
	if (klen == 0 || klen >= keysz || vlen >= valsz ||
	    (*s != ' ' && *s != '\0'))
		return -1;
	memcpy(key, k, klen);
	key[klen] = '\0';
	if (v != NULL)
		memcpy(val, v, vlen);
	val[vlen] = '\0';
	*p = s;
	return 1;
}

/* SIZE=digits, at most 20 of them, no overflow. */
static int
smtp_param_size(const char *v, uint64_t *size)
{
	uint64_t	n = 0, d;

	if (*v == '\0' || strlen(v) > 20)
		return -1;
	for (; *v != '\0'; v++) {
		if (!isdigit((unsigned char)*v))
			return -1;
		d = (uint64_t)(*v - '0');
		if (n > (UINT64_MAX - d) / 10)
			return -1;
		n = n * 10 + d;
	}
	*size = n;
	return 0;
}

/* A hex digit's value, or -1 (xtext says upper case; be lenient). */
static int
smtp_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
smtp_xtext_decode(const char *in, char *out, size_t outsz)
{
	size_t	n = 0;
	int	hi, lo;

	for (; *in != '\0'; in++) {
		if (n + 1 >= outsz)
			return -1;
		if (*in == '+') {
			if ((hi = smtp_hexval(in[1])) == -1 ||
			    (lo = smtp_hexval(in[2])) == -1 ||
			    (hi == 0 && lo == 0))
				return -1;
			out[n++] = (char)(hi << 4 | lo);
			in += 2;
		} else if (*in < '!' || *in > '~' || *in == '=')
			return -1;
		else
			out[n++] = *in;
	}
	out[n] = '\0';
	return 0;
}

/* An xtext value of at most max octets that decodes to printable ASCII. */
static int
smtp_param_xtext(const char *val, size_t max, char *out, size_t outsz)
{
	const char	*p;

	if (*val == '\0' || strlen(val) > max ||
	    smtp_xtext_decode(val, out, outsz) == -1)
		return -1;
	for (p = out; *p != '\0'; p++)
		if (*p < ' ' || *p > '~')
			return -1;
	return 0;
}

/* ORCPT=addr-type;xtext (RFC 3461 4.2), addr-type an atom. */
static int
smtp_param_orcpt(const char *val, char *out, size_t outsz)
{
	const char	*p;

	for (p = val; isalnum((unsigned char)*p) || *p == '-'; p++)
		;
	if (p == val || *p != ';' || p[1] == '\0')
		return -1;
	return smtp_param_xtext(val, DSN_ORCPT_MAX, out, outsz);
}

/* One MAIL parameter; 0 or the code with *reply set. */
static int
smtp_mail_param(const char *key, const char *val,
    struct smtp_mail_params *mp, int *seen_size, const char **reply)
{
	char	auth[DSN_ORCPT_MAX + 1];

	if (strcasecmp(key, "SIZE") == 0) {
		if ((*seen_size)++ || smtp_param_size(val, &mp->size)) {
			*reply = "501 5.5.4 Bad SIZE parameter";
			return 501;
		}
	} else if (strcasecmp(key, "BODY") == 0) {
		if (mp->body != SMTP_BODY_UNSET) {
			*reply = "501 5.5.4 Duplicate BODY parameter";
			return 501;
		}
		if (strcasecmp(val, "7BIT") == 0)
			mp->body = SMTP_BODY_7BIT;
		else if (strcasecmp(val, "8BITMIME") == 0)
			mp->body = SMTP_BODY_8BITMIME;
		else {
			*reply = "501 5.5.4 Unsupported BODY type";
			return 501;
		}
	} else if (strcasecmp(key, "SMTPUTF8") == 0) {
		if (mp->smtputf8++ || *val != '\0') {
			*reply = "501 5.5.4 Bad SMTPUTF8 parameter";
			return 501;
		}
	} else if (strcasecmp(key, "RET") == 0) {
		if (mp->ret != 0 || (mp->ret = dsn_ret_parse(val)) <= 0) {
			*reply = "501 5.5.4 Bad RET parameter";
			return 501;
		}
	} else if (strcasecmp(key, "ENVID") == 0) {
		if (mp->envid[0] != '\0' || smtp_param_xtext(val,
		    DSN_ENVID_MAX, mp->envid, sizeof(mp->envid)) == -1) {
			*reply = "501 5.5.4 Bad ENVID parameter";
			return 501;
		}
	} else if (strcasecmp(key, "AUTH") == 0) {
		/*
		 * RFC 4954 5: "<>" or an xtext mailbox, checked, then
		 * ignored (we do not trust it).
		 */
		if (strcmp(val, "<>") != 0 && smtp_param_xtext(val,
		    DSN_ORCPT_MAX, auth, sizeof(auth)) == -1) {
			*reply = "501 5.5.4 Bad AUTH parameter";
			return 501;
		}
	} else {
		*reply = "555 5.5.4 Unsupported MAIL parameter";
		return 555;
	}
	return 0;
}

int
smtp_parse_mail_params(const char *params, struct smtp_mail_params *mp,
    const char **reply)
{
	char	 key[32], val[DSN_ORCPT_MAX + 2];
	int	 r, code, seen_size = 0;

	memset(mp, 0, sizeof(*mp));
	while ((r = smtp_param_next(&params, key, sizeof(key), val,
	    sizeof(val))) == 1)
		if ((code = smtp_mail_param(key, val, mp, &seen_size,
		    reply)) != 0)
			return code;
	if (r == -1) {
		*reply = "501 5.5.4 Syntax error in MAIL parameters";
		return 501;
	}
	return 0;
}

int
smtp_parse_rcpt_params(const char *params, struct smtp_rcpt_params *rp,
    const char **reply)
{
	char	 key[32], val[DSN_ORCPT_MAX + 2];
	int	 r;

	memset(rp, 0, sizeof(*rp));
	while ((r = smtp_param_next(&params, key, sizeof(key), val,
	    sizeof(val))) == 1) {
		if (strcasecmp(key, "NOTIFY") == 0) {
			if (rp->notify != 0 ||
			    (rp->notify = dsn_notify_parse(val)) <= 0) {
				*reply = "501 5.5.4 Bad NOTIFY parameter";
				return 501;
			}
		} else if (strcasecmp(key, "ORCPT") == 0) {
			if (rp->orcpt[0] != '\0' || smtp_param_orcpt(val,
			    rp->orcpt, sizeof(rp->orcpt)) == -1) {
				*reply = "501 5.5.4 Bad ORCPT parameter";
				return 501;
			}
		} else {
			*reply = "555 5.5.4 Unsupported RCPT parameter";
			return 555;
		}
	}
	if (r == -1) {
		*reply = "501 5.5.4 Syntax error in RCPT parameters";
		return 501;
	}
	return 0;
}

void
smtp_data_init(struct smtp_data *d)
{
	memset(d, 0, sizeof(*d));
	d->state = D_BOL;
}

/* One more octet on the current line; flag the line once it is too long. */
static void
smtp_data_count(struct smtp_data *d)
{
	if (++d->linelen > SMTP_TEXT_LINE_MAX - 2)
		d->flags |= SMTP_DATA_F_LONG;
}

/* How many octets of p[0..n) come before the first CR, LF or NUL. */
static size_t
plain_run(const char *p, size_t n)
{
	const char	*q;

	if ((q = memchr(p, '\r', n)) != NULL)
		n = (size_t)(q - p);
	if ((q = memchr(p, '\n', n)) != NULL)
		n = (size_t)(q - p);
	if ((q = memchr(p, '\0', n)) != NULL)
		n = (size_t)(q - p);
	return n;
}

int
smtp_data_feed(struct smtp_data *d, const char *in, size_t inlen,
    size_t *used, char *out, size_t outcap, size_t *outlen)
{
	size_t	 i = 0, n;
	char	 c;

	*outlen = 0;
	/* Every step writes at most 2 octets: stop while both fit. */
	while (i < inlen && outcap - *outlen >= 2) {
		c = in[i];
		switch (d->state) {
		case D_BOL:
			if (c == '.') {
				d->state = D_DOT;
				smtp_data_count(d);
				i++;
			} else
				d->state = D_TEXT;	/* look at c again */
			break;
		case D_DOT:
			if (c == '\r') {
				d->state = D_DOTCR;
				i++;
			} else
				d->state = D_TEXT;	/* the dot was stuffing */
			break;
		case D_DOTCR:
			if (c == '\n') {
				d->state = D_BOL;
				d->linelen = 0;
				*used = i + 1;
				return 1;
			}
			/* ".<CR>x": a bare CR, and no end of data. */
			d->flags |= SMTP_DATA_F_BARE;
			d->state = D_TEXT;
			break;
		case D_TEXT:
			/*
			 * The common case: a run of plain octets at once, as
			 * many as one at a time would write (room for 2 left
			 * before each).
			 */
			n = outcap - *outlen - 1;
			n = plain_run(in + i, inlen - i < n ? inlen - i : n);
			if (n > 0) {
				memcpy(out + *outlen, in + i, n);
				*outlen += n;
				i += n;
				d->linelen += n;
				if (d->linelen > SMTP_TEXT_LINE_MAX - 2)
					d->flags |= SMTP_DATA_F_LONG;
				break;
			}
			i++;
			if (c == '\r')
				d->state = D_CR;
			else if (c == '\n') {
				/* Bare LF: refused, and never a line end. */
				d->flags |= SMTP_DATA_F_BARE;
				smtp_data_count(d);
			} else {
				if (c == '\0')
					d->flags |= SMTP_DATA_F_NUL;
				out[(*outlen)++] = c;
				smtp_data_count(d);
			}
			break;
		case D_CR:
			if (c == '\n') {
				out[(*outlen)++] = '\r';
				out[(*outlen)++] = '\n';
				d->state = D_BOL;
				d->linelen = 0;
				i++;
			} else {
				/* Bare CR: refused; look at c again. */
				d->flags |= SMTP_DATA_F_BARE;
				smtp_data_count(d);
				d->state = D_TEXT;
			}
			break;
		}
	}
	*used = i;
	return 0;
}
