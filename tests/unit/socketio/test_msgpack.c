/* Tests socketio/msgpack.c. */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <string.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "socketio/packet.h"

/*
 * Interoperability vectors, produced with the npm packages pinned in
 * tests/package.json (socket.io 4.8.4, socket.io-client 4.8.4,
 * socket.io-msgpack-parser 3.0.2, notepack.io 2.2.0) by running, from
 * tests/:
 *
 *   Captured from a live session: a socket.io Server and socket.io-client
 *   both with { parser: require("socket.io-msgpack-parser") }, websocket
 *   transport, printing Buffer.toString("hex") of every "message" packet
 *   seen by the server's engine.io socket ("packet" = client to server,
 *   "packetCreate" = server to client). The client connected to "/" and
 *   "/admin", emitted ("bin", Buffer [1,2], {x: "é"}) and ("message", "hi",
 *   ack); the server answered the first with socket.emit("reply", 1.5, -3,
 *   {a: null, b: [true, false]}, Buffer [0xde, 0xad]) and acked the second
 *   with ("ok", Buffer [1,2,3]).
 *
 *   Encoded directly: new (require("socket.io-msgpack-parser").Encoder)()
 *   .encode(packet)[0].toString("hex") for the packet objects in the
 *   comments below.
 */
#define V_CLIENT_CONNECT "83a47479706500a464617461d40000a36e7370a12f"
#define V_SERVER_CONNECT                                                                      \
	"83a47479706500a46461746182a3736964b435414d365154302d633231424275725341414141a370696" \
	"4d40000a36e7370a12f"
#define V_CLIENT_BIN_EVENT                                                                    \
	"84a47479706502a46461746193a362696ec402010281a178a2c3a9a76f7074696f6e7381a8636f6d707" \
	"2657373c3a36e7370a12f"
#define V_SERVER_REPLY                                                                        \
	"83a47479706502a46461746195a57265706c79cb3ff8000000000000fd82a161c0a16292c3c2c402dea" \
	"da36e7370a12f"
#define V_CLIENT_EVENT_ACK                                                                    \
	"85a47479706502a46461746192a76d657373616765a26869a76f7074696f6e7381a8636f6d707265737" \
	"3c3a2696400a36e7370a62f61646d696e"
#define V_SERVER_ACK "84a2696400a47479706503a46461746192a26f6bc403010203a36e7370a62f61646d696e"
/* {type: 1, nsp: "/admin"} */
#define V_DISCONNECT "82a47479706501a36e7370a62f61646d696e"
/* {type: 4, nsp: "/x", data: {message: "Not authorized"}} */
#define V_CONNECT_ERROR                                                                       \
	"83a47479706504a36e7370a22f78a46461746181a76d657373616765ae4e6f7420617574686f72697a6" \
	"564"
/* {type: 2, data: ["d", new Date(0), new Date(-1), new Date(253402300800000),
 *  new Date(1700000000123)], nsp: "/"} */
#define V_DATES                                                                               \
	"83a47479706502a46461746195a164d7000000000000000000d700ffffffffffffffffd7000000e677d" \
	"21fdc00d7000000018bcfe5687ba36e7370a12f"
/* {type: 2, data: ["ab", new Uint8Array([1, 2, 3]).buffer], nsp: "/"} */
#define V_ARRAYBUFFER "83a47479706502a46461746192a26162c70300010203a36e7370a12f"
/* {type: 2, data: ["n", 128, 255, 256, 65536, 2 ** 32, -33, -129, -32769,
 *  -(2 ** 31) - 1, 1.5, 1e300, -0, 0.1], nsp: "/"}: notepack writes 1e300 as
 *  uint64 0 (cf 00..00), a bug of its own. */
#define V_NUMBERS                                                                             \
	"83a47479706502a4646174619ea16ecc80ccffcd0100ce00010000cf0000000100000000d0dfd1ff7fd" \
	"2ffff7fffd3ffffffff7fffffffcb3ff8000000000000cf000000000000000000cb3fb999999999999a" \
	"a36e7370a12f"
/* {type: 2, data: ["n", 128, 255, 256, 65536, 2 ** 32, -33, -129, -32769,
 *  -(2 ** 31) - 1, 1.5, -0, 0.1, -1.25e-300], nsp: "/"} */
#define V_NUMBERS2                                                                            \
	"83a47479706502a4646174619ea16ecc80ccffcd0100ce00010000cf0000000100000000d0dfd1ff7fd" \
	"2ffff7fffd3ffffffff7fffffffcb3ff800000000000000cb3fb999999999999acb81aac9a7b3b7302f" \
	"a36e7370a12f"
/* {type: 3, id: 7, data: [[0..15], {k0: 0, ..., k15: 15}], nsp: "/"} */
#define V_CONTAINERS                                                                          \
	"84a47479706503a2696407a46461746192dc0010000102030405060708090a0b0c0d0e0fde0010a26b3" \
	"000a26b3101a26b3202a26b3303a26b3404a26b3505a26b3606a26b3707a26b3808a26b3909a36b3130" \
	"0aa36b31310ba36b31320ca36b31330da36b31340ea36b31350fa36e7370a12f"
