/* Tests web/validate.c: names, texts, ids, upload file names, token hashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "web_internal.h"

static void test_username(void **state)
{
	char long_name[80];

	assert_true(web_username_ok("admin"));
	assert_true(web_username_ok("Test_User_42"));
	assert_false(web_username_ok(""));
	assert_false(web_username_ok(NULL));
	assert_false(web_username_ok("bob smith"));
	assert_false(web_username_ok("bob'--"));
	assert_false(web_username_ok("<script>"));
	assert_false(web_username_ok("b\xc3\xa9"));
	memset(long_name, 'a', 64);
	long_name[64] = 0;
	assert_true(web_username_ok(long_name));
	long_name[64] = 'a';
	long_name[65] = 0;
	assert_false(web_username_ok(long_name));
}

static void test_text(void **state)
{
	assert_true(web_text_ok("Héllo <b>", strlen("Héllo <b>"), 100, 0));
	assert_false(web_text_ok("a\nb", 3, 100, 0));
	assert_true(web_text_ok("a\r\nb\tc", 6, 100, 1));
	assert_false(web_text_ok("a\x01", 2, 100, 1));
	assert_false(web_text_ok("\xff\xfe", 2, 100, 1));
	assert_false(web_text_ok("abcd", 4, 3, 0));
	assert_true(web_text_ok("", 0, 3, 0));
}

static void test_id(void **state)
{
	assert_true(web_id_ok("aB3-_x9QwErT"));
	assert_true(web_id_ok("42"));
	assert_false(web_id_ok(""));
	assert_false(web_id_ok("1 OR 1=1"));
	assert_false(web_id_ok("a/b"));
	assert_false(web_id_ok("%27"));
}

static void check_name(const char *in, const char *expect)
{
	char out[32];

	web_safe_filename(in, out, sizeof(out));
	assert_string_equal(out, expect);
}

static void test_safe_filename(void **state)
{
	check_name("clip.mp4", "clip.mp4");
	check_name("../../etc/passwd", "passwd");
	check_name("C:\\Users\\me\\voice memo.wav", "voice_memo.wav");
	check_name(".htaccess", "htaccess");
	check_name("...", "file");
	check_name("", "file");
	check_name(NULL, "file");
	check_name("a<b>\"c'.txt", "a_b__c_.txt");
	check_name("\xc3\xa9t\xc3\xa9.ogg", "__t__.ogg");
	check_name("0123456789012345678901234567890123456789.bin",
	           "0123456789012345678901234567890");
}

static void test_sha256_hex(void **state)
{
	char hex[65];

	web_sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_username),   cmocka_unit_test(test_text),
	    cmocka_unit_test(test_id),         cmocka_unit_test(test_safe_filename),
	    cmocka_unit_test(test_sha256_hex),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
