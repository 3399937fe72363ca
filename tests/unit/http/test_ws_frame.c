/* Tests engineio/http/ws_frame.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/base.h"
#include "http/ws_deflate.h"
#include "http/ws_frame.h"

#define NO_LIMIT UINT64_MAX

static ssize_t parse(const void *buf, size_t len, int require_mask, uint64_t max, http_ws_frame *f,
                     const char **err)
{
	*err = NULL;
	memset(f, 0xee, sizeof(*f));
	return http_ws_frame_parse(buf, len, require_mask, max, f, err);
}

/* Every strict prefix of a valid header is partial; the whole parses. */
static void check_prefixes_partial(const unsigned char *h, size_t hlen, int require_mask)
{
	http_ws_frame f;
	const char *err;

	for (size_t k = 0; k < hlen; k++) {
		/* A heap copy of exactly k bytes lets ASan catch any read past the end. */
		unsigned char *cp = malloc(k ? k : 1);

		memcpy(cp, h, k);
		assert_int_equal(parse(cp, k, require_mask, NO_LIMIT, &f, &err), -2);
		free(cp);
	}
	assert_int_equal(parse(h, hlen, require_mask, NO_LIMIT, &f, &err), (ssize_t)hlen);
}

static void test_small_masked_text(void **state)
{
	/* RFC 6455 5.7: a masked "Hello". */
	unsigned char fr[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	http_ws_frame f;
	const char *err;

	assert_int_equal(parse(fr, sizeof(fr), 1, 1000, &f, &err), 6);
	assert_int_equal(f.fin, 1);
	assert_int_equal(f.opcode, HTTP_WS_OP_TEXT);
	assert_int_equal(f.masked, 1);
	assert_int_equal(f.payload_len, 5);
	assert_int_equal(f.header_len, 6);
	assert_int_equal(f.close_code, 0);
	assert_memory_equal(f.mask, "\x37\xfa\x21\x3d", 4);
	http_ws_unmask((char *)fr + 6, 5, f.mask, 0);
	assert_memory_equal(fr + 6, "Hello", 5);
	check_prefixes_partial(fr, 6, 1);
}

static void test_unmasked_from_server(void **state)
{
	unsigned char fr[] = {0x01, 0x03, 'H', 'e', 'l'};
	http_ws_frame f;
	const char *err;

	assert_int_equal(parse(fr, sizeof(fr), 0, NO_LIMIT, &f, &err), 2);
	assert_int_equal(f.fin, 0);
	assert_int_equal(f.masked, 0);
	assert_int_equal(f.payload_len, 3);
	/* The same bytes from a client are refused. */
	assert_int_equal(parse(fr, sizeof(fr), 1, NO_LIMIT, &f, &err), -1);
	assert_int_equal(f.close_code, HTTP_WS_CLOSE_PROTOCOL);
	assert_non_null(err);
}

/* Builds a header with our encoder and checks the parser reads it back, for both forms. */
static void check_length(uint64_t len, size_t expect_hlen)
{
	char h[HTTP_WS_MAX_HEADER];
	const uint8_t mask[4] = {1, 2, 3, 4};
	http_ws_frame f;
	const char *err;
	size_t n = http_ws_frame_header(h, 1, HTTP_WS_OP_BINARY, len);

	assert_int_equal(n, expect_hlen);
	assert_int_equal(parse(h, n, 0, NO_LIMIT, &f, &err), (ssize_t)n);
	assert_int_equal(f.payload_len, len);
	assert_int_equal(f.opcode, HTTP_WS_OP_BINARY);
	assert_int_equal(f.fin, 1);
	assert_int_equal(f.masked, 0);
	check_prefixes_partial((unsigned char *)h, n, 0);
	/* Exactly at the limit passes, one byte under it fails with 1009. */
	assert_int_equal(parse(h, n, 0, len, &f, &err), (ssize_t)n);
	if (len > 0) {
		assert_int_equal(parse(h, n, 0, len - 1, &f, &err), -1);
		assert_int_equal(f.close_code, HTTP_WS_CLOSE_TOO_BIG);
		assert_non_null(err);
	}

	n = http_ws_frame_header_masked(h, 0, HTTP_WS_OP_TEXT, len, mask);
	assert_int_equal(n, expect_hlen + 4);
	assert_int_equal(parse(h, n, 1, NO_LIMIT, &f, &err), (ssize_t)n);
	assert_int_equal(f.payload_len, len);
	assert_int_equal(f.opcode, HTTP_WS_OP_TEXT);
	assert_int_equal(f.fin, 0);
	assert_int_equal(f.masked, 1);
	assert_int_equal(f.header_len, n);
	assert_memory_equal(f.mask, mask, 4);
	check_prefixes_partial((unsigned char *)h, n, 1);
}

static void test_length_encodings(void **state)
{
	check_length(0, 2);
	check_length(1, 2);
	check_length(125, 2);
	check_length(126, 4);
	check_length(127, 4);
	check_length(65535, 4);
	check_length(65536, 10);
	check_length(UINT64_C(1) << 32, 10);
	check_length(INT64_MAX, 10);
}

static void test_header_bytes(void **state)
{
	char h[HTTP_WS_MAX_HEADER];

	assert_int_equal(http_ws_frame_header(h, 1, HTTP_WS_OP_TEXT, 5), 2);
	assert_memory_equal(h, "\x81\x05", 2);
	assert_int_equal(http_ws_frame_header(h, 0, HTTP_WS_OP_BINARY, 300), 4);
	assert_memory_equal(h, "\x02\x7e\x01\x2c", 4);
	assert_int_equal(http_ws_frame_header(h, 1, HTTP_WS_OP_CLOSE, 0), 2);
	assert_memory_equal(h, "\x88\x00", 2);
	assert_int_equal(http_ws_frame_header(h, 1, HTTP_WS_OP_BINARY, 0x0102030405ull), 10);
	assert_memory_equal(h, "\x82\x7f\x00\x00\x00\x01\x02\x03\x04\x05", 10);
	assert_int_equal(http_ws_frame_header_masked(h, 1, HTTP_WS_OP_PING, 2,
	                                             (const uint8_t *)"\xaa\xbb\xcc\xdd"),
	                 6);
	assert_memory_equal(h, "\x89\x82\xaa\xbb\xcc\xdd", 6);
	assert_int_equal(http_ws_frame_header_masked(h, 1, HTTP_WS_OP_TEXT, 70000,
	                                             (const uint8_t *)"\x01\x02\x03\x04"),
	                 14);
	assert_memory_equal(h, "\x81\xff\x00\x00\x00\x00\x00\x01\x11\x70\x01\x02\x03\x04", 14);
}

static void check_invalid(const unsigned char *fr, size_t len, int require_mask, uint64_t max,
                          uint16_t code)
{
	http_ws_frame f;
	const char *err;

	assert_int_equal(parse(fr, len, require_mask, max, &f, &err), -1);
	assert_int_equal(f.close_code, code);
	assert_non_null(err);
	/* Any prefix is either still partial or already known to be invalid. */
	for (size_t k = 0; k < len; k++) {
		ssize_t r = parse(fr, k, require_mask, max, &f, &err);

		assert_true(r == -2 || r == -1);
		if (r == -1)
			assert_int_equal(f.close_code, code);
	}
}

#define INVALID(code, ...)                                            \
	do {                                                          \
		const unsigned char fr_[] = {__VA_ARGS__};            \
		check_invalid(fr_, sizeof(fr_), 1, NO_LIMIT, (code)); \
	} while (0)

static void test_invalid_frames(void **state)
{
	const uint16_t P = HTTP_WS_CLOSE_PROTOCOL;

	/* Reserved bits, each one and all three. */
	INVALID(P, 0xc1, 0x80, 1, 2, 3, 4);
	INVALID(P, 0xa1, 0x80, 1, 2, 3, 4);
	INVALID(P, 0x91, 0x80, 1, 2, 3, 4);
	INVALID(P, 0xf1, 0x80, 1, 2, 3, 4);
	INVALID(P, 0x48, 0x80, 1, 2, 3, 4);
	/* Unknown opcodes: 3-7 and B-F. */
	for (unsigned op = 0; op < 16; op++) {
		unsigned char fr[6] = {(unsigned char)(0x80 | op), 0x80, 1, 2, 3, 4};
		http_ws_frame f;
		const char *err;
		int known = op <= 2 || (op >= 8 && op <= 10);

		if (known) {
			assert_int_equal(parse(fr, 6, 1, NO_LIMIT, &f, &err), 6);
		} else {
			check_invalid(fr, 6, 1, NO_LIMIT, P);
		}
	}
	/* Fragmented control frames. */
	INVALID(P, 0x08, 0x80, 1, 2, 3, 4);
	INVALID(P, 0x09, 0x80, 1, 2, 3, 4);
	INVALID(P, 0x0a, 0x80, 1, 2, 3, 4);
	/* Control frames over 125 bytes, in any length form. */
	INVALID(P, 0x89, 0x80 | 126, 0x00, 0x7e, 1, 2, 3, 4);
	INVALID(P, 0x88, 0x80 | 126, 0x00, 0x7d, 1, 2, 3, 4);
	INVALID(P, 0x8a, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0x7e, 1, 2, 3, 4);
	/* Non-minimal lengths. */
	INVALID(P, 0x82, 0x80 | 126, 0x00, 0x00, 1, 2, 3, 4);
	INVALID(P, 0x82, 0x80 | 126, 0x00, 0x7d, 1, 2, 3, 4);
	INVALID(P, 0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0x05, 1, 2, 3, 4);
	INVALID(P, 0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4);
	/* The 64-bit length's top bit. */
	INVALID(P, 0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4);
	INVALID(P, 0x82, 0x80 | 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4);
	/* Unmasked from a client. */
	INVALID(P, 0x81, 0x05, 'H', 'e', 'l', 'l', 'o');
	INVALID(P, 0x82, 126, 0x01, 0x00);
	INVALID(P, 0x88, 0x00);
}

static void test_size_limit(void **state)
{
	const unsigned char fr[] = {0x82, 0x80 | 126, 0x01, 0x00, 1, 2, 3, 4};
	http_ws_frame f;
	const char *err;

	check_invalid(fr, sizeof(fr), 1, 255, HTTP_WS_CLOSE_TOO_BIG);
	assert_int_equal(parse(fr, sizeof(fr), 1, 256, &f, &err), 8);
	/* A zero limit allows only empty frames. */
	assert_int_equal(parse("\x81\x80\x01\x02\x03\x04", 6, 1, 0, &f, &err), 6);
	assert_int_equal(parse("\x81\x81\x01\x02\x03\x04", 6, 1, 0, &f, &err), -1);
	assert_int_equal(f.close_code, HTTP_WS_CLOSE_TOO_BIG);
	/* The size is judged before the mask arrives. */
	assert_int_equal(parse(fr, 4, 1, 255, &f, &err), -1);
}

static void test_max_valid_control_and_trailing_bytes(void **state)
{
	const unsigned char ping[] = {0x89, 0x80 | 125, 9, 9, 9, 9};
	http_ws_frame f;
	const char *err;

	assert_int_equal(parse(ping, sizeof(ping), 1, NO_LIMIT, &f, &err), 6);
	assert_int_equal(f.payload_len, 125);
	/* Bytes after the header (payload, next frame) are not looked at. */
	unsigned char two[] = {0x81, 0x80, 1, 2, 3, 4, 0xff, 0xff};
	assert_int_equal(parse(two, sizeof(two), 1, NO_LIMIT, &f, &err), 6);
	assert_int_equal(parse(two + 6, 2, 1, NO_LIMIT, &f, &err), -1);
}

/* Byte-at-a-time reference for unmasking. */
static void naive_unmask(unsigned char *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
	for (size_t i = 0; i < n; i++)
		p[i] ^= mask[(offset + i) % 4];
}

static void test_unmask_every_offset(void **state)
{
	const uint8_t mask[4] = {0x12, 0x9a, 0xf0, 0x07};
	enum { N = 200 };
	unsigned char src[N], a[N + 8], b[N];

	for (size_t i = 0; i < N; i++)
		src[i] = (unsigned char)(i * 31 + 5);
	for (uint64_t offset = 0; offset < 12; offset++) {
		for (size_t start = 0; start < 8; start++) { /* every alignment of the pointer */
			for (size_t n = 0; n <= 80; n++) {
				memcpy(a + start, src, n);
				memcpy(b, src, n);
				http_ws_unmask((char *)a + start, n, mask, offset);
				naive_unmask(b, n, mask, offset);
				if (n > 0)
					assert_memory_equal(a + start, b, n);
			}
		}
	}
	/* Large offsets, as in the middle of a huge payload. */
	memcpy(a, src, N);
	memcpy(b, src, N);
	http_ws_unmask((char *)a, N, mask, UINT64_C(0xfffffffffffffffd));
	naive_unmask(b, N, mask, UINT64_C(0xfffffffffffffffd));
	assert_memory_equal(a, b, N);
}

static void test_unmask_in_pieces(void **state)
{
	const uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
	enum { N = 1000 };
	unsigned char whole[N], pieces[N];

	for (size_t i = 0; i < N; i++)
		whole[i] = pieces[i] = (unsigned char)(i ^ (i >> 3));
	http_ws_unmask((char *)whole, N, mask, 0);
	/* Pieces of odd sizes, each at the offset where it starts. */
	size_t at = 0, step = 1;
	while (at < N) {
		size_t k = BASE_MIN(step, (size_t)N - at);

		http_ws_unmask((char *)pieces + at, k, mask, at);
		at += k;
		step = step * 3 % 97 + 1;
	}
	assert_memory_equal(whole, pieces, N);
	/* Masking twice gives the original back. */
	http_ws_unmask((char *)whole, N, mask, 0);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(whole[i], (unsigned char)(i ^ (i >> 3)));
}

static http_ws_frame data_frame(unsigned opcode, unsigned fin, uint64_t len)
{
	http_ws_frame f;

	memset(&f, 0, sizeof(f));
	f.opcode = opcode;
	f.fin = fin;
	f.payload_len = len;
	return f;
}

static void test_seq(void **state)
{
	http_ws_seq s = {0};
	http_ws_frame f;

	/* A single-frame message. */
	f = data_frame(HTTP_WS_OP_TEXT, 1, 5);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), 0);
	assert_int_equal(s.in_message, 0);
	assert_int_equal(s.opcode, HTTP_WS_OP_TEXT);
	assert_int_equal(s.size, 5);
	/* A fragmented binary message of three parts. */
	f = data_frame(HTTP_WS_OP_BINARY, 0, 40);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), 0);
	assert_int_equal(s.in_message, 1);
	assert_int_equal(s.opcode, HTTP_WS_OP_BINARY);
	f = data_frame(HTTP_WS_OP_CONT, 0, 0);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), 0);
	/* Control frames between fragments do not disturb it. */
	f = data_frame(HTTP_WS_OP_PING, 1, 0);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), 0);
	assert_int_equal(s.in_message, 1);
	f = data_frame(HTTP_WS_OP_CONT, 1, 60);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), 0);
	assert_int_equal(s.in_message, 0);
	assert_int_equal(s.size, 100);
	assert_int_equal(s.opcode, HTTP_WS_OP_BINARY);
}

