/*
 * Interned strings (common/intern.c): one copy per text, counted
 * references, plain strings freed by the same release, and a table that
 * grows and shrinks without losing an entry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "intern.h"

static void
test_shared(void **state)
{
	size_t	 before = intern_count();
	char	*a, *b, *c, same[32];

	a = intern_str("sender@example.org");
	/* Another buffer with the same text: the same copy. */
	snprintf(same, sizeof(same), "sender@%s", "example.org");
	b = intern_str(same);
	assert_ptr_equal(a, b);
	assert_ptr_not_equal(a, same);
	assert_string_equal(a, "sender@example.org");
	c = intern_str("sender@example.net");
	assert_ptr_not_equal(a, c);
	assert_int_equal(intern_count(), before + 2);

	/* The copy lives while one reference is left. */
	intern_release(a);
	assert_true(intern_owns(b));
	assert_string_equal(b, "sender@example.org");
	intern_release(b);		/* the last: freed (ASan checks) */
	assert_int_equal(intern_count(), before + 1);
	assert_false(intern_owns(same));
	intern_release(c);
	assert_int_equal(intern_count(), before);
}

static void
test_empty_and_null(void **state)
{
	size_t	 before = intern_count();
	char	*a, *b;

	a = intern_str("");
	b = intern_str("");
	assert_ptr_equal(a, b);
	assert_string_equal(a, "");
	intern_release(a);
	intern_release(b);
	intern_release(NULL);		/* nothing */
	assert_false(intern_owns(NULL));
	assert_int_equal(intern_count(), before);
}

static void
test_plain(void **state)
{
	size_t	 before = intern_count();
	char	*shared, *plain;

	/* A plain copy of an interned text is not the interned one... */
	shared = intern_str("relay.example[192.0.2.7]:25");
	plain = strdup("relay.example[192.0.2.7]:25");
	assert_true(intern_owns(shared));
	assert_false(intern_owns(plain));
	/* ...and its release frees it (ASan would see a leak otherwise). */
	intern_release(plain);
	assert_true(intern_owns(shared));
	assert_string_equal(shared, "relay.example[192.0.2.7]:25");
	intern_release(shared);
	assert_int_equal(intern_count(), before);

	/* A text never interned at all. */
	intern_release(strdup("never interned"));
	assert_int_equal(intern_count(), before);
}

/* Many distinct strings: the table doubles, then halves, and keeps all. */
static void
test_grow_shrink(void **state)
{
	enum { N = 5000 };
	char	**v, buf[32];
	size_t	  before = intern_count(), i;

	v = calloc(N, sizeof(*v));
	assert_non_null(v);
	for (i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "rcpt%zu@example.com", i);
		v[i] = intern_str(buf);
	}
	assert_int_equal(intern_count(), before + N);
	for (i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "rcpt%zu@example.com", i);
		assert_ptr_equal(intern_str(buf), v[i]);
		intern_release(v[i]);	/* the reference just taken */
		assert_string_equal(v[i], buf);
	}
	/* Release most of them: the survivors stay findable. */
	for (i = 0; i < N; i++)
		if (i % 100 != 0) {
			intern_release(v[i]);
			v[i] = NULL;
		}
	assert_int_equal(intern_count(), before + N / 100);
	for (i = 0; i < N; i += 100) {
		snprintf(buf, sizeof(buf), "rcpt%zu@example.com", i);
		assert_true(intern_owns(v[i]));
		assert_ptr_equal(intern_str(buf), v[i]);
		intern_release(v[i]);
		intern_release(v[i]);
	}
	assert_int_equal(intern_count(), before);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared),
		cmocka_unit_test(test_empty_and_null),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_grow_shrink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