/* {type: 2, data: ["u", undefined, {a: undefined, b: 1}], nsp: "/"} */
#define V_UNDEFINED "83a47479706502a46461746193a175d4000082a161d40000a16201a36e7370a12f"
/* {type: 2, data: ["b", Buffer [1], {x: [Buffer [], Buffer "hi"]}], id: 3, nsp: "/"} */
#define V_BINS "84a47479706502a46461746193a162c4010181a17892c400c4026869a2696403a36e7370a12f"
/* {type: 2, data: ["s", "x" x 32, "y" x 300, "a\"b\\c\n\u0001é€😀"], nsp: "/"}
 * is built in test_encode_strings: 300 bytes are too many to spell here. */

typedef struct {
	char *bytes;
	size_t len;
} blob;

static blob unhex(const char *h)
{
	size_t n = strlen(h) / 2;
	blob b = {malloc(n ? n : 1), n};

	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		b.bytes[i] = (char)v;
	}
	return b;
}

typedef struct {
	blob in;
	base_buf json;
	sio_packet p;
	base_slice att[SIO_MAX_ATTACHMENTS];
	const char *err;
	int rc;
} decoded;

static void decode_hex(decoded *d, const char *hex, size_t max_att)
{
	memset(d, 0, sizeof(*d));
	d->in = unhex(hex);
	d->rc =
	    sio_msgpack_decode(d->in.bytes, d->in.len, &d->json, &d->p, d->att, max_att, &d->err);
}

static void decoded_free(decoded *d)
{
	free(d->in.bytes);
	base_buf_free(&d->json);
}

static void expect(decoded *d, sio_packet_type type, const char *nsp, int64_t id, const char *data,
                   const char *event, const char *args)
{
	if (d->rc != 0)
		fail_msg("rejected: %s", d->err);
	assert_int_equal(d->p.type, type);
	assert_true(base_slice_eq(d->p.nsp, nsp));
	assert_int_equal(d->p.id, id);
	if (!base_slice_eq(d->p.data, data))
		fail_msg("data '%.*s', want '%s'", (int)d->p.data.len, d->p.data.base, data);
	assert_true(base_slice_eq(d->p.event, event));
	assert_true(base_slice_eq(d->p.args, args));
}

/* The attachment's bytes, and that they are a slice of the input. */
static void expect_att(decoded *d, unsigned i, const char *bytes, size_t len)
{
	assert_true(i < d->p.attachments);
	assert_int_equal(d->att[i].len, len);
	if (len)
		assert_memory_equal(d->att[i].base, bytes, len);
	assert_true(d->att[i].base >= d->in.bytes &&
	            d->att[i].base + len <= d->in.bytes + d->in.len);
}

static void test_decode_captured(void **state)
{
	decoded d;

	decode_hex(&d, V_CLIENT_CONNECT, 8); /* data: undefined is no data */
	expect(&d, SIO_CONNECT, "/", -1, "", "", "");
	decoded_free(&d);

	decode_hex(&d, V_SERVER_CONNECT, 8); /* pid: undefined is left out */
	expect(&d, SIO_CONNECT, "/", -1, "{\"sid\":\"5AM6QT0-c21BBurSAAAA\"}", "", "");
	decoded_free(&d);

	decode_hex(&d, V_CLIENT_BIN_EVENT, 8); /* "options" is ignored */
	expect(&d, SIO_BINARY_EVENT, "/", -1,
	       "[\"bin\",{\"_placeholder\":true,\"num\":0},{\"x\":\"\xc3\xa9\"}]", "bin",
	       "{\"_placeholder\":true,\"num\":0},{\"x\":\"\xc3\xa9\"}");
	assert_int_equal(d.p.attachments, 1);
	expect_att(&d, 0, "\x01\x02", 2);
	decoded_free(&d);

	decode_hex(&d, V_SERVER_REPLY, 8);
	expect(
	    &d, SIO_BINARY_EVENT, "/", -1,
	    "[\"reply\",1.5,-3,{\"a\":null,\"b\":[true,false]},{\"_placeholder\":true,\"num\":0}]",
	    "reply", "1.5,-3,{\"a\":null,\"b\":[true,false]},{\"_placeholder\":true,\"num\":0}");
	expect_att(&d, 0, "\xde\xad", 2);
	decoded_free(&d);

	decode_hex(&d, V_CLIENT_EVENT_ACK, 8);
	expect(&d, SIO_EVENT, "/admin", 0, "[\"message\",\"hi\"]", "message", "\"hi\"");
	assert_int_equal(d.p.attachments, 0);
	decoded_free(&d);

	decode_hex(&d, V_SERVER_ACK, 8);
	expect(&d, SIO_BINARY_ACK, "/admin", 0, "[\"ok\",{\"_placeholder\":true,\"num\":0}]", "",
	       "\"ok\",{\"_placeholder\":true,\"num\":0}");
	expect_att(&d, 0, "\x01\x02\x03", 3);
	decoded_free(&d);
}

