/*
 * Fuzz target: the config loader (common/conf.h) on libconfig text, as in
 * mtad.conf, and on --KEY=VALUE overrides.
 *
 * Input: byte 0 picks the mode.  Even: the rest is a config file's text.
 * Odd: the rest is "KEY\0VALUE", one command-line override.
 *
 * Properties: a bad input is an error with a cause, never a crash or an
 * exit; and for a config that loads and validates, every process's slice
 * (what the master sends to a child at setup) loads again, in a fresh
 * config, and slices to the very same text: a child can never fail on the
 * master's own output, and nothing changes on the way.
 */
#include <string.h>

#include "conf.h"
#include "fuzz.h"
#include "proto.h"
#include "xmalloc.h"

/* The master's slice for every process reads back to itself. */
static void
check_slices(const struct conf *c)
{
	struct conf	*again;
	char		*slice, *slice2, *cause;
	int		 proc;

	for (proc = 0; proc < PROC_COUNT; proc++) {
		slice = conf_slice(c, proc);
		again = conf_new();
		cause = NULL;
		if (conf_load_text(again, slice, &cause) == -1) {
			fprintf(stderr, "slice for proc %d does not load: %s\n"
			    "--- slice ---\n%s\n", proc, cause, slice);
			abort();
		}
		slice2 = conf_slice(again, proc);
		if (strcmp(slice, slice2) != 0) {
			fprintf(stderr, "slice for proc %d changed:\n--- first "
			    "---\n%s\n--- second ---\n%s\n", proc, slice,
			    slice2);
			abort();
		}
		free(slice);
		free(slice2);
		conf_free(again);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE	*devnull;
	struct conf	*c;
	char		*text, *cause = NULL, *value;
	int		 r;

	if (size < 1 || size > 65536)
		return 0;
	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	text = xstrndup((const char *)data + 1, size - 1);
	c = conf_new();
	if (data[0] & 1) {
		/* KEY\0VALUE: xstrndup stopped at the NUL. */
		value = strlen(text) + 1 < size - 1 ?
		    xstrndup((const char *)data + 1 + strlen(text) + 1,
		    size - 2 - strlen(text)) : xstrdup("");
		r = conf_override(c, text, value, &cause);
		free(value);
	} else
		r = conf_load_text(c, text, &cause);
	FUZZ_CHECK(r == 0 || r == -1);
	FUZZ_CHECK(r == 0 || cause != NULL);
	free(cause);
	cause = NULL;
	if (r == 0 && conf_validate(c, &cause) == 0) {
		check_slices(c);
		conf_print(c, devnull);
	}
	free(cause);
	conf_free(c);
	free(text);
	return 0;
}
