/* Tests engineio/base/buf.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base.h"

static void test_append_and_grow(void **state)
{
	base_buf b = BASE_BUF_INIT;
	char expect[10000];

	for (size_t i = 0; i < sizeof(expect); i++) {
		char c = (char)('a' + i % 26);

		expect[i] = c;
		assert_int_equal(base_buf_append(&b, &c, 1), 0);
		assert_true(b.cap >= b.len);
	}
	assert_int_equal(b.len, sizeof(expect));
	assert_memory_equal(b.data, expect, sizeof(expect));
	assert_int_equal(base_buf_append(&b, NULL, 0), 0);
	assert_int_equal(b.len, sizeof(expect));
	base_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	base_buf_free(&b); /* twice is harmless */
}

static void test_append_str_and_printf(void **state)
{
	base_buf b = BASE_BUF_INIT;

	assert_int_equal(base_buf_append_str(&b, "hello"), 0);
	assert_int_equal(base_buf_append_str(&b, ""), 0);
	assert_int_equal(base_buf_printf(&b, " %d %s", 42, "x"), 0);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "hello 42 x", 10);
	/* A format longer than the free room takes the second pass. */
	char big[500];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(base_buf_printf(&b, "[%s]", big), 0);
	assert_int_equal(b.len, 10 + 2 + 499);
	assert_int_equal(b.data[10], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(base_buf_printf(&b, "%s", ""), 0);
	assert_int_equal(b.len, 511);
	base_buf_free(&b);

	/* printf into an empty buffer. */
	assert_int_equal(base_buf_printf(&b, "%u", 7u), 0);
	assert_int_equal(b.len, 1);
	assert_int_equal(b.data[0], '7');
	base_buf_free(&b);
}

static void test_consume(void **state)
{
	base_buf b = BASE_BUF_INIT;

	assert_int_equal(base_buf_append_str(&b, "abcdef"), 0);
	base_buf_consume(&b, 0);
	assert_int_equal(b.len, 6);
	base_buf_consume(&b, 2);
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.data, "cdef", 4);
	base_buf_consume(&b, 100);
	assert_int_equal(b.len, 0);
	base_buf_consume(&b, 1);
	assert_int_equal(b.len, 0);
	base_buf_free(&b);
}

static void test_reserve(void **state)
{
	base_buf b = BASE_BUF_INIT;

	assert_int_equal(base_buf_reserve(&b, 0), 0);
	assert_int_equal(base_buf_reserve(&b, 1000), 0);
	assert_true(b.cap >= 1000);
	assert_int_equal(b.len, 0);
	assert_int_equal(base_buf_append_str(&b, "x"), 0);
	assert_int_equal(base_buf_reserve(&b, SIZE_MAX), BASE_ENOMEM);
	assert_int_equal(b.len, 1); /* unchanged on failure */
	assert_int_equal(b.data[0], 'x');
	base_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_grow),
	    cmocka_unit_test(test_append_str_and_printf),
	    cmocka_unit_test(test_consume),
	    cmocka_unit_test(test_reserve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
