/*
 * mq_headers: x-mq-* header fields to message properties (see
 * mq_headers.h for the names, the bounds and why lines are classified
 * from their start and then streamed).
 *
 * A line of the header section is one of: the empty line (the section
 * ends, everything after is passed through as is); a continuation (it
 * starts with a space or a tab and belongs to the field before); the
 * first line of a field.  A field is an x-mq one when its line starts
 * with "x-mq-" in any case: such a line and its continuations are held in
 * one bounded buffer and never emitted.  Every other line is emitted as
 * soon as its first octets are known not to start "x-mq-".
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json.h>

#include "dsn.h"
#include "mq_headers.h"
#include "msgprops.h"
#include "smtp_parse.h"
#include "xmalloc.h"

#define S_START		0	/* at the start of a line (in pre) */
#define S_PASS		1	/* inside a line that is emitted */
#define S_HOLD		2	/* inside a line of an x-mq field */

#define MQH_PREFIX	"x-mq-"
#define MQH_RECEIVED	"received:"

struct mqh_prop {
	const char	*name;
	int		(*set)(struct mq_headers *, const char *name,
			    const char *value, const char **why);
};

static int	mqh_smarthost(struct mq_headers *, const char *, const char *,
		    const char **);
static int	mqh_ip(struct mq_headers *, const char *, const char *,
		    const char **);
static int	mqh_tag(struct mq_headers *, const char *, const char *,
		    const char **);
static int	mqh_envelope(struct mq_headers *, const char *, const char *,
		    const char **);
static int	mqh_maxdelivertime(struct mq_headers *, const char *,
		    const char *, const char **);
static int	mqh_maxattempts(struct mq_headers *, const char *,
		    const char *, const char **);
static int	mqh_retries(struct mq_headers *, const char *, const char *,
		    const char **);
static int	mqh_dsn(struct mq_headers *, const char *, const char *,
		    const char **);

static const struct mqh_prop mqh_props[] = {
	{ "smarthost-hostname",	mqh_smarthost },
	{ "smarthost-port",	mqh_smarthost },
	{ "smarthost-username",	mqh_smarthost },
	{ "smarthost-password",	mqh_smarthost },
	{ "ip",			mqh_ip },
	{ "tag",		mqh_tag },
	{ "envelope",		mqh_envelope },
	{ "maxdelivertime",	mqh_maxdelivertime },
	{ "maxattempts",	mqh_maxattempts },
	{ "retries",		mqh_retries },
	{ "dsn-notify",		mqh_dsn },
	{ "dsn-ret",		mqh_dsn },
	{ "dsn-envid",		mqh_dsn },
};
#define MQH_NPROPS	(sizeof(mqh_props) / sizeof(mqh_props[0]))

/*
 * Names an unknown x-mq-NAME may not take: the JSON message's own fields
 * and the objects filled above (a plain string there would break them).
 */
static const char *mqh_reserved[] = {
	"smarthost", "ips", "tags", "dsn", "mime", "recipient", "results",
	"id",
};
#define MQH_NRESERVED	(sizeof(mqh_reserved) / sizeof(mqh_reserved[0]))

/* Add "what" to the warnings, as far as they hold. */
static void
mqh_warn(struct mq_headers *h, const char *fmt, ...)
{
	size_t	off = strlen(h->warn);
	va_list	ap;
	int	n;

	if (off >= sizeof(h->warn) - 4)
		return;
	if (off > 0) {
		snprintf(h->warn + off, sizeof(h->warn) - off, "; ");
		off += 2;
	}
	va_start(ap, fmt);
	n = vsnprintf(h->warn + off, sizeof(h->warn) - off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(h->warn) - off)
		/* Cut: say so rather than end in the middle of a word. */
		memcpy(h->warn + sizeof(h->warn) - 4, "...", 4);
}

/* The named object member, made when missing. */
static struct json_object *
mqh_member(struct mq_headers *h, const char *key, json_type type)
{
	struct json_object	*o;

	if (json_object_object_get_ex(h->props, key, &o) &&
	    json_object_is_type(o, type))
		return o;
	o = type == json_type_array ? json_object_new_array() :
	    json_object_new_object();
	json_object_object_add(h->props, key, o);
	return o;
}

/* Digits only, at most max, no overflow: the value, or -1. */
static long long
mqh_number(const char *v, long long min, long long max)
{
	long long	n = 0;

	if (*v == '\0' || strlen(v) > 18)
		return -1;
	for (; *v != '\0'; v++) {
		if (!isdigit((unsigned char)*v))
			return -1;
		n = n * 10 + (*v - '0');
	}
	return n >= min && n <= max ? n : -1;
}