static void test_decode_encoded(void **state)
{
	decoded d;

	decode_hex(&d, V_DISCONNECT, 8);
	expect(&d, SIO_DISCONNECT, "/admin", -1, "", "", "");
	decoded_free(&d);

	decode_hex(&d, V_CONNECT_ERROR, 8);
	expect(&d, SIO_CONNECT_ERROR, "/x", -1, "{\"message\":\"Not authorized\"}", "", "");
	decoded_free(&d);

	/* Dates come out as Date.prototype.toJSON writes them. */
	decode_hex(&d, V_DATES, 8);
	expect(&d, SIO_EVENT, "/", -1,
	       "[\"d\",\"1970-01-01T00:00:00.000Z\",\"1969-12-31T23:59:59.999Z\","
	       "\"+010000-01-01T00:00:00.000Z\",\"2023-11-14T22:13:20.123Z\"]",
	       "d",
	       "\"1970-01-01T00:00:00.000Z\",\"1969-12-31T23:59:59.999Z\","
	       "\"+010000-01-01T00:00:00.000Z\",\"2023-11-14T22:13:20.123Z\"");
	decoded_free(&d);

	/* An ArrayBuffer (ext 8, type 0) is binary, like a Buffer (bin). */
	decode_hex(&d, V_ARRAYBUFFER, 8);
	expect(&d, SIO_BINARY_EVENT, "/", -1, "[\"ab\",{\"_placeholder\":true,\"num\":0}]", "ab",
	       "{\"_placeholder\":true,\"num\":0}");
	expect_att(&d, 0, "\x01\x02\x03", 3);
	decoded_free(&d);

	decode_hex(&d, V_NUMBERS, 8);
	expect(&d, SIO_EVENT, "/", -1,
	       "[\"n\",128,255,256,65536,4294967296,-33,-129,-32769,-2147483649,1.5,0,0,0.1]", "n",
	       "128,255,256,65536,4294967296,-33,-129,-32769,-2147483649,1.5,0,0,0.1");
	decoded_free(&d);

	decode_hex(&d, V_CONTAINERS, 8);
	expect(&d, SIO_ACK, "/", 7,
	       "[[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15],{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,"
	       "\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,"
	       "\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15}]",
	       "",
	       "[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15],{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,"
	       "\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,\"k9\":9,\"k10\":10,\"k11\":11,"
	       "\"k12\":12,\"k13\":13,\"k14\":14,\"k15\":15}");
	decoded_free(&d);

	/* undefined: null in an array, left out of an object (JSON.stringify). */
	decode_hex(&d, V_UNDEFINED, 8);
	expect(&d, SIO_EVENT, "/", -1, "[\"u\",null,{\"b\":1}]", "u", "null,{\"b\":1}");
	decoded_free(&d);

	/* Placeholders are numbered depth first, in order of appearance. */
	decode_hex(&d, V_BINS, 8);
	expect(&d, SIO_BINARY_EVENT, "/", 3,
	       "[\"b\",{\"_placeholder\":true,\"num\":0},{\"x\":[{\"_placeholder\":true,\"num\":1},"
	       "{\"_placeholder\":true,\"num\":2}]}]",
	       "b",
	       "{\"_placeholder\":true,\"num\":0},{\"x\":[{\"_placeholder\":true,\"num\":1},"
	       "{\"_placeholder\":true,\"num\":2}]}");
	assert_int_equal(d.p.attachments, 3);
	expect_att(&d, 0, "\x01", 1);
	expect_att(&d, 1, "", 0);
	expect_att(&d, 2, "hi", 2);
	decoded_free(&d);

	/* More binaries than the caller has room for. */
	decode_hex(&d, V_BINS, 2);
	assert_int_equal(d.rc, -1);
	assert_int_equal(d.json.len, 0); /* nothing left behind */
	decoded_free(&d);
}

static void expect_encoded(base_buf *out, const char *hex)
{
	blob want = unhex(hex);

	if (out->len != want.len || memcmp(out->data, want.bytes, want.len) != 0) {
		char got[4096] = "";

		for (size_t i = 0; i < out->len && i < 2000; i++)
			sprintf(got + 2 * i, "%02x", (unsigned char)out->data[i]);
		fail_msg("encoded %s\n want %s", got, hex);
	}
	free(want.bytes);
	out->len = 0;
}

