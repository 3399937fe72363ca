/* Tests web/form.c: urlencoded and multipart forms into fields and files. */
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

static void test_urlencoded(void **state)
{
	base_arena a;
	web_form f;

	base_arena_init(&a, 0);
	memset(&f, 0, sizeof(f));
	assert_int_equal(web_form_parse_urlencoded(
	                     &a, S("username=bob&password=p%40ss+word&empty=&flag&=skipped"), &f),
	                 0);
	assert_string_equal(web_form_get(&f, "username"), "bob");
	assert_string_equal(web_form_get(&f, "password"), "p@ss word");
	assert_string_equal(web_form_get(&f, "empty"), "");
	assert_string_equal(web_form_get(&f, "flag"), "");
	assert_null(web_form_get(&f, "missing"));
	assert_int_equal(f.n_fields, 4);
	base_arena_reset(&a);
}

static void test_urlencoded_first_wins_and_nul(void **state)
{
	base_arena a;
	web_form f;

	base_arena_init(&a, 0);
	memset(&f, 0, sizeof(f));
	assert_int_equal(web_form_parse_urlencoded(&a, S("a=1&a=2&b=x%00y"), &f), 0);
	assert_string_equal(web_form_get(&f, "a"), "1");
	assert_int_equal(f.fields[2].value_len, 3);
	assert_memory_equal(f.fields[2].value, "x\0y", 3);
	base_arena_reset(&a);
}

static void test_urlencoded_bad_escape(void **state)
{
	base_arena a;
	web_form f;

	base_arena_init(&a, 0);
	memset(&f, 0, sizeof(f));
	assert_int_equal(web_form_parse_urlencoded(&a, S("a=%zz"), &f), BASE_EINVAL);
	base_arena_reset(&a);
}

static void test_urlencoded_too_many_fields(void **state)
{
	base_arena a;
	web_form f;
	base_buf b = BASE_BUF_INIT;

	for (int i = 0; i <= WEB_FORM_MAX_FIELDS; i++)
		base_buf_printf(&b, "f%d=%d&", i, i);
	base_arena_init(&a, 0);
	memset(&f, 0, sizeof(f));
	assert_int_equal(web_form_parse_urlencoded(&a, (base_slice){b.data, b.len}, &f),
	                 BASE_ELIMIT);
	base_arena_reset(&a);
	base_buf_free(&b);
}

static void test_dispatch_on_content_type(void **state)
{
	static const char body[] = "--XyZ\r\n"
	                           "Content-Disposition: form-data; name=\"prompt\"\r\n\r\n"
	                           "hello\r\n"
	                           "--XyZ\r\n"
	                           "Content-Disposition: form-data; name=\"video_file\"; "
	                           "filename=\"clip.mp4\"\r\n"
	                           "Content-Type: video/mp4\r\n\r\n"
	                           "\x00\x01\x02\r\n"
	                           "--XyZ\r\n"
	                           "Content-Disposition: form-data; name=\"other_file\"; "
	                           "filename=\"\"\r\n"
	                           "Content-Type: application/octet-stream\r\n\r\n"
	                           "\r\n"
	                           "--XyZ--\r\n";
	base_slice ct = S("multipart/form-data; boundary=XyZ");
	base_arena a;
	web_form f;

	base_arena_init(&a, 0);
	assert_int_equal(web_form_parse(&a, &ct, (base_slice){body, sizeof(body) - 1}, &f), 0);
	assert_string_equal(web_form_get(&f, "prompt"), "hello");
	assert_int_equal(f.n_files, 1); /* the empty file input is skipped */
	const web_file *v = web_form_file(&f, "video_file");
	assert_non_null(v);
	assert_string_equal(v->filename, "clip.mp4");
	assert_string_equal(v->content_type, "video/mp4");
	assert_int_equal(v->data.len, 3);
	assert_memory_equal(v->data.base, "\x00\x01\x02", 3);
	assert_null(web_form_file(&f, "other_file"));

	base_slice url = S("application/x-www-form-urlencoded; charset=UTF-8");
	assert_int_equal(web_form_parse(&a, &url, S("prompt=hi"), &f), 0);
	assert_string_equal(web_form_get(&f, "prompt"), "hi");
	assert_int_equal(web_form_parse(&a, NULL, S("prompt=yo"), &f), 0);
	assert_string_equal(web_form_get(&f, "prompt"), "yo");
	base_arena_reset(&a);
}

static void test_multipart_malformed(void **state)
{
	base_slice ct = S("multipart/form-data; boundary=B");
	base_slice nob = S("multipart/form-data");
	base_arena a;
	web_form f;

	base_arena_init(&a, 0);
	assert_int_equal(web_form_parse(&a, &ct,
	                                S("--B\r\nContent-Disposition: form-data; "
	                                  "name=\"a\"\r\n\r\nno end"),
	                                &f),
	                 BASE_EINVAL);
	assert_int_equal(web_form_parse(&a, &nob, S("--B--\r\n"), &f), BASE_EINVAL);
	base_arena_reset(&a);
}

static void test_media_type(void **state)
{
	assert_true(
	    web_media_type_is(S(" Multipart/Form-Data ; boundary=x"), "multipart/form-data"));
	assert_false(web_media_type_is(S("multipart/form-datax"), "multipart/form-data"));
	assert_true(web_media_type_is(S("text/plain"), "text/plain"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_urlencoded),
	    cmocka_unit_test(test_urlencoded_first_wins_and_nul),
	    cmocka_unit_test(test_urlencoded_bad_escape),
	    cmocka_unit_test(test_urlencoded_too_many_fields),
	    cmocka_unit_test(test_dispatch_on_content_type),
	    cmocka_unit_test(test_multipart_malformed),
	    cmocka_unit_test(test_media_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
