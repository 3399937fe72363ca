/* Tests socketio/json.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "socketio/packet.h"
#include "socketio/socketio_internal.h"

static int valid(const char *s)
{
	return sio_json_validate(s, strlen(s)) == 0;
}

static void test_validate_accepts(void **state)
{
	static const char *ok[] = {
	    "0",
	    "-0",
	    "1",
	    "-1",
	    "10",
	    "1.5",
	    "-0.25",
	    "1e5",
	    "1E+5",
	    "1e-5",
	    "2.5e10",
	    "0e0",
	    "123456789012345678901234567890",
	    "true",
	    "false",
	    "null",
	    "\"\"",
	    "\"abc\"",
	    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
	    "\"\\u0041\\u00e9\\uD83D\\uDE00\"",
	    "\"\\ud800\"", /* a lone surrogate is valid JSON (JSON.parse takes it) */
	    "\"\xc3\xa9\xe2\x82\xac\"",
	    "\"\x7f\"",
	    "[]",
	    "{}",
	    "[1,2,3]",
	    "[ 1 , 2 ]",
	    " \t\r\n[\"a\",{\"b\":[null,true,false]}] \n",
	    "{\"a\":1,\"b\":{\"c\":[{}]}}",
	    "{ \"a\" : 1 , \"a\" : 2 }",
	    "[[],[[]],{}]",
	    "\"\\u0000\""};

	for (size_t i = 0; i < BASE_ARRAY_SIZE(ok); i++) {
		if (!valid(ok[i]))
			fail_msg("should be valid: %s", ok[i]);
	}
}

static void test_validate_rejects(void **state)
{
	static const char *bad[] = {"",
	                            " ",
	                            "[",
	                            "]",
	                            "{",
	                            "}",
	                            "[1,]",
	                            "[,1]",
	                            "[1 2]",
	                            "{,}",
	                            "{\"a\"}",
	                            "{\"a\":}",
	                            "{\"a\" 1}",
	                            "{1:2}",
	                            "{a:1}",
	                            "{\"a\":1,}",
	                            "[1]]",
	                            "[1] x",
	                            "1 2",
	                            "\"abc",
	                            "\"abc\\\"",
	                            "\"\\x\"",
	                            "\"\\u12\"",
	                            "\"\\u12g4\"",
	                            "\"\\U0041\"",
	                            "\"a\nb\"",
	                            "\"a\tb\"",
	                            "\"\x01\"",
	                            "'a'",
	                            "01",
	                            "-01",
	                            "1.",
	                            ".5",
	                            "-",
	                            "+1",
	                            "1e",
	                            "1e+",
	                            "0x10",
	                            "NaN",
	                            "Infinity",
	                            "-Infinity",
	                            "tru",
	                            "nul",
	                            "fals",
	                            "truex",
	                            "True",
	                            "[true false]",
	                            "{\"a\":1 \"b\":2}",
	                            "\"a\"\"b\"",
	                            "[\"a\" \"b\"]",
	                            "\v1",
	                            "1\f",
	                            "\xef\xbb\xbf{}" /* no BOM either */};

	for (size_t i = 0; i < BASE_ARRAY_SIZE(bad); i++) {
		if (valid(bad[i]))
			fail_msg("should be invalid: %s", bad[i]);
	}
	/* An embedded NUL is a raw control character. */
	assert_int_equal(sio_json_validate("\"a\0b\"", 5), -1);
	assert_int_equal(sio_json_validate("1\0", 2), -1);
}

/* Builds depth levels of nesting around a 1, alternating arrays and objects. */
static char *nested(int depth, int objects)
{
	char *s = malloc((size_t)depth * 6 + 2), *w = s;

	for (int i = 0; i < depth; i++) {
		if (objects && i % 2) {
			memcpy(w, "{\"k\":", 5);
			w += 5;
		} else {
			*w++ = '[';
		}
	}
	*w++ = '1';
	for (int i = depth - 1; i >= 0; i--)
		*w++ = objects && i % 2 ? '}' : ']';
	*w = '\0';
	return s;
}

static void test_validate_depth(void **state)
{
	for (int objects = 0; objects <= 1; objects++) {
		char *s64 = nested(64, objects), *s65 = nested(65, objects);
		char *s10k = nested(10000, objects);

		assert_true(valid(s64));
		assert_false(valid(s65));
		assert_false(valid(s10k));
		free(s64);
		free(s65);
		free(s10k);
	}
	/* Depth is nesting, not count: many siblings at depth 64 are fine. */
	{
		base_buf b = BASE_BUF_INIT;

		for (int i = 0; i < 63; i++)
			base_buf_append(&b, "[", 1);
		for (int i = 0; i < 1000; i++)
			base_buf_append_str(&b, i ? ",[]" : "[]");
		for (int i = 0; i < 63; i++)
			base_buf_append(&b, "]", 1);
		assert_int_equal(sio_json_validate(b.data, b.len), 0);
		base_buf_free(&b);
	}
}

