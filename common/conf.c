/*
 * Configuration: loading, checking, slicing and printing.
 *
 * Every key is a row of conf_table (conf_table.c).  A value from any source
 * -- the table's default, the file, a --KEY=VALUE override, or the slice the
 * master sends a child -- becomes a libconfig setting first and then goes
 * through one setter per type (conf_set), so every source accepts and
 * refuses the same things.  A load is all or nothing: new values are read
 * into a zeroed scratch struct conf and swapped into place only when every
 * key was good; the scratch then frees the old values.
 *
 * libconfig 1.5 keeps an integer literal without an L suffix in an int and
 * silently wraps it (4294967296 reads as 0), so the text is scanned first
 * and such literals get the suffix (conf_widen).  @include is refused: the
 * file must be the whole configuration, as a slice is.
 *
 * A slice is libconfig text, one "key = value;" line per key the process
 * needs.  Group members marked secret (smarthost and route passwords) are
 * sliced only to the smtp workers that use them.  conf_print writes the
 * same syntax without the ';' and with secrets masked.
 *
 * Errors: "FILE:LINE: KEY: what" for files and slices ("<config>" as FILE
 * for text), "--KEY: what" for overrides, "KEY: what" from conf_validate.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libconfig.h>

#include "conf.h"
#include "log.h"
#include "netaddr.h"
#include "proto.h"
#include "tls_policy.h"
#include "xmalloc.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))
#define EMPTY(s)	((s) == NULL || *(s) == '\0')
#define SECRET_MASK	"\"********\""
#define TEXT_FILE	"<config>"	/* FILE in errors from conf_load_text */
#define DEFAULT_FILE	"<default>"	/* FILE in errors from a table default */

/* One member of the groups in a SMARTHOSTS or ROUTES list. */
struct conf_member {
	const char	*name;
	enum conf_type	 type;		/* CONF_T_STR, CONF_T_INT or CONF_T_BOOL */
	size_t		 offset;	/* in struct conf_smarthost/conf_route */
	long long	 min;		/* CONF_T_INT bounds */
	long long	 max;
	int		 def;		/* default of an INT or BOOL member */
	unsigned	 flags;
#define M_REQUIRED	0x1		/* must be present and not empty */
#define M_SECRET	0x2		/* masked; sliced only to SECRET_PROCS */
#define M_TLSPOLICY	0x4		/* a tls_policy.h name */
};

#define SECRET_PROCS	P_SMTP		/* who gets secret members in a slice */

struct conf_group {
	size_t				 size;		/* of one element */
	const struct conf_member	*members;
	size_t				 nmembers;
};

#define SH(f)	offsetof(struct conf_smarthost, f)
static const struct conf_member smarthost_members[] = {
	{ "hostname",	CONF_T_STR,	SH(hostname),	0, 0, 0, M_REQUIRED },
	{ "port",	CONF_T_INT,	SH(port),	1, 65535, 25, 0 },
	{ "username",	CONF_T_STR,	SH(username),	0, 0, 0, 0 },
	{ "password",	CONF_T_STR,	SH(password),	0, 0, 0, M_SECRET },
	{ "weight",	CONF_T_INT,	SH(weight),	1, 1000, 1, 0 },
	{ "backup",	CONF_T_BOOL,	SH(backup),	0, 1, 0, 0 },
};

#define RT(f)	offsetof(struct conf_route, f)
static const struct conf_member route_members[] = {
	{ "domain",	CONF_T_STR,	RT(domain),	0, 0, 0, M_REQUIRED },
	{ "host",	CONF_T_STR,	RT(host),	0, 0, 0, M_REQUIRED },
	{ "port",	CONF_T_INT,	RT(port),	0, 65535, 0, 0 },
	{ "username",	CONF_T_STR,	RT(username),	0, 0, 0, 0 },
	{ "password",	CONF_T_STR,	RT(password),	0, 0, 0, M_SECRET },
	{ "security",	CONF_T_STR,	RT(security),	0, 0, 0, M_TLSPOLICY },
};

static const struct conf_group smarthost_group = {
	sizeof(struct conf_smarthost), smarthost_members,
	NITEMS(smarthost_members)
};
static const struct conf_group route_group = {
	sizeof(struct conf_route), route_members, NITEMS(route_members)
};

/* Where a value comes from, to word its errors. */
struct conf_ctx {
	const char	*file;		/* NULL: an override */
	const char	*key;		/* as the user spelled it */
	char		**cause;
};

/* Growing text; a grown buffer's old copy is wiped, slices hold secrets. */
struct buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

enum fmt_mode {
	FMT_SLICE,			/* exact, for conf_load_text */
	FMT_PRINT,			/* secrets masked, for people */
};

/* Any one field, to swap fields through. */
union conf_field {
	char			*str;
	int			 i;
	uint64_t		 size;
	struct conf_intlist	 intlist;
	struct conf_strlist	 strlist;
	struct conf_smarthosts	 smarthosts;
	struct conf_routes	 routes;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	char	*p;
	size_t	 cap;

	if (b->len + n + 1 > b->cap) {
		cap = b->cap == 0 ? 256 : b->cap;
		while (b->len + n + 1 > cap)
			cap *= 2;
		p = xmalloc(cap);
		if (b->len > 0)
			memcpy(p, b->p, b->len);
		xfreezero(b->p, b->cap);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_puts(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
buf_printf(struct buf *b, const char *fmt, ...)
{
	char	 small[128];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(small))
		log_panic("buf_printf: %d bytes", n);
	buf_add(b, small, n);
}

/* The text built so far, owned by the caller; "" when nothing was added. */
static char *
buf_take(struct buf *b)
{
	if (b->p == NULL)
		return xstrdup("");
	return b->p;
}

/* Append s as a libconfig string literal that reads back byte for byte. */
static void
fmt_str(struct buf *b, const char *s)
{
	const unsigned char	*p;

	buf_add(b, "\"", 1);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			buf_add(b, "\\\"", 2);
			break;
		case '\\':
			buf_add(b, "\\\\", 2);
			break;
		case '\n':
			buf_add(b, "\\n", 2);
			break;
		case '\r':
			buf_add(b, "\\r", 2);
			break;
		case '\t':
			buf_add(b, "\\t", 2);
			break;
		case '\f':
			buf_add(b, "\\f", 2);
			break;
		default:
			/* bytes >= 0x80 (UTF-8) pass through libconfig as is */
			if (*p < 0x20 || *p == 0x7f)
				buf_printf(b, "\\x%02x", *p);
			else
				buf_add(b, (const char *)p, 1);
		}
	}
	buf_add(b, "\"", 1);
}

