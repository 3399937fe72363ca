/*
 * Tests socketio/parser.c: what both parsers share (the encode entry point
 * and its limit, the wire, the decoder state, an event's data for the
 * adapter) and the choice of ops, through a round trip of every kind of
 * packet in both parsers (binary attachments and acks included).
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

static const base_slice two_atts[2] = {{"\x01\x02", 2}, {"\x00\xff\x00", 3}};

/* Unescapes a decoded event name into buf (NUL-terminated). */
static const char *event_name(const sio_packet *p, char *buf, size_t cap)
{
	ssize_t n = sio_json_unescape(p->event.base, p->event.len, buf);
	assert_true(n >= 0 && (size_t)n < cap);
	buf[n] = 0;
	return buf;
}

/* Encodes out with ops, decodes it back, and checks every field came back. */
static void round_trip(const sio_parser_ops *ops, const sio_out *out, sio_packet_type want_type)
{
	flat_wire f = {0};
	sio_decoder d;
	sio_decoded in;
	const char *err = NULL;
	char name[256];

	assert_int_equal(encode_flat(ops, out, &f), 0);
	assert_int_equal(decode_flat(ops, &d, &f, &in, &err), 1);
	assert_int_equal(in.pkt.type, want_type);
	assert_true(in.pkt.nsp.len == out->nsp.len &&
	            memcmp(in.pkt.nsp.base, out->nsp.base, out->nsp.len) == 0);
	assert_int_equal(in.pkt.id, out->id);
	assert_int_equal(in.n_atts, out->n_atts);
	for (size_t i = 0; i < out->n_atts; i++) {
		assert_int_equal(in.atts[i].len, out->atts[i].len);
		assert_memory_equal(in.atts[i].base, out->atts[i].base, out->atts[i].len);
	}
	if (out->type == SIO_EVENT) {
		char want[256];
		memcpy(want, out->event.base, out->event.len);
		want[out->event.len] = 0;
		assert_string_equal(event_name(&in.pkt, name, sizeof(name)), want);
	}
	if (out->type == SIO_EVENT || out->type == SIO_ACK) {
		/* The arguments come back as the same JSON text (compact, as sent). */
		base_buf a = BASE_BUF_INIT, b = BASE_BUF_INIT;
		sio_out back = {.type = out->type, .event = out->event, .args = in.pkt.args};
		sio_out orig = {.type = out->type, .event = out->event, .args = out->args};
		sio__out_data(&a, &back);
		sio__out_data(&b, &orig);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
		base_buf_free(&a);
		base_buf_free(&b);
	} else {
		assert_int_equal(in.pkt.data.len, out->data.len);
		if (out->data.len)
			assert_memory_equal(in.pkt.data.base, out->data.base, out->data.len);
	}
	sio__decoder_done(&d);
	sio__decoder_free(&d);
	flat_free(&f);
}

static void round_trips(const sio_parser_ops *ops)
{
	sio_out o;

	o = (sio_out){.type = SIO_EVENT,
	              .nsp = BASE_SLICE_LIT("/"),
	              .id = -1,
	              .event = BASE_SLICE_LIT("news"),
	              .args = BASE_SLICE_LIT("1,{\"a\":[true,null]},\"x\"")};
	round_trip(ops, &o, SIO_EVENT);
	o.args = (base_slice){NULL, 0}; /* no arguments */
	round_trip(ops, &o, SIO_EVENT);
	o = (sio_out){.type = SIO_EVENT,
	              .nsp = BASE_SLICE_LIT("/chat"),
	              .id = 42,
	              .event = BASE_SLICE_LIT("say \"hi\"\n"),
	              .args = BASE_SLICE_LIT("\"é\"")};
	round_trip(ops, &o, SIO_EVENT); /* a name that needs escaping, an ack id */
	o = (sio_out){
	    .type = SIO_EVENT,
	    .nsp = BASE_SLICE_LIT("/chat"),
	    .id = 7,
	    .event = BASE_SLICE_LIT("file"),
	    .args = BASE_SLICE_LIT(
	        "{\"_placeholder\":true,\"num\":0},{\"b\":{\"_placeholder\":true,\"num\":1}}"),
	    .atts = two_atts,
	    .n_atts = 2};
	round_trip(ops, &o, SIO_BINARY_EVENT);
	o = (sio_out){.type = SIO_ACK,
	              .nsp = BASE_SLICE_LIT("/"),
	              .id = 3,
	              .args = BASE_SLICE_LIT("\"ok\",2")};
	round_trip(ops, &o, SIO_ACK);
	o.args = (base_slice){NULL, 0};
	round_trip(ops, &o, SIO_ACK); /* an ack with no arguments */
	o = (sio_out){.type = SIO_ACK,
	              .nsp = BASE_SLICE_LIT("/x"),
	              .id = 999999999999999LL,
	              .args = BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0}"),
	              .atts = two_atts,
	              .n_atts = 1};
	round_trip(ops, &o, SIO_BINARY_ACK);
	o = (sio_out){.type = SIO_CONNECT,
	              .nsp = BASE_SLICE_LIT("/x"),
	              .id = -1,
	              .data = BASE_SLICE_LIT("{\"sid\":\"abc\"}")};
	round_trip(ops, &o, SIO_CONNECT);
	o = (sio_out){.type = SIO_CONNECT_ERROR,
	              .nsp = BASE_SLICE_LIT("/"),
	              .id = -1,
	              .data = BASE_SLICE_LIT("{\"message\":\"no\"}")};
	round_trip(ops, &o, SIO_CONNECT_ERROR);
	o = (sio_out){.type = SIO_DISCONNECT, .nsp = BASE_SLICE_LIT("/y"), .id = -1};
	round_trip(ops, &o, SIO_DISCONNECT);
}

