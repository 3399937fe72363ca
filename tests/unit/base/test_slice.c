/* Tests engineio/base/slice.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"

static void test_eq(void **state)
{
	assert_true(base_slice_eq(BASE_SLICE_LIT("abc"), "abc"));
	assert_false(base_slice_eq(BASE_SLICE_LIT("abc"), "abcd"));
	assert_false(base_slice_eq(BASE_SLICE_LIT("abcd"), "abc"));
	assert_false(base_slice_eq(BASE_SLICE_LIT("abc"), "ABC"));
	assert_true(base_slice_eq((base_slice){NULL, 0}, ""));
	assert_false(base_slice_eq((base_slice){NULL, 0}, "a"));
	/* A slice is not NUL-terminated: only len bytes count. */
	assert_true(base_slice_eq((base_slice){"abcdef", 3}, "abc"));
}

static void test_caseeq(void **state)
{
	assert_true(base_slice_caseeq(BASE_SLICE_LIT("Upgrade"), "upgrade"));
	assert_true(base_slice_caseeq(BASE_SLICE_LIT("WEBSOCKET"), "websocket"));
	assert_false(base_slice_caseeq(BASE_SLICE_LIT("websockets"), "websocket"));
	assert_false(base_slice_caseeq(BASE_SLICE_LIT("a"), "b"));
	/* Only ASCII letters fold: '@' (0x40) and '`' (0x60) differ. */
	assert_false(base_slice_caseeq(BASE_SLICE_LIT("@"), "`"));
	assert_false(base_slice_caseeq(BASE_SLICE_LIT("\xc0"), "\xe0"));
	assert_true(base_slice_caseeq((base_slice){NULL, 0}, ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_eq),
	    cmocka_unit_test(test_caseeq),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