/* s quoted for an error message; the caller frees it. */
static char *
quote(const char *s)
{
	struct buf	 b;

	memset(&b, 0, sizeof(b));
	fmt_str(&b, s);
	return buf_take(&b);
}

/* Set *ctx->cause to the located message and return -1. */
static int __attribute__((format(printf, 3, 4)))
conf_err(const struct conf_ctx *ctx, const config_setting_t *s,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	if (ctx->cause == NULL)
		;
	else if (ctx->file == NULL)
		xasprintf(ctx->cause, "--%s: %s", ctx->key, msg);
	else
		xasprintf(ctx->cause, "%s:%d: %s: %s", ctx->file,
		    s != NULL ? (int)config_setting_source_line(s) : 0,
		    ctx->key, msg);
	free(msg);
	return -1;
}

static void *
field(struct conf *c, const struct conf_key *k)
{
	return (char *)c + k->offset;
}

static const void *
cfield(const struct conf *c, const struct conf_key *k)
{
	return (const char *)c + k->offset;
}

/* The row that owns k's field: k itself unless k is an alias. */
static const struct conf_key *
conf_primary(const struct conf_key *k)
{
	size_t	 i;

	if (!(k->flags & CONF_F_ALIAS))
		return k;
	for (i = 0; i < conf_table_len; i++)
		if (conf_table[i].offset == k->offset &&
		    !(conf_table[i].flags & CONF_F_ALIAS))
			return &conf_table[i];
	log_panic("conf_primary: %s aliases nothing", k->name);
}

const struct conf_key *
conf_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < conf_table_len; i++)
		if (strcmp(conf_table[i].name, name) == 0)
			return &conf_table[i];
	return NULL;
}

/* The descriptor and elements of a SMARTHOSTS or ROUTES field. */
static const struct conf_group *
group_get(enum conf_type type, const void *f, char **v, size_t *n)
{
	const struct conf_smarthosts	*sh = f;
	const struct conf_routes	*rt = f;

	if (type == CONF_T_SMARTHOSTS) {
		*v = (char *)sh->v;
		*n = sh->n;
		return &smarthost_group;
	}
	*v = (char *)rt->v;
	*n = rt->n;
	return &route_group;
}

static void
group_put(enum conf_type type, void *f, char *v, size_t n)
{
	struct conf_smarthosts	*sh = f;
	struct conf_routes	*rt = f;

	if (type == CONF_T_SMARTHOSTS) {
		sh->v = (struct conf_smarthost *)(void *)v;
		sh->n = n;
	} else {
		rt->v = (struct conf_route *)(void *)v;
		rt->n = n;
	}
}

static char **
mstr(char *elem, const struct conf_member *m)
{
	return (char **)(void *)(elem + m->offset);
}

static int *
mint(char *elem, const struct conf_member *m)
{
	return (int *)(void *)(elem + m->offset);
}

/* Free a list of groups, wiping secret members. */
static void
group_free(enum conf_type type, void *f)
{
	const struct conf_group		*g;
	const struct conf_member	*m;
	char				*v, *e;
	size_t				 i, j, n;

	g = group_get(type, f, &v, &n);
	for (i = 0; i < n; i++) {
		e = v + i * g->size;
		for (j = 0; j < g->nmembers; j++) {
			m = &g->members[j];
			if (m->type != CONF_T_STR)
				continue;
			if (m->flags & M_SECRET)
				xfreestr(*mstr(e, m));
			else
				free(*mstr(e, m));
		}
	}
	free(v);
	group_put(type, f, NULL, 0);
}

