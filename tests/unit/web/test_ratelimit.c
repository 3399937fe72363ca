/* Tests web/ratelimit.c: failed logins per address in fixed windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "web_internal.h"

static void test_blocks_after_max_then_expires(void **state)
{
	web_limiter *l = web_limiter_new(3, 60);
	unsigned wait = 0;

	assert_non_null(l);
	for (int i = 0; i < 3; i++) {
		assert_false(web_limiter_blocked(l, "10.0.0.1", 1000, &wait));
		web_limiter_fail(l, "10.0.0.1", 1000 + (uint64_t)i);
	}
	assert_true(web_limiter_blocked(l, "10.0.0.1", 2000, &wait));
	assert_int_equal(wait, 59);
	assert_false(web_limiter_blocked(l, "10.0.0.2", 2000, &wait)); /* others unaffected */
	assert_true(web_limiter_blocked(l, "10.0.0.1", 60999, &wait));
	assert_int_equal(wait, 1);
	assert_false(web_limiter_blocked(l, "10.0.0.1", 61000, &wait)); /* a new window */
	web_limiter_fail(l, "10.0.0.1", 61000);
	assert_false(web_limiter_blocked(l, "10.0.0.1", 61001, &wait));
	web_limiter_free(l);
}

static void test_disabled(void **state)
{
	web_limiter *l = web_limiter_new(0, 60);

	for (int i = 0; i < 100; i++)
		web_limiter_fail(l, "a", 0);
	assert_false(web_limiter_blocked(l, "a", 0, NULL));
	web_limiter_free(l);
	assert_false(web_limiter_blocked(NULL, "a", 0, NULL));
}

/* Many addresses never make it grow or crash; a recent offender is still remembered. */
static void test_bounded_under_address_rotation(void **state)
{
	web_limiter *l = web_limiter_new(2, 300);
	char key[48];

	web_limiter_fail(l, "offender", 5000);
	web_limiter_fail(l, "offender", 5000);
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof(key), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
		web_limiter_fail(l, key, 1000);
	}
	assert_true(web_limiter_blocked(l, "offender", 6000, NULL));
	web_limiter_free(l);
}

/* Taken before the work: the max-th take passes, the next one does not, a refund gives one back. */
static void test_take_and_refund(void **state)
{
	web_limiter *l = web_limiter_new(3, 60);
	unsigned wait = 0;

	for (int i = 0; i < 3; i++)
		assert_true(web_limiter_take(l, "10.0.0.1", 1000, &wait));
	assert_false(web_limiter_take(l, "10.0.0.1", 1000, &wait));
	assert_int_equal(wait, 60);
	web_limiter_refund(l, "10.0.0.1", 2000);
	assert_true(web_limiter_take(l, "10.0.0.1", 2000, &wait));
	assert_false(web_limiter_take(l, "10.0.0.1", 2000, &wait));
	assert_true(web_limiter_blocked(l, "10.0.0.1", 2000, NULL));
	assert_true(web_limiter_take(l, "10.0.0.1", 61000, &wait)); /* a new window */
	web_limiter_free(l);
}

/* With a pace, a key over its budget gets one attempt per pace, not none until the window ends. */
static void test_pace(void **state)
{
	web_limiter *l = web_limiter_new(2, 300);
	unsigned wait = 0;

	web_limiter_set_pace(l, 10);
	assert_true(web_limiter_take(l, "acct:bob", 1000, &wait));
	assert_true(web_limiter_take(l, "acct:bob", 1000, &wait));
	assert_false(web_limiter_take(l, "acct:bob", 1000, &wait));
	assert_int_equal(wait, 10);
	assert_false(web_limiter_take(l, "acct:bob", 6000, &wait));
	assert_int_equal(wait, 5);
	assert_true(web_limiter_take(l, "acct:bob", 11000, &wait));
	assert_false(web_limiter_take(l, "acct:bob", 11000, &wait));
	assert_int_equal(wait, 10);
	web_limiter_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blocks_after_max_then_expires),
	    cmocka_unit_test(test_disabled),
	    cmocka_unit_test(test_bounded_under_address_rotation),
	    cmocka_unit_test(test_take_and_refund),
	    cmocka_unit_test(test_pace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