/* Our encoder writes what the Node server and notepack write, byte for byte. */
static void test_encode_matches_node(void **state)
{
	base_buf out = BASE_BUF_INIT;
	base_slice none = {NULL, 0};
	base_slice att[3] = {{"\xde\xad", 2}, {"", 0}, {"hi", 2}};

	assert_int_equal(
	    sio_msgpack_encode(&out, SIO_BINARY_EVENT, BASE_SLICE_LIT("/"), -1,
	                       BASE_SLICE_LIT("[\"reply\",1.5,-3,{\"a\":null,\"b\":[true,false]},"
	                                      "{\"_placeholder\":true,\"num\":0}]"),
	                       att, 1),
	    0);
	expect_encoded(&out, V_SERVER_REPLY);

	att[0] = (base_slice){"\x01\x02\x03", 3};
	assert_int_equal(sio_msgpack_encode(
	                     &out, SIO_BINARY_ACK, BASE_SLICE_LIT("/admin"), 0,
	                     BASE_SLICE_LIT("[\"ok\",{\"_placeholder\":true,\"num\":0}]"), att, 1),
	                 0);
	expect_encoded(&out, V_SERVER_ACK);

	assert_int_equal(
	    sio_msgpack_encode(&out, SIO_DISCONNECT, BASE_SLICE_LIT("/admin"), -1, none, NULL, 0),
	    0);
	expect_encoded(&out, V_DISCONNECT);

	assert_int_equal(sio_msgpack_encode(&out, SIO_CONNECT_ERROR, BASE_SLICE_LIT("/x"), -1,
	                                    BASE_SLICE_LIT("{\"message\":\"Not authorized\"}"),
	                                    NULL, 0),
	                 0);
	expect_encoded(&out, V_CONNECT_ERROR);

	att[0] = (base_slice){"\x01", 1};
	assert_int_equal(
	    sio_msgpack_encode(&out, SIO_BINARY_EVENT, BASE_SLICE_LIT("/"), 3,
	                       BASE_SLICE_LIT("[\"b\",{\"_placeholder\":true,\"num\":0},{\"x\":["
	                                      "{\"_placeholder\":true,\"num\":1},"
	                                      "{\"_placeholder\":true,\"num\":2}]}]"),
	                       att, 3),
	    0);
	expect_encoded(&out, V_BINS);

	/* Integers in their smallest form, as notepack; -0 is 0 (1e300 differs: see V_NUMBERS). */
	assert_int_equal(
	    sio_msgpack_encode(&out, SIO_EVENT, BASE_SLICE_LIT("/"), -1,
	                       BASE_SLICE_LIT("[\"n\",128,255,256,65536,4294967296,-33,"
	                                      "-129,-32769,-2147483649,1.5,-0,0.1,"
	                                      "-1.25e-300]"),
	                       NULL, 0),
	    0);
	expect_encoded(&out, V_NUMBERS2);
	/* 1.0 and 1e2 are JavaScript integers: notepack writes them as such too. */
	assert_int_equal(sio_msgpack_encode(&out, SIO_EVENT, BASE_SLICE_LIT("/"), -1,
	                                    BASE_SLICE_LIT("[\"n\",1.0,1e2,-2.0e0,1e300,1e999]"),
	                                    NULL, 0),
	                 0);
	expect_encoded(&out,
	               "83a47479706502a46461746196a16e0164fecb7e37e43c8800759ccb7ff0000000000000"
	               "a36e7370a12f");
	/* Exact 64-bit integers, beyond what a double holds. */
	assert_int_equal(
	    sio_msgpack_encode(&out, SIO_EVENT, BASE_SLICE_LIT("/"), -1,
	                       BASE_SLICE_LIT("[\"n\",18446744073709551615,"
	                                      "-9223372036854775808,18446744073709551616]"),
	                       NULL, 0),
	    0);
	expect_encoded(&out,
	               "83a47479706502a46461746194a16ecfffffffffffffffffd38000000000000000cb43f0"
	               "000000000000a36e7370a12f");
	base_buf_free(&out);
}

static void test_encode_strings(void **state)
{
	base_buf out = BASE_BUF_INIT, json = BASE_BUF_INIT, want = BASE_BUF_INIT;
	char x[32], y[300];

	memset(x, 'x', sizeof(x));
	memset(y, 'y', sizeof(y));
	base_buf_append_str(&json, "[\"s\",\"");
	base_buf_append(&json, x, sizeof(x));
	base_buf_append_str(&json, "\",\"");
	base_buf_append(&json, y, sizeof(y));
	base_buf_append_str(&json, "\",\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\\u20ac\\ud83d\\ude00\"]");
	assert_int_equal(sio_msgpack_encode(&out, SIO_EVENT, BASE_SLICE_LIT("/"), -1,
	                                    (base_slice){json.data, json.len}, NULL, 0),
	                 0);
	/* From notepack: fixstr, str 8 (d9), str 16 (da), UTF-8 as is. */
	base_buf_append(&want,
	                "\x83\xa4type\x02\xa4"
	                "data\x94\xa1s\xd9\x20",
	                17);
	base_buf_append(&want, x, sizeof(x));
	base_buf_append(&want, "\xda\x01\x2c", 3);
	base_buf_append(&want, y, sizeof(y));
	base_buf_append(&want,
	                "\xb0"
	                "a\"b\\c\n\x01\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
	                17);
	base_buf_append(&want, "\xa3nsp\xa1/", 6);
	assert_int_equal(out.len, want.len);
	assert_memory_equal(out.data, want.data, want.len);
	base_buf_free(&out);
	base_buf_free(&json);
	base_buf_free(&want);
}