static void test_seq_errors(void **state)
{
	http_ws_seq s = {0};
	http_ws_frame f;

	/* A continuation with nothing to continue. */
	f = data_frame(HTTP_WS_OP_CONT, 1, 1);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), HTTP_WS_CLOSE_PROTOCOL);
	f = data_frame(HTTP_WS_OP_CONT, 0, 1);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), HTTP_WS_CLOSE_PROTOCOL);
	/* A new data frame inside a fragmented message. */
	f = data_frame(HTTP_WS_OP_TEXT, 0, 1);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), 0);
	f = data_frame(HTTP_WS_OP_TEXT, 1, 1);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), HTTP_WS_CLOSE_PROTOCOL);
	f = data_frame(HTTP_WS_OP_BINARY, 0, 1);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), HTTP_WS_CLOSE_PROTOCOL);

	/* The size limit, over one frame and over the sum of fragments. */
	memset(&s, 0, sizeof(s));
	f = data_frame(HTTP_WS_OP_BINARY, 1, 101);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), HTTP_WS_CLOSE_TOO_BIG);
	memset(&s, 0, sizeof(s));
	f = data_frame(HTTP_WS_OP_BINARY, 0, 60);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), 0);
	f = data_frame(HTTP_WS_OP_CONT, 0, 40);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), 0);
	f = data_frame(HTTP_WS_OP_CONT, 1, 1);
	assert_int_equal(http_ws_seq_next(&s, &f, 100), HTTP_WS_CLOSE_TOO_BIG);
	/* Sizes near 2^64 do not wrap around the limit. */
	memset(&s, 0, sizeof(s));
	f = data_frame(HTTP_WS_OP_BINARY, 0, UINT64_MAX - 10);
	assert_int_equal(http_ws_seq_next(&s, &f, UINT64_MAX - 5), 0);
	f = data_frame(HTTP_WS_OP_CONT, 1, 20);
	assert_int_equal(http_ws_seq_next(&s, &f, UINT64_MAX - 5), HTTP_WS_CLOSE_TOO_BIG);
	f = data_frame(HTTP_WS_OP_CONT, 1, UINT64_MAX);
	assert_int_equal(http_ws_seq_next(&s, &f, UINT64_MAX), HTTP_WS_CLOSE_TOO_BIG);
}

