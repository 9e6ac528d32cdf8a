/*
 * Envelope JSON (common/envelope.c): a round trip keeps every field, and
 * every kind of damage is refused with a cause rather than half-read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dsn.h"
#include "envelope.h"
#include "intern.h"

static void
fill(struct envelope *env)
{
	envelope_init(env);
	memcpy(env->id, "0A1B2C3D4E5F", MSGID_SIZE);
	env->sender = strdup("sender\"quote\\back/slash@example.org");
	env->received = 1764000000;
	env->client = strdup("host.example[192.0.2.1]");
	env->local_ip = strdup("2001:db8::10");
	env->helo = strdup("h\xc3\xa9lo \x01 ctl");
	env->size = UINT64_C(5000000000);
	env->properties = strdup("{\"tags\":[\"a\",\"b\"],"
	    "\"smarthost\":{\"hostname\":\"r.example\",\"port\":587}}");
	envelope_add_rcpt(env, "a@example.com", 1764000000);
	envelope_add_rcpt(env, "b@example.net", 1764000600);
	env->rcpts[1].state = ENV_RCPT_DEFERRED;
	env->rcpts[1].attempts = 3;
	free(env->rcpts[1].last);
	env->rcpts[1].last = strdup("451 4.7.1 try \"later\"\r\n");
	envelope_add_rcpt(env, "c@example.org", 0);
	env->rcpts[2].state = ENV_RCPT_DELIVERED;
	envelope_add_rcpt(env, "d@example.org", INT64_C(9000000000));
	env->rcpts[3].state = ENV_RCPT_FAILED;
	env->rcpts[3].attempts = INT32_MAX;	/* the most a file may say */
	/* DSN parameters and the last attempt's details. */
	env->rcpts[1].notify = DSN_NOTIFY_FAILURE | DSN_NOTIFY_DELAY;
	free(env->rcpts[1].orcpt);
	env->rcpts[1].orcpt = strdup("rfc822;B@Example.NET");
	snprintf(env->rcpts[1].status, sizeof(env->rcpts[1].status), "4.7.1");
	env->rcpts[1].code = 451;
	free(env->rcpts[1].relay);
	env->rcpts[1].relay = strdup("mx.example.net[192.0.2.7]:25");
	env->rcpts[1].warned = 1;
	env->rcpts[3].notify = DSN_NOTIFY_NEVER;
}

static void
test_round_trip(void **state)
{
	struct envelope	 a, b;
	char		*text, *again, *cause = NULL;
	size_t		 i;

	fill(&a);
	text = envelope_to_json(&a, &cause);
	assert_non_null(text);
	assert_int_equal(envelope_from_json(&b, text, strlen(text), &cause),
	    0);
	assert_string_equal(b.id, a.id);
	assert_string_equal(b.sender, a.sender);
	assert_true(b.received == a.received);
	assert_string_equal(b.client, a.client);
	assert_string_equal(b.local_ip, a.local_ip);
	assert_string_equal(b.helo, a.helo);
	assert_true(b.size == a.size);
	assert_string_equal(b.properties, a.properties);
	assert_int_equal(b.nrcpt, a.nrcpt);
	for (i = 0; i < a.nrcpt; i++) {
		assert_string_equal(b.rcpts[i].address, a.rcpts[i].address);
		assert_int_equal(b.rcpts[i].state, a.rcpts[i].state);
		assert_int_equal(b.rcpts[i].attempts, a.rcpts[i].attempts);
		assert_true(b.rcpts[i].next == a.rcpts[i].next);
		assert_string_equal(b.rcpts[i].last, a.rcpts[i].last);
		assert_int_equal(b.rcpts[i].notify, a.rcpts[i].notify);
		assert_string_equal(b.rcpts[i].orcpt, a.rcpts[i].orcpt);
		assert_string_equal(b.rcpts[i].status, a.rcpts[i].status);
		assert_int_equal(b.rcpts[i].code, a.rcpts[i].code);
		assert_string_equal(b.rcpts[i].relay, a.rcpts[i].relay);
		assert_int_equal(b.rcpts[i].warned, a.rcpts[i].warned);
	}
	/* Writing what was read gives the same text. */
	again = envelope_to_json(&b, &cause);
	assert_string_equal(again, text);
	free(again);
	free(text);
	envelope_clear(&a);
	envelope_clear(&b);
}