static void test_encode_invalid(void **state)
{
	base_buf out = BASE_BUF_INIT;
	base_slice att[1] = {{"a", 1}};

	base_buf_append(&out, "keep", 4);
	assert_int_equal(sio_msgpack_encode(&out, SIO_EVENT, BASE_SLICE_LIT("/"), -1,
	                                    BASE_SLICE_LIT("[\"a\""), NULL, 0),
	                 BASE_EINVAL);
	assert_int_equal(sio_msgpack_encode(&out, SIO_EVENT, BASE_SLICE_LIT("/"), -1,
	                                    BASE_SLICE_LIT("[\"a\"] x"), NULL, 0),
	                 BASE_EINVAL);
	/* A placeholder without its attachment, or with a bad number. */
	assert_int_equal(
	    sio_msgpack_encode(&out, SIO_BINARY_EVENT, BASE_SLICE_LIT("/"), -1,
	                       BASE_SLICE_LIT("[\"a\",{\"_placeholder\":true,\"num\":1}]"), att, 1),
	    BASE_EINVAL);
	assert_int_equal(
	    sio_msgpack_encode(&out, SIO_BINARY_EVENT, BASE_SLICE_LIT("/"), -1,
	                       BASE_SLICE_LIT("[\"a\",{\"_placeholder\":true,\"num\":\"0\"}]"), att,
	                       1),
	    BASE_EINVAL);
	assert_int_equal(sio_msgpack_encode(&out, SIO_BINARY_EVENT, BASE_SLICE_LIT("/"), -1,
	                                    BASE_SLICE_LIT("[\"a\",{\"_placeholder\":true}]"), att,
	                                    1),
	                 BASE_EINVAL);
	/* Failures leave the buffer as it was. */
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.data, "keep", 4);
	/* Not a placeholder: "_placeholder" is not true. */
	assert_int_equal(sio_msgpack_encode(
	                     &out, SIO_EVENT, BASE_SLICE_LIT("/"), -1,
	                     BASE_SLICE_LIT("[\"a\",{\"_placeholder\":false,\"num\":9}]"), NULL, 0),
	                 0);
	base_buf_free(&out);
}

/* A map {"type": <type>, "nsp": "/", "data": <data>} with raw msgpack pieces. */
static blob packet_with(const char *type_hex, const char *data_hex)
{
	char hex[8192];

	snprintf(hex, sizeof(hex), "%sa474797065%sa36e7370a12f%s%s", data_hex ? "83" : "82",
	         type_hex, data_hex ? "a464617461" : "", data_hex ? data_hex : "");
	return unhex(hex);
}

static int decode_blob(blob b)
{
	base_buf json = BASE_BUF_INIT;
	base_slice att[4];
	const char *err = NULL;
	sio_packet p;
	int rc = sio_msgpack_decode(b.bytes, b.len, &json, &p, att, 4, &err);

	if (rc != 0)
		assert_non_null(err);
	base_buf_free(&json);
	free(b.bytes);
	return rc;
}

