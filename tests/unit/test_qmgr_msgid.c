/* Queue ids (common/msgid.c): format, validation, uniqueness. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "msgid.h"

static void
test_format(void **state)
{
	char	 buf[MSGID_SIZE];

	msgid_format(msgid_from_time(1, 2), buf);
	assert_string_equal(buf, "000000100002");
	msgid_format(UINT64_C(0xabcdef012345), buf);
	assert_string_equal(buf, "ABCDEF012345");
	/* Bits above 48 are dropped, never printed as a 13th digit. */
	msgid_format(UINT64_C(0xff0000000000001), buf);
	assert_string_equal(buf, "000000000001");
	assert_int_equal(strlen(buf), MSGID_LEN);
	assert_true(msgid_valid(buf));
}

static void
test_from_time(void **state)
{
	uint64_t	 id;

	id = msgid_from_time(1764000000, 999999);
	assert_int_equal(id >> 20, 1764000000 & ((1u << 28) - 1));
	assert_int_equal(id & 0xfffff, 999999);
	assert_true(id <= MSGID_MASK);
	/* Later times give larger ids (within one 8.5-year period). */
	assert_true(msgid_from_time(1764000001, 0) > id);
}

static void
test_next(void **state)
{
	/* The clock ahead: take it. */
	assert_int_equal(msgid_next(5, 9), 9);
	/* The same microsecond, or a clock stepped back: last + 1. */
	assert_int_equal(msgid_next(9, 9), 10);
	assert_int_equal(msgid_next(9, 3), 10);
	/* Wraps within 48 bits. */
	assert_int_equal(msgid_next(MSGID_MASK, 0), 0);
}

static void
test_valid(void **state)
{
	static const char *bad[] = {
		"", "0A1B2C3D4E5", "0A1B2C3D4E5F0", "0a1b2c3d4e5f",
		"0A1B2C3D4E5G", "0A1B2C3D4E5F.env", "../../etc/pw",
		" A1B2C3D4E5F",
	};
	uint64_t	 id;
	size_t		 i;

	assert_true(msgid_valid("0A1B2C3D4E5F"));
	assert_int_equal(msgid_parse("0A1B2C3D4E5F", &id), 0);
	assert_true(id == UINT64_C(0x0A1B2C3D4E5F));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(msgid_valid(bad[i]));
		assert_int_equal(msgid_parse(bad[i], &id), -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_from_time),
		cmocka_unit_test(test_next),
		cmocka_unit_test(test_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