static void
strlist_free(struct conf_strlist *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Release whatever a field holds; secrets are wiped first. */
static void
field_free(const struct conf_key *k, void *f)
{
	char	**s = f;

	switch (k->type) {
	case CONF_T_STR:
		if (k->flags & CONF_F_SECRET)
			xfreestr(*s);
		else
			free(*s);
		*s = NULL;
		break;
	case CONF_T_INTLIST:
		free(((struct conf_intlist *)f)->v);
		break;
	case CONF_T_STRLIST:
		strlist_free(f);
		break;
	case CONF_T_SMARTHOSTS:
	case CONF_T_ROUTES:
		group_free(k->type, f);
		break;
	default:
		break;
	}
}

static size_t
field_size(enum conf_type type)
{
	switch (type) {
	case CONF_T_STR:
		return sizeof(char *);
	case CONF_T_INT:
	case CONF_T_BOOL:
		return sizeof(int);
	case CONF_T_SIZE:
		return sizeof(uint64_t);
	case CONF_T_INTLIST:
		return sizeof(struct conf_intlist);
	case CONF_T_STRLIST:
		return sizeof(struct conf_strlist);
	case CONF_T_SMARTHOSTS:
		return sizeof(struct conf_smarthosts);
	case CONF_T_ROUTES:
		return sizeof(struct conf_routes);
	}
	log_panic("field_size: type %d", (int)type);
}

/* Exchange one key's field between two confs. */
static void
field_swap(struct conf *a, struct conf *b, const struct conf_key *k)
{
	union conf_field	 tmp;
	size_t			 n = field_size(k->type);

	memcpy(&tmp, field(a, k), n);
	memcpy(field(a, k), field(b, k), n);
	memcpy(field(b, k), &tmp, n);
}

void
conf_free(struct conf *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	for (i = 0; i < conf_table_len; i++)
		if (!(conf_table[i].flags & CONF_F_ALIAS))
			field_free(&conf_table[i], field(c, &conf_table[i]));
	xfreezero(c, sizeof(*c));
}

/* Parse "100MB", "512KB", "1GB", "1024" (KB = 1024 bytes); -1 on error. */
int
conf_parse_size(const char *s, uint64_t *out)
{
	static const struct {
		const char	*unit;
		uint64_t	 mult;
	} units[] = {
		{ "", 1 }, { "b", 1 },
		{ "k", 1ULL << 10 }, { "kb", 1ULL << 10 },
		{ "m", 1ULL << 20 }, { "mb", 1ULL << 20 },
		{ "g", 1ULL << 30 }, { "gb", 1ULL << 30 },
	};
	unsigned long long	 v;
	char			*end;
	size_t			 i;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	while (*end == ' ')
		end++;
	for (i = 0; i < NITEMS(units); i++) {
		if (strcasecmp(end, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].mult)
			return -1;
		*out = v * units[i].mult;
		return 0;
	}
	return -1;
}

static int
port_valid(const char *s)
{
	char	*end;
	long	 v;

	if (!isdigit((unsigned char)*s))
		return 0;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno == 0 && *end == '\0' && v >= 1 && v <= 65535;
}

/* A name server: "ip", "ip:port", "ipv6" or "[ipv6]:port". */
static int
nameserver_valid(const char *s)
{
	struct in6_addr	 a6;
	struct in_addr	 a4;
	char		 host[INET6_ADDRSTRLEN];
	const char	*end;
	size_t		 len;

	if (inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1)
		return 1;
	if (*s == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return 0;
		len = end - (s + 1);
		if (len >= sizeof(host))
			return 0;
		memcpy(host, s + 1, len);
		host[len] = '\0';
		return inet_pton(AF_INET6, host, &a6) == 1 &&
		    port_valid(end + 2);
	}
	if ((end = strrchr(s, ':')) == NULL ||
	    (len = end - s) >= sizeof(host))
		return 0;
	memcpy(host, s, len);
	host[len] = '\0';
	return inet_pton(AF_INET, host, &a4) == 1 && port_valid(end + 1);
}

static char *
range_msg(long long v, long long min, long long max)
{
	char	*msg;

	xasprintf(&msg, "%lld is out of range %lld..%lld", v, min, max);
	return msg;
}

/* "[name: ]"value" is not one of none, opportunistic, required". */
static char *
tls_policy_msg(const char *name, const char *v)
{
	char	*msg, *q = quote(v);

	xasprintf(&msg, "%s%s%s is not one of none, opportunistic, required",
	    name != NULL ? name : "", name != NULL ? ": " : "", q);
	free(q);
	return msg;
}

/* What is wrong with entry i (from 1) of a list: a missing or bad member. */
static char *
elem_check(const struct conf_group *g, char *e, size_t i)
{
	const struct conf_member	*m;
	char				*msg, *r;
	size_t				 j;
	int				 x;

	for (j = 0; j < g->nmembers; j++) {
		m = &g->members[j];
		x = m->type == CONF_T_INT ? *mint(e, m) : 0;
		r = NULL;
		if ((m->flags & M_REQUIRED) &&
		    (*mstr(e, m) == NULL || **mstr(e, m) == '\0'))
			xasprintf(&r, "%s is required", m->name);
		else if (m->type == CONF_T_INT && (x < m->min || x > m->max))
			r = range_msg(x, m->min, m->max);
		else if ((m->flags & M_TLSPOLICY) && *mstr(e, m) != NULL &&
		    tls_policy_parse(*mstr(e, m)) == -1)
			r = tls_policy_msg(m->name, *mstr(e, m));
		if (r == NULL)
			continue;
		xasprintf(&msg, "entry %zu: %s", i, r);
		free(r);
		return msg;
	}
	return NULL;
}

/* What is wrong with a list of groups, or NULL. */
static char *
group_check(enum conf_type type, const void *f)
{
	const struct conf_group	*g;
	char			*v, *msg;
	size_t			 i, n;

	g = group_get(type, f, &v, &n);
	for (i = 0; i < n; i++)
		if ((msg = elem_check(g, v + i * g->size, i + 1)) != NULL)
			return msg;
	return NULL;
}

/* What is wrong with an integer list: an item out of bounds. */
static char *
intlist_check(const struct conf_key *k, const struct conf_intlist *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		if (l->v[i] < k->min || l->v[i] > k->max)
			return range_msg(l->v[i], k->min, k->max);
	if (k->offset == offsetof(struct conf, retries) && l->n == 0)
		return xstrdup("needs at least one interval");
	return NULL;
}

/* An address range list ("a/n;b/m"): parsed as smtpd will parse it. */
static char *
range_check(const char *spec)
{
	struct netaddr_range	 r;
	char			*cause = NULL;

	if (spec == NULL || *spec == '\0')
		return NULL;
	memset(&r, 0, sizeof(r));
	if (netaddr_range_parse(&r, spec, &cause) == -1)
		return cause;
	netaddr_range_clear(&r);
	return NULL;
}

/* What is wrong with a string or string list key: checks of single keys. */
static char *
str_check(const struct conf_key *k, const void *f)
{
	const struct conf_strlist	*l = f;
	const char			*s;
	char				*msg, *q;
	size_t				 i;

	if (k->offset == offsetof(struct conf, log_level) &&
	    (s = *(char *const *)f) != NULL && log_level_from_name(s) == -1) {
		q = quote(s);
		xasprintf(&msg, "%s is not one of err, warning, info, debug",
		    q);
		free(q);
		return msg;
	}
	if (k->offset == offsetof(struct conf, smtp_tls_policy) &&
	    (s = *(char *const *)f) != NULL && tls_policy_parse(s) == -1)
		return tls_policy_msg(NULL, s);
	if (k->offset == offsetof(struct conf, smtp_range) ||
	    k->offset == offsetof(struct conf, smtp_proxy))
		return range_check(*(char *const *)f);
	if (k->offset != offsetof(struct conf, resolver_nameservers))
		return NULL;
	for (i = 0; i < l->n; i++) {
		if (nameserver_valid(l->v[i]))
			continue;
		q = quote(l->v[i]);
		xasprintf(&msg, "%s is not ip, ip:port or [ipv6]:port", q);
		free(q);
		return msg;
	}
	return NULL;
}

/* What is wrong with a key's value, as an allocated message; NULL: fine. */
static char *
conf_check(const struct conf_key *k, const void *f)
{
	long long	 v;
	char		*msg;

	switch (k->type) {
	case CONF_T_INT:
		v = *(const int *)f;
		break;
	case CONF_T_SIZE:
		if (*(const uint64_t *)f > (uint64_t)k->max) {
			xasprintf(&msg, "%llu is out of range %lld..%lld",
			    (unsigned long long)*(const uint64_t *)f, k->min,
			    k->max);
			return msg;
		}
		v = *(const uint64_t *)f;
		break;
	case CONF_T_INTLIST:
		return intlist_check(k, f);
	case CONF_T_SMARTHOSTS:
	case CONF_T_ROUTES:
		return group_check(k->type, f);
	default:
		return str_check(k, f);
	}
	if (v < k->min || v > k->max)
		return range_msg(v, k->min, k->max);
	return NULL;
}

/* An integer setting within [min, max]. */
static int
get_int(const struct conf_ctx *ctx, const config_setting_t *s,
    long long min, long long max, long long *v)
{
	int	 t = config_setting_type(s);

	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
		return conf_err(ctx, s, "expected an integer");
	*v = config_setting_get_int64(s);
	if (*v < min || *v > max)
		return conf_err(ctx, s, "%lld is out of range %lld..%lld",
		    *v, min, max);
	return 0;
}

static int
set_str(const struct conf_ctx *ctx, const config_setting_t *s, char **f)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return conf_err(ctx, s, "expected a string");
	*f = xstrdup(config_setting_get_string(s));
	return 0;
}

