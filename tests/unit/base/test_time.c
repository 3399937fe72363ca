/* Tests engineio/base/time.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "base/base.h"

static void test_monotonic_and_in_ms(void **state)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	uint64_t a = base_now_ms(), b;

	nanosleep(&ts, NULL);
	b = base_now_ms();
	assert_true(b >= a + 19);
	assert_true(b < a + 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_monotonic_and_in_ms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
