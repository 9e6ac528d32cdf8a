/* Unit tests of json_parse_object: one strict object, canonical numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json.h>

#include "json_strict.h"

/* Parse text; NULL or its compact re-serialization (caller frees). */
static char *
roundtrip(const char *text)
{
	struct json_object	*o;
	char			*out;

	if ((o = json_parse_object(text, strlen(text))) == NULL)
		return NULL;
	out = strdup(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

static void
test_refused(void **state)
{
	static const char *bad[] = {
		"", "   ", "[1]", "\"s\"", "1", "{", "{\"a\":1}x",
		"{\"a\":1}{}", "{\"a\":NaN}", "{\"a\":Infinity}",
		"{\"a\":-Infinity}", "{\"a\":[1,2e400]}", "{\"a\":1,}",
		"{\"a\":073634446}", "{\"a\":{\"b\":NaN}}",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char	*out = roundtrip(bad[i]);

		if (out != NULL)
			fail_msg("accepted %s as %s", bad[i], out);
	}
	/* a NUL inside the given length is not the end of the text */
	assert_null(json_parse_object("{}\0{}", 5));
}

static void
test_canonical_numbers(void **state)
{
	static const struct {
		const char	*in;
		const char	*out;
	} cases[] = {
		{ "{\"a\":1.}", "{\"a\":1.0}" },
		{ "{\"a\":1.50}", "{\"a\":1.5}" },
		{ "  {\"a\":[0.5,{\"b\":2.0}]}\n", "{\"a\":[0.5,{\"b\":2.0}]}" },
		{ "{\"a\":12,\"s\":\"x\"}", "{\"a\":12,\"s\":\"x\"}" },
	};
	size_t	 i;
	char	*out;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out = roundtrip(cases[i].in);
		assert_non_null(out);
		assert_string_equal(out, cases[i].out);
		free(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_canonical_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