static int close_code(const char *p, size_t len, uint16_t *code)
{
	*code = 0xbeef;
	return http_ws_close_payload_parse(p, len, code);
}

static void test_close_payload(void **state)
{
	uint16_t code;
	char p[2];

	assert_int_equal(close_code("", 0, &code), 0);
	assert_int_equal(code, HTTP_WS_CLOSE_NO_STATUS);
	assert_int_equal(close_code("\x03", 1, &code), -1);
	assert_int_equal(close_code("\x03\xe8", 2, &code), 0);
	assert_int_equal(code, 1000);
	assert_int_equal(close_code("\x03\xe8"
	                            "bye",
	                            5, &code),
	                 0);
	assert_int_equal(close_code("\x0f\xa0"
	                            "\xce\xba\xe1\xbd\xb9",
	                            7, &code),
	                 0);
	assert_int_equal(code, 4000);
	/* A reason that is not UTF-8, or ends mid-character. */
	assert_int_equal(close_code("\x03\xe8\xff", 3, &code), -1);
	assert_int_equal(close_code("\x03\xe8\xce", 3, &code), -1);
	assert_int_equal(close_code("\x03\xe8\xed\xa0\x80", 5, &code), -1);
	/* Every code from 0 to 65535 against the allowed ranges. */
	for (unsigned c = 0; c < 65536; c++) {
		int ok = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) ||
		         (c >= 3000 && c <= 4999);

		p[0] = (char)(c >> 8);
		p[1] = (char)c;
		assert_int_equal(close_code(p, 2, &code), ok ? 0 : -1);
		if (ok)
			assert_int_equal(code, c);
	}
}