/* A host name (dot-separated labels) or an IP address. */
static int
mqh_hostname_ok(const char *v)
{
	struct in6_addr	 a6;

	if (inet_pton(AF_INET6, v, &a6) == 1)
		return 1;
	return smtp_valid_labels(v, 0);
}

static int
mqh_smarthost(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	struct json_object	*sh;
	const char		*key = name + strlen("smarthost-");
	long long		 port = 0;

	if (strcmp(key, "hostname") == 0 && !mqh_hostname_ok(v)) {
		*why = "not a host name";
		return -1;
	}
	if (strcmp(key, "port") == 0 && (port = mqh_number(v, 1, 65535)) < 0) {
		*why = "not a port number";
		return -1;
	}
	sh = mqh_member(h, "smarthost", json_type_object);
	json_object_object_add(sh, key, port > 0 ?
	    json_object_new_int((int)port) : json_object_new_string(v));
	return 0;
}

/* Append to a bounded list, once. */
static int
mqh_list_add(struct mq_headers *h, const char *key, const char *v,
    size_t max, const char **why)
{
	struct json_object	*a;
	size_t			 i, n;

	a = mqh_member(h, key, json_type_array);
	n = json_object_array_length(a);
	for (i = 0; i < n; i++)
		if (strcmp(json_object_get_string(
		    json_object_array_get_idx(a, i)), v) == 0)
			return 0;
	if (n >= max) {
		*why = "too many";
		return -1;
	}
	json_object_array_add(a, json_object_new_string(v));
	return 0;
}

static int
mqh_ip(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	unsigned char	 a[sizeof(struct in6_addr)];
	char		 buf[INET6_ADDRSTRLEN];
	int		 af;

	af = strchr(v, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(af, v, a) != 1 ||
	    inet_ntop(af, a, buf, sizeof(buf)) == NULL) {
		*why = "not an IP address";
		return -1;
	}
	return mqh_list_add(h, "ips", buf, MQH_IPS_MAX, why);
}

static int
mqh_tag(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	return mqh_list_add(h, "tags", v, MQH_TAGS_MAX, why);
}

/* The envelope sender: "addr", "<addr>" or "<>" (the null sender). */
static int
mqh_envelope(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	char	 addr[SMTP_ADDR_MAX + 1];
	size_t	 len = strlen(v);

	if (len >= 2 && v[0] == '<' && v[len - 1] == '>') {
		v++;
		len -= 2;
	}
	if (len > SMTP_ADDR_MAX) {
		*why = "address too long";
		return -1;
	}
	memcpy(addr, v, len);
	addr[len] = '\0';
	if (!smtp_valid_address(addr)) {
		*why = "bad address";
		return -1;
	}
	if (smtp_has_8bit(addr) && !(h->opts & MQH_F_UTF8)) {
		*why = "8-bit address without SMTPUTF8";
		return -1;
	}
	free(h->envelope);
	h->envelope = xstrdup(addr);
	return 0;
}

/* A unix time, or "YYYY-MM-DD HH:MM:SS" (UTC) as msgprops reads it. */
static int
mqh_maxdelivertime(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	long long	 t;
	int64_t		 when;

	if ((t = mqh_number(v, 1, MSGPROPS_TIME_MAX)) > 0)
		json_object_object_add(h->props, name,
		    json_object_new_int64(t));
	else if (msgprops_parse_time(v, &when) == 0)
		json_object_object_add(h->props, name,
		    json_object_new_string(v));
	else {
		*why = "not a time";
		return -1;
	}
	return 0;
}

static int
mqh_maxattempts(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	long long	n;

	if ((n = mqh_number(v, 1, MSGPROPS_ATTEMPTS_MAX)) < 0) {
		*why = "not a number of attempts";
		return -1;
	}
	json_object_object_add(h->props, name, json_object_new_int((int)n));
	return 0;
}

/* "600,1800, 3600" or "600 1800": seconds, the last one repeating. */
static int
mqh_retries(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	struct json_object	*a;
	char			 item[16];
	size_t			 len, n = 0;
	long long		 sec;

	a = json_object_new_array();
	for (;;) {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		if (*v == '\0')
			break;
		len = strcspn(v, " \t,");
		if (len >= sizeof(item) || ++n > MSGPROPS_RETRIES_MAX)
			goto bad;
		memcpy(item, v, len);
		item[len] = '\0';
		if ((sec = mqh_number(item, 1, MSGPROPS_RETRY_MAX)) < 0)
			goto bad;
		json_object_array_add(a, json_object_new_int((int)sec));
		v += len;
	}
	if (n == 0)
		goto bad;
	json_object_object_add(h->props, name, a);
	return 0;
bad:
	json_object_put(a);
	*why = "not a list of seconds";
	return -1;
}

