/* Tests engineio/base/error.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/base.h"

static void test_every_code_has_a_message(void **state)
{
	assert_string_equal(base_strerror(BASE_ENOMEM), "out of memory");
	assert_string_equal(base_strerror(BASE_EINVAL), "invalid argument");
	assert_string_equal(base_strerror(BASE_ELIMIT), "limit exceeded");
	assert_string_equal(base_strerror(BASE_ECLOSED), "closed");
	assert_string_equal(base_strerror(BASE_EPARTIAL), "incomplete input");
}

static void test_unknown_codes(void **state)
{
	assert_string_equal(base_strerror(0), "unknown error");
	assert_string_equal(base_strerror(-1), "unknown error");
	assert_string_equal(base_strerror(-1000), "unknown error");
	assert_string_equal(base_strerror(-1006), "unknown error");
	assert_string_equal(base_strerror(1001), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_has_a_message),
	    cmocka_unit_test(test_unknown_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
