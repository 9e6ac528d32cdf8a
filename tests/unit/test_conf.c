/*
 * Unit tests of the configuration (common/conf.c, conf_table.c): the table,
 * defaults, every type from a file, every error with its "FILE:LINE:",
 * --KEY=VALUE overrides, slices that read back exactly and carry secrets
 * only to the processes that need them, conf_print masking, and the
 * warning for keys that are accepted but not implemented yet.
 */
#include <ctype.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "log.h"
#include "proto.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* Write text to a new temporary file; the caller unlinks and frees. */
static char *
tmpfile_with(const char *text)
{
	char	*path;
	int	 fd;

	path = strdup("/tmp/test_conf.XXXXXX");
	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* Load text as a file; returns the cause ("" when it loaded). */
static char *
load_file_text(struct conf *c, const char *text, char **path)
{
	char	*cause = NULL;

	*path = tmpfile_with(text);
	if (conf_load_file(c, *path, &cause) == 0)
		return strdup("");
	assert_non_null(cause);
	return cause;
}

/* The value conf_print shows for key, as an allocated string. */
static char *
printed(const struct conf *c, const char *key)
{
	char	*buf = NULL, *line, *p, *val = NULL;
	size_t	 len = 0, klen = strlen(key);
	FILE	*fp;

	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	conf_print(c, fp);
	fclose(fp);
	for (p = buf; (line = strsep(&p, "\n")) != NULL; )
		if (strncmp(line, key, klen) == 0 &&
		    strncmp(line + klen, " = ", 3) == 0)
			val = strdup(line + klen + 3);
	free(buf);
	assert_non_null(val);
	return val;
}

static void
assert_printed(const struct conf *c, const char *key, const char *want)
{
	char	*got = printed(c, key);

	assert_string_equal(got, want);
	free(got);
}

static void
test_table(void **state)
{
	const struct conf_key	*k;
	size_t			 i, j;
	const char		*p;

	assert_true(conf_table_len > 40);
	for (i = 0; i < conf_table_len; i++) {
		k = &conf_table[i];
		for (p = k->name; *p != '\0'; p++)
			assert_true(islower((unsigned char)*p) ||
			    isdigit((unsigned char)*p) || *p == '-');
		assert_ptr_equal(conf_find(k->name), k);
		assert_non_null(k->doc);
		assert_true(strlen(k->doc) > 0 && strchr(k->doc, '\n') == NULL);
		assert_true(k->procs != 0);
		for (j = 0; j < i; j++)
			assert_string_not_equal(conf_table[j].name, k->name);
		if (k->flags & CONF_F_ALIAS) {
			/* an alias follows the row whose field it shares */
			assert_true(i > 0);
			assert_int_equal(conf_table[i - 1].offset, k->offset);
			assert_int_equal(conf_table[i - 1].type, k->type);
			assert_null(k->def);
		} else
			assert_non_null(k->def);
	}
	assert_null(conf_find("no-such-key"));
	assert_true(conf_find("smtp-sink-ip")->flags & CONF_F_ALIAS);
	assert_true(conf_find("smarthost-password")->flags & CONF_F_SECRET);
	assert_true(conf_find("spool-dir")->procs & P_RESOLVER);
}

static void
test_defaults(void **state)
{
	struct conf	*c = conf_new();
	char		*cause = NULL;

	assert_string_equal(c->smtp_ip, "");
	assert_int_equal(c->smtp_port.n, 1);
	assert_int_equal(c->smtp_port.v[0], 25);
	assert_int_equal(c->smtp_secure_port.n, 0);
	assert_string_equal(c->smtp_range, "127.0.0.0/8;::1/128");
	assert_int_equal(c->smtp_maxsize, 100 * 1024 * 1024);
	assert_int_equal(c->smtp_mq_headers, 1);
	assert_int_equal(c->smtp_max_recipients, 1000);
	assert_int_equal(c->smtp_timeout, 300);
	assert_int_equal(c->smtp_max_connections_per_ip, 20);
	assert_int_equal(c->smtp_session_timeout, 1800);
	assert_int_equal(c->smarthost_port, 25);
	assert_int_equal(c->smarthosts.n, 0);
	assert_int_equal(c->routes.n, 0);
	assert_string_equal(c->rabbitmq_outbox, "outbox");
	assert_int_equal(c->rabbitmq_prefetch, 100);
	assert_int_equal(c->retries.n, 5);
	assert_int_equal(c->retries.v[0], 600);
	assert_int_equal(c->retries.v[4], 14400);
	assert_int_equal(c->max_delivery_time, 432000);
	assert_string_equal(c->spool_dir, "/var/spool/mtad");
	assert_string_equal(c->user, "mtad");
	assert_string_equal(c->control_socket, "/run/mtad/control.sock");
	assert_string_equal(c->pid_file, "/run/mtad/mtad.pid");
	assert_int_equal(c->smtp_workers, 0);
	assert_int_equal(c->resolver_nameservers.n, 0);
	assert_string_equal(c->log_level, "info");
	assert_int_equal(conf_validate(c, &cause), 0);
	conf_free(c);
}

static void
test_load_every_type(void **state)
{
	struct conf	*c = conf_new();
	char		*path, *cause;

	cause = load_file_text(c,
	    "# every type\n"
	    "smtp-ip: \"192.0.2.1\"\n"
	    "smtp-port: 2525\n"
	    "smtp-secure-port = [465, 4650]\n"
	    "smtp-certificate: \"/etc/mtad/mx.pem\"\n"
	    "smtp-maxsize: \"512KB\"\n"
	    "smtp-mq-headers: false\n"
	    "smtp-timeout = 60;\n"
	    "retries = \"60, 120\"\n"
	    "resolver-nameservers = [\"127.0.0.1:53\", \"[::1]:5353\", \"::1\"]\n"
	    "smarthosts = ( { hostname = \"a.example\"; weight = 60; },\n"
	    "  { hostname = \"b.example\"; port = 587; username = \"u\";\n"
	    "    password = \"p\"; backup = true; } )\n"
	    "routes = ( { domain = \"example.com\"; host = \"mx.internal\"; } )\n"
	    "smtp-sink-ip: \"127.0.0.2\"\n", &path);
	assert_string_equal(cause, "");
	assert_string_equal(c->smtp_ip, "192.0.2.1");
	assert_int_equal(c->smtp_port.n, 1);
	assert_int_equal(c->smtp_port.v[0], 2525);
	assert_int_equal(c->smtp_secure_port.n, 2);
	assert_int_equal(c->smtp_secure_port.v[1], 4650);
	assert_int_equal(c->smtp_maxsize, 512 * 1024);
	assert_int_equal(c->smtp_mq_headers, 0);
	assert_int_equal(c->smtp_timeout, 60);
	assert_int_equal(c->retries.n, 2);
	assert_int_equal(c->retries.v[1], 120);
	assert_int_equal(c->resolver_nameservers.n, 3);
	assert_string_equal(c->resolver_nameservers.v[1], "[::1]:5353");
	assert_int_equal(c->smarthosts.n, 2);
	assert_string_equal(c->smarthosts.v[0].hostname, "a.example");
	assert_int_equal(c->smarthosts.v[0].port, 25);
	assert_int_equal(c->smarthosts.v[0].weight, 60);
	assert_null(c->smarthosts.v[0].username);
	assert_int_equal(c->smarthosts.v[0].backup, 0);
	assert_int_equal(c->smarthosts.v[1].port, 587);
	assert_string_equal(c->smarthosts.v[1].username, "u");
	assert_string_equal(c->smarthosts.v[1].password, "p");
	assert_int_equal(c->smarthosts.v[1].weight, 1);
	assert_int_equal(c->smarthosts.v[1].backup, 1);
	assert_int_equal(c->routes.n, 1);
	assert_string_equal(c->routes.v[0].host, "mx.internal");
	assert_int_equal(c->routes.v[0].port, 0);	/* smtp-mx-port */
	assert_null(c->routes.v[0].password);
	assert_string_equal(c->smtp_sink_address, "127.0.0.2");
	/* keys the file does not name keep their values */
	assert_string_equal(c->user, "mtad");
	free(cause);
	cause = NULL;
	assert_int_equal(conf_validate(c, &cause), 0);
	unlink(path);
	free(path);
	conf_free(c);
}

/* A file, the line of the error, and what follows "FILE:LINE: ". */
static const struct {
	const char	*text;
	int		 line;
	const char	*msg;
} bad_files[] = {
	{ "smtp-port: 25\n\nno-such-key: 1\n", 3, "no-such-key: unknown key" },
	{ "smtp-timeout: \"60\"\n", 1, "smtp-timeout: expected an integer" },
	{ "smtp-timeout: 1.5\n", 1, "smtp-timeout: expected an integer" },
	{ "\nsmtp-timeout: 0\n", 2,
	  "smtp-timeout: 0 is out of range 1..3600" },
	{ "smtp-timeout: 4294967296\n", 1,
	  "smtp-timeout: 4294967296 is out of range 1..3600" },
	{ "smtp-timeout: 99999999999999999999\n", 1, "integer out of range" },
	{ "smtp-workers: -1\n", 1, "smtp-workers: -1 is out of range 0..64" },
	{ "smtp-ip: 1\n", 1, "smtp-ip: expected a string" },
	{ "smtp-mq-headers: \"yes\"\n", 1,
	  "smtp-mq-headers: expected true or false" },
	{ "smtp-port = [25,\n  70000]\n", 2,
	  "smtp-port: 70000 is out of range 1..65535" },
	{ "smtp-port = \"25, x\"\n", 1, "smtp-port: \"x\" is not an integer" },
	{ "smtp-port = \"25,,26\"\n", 1, "smtp-port: \"\" is not an integer" },
	{ "smtp-port = true\n", 1,
	  "smtp-port: expected an integer or a list of integers" },
	{ "smtp-maxsize: \"100XB\"\n", 1, "smtp-maxsize: \"100XB\" is not a "
	  "size: bytes, or a number with KB, MB or GB" },
	{ "smtp-maxsize: \"-5MB\"\n", 1, "smtp-maxsize: \"-5MB\" is not a "
	  "size: bytes, or a number with KB, MB or GB" },
	{ "smtp-maxsize: \"5GB\"\n", 1,
	  "smtp-maxsize: 5368709120 is out of range 1024..4294967296" },
	{ "smtp-maxsize: 100\n", 1,
	  "smtp-maxsize: 100 is out of range 1024..4294967296" },
	{ "smtp-maxsize: true\n", 1, "smtp-maxsize: expected a size: bytes, "
	  "or a string such as \"100MB\"" },
	{ "resolver-nameservers = [1]\n", 1,
	  "resolver-nameservers: expected a string or a list of strings" },
	{ "resolver-nameservers = [\"1.2.3.4\", \"ns.example\"]\n", 1,
	  "resolver-nameservers: \"ns.example\" is not ip, ip:port or "
	  "[ipv6]:port" },
	{ "resolver-nameservers = \"1.2.3.4:0\"\n", 1,
	  "resolver-nameservers: \"1.2.3.4:0\" is not ip, ip:port or "
	  "[ipv6]:port" },
	{ "log-level: \"loud\"\n", 1,
	  "log-level: \"loud\" is not one of err, warning, info, debug" },
	{ "smtp-port: 25\nsmtp-range: \"127.0.0.0/8;10.0.0.0/33\"\n", 2,
	  "smtp-range: bad address or CIDR \"10.0.0.0/33\"" },
	{ "smtp-proxy: \"not-an-ip\"\n", 1,
	  "smtp-proxy: bad address or CIDR \"not-an-ip\"" },
	{ "retries = []\n", 1, "retries: needs at least one interval" },
	{ "smarthosts = (\n { hostname = \"a\";\n   colour = 1; } )\n", 3,
	  "smarthosts: entry 1: unknown member \"colour\"" },
	{ "smarthosts = ( { hostname = \"a\"; },\n { port = 26; } )\n", 2,
	  "smarthosts: entry 2: hostname is required" },
	{ "smarthosts = ( { hostname = \"\"; } )\n", 1,
	  "smarthosts: entry 1: hostname is required" },
	{ "smarthosts = ( { hostname = \"a\";\n port = 0; } )\n", 2,
	  "smarthosts: entry 1: port: 0 is out of range 1..65535" },
	{ "smarthosts = ( { hostname = \"a\"; weight = 1001; } )\n", 1,
	  "smarthosts: entry 1: weight: 1001 is out of range 1..1000" },
	{ "smarthosts = ( { hostname = \"a\"; backup = 1; } )\n", 1,
	  "smarthosts: entry 1: backup: expected true or false" },
	{ "smarthosts = ( { hostname = 5; } )\n", 1,
	  "smarthosts: entry 1: hostname: expected a string" },
	{ "smarthosts = \"a.example\"\n", 1,
	  "smarthosts: expected a list of groups ( { ... } )" },
	{ "smarthosts = ( \"a.example\" )\n", 1,
	  "smarthosts: entry 1: expected a group { ... }" },
	{ "routes = ( { domain = \"example.com\"; } )\n", 1,
	  "routes: entry 1: host is required" },
	{ "smtp-sink-address: \"a\"\nsmtp-sink-ip: \"b\"\n", 2,
	  "smtp-sink-ip: set twice (also as smtp-sink-address)" },
	{ "smtp-port: 25\nsmtp-port: 26\n", 2, "duplicate setting name" },
	/* an unterminated string runs to the end of the file */
	{ "smtp-port: 25\nsmtp-ip: \"a\n", 3, "syntax error" },
	{ "smtp-port 25\n", 1, "syntax error" },
	{ "# ok\n@include \"/etc/passwd\"\n", 2, "@include is not supported" },
};

static void
test_file_errors(void **state)
{
	struct conf	*c;
	char		*path, *cause, *want;
	size_t		 i;

	for (i = 0; i < NITEMS(bad_files); i++) {
		c = conf_new();
		cause = load_file_text(c, bad_files[i].text, &path);
		assert_int_not_equal(asprintf(&want, "%s:%d: %s", path,
		    bad_files[i].line, bad_files[i].msg), -1);
		if (strcmp(cause, want) != 0)
			fail_msg("case %zu: got '%s', want '%s'", i, cause, want);
		/* nothing of a refused file is applied */
		assert_int_equal(c->smtp_port.v[0], 25);
		assert_int_equal(c->smtp_timeout, 300);
		assert_int_equal(c->smarthosts.n, 0);
		unlink(path);
		free(path);
		free(want);
		free(cause);
		conf_free(c);
	}
}

static void
test_file_all_or_nothing(void **state)
{
	struct conf	*c = conf_new();
	char		*path, *cause;

	cause = load_file_text(c, "smtp-timeout: 5\nsmarthost: \"x\"\n"
	    "smtp-ip: 7\n", &path);
	assert_true(strstr(cause, ":3: smtp-ip: expected a string") != NULL);
	assert_int_equal(c->smtp_timeout, 300);
	assert_string_equal(c->smarthost, "");
	unlink(path);
	free(path);
	free(cause);
	/* a second file loads over the first */
	cause = load_file_text(c, "smtp-timeout: 5\n", &path);
	assert_string_equal(cause, "");
	unlink(path);
	free(path);
	free(cause);
	cause = load_file_text(c, "smtp-max-recipients: 7\n", &path);
	assert_string_equal(cause, "");
	assert_int_equal(c->smtp_timeout, 5);
	assert_int_equal(c->smtp_max_recipients, 7);
	unlink(path);
	free(path);
	free(cause);
	conf_free(c);
}

static void
test_file_missing_and_empty(void **state)
{
	struct conf	*c = conf_new();
	char		*cause = NULL;

	assert_int_equal(conf_load_file(c, "/nonexistent/mtad.conf", &cause),
	    -1);
	assert_string_equal(cause,
	    "/nonexistent/mtad.conf: No such file or directory");
	free(cause);
	cause = NULL;
	assert_int_equal(conf_load_file(c, "/dev/null", &cause), 0);
	assert_null(cause);
	assert_int_equal(c->smtp_port.v[0], 25);
	conf_free(c);
}

static void
test_text_errors(void **state)
{
	struct conf	*c = conf_new();
	char		*cause = NULL;

	assert_int_equal(conf_load_text(c, "smtp-port = 25;\nbogus = 1;\n",
	    &cause), -1);
	assert_string_equal(cause, "<config>:2: bogus: unknown key");
	free(cause);
	cause = NULL;
	assert_int_equal(conf_load_text(c, "smtp-port = ;", &cause), -1);
	assert_string_equal(cause, "<config>:1: syntax error");
	free(cause);
	conf_free(c);
}

/* An override and what conf_print then shows, or the error. */
static const struct {
	const char	*key;
	const char	*value;
	const char	*show;		/* printed value, or NULL */
	const char	*err;		/* the cause, or NULL */
} overrides[] = {
	{ "smtp-ip", "::1", "\"::1\"", NULL },
	{ "smarthost", "\"quoted\" as is", "\"\\\"quoted\\\" as is\"", NULL },
	{ "smtp-range", "", "\"\"", NULL },
	{ "smtp-port", "587", "[587]", NULL },
	{ "smtp-port", "25,587", "[25, 587]", NULL },
	{ "smtp-port", " 25 , 26 ", "[25, 26]", NULL },
	{ "smtp-port", "[25, 465]", "[25, 465]", NULL },
	{ "smtp-port", "(2525)", "[2525]", NULL },
	{ "smtp-secure-port", "", "[]", NULL },
	{ "smtp-port", "25,x", NULL, "--smtp-port: \"x\" is not an integer" },
	{ "smtp-port", "0", NULL, "--smtp-port: 0 is out of range 1..65535" },
	{ "smtp-maxsize", "1024", "1024", NULL },
	{ "smtp-maxsize", "100MB", "104857600", NULL },
	{ "smtp-maxsize", "512KB", "524288", NULL },
	{ "smtp-maxsize", "1GB", "1073741824", NULL },
	{ "smtp-maxsize", "4gb", "4294967296", NULL },
	{ "smtp-maxsize", "4294967296", "4294967296", NULL },
	{ "smtp-maxsize", "\"2 MB\"", "2097152", NULL },
	{ "smtp-maxsize", "100XB", NULL, "--smtp-maxsize: \"100XB\" is not a "
	  "size: bytes, or a number with KB, MB or GB" },
	{ "smtp-maxsize", "1023", NULL,
	  "--smtp-maxsize: 1023 is out of range 1024..4294967296" },
	{ "smtp-maxsize", "5GB", NULL,
	  "--smtp-maxsize: 5368709120 is out of range 1024..4294967296" },
	{ "smtp-mq-headers", "no", "false", NULL },
	{ "smtp-mq-headers", "0", "false", NULL },
	{ "smtp-mq-headers", "FALSE", "false", NULL },
	{ "smtp-mq-headers", "yes", "true", NULL },
	{ "smtp-mq-headers", "1", "true", NULL },
	{ "smtp-mq-headers", "true", "true", NULL },
	{ "smtp-mq-headers", "maybe", NULL, "--smtp-mq-headers: expected true "
	  "or false, yes or no, 1 or 0" },
	{ "smtp-timeout", "60", "60", NULL },
	{ "smtp-timeout", "0x10", "16", NULL },
	{ "smtp-timeout", "abc", NULL, "--smtp-timeout: expected an integer" },
	{ "smtp-timeout", "", NULL, "--smtp-timeout: expected an integer" },
	{ "smtp-timeout", "60; user = \"root\"", NULL,
	  "--smtp-timeout: expected an integer" },
	{ "smtp-timeout", "3601", NULL,
	  "--smtp-timeout: 3601 is out of range 1..3600" },
	{ "smtp-timeout", "99999999999", NULL,
	  "--smtp-timeout: 99999999999 is out of range 1..3600" },
	{ "retries", "600", "[600]", NULL },
	{ "retries", "60,120,240", "[60, 120, 240]", NULL },
	{ "retries", "", NULL, "--retries: needs at least one interval" },
	{ "resolver-nameservers", "127.0.0.1:53", "[\"127.0.0.1:53\"]", NULL },
	{ "resolver-nameservers", "1.1.1.1, [::1]:53",
	  "[\"1.1.1.1\", \"[::1]:53\"]", NULL },
	{ "resolver-nameservers", "[\"::1\"]", "[\"::1\"]", NULL },
	{ "resolver-nameservers", "", "[]", NULL },
	{ "resolver-nameservers", "ns.example", NULL, "--resolver-nameservers: "
	  "\"ns.example\" is not ip, ip:port or [ipv6]:port" },
	{ "smarthosts", "( { hostname = \"a\"; port = 587; } )",
	  "( { hostname = \"a\"; port = 587; weight = 1; backup = false; } )",
	  NULL },
	{ "smarthosts", "{ hostname = \"a\"; }",
	  "( { hostname = \"a\"; port = 25; weight = 1; backup = false; } )",
	  NULL },
	{ "smarthosts", "()", "()", NULL },
	{ "smarthosts", "( { hostname = \"a\"", NULL,
	  "--smarthosts: syntax error" },
	{ "smarthosts", "( { port = 1; } )", NULL,
	  "--smarthosts: entry 1: hostname is required" },
	{ "routes", "( { domain = \"d\"; host = \"h\"; port = 2525; } )",
	  "( { domain = \"d\"; host = \"h\"; port = 2525; } )", NULL },
	{ "smtp-sink-ip", "127.0.0.9", NULL, NULL },
	{ "log-level", "debug", "\"debug\"", NULL },
	{ "log-level", "loud", NULL, "--log-level: \"loud\" is not one of err, "
	  "warning, info, debug" },
	{ "no-such-key", "1", NULL, "--no-such-key: unknown key" },
};

static void
test_overrides(void **state)
{
	struct conf	*c;
	char		*cause, *before;
	size_t		 i;

	for (i = 0; i < NITEMS(overrides); i++) {
		c = conf_new();
		cause = NULL;
		if (overrides[i].err != NULL) {
			before = conf_find(overrides[i].key) != NULL ?
			    printed(c, overrides[i].key) : NULL;
			assert_int_equal(conf_override(c, overrides[i].key,
			    overrides[i].value, &cause), -1);
			if (strcmp(cause, overrides[i].err) != 0)
				fail_msg("case %zu: got '%s'", i, cause);
			if (before != NULL)
				assert_printed(c, overrides[i].key, before);
			free(before);
			free(cause);
		} else {
			if (conf_override(c, overrides[i].key,
			    overrides[i].value, &cause) != 0)
				fail_msg("case %zu: %s", i, cause);
			if (overrides[i].show != NULL)
				assert_printed(c, overrides[i].key,
				    overrides[i].show);
		}
		conf_free(c);
	}
	/* the alias sets its key's field */
	c = conf_new();
	assert_int_equal(conf_override(c, "smtp-sink-ip", "127.0.0.9", &cause),
	    0);
	assert_string_equal(c->smtp_sink_address, "127.0.0.9");
	conf_free(c);
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char	*s;
		int		 ret;
		uint64_t	 v;
	} sizes[] = {
		{ "0", 0, 0 }, { "1024", 0, 1024 }, { "1024B", 0, 1024 },
		{ "512KB", 0, 512 * 1024 }, { "512kb", 0, 512 * 1024 },
		{ "2K", 0, 2048 }, { "100MB", 0, 100 << 20 },
		{ "100 MB", 0, 100 << 20 }, { "3M", 0, 3 << 20 },
		{ "1GB", 0, 1ULL << 30 }, { "4G", 0, 4ULL << 30 },
		{ "", -1, 0 }, { "MB", -1, 0 }, { "-1", -1, 0 },
		{ "+1", -1, 0 }, { " 1", -1, 0 }, { "1.5MB", -1, 0 },
		{ "100XB", -1, 0 }, { "100MBB", -1, 0 }, { "1TB", -1, 0 },
		{ "18446744073709551616", -1, 0 },
		{ "17179869184GB", -1, 0 },
	};
	uint64_t	 v;
	size_t		 i;

	for (i = 0; i < NITEMS(sizes); i++) {
		v = 12345;
		if (conf_parse_size(sizes[i].s, &v) != sizes[i].ret)
			fail_msg("case %zu: \"%s\"", i, sizes[i].s);
		if (sizes[i].ret == 0)
			assert_int_equal(v, sizes[i].v);
	}
}

