/* Tests engineio/packet.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "packet.h"

static void test_packet_decode(void **state)
{
	eio_packet p;

	for (int t = 0; t <= 6; t++) {
		char s[3] = {(char)('0' + t), 'x', 'y'};

		assert_int_equal(eio_packet_decode(s, 3, &p), 0);
		assert_int_equal(p.type, t);
		assert_int_equal(p.binary, 0);
		assert_ptr_equal(p.data.base, s + 1);
		assert_int_equal(p.data.len, 2);
	}
	assert_int_equal(eio_packet_decode("4", 1, &p), 0);
	assert_int_equal(p.type, EIO_MESSAGE);
	assert_int_equal(p.data.len, 0);
	assert_int_equal(eio_packet_decode("2probe", 6, &p), 0);
	assert_int_equal(p.type, EIO_PING);
	assert_true(base_slice_eq(p.data, "probe"));
	/* Data may hold anything, separators included: a frame is one packet. */
	assert_int_equal(eio_packet_decode("4a\x1e"
	                                   "b",
	                                   4, &p),
	                 0);
	assert_int_equal(p.data.len, 3);
}

static void test_packet_decode_invalid(void **state)
{
	eio_packet p;

	assert_int_equal(eio_packet_decode("", 0, &p), -1);
	assert_int_equal(eio_packet_decode(NULL, 0, &p), -1);
	assert_int_equal(eio_packet_decode("7", 1, &p), -1);
	assert_int_equal(eio_packet_decode("9x", 2, &p), -1);
	assert_int_equal(eio_packet_decode("/", 1, &p), -1);
	assert_int_equal(eio_packet_decode("b", 1, &p), -1); /* 'b' only exists in polling */
	assert_int_equal(eio_packet_decode("bAQI=", 5, &p), -1);
	assert_int_equal(eio_packet_decode(" 4", 2, &p), -1);
	assert_int_equal(eio_packet_decode("\x1e"
	                                   "4",
	                                   2, &p),
	                 -1);
	for (int c = 0; c < 256; c++) {
		char s[1] = {(char)c};

		assert_int_equal(eio_packet_decode(s, 1, &p), (c >= '0' && c <= '6') ? 0 : -1);
	}
}

/* Decodes a whole payload (a writable copy) into at most 16 packets; returns the count or -1. */
typedef struct {
	eio_packet pk[16];
	char *buf;
} decoded;

static int decode_all(const char *payload, size_t len, decoded *d)
{
	size_t at = 0;
	int n = 0;

	d->buf = malloc(len ? len : 1);
	memcpy(d->buf, payload, len);
	while (at < len) {
		ssize_t r = eio_payload_next(d->buf + at, len - at, &d->pk[n]);

		if (r < 0)
			return -1;
		assert_true(r > 0);
		assert_true((size_t)r <= len - at);
		at += (size_t)r;
		n++;
		assert_true(n < 16);
	}
	return n;
}

#define DECODE(lit, d) decode_all((lit), sizeof(lit) - 1, (d))

static void test_payload_single_and_many(void **state)
{
	decoded d;

	assert_int_equal(DECODE("4hello", &d), 1);
	assert_int_equal(d.pk[0].type, EIO_MESSAGE);
	assert_int_equal(d.pk[0].binary, 0);
	assert_true(base_slice_eq(d.pk[0].data, "hello"));
	free(d.buf);

	assert_int_equal(DECODE("4hello\x1e"
	                        "2\x1e"
	                        "4\x1e"
	                        "6\x1e"
	                        "1",
	                        &d),
	                 5);
	assert_true(base_slice_eq(d.pk[0].data, "hello"));
	assert_int_equal(d.pk[1].type, EIO_PING);
	assert_int_equal(d.pk[1].data.len, 0);
	assert_int_equal(d.pk[2].type, EIO_MESSAGE);
	assert_int_equal(d.pk[2].data.len, 0);
	assert_int_equal(d.pk[3].type, EIO_NOOP);
	assert_int_equal(d.pk[4].type, EIO_CLOSE);
	free(d.buf);

	/* The example of the protocol: "4hello\x1ebAQIDBA==" */
	assert_int_equal(DECODE("4hello\x1e"
	                        "bAQIDBA==",
	                        &d),
	                 2);
	assert_int_equal(d.pk[1].type, EIO_MESSAGE);
	assert_int_equal(d.pk[1].binary, 1);
	assert_int_equal(d.pk[1].data.len, 4);
	assert_memory_equal(d.pk[1].data.base, "\x01\x02\x03\x04", 4);
	assert_ptr_equal(d.pk[1].data.base, d.buf + 8); /* decoded in place, after the 'b' */
	free(d.buf);

	/* An empty binary message, and unpadded base64. */
	assert_int_equal(DECODE("b\x1e"
	                        "bAQI",
	                        &d),
	                 2);
	assert_int_equal(d.pk[0].binary, 1);
	assert_int_equal(d.pk[0].data.len, 0);
	assert_int_equal(d.pk[1].data.len, 2);
	assert_memory_equal(d.pk[1].data.base, "\x01\x02", 2);
	free(d.buf);
}

