/* Tests engineio/base/base64.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/base.h"

/* RFC 4648 section 10 test vectors. */
static const char *const vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
	for (size_t i = 0; i < BASE_ARRAY_SIZE(vectors); i++) {
		const char *plain = vectors[i][0], *enc = vectors[i][1];
		char out[16], dec[16];
		size_t n = base_base64_encode(plain, strlen(plain), out);

		assert_int_equal(n, strlen(enc));
		assert_int_equal(base_base64_encoded_len(strlen(plain)), n);
		assert_memory_equal(out, enc, n);
		assert_int_equal(base_base64_decode(enc, strlen(enc), dec), (ssize_t)strlen(plain));
		assert_memory_equal(dec, plain, strlen(plain));
	}
}

static void test_unpadded_accepted(void **state)
{
	char dec[8];

	assert_int_equal(base_base64_decode("Zg", 2, dec), 1);
	assert_int_equal(dec[0], 'f');
	assert_int_equal(base_base64_decode("Zm8", 3, dec), 2);
	assert_memory_equal(dec, "fo", 2);
	assert_int_equal(base_base64_decode("Zm9vYg", 6, dec), 4);
	assert_memory_equal(dec, "foob", 4);
}

static void check_invalid(const char *s)
{
	char dec[64];

	assert_int_equal(base_base64_decode(s, strlen(s), dec), -1);
}

static void test_invalid(void **state)
{
	/* Characters outside the alphabet, including base64url's. */
	check_invalid("Zm9v!A==");
	check_invalid("Zm9-");
	check_invalid("Zm9_");
	check_invalid("Zm 9v");
	check_invalid("Zm9v\n");
	check_invalid("\x80\x80\x80\x80");
	/* A lone character cannot carry a byte. */
	check_invalid("Z");
	check_invalid("Zm9vY");
	/* Padding in the wrong place, too much of it, or on a partial quad. */
	check_invalid("=");
	check_invalid("==");
	check_invalid("===");
	check_invalid("====");
	check_invalid("Z===");
	check_invalid("Zg=");
	check_invalid("Zg=A");
	check_invalid("Z=g=");
	check_invalid("Zg==Zg==");
	check_invalid("Zm8=Zm8=");
	check_invalid("Zg==\n");
	/* Non-zero unused bits: "Zh==" and "Zm9=" are not canonical. */
	check_invalid("Zh==");
	check_invalid("Zh");
	check_invalid("Zm9=");
	check_invalid("Zm9");
	/* An embedded NUL. */
	char dec[8];
	assert_int_equal(base_base64_decode("Zm\0v", 4, dec), -1);
}

static void test_roundtrip_all_lengths(void **state)
{
	unsigned char in[300], dec[300];
	char enc[404];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 + 3);
	for (size_t len = 0; len <= sizeof(in); len++) {
		size_t n = base_base64_encode(in, len, enc);

		assert_int_equal(n, base_base64_encoded_len(len));
		assert_int_equal(base_base64_decode(enc, n, dec), (ssize_t)len);
		assert_memory_equal(dec, in, len);
	}
}

static void test_in_place(void **state)
{
	unsigned char in[256];
	char buf[400];

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)i;
	for (size_t len = 0; len <= sizeof(in); len += 17) {
		size_t n = base_base64_encode(in, len, buf);

		assert_int_equal(base_base64_decode(buf, n, buf), (ssize_t)len);
		assert_memory_equal(buf, in, len);
	}
}

static void test_every_alphabet_char(void **state)
{
	const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char dec[48];
	char again[64];

	assert_int_equal(base_base64_decode(alpha, 64, dec), 48);
	assert_int_equal(base_base64_encode(dec, 48, again), 64);
	assert_memory_equal(again, alpha, 64);
	/* Every byte value outside the alphabet is refused in every position. */
	for (int c = 0; c < 256; c++) {
		char q[4] = {'Q', 'U', 'J', 'D'};

		if (c != '=' && memchr(alpha, c, 64) != NULL)
			continue;
		for (int pos = 0; pos < 4; pos++) {
			char t[4];

			memcpy(t, q, 4);
			t[pos] = (char)c;
			if (c == '=' && pos >= 2)
				continue; /* "QU=D" is still invalid but "QUJ=" may be valid */
			assert_int_equal(base_base64_decode(t, 4, dec), -1);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_unpadded_accepted),
	    cmocka_unit_test(test_invalid),         cmocka_unit_test(test_roundtrip_all_lengths),
	    cmocka_unit_test(test_in_place),        cmocka_unit_test(test_every_alphabet_char),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
