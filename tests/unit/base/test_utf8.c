/* Tests engineio/base/utf8.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/base.h"

/* 1 valid and complete, 0 valid but ends mid-character, -1 invalid. */
static int validate(const char *s, size_t len)
{
	uint32_t st = 0;

	if (base_utf8_validate(&st, (const unsigned char *)s, len) < 0)
		return -1;
	return st == 0 ? 1 : 0;
}

/* The same text fed in two pieces split at every position, and byte by byte. */
static void check_pieces(const char *s, size_t len, int expect)
{
	assert_int_equal(validate(s, len), expect);
	for (size_t cut = 0; cut <= len; cut++) {
		uint32_t st = 0;
		int r = base_utf8_validate(&st, (const unsigned char *)s, cut);

		if (r == 0)
			r = base_utf8_validate(&st, (const unsigned char *)s + cut, len - cut);
		assert_int_equal(r < 0 ? -1 : (st == 0 ? 1 : 0), expect);
	}
	uint32_t st = 0;
	int r = 0;
	for (size_t i = 0; i < len && r == 0; i++)
		r = base_utf8_validate(&st, (const unsigned char *)s + i, 1);
	assert_int_equal(r < 0 ? -1 : (st == 0 ? 1 : 0), expect);
}

#define CHECK(lit, expect) check_pieces((lit), sizeof(lit) - 1, (expect))

static void test_valid(void **state)
{
	CHECK("", 1);
	CHECK("hello", 1);
	CHECK("a long ascii line that takes the eight-bytes-at-a-time path", 1);
	CHECK("\x00", 1);
	CHECK("\x7f", 1);
	CHECK("\xc2\x80", 1);                                     /* U+0080 */
	CHECK("\xdf\xbf", 1);                                     /* U+07FF */
	CHECK("\xe0\xa0\x80", 1);                                 /* U+0800 */
	CHECK("\xed\x9f\xbf", 1);                                 /* U+D7FF */
	CHECK("\xee\x80\x80", 1);                                 /* U+E000 */
	CHECK("\xef\xbf\xbf", 1);                                 /* U+FFFF */
	CHECK("\xef\xbb\xbf", 1);                                 /* BOM */
	CHECK("\xf0\x90\x80\x80", 1);                             /* U+10000 */
	CHECK("\xf4\x8f\xbf\xbf", 1);                             /* U+10FFFF */
	CHECK("\xf3\xbf\xbf\xbf", 1);                             /* U+FFFFF */
	CHECK("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1); /* Autobahn 6.2 */
	CHECK("abcdefgh\xe2\x82\xac"
	      "abcdefghijklmnop\xf0\x9f\x98\x80xyz",
	      1);
}

static void test_truncated(void **state)
{
	CHECK("\xc2", 0);
	CHECK("\xe0\xa0", 0);
	CHECK("\xe2", 0);
	CHECK("\xf0\x90\x80", 0);
	CHECK("\xf4", 0);
	CHECK("abcdefghij\xf0\x9f\x98", 0);
	/* A truncated sequence followed by anything but a continuation is invalid. */
	CHECK("\xc2"
	      "a",
	      -1);
	CHECK("\xe2\x82"
	      "a",
	      -1);
	CHECK("\xf0\x9f\x98"
	      "a",
	      -1);
	CHECK("\xe2\x82\xc2\x80", -1);
}

static void test_overlong(void **state)
{
	CHECK("\xc0\x80", -1); /* NUL in two bytes */
	CHECK("\xc0\xaf", -1); /* '/' */
	CHECK("\xc1\xbf", -1);
	CHECK("\xe0\x80\xaf", -1);
	CHECK("\xe0\x9f\xbf", -1); /* U+07FF in three bytes */
	CHECK("\xf0\x80\x80\xaf", -1);
	CHECK("\xf0\x8f\xbf\xbf", -1); /* U+FFFF in four bytes */
	CHECK("\xf8\x88\x80\x80\x80", -1);
	CHECK("\xfc\x84\x80\x80\x80\x80", -1);
}

static void test_surrogates(void **state)
{
	CHECK("\xed\xa0\x80", -1);             /* U+D800 */
	CHECK("\xed\xad\xbf", -1);             /* U+DB7F */
	CHECK("\xed\xb0\x80", -1);             /* U+DC00 */
	CHECK("\xed\xbf\xbf", -1);             /* U+DFFF */
	CHECK("\xed\xa0\x80\xed\xb0\x80", -1); /* a CESU-8 pair */
}

static void test_too_large_and_bad_bytes(void **state)
{
	CHECK("\xf4\x90\x80\x80", -1); /* U+110000 */
	CHECK("\xf4\xbf\xbf\xbf", -1);
	CHECK("\xf5\x80\x80\x80", -1);
	CHECK("\xf7\xbf\xbf\xbf", -1);
	CHECK("\xff", -1);
	CHECK("\xfe", -1);
	CHECK("\x80", -1); /* lone continuation */
	CHECK("\xbf", -1);
	CHECK("a\x80", -1);
	CHECK("\xc2\x80\x80", -1); /* one continuation too many */
	CHECK("abcdefgh\x80zzzzzzzz", -1);
}

static void test_reject_is_sticky(void **state)
{
	uint32_t st = 0;

	assert_int_equal(base_utf8_validate(&st, (const unsigned char *)"\xff", 1), -1);
	assert_int_not_equal(st, 0);
	assert_int_equal(base_utf8_validate(&st, (const unsigned char *)"abc", 3), -1);
	assert_int_equal(base_utf8_validate(&st, (const unsigned char *)"", 0), -1);
	assert_int_not_equal(st, 0);
}

/* Every one- and two-byte sequence against a reference decoder written from RFC 3629. */
static int reference(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned c = s[i], need;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc0 && c < 0xe0) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c < 0xf0) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c < 0xf8) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return -1;
		}
		for (unsigned k = 1; k <= need; k++) {
			if (i + k >= len)
				return 0; /* truncated: all continuations so far were fine */
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += need + 1;
	}
	return 1;
}

static void test_against_reference(void **state)
{
	unsigned char s[3];

	for (unsigned a = 0; a < 256; a++) {
		for (unsigned b = 0; b < 256; b++) {
			s[0] = (unsigned char)a;
			s[1] = (unsigned char)b;
			int ref = reference(s, 2), got = validate((const char *)s, 2);

			/*
			 * The reference only sees overlongs and ranges once a
			 * sequence is complete; the DFA rejects on the first bad
			 * byte. They agree whenever the reference has decided.
			 */
			if (ref != 0)
				assert_int_equal(got, ref);
			else
				assert_true(got == 0 || got == -1);
		}
	}
	/* All three-byte sequences starting with E0..EF and F0..F4 prefixes. */
	for (unsigned a = 0xe0; a < 0xf5; a++) {
		for (unsigned b = 0x80; b < 0xc0; b++) {
			for (unsigned c = 0; c < 256; c++) {
				s[0] = (unsigned char)a;
				s[1] = (unsigned char)b;
				s[2] = (unsigned char)c;
				int ref = reference(s, 3), got = validate((const char *)s, 3);

				if (ref != 0)
					assert_int_equal(got, ref);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_overlong),
	    cmocka_unit_test(test_surrogates),
	    cmocka_unit_test(test_too_large_and_bad_bytes),
	    cmocka_unit_test(test_reject_is_sticky),
	    cmocka_unit_test(test_against_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
