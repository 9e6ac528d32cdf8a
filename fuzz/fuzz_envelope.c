/*
 * Fuzz target: the JSON readers of a queued message (common/envelope.h:
 * the envelope reader qmgr runs at recovery on whatever is in the spool's
 * slots; common/msgprops.h: the message properties from x-mq headers or
 * a JSON message; a RabbitMQ outbox message read as qmgr_mq.c does and
 * turned into properties).
 *
 * Properties: bad text is an error with a cause, never a crash; an
 * envelope that reads also writes (qmgr panics when it cannot: a crash
 * loop at every start), to JSON that reads again and writes the very
 * same text (nothing lost or changed on a rewrite, which qmgr
 * does after every attempt); normalized properties are JSON (RFC 8259)
 * and normalize to themselves; the per-message settings stay within their documented
 * bounds; the queue a message joins (envelope_smarthost_key) and the
 * smarthost its worker sends to (props_smarthost) agree.
 */
#include <string.h>

#include <json.h>

#include "envelope.h"
#include "json_strict.h"
#include "fuzz.h"
#include "msgprops.h"
#include "props_route.h"
#include "props_smarthost.h"
#include "xmalloc.h"

static void
check_envelope(const char *text, size_t len)
{
	struct envelope	 env, again;
	char		*cause = NULL, *json, *json2;
	size_t		 i;

	if (envelope_from_json(&env, text, len, &cause) == -1) {
		FUZZ_CHECK(cause != NULL);
		free(cause);
		return;
	}
	FUZZ_CHECK(msgid_valid(env.id) && env.nrcpt > 0);
	for (i = 0; i < env.nrcpt; i++)
		FUZZ_CHECK(env.rcpts[i].address != NULL &&
		    env.rcpts[i].state >= ENV_RCPT_QUEUED &&
		    env.rcpts[i].state <= ENV_RCPT_FAILED);
	/* qmgr rewrites what it read, and log_panic()s if it cannot. */
	if ((json = envelope_to_json(&env, &cause)) == NULL) {
		fprintf(stderr, "an envelope that reads does not write: %s\n",
		    cause);
		abort();
	}
	if (envelope_from_json(&again, json, strlen(json), &cause) == -1) {
		fprintf(stderr, "written envelope does not read back: %s\n%s\n",
		    cause, json);
		abort();
	}
	FUZZ_CHECK(again.nrcpt == env.nrcpt);
	FUZZ_CHECK(strcmp(again.id, env.id) == 0);
	json2 = envelope_to_json(&again, &cause);
	FUZZ_CHECK(json2 != NULL);
	if (strcmp(json, json2) != 0) {
		fprintf(stderr, "envelope changed on a rewrite:\n%s\n%s\n",
		    json, json2);
		abort();
	}
	free(json);
	free(json2);
	envelope_clear(&again);
	envelope_clear(&env);
}

/* Is text one JSON object by RFC 8259, nothing around it? */
static int
strict_json(const char *text)
{
	struct json_tokener	*tok;
	struct json_object	*o;
	int			 ok;

	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)strlen(text));
	ok = o != NULL && json_object_is_type(o, json_type_object) &&
	    json_tokener_get_parse_end(tok) == strlen(text);
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

/*
 * Normalized properties are JSON and normalize to themselves.  That they
 * normalize again at all is checked apart (always): qmgr panics when its
 * own output does not read back.
 */
static int
normalize_ok(const char *text)
{
	char	*out, *out2;
	int	 ok;

	if (envelope_properties_normalize(text, &out) == -1)
		return 1;
	if (envelope_properties_normalize(out, &out2) == -1) {
		fprintf(stderr, "normalized properties do not read back: "
		    "%s\n", out);
		abort();
	}
	ok = strict_json(out) && strcmp(out, out2) == 0;
	free(out2);
	free(out);
	return ok;
}

/*
 * A message from the RabbitMQ outbox, read as qmgr_mq_deliver() does
 * (json_parse_object: one strict object, finite numbers), becomes the
 * properties of a message through envelope_properties_normalize(), which
 * must not fail on it: out_accept() log_panic()s if it does, and the
 * broker would give the same message to the restarted qmgr again.
 */