/* A conf with every kind of value away from its default. */
static struct conf *
tricky_conf(void)
{
	static const char *const sets[][2] = {
		{ "smtp-hostname", "q\"uo\\te\nnl\ttab\r\f\x01\x1f\x7f "
		  "h\xc3\xa9llo \xe2\x82\xac \xff" },
		{ "smtp-range", "10.0.0.0/8;::1/128" },
		{ "smtp-port", "25,587" },
		{ "smtp-secure-port", "465" },
		{ "smtp-maxsize", "4GB" },
		{ "smtp-mq-headers", "false" },
		{ "smtp-password", "smtpd-secret" },
		{ "smarthost", "relay.example.net" },
		{ "smarthost-port", "587" },
		{ "smarthost-username", "user" },
		{ "smarthost-password", "relay-secret" },
		{ "smarthosts", "( { hostname = \"a\"; password = \"sh-secret\";"
		  " username = \"\"; weight = 60; }, { hostname = \"b\\\"\";"
		  " backup = true; } )" },
		{ "routes", "( { domain = \"d\"; host = \"h\"; username = \"u\";"
		  " password = \"rt-secret\"; } )" },
		{ "smtp-sink-address", "sink.example" },
		{ "smtp-sink-password", "sink-secret" },
		{ "rabbitmq-address", "amqp://u:mq-secret@h/" },
		{ "retries", "1,604800" },
		{ "resolver-nameservers", "127.0.0.1:53,[::1]:53" },
		{ "log-level", "debug" },
	};
	struct conf	*c = conf_new();
	char		*cause = NULL;
	size_t		 i;

	for (i = 0; i < NITEMS(sets); i++)
		if (conf_override(c, sets[i][0], sets[i][1], &cause) != 0)
			fail_msg("%s: %s", sets[i][0], cause);
	return c;
}