static void test_payload_consumed(void **state)
{
	char s[] = "4ab\x1e"
	           "3";
	eio_packet p;

	assert_int_equal(eio_payload_next(s, 0, &p), 0);
	assert_int_equal(eio_payload_next(s, 5, &p), 4); /* including the separator */
	assert_int_equal(eio_payload_next(s + 4, 1, &p), 1);
	assert_int_equal(p.type, EIO_PONG);
	/* Only len bytes are looked at. */
	assert_int_equal(eio_payload_next(s, 3, &p), 3);
	assert_int_equal(p.data.len, 2);
}

static void test_payload_invalid(void **state)
{
	decoded d;

	/* Empty packets: leading, doubled and trailing separators. */
	assert_int_equal(DECODE("\x1e", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE("\x1e"
	                        "4a",
	                        &d),
	                 -1);
	free(d.buf);
	assert_int_equal(DECODE("4a\x1e\x1e"
	                        "4b",
	                        &d),
	                 -1);
	free(d.buf);
	assert_int_equal(DECODE("4a\x1e", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE("4a\x1e"
	                        "4b\x1e",
	                        &d),
	                 -1);
	free(d.buf);
	/* Bad type characters. */
	assert_int_equal(DECODE("7", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE("4a\x1e"
	                        "x",
	                        &d),
	                 -1);
	free(d.buf);
	assert_int_equal(DECODE("B", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE(" 4a", &d), -1);
	free(d.buf);
	/* Bad base64. */
	assert_int_equal(DECODE("bA", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE("bAQ!D", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE("bAQIDBA=", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE("bAQIDBA===", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE("b====", &d), -1);
	free(d.buf);
	assert_int_equal(DECODE("4ok\x1e"
	                        "bAQ-D",
	                        &d),
	                 -1);
	free(d.buf);
	assert_int_equal(DECODE("bAQ\x1e", &d), -1);
	free(d.buf);
}

static void test_payload_append(void **state)
{
	base_buf b = BASE_BUF_INIT;
	const char bin[] = {1, 2, 3, 4};

	eio_payload_append(&b, EIO_MESSAGE, 0, "hello", 5);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.data, "4hello", 6);
	eio_payload_append(&b, EIO_MESSAGE, 1, bin, 4);
	eio_payload_append(&b, EIO_PING, 0, NULL, 0);
	eio_payload_append(&b, EIO_OPEN, 0, "{\"sid\":\"x\"}", 11);
	eio_payload_append(&b, EIO_MESSAGE, 1, NULL, 0);
	const char expect[] = "4hello\x1e"
	                      "bAQIDBA==\x1e"
	                      "2\x1e"
	                      "0{\"sid\":\"x\"}\x1e"
	                      "b";
	assert_int_equal(b.len, sizeof(expect) - 1);
	assert_memory_equal(b.data, expect, b.len);
	base_buf_free(&b);

	/* Appending to an empty buffer adds no separator. */
	eio_payload_append(&b, EIO_NOOP, 0, NULL, 0);
	assert_int_equal(b.len, 1);
	assert_int_equal(b.data[0], '6');
	base_buf_free(&b);
}

static void test_payload_roundtrip(void **state)
{
	base_buf b = BASE_BUF_INIT;
	unsigned char bin[300];
	decoded d;
	int n;

	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(255 - i);
	/* Binary messages of every length class around the base64 quads. */
	for (size_t len = 0; len < 10; len++)
		eio_payload_append(&b, EIO_MESSAGE, 1, (char *)bin, len);
	eio_payload_append(&b, EIO_MESSAGE, 1, (char *)bin, sizeof(bin));
	eio_payload_append(&b, EIO_MESSAGE, 0, "text", 4);
	n = decode_all(b.data, b.len, &d);
	assert_int_equal(n, 12);
	for (size_t len = 0; len < 10; len++) {
		assert_int_equal(d.pk[len].binary, 1);
		assert_int_equal(d.pk[len].data.len, len);
		if (len > 0)
			assert_memory_equal(d.pk[len].data.base, bin, len);
	}
	assert_int_equal(d.pk[10].data.len, sizeof(bin));
	assert_memory_equal(d.pk[10].data.base, bin, sizeof(bin));
	assert_int_equal(d.pk[11].binary, 0);
	assert_true(base_slice_eq(d.pk[11].data, "text"));
	free(d.buf);
	base_buf_free(&b);
}

/* Engine.IO 3 payloads (packet_v3.c): lengths in UTF-16 code units, "b4", the binary format. */
static void test_v3_payload(void **state)
{
	/* "é" is one unit (2 bytes), U+1F600 two units (4 bytes). */
	char text[] = "6:4hello2:4\xc3\xa9"
	              "3:4\xf0\x9f\x98\x80"
	              "0:"
	              "6:b4AQI=";
	size_t len = sizeof(text) - 1, at = 0;
	eio_packet p;
	ssize_t n = eio3_payload_next(text, len, 0, &p);
	assert_int_equal(n, 8);
	assert_int_equal(p.type, EIO_MESSAGE);
	assert_true(base_slice_eq(p.data, "hello"));
	at += (size_t)n;
	n = eio3_payload_next(text + at, len - at, 0, &p);
	assert_int_equal(n, 5);
	assert_true(base_slice_eq(p.data, "\xc3\xa9"));
	at += (size_t)n;
	n = eio3_payload_next(text + at, len - at, 0, &p);
	assert_int_equal(n, 7);
	assert_int_equal(p.data.len, 4);
	at += (size_t)n;
	n = eio3_payload_next(text + at, len - at, 0, &p);
	assert_int_equal(n, 2);
	assert_int_equal((int)p.type, -1);
	at += (size_t)n;
	n = eio3_payload_next(text + at, len - at, 0, &p);
	assert_int_equal((size_t)n, len - at);
	assert_int_equal(p.binary, 1);
	assert_int_equal(p.data.len, 2);
	assert_memory_equal(p.data.base, "\x01\x02", 2);

	/* Invalid: no colon, a length past the end, half a surrogate pair, bad base64. */
	char bad1[] = "5", bad2[] = "9:4abc", bad3[] = "2:4\xf0\x9f\x98\x80", bad4[] = "4:b4@@";
	assert_int_equal(eio3_payload_next(bad1, 1, 0, &p), -1);
	assert_int_equal(eio3_payload_next(bad2, 6, 0, &p), -1);
	assert_int_equal(eio3_payload_next(bad3, 7, 0, &p), -1);
	assert_int_equal(eio3_payload_next(bad4, 6, 0, &p), -1);

	/* The binary format, both ways. */
	base_buf b = BASE_BUF_INIT;
	eio3_payload_append(&b, 1, EIO_MESSAGE, 0, "hi", 2);
	eio3_payload_append(&b, 1, EIO_MESSAGE, 1, "\x00\xff", 2);
	assert_int_equal(b.len, 12);
	assert_memory_equal(b.data,
	                    "\x00\x03\xff"
	                    "4hi\x01\x03\xff\x04\x00\xff",
	                    12);
	n = eio3_payload_next(b.data, b.len, 1, &p);
	assert_int_equal(n, 6);
	assert_true(base_slice_eq(p.data, "hi"));
	n = eio3_payload_next(b.data + 6, b.len - 6, 1, &p);
	assert_int_equal(n, 6);
	assert_int_equal(p.binary, 1);
	assert_memory_equal(p.data.base, "\x00\xff", 2);
	base_buf_free(&b);
	char badbin[] = "\x01\x09\xff\x04";
	assert_int_equal(eio3_payload_next(badbin, 4, 1, &p), -1);

	/* Text format: lengths count units, binary goes as "b4". */
	eio3_payload_append(&b, 0, EIO_MESSAGE, 0, "\xf0\x9f\x98\x80", 4);
	eio3_payload_append(&b, 0, EIO_MESSAGE, 1, "\x01\x02", 2);
	assert_int_equal(b.len, 15);
	assert_memory_equal(b.data,
	                    "3:4\xf0\x9f\x98\x80"
	                    "6:b4AQI=",
	                    15);
	base_buf_free(&b);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_packet_decode),
	    cmocka_unit_test(test_packet_decode_invalid),
	    cmocka_unit_test(test_payload_single_and_many),
	    cmocka_unit_test(test_payload_consumed),
	    cmocka_unit_test(test_payload_invalid),
	    cmocka_unit_test(test_payload_append),
	    cmocka_unit_test(test_payload_roundtrip),
	    cmocka_unit_test(test_v3_payload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