static int
set_bool(const struct conf_ctx *ctx, const config_setting_t *s, int *f)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return conf_err(ctx, s, "expected true or false");
	*f = config_setting_get_bool(s);
	return 0;
}

/* A size: an integer number of bytes or a string such as "100MB". */
static int
set_size(const struct conf_ctx *ctx, const struct conf_key *k,
    const config_setting_t *s, uint64_t *f)
{
	long long	 v;
	char		*q;
	int		 r;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		if (config_setting_type(s) != CONFIG_TYPE_INT &&
		    config_setting_type(s) != CONFIG_TYPE_INT64)
			return conf_err(ctx, s, "expected a size: bytes, or "
			    "a string such as \"100MB\"");
		if (get_int(ctx, s, k->min, k->max, &v) == -1)
			return -1;
		*f = v;
		return 0;
	}
	if (conf_parse_size(config_setting_get_string(s), f) == -1) {
		q = quote(config_setting_get_string(s));
		r = conf_err(ctx, s, "%s is not a size: bytes, or a number "
		    "with KB, MB or GB", q);
		free(q);
		return r;
	}
	if (*f < (uint64_t)k->min || *f > (uint64_t)k->max)
		return conf_err(ctx, s, "%llu is out of range %lld..%lld",
		    (unsigned long long)*f, k->min, k->max);
	return 0;
}

/* Integers from "25, 587": each item trimmed, bounds checked. */
static int
intlist_from_str(const struct conf_ctx *ctx, const struct conf_key *k,
    const config_setting_t *s, struct conf_intlist *l)
{
	char		*dup, *p, *item, *end, *q;
	long long	 v;
	int		 r = 0;

	dup = p = xstrdup(config_setting_get_string(s));
	if (strspn(p, " \t") == strlen(p))
		p = NULL;
	while (r == 0 && (item = strsep(&p, ",")) != NULL) {
		item += strspn(item, " \t");
		errno = 0;
		v = strtoll(item, &end, 10);
		end += strspn(end, " \t");
		if (end == item || *end != '\0' || errno != 0) {
			q = quote(item);
			r = conf_err(ctx, s, "%s is not an integer", q);
			free(q);
		} else if (v < k->min || v > k->max)
			r = conf_err(ctx, s, "%lld is out of range %lld..%lld",
			    v, k->min, k->max);
		else {
			l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
			l->v[l->n++] = v;
		}
	}
	free(dup);
	return r;
}

/* One integer, a list or array of them, or a string "25,587". */
static int
set_intlist(const struct conf_ctx *ctx, const struct conf_key *k,
    const config_setting_t *s, struct conf_intlist *l)
{
	long long	 v;
	int		 i, n;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		return intlist_from_str(ctx, k, s, l);
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		if (get_int(ctx, s, k->min, k->max, &v) == -1)
			return -1;
		l->v = xcalloc(1, sizeof(*l->v));
		l->v[l->n++] = v;
		return 0;
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		break;
	default:
		return conf_err(ctx, s, "expected an integer or a list of "
		    "integers");
	}
	if ((n = config_setting_length(s)) > 0)
		l->v = xcalloc(n, sizeof(*l->v));
	for (i = 0; i < n; i++) {
		if (get_int(ctx, config_setting_get_elem(s, i), k->min, k->max,
		    &v) == -1)
			return -1;
		l->v[l->n++] = v;
	}
	return 0;
}

/* One string, or a list or array of strings. */
static int
set_strlist(const struct conf_ctx *ctx, const config_setting_t *s,
    struct conf_strlist *l)
{
	const config_setting_t	*e;
	int			 i, n;

	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		l->v = xcalloc(1, sizeof(*l->v));
		l->v[l->n++] = xstrdup(config_setting_get_string(s));
		return 0;
	}
	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return conf_err(ctx, s, "expected a string or a list of "
		    "strings");
	if ((n = config_setting_length(s)) > 0)
		l->v = xcalloc(n, sizeof(*l->v));
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(s, i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return conf_err(ctx, e, "expected a string or a list "
			    "of strings");
		l->v[l->n++] = xstrdup(config_setting_get_string(e));
	}
	return 0;
}

static const struct conf_member *
member_find(const struct conf_group *g, const char *name)
{
	size_t	 i;

	for (i = 0; i < g->nmembers; i++)
		if (strcmp(g->members[i].name, name) == 0)
			return &g->members[i];
	return NULL;
}