static int
mqh_dsn(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	struct json_object	*dsn;
	const char		*key = name + strlen("dsn-"), *text = v;
	char			 buf[DSN_NOTIFY_TEXT_MAX];
	int			 n;

	if (strcmp(key, "notify") == 0) {
		if ((n = dsn_notify_parse(v)) <= 0) {
			*why = "not NEVER or SUCCESS,FAILURE,DELAY";
			return -1;
		}
		text = dsn_notify_format(n, buf);
	} else if (strcmp(key, "ret") == 0) {
		if ((n = dsn_ret_parse(v)) <= 0) {
			*why = "not FULL or HDRS";
			return -1;
		}
		text = n == DSN_RET_FULL ? "FULL" : "HDRS";
	} else if (!dsn_text_ok(v, DSN_ENVID_MAX)) {
		*why = "not 1 to 100 printable characters";
		return -1;
	}
	dsn = mqh_member(h, "dsn", json_type_object);
	json_object_object_add(dsn, key, json_object_new_string(text));
	return 0;
}

/* Any other x-mq-NAME: a string property NAME, unless reserved. */
static int
mqh_other(struct mq_headers *h, const char *name, const char *v,
    const char **why)
{
	size_t	i;

	for (i = 0; i < MQH_NRESERVED; i++)
		if (strcmp(name, mqh_reserved[i]) == 0) {
			*why = "reserved name";
			return -1;
		}
	if (strncmp(name, "smarthost-", 10) == 0 ||
	    strncmp(name, "dsn-", 4) == 0) {
		*why = "unknown name";
		return -1;
	}
	json_object_object_add(h->props, name, json_object_new_string(v));
	return 0;
}

/*
 * The unfolded, trimmed value of a held field (after its colon): -1 when
 * too long, not UTF-8, empty or with control characters other than tab.
 */
static int
mqh_value(const char *p, const char *end, char *out, const char **why)
{
	size_t	n = 0, i;

	for (; p < end; p++) {
		if (*p == '\r' || *p == '\n')
			continue;	/* unfolding removes the CRLF */
		if (n >= MQH_VALUE_MAX) {
			*why = "value too long";
			return -1;
		}
		out[n++] = *p;
	}
	while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\t'))
		n--;
	for (i = 0; i < n && (out[i] == ' ' || out[i] == '\t'); i++)
		;
	memmove(out, out + i, n - i);
	n -= i;
	out[n] = '\0';
	*why = "bad value";
	if (n == 0 || !smtp_utf8_valid(out, n))
		return -1;
	for (i = 0; i < n; i++)
		if (((unsigned char)out[i] < ' ' && out[i] != '\t') ||
		    out[i] == 0x7f)
			return -1;
	return 0;
}

/* Parse the held field into a property (or a warning). */
static void
mqh_field(struct mq_headers *h)
{
	char		 name[MQH_NAME_MAX + 1], value[MQH_VALUE_MAX + 1];
	const char	*p = h->field + strlen(MQH_PREFIX), *end, *why;
	size_t		 n = 0, i, total = 0;

	if (++h->nfields == MQH_FIELDS_MAX + 1)
		mqh_warn(h, "over %d x-mq fields, the rest ignored",
		    MQH_FIELDS_MAX);
	if (h->nfields > MQH_FIELDS_MAX)
		return;
	end = h->field + h->fieldlen;
	for (; p < end && (isalnum((unsigned char)*p) || *p == '-'); p++)
		if (total++ < MQH_NAME_MAX)
			name[n++] = (char)tolower((unsigned char)*p);
	name[n] = '\0';
	if (n == 0 || total > MQH_NAME_MAX) {
		mqh_warn(h, "x-mq field with a bad name");
		return;
	}
	if (h->fieldlong) {
		mqh_warn(h, "x-mq-%s: too long", name);
		return;
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p == end || *p != ':') {
		mqh_warn(h, "x-mq field with a bad name");
		return;
	}
	if (mqh_value(p + 1, end, value, &why) == 0) {
		for (i = 0; i < MQH_NPROPS; i++)
			if (strcmp(name, mqh_props[i].name) == 0)
				break;
		if ((i < MQH_NPROPS ? mqh_props[i].set(h, name, value, &why) :
		    mqh_other(h, name, value, &why)) == 0)
			h->nprops++;
		else
			mqh_warn(h, "x-mq-%s: %s, ignored", name, why);
	} else
		mqh_warn(h, "x-mq-%s: %s, ignored", name, why);
	/* It may have been a password. */
	explicit_bzero(value, sizeof(value));
}

