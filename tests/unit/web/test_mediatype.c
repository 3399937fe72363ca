/* Tests web/mediatype.c: strict media types of uploads, and which are shown inline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "web_internal.h"

static void test_parse(void **state)
{
	char out[128];

	assert_int_equal(web_media_type_parse("audio/mpeg", out, sizeof(out)), 0);
	assert_string_equal(out, "audio/mpeg");
	assert_int_equal(web_media_type_parse(" Audio/MPEG ; Codecs=\"mp3\" ;", out, sizeof(out)),
	                 0);
	assert_string_equal(out, "audio/mpeg;codecs=\"mp3\"");
	assert_int_equal(web_media_type_parse("text/plain; charset=UTF-8", out, sizeof(out)), 0);
	assert_string_equal(out, "text/plain;charset=UTF-8");
	static const char *const bad[] = {
	    "audio/mpeg, text/html",
	    "audio/mpeg,text/html",
	    "garbage",
	    "audio/",
	    "/mpeg",
	    "audio/mpeg; x",
	    "audio/mpeg; x=",
	    "audio/mpeg; x=\"open",
	    "audio/mpeg text/html",
	    "audio/mp eg",
	    "",
	    "audio/mpeg; x=\"a\\\"b\"",
	    "audio/mpeg\x7f",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(web_media_type_parse(bad[i], out, sizeof(out)), -1);
	assert_int_equal(web_media_type_parse("audio/mpeg", out, 5), -1); /* does not fit */
}

static void test_inline(void **state)
{
	assert_true(web_media_type_inline("audio/mpeg"));
	assert_true(web_media_type_inline("audio/mpeg;codecs=\"mp3\""));
	assert_true(web_media_type_inline("video/mp4"));
	assert_true(web_media_type_inline("image/png"));
	assert_false(web_media_type_inline("image/svg+xml"));
	assert_false(web_media_type_inline("text/html"));
	assert_false(web_media_type_inline("text/plain"));
	assert_false(web_media_type_inline("application/pdf"));
	assert_false(web_media_type_inline("audio/mpegx"));
	assert_false(web_media_type_inline("audio/mpeg, text/html"));
}

static void test_password_policy(void **state)
{
	assert_non_null(web_password_problem("bob", "a", 1));
	assert_non_null(web_password_problem("bob", "", 1));
	assert_non_null(web_password_problem("Bob_12345", "bob_12345", 1));
	assert_non_null(web_password_problem("bob", "Password123", 1));
	assert_null(web_password_problem("bob", "Password123", 0));
	assert_null(web_password_problem("bob", "correct horse battery", 1));
	assert_non_null(web_password_problem("bob", "äöüäöüä", 1)); /* 7 characters, 14 bytes */
	assert_true(web_password_is_common("QWERTYUIOP"));
	assert_false(web_password_is_common("testpass_not_common"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_inline),
	    cmocka_unit_test(test_password_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