/* Read one group { name = value; ... } into elem, entry i (from 1). */
static int
set_member_group(const struct conf_ctx *ctx, const struct conf_group *g,
    const config_setting_t *grp, char *elem, size_t i)
{
	const struct conf_member	*m;
	const config_setting_t		*s;
	long long			 v;
	int				 j, t;

	for (j = 0; j < (int)g->nmembers; j++)
		if (g->members[j].type != CONF_T_STR)
			*mint(elem, &g->members[j]) = g->members[j].def;
	for (j = 0; j < config_setting_length(grp); j++) {
		s = config_setting_get_elem(grp, j);
		if ((m = member_find(g, config_setting_name(s))) == NULL)
			return conf_err(ctx, s, "entry %zu: unknown member "
			    "\"%s\"", i, config_setting_name(s));
		t = config_setting_type(s);
		if (m->type == CONF_T_STR && t == CONFIG_TYPE_STRING)
			*mstr(elem, m) = xstrdup(config_setting_get_string(s));
		else if (m->type == CONF_T_BOOL && t == CONFIG_TYPE_BOOL)
			*mint(elem, m) = config_setting_get_bool(s);
		else if (m->type == CONF_T_INT &&
		    (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)) {
			v = config_setting_get_int64(s);
			if (v < m->min || v > m->max)
				return conf_err(ctx, s, "entry %zu: %s: %lld "
				    "is out of range %lld..%lld", i, m->name,
				    v, m->min, m->max);
			*mint(elem, m) = v;
		} else
			return conf_err(ctx, s, "entry %zu: %s: expected %s", i,
			    m->name, m->type == CONF_T_STR ? "a string" :
			    m->type == CONF_T_INT ? "an integer" :
			    "true or false");
	}
	return 0;
}

/* A list of groups, or one group, into a SMARTHOSTS or ROUTES field. */
static int
set_groups(const struct conf_ctx *ctx, const struct conf_key *k,
    const config_setting_t *s, void *f)
{
	const struct conf_group	*g;
	const config_setting_t	*e;
	char			*v, *msg;
	size_t			 i, n;
	int			 one, r;

	one = config_setting_is_group(s);
	if (!one && !config_setting_is_list(s) &&
	    !(config_setting_is_array(s) && config_setting_length(s) == 0))
		return conf_err(ctx, s, "expected a list of groups ( { ... } )");
	n = one ? 1 : (size_t)config_setting_length(s);
	g = group_get(k->type, f, &v, &i);
	v = n > 0 ? xcalloc(n, g->size) : NULL;
	group_put(k->type, f, v, n);
	for (i = 0; i < n; i++) {
		e = one ? s : config_setting_get_elem(s, i);
		if (!config_setting_is_group(e))
			return conf_err(ctx, e, "entry %zu: expected a group "
			    "{ ... }", i + 1);
		if (set_member_group(ctx, g, e, v + i * g->size, i + 1) == -1)
			return -1;
		if ((msg = elem_check(g, v + i * g->size, i + 1)) != NULL) {
			r = conf_err(ctx, e, "%s", msg);
			free(msg);
			return r;
		}
	}
	return 0;
}

/* Read setting s as key k into dst, a scratch conf with k's field zero. */
static int
conf_set(const struct conf_ctx *ctx, const struct conf_key *k,
    const config_setting_t *s, struct conf *dst)
{
	void		*f = field(dst, k);
	char		*msg;
	long long	 v;
	int		 r = -1;

	switch (k->type) {
	case CONF_T_STR:
		r = set_str(ctx, s, f);
		break;
	case CONF_T_INT:
		if ((r = get_int(ctx, s, k->min, k->max, &v)) == 0)
			*(int *)f = v;
		break;
	case CONF_T_BOOL:
		r = set_bool(ctx, s, f);
		break;
	case CONF_T_SIZE:
		r = set_size(ctx, k, s, f);
		break;
	case CONF_T_INTLIST:
		r = set_intlist(ctx, k, s, f);
		break;
	case CONF_T_STRLIST:
		r = set_strlist(ctx, s, f);
		break;
	case CONF_T_SMARTHOSTS:
	case CONF_T_ROUTES:
		r = set_groups(ctx, k, s, f);
		break;
	}
	if (r == 0 && (msg = conf_check(k, f)) != NULL) {
		r = conf_err(ctx, s, "%s", msg);
		free(msg);
	}
	return r;
}

/* The end of the number at p; *isint is 0 for a float, *hex for 0x. */
static const char *
scan_number(const char *p, int *isint, int *hex)
{
	const char	*q = p;

	*isint = 1;
	*hex = 0;
	if (*q == '+' || *q == '-')
		q++;
	if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X') &&
	    isxdigit((unsigned char)q[2])) {
		*hex = 1;
		for (q += 2; isxdigit((unsigned char)*q); q++)
			;
		return q;
	}
	for (; isdigit((unsigned char)*q) || *q == '.' || *q == 'e' ||
	    *q == 'E' || ((*q == '+' || *q == '-') &&
	    (q[-1] == 'e' || q[-1] == 'E')); q++)
		if (!isdigit((unsigned char)*q))
			*isint = 0;
	return q;
}

/* The end of the comment or string at p, counting newlines in *line. */
static const char *
scan_skip(const char *p, int *line)
{
	if (*p == '#' || (p[0] == '/' && p[1] == '/'))
		return p + strcspn(p, "\n");
	if (p[0] == '/' && p[1] == '*') {
		for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
			if (*p == '\n')
				(*line)++;
		return *p == '\0' ? p : p + 2;
	}
	/* a string */
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		if (*p == '\n')
			(*line)++;
	}
	return *p == '\0' ? p : p + 1;
}

/*
 * Copy libconfig text, adding an L suffix to integer literals that need
 * 64 bits.  NULL with *line and *err set for @include or a literal that
 * fits no integer.
 */
