/*
 * Per-message delivery settings from the properties JSON (msgprops.h).
 * Values come from senders (x-mq-* headers, JSON messages), so each is
 * checked for type and range and a bad one is skipped with a warning.
 * Header-borne values arrive as strings, hence "5" for 5 and "600,1800"
 * for [600, 1800].
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "dsn.h"
#include "json_strict.h"
#include "msgprops.h"
#include "xmalloc.h"

/* Append one "what" to the warnings text. */
static void
warn(char **w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
warn(char **w, const char *fmt, ...)
{
	va_list	 ap;
	char	*s, *t;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();
	va_end(ap);
	if (*w == NULL) {
		*w = s;
		return;
	}
	xasprintf(&t, "%s; %s", *w, s);
	free(*w);
	free(s);
	*w = t;
}

/* A decimal integer string, all of it: 0, or -1. */
static int
str_int(const char *s, int64_t *out)
{
	char		*end;
	long long	 n;

	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s) && *s != '-')
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (errno != 0 || *end != '\0')
		return -1;
	*out = n;
	return 0;
}

/* An integer from a JSON number (integral) or a numeric string. */
static int
json_int(struct json_object *v, int64_t *out)
{
	double	 d;

	switch (json_object_get_type(v)) {
	case json_type_int:
		errno = 0;
		*out = json_object_get_int64(v);
		return errno == 0 ? 0 : -1;
	case json_type_double:
		d = json_object_get_double(v);
		if (d != d || d < -9e15 || d > 9e15 || d != (double)(int64_t)d)
			return -1;
		*out = (int64_t)d;
		return 0;
	case json_type_string:
		return str_int(json_object_get_string(v), out);
	default:
		return -1;
	}
}

/* One retry interval, within the bounds of the retries key. */
static int
retry_ok(int64_t n)
{
	return n >= 1 && n <= MSGPROPS_RETRY_MAX;
}

/* "600,1800, 3600" into p's list: 0, or -1. */
static int
retries_from_string(const char *s, struct msgprops *p)
{
	char	*copy, *rest, *tok;
	int64_t	 n;
	int	 rv = 0;

	/* strsep, not strtok: an empty item ("60,,120") is an error. */
	copy = rest = xstrdup(s);
	while ((tok = strsep(&rest, ",")) != NULL) {
		if (p->nretries == MSGPROPS_RETRIES_MAX ||
		    str_int(tok, &n) == -1 || !retry_ok(n)) {
			rv = -1;
			break;
		}
		p->retries[p->nretries++] = (int)n;
	}
	free(copy);
	return rv;
}

/* "retries": a list of numbers, or a string of them. */
static void
parse_retries(struct json_object *v, struct msgprops *p, char **w)
{
	size_t	 i, len;
	int64_t	 n;
	int	 bad = 0;

	p->retries = xcalloc(MSGPROPS_RETRIES_MAX, sizeof(*p->retries));
	p->nretries = 0;
	if (json_object_is_type(v, json_type_string)) {
		bad = retries_from_string(json_object_get_string(v), p) == -1;
	} else if (json_object_is_type(v, json_type_array)) {
		len = json_object_array_length(v);
		if (len > MSGPROPS_RETRIES_MAX)
			bad = 1;
		for (i = 0; i < len && !bad; i++) {
			if (json_int(json_object_array_get_idx(v, i), &n) ==
			    -1 || !retry_ok(n))
				bad = 1;
			else
				p->retries[p->nretries++] = (int)n;
		}
	} else
		bad = 1;
	if (bad || p->nretries == 0) {
		warn(w, "retries: not a list of 1 to %d intervals of 1 to %d "
		    "seconds", MSGPROPS_RETRIES_MAX, MSGPROPS_RETRY_MAX);
		free(p->retries);
		p->retries = NULL;
		p->nretries = 0;
	}
}