static void test_decode_invalid(void **state)
{
	static const char *bad_hex[] = {
	    "",                                                 /* nothing */
	    "c1",                                               /* never used */
	    "c0",                                               /* not a map */
	    "92a474797065",                                     /* an array */
	    "80",                                               /* no type */
	    "81a47479706502",                                   /* no nsp */
	    "82a47479706502a36e7370c0",                         /* nsp null */
	    "82a47479706502a36e737001",                         /* nsp a number */
	    "82a47479706500a36e7370d40000",                     /* nsp undefined */
	    "82a47479706500a36e7370a0",                         /* nsp empty */
	    "82a47479706500a36e7370a161",                       /* nsp without '/' */
	    "82a47479706500a36e7370a32f2c61",                   /* nsp with a comma */
	    "82a47479706505a36e7370a12f",                       /* no binary types in msgpack */
	    "82a47479706506a36e7370a12f",                       /* no binary types */
	    "82a47479706507a36e7370a12f",                       /* unknown type */
	    "82a474797065ffa36e7370a12f",                       /* negative type */
	    "82a474797065a132a36e7370a12f",                     /* type as a string */
	    "82a474797065cb3ff8000000000000a36e7370a12f",       /* type 1.5 */
	    "82a47479706500a36e7370a12fc0",                     /* trailing byte */
	    "83a47479706500a36e7370a12f",                       /* announces 3 pairs, has 2 */
	    "82a47479706500a36e7370a22f",                       /* truncated string */
	    "82a47479706500a36e7370a2ff2f",                     /* invalid UTF-8 nsp */
	    "84a47479706502a36e7370a12fa2696401a464617461dd",   /* truncated array 32 header */
	    "83a47479706502a36e7370a12fa464617461ddffffffff",   /* 4G elements announced */
	    "83a47479706502a36e7370a12fa464617461dfffffffff",   /* 4G pairs announced */
	    "83a47479706502a36e7370a12fa464617461c6ffffffff",   /* 4 GB bin announced */
	    "83a47479706502a36e7370a12fa464617461dbffffffff",   /* 4 GB str announced */
	    "83a47479706502a36e7370a12fa464617461c9ffffffff00", /* 4 GB ext announced */
	};

	for (size_t i = 0; i < BASE_ARRAY_SIZE(bad_hex); i++) {
		if (decode_blob(unhex(bad_hex[i])) != -1)
			fail_msg("accepted %s", bad_hex[i]);
	}

	/* Ack ids: integers from 0 to 15 digits; undefined is no id. */
	static const struct {
		const char *id_hex;
		int ok;
	} ids[] = {
	    {"00", 1},
	    {"cb4000000000000000", 1},
	    {"d40000", 1},
	    {"ff", 0},
	    {"c0", 0},
	    {"a131", 0},
	    {"cb3ff8000000000000", 0},
	    {"cf00038d7ea4c67fff", 1}, /* 10^15 - 1 */
	    {"cf00038d7ea4c68000", 0}, /* 10^15 */
	};
	for (size_t i = 0; i < BASE_ARRAY_SIZE(ids); i++) {
		char hex[256];

		snprintf(hex, sizeof(hex),
		         "84a47479706502a36e7370a12fa464617461"
		         "91a161a26964%s",
		         ids[i].id_hex);
		if (decode_blob(unhex(hex)) != (ids[i].ok ? 0 : -1))
			fail_msg("id %s: want %s", ids[i].id_hex, ids[i].ok ? "ok" : "rejected");
	}

	/* Shapes, as in the text form. */
	static const struct {
		const char *type_hex, *data_hex;
		int ok;
	} shapes[] = {
	    {"00", NULL, 1},
	    {"00", "80", 1},
	    {"00", "90", 0},
	    {"00", "c0", 0},
	    {"00", "d40000", 1},
	    {"01", NULL, 1},
	    {"01", "80", 0},
	    {"01", "c0", 0},
	    {"02", NULL, 0},
	    {"02", "90", 0},
	    {"02", "91a161", 1},
	    {"02", "9101", 0},
	    {"02", "91a7636f6e6e656374", 0}, /* ["connect"] */
	    {"02", "80", 0},
	    {"03", "90", 1},
	    {"03", "80", 0},
	    {"03", NULL, 0},
	    {"04", "a178", 1},
	    {"04", "80", 1},
	    {"04", "90", 0},
	    {"04", NULL, 0},
	    {"cb4000000000000000", "91a161", 1},
	    {"00", "81a161c40101", 0}, /* binary in CONNECT */
	    {"04", "81a161c40101", 0}, /* binary in CONNECT_ERROR */
	    {"02", "92a161c40101", 1},
	    {"03", "91c40101", 1},
	    {"02", "92a16181c0a162", 0},             /* map key nil */
	    {"02", "92a1618101a162", 1},             /* map key integer */
	    {"02", "92a161a2c328", 0},               /* invalid UTF-8 string */
	    {"02", "92a16181a2c328a162", 0},         /* invalid UTF-8 key */
	    {"02", "92a161d50101ff", 1},             /* fixext 2 type 1: [1, <binary>] */
	    {"02", "92a161d7000000000000000000", 1}, /* a Date */
	    {"02", "92a161d7000020000000000000", 1}, /* Invalid Date: null */
	};
	for (size_t i = 0; i < BASE_ARRAY_SIZE(shapes); i++) {
		if (decode_blob(packet_with(shapes[i].type_hex, shapes[i].data_hex)) !=
		    (shapes[i].ok ? 0 : -1))
			fail_msg("type %s data %s: want %s", shapes[i].type_hex,
			         shapes[i].data_hex ? shapes[i].data_hex : "(none)",
			         shapes[i].ok ? "ok" : "rejected");
	}
}