static char *
conf_widen(const char *text, int *line, const char **err)
{
	struct buf	 b;
	const char	*p = text, *q;
	long long	 v;
	int		 isint, hex;

	memset(&b, 0, sizeof(b));
	for (*line = 1; *p != '\0'; p = q) {
		q = p + 1;
		if (*p == '\n')
			(*line)++;
		else if (*p == '#' || *p == '"' ||
		    (*p == '/' && (p[1] == '/' || p[1] == '*')))
			q = scan_skip(p, line);
		else if (isalpha((unsigned char)*p) || *p == '*')
			q = p + strspn(p, "abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*");
		else if (*p == '@') {
			*err = "@include is not supported";
			goto fail;
		} else if (isdigit((unsigned char)*p) ||
		    (*p == '.' && isdigit((unsigned char)p[1])) ||
		    ((*p == '-' || *p == '+') &&
		    (isdigit((unsigned char)p[1]) || p[1] == '.'))) {
			q = scan_number(p, &isint, &hex);
			if (isint) {
				errno = 0;
				v = strtoll(p, NULL, hex ? 16 : 10);
				if (errno != 0) {
					*err = "integer out of range";
					goto fail;
				}
				buf_add(&b, p, q - p);
				p = q;
				if (*q != 'L' && (v > INT_MAX || v < INT_MIN))
					buf_add(&b, "L", 1);
			}
		}
		buf_add(&b, p, q - p);
	}
	return buf_take(&b);
fail:
	xfreezero(b.p, b.cap);
	return NULL;
}

/* Parse libconfig text into cf; errors read "FILE:LINE: what", or "what". */
static int
conf_parse(config_t *cf, const char *text, const char *file, char **cause)
{
	const char	*err = "";
	char		*wide;
	int		 line, ok;

	if ((wide = conf_widen(text, &line, &err)) == NULL) {
		if (file == NULL)
			*cause = xstrdup(err);
		else
			xasprintf(cause, "%s:%d: %s", file, line, err);
		return -1;
	}
	ok = config_read_string(cf, wide);
	xfreestr(wide);
	if (ok)
		return 0;
	if (file == NULL)
		*cause = xstrdup(config_error_text(cf));
	else
		xasprintf(cause, "%s:%d: %s", file, config_error_line(cf),
		    config_error_text(cf));
	return -1;
}

/* Apply every setting of a parsed config to c, all or nothing. */
static int
conf_apply(struct conf *c, const config_t *cf, const char *file,
    char **cause)
{
	struct conf_ctx		 ctx = { file, NULL, cause };
	const config_setting_t	*root = config_root_setting(cf), *s;
	const struct conf_key	*k, **seen;
	struct conf		*tmp = xcalloc(1, sizeof(*tmp));
	int			 i, ret = -1;
	size_t			 j, nseen = 0;

	seen = xcalloc(conf_table_len, sizeof(*seen));
	for (i = 0; i < config_setting_length(root); i++) {
		s = config_setting_get_elem(root, i);
		ctx.key = config_setting_name(s);
		if ((k = conf_find(ctx.key)) == NULL) {
			conf_err(&ctx, s, "unknown key");
			goto out;
		}
		k = conf_primary(k);
		for (j = 0; j < nseen; j++)
			if (seen[j] == k)
				break;
		if (j < nseen) {
			conf_err(&ctx, s, "set twice (also as %s)", k->name);
			goto out;
		}
		seen[nseen++] = k;
		if (conf_set(&ctx, k, s, tmp) == -1)
			goto out;
	}
	for (j = 0; j < nseen; j++)
		field_swap(c, tmp, seen[j]);
	ret = 0;
out:
	conf_free(tmp);
	free(seen);
	return ret;
}

int
conf_load_text(struct conf *c, const char *text, char **cause)
{
	config_t	 cf;
	int		 ret = -1;

	config_init(&cf);
	if (conf_parse(&cf, text, TEXT_FILE, cause) == 0)
		ret = conf_apply(c, &cf, TEXT_FILE, cause);
	config_destroy(&cf);
	return ret;
}

/* The whole file as a string; it may hold secrets, free with xfreestr. */
static char *
read_text(const char *path, char **cause)
{
	struct buf	 b;
	FILE		*fp;
	char		 chunk[4096];
	size_t		 n;

	if ((fp = fopen(path, "r")) == NULL) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return NULL;
	}
	memset(&b, 0, sizeof(b));
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_add(&b, chunk, n);
	explicit_bzero(chunk, sizeof(chunk));
	if (ferror(fp) || (b.p != NULL && strlen(b.p) != b.len)) {
		xasprintf(cause, "%s: %s", path, ferror(fp) ?
		    strerror(errno) : "contains a NUL byte");
		xfreezero(b.p, b.cap);
		fclose(fp);
		return NULL;
	}
	fclose(fp);
	return buf_take(&b);
}

int
conf_load_file(struct conf *c, const char *path, char **cause)
{
	config_t	 cf;
	char		*text;
	int		 ret = -1;

	if ((text = read_text(path, cause)) == NULL)
		return -1;
	config_init(&cf);
	if (conf_parse(&cf, text, path, cause) == 0)
		ret = conf_apply(c, &cf, path, cause);
	config_destroy(&cf);
	xfreestr(text);
	return ret;
}

