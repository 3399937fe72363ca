/*
 * Tests socketio/parser_msgpack.c: socket.io-msgpack-parser as a parser.
 * Its encoder writes events and acks from the name and the argument list
 * without building the data's JSON text first; what it writes must be,
 * byte for byte, what the codec writes from the whole JSON data (the form
 * the interoperability vectors of test_msgpack.c pin down).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "parser_util.h"

static const sio_parser_ops *M = &sio__parser_msgpack;

/* The ops' bytes for o equal sio_msgpack_encode's for o's whole data. */
static void same_as_codec(const sio_out *o)
{
	base_buf data = BASE_BUF_INIT, want = BASE_BUF_INIT;
	flat_wire f = {0};
	sio_packet_type t = o->type;
	if (o->n_atts)
		t = t == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK;
	sio__out_data(&data, o);
	assert_int_equal(sio_msgpack_encode(&want, t, o->nsp, o->id,
	                                    (base_slice){data.data, data.len}, o->atts, o->n_atts),
	                 0);
	assert_int_equal(encode_flat(M, o, &f), 0);
	assert_int_equal(f.n, 1); /* attachments inline: one message */
	assert_int_equal(f.m[0].binary, 1);
	assert_int_equal(f.m[0].len, want.len);
	assert_memory_equal(f.m[0].data, want.data, want.len);
	flat_free(&f);
	base_buf_free(&data);
	base_buf_free(&want);
}

static void test_encode_matches_codec(void **state)
{
	(void)state;
	base_slice atts[1] = {{"\xde\xad", 2}};
	same_as_codec(
	    &(sio_out){.type = SIO_EVENT,
	               .nsp = BASE_SLICE_LIT("/"),
	               .id = -1,
	               .event = BASE_SLICE_LIT("reply"),
	               .args = BASE_SLICE_LIT("1.5, -3 ,{\"a\":null,\"b\":[true,false]}")});
	same_as_codec(&(sio_out){.type = SIO_EVENT,
	                         .nsp = BASE_SLICE_LIT("/admin"),
	                         .id = 3,
	                         .event = BASE_SLICE_LIT("\xc3\xa9t\xc3\xa9")});
	same_as_codec(&(sio_out){.type = SIO_EVENT,
	                         .nsp = BASE_SLICE_LIT("/"),
	                         .id = -1,
	                         .event = BASE_SLICE_LIT("bin"),
	                         .args = BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0}"),
	                         .atts = atts,
	                         .n_atts = 1});
	same_as_codec(&(sio_out){.type = SIO_ACK,
	                         .nsp = BASE_SLICE_LIT("/"),
	                         .id = 1,
	                         .args = BASE_SLICE_LIT("\"ok\",{\"_placeholder\":true,\"num\":0}"),
	                         .atts = atts,
	                         .n_atts = 1});
	same_as_codec(&(sio_out){.type = SIO_ACK, .nsp = BASE_SLICE_LIT("/"), .id = 0});
}

/* The Node server's answer to ("message", "hi", ack), from test_msgpack.c's capture. */
static void test_encode_vector(void **state)
{
	(void)state;
	/* {id: 1, type: 3, data: ["ok"], nsp: "/"} as socket.io-msgpack-parser writes it */
	static const unsigned char want[] = {0x84, 0xa2, 'i',  'd', 0x01, 0xa4, 't',  'y',  'p',
	                                     'e',  0x03, 0xa4, 'd', 'a',  't',  'a',  0x91, 0xa2,
	                                     'o',  'k',  0xa3, 'n', 's',  'p',  0xa1, '/'};
	flat_wire f = {0};
	sio_out o = {
	    .type = SIO_ACK, .nsp = BASE_SLICE_LIT("/"), .id = 1, .args = BASE_SLICE_LIT("\"ok\"")};
	assert_int_equal(encode_flat(M, &o, &f), 0);
	assert_int_equal(f.m[0].len, sizeof(want));
	assert_memory_equal(f.m[0].data, want, sizeof(want));
	flat_free(&f);
}

static void test_encode_refusals(void **state)
{
	(void)state;
	sio_wire w;
	const char *bad[] = {"{", "1,", ",1", "1 2", "[1", "{\"_placeholder\":true,\"num\":0}"};
	for (size_t i = 0; i < BASE_ARRAY_SIZE(bad); i++) {
		sio_out o = {.type = SIO_EVENT,
		             .nsp = BASE_SLICE_LIT("/"),
		             .id = -1,
		             .event = BASE_SLICE_LIT("e"),
		             .args = {bad[i], strlen(bad[i])}};
		assert_int_equal(sio__encode(M, &o, &w), SIO_EBAD_ARGS);
		assert_int_equal(w.n_msgs, 0);
		sio__wire_free(&w);
	}
	/* Whitespace around the arguments is fine, as inside brackets. */
	sio_out o = {.type = SIO_EVENT,
	             .nsp = BASE_SLICE_LIT("/"),
	             .id = -1,
	             .event = BASE_SLICE_LIT("e"),
	             .args = BASE_SLICE_LIT(" 1 , 2 ")};
	assert_int_equal(sio__encode(M, &o, &w), 0);
	sio__wire_free(&w);
}

static void test_decode(void **state)
{
	(void)state;
	sio_decoder d = {.max_pending = 100};
	sio_decoded in;
	const char *err = NULL;
	assert_int_equal(M->decode(&d, 0, "2[\"e\"]", 6, &in, &err), -1);
	assert_string_equal(err, "text message with the msgpack parser");
	assert_int_equal(M->decode(&d, 1, "\xc1", 1, &in, &err), -1);
	assert_non_null(err);
	/* {type: 2, data: ["bin", <bin 01 02>], nsp: "/"} */
	static const char pkt[] = "\x83\xa4type\x02\xa4\x64\x61ta\x92\xa3"
	                          "bin\xc4\x02\x01\x02\xa3nsp\xa1/";
	assert_int_equal(M->decode(&d, 1, pkt, sizeof(pkt) - 1, &in, &err), 1);
	assert_int_equal(in.pkt.type, SIO_BINARY_EVENT);
	assert_true(slice_is(in.pkt.event, "bin"));
	assert_true(slice_is(in.pkt.args, "{\"_placeholder\":true,\"num\":0}"));
	assert_int_equal(in.n_atts, 1);
	assert_true(slice_is(in.atts[0], "\x01\x02"));
	sio__decoder_done(&d);
	sio__decoder_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_matches_codec),
	    cmocka_unit_test(test_encode_vector),
	    cmocka_unit_test(test_encode_refusals),
	    cmocka_unit_test(test_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
