/* Tests web/cookie.c: reading the session cookie, writing Set-Cookie. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web_internal.h"

static base_slice S(const char *s)
{
	return (base_slice){s, strlen(s)};
}

static void test_get(void **state)
{
	base_slice v;

	assert_true(web_cookie_get(S("spaces_session=abc"), "spaces_session", &v));
	assert_true(base_slice_eq(v, "abc"));
	assert_true(web_cookie_get(S("a=1; spaces_session=tok-_9;b=2"), "spaces_session", &v));
	assert_true(base_slice_eq(v, "tok-_9"));
	assert_true(
	    web_cookie_get(S("x_spaces_session=no; spaces_session = yes "), "spaces_session", &v));
	assert_true(base_slice_eq(v, "yes"));
	assert_true(web_cookie_get(S("spaces_session=\"quoted\""), "spaces_session", &v));
	assert_true(base_slice_eq(v, "quoted"));
	assert_true(web_cookie_get(S("spaces_session="), "spaces_session", &v));
	assert_int_equal(v.len, 0);
	assert_false(web_cookie_get(S("spaces_sessionx=1; other=2"), "spaces_session", &v));
	assert_false(web_cookie_get(S(""), "spaces_session", &v));
	assert_false(web_cookie_get(S(";;; ; novalue"), "spaces_session", &v));
}

static void test_set_line(void **state)
{
	base_buf b = BASE_BUF_INIT;

	web_cookie_set_line(&b, "spaces_session", "t0k", 3600, 0);
	base_buf_append(&b, "", 1);
	assert_string_equal(b.data, "Set-Cookie: spaces_session=t0k; Path=/; HttpOnly; "
	                            "SameSite=Lax; Max-Age=3600\r\n");
	base_buf_free(&b);

	web_cookie_set_line(&b, "spaces_session", "", 0, 1);
	base_buf_append(&b, "", 1);
	assert_string_equal(b.data, "Set-Cookie: spaces_session=; Path=/; HttpOnly; SameSite=Lax; "
	                            "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure\r\n");
	base_buf_free(&b);
}

/* The one reader of the session cookie (pages and the browser namespace). */
static void test_session_token(void **state)
{
	char out[16];
	base_slice h;

	(void)state;
	h = S("a=1; spaces_session=Ab-_9; b=2");
	assert_true(web_session_token(&h, out, sizeof(out)));
	assert_string_equal(out, "Ab-_9");
	/* Quotes and spaces around the value, as web_cookie_get reads them. */
	h = S("spaces_session = \"xyz\" ");
	assert_true(web_session_token(&h, out, sizeof(out)));
	assert_string_equal(out, "xyz");
	/* Only the characters a token is made of, and it must fit. */
	h = S("spaces_session=a.b");
	assert_false(web_session_token(&h, out, sizeof(out)));
	h = S("spaces_session=0123456789abcdef");
	assert_false(web_session_token(&h, out, sizeof(out)));
	h = S("spaces_session=");
	assert_false(web_session_token(&h, out, sizeof(out)));
	h = S("other=1");
	assert_false(web_session_token(&h, out, sizeof(out)));
	assert_false(web_session_token(NULL, out, sizeof(out)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_set_line),
	    cmocka_unit_test(test_session_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