/* "true", "yes", "on", "1" or their opposites: 1 or 0, else -1. */
static int
bool_word(const char *s)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t	 i;

	for (i = 0; i < NITEMS(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* Parse "x = VALUE;" into cf; 0 only if that makes the one setting x. */
static int
parse_value(config_t *cf, const char *value, char **cause)
{
	const config_setting_t	*root;
	char			*text;
	int			 r;

	xasprintf(&text, "x = %s\n;", value);
	r = conf_parse(cf, text, NULL, cause);
	xfreestr(text);
	root = config_root_setting(cf);
	if (r == 0 && (config_setting_length(root) != 1 ||
	    config_lookup(cf, "x") == NULL)) {
		*cause = xstrdup("not a single value");
		r = -1;
	}
	if (r == -1) {
		config_destroy(cf);
		config_init(cf);
	}
	return r;
}

/* "a, b" as an array of the trimmed items; "" is an empty array. */
static void
strlist_split(config_setting_t *arr, const char *value)
{
	char	*dup, *p, *item, *end;

	dup = p = xstrdup(value);
	if (strspn(p, " \t") == strlen(p))
		p = NULL;
	while ((item = strsep(&p, ",")) != NULL) {
		item += strspn(item, " \t");
		for (end = item + strlen(item); end > item &&
		    (end[-1] == ' ' || end[-1] == '\t'); end--)
			;
		*end = '\0';
		config_setting_set_string_elem(arr, -1, item);
	}
	free(dup);
}

/* Turn an override's text into setting "x" of cf, by k's type. */
static int
override_setting(config_t *cf, const struct conf_key *k, const char *value,
    const struct conf_ctx *ctx)
{
	config_setting_t	*root = config_root_setting(cf), *s;
	char			*err = NULL;
	int			 b, r;

	if (k->type == CONF_T_STR) {
		s = config_setting_add(root, "x", CONFIG_TYPE_STRING);
		config_setting_set_string(s, value);
		return 0;
	}
	if (k->type == CONF_T_BOOL) {
		if ((b = bool_word(value)) == -1)
			return conf_err(ctx, NULL, "expected true or false, "
			    "yes or no, 1 or 0");
		s = config_setting_add(root, "x", CONFIG_TYPE_BOOL);
		config_setting_set_bool(s, b);
		return 0;
	}
	if (parse_value(cf, value, &err) == 0) {
		s = config_lookup(cf, "x");
		if (k->type != CONF_T_STRLIST ||
		    config_setting_type(s) == CONFIG_TYPE_STRING ||
		    config_setting_is_aggregate(s))
			return 0;
		config_setting_remove(config_root_setting(cf), "x");
	}
	/* parse_value may have made a new root */
	root = config_root_setting(cf);
	if (k->type == CONF_T_SMARTHOSTS || k->type == CONF_T_ROUTES) {
		r = conf_err(ctx, NULL, "%s", err);
		free(err);
		return r;
	}
	free(err);
	/* not libconfig syntax: "100MB", "25,587", "a,b" or a bare word */
	if (k->type == CONF_T_STRLIST) {
		s = config_setting_add(root, "x", CONFIG_TYPE_ARRAY);
		strlist_split(s, value);
	} else {
		s = config_setting_add(root, "x", CONFIG_TYPE_STRING);
		config_setting_set_string(s, value);
	}
	return 0;
}

/* Set one key from text, all or nothing; ctx->file NULL for an override. */
static int
conf_set_text(struct conf *c, const struct conf_key *k, const char *value,
    const struct conf_ctx *ctx)
{
	struct conf	*tmp;
	config_t	 cf;
	int		 ret = -1;

	config_init(&cf);
	if (override_setting(&cf, k, value, ctx) == 0) {
		tmp = xcalloc(1, sizeof(*tmp));
		ret = conf_set(ctx, k, config_lookup(&cf, "x"), tmp);
		if (ret == 0)
			field_swap(c, tmp, k);
		conf_free(tmp);
	}
	config_destroy(&cf);
	return ret;
}

int
conf_override(struct conf *c, const char *key, const char *value,
    char **cause)
{
	struct conf_ctx		 ctx = { NULL, key, cause };
	const struct conf_key	*k;

	if ((k = conf_find(key)) == NULL)
		return conf_err(&ctx, NULL, "unknown key");
	return conf_set_text(c, conf_primary(k), value, &ctx);
}

/* Every key at its default, read from the table through the parser. */
struct conf *
conf_new(void)
{
	struct conf		*c = xcalloc(1, sizeof(*c));
	const struct conf_key	*k;
	char			*cause = NULL, *text;
	size_t			 i;

	for (i = 0; i < conf_table_len; i++) {
		k = &conf_table[i];
		if (k->flags & CONF_F_ALIAS)
			continue;
		if (k->def == NULL)
			log_panic("conf_new: %s has no default", k->name);
		xasprintf(&text, "%s = %s;", k->name, k->def);
		if (conf_load_text(c, text, &cause) == -1)
			log_panic("default of %s: %s", k->name, cause);
		free(text);
	}
	return c;
}

/* Append the value of an integer; 64-bit ones carry libconfig's L. */
static void
fmt_int(struct buf *b, long long v, enum fmt_mode mode)
{
	buf_printf(b, "%lld%s", v, mode == FMT_SLICE &&
	    (v > INT_MAX || v < INT_MIN) ? "L" : "");
}

/* Append a list of groups as ( { name = value; ... }, ... ). */
static void
fmt_groups(struct buf *b, const struct conf_key *k, const void *f,
    enum fmt_mode mode, unsigned procmask)
{
	const struct conf_group		*g;
	const struct conf_member	*m;
	char				*v, *e, *s;
	size_t				 i, j, n;

	g = group_get(k->type, f, &v, &n);
	buf_puts(b, n == 0 ? "()" : "(");
	for (i = 0; i < n; i++) {
		e = v + i * g->size;
		buf_puts(b, i == 0 ? " {" : ", {");
		for (j = 0; j < g->nmembers; j++) {
			m = &g->members[j];
			s = m->type == CONF_T_STR ? *mstr(e, m) : NULL;
			if (m->type == CONF_T_STR && s == NULL)
				continue;
			if ((m->flags & M_SECRET) && mode == FMT_SLICE &&
			    !(procmask & SECRET_PROCS))
				continue;
			buf_printf(b, " %s = ", m->name);
			if (m->type == CONF_T_BOOL)
				buf_puts(b, *mint(e, m) ? "true" : "false");
			else if (m->type == CONF_T_INT)
				buf_printf(b, "%d", *mint(e, m));
			else if ((m->flags & M_SECRET) && mode == FMT_PRINT &&
			    *s != '\0')
				buf_puts(b, SECRET_MASK);
			else
				fmt_str(b, s);
			buf_puts(b, ";");
		}
		buf_puts(b, " }");
	}
	if (n > 0)
		buf_puts(b, " )");
}

/* Append a key's value in libconfig syntax. */
static void
fmt_value(struct buf *b, const struct conf_key *k, const void *f,
    enum fmt_mode mode, unsigned procmask)
{
	const struct conf_intlist	*il = f;
	const struct conf_strlist	*sl = f;
	const char			*s;
	size_t				 i;

	switch (k->type) {
	case CONF_T_STR:
		s = *(char *const *)f;
		if ((k->flags & CONF_F_SECRET) && mode == FMT_PRINT &&
		    *s != '\0')
			buf_puts(b, SECRET_MASK);
		else
			fmt_str(b, s);
		break;
	case CONF_T_INT:
		fmt_int(b, *(const int *)f, mode);
		break;
	case CONF_T_BOOL:
		buf_puts(b, *(const int *)f ? "true" : "false");
		break;
	case CONF_T_SIZE:
		fmt_int(b, (long long)*(const uint64_t *)f, mode);
		break;
	case CONF_T_INTLIST:
		buf_puts(b, "[");
		for (i = 0; i < il->n; i++) {
			buf_puts(b, i == 0 ? "" : ", ");
			fmt_int(b, il->v[i], mode);
		}
		buf_puts(b, "]");
		break;
	case CONF_T_STRLIST:
		buf_puts(b, "[");
		for (i = 0; i < sl->n; i++) {
			buf_puts(b, i == 0 ? "" : ", ");
			fmt_str(b, sl->v[i]);
		}
		buf_puts(b, "]");
		break;
	case CONF_T_SMARTHOSTS:
	case CONF_T_ROUTES:
		fmt_groups(b, k, f, mode, procmask);
		break;
	}
}

char *
conf_slice(const struct conf *c, int proc)
{
	struct buf		 b;
	const struct conf_key	*k;
	unsigned		 mask;
	size_t			 i;

	memset(&b, 0, sizeof(b));
	mask = proc >= 0 && proc < PROC_COUNT ? 1u << proc : 0;
	for (i = 0; i < conf_table_len; i++) {
		k = &conf_table[i];
		if ((k->flags & CONF_F_ALIAS) || !(k->procs & mask))
			continue;
		buf_printf(&b, "%s = ", k->name);
		fmt_value(&b, k, cfield(c, k), FMT_SLICE, mask);
		buf_puts(&b, ";\n");
	}
	return buf_take(&b);
}

void
conf_print(const struct conf *c, FILE *fp)
{
	struct buf		 b;
	const struct conf_key	*k;
	char			*text;
	size_t			 i;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < conf_table_len; i++) {
		k = &conf_table[i];
		if (k->flags & CONF_F_ALIAS)
			continue;
		buf_printf(&b, "%s = ", k->name);
		fmt_value(&b, k, cfield(c, k), FMT_PRINT, 0);
		buf_puts(&b, "\n");
	}
	text = buf_take(&b);
	fputs(text, fp);
	free(text);
}

static int
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Whether two lists of groups hold the same entries. */
static int
groups_eq(enum conf_type type, const void *fa, const void *fb)
{
	const struct conf_group		*g;
	const struct conf_member	*m;
	char				*va, *vb, *ea, *eb;
	size_t				 i, j, na, nb;

	g = group_get(type, fa, &va, &na);
	group_get(type, fb, &vb, &nb);
	if (na != nb)
		return 0;
	for (i = 0; i < na; i++) {
		ea = va + i * g->size;
		eb = vb + i * g->size;
		for (j = 0; j < g->nmembers; j++) {
			m = &g->members[j];
			if (m->type == CONF_T_STR ?
			    !str_eq(*mstr(ea, m), *mstr(eb, m)) :
			    *mint(ea, m) != *mint(eb, m))
				return 0;
		}
	}
	return 1;
}

/* Whether a key has the same value in two confs. */
static int
field_eq(const struct conf_key *k, const void *a, const void *b)
{
	const struct conf_intlist	*ia = a, *ib = b;
	const struct conf_strlist	*sa = a, *sb = b;
	size_t				 i;

	switch (k->type) {
	case CONF_T_STR:
		return str_eq(*(char *const *)a, *(char *const *)b);
	case CONF_T_INTLIST:
		return ia->n == ib->n && (ia->n == 0 ||
		    memcmp(ia->v, ib->v, ia->n * sizeof(*ia->v)) == 0);
	case CONF_T_STRLIST:
		if (sa->n != sb->n)
			return 0;
		for (i = 0; i < sa->n; i++)
			if (!str_eq(sa->v[i], sb->v[i]))
				return 0;
		return 1;
	case CONF_T_SMARTHOSTS:
	case CONF_T_ROUTES:
		return groups_eq(k->type, a, b);
	default:
		return memcmp(a, b, field_size(k->type)) == 0;
	}
}

/*
 * A reload: every CONF_F_RESTART key keeps its running value, swapped
 * from "old" into "new" (old is about to be freed), so that the running
 * config says what really runs.  Returns the names of such keys whose
 * value changed, ", "-separated and allocated, or NULL when none did.
 */
char *
conf_keep_restart(struct conf *new, struct conf *old)
{
	const struct conf_key	*k;
	struct buf		 b;
	size_t			 i;
	int			 n = 0;

	memset(&b, 0, sizeof(b));
	for (i = 0; i < conf_table_len; i++) {
		k = &conf_table[i];
		if ((k->flags & CONF_F_ALIAS) || !(k->flags & CONF_F_RESTART))
			continue;
		if (!field_eq(k, cfield(new, k), cfield(old, k)))
			buf_printf(&b, "%s%s", n++ > 0 ? ", " : "", k->name);
		field_swap(new, old, k);
	}
	if (n == 0) {
		free(buf_take(&b));
		return NULL;
	}
	return buf_take(&b);
}

int
conf_validate(struct conf *c, char **cause)
{
	const struct conf_key	*k;
	char			*msg;
	size_t			 i;

	for (i = 0; i < conf_table_len; i++) {
		k = &conf_table[i];
		if (k->flags & CONF_F_ALIAS)
			continue;
		if ((msg = conf_check(k, cfield(c, k))) != NULL) {
			xasprintf(cause, "%s: %s", k->name, msg);
			free(msg);
			return -1;
		}
	}
	if (c->smtp_port.n == 0 && c->smtp_secure_port.n == 0) {
		xasprintf(cause, "smtp-port: no port to listen on; set "
		    "smtp-port or smtp-secure-port");
		return -1;
	}
	if (c->smtp_secure_port.n > 0 && EMPTY(c->smtp_certificate)) {
		xasprintf(cause, "smtp-secure-port: needs smtp-certificate");
		return -1;
	}
	if (!EMPTY(c->smtp_key) && EMPTY(c->smtp_certificate)) {
		xasprintf(cause, "smtp-key: needs smtp-certificate");
		return -1;
	}
	if (!EMPTY(c->smtp_username) && EMPTY(c->smtp_password)) {
		xasprintf(cause, "smtp-username: needs smtp-password");
		return -1;
	}
	return 0;
}
