/* Unit tests for lib/buf: limits, growth, consume, secrets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lib/buf.h"

static void
test_limit_enforced(void **state)
{
	struct buf b;

	buf_init(&b, 10);
	assert_int_equal(buf_append(&b, "0123456789", 10), 0);
	assert_int_equal(buf_append(&b, "x", 1), -1);
	assert_int_equal(b.len, 10);
	assert_int_equal(buf_printf(&b, "%s", ""), 0);
	buf_reset(&b);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "abcdefgh"), -1);
	assert_int_equal(b.len, 0);
	assert_int_equal(buf_printf(&b, "%d-%s", 42, "abc"), 0);
	assert_string_equal(b.data, "42-abc");
	buf_free(&b);
}

static void
test_growth_and_nul(void **state)
{
	struct buf b;

	buf_init(&b, 1 << 20);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_append(&b, "a\0b", 3), 0);
	assert_int_equal(b.len, 3000);
	assert_int_equal(b.data[3000], '\0');
	assert_memory_equal(b.data + 2997, "a\0b", 3);
	buf_free(&b);
	assert_null(b.data);
}

static void
test_consume_and_shrink(void **state)
{
	struct buf b;

	buf_init(&b, 100);
	assert_int_equal(buf_append_str(&b, "HELO x\r\nNOOP\r\n"), 0);
	buf_consume(&b, 8);
	assert_string_equal(b.data, "NOOP\r\n");
	buf_shrink(&b); /* not empty: keeps storage */
	assert_non_null(b.data);
	buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	buf_shrink(&b);
	assert_null(b.data);
	assert_int_equal(buf_append_str(&b, "again"), 0);
	assert_string_equal(b.data, "again");
	buf_free(&b);
}

static void
test_secret_growth(void **state)
{
	struct buf b;

	buf_init(&b, 4096);
	buf_set_secret(&b);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_append_str(&b, "password"), 0);
	assert_int_equal(b.len, 800);
	assert_memory_equal(b.data + 792, "password", 8);
	buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_limit_enforced),
	    cmocka_unit_test(test_growth_and_nul),
	    cmocka_unit_test(test_consume_and_shrink),
	    cmocka_unit_test(test_secret_growth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
