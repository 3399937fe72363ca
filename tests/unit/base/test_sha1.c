/* Tests engineio/base/sha1.c against FIPS 180 and RFC 6455 vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/base.h"

static void hex(const uint8_t d[BASE_SHA1_LEN], char out[2 * BASE_SHA1_LEN + 1])
{
	for (size_t i = 0; i < BASE_SHA1_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void check(const void *data, size_t len, const char *want)
{
	uint8_t d[BASE_SHA1_LEN];
	char h[2 * BASE_SHA1_LEN + 1];

	base_sha1(data, len, d);
	hex(d, h);
	assert_string_equal(h, want);
}

static void test_known_vectors(void **state)
{
	(void)state;
	check("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	check("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
	/* 56 bytes: the padding needs a second block. */
	check("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	      "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	/* 112 bytes: a whole block, then a tail that needs a second padding block. */
	check("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmn"
	      "opq"
	      "rlmnopqrsmnopqrstnopqrstu",
	      112, "a49b2446a02c645bf419f995b67091253a04a259");
	check("The quick brown fox jumps over the lazy dog", 43,
	      "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
}

static void test_million_a(void **state)
{
	(void)state;
	char *a = malloc(1000000);
	assert_non_null(a);
	memset(a, 'a', 1000000);
	check(a, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	free(a);
}

/* Lengths on each side of the block (64) and padding (56) boundaries: n bytes of 'x'. */
static void test_boundary_lengths(void **state)
{
	(void)state;
	static const struct {
		size_t n;
		const char *sha1;
	} v[] = {
	    {55, "cef734ba81a024479e09eb5a75b6ddae62e6abf1"},
	    {56, "901305367c259952f4e7af8323f480d59f81335b"},
	    {63, "0ddc4e0cccd9a12850deb5abb0853a4425559fec"},
	    {64, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163"},
	    {65, "78c741ddc482e4cdf8c474a0876347a0905b6233"},
	    {119, "4300320394f7ee239bcdce7d3b8bcee173a0cd5c"},
	    {120, "ceb2821639c4b6dcb10bce0e522ca2e608ce056d"},
	    {127, "e463484d274607e1897d4099497cbf2aedcf8206"},
	    {128, "150fa3fbdc899bd0b8f95a9fb6027f564d953762"},
	    {129, "2699b675922cc84a9b0dfd926eb7f8211c78693d"},
	};
	char buf[129];
	memset(buf, 'x', sizeof(buf));
	for (size_t i = 0; i < BASE_ARRAY_SIZE(v); i++)
		check(buf, v[i].n, v[i].sha1);
}

/* RFC 6455 section 1.3: the accept key of the sample nonce. */
static void test_websocket_accept(void **state)
{
	(void)state;
	const char *in = "dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	uint8_t d[BASE_SHA1_LEN];
	char b64[32];
	base_sha1(in, strlen(in), d);
	size_t n = base_base64_encode(d, sizeof(d), b64);
	b64[n] = '\0';
	assert_string_equal(b64, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_vectors),
	    cmocka_unit_test(test_million_a),
	    cmocka_unit_test(test_boundary_lengths),
	    cmocka_unit_test(test_websocket_accept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