static void
test_field_names(void **state)
{
	struct envelope	 a;
	char		*text, *cause = NULL;

	fill(&a);
	text = envelope_to_json(&a, &cause);
	/* Names users and tools rely on (DESIGN.md, mtactl show). */
	assert_non_null(strstr(text, "\"id\":\"0A1B2C3D4E5F\""));
	assert_non_null(strstr(text, "\"envelope\":"));
	assert_non_null(strstr(text, "\"received\":1764000000"));
	assert_non_null(strstr(text, "\"local-ip\":\"2001:db8::10\""));
	assert_non_null(strstr(text, "\"size\":5000000000"));
	assert_non_null(strstr(text, "\"state\":\"deferred\""));
	assert_non_null(strstr(text, "\"attempts\":3"));
	assert_non_null(strstr(text, "\"tags\":[\"a\",\"b\"]"));
	assert_non_null(strstr(text, "\"notify\":\"FAILURE,DELAY\""));
	assert_non_null(strstr(text, "\"notify\":\"NEVER\""));
	assert_non_null(strstr(text, "\"orcpt\":\"rfc822;B@Example.NET\""));
	assert_non_null(strstr(text, "\"status\":\"4.7.1\",\"code\":451"));
	assert_non_null(strstr(text, "\"warned\":true"));
	free(text);
	envelope_clear(&a);
}

static const char good[] =
    "{\"id\":\"0A1B2C3D4E5F\",\"envelope\":\"\",\"received\":1,"
    "\"client\":\"c\",\"local-ip\":\"\",\"helo\":\"h\",\"size\":1,"
    "\"properties\":{},\"recipients\":[{\"address\":\"a@b\","
    "\"state\":\"queued\",\"attempts\":0,\"next\":1,\"last\":\"\"}]}";

static void
test_good_variants(void **state)
{
	struct envelope	 e;
	char		*cause = NULL, *t;

	assert_int_equal(envelope_from_json(&e, good, strlen(good), &cause),
	    0);
	assert_string_equal(e.sender, "");
	/* An older file without the DSN members: defaults. */
	assert_int_equal(e.rcpts[0].notify, 0);
	assert_string_equal(e.rcpts[0].orcpt, "");
	assert_string_equal(e.rcpts[0].status, "");
	assert_int_equal(e.rcpts[0].code, 0);
	assert_string_equal(e.rcpts[0].relay, "");
	assert_int_equal(e.rcpts[0].warned, 0);
	envelope_clear(&e);

	/* Trailing whitespace (the file ends with a newline) is fine. */
	assert_int_equal(asprintf(&t, "%s \n", good) > 0, 1);
	assert_int_equal(envelope_from_json(&e, t, strlen(t), &cause), 0);
	envelope_clear(&e);
	free(t);

	/* Unknown members are ignored: a newer writer may add some. */
	assert_int_equal(asprintf(&t, "{\"future\":[1,2],%s", good + 1) > 0,
	    1);
	assert_int_equal(envelope_from_json(&e, t, strlen(t), &cause), 0);
	envelope_clear(&e);
	free(t);
}

/* Replace the first "from" in good by "to" and expect a refusal. */
static void
expect_bad(const char *from, const char *to)
{
	struct envelope	 e;
	const char	*p;
	char		*text, *cause = NULL;
	size_t		 off;

	p = strstr(good, from);
	assert_non_null(p);
	off = (size_t)(p - good);
	text = malloc(sizeof(good) + strlen(to));
	memcpy(text, good, off);
	strcpy(text + off, to);
	strcat(text, p + strlen(from));
	if (envelope_from_json(&e, text, strlen(text), &cause) != -1)
		fail_msg("accepted: %s", text);
	assert_non_null(cause);
	free(cause);
	free(text);
}