static void
test_slice_round_trip(void **state)
{
	struct conf	*c = tricky_conf(), *d;
	char		*s1, *s2, *cause = NULL;
	int		 proc;

	for (proc = 0; proc < PROC_COUNT; proc++) {
		s1 = conf_slice(c, proc);
		d = conf_new();
		if (conf_load_text(d, s1, &cause) != 0)
			fail_msg("proc %d: %s\n%s", proc, cause, s1);
		s2 = conf_slice(d, proc);
		assert_string_equal(s1, s2);
		if (proc == PROC_SMTP) {
			assert_string_equal(d->smtp_hostname, c->smtp_hostname);
			assert_string_equal(d->smarthosts.v[1].hostname, "b\"");
			assert_string_equal(d->smarthosts.v[0].username, "");
			assert_null(d->smarthosts.v[1].username);
		}
		if (proc == PROC_SMTPD)
			assert_int_equal(d->smtp_maxsize, 4ULL << 30);
		free(s1);
		free(s2);
		conf_free(d);
	}
	conf_free(c);
}

static void
test_slice_keys(void **state)
{
	struct conf	*c = conf_new();
	char		*s;

	s = conf_slice(c, PROC_RESOLVER);
	assert_string_equal(s,
	    "spool-dir = \"/var/spool/mtad\";\n"
	    "user = \"mtad\";\n"
	    "resolver-nameservers = [];\n"
	    "log-level = \"info\";\n");
	free(s);
	s = conf_slice(c, PROC_MASTER);
	assert_non_null(strstr(s, "\nsmtp-port = [25];\n"));
	assert_non_null(strstr(s, "\ncontrol-socket = "));
	assert_null(strstr(s, "smtp-sink-ip"));
	free(s);
	s = conf_slice(c, PROC_COUNT);
	assert_string_equal(s, "");
	free(s);
	conf_free(c);
}

