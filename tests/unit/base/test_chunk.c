/* Tests engineio/base/chunk.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base.h"

static void test_refcount(void **state)
{
	base_chunk *c = base_chunk_from("hello", 5);

	assert_non_null(c);
	assert_int_equal(c->refs, 1);
	assert_int_equal(c->flags, 0);
	assert_int_equal(c->len, 5);
	assert_memory_equal(c->data, "hello", 5);
	assert_ptr_equal(base_chunk_ref(c), c);
	assert_ptr_equal(base_chunk_ref(c), c);
	assert_int_equal(c->refs, 3);
	base_chunk_unref(c);
	base_chunk_unref(c);
	assert_int_equal(c->refs, 1);
	base_chunk_unref(c); /* freed here; ASan's leak check would see a miss */
	base_chunk_unref(NULL);
}

static void test_new_and_empty(void **state)
{
	base_chunk *c = base_chunk_new(4096);

	assert_non_null(c);
	memset(c->data, 7, 4096);
	base_chunk_unref(c);
	c = base_chunk_from(NULL, 0);
	assert_non_null(c);
	assert_int_equal(c->len, 0);
	base_chunk_unref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refcount),
	    cmocka_unit_test(test_new_and_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