static void
test_bad(void **state)
{
	struct envelope	 e;
	char		*cause = NULL;
	size_t		 n;

	expect_bad("0A1B2C3D4E5F", "0a1b2c3d4e5f");
	expect_bad("0A1B2C3D4E5F", "../etc");
	expect_bad("\"envelope\":\"\"", "\"envelope\":null");
	expect_bad("\"received\":1", "\"received\":\"1\"");
	expect_bad("\"received\":1", "\"received\":-1");
	expect_bad("\"size\":1", "\"size\":1.5");
	expect_bad("\"properties\":{}", "\"properties\":\"{}\"");
	expect_bad("\"properties\":{},", "");
	expect_bad("\"helo\":\"h\",", "");
	expect_bad("[{", "[1,{");
	expect_bad("\"state\":\"queued\"", "\"state\":\"lost\"");
	expect_bad("\"attempts\":0", "\"attempts\":-1");
	expect_bad("\"attempts\":0", "\"attempts\":4294967296");
	/* values whose arithmetic in qmgr would overflow */
	expect_bad("\"attempts\":0", "\"attempts\":4294967295");
	expect_bad("\"received\":1", "\"received\":9223372036854775807");
	expect_bad("\"next\":1", "\"next\":253402300800");
	expect_bad("\"last\":\"\"", "\"last\":0");
	expect_bad("\"next\":1,", "");
	expect_bad("\"recipients\":[{\"address\":\"a@b\",\"state\":\"queued\","
	    "\"attempts\":0,\"next\":1,\"last\":\"\"}]", "\"recipients\":[]");
	expect_bad("\"last\":\"\"", "\"last\":\"\",\"notify\":\"SOMETIMES\"");
	expect_bad("\"last\":\"\"", "\"last\":\"\",\"notify\":\"NEVER,DELAY\"");
	expect_bad("\"last\":\"\"", "\"last\":\"\",\"orcpt\":1");
	expect_bad("\"last\":\"\"", "\"last\":\"\",\"code\":1000");
	expect_bad("\"last\":\"\"", "\"last\":\"\",\"code\":\"451\"");
	expect_bad("\"last\":\"\"",
	    "\"last\":\"\",\"status\":\"4.4.4.4.4.4.4.4.4.4.4\"");
	expect_bad("\"last\":\"\"", "\"last\":\"\",\"warned\":1");
	expect_bad("}]}", "}]}x");
	expect_bad("}]}", "}]}{}");

	/* Truncated anywhere: never accepted. */
	for (n = 0; n < strlen(good); n++) {
		if (envelope_from_json(&e, good, n, &cause) != -1)
			fail_msg("accepted %zu bytes", n);
		free(cause);
		cause = NULL;
	}
	if (envelope_from_json(&e, "[]", 2, &cause) != -1)
		fail_msg("accepted an array");
	free(cause);
}

static void
test_properties(void **state)
{
	struct envelope	 a;
	char		*out, *cause = NULL;

	assert_int_equal(envelope_properties_normalize(
	    " { \"a\" : [ 1 , \"x/y\" ] } ", &out), 0);
	assert_string_equal(out, "{\"a\":[1,\"x/y\"]}");
	free(out);
	assert_int_equal(envelope_properties_normalize("[]", &out), -1);
	assert_int_equal(envelope_properties_normalize("{", &out), -1);
	assert_int_equal(envelope_properties_normalize("{} x", &out), -1);

	/* Writing refuses properties that are not an object. */
	fill(&a);
	free(a.properties);
	a.properties = strdup("[1]");
	assert_null(envelope_to_json(&a, &cause));
	assert_non_null(cause);
	free(cause);
	envelope_clear(&a);
}

/*
 * envelope_share: the strings qmgr's messages repeat become one shared
 * copy, the addresses stay the envelope's own, and nothing that is
 * written changes.
 */