/* ---- permessage-deflate (RFC 7692) --------------------------------------- */

static void test_rsv1(void **state)
{
	/* RFC 7692 7.2.3.1: "Hello" compressed, one unmasked frame. */
	static const unsigned char hello[] = {0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
	static const unsigned char cont_rsv1[] = {0xc0, 0x00};
	static const unsigned char ping_rsv1[] = {0xc9, 0x00};
	static const unsigned char rsv2[] = {0xa1, 0x00};
	http_ws_frame f;
	const char *err;
	char h[HTTP_WS_MAX_HEADER];

	(void)state;
	/* Not negotiated: a protocol error, as before. */
	assert_int_equal(parse(hello, sizeof(hello), 0, NO_LIMIT, &f, &err), -1);
	assert_int_equal(f.close_code, HTTP_WS_CLOSE_PROTOCOL);
	/* Negotiated: accepted on a first data frame, with rsv1 set. */
	assert_int_equal(
	    http_ws_frame_parse_ext((const char *)hello, sizeof(hello), 0, 1, NO_LIMIT, &f, &err),
	    2);
	assert_int_equal(f.rsv1, 1);
	assert_int_equal(f.opcode, HTTP_WS_OP_TEXT);
	assert_int_equal(f.payload_len, 7);
	/* Never on a continuation or a control frame; RSV2/RSV3 never. */
	assert_int_equal(
	    http_ws_frame_parse_ext((const char *)cont_rsv1, 2, 0, 1, NO_LIMIT, &f, &err), -1);
	assert_int_equal(f.close_code, HTTP_WS_CLOSE_PROTOCOL);
	assert_int_equal(
	    http_ws_frame_parse_ext((const char *)ping_rsv1, 2, 0, 1, NO_LIMIT, &f, &err), -1);
	assert_int_equal(http_ws_frame_parse_ext((const char *)rsv2, 2, 0, 1, NO_LIMIT, &f, &err),
	                 -1);
	/* Without RSV1 a frame parses the same either way, rsv1 0. */
	assert_int_equal(http_ws_frame_parse_ext("\x81\x00", 2, 0, 1, NO_LIMIT, &f, &err), 2);
	assert_int_equal(f.rsv1, 0);
	/* The encoder writes the bit. */
	assert_int_equal(http_ws_frame_header_rsv1(h, 1, HTTP_WS_OP_TEXT, 7), 2);
	assert_memory_equal(h, hello, 2);
}

static void test_pmd_negotiate(void **state)
{
	static const char want[] = "Sec-WebSocket-Extensions: permessage-deflate; "
	                           "server_no_context_takeover; client_no_context_takeover\r\n";
	char out[160];
	base_slice v;

	(void)state;
	assert_int_equal(http_pmd_negotiate(NULL, out, sizeof(out)), 0);
	/* What Chromium and ws send. */
	v = BASE_SLICE_LIT("permessage-deflate; client_max_window_bits");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 1);
	assert_string_equal(out, want);
	v = BASE_SLICE_LIT("Permessage-Deflate ; Client_Max_Window_Bits=\"10\" ; "
	                   "server_no_context_takeover");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 1);
	/* Declined: a window we cannot keep to, unknown, repeated or bad parameters. */
	v = BASE_SLICE_LIT("permessage-deflate; server_max_window_bits=14");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 0);
	v = BASE_SLICE_LIT("permessage-deflate; server_max_window_bits");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 0);
	v = BASE_SLICE_LIT("permessage-deflate; client_max_window_bits=7");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 0);
	v = BASE_SLICE_LIT("permessage-deflate; client_max_window_bits=08x");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 0);
	v = BASE_SLICE_LIT("permessage-deflate; server_no_context_takeover; "
	                   "server_no_context_takeover");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 0);
	v = BASE_SLICE_LIT("permessage-deflate=1");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 0);
	v = BASE_SLICE_LIT("deflate-frame, permessage-deflate; mystery");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 0);
	/* The first acceptable offer wins; server_max_window_bits=15 is echoed. */
	v = BASE_SLICE_LIT("permessage-deflate; server_max_window_bits=9, "
	                   "permessage-deflate; server_max_window_bits=15");
	assert_int_equal(http_pmd_negotiate(&v, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "; server_max_window_bits=15\r\n"));
}