static void
parse_maxattempts(struct json_object *v, struct msgprops *p, char **w)
{
	int64_t	 n;

	if (json_int(v, &n) == -1 || n < 1 || n > MSGPROPS_ATTEMPTS_MAX) {
		warn(w, "maxattempts: not an integer from 1 to %d",
		    MSGPROPS_ATTEMPTS_MAX);
		return;
	}
	p->maxattempts = (uint32_t)n;
}

int
msgprops_parse_time(const char *s, int64_t *out)
{
	struct tm	 tm;
	const char	*end;
	time_t		 t;

	memset(&tm, 0, sizeof(tm));
	while (isspace((unsigned char)*s))
		s++;
	end = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (end == NULL)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	if (*end != '\0')
		return -1;
	/* strptime accepts 31 February; timegm would roll it over. */
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31)
		return -1;
	t = timegm(&tm);
	if (t == (time_t)-1 || t <= 0)
		return -1;
	*out = (int64_t)t;
	return 0;
}

/* "maxdelivertime": a date-time string (UTC) or a unix time. */
static void
parse_maxdelivertime(struct json_object *v, struct msgprops *p, char **w)
{
	int64_t	 t;

	if (json_int(v, &t) == 0) {
		if (t >= 1 && t <= MSGPROPS_TIME_MAX) {
			p->maxdelivertime = t;
			return;
		}
	} else if (json_object_is_type(v, json_type_string) &&
	    msgprops_parse_time(json_object_get_string(v), &t) == 0 &&
	    t <= MSGPROPS_TIME_MAX) {
		p->maxdelivertime = t;
		return;
	}
	warn(w, "maxdelivertime: not \"YYYY-MM-DD HH:MM:SS\" (UTC) or a "
	    "unix time");
}

/* "dsn": { notify, ret, envid }, each optional. */
static void
parse_dsn(struct json_object *v, struct msgprops *p, char **w)
{
	struct json_object	*m;
	const char		*s;
	int			 n;

	if (!json_object_is_type(v, json_type_object)) {
		warn(w, "dsn: not an object");
		return;
	}
	if (json_object_object_get_ex(v, "notify", &m)) {
		if (!json_object_is_type(m, json_type_string) ||
		    (n = dsn_notify_parse(json_object_get_string(m))) == -1)
			warn(w, "dsn.notify: not NEVER or a list of SUCCESS, "
			    "FAILURE, DELAY");
		else
			p->notify = n;
	}
	if (json_object_object_get_ex(v, "ret", &m)) {
		if (!json_object_is_type(m, json_type_string) ||
		    (n = dsn_ret_parse(json_object_get_string(m))) == -1)
			warn(w, "dsn.ret: not FULL or HDRS");
		else
			p->ret = n;
	}
	if (json_object_object_get_ex(v, "envid", &m)) {
		s = json_object_is_type(m, json_type_string) ?
		    json_object_get_string(m) : "";
		if (!dsn_text_ok(s, DSN_ENVID_MAX))
			warn(w, "dsn.envid: not 1 to %d printable characters",
			    DSN_ENVID_MAX);
		else
			p->envid = xstrdup(s);
	}
}

int
msgprops_parse(const char *text, struct msgprops *p, char **warnings)
{
	struct json_object	*o, *v;
	size_t			 len = strlen(text);

	memset(p, 0, sizeof(*p));
	*warnings = NULL;
	if ((o = json_parse_object(text, len)) == NULL)
		return -1;
	if (json_object_object_get_ex(o, "retries", &v))
		parse_retries(v, p, warnings);
	if (json_object_object_get_ex(o, "maxattempts", &v))
		parse_maxattempts(v, p, warnings);
	if (json_object_object_get_ex(o, "maxdelivertime", &v))
		parse_maxdelivertime(v, p, warnings);
	if (json_object_object_get_ex(o, "dsn", &v))
		parse_dsn(v, p, warnings);
	json_object_put(o);
	return 0;
}

void
msgprops_clear(struct msgprops *p)
{
	free(p->retries);
	free(p->envid);
	memset(p, 0, sizeof(p[0]));
}
