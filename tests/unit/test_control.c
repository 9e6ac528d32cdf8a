/*
 * The pure parts of mtactl's work in common/: a reload keeps the
 * running value of every restart-only key and names those that changed
 * (conf_keep_restart); a held recipient survives its envelope's round
 * trip, and an envelope without the mark reads as not held; counters
 * add up and have their names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "counter.h"
#include "envelope.h"

static struct conf *
conf_from(const char *text)
{
	struct conf	*c = conf_new();
	char		*cause = NULL;

	if (conf_load_text(c, text, &cause) == -1)
		fail_msg("conf_load_text: %s", cause);
	return c;
}

static void
test_keep_restart_names_changed_keys(void **state)
{
	struct conf	*old, *new;
	char		*names;

	old = conf_from("smtp-port = 25;\nsmtp-workers = 2;\n"
	    "smarthost = \"a.example\";\npid-file = \"/run/a.pid\";\n");
	new = conf_from("smtp-port = [25, 587];\nsmtp-workers = 4;\n"
	    "smarthost = \"b.example\";\npid-file = \"/run/a.pid\";\n");
	names = conf_keep_restart(new, old);
	assert_non_null(names);
	assert_string_equal(names, "smtp-port, smtp-workers");
	/* The new conf runs with the old restart-only values... */
	assert_int_equal(new->smtp_port.n, 1);
	assert_int_equal(new->smtp_port.v[0], 25);
	assert_int_equal(new->smtp_workers, 2);
	assert_string_equal(new->pid_file, "/run/a.pid");
	/* ...and the new live ones. */
	assert_string_equal(new->smarthost, "b.example");
	free(names);
	conf_free(old);
	conf_free(new);
}

static void
test_keep_restart_nothing_changed(void **state)
{
	struct conf	*old, *new;

	old = conf_from("smarthost = \"a.example\";\n");
	new = conf_from("smarthost = \"b.example\";\nretries = [60];\n");
	assert_null(conf_keep_restart(new, old));
	assert_string_equal(new->smarthost, "b.example");
	conf_free(old);
	conf_free(new);
}

static void
test_envelope_held_round_trip(void **state)
{
	struct envelope	 a, b;
	char		*text, *cause = NULL;

	envelope_init(&a);
	memcpy(a.id, "0A1B2C3D4E5F", MSGID_SIZE);
	a.sender = strdup("s@example.org");
	a.client = strdup("c");
	a.local_ip = strdup("");
	a.helo = strdup("h");
	a.properties = strdup("{}");
	envelope_add_rcpt(&a, "held@example.com", 10);
	envelope_add_rcpt(&a, "free@example.com", 10);
	assert_int_equal(a.rcpts[0].held, 0);
	a.rcpts[0].held = 1;
	text = envelope_to_json(&a, &cause);
	assert_non_null(text);
	/* Written only when set. */
	assert_non_null(strstr(text, "\"held\":true"));
	assert_null(strstr(text, "\"held\":false"));
	assert_int_equal(envelope_from_json(&b, text, strlen(text), &cause), 0);
	assert_int_equal(b.rcpts[0].held, 1);
	assert_int_equal(b.rcpts[1].held, 0);
	free(text);
	envelope_clear(&a);
	envelope_clear(&b);
}

static void
test_envelope_held_must_be_boolean(void **state)
{
	struct envelope	 b;
	char		*cause = NULL;
	const char	*text = "{\"id\":\"0A1B2C3D4E5F\",\"envelope\":\"\","
	    "\"received\":1,\"client\":\"\",\"local-ip\":\"\",\"helo\":\"\","
	    "\"size\":1,\"properties\":{},\"recipients\":[{\"address\":"
	    "\"a@b\",\"state\":\"queued\",\"attempts\":0,\"next\":1,"
	    "\"last\":\"\",\"held\":1}]}";

	assert_int_equal(envelope_from_json(&b, text, strlen(text), &cause),
	    -1);
	assert_non_null(strstr(cause, "held"));
	free(cause);
}

static void
test_counters(void **state)
{
	counter_add(COUNTER_RECEIVED, 2);
	counter_add(COUNTER_RECEIVED, 3);
	counter_add(COUNTER_COUNT, 7);		/* ignored */
	assert_int_equal(counter_get(COUNTER_RECEIVED), 5);
	assert_int_equal(counter_get(COUNTER_CONN_OUT), 0);
	assert_string_equal(counter_name(COUNTER_CONN_IN), "connections-in");
	assert_string_equal(counter_name(COUNTER_BOUNCED), "bounced");
	assert_string_equal(counter_name(-1), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keep_restart_names_changed_keys),
		cmocka_unit_test(test_keep_restart_nothing_changed),
		cmocka_unit_test(test_envelope_held_round_trip),
		cmocka_unit_test(test_envelope_held_must_be_boolean),
		cmocka_unit_test(test_counters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