static void test_decode_odd_values(void **state)
{
	decoded d;

	/* ext types other than 0 become [type, <binary>], as notepack's [type, Buffer]. */
	decode_hex(&d, "83a47479706502a36e7370a12fa46461746192a161d5ff0102", 4);
	expect(&d, SIO_BINARY_EVENT, "/", -1, "[\"a\",[-1,{\"_placeholder\":true,\"num\":0}]]", "a",
	       "[-1,{\"_placeholder\":true,\"num\":0}]");
	expect_att(&d, 0, "\x01\x02", 2);
	decoded_free(&d);
	/* fixext 1/2/4/16 of type 0 are not ArrayBuffers for notepack; ext 8 sizes 1 and 8 are. */
	decode_hex(
	    &d,
	    "83a47479706502a36e7370a12fa46461746194a161d60001020304c7010009c708000102030405060708",
	    4);
	expect(&d, SIO_BINARY_EVENT, "/", -1,
	       "[\"a\",[0,{\"_placeholder\":true,\"num\":0}],{\"_placeholder\":true,\"num\":1},"
	       "{\"_placeholder\":true,\"num\":2}]",
	       "a",
	       "[0,{\"_placeholder\":true,\"num\":0}],{\"_placeholder\":true,\"num\":1},"
	       "{\"_placeholder\":true,\"num\":2}");
	expect_att(&d, 0, "\x01\x02\x03\x04", 4);
	expect_att(&d, 1, "\x09", 1);
	expect_att(&d, 2, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	decoded_free(&d);
	/*
	 * Floats: float32, NaN and infinities (null, as JSON.stringify), an
	 * integral double past 64 bits (JavaScript would spell out all 21 digits).
	 */
	decode_hex(&d,
	           "83a47479706502a36e7370a12fa46461746196a161ca3fc00000cb7ff8000000000000cbfff0000"
	           "000000000cb4415af1d78b58c40cb3fb999999999999a",
	           4);
	expect(&d, SIO_EVENT, "/", -1, "[\"a\",1.5,null,null,1e+20,0.1]", "a",
	       "1.5,null,null,1e+20,0.1");
	decoded_free(&d);
	/*
	 * Later duplicate fields win; integer keys become strings; strings are
	 * escaped. Built with python3-msgpack: 0x85, then packb of "type", 1,
	 * "nsp", "/", "type", 2, "data", ["x"], "data", ["a", {1: 123, 2: None}, "q\"\n"].
	 */
	decode_hex(&d,
	           "85a47479706501a36e7370a12fa47479706502a46461746191a178a464617461"
	           "93a16182017b02c0a371220a",
	           4);
	expect(&d, SIO_EVENT, "/", -1, "[\"a\",{\"1\":123,\"2\":null},\"q\\\"\\n\"]", "a",
	       "{\"1\":123,\"2\":null},\"q\\\"\\n\"");
	decoded_free(&d);
	/* Dates at the edges of JavaScript's range, and before year 0. */
	/* {type: 2, nsp: "/", data: ["a", new Date(8.64e15), <year -1>, new Date(-8.64e15)]} */
	decode_hex(&d,
	           "83a47479706502a36e7370a12fa46461746194a161"
	           "d700001eb208c2dc0000d700ffffc76e394a7400d700ffe14df73d240000",
	           4);
	expect(&d, SIO_EVENT, "/", -1,
	       "[\"a\",\"+275760-09-13T00:00:00.000Z\",\"-000001-01-01T00:00:00.000Z\","
	       "\"-271821-04-20T00:00:00.000Z\"]",
	       "a",
	       "\"+275760-09-13T00:00:00.000Z\",\"-000001-01-01T00:00:00.000Z\","
	       "\"-271821-04-20T00:00:00.000Z\"");
	decoded_free(&d);
}

/* Nesting: msgpack-c holds 32 open containers; deeper input is refused, not crashed on. */
static void test_decode_depth(void **state)
{
	for (int depth = 1; depth <= 40; depth++) {
		base_buf hex = BASE_BUF_INIT;

		/* The packet map is one level, the data array another: depth - 2 more inside. */
		base_buf_append_str(&hex, "83a47479706502a36e7370a12fa46461746192a161");
		for (int i = 0; i < depth - 2; i++)
			base_buf_append_str(&hex, "91");
		base_buf_append_str(&hex, "c0");
		base_buf_append(&hex, "", 1);
		if (depth < 2) {
			base_buf_free(&hex);
			continue;
		}
		assert_int_equal(decode_blob(unhex(hex.data)), depth <= 32 ? 0 : -1);
		base_buf_free(&hex);
	}
}

/* encode then decode gives the same packet back; decode then encode the same bytes. */
static void test_roundtrip(void **state)
{
	static const struct {
		sio_packet_type type;
		const char *nsp;
		int64_t id;
		const char *data;
		unsigned natt;
	} cases[] = {
	    {SIO_CONNECT, "/", -1, "", 0},
	    {SIO_CONNECT, "/admin", -1, "{\"token\":\"abc\",\"n\":[1,2.5,-3]}", 0},
	    {SIO_DISCONNECT, "/admin", -1, "", 0},
	    {SIO_EVENT, "/", -1, "[\"message\",{\"a\":1},\"hello\"]", 0},
	    {SIO_EVENT, "/chat", 42, "[\"e\\u00e9\\n\",null,true,false,{},[],\"\"]", 0},
	    {SIO_ACK, "/", 0, "[]", 0},
	    {SIO_ACK, "/", 999999999999999, "[{\"deep\":[[[[{\"x\":1e-7}]]]]}]", 0},
	    {SIO_CONNECT_ERROR, "/", -1, "\"nope\"", 0},
	    {SIO_CONNECT_ERROR, "/", -1, "{\"message\":\"nope\",\"data\":{\"code\":4}}", 0},
	    {SIO_BINARY_EVENT, "/", 1,
	     "[\"up\",{\"_placeholder\":true,\"num\":1},[{\"_placeholder\":true,\"num\":0}]]", 2},
	    {SIO_BINARY_ACK, "/x", 2, "[{\"_placeholder\":true,\"num\":0}]", 1},
	};
	base_slice att[2] = {{"first", 5}, {"\x00\xff", 2}};

	for (size_t i = 0; i < BASE_ARRAY_SIZE(cases); i++) {
		base_buf mp = BASE_BUF_INIT, json = BASE_BUF_INIT, mp2 = BASE_BUF_INIT;
		base_slice got[4];
		const char *err = NULL;
		sio_packet p;

		assert_int_equal(sio_msgpack_encode(
		                     &mp, cases[i].type,
		                     (base_slice){cases[i].nsp, strlen(cases[i].nsp)}, cases[i].id,
		                     (base_slice){cases[i].data, strlen(cases[i].data)}, att,
		                     cases[i].natt),
		                 0);
		if (sio_msgpack_decode(mp.data, mp.len, &json, &p, got, 4, &err) != 0)
			fail_msg("case %zu: %s", i, err);
		assert_int_equal(p.type, cases[i].type);
		assert_true(base_slice_eq(p.nsp, cases[i].nsp));
		assert_int_equal(p.id, cases[i].id);
		assert_int_equal(p.attachments, cases[i].natt);
		/* Placeholders are renumbered in order of appearance. */
		if (i == 9) {
			assert_true(base_slice_eq(p.data,
			                          "[\"up\",{\"_placeholder\":true,\"num\":0},"
			                          "[{\"_placeholder\":true,\"num\":1}]]"));
			assert_true(got[0].len == 2 && got[1].len == 5);
		} else if (strstr(cases[i].data, "1e-7")) {
			assert_true(base_slice_eq(p.data, "[{\"deep\":[[[[{\"x\":1e-07}]]]]}]"));
		} else {
			assert_true(base_slice_eq(p.data, cases[i].data) ||
			            strchr(cases[i].data, '\\') != NULL);
		}
		assert_int_equal(
		    sio_msgpack_encode(&mp2, p.type, p.nsp, p.id, p.data, got, p.attachments), 0);
		assert_int_equal(mp2.len, mp.len);
		assert_memory_equal(mp2.data, mp.data, mp.len);
		base_buf_free(&mp);
		base_buf_free(&mp2);
		base_buf_free(&json);
	}
}

/* json_out is appended to: earlier contents stay, and p points at the new part. */
static void test_decode_appends(void **state)
{
	blob b = unhex(V_CLIENT_EVENT_ACK);
	base_buf json = BASE_BUF_INIT;
	const char *err;
	sio_packet p;

	base_buf_append_str(&json, "earlier");
	assert_int_equal(sio_msgpack_decode(b.bytes, b.len, &json, &p, NULL, 0, &err), 0);
	assert_memory_equal(json.data, "earlier", 7);
	assert_ptr_equal(p.data.base, json.data + 7);
	assert_true(base_slice_eq(p.data, "[\"message\",\"hi\"]"));
	base_buf_free(&json);
	free(b.bytes);
}

/* Any value, as the cluster adapter packs its messages: JSON to msgpack and back. */
static void test_any_value(void **state)
{
	(void)state;
	static const char json[] = "{\"uid\":\"ab\",\"type\":3,\"data\":{\"packet\":{\"data\":"
	                           "[\"ev\",{\"_placeholder\":true,\"num\":1},-2.5,null,"
	                           "[{\"_placeholder\":true,\"num\":0}]]},\"rooms\":[]}}";
	base_slice atts[2] = {{"\x00\x01", 2}, {"xyz", 3}}, back[4];
	base_buf mp = BASE_BUF_INIT, out = BASE_BUF_INIT;
	size_t n = 9;
	const char *err = NULL;

	assert_int_equal(sio_msgpack_pack_json(&mp, (base_slice){json, strlen(json)}, atts, 2), 0);
	/* Two bin objects, no placeholder map left. */
	assert_non_null(memmem(mp.data, mp.len, "\xc4\x03xyz", 5));
	assert_non_null(memmem(mp.data, mp.len, "\xc4\x02\x00\x01", 4));
	assert_null(memmem(mp.data, mp.len, "_placeholder", 12));
	assert_int_equal(sio_msgpack_to_json(mp.data, mp.len, &out, back, 4, &n, &err), 0);
	/* Placeholders are numbered in the order the bin values come. */
	base_buf_append(&out, "", 1);
	assert_string_equal(out.data, "{\"uid\":\"ab\",\"type\":3,\"data\":{\"packet\":{\"data\":"
	                              "[\"ev\",{\"_placeholder\":true,\"num\":0},-2.5,null,"
	                              "[{\"_placeholder\":true,\"num\":1}]]},\"rooms\":[]}}");
	assert_int_equal(n, 2);
	assert_true(back[0].len == 3 && memcmp(back[0].base, "xyz", 3) == 0);
	assert_true(back[1].len == 2 && memcmp(back[1].base, "\x00\x01", 2) == 0);
	/* Errors leave the buffers as they were. */
	size_t len = mp.len;
	assert_int_equal(sio_msgpack_pack_json(&mp, BASE_SLICE_LIT("{\"a\":"), NULL, 0),
	                 BASE_EINVAL);
	assert_int_equal(sio_msgpack_pack_json(
	                     &mp, BASE_SLICE_LIT("[{\"_placeholder\":true,\"num\":0}]"), NULL, 0),
	                 BASE_EINVAL);
	assert_int_equal(mp.len, len);
	len = out.len;
	assert_int_equal(sio_msgpack_to_json(mp.data, mp.len - 1, &out, back, 4, &n, &err), -1);
	assert_non_null(err);
	assert_int_equal(sio_msgpack_to_json(mp.data, mp.len, &out, back, 1, &n, &err), -1);
	assert_int_equal(out.len, len);
	base_buf_free(&mp);
	base_buf_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_captured),     cmocka_unit_test(test_decode_encoded),
	    cmocka_unit_test(test_encode_matches_node), cmocka_unit_test(test_encode_strings),
	    cmocka_unit_test(test_encode_invalid),      cmocka_unit_test(test_decode_invalid),
	    cmocka_unit_test(test_decode_odd_values),   cmocka_unit_test(test_decode_depth),
	    cmocka_unit_test(test_roundtrip),           cmocka_unit_test(test_decode_appends),
	    cmocka_unit_test(test_any_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
