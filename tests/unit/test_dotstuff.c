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

/* The octet-at-a-time stuffer the line-at-a-time one must match. */
static size_t
ref_chunk(struct dotstuff *d, const char *in, size_t len, char *out)
{
	size_t	 i, o = 0;
	char	 c;

	for (i = 0; i < len; i++) {
		c = in[i];
		if (c == '.' && d->bol)
			out[o++] = '.';
		if (c == '\n' && !d->cr)
			out[o++] = '\r';
		out[o++] = c;
		d->bol = (c == '\n');
		d->cr = (c == '\r');
	}
	return o;
}

/* Random text of dots, CRs, LFs and letters, in random chunks. */
static void
test_random_against_reference(void **state)
{
	static const char	 alphabet[] = ".\r\nab.\r\n";
	struct dotstuff		 d, r;
	char			 in[600], out[2 * 600 + 8], ref[2 * 600 + 8];
	size_t			 len, i, n, o, ro;
	int			 round;

	(void)state;
	srandom(7);
	for (round = 0; round < 20000; round++) {
		len = (size_t)random() % sizeof(in);
		for (i = 0; i < len; i++)
			in[i] = alphabet[random() % (sizeof(alphabet) - 1)];
		dotstuff_init(&d);
		dotstuff_init(&r);
		for (i = o = ro = 0; i < len; i += n) {
			n = 1 + (size_t)random() % 64;
			if (n > len - i)
				n = len - i;
			o += dotstuff_chunk(&d, in + i, n, out + o);
			ro += ref_chunk(&r, in + i, n, ref + ro);
			assert_int_equal(d.bol, r.bol);
			assert_int_equal(d.cr, r.cr);
		}
		assert_int_equal(o, ro);
		assert_memory_equal(out, ref, o);
	}
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
		cmocka_unit_test(test_random_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
