/* Tests engineio/base/error.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <uv.h>

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
	assert_string_equal(base_strerror(0), "success");
	assert_string_equal(base_strerror(BASE_ERR_BASE), "unknown error");
	assert_string_equal(base_strerror(BASE_ERR_BASE - 6), "unknown error");
	assert_string_equal(base_strerror(BASE_ERR_BASE + 1), "unknown error"); /* -4099 */
	assert_string_equal(base_strerror(1001), "unknown error");
	assert_string_equal(base_strerror(-9999), "unknown error");
}

/* libuv's codes, including the getaddrinfo ones (-3000..) the Socket.IO
 * codes used to collide with, are libuv's. */
static void test_libuv_codes(void **state)
{
	assert_string_equal(base_strerror(UV_ECONNRESET), uv_strerror(UV_ECONNRESET));
	assert_string_equal(base_strerror(UV_EAI_AGAIN), uv_strerror(UV_EAI_AGAIN));
	assert_string_equal(base_strerror(UV_EOF), uv_strerror(UV_EOF));
	/* The base range starts below every libuv code. */
	assert_true(BASE_ERR_BASE < UV_EOF);
	assert_true((int)BASE_ENOMEM < (int)UV_EOF);
}

/* Every layer's codes are described (errors.h), and a code is only its own. */
static void test_every_layer(void **state)
{
	assert_string_equal(base_strerror(-4205), "output queue full");
	assert_string_equal(base_strerror(-4504), "too many queries are waiting for a connection");
	assert_string_equal(base_strerror(-4401), "socket is not connected");
	assert_string_equal(base_strerror(BASE_ERR_EIO - 1), "unknown error");
	assert_string_equal(base_strerror(BASE_ERR_WEB - 1), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_has_a_message),
	    cmocka_unit_test(test_unknown_codes),
	    cmocka_unit_test(test_libuv_codes),
	    cmocka_unit_test(test_every_layer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
