/* Tests engineio/base/random.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"

static void test_random_bytes(void **state)
{
	unsigned char a[64] = {0}, b[64] = {0}, zero[64] = {0};
	static unsigned char big[100000];

	base_random_bytes(a, sizeof(a));
	base_random_bytes(b, sizeof(b));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	base_random_bytes(big, sizeof(big));
	/* Every byte value shows up in 100 kB of random data. */
	int seen[256] = {0};
	for (size_t i = 0; i < sizeof(big); i++)
		seen[big[i]] = 1;
	for (int v = 0; v < 256; v++)
		assert_true(seen[v]);
	base_random_bytes(NULL, 0);
}

static int is_url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static void test_random_id(void **state)
{
	char out[200], other[200];

	for (size_t n = 0; n <= 100; n++) {
		size_t expect = (n * 8 + 5) / 6; /* base64url without padding */

		memset(out, '#', sizeof(out));
		base_random_id(out, n);
		assert_int_equal(strlen(out), expect);
		assert_true(expect + 1 <= base_base64_encoded_len(n) + 1);
		for (size_t i = 0; i < expect; i++)
			assert_true(is_url_char(out[i]));
	}
	base_random_id(out, 15);
	base_random_id(other, 15);
	assert_int_equal(strlen(out), 20);
	assert_string_not_equal(out, other);
}

static void test_uuid4(void **state)
{
	char u[37], v[37];

	for (int k = 0; k < 200; k++) {
		base_uuid4(u);
		assert_int_equal(strlen(u), 36);
		for (int i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				assert_int_equal(u[i], '-');
			else
				assert_true((u[i] >= '0' && u[i] <= '9') ||
				            (u[i] >= 'a' && u[i] <= 'f'));
		}
		assert_int_equal(u[14], '4');
		assert_non_null(strchr("89ab", u[19]));
	}
	base_uuid4(v);
	assert_string_not_equal(u, v);
}

/* A forked child does not hand out the ids its parent hands out next. */
static void test_ids_differ_after_fork(void **state)
{
	char mine[37], theirs[37] = {0};
	int fds[2];

	base_uuid4(mine); /* the pool is filled */
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char u[37];
		base_uuid4(u);
		_exit(write(fds[1], u, sizeof(u)) == (ssize_t)sizeof(u) ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
	close(fds[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	base_uuid4(mine);
	assert_string_not_equal(mine, theirs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_random_bytes),
	    cmocka_unit_test(test_random_id),
	    cmocka_unit_test(test_ids_differ_after_fork),
	    cmocka_unit_test(test_uuid4),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
