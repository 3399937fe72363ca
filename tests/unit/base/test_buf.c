/* Tests engineio/base/buf.c and the out-of-memory policy (alloc.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"

static void test_append_and_grow(void **state)
{
	base_buf b = BASE_BUF_INIT;
	char expect[10000];

	for (size_t i = 0; i < sizeof(expect); i++) {
		char c = (char)('a' + i % 26);

		expect[i] = c;
		base_buf_append(&b, &c, 1);
		assert_true(b.cap >= b.len);
	}
	assert_int_equal(b.len, sizeof(expect));
	assert_memory_equal(b.data, expect, sizeof(expect));
	base_buf_append(&b, NULL, 0);
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

	base_buf_append_str(&b, "hello");
	base_buf_append_str(&b, "");
	base_buf_printf(&b, " %d %s", 42, "x");
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "hello 42 x", 10);
	/* A format longer than the free room takes the second pass. */
	char big[500];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	base_buf_printf(&b, "[%s]", big);
	assert_int_equal(b.len, 10 + 2 + 499);
	assert_int_equal(b.data[10], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	base_buf_printf(&b, "%s", "");
	assert_int_equal(b.len, 511);
	base_buf_free(&b);

	/* printf into an empty buffer. */
	base_buf_printf(&b, "%u", 7u);
	assert_int_equal(b.len, 1);
	assert_int_equal(b.data[0], '7');
	base_buf_free(&b);
}

static void test_consume(void **state)
{
	base_buf b = BASE_BUF_INIT;

	base_buf_append_str(&b, "abcdef");
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

	base_buf_reserve(&b, 0);
	base_buf_reserve(&b, 1000);
	assert_true(b.cap >= 1000);
	assert_int_equal(b.len, 0);
	base_buf_append_str(&b, "x");
	assert_int_equal(b.len, 1);
	assert_int_equal(b.data[0], 'x');
	base_buf_free(&b);
}

/* Runs fn in a child process and asserts that it ends by abort(). */
static void assert_aborts(void (*fn)(void))
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		base_log_set_level(BASE_LOG_OFF);
		fn();
		_exit(0); /* not reached when fn aborts */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void reserve_too_much(void)
{
	base_buf b = BASE_BUF_INIT;

	base_buf_append_str(&b, "x");
	base_buf_reserve(&b, SIZE_MAX);
}

static void xmalloc_too_much(void)
{
	void *p = base_xmalloc(SIZE_MAX - 64);

	free(p);
}

static void chunk_too_big(void)
{
	base_chunk_unref(base_chunk_new(SIZE_MAX));
}

static void arena_too_big(void)
{
	base_arena a;

	base_arena_init(&a, 0); /* no limit: only memory can refuse */
	base_arena_alloc(&a, SIZE_MAX - 8);
	base_arena_reset(&a);
}

/* Under ASan, an impossible malloc returns NULL (as libc's does) instead of
 * ASan stopping the program itself, so that base_oom is what aborts. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

/* The out-of-memory policy (base.h): a growth no allocator can satisfy aborts
 * instead of returning an error some caller could drop. */
static void test_out_of_memory_aborts(void **state)
{
	assert_aborts(reserve_too_much);
	assert_aborts(xmalloc_too_much);
	assert_aborts(chunk_too_big);
	assert_aborts(arena_too_big);
}

static void test_x_allocators(void **state)
{
	char *s = base_xstrdup("hello");
	char *t = base_xstrndup("hello", 3);
	int *z = base_xcalloc(4, sizeof(int));
	char *m = base_xmalloc(0);

	assert_string_equal(s, "hello");
	assert_string_equal(t, "hel");
	assert_int_equal(z[0] | z[1] | z[2] | z[3], 0);
	m = base_xrealloc(m, 100);
	m[99] = 'x';
	free(s);
	free(t);
	free(z);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_grow),
	    cmocka_unit_test(test_append_str_and_printf),
	    cmocka_unit_test(test_consume),
	    cmocka_unit_test(test_reserve),
	    cmocka_unit_test(test_out_of_memory_aborts),
	    cmocka_unit_test(test_x_allocators),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