static void test_pmd_inflate_deflate(void **state)
{
	static const char hello[] = {(char)0xf2, 0x48, (char)0xcd, (char)0xc9,
	                             (char)0xc9, 0x07, 0x00};
	http_pmd *z = NULL;
	base_buf out = BASE_BUF_INIT, c = BASE_BUF_INIT, back = BASE_BUF_INIT;
	char *big = malloc(100000);
	base_slice parts[2];

	(void)state;
	assert_int_equal(http_pmd_inflate(&z, hello, sizeof(hello), 100, &out), 0);
	assert_int_equal(out.len, 5);
	assert_memory_equal(out.data, "Hello", 5);
	/* Exactly at the limit is fine; one byte over is 1009. */
	assert_int_equal(http_pmd_inflate(&z, hello, sizeof(hello), 5, &out), 0);
	assert_int_equal(http_pmd_inflate(&z, hello, sizeof(hello), 4, &out),
	                 HTTP_WS_CLOSE_TOO_BIG);
	/* Not deflate data: 1007. The stream is reset per message: "Hello" again after. */
	assert_int_equal(http_pmd_inflate(&z, "\xff\xff\xff\xff", 4, 100, &out),
	                 HTTP_WS_CLOSE_BAD_DATA);
	assert_int_equal(http_pmd_inflate(&z, hello, sizeof(hello), 100, &out), 0);
	assert_memory_equal(out.data, "Hello", 5);
	/* A bomb: 100 KB of zeros, compressed to little, against a 10 KB limit. */
	memset(big, 0, 100000);
	parts[0] = (base_slice){big, 60000};
	parts[1] = (base_slice){big + 60000, 40000};
	assert_int_equal(http_pmd_deflate(&z, parts, 2, &c), 0);
	assert_true(c.len < 1000);
	assert_int_equal(http_pmd_inflate(&z, c.data, c.len, 10000, &out), HTTP_WS_CLOSE_TOO_BIG);
	assert_int_equal(http_pmd_inflate(&z, c.data, c.len, 100000, &back), 0);
	assert_int_equal(back.len, 100000);
	assert_memory_equal(back.data, big, 100000);
	/* The tail is left off (RFC 7692 7.2.1). */
	assert_true(c.len < 4 || memcmp(c.data + c.len - 4, "\0\0\xff\xff", 4) != 0);
	/* The empty message. */
	assert_int_equal(http_pmd_deflate(&z, NULL, 0, &c), 0);
	assert_int_equal(http_pmd_inflate(&z, c.data, c.len, 10, &out), 0);
	assert_int_equal(out.len, 0);
	http_pmd_free(z);
	base_buf_free(&out);
	base_buf_free(&c);
	base_buf_free(&back);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_small_masked_text),
	    cmocka_unit_test(test_unmasked_from_server),
	    cmocka_unit_test(test_length_encodings),
	    cmocka_unit_test(test_header_bytes),
	    cmocka_unit_test(test_invalid_frames),
	    cmocka_unit_test(test_size_limit),
	    cmocka_unit_test(test_max_valid_control_and_trailing_bytes),
	    cmocka_unit_test(test_unmask_every_offset),
	    cmocka_unit_test(test_unmask_in_pieces),
	    cmocka_unit_test(test_seq),
	    cmocka_unit_test(test_seq_errors),
	    cmocka_unit_test(test_close_payload),
	    cmocka_unit_test(test_rsv1),
	    cmocka_unit_test(test_pmd_negotiate),
	    cmocka_unit_test(test_pmd_inflate_deflate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
