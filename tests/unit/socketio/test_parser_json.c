/*
 * Tests socketio/parser_json.c, the default parser: the exact text it
 * writes for each packet (gathered from parts, arguments untouched), and
 * its decoder's state across a binary packet's messages and the ways a
 * peer can get that wrong.
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

static const sio_parser_ops *J = &sio__parser_json;

static void expect_text(const sio_out *o, const char *text)
{
	flat_wire f = {0};
	assert_int_equal(encode_flat(J, o, &f), 0);
	assert_true(f.n >= 1);
	assert_int_equal(f.m[0].binary, 0);
	assert_string_equal(f.m[0].data, text);
	flat_free(&f);
}

static void test_encode_text(void **state)
{
	(void)state;
	expect_text(&(sio_out){.type = SIO_EVENT,
	                       .nsp = BASE_SLICE_LIT("/"),
	                       .id = -1,
	                       .event = BASE_SLICE_LIT("news"),
	                       .args = BASE_SLICE_LIT("1,\"a\"")},
	            "2[\"news\",1,\"a\"]");
	expect_text(&(sio_out){.type = SIO_EVENT,
	                       .nsp = BASE_SLICE_LIT("/chat"),
	                       .id = 12,
	                       .event = BASE_SLICE_LIT("q\"")},
	            "2/chat,12[\"q\\\"\"]");
	expect_text(&(sio_out){.type = SIO_ACK,
	                       .nsp = BASE_SLICE_LIT("/"),
	                       .id = 5,
	                       .args = BASE_SLICE_LIT("null")},
	            "35[null]");
	expect_text(&(sio_out){.type = SIO_ACK, .nsp = BASE_SLICE_LIT("/a"), .id = 0}, "3/a,0[]");
	expect_text(&(sio_out){.type = SIO_CONNECT,
	                       .nsp = BASE_SLICE_LIT("/"),
	                       .id = -1,
	                       .data = BASE_SLICE_LIT("{\"sid\":\"x\"}")},
	            "0{\"sid\":\"x\"}");
	expect_text(&(sio_out){.type = SIO_DISCONNECT, .nsp = BASE_SLICE_LIT("/a"), .id = -1},
	            "1/a,");
	expect_text(&(sio_out){.type = SIO_CONNECT_ERROR,
	                       .nsp = BASE_SLICE_LIT("/a"),
	                       .id = -1,
	                       .data = BASE_SLICE_LIT("{\"message\":\"m\"}")},
	            "4/a,{\"message\":\"m\"}");
	/* The default parser does not read arguments: they go out as given. */
	expect_text(&(sio_out){.type = SIO_EVENT,
	                       .nsp = BASE_SLICE_LIT("/"),
	                       .id = -1,
	                       .event = BASE_SLICE_LIT("e"),
	                       .args = BASE_SLICE_LIT("{")},
	            "2[\"e\",{]");
}

static void test_encode_binary(void **state)
{
	(void)state;
	base_slice atts[2] = {{"\x01", 1}, {"", 0}};
	sio_out o = {.type = SIO_EVENT,
	             .nsp = BASE_SLICE_LIT("/b"),
	             .id = 1,
	             .event = BASE_SLICE_LIT("up"),
	             .args = BASE_SLICE_LIT(
	                 "{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}"),
	             .atts = atts,
	             .n_atts = 2};
	flat_wire f = {0};
	assert_int_equal(encode_flat(J, &o, &f), 0);
	assert_int_equal(f.n, 3);
	assert_string_equal(f.m[0].data, "52-/b,1[\"up\",{\"_placeholder\":true,\"num\":0},"
	                                 "{\"_placeholder\":true,\"num\":1}]");
	assert_int_equal(f.m[1].binary, 1);
	assert_int_equal(f.m[1].len, 1);
	assert_int_equal(f.m[2].binary, 1);
	assert_int_equal(f.m[2].len, 0);
	flat_free(&f);
	o = (sio_out){.type = SIO_ACK,
	              .nsp = BASE_SLICE_LIT("/"),
	              .id = 9,
	              .args = BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0}"),
	              .atts = atts,
	              .n_atts = 1};
	assert_int_equal(encode_flat(J, &o, &f), 0);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.m[0].data, "61-9[{\"_placeholder\":true,\"num\":0}]");
	flat_free(&f);
	/* Only events and acks carry binary. */
	o = (sio_out){
	    .type = SIO_CONNECT, .nsp = BASE_SLICE_LIT("/"), .id = -1, .atts = atts, .n_atts = 1};
	sio_wire w;
	assert_int_equal(sio__encode(J, &o, &w), SIO_EBAD_ARGS);
	sio__wire_free(&w);
}