static void
test_share(void **state)
{
	struct envelope		 a, b, plain;
	struct envelope_rcpt	*r;
	char			*ta, *tp, *cause = NULL, *last;
	size_t			 before = intern_count(), i, n;

	fill(&a);
	fill(&b);
	fill(&plain);
	envelope_share(&a);
	envelope_share(&b);
	assert_ptr_equal(a.sender, b.sender);
	assert_ptr_equal(a.client, b.client);
	assert_ptr_equal(a.local_ip, b.local_ip);
	assert_null(a.bind_ip);
	assert_ptr_equal(a.helo, b.helo);
	assert_ptr_equal(a.properties, b.properties);
	for (i = 0; i < a.nrcpt; i++) {
		assert_ptr_equal(a.rcpts[i].last, b.rcpts[i].last);
		assert_ptr_equal(a.rcpts[i].orcpt, b.rcpts[i].orcpt);
		assert_ptr_equal(a.rcpts[i].relay, b.rcpts[i].relay);
		assert_ptr_not_equal(a.rcpts[i].address, b.rcpts[i].address);
		assert_false(intern_owns(a.rcpts[i].address));
	}
	/* "" is one copy for every empty field. */
	assert_ptr_equal(a.rcpts[0].last, a.rcpts[0].orcpt);
	/* Sharing again changes nothing. */
	last = a.rcpts[1].last;
	envelope_share(&a);
	assert_ptr_equal(a.rcpts[1].last, last);

	/* The same JSON as the plain envelope's. */
	ta = envelope_to_json(&a, &cause);
	tp = envelope_to_json(&plain, &cause);
	assert_non_null(ta);
	assert_string_equal(ta, tp);
	free(ta);
	free(tp);

	/* envelope_set: shared texts, also from the field's own text. */
	envelope_set(&a.rcpts[0].last, "451 4.4.1 connection refused");
	envelope_set(&b.rcpts[2].last, "451 4.4.1 connection refused");
	assert_ptr_equal(a.rcpts[0].last, b.rcpts[2].last);
	envelope_set(&a.rcpts[0].last, a.rcpts[0].last);
	assert_string_equal(a.rcpts[0].last, "451 4.4.1 connection refused");
	/* On a plain envelope: mixed, and envelope_clear frees both kinds. */
	envelope_set(&plain.rcpts[1].relay, "none");
	assert_true(intern_owns(plain.rcpts[1].relay));
	assert_false(intern_owns(plain.sender));

	envelope_clear(&a);
	envelope_clear(&plain);
	/* qmgr_msg_new's layout: the rcpts array and addresses are kept. */
	r = b.rcpts;
	n = b.nrcpt;
	envelope_clear_keep_rcpts(&b);
	assert_null(b.rcpts);
	assert_int_equal(b.nrcpt, 0);
	assert_string_equal(r[3].address, "d@example.org");
	for (i = 0; i < n; i++)
		free(r[i].address);
	free(r);
	assert_int_equal(intern_count(), before);
}

/* Most messages have no properties: "{}" takes a short way, same result. */
static void
test_empty_properties(void **state)
{
	struct envelope	 a;
	char		*text, *out, *cause = NULL;

	assert_int_equal(envelope_properties_normalize("{}", &out), 0);
	assert_string_equal(out, "{}");
	free(out);
	assert_int_equal(envelope_properties_normalize(" {} ", &out), 0);
	assert_string_equal(out, "{}");
	free(out);
	assert_null(envelope_smarthost_key("{}"));
	fill(&a);
	free(a.properties);
	a.properties = strdup("{}");
	text = envelope_to_json(&a, &cause);
	assert_non_null(text);
	assert_non_null(strstr(text, ",\"properties\":{},"));
	free(text);
	envelope_clear(&a);
}

static void
test_state_names(void **state)
{
	int	 s;

	for (s = ENV_RCPT_QUEUED; s <= ENV_RCPT_FAILED; s++)
		assert_int_equal(envelope_state_from_name(
		    envelope_state_name(s)), s);
	assert_int_equal(envelope_state_from_name("bounced"), -1);
	assert_true(ENV_RCPT_FINAL(ENV_RCPT_DELIVERED));
	assert_true(ENV_RCPT_FINAL(ENV_RCPT_FAILED));
	assert_false(ENV_RCPT_FINAL(ENV_RCPT_DEFERRED));
	assert_false(ENV_RCPT_FINAL(ENV_RCPT_QUEUED));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_field_names),
		cmocka_unit_test(test_good_variants),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_properties),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_share),
		cmocka_unit_test(test_empty_properties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
