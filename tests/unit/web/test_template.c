/* Tests web/template.c: web_html escapes by default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web_internal.h"

static void check(base_buf *b, const char *expect)
{
	assert_int_equal(b->len, strlen(expect));
	if (b->len)
		assert_memory_equal(b->data, expect, b->len);
	base_buf_free(b);
}

static void test_escapes_strings(void **state)
{
	base_buf b = BASE_BUF_INIT;

	assert_int_equal(web_html(&b, "<p title=\"%s\">%s</p>", "a\"b", "<script>x</script>"), 0);
	check(&b, "<p title=\"a&quot;b\">&lt;script&gt;x&lt;/script&gt;</p>");
}

static void test_slices_numbers_percent(void **state)
{
	base_buf b = BASE_BUF_INIT;
	base_slice sl = {"<b>&'xyz", 5};

	assert_int_equal(web_html(&b, "%S|%d|%u|100%%", sl, -7, 42u), 0);
	check(&b, "&lt;b&gt;&amp;&#39;|-7|42|100%");
}

static void test_raw_only_when_asked(void **state)
{
	base_buf b = BASE_BUF_INIT;

	assert_int_equal(web_html(&b, "%R%s", "<br>", "<br>"), 0);
	check(&b, "<br>&lt;br&gt;");
}

static void test_null_writes_nothing(void **state)
{
	base_buf b = BASE_BUF_INIT;

	assert_int_equal(web_html(&b, "[%s][%R]", (const char *)NULL, (const char *)NULL), 0);
	check(&b, "[][]");
}

static void test_url_component(void **state)
{
	base_buf b = BASE_BUF_INIT;

	assert_int_equal(web_html(&b, "/login?next=%U", "/a b?c=d&e\"<"), 0);
	check(&b, "/login?next=%2Fa%20b%3Fc%3Dd%26e%22%3C");
}

static void test_unknown_conversion_fails(void **state)
{
	base_buf b = BASE_BUF_INIT;

	assert_int_equal(web_html(&b, "x%q"), BASE_EINVAL);
	base_buf_free(&b);
}

static void test_appends(void **state)
{
	base_buf b = BASE_BUF_INIT;

	web_html(&b, "a");
	web_html(&b, "%s", "&");
	web_html(&b, "");
	check(&b, "a&amp;");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escapes_strings),
	    cmocka_unit_test(test_slices_numbers_percent),
	    cmocka_unit_test(test_raw_only_when_asked),
	    cmocka_unit_test(test_null_writes_nothing),
	    cmocka_unit_test(test_url_component),
	    cmocka_unit_test(test_unknown_conversion_fails),
	    cmocka_unit_test(test_appends),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