static void check_unescape(const char *in, const char *want, size_t want_len)
{
	char out[64];
	ssize_t n = sio_json_unescape(in, strlen(in), out);

	if (n != (ssize_t)want_len || memcmp(out, want, want_len) != 0)
		fail_msg("unescape %s: got %zd bytes", in, n);
}

static void test_unescape(void **state)
{
	check_unescape("", "", 0);
	check_unescape("plain", "plain", 5);
	check_unescape("a\\\"b\\\\c\\/d", "a\"b\\c/d", 7);
	check_unescape("\\b\\f\\n\\r\\t", "\b\f\n\r\t", 5);
	check_unescape("\\u0041\\u00e9\\u20AC", "A\xc3\xa9\xe2\x82\xac", 6);
	check_unescape("\\u0000", "\0", 1);
	check_unescape("\\ud83d\\ude00!", "\xf0\x9f\x98\x80!", 5); /* a surrogate pair */
	check_unescape("\\uDBFF\\uDFFF", "\xf4\x8f\xbf\xbf", 4);   /* U+10FFFF */
	check_unescape("\\ud83dx", "\xef\xbf\xbdx", 4);            /* lone high: U+FFFD */
	check_unescape("\\ude00", "\xef\xbf\xbd", 3);              /* lone low */
	check_unescape("\\ud83d\\u0041",
	               "\xef\xbf\xbd"
	               "A",
	               4); /* high then not a low */
	check_unescape("\\ud83d\\ud83d\\ude00", "\xef\xbf\xbd\xf0\x9f\x98\x80", 7);
	check_unescape("\xc3\xa9\x7f", "\xc3\xa9\x7f", 3); /* UTF-8 passes through */

	static const char *bad[] = {"\\",      "a\\",  "\\x",  "\\u",    "\\u123",
	                            "\\u12g4", "a\"b", "a\nb", "\\U0041"};
	char out[16];

	for (size_t i = 0; i < BASE_ARRAY_SIZE(bad); i++) {
		if (sio_json_unescape(bad[i], strlen(bad[i]), out) != -1)
			fail_msg("should be invalid: %s", bad[i]);
	}
}

static void test_unescape_in_place(void **state)
{
	char s[] = "x\\u00e9\\n\\ud83d\\ude00y";
	ssize_t n = sio_json_unescape(s, strlen(s), s);

	assert_int_equal(n, 9);
	assert_memory_equal(s, "x\xc3\xa9\n\xf0\x9f\x98\x80y", 9);
}

static void test_append_string(void **state)
{
	base_buf b = BASE_BUF_INIT;

	sio_json_append_string(&b, "", 0);
	sio_json_append_string(&b, "a\"b\\c", 5);
	sio_json_append_string(&b, "\b\f\n\r\t\x01\x1f\x7f", 8);
	sio_json_append_string(&b, "\xc3\xa9\xf0\x9f\x98\x80", 6);
	sio_json_append_string(&b, "n\0l", 3);
	const char want[] = "\"\"\"a\\\"b\\\\c\"\"\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\""
	                    "\"\xc3\xa9\xf0\x9f\x98\x80\"\"n\\u0000l\"";
	assert_int_equal(b.len, sizeof(want) - 1);
	assert_memory_equal(b.data, want, b.len);
	base_buf_free(&b);
}

/* Every byte survives append_string then unescape, and the result is valid JSON. */
static void test_append_unescape_roundtrip(void **state)
{
	char all[256], back[256 * 6];
	base_buf b = BASE_BUF_INIT;
	ssize_t n;

	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	sio_json_append_string(&b, all, sizeof(all));
	assert_int_equal(sio_json_validate(b.data, b.len), 0);
	n = sio_json_unescape(b.data + 1, b.len - 2, back);
	assert_int_equal(n, 256);
	assert_memory_equal(back, all, 256);
	base_buf_free(&b);
}

