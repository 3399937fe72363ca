/* Tests engineio/base/escape.c: HTML escape, URL decode, query lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base.h"

static void check_html(const char *in, const char *expect)
{
	base_buf b = BASE_BUF_INIT;

	base_html_escape(&b, in, strlen(in));
	assert_int_equal(b.len, strlen(expect));
	if (b.len > 0)
		assert_memory_equal(b.data, expect, b.len);
	base_buf_free(&b);
}

static void test_html_escape(void **state)
{
	check_html("", "");
	check_html("plain text", "plain text");
	check_html("<script>alert('x')</script>",
	           "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
	check_html("a & b \"c\"", "a &amp; b &quot;c&quot;");
	check_html("&&", "&amp;&amp;");
	check_html("&amp;", "&amp;amp;");
	check_html("\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"); /* UTF-8 passes through */
}

static void test_html_escape_appends(void **state)
{
	base_buf b = BASE_BUF_INIT;

	base_buf_append_str(&b, "x=");
	base_html_escape(&b, "a<b\0c", 5);
	assert_int_equal(b.len, 2 + 1 + 4 + 1 + 1 + 1);
	assert_memory_equal(b.data, "x=a&lt;b\0c", b.len);
	base_buf_free(&b);
}

static void check_url(const char *in, int plus, ssize_t expect_len, const char *expect)
{
	char out[256];
	ssize_t n = base_url_decode(in, strlen(in), out, plus);

	assert_int_equal(n, expect_len);
	if (n > 0)
		assert_memory_equal(out, expect, (size_t)n);
}

static void test_url_decode(void **state)
{
	check_url("", 0, 0, "");
	check_url("abc", 0, 3, "abc");
	check_url("a%20b", 0, 3, "a b");
	check_url("%41%4a%4A%6f", 0, 4, "AJJo");
	check_url("a+b", 0, 3, "a+b");
	check_url("a+b", 1, 3, "a b");
	check_url("%2B", 1, 1, "+");
	check_url("%00", 0, 1, "\0");
	check_url("%e2%82%AC", 0, 3, "\xe2\x82\xac");
	check_url("100%25", 0, 4, "100%");
}

static void test_url_decode_malformed(void **state)
{
	check_url("%", 0, -1, NULL);
	check_url("%4", 0, -1, NULL);
	check_url("abc%", 0, -1, NULL);
	check_url("abc%2", 0, -1, NULL);
	check_url("%zz", 0, -1, NULL);
	check_url("%4g", 0, -1, NULL);
	check_url("%g4", 0, -1, NULL);
	check_url("% 1", 0, -1, NULL);
	check_url("%%41", 0, -1, NULL);
}

static void test_url_decode_in_place(void **state)
{
	char s[] = "a%20b+c%2Fd";
	ssize_t n = base_url_decode(s, strlen(s), s, 1);

	assert_int_equal(n, 7);
	assert_memory_equal(s, "a b c/d", 7);

	/* The length bound is respected: no NUL is needed after the input. */
	char t[3] = {'%', '4', '1'};
	char o[3];
	assert_int_equal(base_url_decode(t, 3, o, 0), 1);
	assert_int_equal(o[0], 'A');
	assert_int_equal(base_url_decode(t, 2, o, 0), -1);
}

static void check_query(const char *q, const char *key, int found, const char *value)
{
	base_slice v = {NULL, 12345};
	int r = base_query_get((base_slice){q, strlen(q)}, key, &v);

	assert_int_equal(r, found);
	if (found) {
		assert_int_equal(v.len, strlen(value));
		if (v.len > 0)
			assert_memory_equal(v.base, value, v.len);
	}
}

static void test_query_get(void **state)
{
	check_query("EIO=4&transport=polling&sid=abc", "EIO", 1, "4");
	check_query("EIO=4&transport=polling&sid=abc", "transport", 1, "polling");
	check_query("EIO=4&transport=polling&sid=abc", "sid", 1, "abc");
	check_query("EIO=4&transport=polling&sid=abc", "si", 0, NULL);
	check_query("EIO=4&transport=polling&sid=abc", "sidx", 0, NULL);
	check_query("EIO=4&transport=polling&sid=abc", "eio", 0, NULL); /* case matters */
	check_query("", "a", 0, NULL);
	check_query("a", "a", 1, "");
	check_query("a=", "a", 1, "");
	check_query("a=&b=2", "a", 1, "");
	check_query("b=2&a", "a", 1, "");
	check_query("&&a=1&&", "a", 1, "1");
	check_query("a=1&a=2", "a", 1, "1"); /* the first one wins */
	check_query("a=b=c", "a", 1, "b=c");
	check_query("x=%20y", "x", 1, "%20y"); /* raw, not decoded */
	check_query("ab=1", "a", 0, NULL);
	check_query("b=a", "a", 0, NULL);
}

static void test_query_get_bounded(void **state)
{
	/* Only query.len bytes are looked at. */
	const char q[] = "a=1&b=2";
	base_slice v;

	assert_int_equal(base_query_get((base_slice){q, 3}, "b", &v), 0);
	assert_int_equal(base_query_get((base_slice){q, 6}, "b", &v), 1);
	assert_int_equal(v.len, 0);
	assert_int_equal(base_query_get((base_slice){q, 2}, "a", &v), 1);
	assert_int_equal(v.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_html_escape),         cmocka_unit_test(test_html_escape_appends),
	    cmocka_unit_test(test_url_decode),          cmocka_unit_test(test_url_decode_malformed),
	    cmocka_unit_test(test_url_decode_in_place), cmocka_unit_test(test_query_get),
	    cmocka_unit_test(test_query_get_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
