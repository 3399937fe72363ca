/*
 * Tests the error code ranges (engineio/base/base.h): every layer's codes
 * lie in its own range, none is one of libuv's, and base_strerror describes
 * each with its layer's message in a program that links the layers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "db/db.h"
#include "socketio.h"

/* A code of a layer's range is not one libuv could return. */
static void check_code(int code, int first, const char *msg)
{
	assert_true(code < first && code > first - BASE_ERR_RANGE);
	assert_true(code < UV_EOF); /* below libuv's lowest code */
	assert_string_equal(base_strerror(code), msg);
}

static void test_each_layer_in_its_range(void **state)
{
#define CHECK_BASE(name, val, msg) check_code(BASE_E##name, BASE_ERR_BASE, msg);
	BASE_ERRNO_MAP(CHECK_BASE)
#define CHECK_HTTP(name, val, msg) check_code(HTTP_E##name, BASE_ERR_HTTP, msg);
	HTTP_ERROR_MAP(CHECK_HTTP)
#define CHECK_SIO(name, val, msg) check_code(SIO_E##name, BASE_ERR_SIO, msg);
	SIO_ERRNO_MAP(CHECK_SIO)
#define CHECK_DB(name, val, msg) check_code(DB_E##name, BASE_ERR_DB, msg);
	DB_ERRNO_MAP(CHECK_DB)
}

/* The Socket.IO codes were -3001..-3003, libuv's UV_EAI_AGAIN.. on Linux. */
static void test_no_collision_with_getaddrinfo_codes(void **state)
{
	assert_int_not_equal(SIO_ENOT_CONNECTED, UV_EAI_AGAIN);
	assert_int_not_equal(SIO_EBAD_ARGS, UV_EAI_BADFLAGS);
	assert_int_not_equal(SIO_ETOO_MANY_ATTACHMENTS, UV_EAI_CANCELED);
	assert_string_equal(base_strerror(UV_EAI_AGAIN), uv_strerror(UV_EAI_AGAIN));
	assert_string_equal(base_strerror(SIO_ENOT_CONNECTED), "socket is not connected");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_layer_in_its_range),
	    cmocka_unit_test(test_no_collision_with_getaddrinfo_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