/* The field before is complete: parse it if it is ours. */
static void
mqh_field_end(struct mq_headers *h)
{
	if (h->infield)
		mqh_field(h);
	h->infield = 0;
	h->fieldlen = 0;
	h->fieldlong = 0;
}

/* Hold octets of an x-mq field, as far as the bound allows. */
static void
mqh_hold(struct mq_headers *h, const char *p, size_t len)
{
	if (h->field == NULL)
		h->field = xmalloc(MQH_FIELD_MAX);
	if (len > MQH_FIELD_MAX - h->fieldlen) {
		len = MQH_FIELD_MAX - h->fieldlen;
		h->fieldlong = 1;
	}
	memcpy(h->field + h->fieldlen, p, len);
	h->fieldlen += len;
}

/* Does pre still begin like word (case-insensitively)?  1: all of it. */
static int
mqh_prefix(const struct mq_headers *h, const char *word, int *maybe)
{
	size_t	len = strlen(word);
	size_t	n = h->prelen < len ? h->prelen : len;

	if (strncasecmp(h->pre, word, n) != 0)
		return 0;
	if (h->prelen >= len)
		return 1;
	*maybe = 1;
	return 0;
}

/* One more octet at the start of a line: classify the line if we can. */
static void
mqh_start(struct mq_headers *h, char c)
{
	int	maybe = 0;

	if (h->prelen == 0 && (c == ' ' || c == '\t')) {
		/* A continuation goes where its field goes. */
		h->state = h->infield ? S_HOLD : S_PASS;
		if (h->infield)
			mqh_hold(h, &c, 1);
		else
			h->emit(h->arg, &c, 1);
		return;
	}
	h->pre[h->prelen++] = c;
	if (h->prelen == 1 && c == '\r')
		return;		/* the empty line, most likely */
	if (c == '\n') {
		mqh_field_end(h);
		if (h->pre[0] == '\r' || h->pre[0] == '\n')
			h->body = 1;	/* the empty line */
		h->emit(h->arg, h->pre, h->prelen);
		h->prelen = 0;
		return;
	}
	if ((h->opts & MQH_F_STRIP) && mqh_prefix(h, MQH_PREFIX, &maybe)) {
		mqh_field_end(h);
		h->infield = 1;
		mqh_hold(h, h->pre, h->prelen);
		h->prelen = 0;
		h->state = S_HOLD;
		return;
	}
	if (mqh_prefix(h, MQH_RECEIVED, &maybe))
		h->nreceived++;
	else if (maybe)
		return;
	mqh_field_end(h);
	h->emit(h->arg, h->pre, h->prelen);
	h->prelen = 0;
	h->state = S_PASS;
}

void
mq_headers_init(struct mq_headers *h, int opts, mq_emit_fn emit, void *arg)
{
	memset(h, 0, sizeof(*h));
	h->opts = opts;
	h->state = S_START;
	h->props = json_object_new_object();
	h->emit = emit;
	h->arg = arg;
}

void
mq_headers_feed(struct mq_headers *h, const char *buf, size_t len)
{
	const char	*lf;
	size_t		 n;

	while (len > 0) {
		if (h->body) {
			h->emit(h->arg, buf, len);
			return;
		}
		if (h->state == S_START) {
			mqh_start(h, *buf);
			buf++;
			len--;
			continue;
		}
		/* The rest of a classified line, through its LF. */
		lf = memchr(buf, '\n', len);
		n = lf != NULL ? (size_t)(lf - buf) + 1 : len;
		if (h->state == S_HOLD)
			mqh_hold(h, buf, n);
		else
			h->emit(h->arg, buf, n);
		if (lf != NULL)
			h->state = S_START;
		buf += n;
		len -= n;
	}
}

void
mq_headers_end(struct mq_headers *h)
{
	if (h->body)
		return;
	if (h->prelen > 0)
		h->emit(h->arg, h->pre, h->prelen);
	h->prelen = 0;
	mqh_field_end(h);
	h->body = 1;
}

struct json_object *
mq_headers_props(struct mq_headers *h)
{
	struct json_object	*o = h->props;

	h->props = json_object_new_object();
	return o;
}

void
mq_headers_clear(struct mq_headers *h)
{
	if (h->field != NULL)
		explicit_bzero(h->field, MQH_FIELD_MAX);
	free(h->field);
	free(h->envelope);
	json_object_put(h->props);
	memset(h, 0, sizeof(*h));
}