/* Each secret, and the processes whose slice may hold it. */
static void
test_slice_secrets(void **state)
{
	static const struct {
		const char	*secret;
		unsigned	 procs;
	} secrets[] = {
		{ "smtpd-secret", P_SMTPD },
		{ "relay-secret", P_SMTP },
		{ "sh-secret", P_SMTP },	/* qmgr gets smarthosts, no pw */
		{ "rt-secret", P_SMTP },
		{ "sink-secret", P_SMTP },
		{ "mq-secret", P_QMGR },
	};
	struct conf	*c = tricky_conf();
	char		*s;
	size_t		 i;
	int		 proc;

	for (proc = 0; proc < PROC_COUNT; proc++) {
		s = conf_slice(c, proc);
		for (i = 0; i < NITEMS(secrets); i++) {
			if ((strstr(s, secrets[i].secret) != NULL) !=
			    ((secrets[i].procs & (1u << proc)) != 0))
				fail_msg("%s in slice of proc %d: %s",
				    secrets[i].secret, proc, s);
		}
		if (proc == PROC_QMGR)
			assert_non_null(strstr(s, "hostname = \"a\""));
		free(s);
	}
	conf_free(c);
}

static void
test_print(void **state)
{
	struct conf	*c = tricky_conf();
	char		*buf = NULL, *p, *line;
	size_t		 len = 0, n = 0, i = 0;
	FILE		*fp;

	fp = open_memstream(&buf, &len);
	conf_print(c, fp);
	fclose(fp);
	assert_null(strstr(buf, "secret"));
	assert_null(strstr(buf, "smtp-sink-ip"));
	assert_non_null(strstr(buf, "\nsmarthost-password = \"********\"\n"));
	assert_non_null(strstr(buf, "\nrabbitmq-address = \"********\"\n"));
	assert_non_null(strstr(buf, "\nsmtp-sink-username = \"\"\n"));
	assert_non_null(strstr(buf, "password = \"********\"; weight = 60;"));
	assert_non_null(strstr(buf, "\nsmtp-maxsize = 4294967296\n"));
	/* one "key = value" line per key, in table order */
	for (p = buf; (line = strsep(&p, "\n")) != NULL && *line != '\0'; ) {
		while (conf_table[i].flags & CONF_F_ALIAS)
			i++;
		assert_true(i < conf_table_len);
		assert_int_equal(strncmp(line, conf_table[i].name,
		    strlen(conf_table[i].name)), 0);
		assert_int_equal(strncmp(line + strlen(conf_table[i].name),
		    " = ", 3), 0);
		i++;
		n++;
	}
	assert_int_equal(n, conf_table_len - 1);
	free(buf);
	conf_free(c);
	/* an empty secret shows as empty */
	c = conf_new();
	assert_printed(c, "smarthost-password", "\"\"");
	conf_free(c);
}