static int feed(sio_decoder *d, int binary, const char *data, sio_decoded *in, const char **err)
{
	return J->decode(d, binary, data, strlen(data), in, err);
}

static void test_decode_binary_in_pieces(void **state)
{
	(void)state;
	sio_decoder d = {.max_pending = 1000};
	sio_decoded in;
	const char *err = NULL;
	char hdr[] =
	    "52-/b,4[\"up\",{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]";
	assert_int_equal(feed(&d, 0, hdr, &in, &err), 0);
	/* The header was copied: the caller's buffer may be reused at once. */
	memset(hdr, 'x', sizeof(hdr) - 1);
	sio__decoder_done(&d);
	char first[] = "AAA";
	assert_int_equal(feed(&d, 1, first, &in, &err), 0);
	memset(first, 'y', 3);
	sio__decoder_done(&d);
	assert_int_equal(feed(&d, 1, "BB", &in, &err), 1);
	assert_int_equal(in.pkt.type, SIO_BINARY_EVENT);
	assert_true(slice_is(in.pkt.nsp, "/b"));
	assert_int_equal(in.pkt.id, 4);
	assert_true(slice_is(in.pkt.event, "up"));
	assert_int_equal(in.n_atts, 2);
	assert_true(slice_is(in.atts[0], "AAA"));
	assert_true(slice_is(in.atts[1], "BB"));
	sio__decoder_done(&d);
	assert_null(d.bin);
	/* The next packet is a plain one. */
	assert_int_equal(feed(&d, 0, "2[\"e\"]", &in, &err), 1);
	assert_int_equal(in.n_atts, 0);
	sio__decoder_free(&d);
}

static void test_decode_refusals(void **state)
{
	(void)state;
	sio_decoder d = {.max_pending = 4};
	sio_decoded in;
	const char *err = NULL;

	assert_int_equal(feed(&d, 1, "x", &in, &err), -1);
	assert_string_equal(err, "unexpected binary message");
	assert_int_equal(feed(&d, 0, "9", &in, &err), -1);
	assert_string_equal(err, "unknown packet type");

	assert_int_equal(feed(&d, 0, "51-[\"e\",{\"_placeholder\":true,\"num\":0}]", &in, &err), 0);
	assert_int_equal(feed(&d, 0, "2[\"e\"]", &in, &err), -1);
	assert_string_equal(err, "text packet while waiting for attachments");
	sio__decoder_free(&d);

	d = (sio_decoder){.max_pending = 4};
	assert_int_equal(feed(&d, 0, "52-[\"e\",{\"_placeholder\":true,\"num\":0}]", &in, &err), 0);
	assert_int_equal(feed(&d, 1, "abc", &in, &err), 0);
	assert_int_equal(feed(&d, 1, "de", &in, &err), -1); /* 5 bytes waiting, 4 allowed */
	assert_string_equal(err, "attachments too large");
	sio__decoder_free(&d);

	/* A placeholder naming an attachment that did not come. */
	d = (sio_decoder){.max_pending = 100};
	assert_int_equal(feed(&d, 0, "51-[\"e\",{\"_placeholder\":true,\"num\":1}]", &in, &err), 0);
	assert_int_equal(feed(&d, 1, "a", &in, &err), -1);
	assert_string_equal(err, "placeholder without a matching attachment");
	sio__decoder_done(&d);
	sio__decoder_free(&d);
}

static void test_placeholders_valid(void **state)
{
	(void)state;
	assert_int_equal(sio__placeholders_valid(BASE_SLICE_LIT("[1,2]"), 0), 1);
	assert_int_equal(sio__placeholders_valid(
	                     BASE_SLICE_LIT("[{\"x\":[{\"_placeholder\":true,\"num\":1}]}]"), 2),
	                 1);
	assert_int_equal(sio__placeholders_valid(
	                     BASE_SLICE_LIT("[{\"x\":[{\"_placeholder\":true,\"num\":2}]}]"), 2),
	                 0);
	assert_int_equal(sio__placeholders_valid(BASE_SLICE_LIT("[{\"_placeholder\":true}]"), 1),
	                 0);
	assert_int_equal(sio__placeholders_valid(BASE_SLICE_LIT("[{\"_placeholder\":false}]"), 0),
	                 1);
	assert_int_equal(sio__placeholders_valid(BASE_SLICE_LIT("[1,"), 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_text),
	    cmocka_unit_test(test_encode_binary),
	    cmocka_unit_test(test_decode_binary_in_pieces),
	    cmocka_unit_test(test_decode_refusals),
	    cmocka_unit_test(test_placeholders_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
