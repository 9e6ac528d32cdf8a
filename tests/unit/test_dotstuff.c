/*
 * Dot-stuffing (common/dotstuff.c): leading dots, bare LFs, the end of
 * data, and state carried across chunk boundaries.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dotstuff.h"

/* Stuff in, cut into chunks of size step, and compare with want. */
static void
check(const char *in, size_t step, const char *want)
{
	struct dotstuff	 d;
	size_t		 len = strlen(in), i, n, o = 0;
	char		*out;

	out = malloc(DOTSTUFF_MAXOUT(len) + DOTSTUFF_ENDLEN + 1);
	dotstuff_init(&d);
	for (i = 0; i < len; i += n) {
		n = len - i < step ? len - i : step;
		o += dotstuff_chunk(&d, in + i, n, out + o);
	}
	o += dotstuff_end(&d, out + o);
	out[o] = '\0';
	assert_string_equal(out, want);
	free(out);
}

static void
test_plain(void **state)
{
	check("a\r\nb\r\n", 1024, "a\r\nb\r\n.\r\n");
	check("", 1024, ".\r\n");
}

static void
test_dots(void **state)
{
	check(".\r\n", 1024, "..\r\n.\r\n");
	check("a\r\n.b\r\n..\r\nc.d\r\n", 1024,
	    "a\r\n..b\r\n...\r\nc.d\r\n.\r\n");
	check(".start", 1024, "..start\r\n.\r\n");
}

static void
test_line_ends(void **state)
{
	check("a\nb\n", 1024, "a\r\nb\r\n.\r\n");
	check("no end", 1024, "no end\r\n.\r\n");
	check("cr end\r", 1024, "cr end\r\n.\r\n");
	check("a\n.\n", 1024, "a\r\n..\r\n.\r\n");
}

static void
test_chunks(void **state)
{
	const char	*in = "a\r\n.b\r\n.\r\nxx\n.\r\nend";
	const char	*want = "a\r\n..b\r\n..\r\nxx\r\n..\r\nend\r\n.\r\n";
	size_t		 step;

	for (step = 1; step < 8; step++)
		check(in, step, want);
}

static void
test_worst_case(void **state)
{
	check("\n.\n.", 1, "\r\n..\r\n..\r\n.\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_dots),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_worst_case),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