static void
test_validate(void **state)
{
	struct conf	*c = conf_new();
	char		*cause = NULL;

	assert_int_equal(conf_override(c, "smtp-port", "", &cause), 0);
	assert_int_equal(conf_validate(c, &cause), -1);
	assert_string_equal(cause, "smtp-port: no port to listen on; set "
	    "smtp-port or smtp-secure-port");
	free(cause);
	cause = NULL;
	assert_int_equal(conf_override(c, "smtp-secure-port", "465", &cause),
	    0);
	/* TLS from the first byte needs a certificate */
	assert_int_equal(conf_validate(c, &cause), -1);
	assert_string_equal(cause, "smtp-secure-port: needs smtp-certificate");
	free(cause);
	cause = NULL;
	assert_int_equal(conf_override(c, "smtp-certificate", "/x.pem",
	    &cause), 0);
	assert_int_equal(conf_validate(c, &cause), 0);
	/* AUTH needs a password */
	assert_int_equal(conf_override(c, "smtp-username", "u", &cause), 0);
	assert_int_equal(conf_validate(c, &cause), -1);
	assert_string_equal(cause, "smtp-username: needs smtp-password");
	free(cause);
	cause = NULL;
	assert_int_equal(conf_override(c, "smtp-password", "p", &cause), 0);
	assert_int_equal(conf_validate(c, &cause), 0);
	/* values set by code are checked too */
	c->smtp_timeout = 0;
	assert_int_equal(conf_validate(c, &cause), -1);
	assert_string_equal(cause, "smtp-timeout: 0 is out of range 1..3600");
	free(cause);
	c->smtp_timeout = 300;
	free(c->log_level);
	c->log_level = strdup("chatty");
	assert_int_equal(conf_validate(c, &cause), -1);
	assert_string_equal(cause, "log-level: \"chatty\" is not one of err, "
	    "warning, info, debug");
	free(cause);
	conf_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_load_every_type),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_file_all_or_nothing),
		cmocka_unit_test(test_file_missing_and_empty),
		cmocka_unit_test(test_text_errors),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_slice_round_trip),
		cmocka_unit_test(test_slice_keys),
		cmocka_unit_test(test_slice_secrets),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_validate),
	};

	log_init(1, LOG_LEVEL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
