/* Tests web/csrf.c: where a state-changing request may come from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web_internal.h"

static int ok(const char *origin, const char *site, const char *host, const char *pub)
{
	base_slice o = {origin, origin ? strlen(origin) : 0};
	base_slice s = {site, site ? strlen(site) : 0};
	base_slice h = {host, host ? strlen(host) : 0};

	return web_csrf_origin_ok(origin ? &o : NULL, site ? &s : NULL, host ? &h : NULL, pub);
}

static void test_no_headers_is_not_a_browser(void **state)
{
	assert_true(ok(NULL, NULL, "localhost:5001", NULL));
	assert_true(ok(NULL, NULL, NULL, NULL));
	base_slice o = BASE_SLICE_LIT("x");
	assert_false(web_csrf_from_browser(NULL, NULL));
	assert_true(web_csrf_from_browser(&o, NULL));
	assert_true(web_csrf_from_browser(NULL, &o));
}

static void test_same_origin(void **state)
{
	assert_true(ok("http://localhost:5001", NULL, "localhost:5001", NULL));
	assert_true(ok("http://LocalHost:5001", "same-origin", "localhost:5001", NULL));
	assert_true(ok("http://example.com:80", NULL, "example.com", NULL));
	assert_true(ok("https://example.com", NULL, "example.com:443", NULL));
	assert_true(ok(NULL, "same-origin", "example.com", NULL));
	assert_true(ok(NULL, "none", "example.com", NULL)); /* typed in the address bar */
}

static void test_cross_site(void **state)
{
	assert_false(ok("http://evil.example", NULL, "localhost:5001", NULL));
	assert_false(ok("http://localhost:5002", NULL, "localhost:5001", NULL));
	assert_false(ok("null", NULL, "localhost:5001", NULL));
	assert_false(ok("http://localhost:5001.evil.example", NULL, "localhost:5001", NULL));
	assert_false(ok("http://localhost:5001", "cross-site", "localhost:5001", NULL));
	assert_false(ok(NULL, "cross-site", "localhost:5001", NULL));
	assert_false(ok(NULL, "same-site", "localhost:5001", NULL));
	assert_false(ok("http://localhost:5001/path", NULL, "localhost:5001", NULL));
	assert_false(ok("garbage", NULL, "garbage", NULL));
	assert_false(ok("http://localhost:5001", NULL, NULL, NULL));
}

static void test_public_origin(void **state)
{
	/* Behind a proxy that rewrites Host, the configured public URL counts. */
	assert_true(
	    ok("https://spaces.example.com", NULL, "127.0.0.1:5001", "https://spaces.example.com"));
	assert_true(ok("https://spaces.example.com", NULL, "127.0.0.1:5001",
	               "https://spaces.example.com:443/"));
	assert_false(
	    ok("http://spaces.example.com", NULL, "127.0.0.1:5001", "https://spaces.example.com"));
	assert_false(
	    ok("https://other.example.com", NULL, "127.0.0.1:5001", "https://spaces.example.com"));
}

static void test_token(void **state)
{
	assert_true(web_csrf_token_ok("abcDEF123", "abcDEF123"));
	assert_false(web_csrf_token_ok("abcDEF123", "abcDEF124"));
	assert_false(web_csrf_token_ok("abcDEF123", "abcDEF12"));
	assert_false(web_csrf_token_ok("abcDEF123", NULL));
	assert_false(web_csrf_token_ok("", ""));
	assert_false(web_csrf_token_ok(NULL, "x"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_headers_is_not_a_browser),
	    cmocka_unit_test(test_same_origin),
	    cmocka_unit_test(test_cross_site),
	    cmocka_unit_test(test_public_origin),
	    cmocka_unit_test(test_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
