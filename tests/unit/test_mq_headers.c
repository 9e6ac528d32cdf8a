/*
 * The x-mq-* header filter (common/mq_headers.c): which fields are
 * removed, that everything else comes out byte for byte whatever the
 * chunking, the properties each header sets, folding, case, repeats, bad
 * values and the bounds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json.h>

#include "mq_headers.h"
#include "xmalloc.h"

struct out {
	char	*p;
	size_t	 len;
};

static void
collect(void *arg, const char *buf, size_t len)
{
	struct out	*o = arg;

	o->p = xreallocarray(o->p, o->len + len + 1, 1);
	memcpy(o->p + o->len, buf, len);
	o->len += len;
	o->p[o->len] = '\0';
}

/*
 * Filter msg in chunks of chunk octets (0: all at once); check the output
 * and return the properties as compact JSON (allocated).
 */
static char *
run(const char *msg, size_t chunk, int opts, const char *want,
    struct mq_headers *h)
{
	struct json_object	*props;
	struct out		 o = { NULL, 0 };
	size_t			 len = strlen(msg), off, n;
	char			*json;

	mq_headers_init(h, opts, collect, &o);
	for (off = 0; off < len; off += n) {
		n = chunk == 0 || len - off < chunk ? len - off : chunk;
		mq_headers_feed(h, msg + off, n);
	}
	mq_headers_end(h);
	assert_string_equal(o.p != NULL ? o.p : "", want);
	free(o.p);
	props = mq_headers_props(h);
	json = xstrdup(json_object_to_json_string_ext(props,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(props);
	return json;
}

/* run() for every chunk size from 1 to 7 and all at once: same result. */
static void
check(const char *msg, int opts, const char *want, const char *want_json,
    const char *want_warn)
{
	struct mq_headers	 h;
	size_t			 chunks[] = { 0, 1, 2, 3, 5, 7 }, i;
	char			*json;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		json = run(msg, chunks[i], opts, want, &h);
		assert_string_equal(json, want_json);
		if (want_warn != NULL)
			assert_non_null(strstr(h.warn, want_warn));
		else
			assert_string_equal(h.warn, "");
		free(json);
		mq_headers_clear(&h);
	}
}

static void
test_strip_basic(void **state)
{
	check("From: a@b.example\r\n"
	    "X-MQ-Tag: one\r\n"
	    "Subject: hi\r\n"
	    "x-mq-tag: two\r\n"
	    "\r\n"
	    "x-mq-tag: in the body\r\n",
	    MQH_F_STRIP,
	    "From: a@b.example\r\nSubject: hi\r\n\r\nx-mq-tag: in the body\r\n",
	    "{\"tags\":[\"one\",\"two\"]}", NULL);
}

static void
test_keep_when_off(void **state)
{
	const char	*msg = "X-MQ-Tag: one\r\nSubject: hi\r\n\r\nbody\r\n";

	check(msg, 0, msg, "{}", NULL);
}

static void
test_folding(void **state)
{
	/* A folded x-mq field goes whole; a folded other field stays whole. */
	check("Subject: a\r\n\tlong subject\r\n"
	    "x-mq-smarthost-hostname:\r\n relay.example.net\r\n"
	    " \r\n"
	    "To: b@c.example\r\n"
	    "\r\nbody\r\n",
	    MQH_F_STRIP,
	    "Subject: a\r\n\tlong subject\r\nTo: b@c.example\r\n\r\nbody\r\n",
	    "{\"smarthost\":{\"hostname\":\"relay.example.net\"}}", NULL);
}

static void
test_smarthost(void **state)
{
	check("X-Mq-Smarthost-Hostname: relay.example.net\r\n"
	    "x-mq-smarthost-port: 587\r\n"
	    "x-mq-smarthost-username: user\r\n"
	    "x-mq-smarthost-password: s3cret pass\r\n"
	    "\r\n",
	    MQH_F_STRIP, "\r\n",
	    "{\"smarthost\":{\"hostname\":\"relay.example.net\",\"port\":587,"
	    "\"username\":\"user\",\"password\":\"s3cret pass\"}}", NULL);
}

static void
test_bad_values(void **state)
{
	struct mq_headers	 h;
	char			*json;

	check("x-mq-smarthost-port: 0\r\n"
	    "x-mq-smarthost-port: 65536\r\n"
	    "x-mq-smarthost-port: 25x\r\n"
	    "x-mq-smarthost-hostname: bad host\r\n"
	    "x-mq-smarthost-hostname: a..b\r\n"
	    "x-mq-ip: 300.1.1.1\r\n"
	    "x-mq-maxattempts: -1\r\n"
	    "x-mq-retries: 60,x\r\n"
	    "x-mq-maxdelivertime: tomorrow\r\n"
	    "x-mq-dsn-notify: SOMETIMES\r\n"
	    "x-mq-dsn-ret: ALL\r\n"
	    "x-mq-envelope: not an address\r\n"
	    "x-mq-smarthost-colour: red\r\n"
	    "x-mq-mime: From: x\r\n"
	    "x-mq-empty:\r\n"
	    "x-mq-ctl: a\001b\r\n"
	    "\r\n",
	    MQH_F_STRIP, "\r\n", "{}", "x-mq-smarthost-port: not a port");
	/* No value in the warnings, and each field named. */
	json = run("x-mq-smarthost-password: \001hunter2\r\n\r\n", 0,
	    MQH_F_STRIP, "\r\n", &h);
	assert_string_equal(json, "{}");
	assert_null(strstr(h.warn, "hunter2"));
	assert_non_null(strstr(h.warn, "x-mq-smarthost-password"));
	free(json);
	mq_headers_clear(&h);
}

static void
test_lists_and_numbers(void **state)
{
	check("x-mq-ip: 192.0.2.10\r\n"
	    "x-mq-ip: 2001:DB8::1\r\n"
	    "x-mq-ip: 192.0.2.10\r\n"
	    "x-mq-maxattempts: 5\r\n"
	    "x-mq-retries: 600, 1800,3600\r\n"
	    "x-mq-maxdelivertime: 2026-11-25 12:00:00\r\n"
	    "x-mq-dsn-notify: failure,delay\r\n"
	    "x-mq-dsn-ret: hdrs\r\n"
	    "x-mq-dsn-envid: abc\r\n"
	    "\r\n",
	    MQH_F_STRIP, "\r\n",
	    "{\"ips\":[\"192.0.2.10\",\"2001:db8::1\"],\"maxattempts\":5,"
	    "\"retries\":[600,1800,3600],"
	    "\"maxdelivertime\":\"2026-11-25 12:00:00\","
	    "\"dsn\":{\"notify\":\"FAILURE,DELAY\",\"ret\":\"HDRS\","
	    "\"envid\":\"abc\"}}", NULL);
	check("x-mq-maxdelivertime: 1795000000\r\n\r\n", MQH_F_STRIP, "\r\n",
	    "{\"maxdelivertime\":1795000000}", NULL);
}

static void
test_repeat_last_wins(void **state)
{
	check("x-mq-maxattempts: 5\r\nx-mq-maxattempts: 7\r\n"
	    "x-mq-campaign: a\r\nX-MQ-CAMPAIGN: b\r\n\r\n",
	    MQH_F_STRIP, "\r\n", "{\"maxattempts\":7,\"campaign\":\"b\"}", NULL);
}

static void
test_envelope(void **state)
{
	struct mq_headers	 h;
	char			*json;

	json = run("x-mq-envelope: <bounce@a.example>\r\n\r\n", 0,
	    MQH_F_STRIP, "\r\n", &h);
	assert_string_equal(json, "{}");
	assert_string_equal(h.envelope, "bounce@a.example");
	free(json);
	mq_headers_clear(&h);

	json = run("x-mq-envelope: <>\r\n\r\n", 0, MQH_F_STRIP, "\r\n", &h);
	assert_string_equal(h.envelope, "");
	free(json);
	mq_headers_clear(&h);

	/* 8-bit: only with SMTPUTF8. */
	json = run("x-mq-envelope: j\xc3\xb8rn@a.example\r\n\r\n", 0,
	    MQH_F_STRIP, "\r\n", &h);
	assert_null(h.envelope);
	free(json);
	mq_headers_clear(&h);
	json = run("x-mq-envelope: j\xc3\xb8rn@a.example\r\n\r\n", 0,
	    MQH_F_STRIP | MQH_F_UTF8, "\r\n", &h);
	assert_string_equal(h.envelope, "j\xc3\xb8rn@a.example");
	free(json);
	mq_headers_clear(&h);
}

static void
test_received_count(void **state)
{
	struct mq_headers	 h;
	char			*json;

	json = run("Received: from a\r\nreceived: from b\r\n\tby c\r\n"
	    "Received-SPF: pass\r\nX: Received: no\r\n\r\n"
	    "Received: in the body\r\n", 1, 0,
	    "Received: from a\r\nreceived: from b\r\n\tby c\r\n"
	    "Received-SPF: pass\r\nX: Received: no\r\n\r\n"
	    "Received: in the body\r\n", &h);
	assert_int_equal(h.nreceived, 2);
	free(json);
	mq_headers_clear(&h);
}

static void
test_no_body(void **state)
{
	/* The message ends inside the header section. */
	check("Subject: x\r\nx-mq-tag: t\r\n", MQH_F_STRIP, "Subject: x\r\n",
	    "{\"tags\":[\"t\"]}", NULL);
	check("", MQH_F_STRIP, "", "{}", NULL);
	check("\r\nx-mq-tag: t\r\n", MQH_F_STRIP, "\r\nx-mq-tag: t\r\n", "{}",
	    NULL);
}

static void
test_bounds(void **state)
{
	struct mq_headers	 h;
	struct out		 o = { NULL, 0 };
	char			*msg, *json, line[64];
	size_t			 i, len;

	/* A field folded far past MQH_FIELD_MAX: removed, ignored. */
	len = 1024 * 1024;
	msg = xmalloc(len + 64);
	memcpy(msg, "x-mq-tag: a\r\n", 13);
	for (i = 13; i + 3 < len; i += 3)
		memcpy(msg + i, " \r\n", 3);
	memcpy(msg + i, "Subject: s\r\n\r\n", 15);
	json = run(msg, 4096, MQH_F_STRIP, "Subject: s\r\n\r\n", &h);
	assert_string_equal(json, "{}");
	assert_non_null(strstr(h.warn, "x-mq-tag: too long"));
	free(json);
	mq_headers_clear(&h);

	/* A 1 MiB header line of another field streams through. */
	memset(msg, 'v', len);
	memcpy(msg, "Subject: ", 9);
	memcpy(msg + len - 2, "\r\n", 2);
	mq_headers_init(&h, MQH_F_STRIP, collect, &o);
	mq_headers_feed(&h, msg, len);
	mq_headers_end(&h);
	assert_int_equal(o.len, len);
	assert_memory_equal(o.p, msg, len);
	free(o.p);
	mq_headers_clear(&h);
	free(msg);

	/* 100,000 headers: linear, and only MQH_FIELDS_MAX looked at. */
	mq_headers_init(&h, MQH_F_STRIP, collect, &o);
	o.p = NULL;
	o.len = 0;
	for (i = 0; i < 100000; i++) {
		len = (size_t)snprintf(line, sizeof(line), i % 2 ?
		    "X-Other-%zu: v\r\n" : "x-mq-k%zu: v\r\n", i);
		mq_headers_feed(&h, line, len);
	}
	mq_headers_feed(&h, "\r\n", 2);
	mq_headers_end(&h);
	assert_int_equal(h.nfields, 50000);
	assert_int_equal(h.nprops, MQH_FIELDS_MAX);
	assert_non_null(strstr(h.warn, "over 100 x-mq fields"));
	assert_null(strstr(o.p, "x-mq-"));
	free(o.p);
	mq_headers_clear(&h);

	/* Too many list items. */
	o.p = NULL;
	o.len = 0;
	mq_headers_init(&h, MQH_F_STRIP, collect, &o);
	for (i = 0; i < MQH_TAGS_MAX + 1; i++) {
		len = (size_t)snprintf(line, sizeof(line), "x-mq-tag: t%zu\r\n",
		    i);
		mq_headers_feed(&h, line, len);
	}
	mq_headers_end(&h);
	assert_non_null(strstr(h.warn, "x-mq-tag: too many"));
	assert_int_equal(h.nprops, MQH_TAGS_MAX);
	free(o.p);
	mq_headers_clear(&h);
}

static void
test_names(void **state)
{
	char	msg[256];

	/* A bad name is still removed; a name of 64 octets is fine. */
	check("x-mq-: v\r\nx-mq-a b: v\r\nX-MQ-\r\nSubject: s\r\n\r\n",
	    MQH_F_STRIP, "Subject: s\r\n\r\n", "{}",
	    "x-mq field with a bad name");
	snprintf(msg, sizeof(msg), "x-mq-%064d: v\r\n\r\n", 0);
	check(msg, MQH_F_STRIP, "\r\n",
	    "{\"0000000000000000000000000000000000000000000000000000000000000000"
	    "\":\"v\"}", NULL);
	snprintf(msg, sizeof(msg), "x-mq-%065d: v\r\n\r\n", 0);
	check(msg, MQH_F_STRIP, "\r\n", "{}", "bad name");
	/* Spaces before the colon, and no x-mq look-alikes. */
	check("x-mq-tag : t\r\nx-mqtag: u\r\nx-m: w\r\n\r\n", MQH_F_STRIP,
	    "x-mqtag: u\r\nx-m: w\r\n\r\n", "{\"tags\":[\"t\"]}", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strip_basic),
		cmocka_unit_test(test_keep_when_off),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_smarthost),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_lists_and_numbers),
		cmocka_unit_test(test_repeat_last_wins),
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_received_count),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