static void
check_outbox(const char *data, size_t size)
{
	struct json_object	*o;
	char			*props;

	if ((o = json_parse_object(data, size)) == NULL)
		return;
	json_object_object_del(o, "mime");
	if (envelope_properties_normalize(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    &props) == -1) {
		fprintf(stderr, "an outbox object qmgr would panic on\n");
		abort();
	}
	free(props);
	json_object_put(o);
}

/* The reproducer of a fixed bug: json-c's lenient number syntax. */
static int
probe_lenient_numbers(void)
{
	return normalize_ok("{\"a\":1.}") && normalize_ok("{\"a\":NaN}") &&
	    normalize_ok("{\"a\":073634446e}");
}

/*
 * The queue a message joins (qmgr: envelope_smarthost_key) and the host
 * its worker sends to (smtp: props_smarthost) must agree.
 */
static int
smarthost_agrees(const char *text)
{
	struct props_smarthost	 sh;
	char			*key, *want;
	int			 ok = 1;

	key = envelope_smarthost_key(text);
	switch (props_smarthost(text, &sh)) {
	case 1:
		FUZZ_CHECK(sh.username != NULL || sh.password == NULL);
		xasprintf(&want, "(smarthost) %s:%d", sh.hostname, sh.port);
		ok = key != NULL && strcmp(key, want) == 0;
		free(want);
		props_smarthost_clear(&sh);
		break;
	case 0:
		ok = key == NULL;
		break;
	}
	free(key);
	return ok;
}

/* The reproducers of the open bug: lenient parse, unbounded name. */
static int
probe_smarthost(void)
{
	char	 big[400];

	snprintf(big, sizeof(big), "{\"smarthost\":{\"hostname\":\"%0300d\"}}",
	    0);
	return smarthost_agrees("{\"smarthost\":{\"hostname\":\"b\"}}i") &&
	    smarthost_agrees(big);
}

static void
check_properties(const char *text)
{
	struct msgprops		 p;
	struct props_route	 route;
	char			*warnings;
	size_t			 i;

	if (!normalize_ok(text))
		FUZZ_CHECK(!FUZZ_KNOWN_BUG("envelope_properties_normalize "
		    "writes non-JSON numbers (1., NaN, 073634446)",
		    probe_lenient_numbers));
	if (msgprops_parse(text, &p, &warnings) == 0) {
		FUZZ_CHECK(p.nretries <= MSGPROPS_RETRIES_MAX);
		FUZZ_CHECK((p.retries == NULL) == (p.nretries == 0));
		for (i = 0; i < p.nretries; i++)
			FUZZ_CHECK(p.retries[i] >= 1 &&
			    p.retries[i] <= MSGPROPS_RETRY_MAX);
		FUZZ_CHECK(p.maxattempts <= MSGPROPS_ATTEMPTS_MAX);
		FUZZ_CHECK(p.maxdelivertime >= 0 &&
		    p.maxdelivertime <= MSGPROPS_TIME_MAX);
		if (p.envid != NULL)
			FUZZ_CHECK(strlen(p.envid) >= 1 &&
			    strlen(p.envid) <= 100);
		if (p.nretries > 0)
			FUZZ_CHECK(envelope_retry_delay(p.retries, p.nretries,
			    p.nretries + 5) == p.retries[p.nretries - 1]);
		free(warnings);
		msgprops_clear(&p);
	} else
		FUZZ_CHECK(warnings == NULL);
	if (!smarthost_agrees(text))
		FUZZ_CHECK(!FUZZ_KNOWN_BUG("envelope_smarthost_key and "
		    "props_smarthost disagree (trailing bytes, hostnames over "
		    "255 octets)", probe_smarthost));
	props_route(text, &route);
	FUZZ_CHECK(route.nips <= PROPS_IPS_MAX);
	for (i = 0; i < route.nips; i++)
		FUZZ_CHECK(memchr(route.ips[i], '\0', PROPS_IP_LEN) != NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*text, *s;
	int64_t	 t;

	if (size > 65536)
		return 0;
	/* As read from a file: exactly these bytes, NUL or not. */
	check_envelope((const char *)data, size);
	check_outbox((const char *)data, size);
	text = xstrndup((const char *)data, size);
	check_properties(text);
	if (msgprops_parse_time(text, &t) == 0)
		FUZZ_CHECK(t > 0);
	s = envelope_domain(text);
	free(s);
	s = envelope_addr_host(text);
	FUZZ_CHECK(strlen(s) <= strlen(text));
	free(s);
	free(text);
	return 0;
}
