/*
 * mtactl's human output: each command's JSON answer as an aligned table
 * or a few lines.  Times are shown in local time, ages and waits in the
 * largest two units ("3h05m").  --json bypasses all of this.
 */
#include <json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtactl.h"
#include "xmalloc.h"

struct table {
	size_t		  ncol;
	char		**cells;	/* nrows x ncol, row 0 the head */
	size_t		  nrows;
	char		 *right;	/* 'r' per right-aligned column */
};

struct table *
table_new(size_t ncol, const char *const *head, const char *right)
{
	struct table	*t;

	t = xcalloc(1, sizeof(*t));
	t->ncol = ncol;
	t->right = xstrdup(right);
	table_row(t, head);
	return t;
}

void
table_row(struct table *t, const char *const *cells)
{
	size_t	 i;

	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncol,
	    sizeof(*t->cells));
	for (i = 0; i < t->ncol; i++)
		t->cells[t->nrows * t->ncol + i] = xstrdup(cells[i]);
	t->nrows++;
}

/* Print with each column as wide as its widest cell; frees t. */
void
table_print(struct table *t)
{
	size_t	*w, i, j, len;
	char	*c;

	w = xcalloc(t->ncol, sizeof(*w));
	for (i = 0; i < t->nrows * t->ncol; i++)
		if ((len = strlen(t->cells[i])) > w[i % t->ncol])
			w[i % t->ncol] = len;
	for (i = 0; i < t->nrows; i++) {
		for (j = 0; j < t->ncol; j++) {
			c = t->cells[i * t->ncol + j];
			if (j + 1 == t->ncol && t->right[j] != 'r')
				printf("%s", c);
			else if (t->right[j] == 'r')
				printf("%*s", (int)w[j], c);
			else
				printf("%-*s", (int)w[j], c);
			printf(j + 1 == t->ncol ? "\n" : "  ");
		}
	}
	for (i = 0; i < t->nrows * t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
	free(w);
}

static int64_t
jint(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return 0;
	return json_object_get_int64(v);
}

static const char *
jstr(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return "";
	return json_object_get_string(v);
}

static int
jnull(struct json_object *o, const char *key)
{
	struct json_object	*v;

	return !json_object_object_get_ex(o, key, &v) || v == NULL;
}

static struct json_object *
jarray(struct json_object *o, const char *key)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/* "45s", "12m05s", "3h05m", "2d04h". */
static const char *
fmt_age(char *buf, size_t len, int64_t s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(buf, len, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%lldm%02llds", (long long)s / 60,
		    (long long)s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lldh%02lldm", (long long)s / 3600,
		    (long long)s % 3600 / 60);
	else
		snprintf(buf, len, "%lldd%02lldh", (long long)s / 86400,
		    (long long)s % 86400 / 3600);
	return buf;
}

static const char *
fmt_time(char *buf, size_t len, int64_t t)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* A due time: "-" (none), "now" (due), or "in 5m00s". */
static const char *
fmt_next(char *buf, size_t len, struct json_object *o, const char *key)
{
	char	 age[32];
	int64_t	 t, now = time(NULL);

	if (jnull(o, key))
		return "-";
	if ((t = jint(o, key)) <= now)
		return "now";
	snprintf(buf, len, "in %s", fmt_age(age, sizeof(age), t - now));
	return buf;
}

static const char *
fmt_int(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%lld", (long long)v);
	return buf;
}

/* "showing 1-1000 of 5321 ..." when a listing is not complete. */
static void
print_paging(struct json_object *o, const char *what)
{
	int64_t	 total = jint(o, "total"), shown = jint(o, "shown");
	int64_t	 offset = jint(o, "offset");

	if (shown >= total && offset == 0)
		return;
	printf("(showing %lld-%lld of %lld %s%s; see --limit and --offset)\n",
	    shown > 0 ? (long long)offset + 1 : 0LL,
	    (long long)(offset + shown), (long long)total, what,
	    jint(o, "truncated") ? ", cut to keep the answer small" : "");
}

static void
print_counters(struct json_object *c)
{
	static const char *keys[] = { "received", "delivered", "deferred",
	    "bounced", "connections-in", "connections-out" };
	struct json_object	*miss;
	char			 t[64], age[32];
	size_t			 i, n;

	printf("%-16s %s (up %s)\n", "since",
	    fmt_time(t, sizeof(t), jint(c, "since")),
	    fmt_age(age, sizeof(age), jint(c, "uptime")));
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		printf("%-16s %lld\n", keys[i], (long long)jint(c, keys[i]));
	if ((miss = jarray(c, "missing")) != NULL &&
	    (n = json_object_array_length(miss)) > 0) {
		printf("(no answer from:");
		for (i = 0; i < n; i++)
			printf(" %s", json_object_get_string(
			    json_object_array_get_idx(miss, i)));
		printf(")\n");
	}
}

static int
print_status(struct json_object *o)
{
	static const char *head[] = { "PROCESS", "INSTANCE", "PID", "READY",
	    "RESTARTS" };
	struct json_object	*procs, *p, *c;
	struct table		*t;
	char			 age[32], inst[16], pid[16], rs[16];
	const char		*row[5];
	size_t			 i, n;

	if ((procs = jarray(o, "processes")) == NULL)
		return -1;
	printf("mtad pid %lld, up %s\n", (long long)jint(o, "pid"),
	    fmt_age(age, sizeof(age), jint(o, "uptime")));
	t = table_new(5, head, "-rrlr");
	n = json_object_array_length(procs);
	for (i = 0; i < n; i++) {
		p = json_object_array_get_idx(procs, i);
		row[0] = jstr(p, "name");
		row[1] = fmt_int(inst, sizeof(inst), jint(p, "instance"));
		row[2] = fmt_int(pid, sizeof(pid), jint(p, "pid"));
		row[3] = jint(p, "ready") ? "yes" : "no";
		row[4] = fmt_int(rs, sizeof(rs), jint(p, "restarts"));
		table_row(t, row);
	}
	table_print(t);
	if (json_object_object_get_ex(o, "counters", &c)) {
		printf("\n");
		print_counters(c);
	}
	return 0;
}

static int
print_queue(struct json_object *o)
{
	static const char *head[] = { "QUEUE", "MESSAGES", "RECIPIENTS",
	    "ACTIVE", "DEFERRED", "HELD", "OLDEST", "NEXT", "STATE" };
	struct json_object	*rows, *r, *tot;
	struct table		*t;
	char			 c[6][24], age[32], next[40];
	const char		*row[9];
	size_t			 i, n;

	if ((rows = jarray(o, "queues")) == NULL)
		return -1;
	t = table_new(9, head, "-rrrrrrrl");
	n = json_object_array_length(rows);
	for (i = 0; i < n; i++) {
		r = json_object_array_get_idx(rows, i);
		row[0] = jstr(r, "queue");
		row[1] = fmt_int(c[0], sizeof(c[0]), jint(r, "messages"));
		row[2] = fmt_int(c[1], sizeof(c[1]), jint(r, "recipients"));
		row[3] = fmt_int(c[2], sizeof(c[2]), jint(r, "active"));
		row[4] = fmt_int(c[3], sizeof(c[3]), jint(r, "deferred"));
		row[5] = fmt_int(c[4], sizeof(c[4]), jint(r, "held"));
		row[6] = fmt_age(age, sizeof(age), jint(r, "age"));
		row[7] = fmt_next(next, sizeof(next), r, "next-attempt");
		row[8] = jstr(r, "state");
		table_row(t, row);
	}
	table_print(t);
	if (json_object_object_get_ex(o, "totals", &tot))
		printf("total: %lld queues, %lld messages, %lld recipients "
		    "(%lld active, %lld deferred, %lld held)\n",
		    (long long)jint(tot, "queues"),
		    (long long)jint(tot, "messages"),
		    (long long)jint(tot, "recipients"),
		    (long long)jint(tot, "active"),
		    (long long)jint(tot, "deferred"),
		    (long long)jint(tot, "held"));
	print_paging(o, "queues");
	return 0;
}

static int
print_list(struct json_object *o)
{
	static const char *head[] = { "ID", "SIZE", "ARRIVAL", "SENDER",
	    "RCPTS", "STATE", "TO" };
	struct json_object	*rows, *r, *to;
	struct table		*t;
	char			 size[24], when[64], n[24], sender[600];
	char			 first[600];
	const char		*row[7];
	size_t			 i, nrows;
	int64_t			 nr;

	if ((rows = jarray(o, "messages")) == NULL)
		return -1;
	t = table_new(7, head, "-rlllll");
	nrows = json_object_array_length(rows);
	for (i = 0; i < nrows; i++) {
		r = json_object_array_get_idx(rows, i);
		row[0] = jstr(r, "id");
		row[1] = fmt_int(size, sizeof(size), jint(r, "size"));
		row[2] = fmt_time(when, sizeof(when), jint(r, "received"));
		snprintf(sender, sizeof(sender), "<%s>", jstr(r, "sender"));
		row[3] = sender;
		nr = jint(r, "recipients");
		row[4] = fmt_int(n, sizeof(n), nr);
		row[5] = jstr(r, "state");
		to = jarray(r, "to");
		if (to != NULL && json_object_array_length(to) > 0)
			snprintf(first, sizeof(first), "%s%s",
			    json_object_get_string(
			    json_object_array_get_idx(to, 0)),
			    nr > 1 ? " ..." : "");
		else
			first[0] = '\0';
		row[6] = first;
		table_row(t, row);
	}
	table_print(t);
	print_paging(o, "messages");
	return 0;
}

static int
print_show(struct json_object *o)
{
	static const char *head[] = { "RECIPIENT", "STATE", "QUEUE",
	    "ATTEMPTS", "NEXT", "LAST" };
	struct json_object	*rows, *r, *props;
	struct table		*t;
	char			 when[64], age[32], att[16], next[40];
	const char		*row[6], *pt;
	size_t			 i, n;

	if ((rows = jarray(o, "recipients")) == NULL)
		return -1;
	printf("%-11s %s\n", "id:", jstr(o, "id"));
	printf("%-11s <%s>\n", "sender:", jstr(o, "sender"));
	printf("%-11s %s (%s ago)\n", "arrival:",
	    fmt_time(when, sizeof(when), jint(o, "received")),
	    fmt_age(age, sizeof(age), jint(o, "age")));
	printf("%-11s %lld\n", "size:", (long long)jint(o, "size"));
	printf("%-11s %s\n", "client:", jstr(o, "client"));
	printf("%-11s %s\n", "helo:", jstr(o, "helo"));
	printf("%-11s %s\n", "local-ip:", jstr(o, "local-ip"));
	if (json_object_object_get_ex(o, "properties", &props) &&
	    props != NULL && json_object_object_length(props) > 0) {
		pt = json_object_to_json_string_ext(props,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		printf("%-11s %s\n", "properties:", pt);
	}
	printf("%-11s %lld pending of %lld\n\n", "recipients:",
	    (long long)jint(o, "pending"), (long long)jint(o, "total"));
	t = table_new(6, head, "---rll");
	n = json_object_array_length(rows);
	for (i = 0; i < n; i++) {
		r = json_object_array_get_idx(rows, i);
		row[0] = jstr(r, "address");
		row[1] = jstr(r, "state");
		row[2] = jnull(r, "queue") ? "-" : jstr(r, "queue");
		row[3] = fmt_int(att, sizeof(att), jint(r, "attempts"));
		if (strcmp(row[1], "delivered") == 0 ||
		    strcmp(row[1], "failed") == 0 ||
		    strcmp(row[1], "held") == 0 ||
		    strcmp(row[1], "active") == 0)
			row[4] = "-";
		else
			row[4] = fmt_next(next, sizeof(next), r, "next");
		row[5] = jstr(r, "last");
		table_row(t, row);
	}
	table_print(t);
	print_paging(o, "recipients");
	return 0;
}

/* flush, hold, release: "held 3 recipients in 2 messages". */
static int
print_action(struct json_object *o, const char *what)
{
	int64_t	 n = jint(o, what), m = jint(o, "messages");

	printf("%s %lld recipient%s in %lld message%s\n", what, (long long)n,
	    n == 1 ? "" : "s", (long long)m, m == 1 ? "" : "s");
	return 0;
}

static int
print_remove(struct json_object *o)
{
	int64_t	 n = jint(o, "in-flight");

	if (jint(o, "removed"))
		printf("%s: removed%s\n", jstr(o, "id"), jint(o, "bounced") ?
		    ", a bounce was sent to the sender" : "");
	else
		printf("%s: removed when its %lld recipient%s in flight come%s "
		    "back%s\n", jstr(o, "id"), (long long)n, n == 1 ? "" : "s",
		    n == 1 ? "s" : "", jint(o, "bounced") ?
		    "; a bounce was sent for the others" : "");
	return 0;
}

static int
print_reload(struct json_object *o)
{
	struct json_object	*a;
	size_t			 i, n;

	printf("configuration reloaded\n");
	if ((a = jarray(o, "restart-needed")) == NULL ||
	    (n = json_object_array_length(a)) == 0)
		return 0;
	printf("kept until mtad is restarted:");
	for (i = 0; i < n; i++)
		printf("%s %s", i > 0 ? "," : "", json_object_get_string(
		    json_object_array_get_idx(a, i)));
	printf("\n");
	return 0;
}

int
print_answer(const char *cmd, struct json_object *o)
{
	if (!json_object_is_type(o, json_type_object))
		return -1;
	if (strcmp(cmd, "status") == 0)
		return print_status(o);
	if (strcmp(cmd, "stats") == 0) {
		print_counters(o);
		return 0;
	}
	if (strcmp(cmd, "queue") == 0)
		return print_queue(o);
	if (strcmp(cmd, "list") == 0)
		return print_list(o);
	if (strcmp(cmd, "show") == 0)
		return print_show(o);
	if (strcmp(cmd, "flush") == 0)
		return print_action(o, "flushed");
	if (strcmp(cmd, "hold") == 0)
		return print_action(o, "held");
	if (strcmp(cmd, "release") == 0)
		return print_action(o, "released");
	if (strcmp(cmd, "remove") == 0)
		return print_remove(o);
	if (strcmp(cmd, "reload") == 0)
		return print_reload(o);
	return -1;
}
