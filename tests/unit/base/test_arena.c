/* Tests engineio/base/arena.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base.h"

static void test_alignment_and_distinct(void **state)
{
	base_arena a;
	char *prev = NULL;

	base_arena_init(&a, 0);
	for (size_t n = 0; n < 300; n++) {
		char *p = base_arena_alloc(&a, n);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		assert_true(p != prev);
		memset(p, 0xab, n); /* ASan checks the bytes are really ours */
		prev = p;
	}
	assert_true(a.total >= 300 * 299 / 2);
	base_arena_reset(&a);
	assert_null(a.head);
	assert_int_equal(a.total, 0);
	/* Usable again after a reset. */
	assert_non_null(base_arena_alloc(&a, 10));
	base_arena_reset(&a);
	base_arena_reset(&a);
}

static void test_large_allocation(void **state)
{
	base_arena a;
	char *small, *big;

	base_arena_init(&a, 0);
	small = base_arena_alloc(&a, 8);
	big = base_arena_alloc(&a, 100000);
	assert_non_null(small);
	assert_non_null(big);
	memset(big, 1, 100000);
	memset(small, 2, 8);
	assert_int_equal(big[99999], 1);
	base_arena_reset(&a); /* SIZE_MAX without a limit aborts: test_buf.c */
}

static void test_limit(void **state)
{
	base_arena a;
	size_t got = 0;

	base_arena_init(&a, 1000);
	assert_null(base_arena_alloc(&a, 1001));
	while (base_arena_alloc(&a, 16) != NULL)
		got += 16;
	assert_true(got <= 1000);
	assert_true(got >= 1000 - 16);
	assert_true(a.total <= 1000);
	base_arena_reset(&a);
	assert_int_equal(a.limit, 1000); /* the limit survives a reset */
	assert_non_null(base_arena_alloc(&a, 1000));
	assert_null(base_arena_alloc(&a, 1));
	base_arena_reset(&a);
}

static void test_strndup(void **state)
{
	base_arena a;
	char *s;

	base_arena_init(&a, 0);
	s = base_arena_strndup(&a, "hello world", 5);
	assert_string_equal(s, "hello");
	s = base_arena_strndup(&a, NULL, 0);
	assert_string_equal(s, "");
	s = base_arena_strndup(&a, "a\0b", 3);
	assert_memory_equal(s, "a\0b\0", 4);
	base_arena_reset(&a);

	base_arena_init(&a, 16);
	assert_non_null(base_arena_strndup(&a, "0123456789abcde", 15));
	assert_null(base_arena_strndup(&a, "x", 1));
	base_arena_reset(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alignment_and_distinct),
	    cmocka_unit_test(test_large_allocation),
	    cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_strndup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