static void test_split(void **state)
{
	sio__json_split_t s;
	const char *t;

	t = "[\"message\",{\"a\":1},\"hello\"]";
	assert_int_equal(sio__json_split(t, strlen(t), &s), SIO__JSON_ARRAY);
	assert_int_equal(s.first_kind, SIO__JSON_STRING);
	assert_true(base_slice_eq(s.first, "message"));
	assert_int_equal(s.escaped, 0);
	assert_true(base_slice_eq(s.rest, "{\"a\":1},\"hello\""));
	assert_true(base_slice_eq(s.inside, "\"message\",{\"a\":1},\"hello\""));

	t = " [ \"a\\nb\" , 1 , [2] ] ";
	assert_int_equal(sio__json_split(t, strlen(t), &s), SIO__JSON_ARRAY);
	assert_true(base_slice_eq(s.first, "a\\nb"));
	assert_int_equal(s.escaped, 1);
	assert_true(base_slice_eq(s.rest, "1 , [2]"));
	assert_true(base_slice_eq(s.inside, "\"a\\nb\" , 1 , [2]"));

	t = "[\"only\"]";
	assert_int_equal(sio__json_split(t, strlen(t), &s), SIO__JSON_ARRAY);
	assert_true(base_slice_eq(s.first, "only"));
	assert_int_equal(s.rest.len, 0);

	t = "[ ]";
	assert_int_equal(sio__json_split(t, strlen(t), &s), SIO__JSON_ARRAY);
	assert_int_equal(s.first_kind, SIO__JSON_NONE);
	assert_int_equal(s.inside.len, 0);
	assert_int_equal(s.rest.len, 0);

	t = "[{\"x\":[1]}, 2]";
	assert_int_equal(sio__json_split(t, strlen(t), &s), SIO__JSON_ARRAY);
	assert_int_equal(s.first_kind, SIO__JSON_OBJECT);
	assert_true(base_slice_eq(s.first, "{\"x\":[1]}"));
	assert_true(base_slice_eq(s.rest, "2"));

	assert_int_equal(sio__json_split("{\"a\":[1]}", 9, &s), SIO__JSON_OBJECT);
	assert_int_equal(sio__json_split(" \"s\\t\" ", 7, &s), SIO__JSON_STRING);
	assert_true(base_slice_eq(s.first, "s\\t"));
	assert_int_equal(s.escaped, 1);
	assert_int_equal(sio__json_split("12", 2, &s), SIO__JSON_NUMBER);
	assert_int_equal(sio__json_split("true", 4, &s), SIO__JSON_TRUE);
	assert_int_equal(sio__json_split("false", 5, &s), SIO__JSON_FALSE);
	assert_int_equal(sio__json_split("null", 4, &s), SIO__JSON_NULL);

	static const char *bad[] = {"",     "[",   "[\"a\"",   "[\"a\",]",  "[\"a\" 1]", "[1]x",
	                            "[1],", "[,]", "[\"a\",1", "[\"a\",1,", "{",         "[01]"};
	for (size_t i = 0; i < BASE_ARRAY_SIZE(bad); i++) {
		if (sio__json_split(bad[i], strlen(bad[i]), &s) != -1)
			fail_msg("should be invalid: %s", bad[i]);
	}
	/* The array itself counts as one level. */
	char *s64 = nested(64, 0), *s65 = nested(65, 0);
	assert_int_equal(sio__json_split(s64, strlen(s64), &s), SIO__JSON_ARRAY);
	assert_int_equal(sio__json_split(s65, strlen(s65), &s), -1);
	free(s64);
	free(s65);
}

static int placeholder(const char *t, int64_t *num)
{
	const char *after;
	int r;

	assert_int_equal(sio_json_validate(t, strlen(t)), 0);
	r = sio__json_placeholder(t, t + strlen(t), &after, num);
	assert_ptr_equal(after, t + strlen(t));
	return r;
}

static void test_placeholder(void **state)
{
	int64_t num;

	assert_int_equal(placeholder("{\"_placeholder\":true,\"num\":0}", &num), 1);
	assert_int_equal(num, 0);
	assert_int_equal(placeholder("{ \"num\" : 12 , \"_placeholder\" : true }", &num), 1);
	assert_int_equal(num, 12);
	assert_int_equal(placeholder("{\"_placeholder\":true,\"num\":2.0,\"x\":[{}]}", &num), 1);
	assert_int_equal(num, 2);
	assert_int_equal(placeholder("{\"\\u005fplaceholder\":true,\"n\\u0075m\":3}", &num), 1);
	assert_int_equal(num, 3);
	assert_int_equal(placeholder("{}", &num), 0);
	assert_int_equal(placeholder("{\"_placeholder\":false,\"num\":0}", &num), 0);
	assert_int_equal(placeholder("{\"_placeholder\":\"true\",\"num\":0}", &num), 0);
	assert_int_equal(placeholder("{\"_placeholder\":true,\"_placeholder\":1,\"num\":0}", &num),
	                 0);
	assert_int_equal(placeholder("{\"a\":{\"_placeholder\":true,\"num\":0}}", &num), 0);
	assert_int_equal(placeholder("{\"_placeholder\":true}", &num), -1);
	assert_int_equal(placeholder("{\"_placeholder\":true,\"num\":-1}", &num), -1);
	assert_int_equal(placeholder("{\"_placeholder\":true,\"num\":0.5}", &num), -1);
	assert_int_equal(placeholder("{\"_placeholder\":true,\"num\":\"0\"}", &num), -1);
	assert_int_equal(placeholder("{\"_placeholder\":true,\"num\":1e300}", &num), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_validate_accepts),
	    cmocka_unit_test(test_validate_rejects),
	    cmocka_unit_test(test_validate_depth),
	    cmocka_unit_test(test_unescape),
	    cmocka_unit_test(test_unescape_in_place),
	    cmocka_unit_test(test_append_string),
	    cmocka_unit_test(test_append_unescape_roundtrip),
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_placeholder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