static void test_round_trips_default(void **state)
{
	(void)state;
	round_trips(&sio__parser_json);
}

static void test_round_trips_msgpack(void **state)
{
	(void)state;
	round_trips(&sio__parser_msgpack);
}

/* An escaped name (as decoded from a peer or another node) goes out as it came. */
static void test_escaped_event_name(void **state)
{
	(void)state;
	const sio_parser_ops *both[] = {&sio__parser_json, &sio__parser_msgpack};
	for (int i = 0; i < 2; i++) {
		sio_out raw = {.type = SIO_EVENT,
		               .nsp = BASE_SLICE_LIT("/"),
		               .id = -1,
		               .event = BASE_SLICE_LIT("a\"b"),
		               .args = BASE_SLICE_LIT("1")};
		sio_out esc = raw;
		esc.event = BASE_SLICE_LIT("a\\\"b");
		esc.event_escaped = 1;
		flat_wire f1, f2;
		assert_int_equal(encode_flat(both[i], &raw, &f1), 0);
		assert_int_equal(encode_flat(both[i], &esc, &f2), 0);
		assert_int_equal(f1.n, 1);
		assert_int_equal(f2.n, 1);
		assert_int_equal(f1.m[0].len, f2.m[0].len);
		assert_memory_equal(f1.m[0].data, f2.m[0].data, f1.m[0].len);
		flat_free(&f1);
		flat_free(&f2);
	}
}

static void test_too_many_attachments(void **state)
{
	(void)state;
	base_slice atts[SIO_MAX_ATTACHMENTS + 1];
	for (size_t i = 0; i < BASE_ARRAY_SIZE(atts); i++)
		atts[i] = BASE_SLICE_LIT("x");
	sio_out o = {.type = SIO_EVENT,
	             .nsp = BASE_SLICE_LIT("/"),
	             .id = -1,
	             .event = BASE_SLICE_LIT("e"),
	             .atts = atts,
	             .n_atts = BASE_ARRAY_SIZE(atts)};
	sio_wire w;
	assert_int_equal(sio__encode(&sio__parser_json, &o, &w), SIO_ETOO_MANY_ATTACHMENTS);
	assert_int_equal(w.n_msgs, 0);
	sio__wire_free(&w);
	assert_int_equal(sio__encode(&sio__parser_msgpack, &o, &w), SIO_ETOO_MANY_ATTACHMENTS);
	sio__wire_free(&w);
}

static void test_out_data(void **state)
{
	(void)state;
	base_buf b = BASE_BUF_INIT;
	sio_out o = {
	    .type = SIO_EVENT, .event = BASE_SLICE_LIT("n\"e"), .args = BASE_SLICE_LIT("1,2")};
	sio__out_data(&b, &o);
	assert_true(slice_is((base_slice){b.data, b.len}, "[\"n\\\"e\",1,2]"));
	b.len = 0;
	o.args = (base_slice){NULL, 0};
	sio__out_data(&b, &o);
	assert_true(slice_is((base_slice){b.data, b.len}, "[\"n\\\"e\"]"));
	b.len = 0;
	o = (sio_out){.type = SIO_EVENT, .event = BASE_SLICE_LIT("n\\u0041"), .event_escaped = 1};
	sio__out_data(&b, &o);
	assert_true(slice_is((base_slice){b.data, b.len}, "[\"n\\u0041\"]"));
	b.len = 0;
	o = (sio_out){.type = SIO_ACK, .args = BASE_SLICE_LIT("true")};
	sio__out_data(&b, &o);
	assert_true(slice_is((base_slice){b.data, b.len}, "[true]"));
	base_buf_free(&b);
}

/* A decoder freed with a packet half received leaks nothing (ASan). */
static void test_decoder_free_midway(void **state)
{
	(void)state;
	sio_decoder d = {.max_pending = 100};
	sio_decoded in;
	const char *err;
	const char *hdr =
	    "52-[\"e\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
	assert_int_equal(sio__parser_json.decode(&d, 0, hdr, strlen(hdr), &in, &err), 0);
	sio__decoder_done(&d);
	assert_int_equal(sio__parser_json.decode(&d, 1, "ab", 2, &in, &err), 0);
	sio__decoder_done(&d);
	sio__decoder_free(&d);
	assert_null(d.bin);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips_default),
	    cmocka_unit_test(test_round_trips_msgpack),
	    cmocka_unit_test(test_escaped_event_name),
	    cmocka_unit_test(test_too_many_attachments),
	    cmocka_unit_test(test_out_data),
	    cmocka_unit_test(test_decoder_free_midway),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
