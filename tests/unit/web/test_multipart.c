/* Tests web/multipart.c: the multipart/form-data decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "web_internal.h"

static base_slice S(const char *s)
{
	return (base_slice){s, strlen(s)};
}

static int eq(base_slice s, const char *t)
{
	return base_slice_eq(s, t);
}

static void test_boundary(void **state)
{
	base_slice b;

	assert_int_equal(web_multipart_boundary(S("multipart/form-data; boundary=abc"), &b), 0);
	assert_true(eq(b, "abc"));
	assert_int_equal(
	    web_multipart_boundary(S("multipart/form-data; charset=utf-8; boundary=\"a b;c\""), &b),
	    0);
	assert_true(eq(b, "a b;c"));
	assert_int_equal(web_multipart_boundary(S("multipart/form-data;BOUNDARY=----WebKitX"), &b),
	                 0);
	assert_true(eq(b, "----WebKitX"));
	assert_int_equal(web_multipart_boundary(S("multipart/form-data"), &b), -1);
	assert_int_equal(web_multipart_boundary(S("multipart/form-data; boundary="), &b), -1);
	assert_int_equal(web_multipart_boundary(S("text/plain; boundary=abc"), &b), -1);
	char longb[120] = "multipart/form-data; boundary=";
	memset(longb + strlen(longb), 'x', 71);
	assert_int_equal(web_multipart_boundary(S(longb), &b), -1);
}

static void test_parts_with_preamble_and_epilogue(void **state)
{
	static const char body[] =
	    "preamble to ignore\r\n"
	    "--b\r\n"
	    "content-disposition: form-data; name=\"a\"\r\n"
	    "\r\n"
	    "one\r\n"
	    "--b  \r\n" /* transport padding */
	    "Content-Disposition: form-data; name=f; filename=\"C:\\x\\y.txt\"\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "line1\r\n--not-the-boundary\r\nline2\r\n"
	    "--b--\r\n"
	    "epilogue";
	base_slice bs = {body, sizeof(body) - 1};
	size_t pos = 0;
	web_part p;

	assert_int_equal(web_multipart_next(bs, S("b"), &pos, &p), 1);
	assert_true(eq(p.name, "a"));
	assert_false(p.has_filename);
	assert_true(eq(p.data, "one"));
	assert_int_equal(web_multipart_next(bs, S("b"), &pos, &p), 1);
	assert_true(eq(p.name, "f"));
	assert_true(p.has_filename);
	assert_true(eq(p.filename, "C:\\x\\y.txt"));
	assert_true(eq(p.content_type, "text/plain"));
	assert_true(eq(p.data, "line1\r\n--not-the-boundary\r\nline2"));
	assert_int_equal(web_multipart_next(bs, S("b"), &pos, &p), 0);
}

static void test_empty_data_and_body(void **state)
{
	size_t pos = 0;
	web_part p;
	base_slice body = S("--b\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n--b--");

	assert_int_equal(web_multipart_next(body, S("b"), &pos, &p), 1);
	assert_int_equal(p.data.len, 0);
	assert_int_equal(web_multipart_next(body, S("b"), &pos, &p), 0);
	pos = 0;
	assert_int_equal(web_multipart_next(S("--b--\r\n"), S("b"), &pos, &p), 0);
}

static void test_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "no boundary at all",
	    "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
	    "--b\r\nContent-Disposition: form-data; name=\"a\"\r\nno blank line",
	    "--bX\r\n\r\n\r\n--b--",
	    "--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--",
	    "--b\r\nNoColonHere\r\n\r\nx\r\n--b--",
	    "--b\r\nContent-Disposition: form-data; name=\"unclosed\r\n\r\nx\r\n--b--",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t pos = 0;
		web_part p;
		int rc;

		while ((rc = web_multipart_next(S(bad[i]), S("b"), &pos, &p)) == 1)
			;
		if (i == 7)
			continue; /* an unclosed quote just leaves the name unset */
		assert_int_equal(rc, -1);
	}
}

static void test_too_many_header_lines(void **state)
{
	base_buf b = BASE_BUF_INIT;
	size_t pos = 0;
	web_part p;

	base_buf_append_str(&b, "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n");
	for (int i = 0; i < 40; i++)
		base_buf_append_str(&b, "X-Filler: 1\r\n");
	base_buf_append_str(&b, "\r\nx\r\n--b--");
	assert_int_equal(web_multipart_next((base_slice){b.data, b.len}, S("b"), &pos, &p), -1);
	base_buf_free(&b);
}

/* Every prefix of a valid body is refused or ends cleanly; none reads past the end. */
static void test_every_truncation(void **state)
{
	static const char body[] = "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"
	                           "data\r\n--b\r\nContent-Disposition: form-data; name=\"c\"; "
	                           "filename=\"f\"\r\n\r\nxyz\r\n--b--\r\n";
	for (size_t n = 0; n < sizeof(body) - 1; n++) {
		char *copy = malloc(n ? n : 1);
		size_t pos = 0;
		web_part p;
		int rc, parts = 0;

		memcpy(copy, body, n);
		while ((rc = web_multipart_next((base_slice){copy, n}, S("b"), &pos, &p)) == 1)
			parts++;
		assert_true(parts <= 2);
		if (n < sizeof(body) - 3) /* "--b--" complete from there on */
			assert_true(rc == -1 || parts < 2);
		free(copy);
	}
}

static void test_header_param(void **state)
{
	base_slice v;

	assert_true(
	    web_header_param(S("form-data; name=\"a\"; filename=\"b.txt\""), "filename", &v));
	assert_true(eq(v, "b.txt"));
	assert_true(web_header_param(S("form-data; Name = plain ; x=1"), "name", &v));
	assert_true(eq(v, "plain"));
	assert_false(web_header_param(S("form-data; filename*=utf-8''x"), "filename", &v));
	assert_false(web_header_param(S("form-data"), "name", &v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_boundary),
	    cmocka_unit_test(test_parts_with_preamble_and_epilogue),
	    cmocka_unit_test(test_empty_data_and_body),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_too_many_header_lines),
	    cmocka_unit_test(test_every_truncation),
	    cmocka_unit_test(test_header_param),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
