/* Tests socketio/packet.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "socketio/packet.h"

typedef struct {
	const char *in;
	sio_packet_type type;
	const char *nsp;
	int64_t id;
	unsigned attachments;
	const char *data;
	const char *event; /* EVENT types */
	const char *args;  /* EVENT and ACK types */
} valid_case;

static const valid_case valid_cases[] = {
    /* CONNECT: an object or nothing. */
    {"0", SIO_CONNECT, "/", -1, 0, "", "", ""},
    {"0{}", SIO_CONNECT, "/", -1, 0, "{}", "", ""},
    {"0{\"token\":\"abc\"}", SIO_CONNECT, "/", -1, 0, "{\"token\":\"abc\"}", "", ""},
    {"0/admin,", SIO_CONNECT, "/admin", -1, 0, "", "", ""},
    {"0/admin", SIO_CONNECT, "/admin", -1, 0, "", "", ""}, /* no comma: runs to the end */
    {"0/admin,{\"a\":[1]}", SIO_CONNECT, "/admin", -1, 0, "{\"a\":[1]}", "", ""},
    {"0/admin{\"a\":1}", SIO_CONNECT, "/admin{\"a\":1}", -1, 0, "", "", ""},
    {"0/,{}", SIO_CONNECT, "/", -1, 0, "{}", "", ""},
    {"012{}", SIO_CONNECT, "/", 12, 0, "{}", "", ""}, /* an id is read for any type */
    {"0/admin,1", SIO_CONNECT, "/admin", 1, 0, "", "", ""},
    {"0{} \n", SIO_CONNECT, "/", -1, 0, "{} \n", "", ""},
    /* DISCONNECT: nothing. */
    {"1", SIO_DISCONNECT, "/", -1, 0, "", "", ""},
    {"1/admin,", SIO_DISCONNECT, "/admin", -1, 0, "", "", ""},
    {"1/a/b", SIO_DISCONNECT, "/a/b", -1, 0, "", "", ""},
    /* EVENT: a non-empty array starting with a string. */
    {"2[\"hello\"]", SIO_EVENT, "/", -1, 0, "[\"hello\"]", "hello", ""},
    {"2[\"message\",{\"a\":1},\"hello\"]", SIO_EVENT, "/", -1, 0,
     "[\"message\",{\"a\":1},\"hello\"]", "message", "{\"a\":1},\"hello\""},
    {"212[\"ev\",1]", SIO_EVENT, "/", 12, 0, "[\"ev\",1]", "ev", "1"},
    {"2/chat,[\"ev\",1,2]", SIO_EVENT, "/chat", -1, 0, "[\"ev\",1,2]", "ev", "1,2"},
    {"2/chat,7[\"ev\"]", SIO_EVENT, "/chat", 7, 0, "[\"ev\"]", "ev", ""},
    {"2007[\"ev\"]", SIO_EVENT, "/", 7, 0, "[\"ev\"]", "ev", ""},
    {"2999999999999999[\"ev\"]", SIO_EVENT, "/", 999999999999999, 0, "[\"ev\"]", "ev", ""},
    {"2[ \"ev\" , [1] ]", SIO_EVENT, "/", -1, 0, "[ \"ev\" , [1] ]", "ev", "[1]"},
    {"2[\"\"]", SIO_EVENT, "/", -1, 0, "[\"\"]", "", ""},
    {"2[\"Connect\"]", SIO_EVENT, "/", -1, 0, "[\"Connect\"]", "Connect", ""},
    {"2[\"connect \"]", SIO_EVENT, "/", -1, 0, "[\"connect \"]", "connect ", ""},
    {"2[\"a\\\"b\"]", SIO_EVENT, "/", -1, 0, "[\"a\\\"b\"]", "a\\\"b", ""},
    /* ACK: an array, maybe empty. */
    {"30[]", SIO_ACK, "/", 0, 0, "[]", "", ""},
    {"31[\"ok\",2]", SIO_ACK, "/", 1, 0, "[\"ok\",2]", "", "\"ok\",2"},
    {"3/admin,5[ null ]", SIO_ACK, "/admin", 5, 0, "[ null ]", "", "null"},
    {"3[1]", SIO_ACK, "/", -1, 0, "[1]", "", "1"},
    /* CONNECT_ERROR: an object or a string. */
    {"4{\"message\":\"Not authorized\"}", SIO_CONNECT_ERROR, "/", -1, 0,
     "{\"message\":\"Not authorized\"}", "", ""},
    {"4/admin,\"Invalid namespace\"", SIO_CONNECT_ERROR, "/admin", -1, 0, "\"Invalid namespace\"",
     "", ""},
    /* Binary types: the attachment count, then as EVENT and ACK. */
    {"51-[\"up\",{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_EVENT, "/", -1, 1,
     "[\"up\",{\"_placeholder\":true,\"num\":0}]", "up", "{\"_placeholder\":true,\"num\":0}"},
    {"52-/files,3[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
     SIO_BINARY_EVENT, "/files", 3, 2,
     "[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", "up",
     "{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}"},
    {"510-[\"x\"]", SIO_BINARY_EVENT, "/", -1, 10, "[\"x\"]", "x", ""},
    {"5001-[\"x\"]", SIO_BINARY_EVENT, "/", -1, 1, "[\"x\"]", "x", ""},
    {"61-9[{\"_placeholder\":true,\"num\":0}]", SIO_BINARY_ACK, "/", 9, 1,
     "[{\"_placeholder\":true,\"num\":0}]", "", "{\"_placeholder\":true,\"num\":0}"},
    {"61-/a,9[]", SIO_BINARY_ACK, "/a", 9, 1, "[]", "", ""},
};

static void check_slice(base_slice got, const char *want, const char *what, const char *in)
{
	if (!base_slice_eq(got, want))
		fail_msg("%s: %s is '%.*s', want '%s'", in, what, (int)got.len, got.base, want);
}

static void test_decode_valid(void **state)
{
	for (size_t i = 0; i < BASE_ARRAY_SIZE(valid_cases); i++) {
		const valid_case *c = &valid_cases[i];
		size_t len = strlen(c->in);
		char *copy = malloc(len); /* exact size, so ASan sees any overread */
		const char *err = NULL;
		sio_packet p;

		memcpy(copy, c->in, len);
		if (sio_packet_decode(copy, len, &p, &err) != 0)
			fail_msg("%s: rejected (%s)", c->in, err);
		assert_int_equal(p.type, c->type);
		check_slice(p.nsp, c->nsp, "nsp", c->in);
		assert_int_equal(p.id, c->id);
		assert_int_equal(p.attachments, c->attachments);
		check_slice(p.data, c->data, "data", c->in);
		check_slice(p.event, c->event, "event", c->in);
		check_slice(p.args, c->args, "args", c->in);
		assert_int_equal(p.event_escaped, strchr(c->event, '\\') != NULL);
		/* Slices point into the input. */
		if (p.data.len > 0)
			assert_true(p.data.base >= copy && p.data.base + p.data.len == copy + len);
		free(copy);
	}
}

typedef struct {
	const char *in;
	const char *why;
} invalid_case;

static const invalid_case invalid_cases[] = {
    {"", "empty"},
    {"7", "unknown type"},
    {"8[\"a\"]", "unknown type"},
    {"9", "unknown type"},
    {"a", "unknown type"},
    {" 0", "whitespace as type (the reference reads Number(' ') as 0)"},
    {"-1", "negative type"},
    {"5", "binary without attachments"},
    {"5-[\"a\"]", "attachments without digits"},
    {"5[\"a\"]", "attachments without '-'"},
    {"51[\"a\"]", "attachments without '-'"},
    {"50-[\"a\"]", "zero attachments"},
    {"511-[\"a\"]", "more than SIO_MAX_ATTACHMENTS"},
    {"599999999999999999999-[\"a\"]", "attachment count overflow"},
    {"5a-[\"a\"]", "attachments not digits"},
    {"5 1-[\"a\"]", "whitespace in attachments"},
    {"5+1-[\"a\"]", "sign in attachments"},
    {"51-", "binary event without data"},
    {"61-", "binary ack without data"},
    {"61-{}", "binary ack not an array"},
    {"21234567890123456[\"a\"]", "16-digit id"},
    {"299999999999999999999999[\"a\"]", "id overflow"},
    {"2", "EVENT without data"},
    {"2/admin", "EVENT without data (namespace to the end)"},
    {"2/admin[\"a\"]", "namespace without comma swallows the data"},
    {"212", "EVENT with only an id"},
    {"2{}", "EVENT not an array"},
    {"2\"a\"", "EVENT not an array"},
    {"2[]", "EVENT with empty array"},
    {"2[1]", "EVENT name a number"},
    {"2[null]", "EVENT name null"},
    {"2[[\"a\"]]", "EVENT name an array"},
    {"2[\"connect\"]", "reserved name"},
    {"2[\"connect_error\"]", "reserved name"},
    {"2[\"disconnect\"]", "reserved name"},
    {"2[\"disconnecting\"]", "reserved name"},
    {"2[\"newListener\"]", "reserved name"},
    {"2[\"removeListener\",1]", "reserved name"},
    {"2[\"\\u0063onnect\"]", "reserved name, escaped"},
    {"2/chat,[\"disconnect\"]", "reserved name with namespace"},
    {"2 [\"a\"]", "whitespace before data (the reference reads it as id 0)"},
    {"2/a, [\"a\"]", "whitespace before data"},
    {"21 [\"a\"]", "whitespace after the id"},
    {"2\n[\"a\"]", "newline before data"},
    {"2[\"a\"", "unterminated array"},
    {"2[\"a]", "unterminated string"},
    {"2[\"a\"]x", "trailing garbage"},
    {"2[\"a\"][]", "two values"},
    {"2[\"a\",]", "trailing comma"},
    {"2[\"a\",", "ends after a comma"},
    {"2[\"a\", ", "ends after a comma and a space"},
    {"2[\"a\",\"", "ends inside the second element"},
    {"2[\"abcdefgh", "ends inside a long string"},
    {"2[\"a\\x\"]", "bad escape"},
    {"2[\"a\\u12\"]", "short \\u escape"},
    {"2[\"a\nb\"]", "raw control character"},
    {"2[\"a\",01]", "leading zero"},
    {"2[\"a\",NaN]", "NaN"},
    {"2['a']", "single quotes"},
    {"3", "ACK without data"},
    {"31", "ACK without data"},
    {"31{}", "ACK not an array"},
    {"31\"x\"", "ACK not an array"},
    {"0[]", "CONNECT with an array"},
    {"0\"x\"", "CONNECT with a string"},
    {"0null", "CONNECT with null"},
    {"0{", "CONNECT with bad JSON"},
    {"1{}", "DISCONNECT with data"},
    {"1/admin,[]", "DISCONNECT with data"},
    {"1\"bye\"", "DISCONNECT with data"},
    {"4", "CONNECT_ERROR without data"},
    {"4[]", "CONNECT_ERROR with an array"},
    {"4null", "CONNECT_ERROR with null"},
    {"4true", "CONNECT_ERROR with a boolean"},
    {"4-1", "CONNECT_ERROR with a number"},
};

static void test_decode_invalid(void **state)
{
	for (size_t i = 0; i < BASE_ARRAY_SIZE(invalid_cases); i++) {
		const invalid_case *c = &invalid_cases[i];
		size_t len = strlen(c->in);
		char *copy = malloc(len ? len : 1);
		const char *err = NULL;
		sio_packet p;

		memcpy(copy, c->in, len);
		if (sio_packet_decode(copy, len, &p, &err) != -1)
			fail_msg("%s: accepted (%s)", c->in, c->why);
		assert_non_null(err);
		free(copy);
	}
}

static void test_decode_deep(void **state)
{
	base_buf b = BASE_BUF_INIT;
	const char *err;
	sio_packet p;

	/* 64 levels in all, the event array included, are accepted; 65 are not. */
	base_buf_append_str(&b, "2[\"deep\",");
	for (int i = 0; i < 63; i++)
		base_buf_append(&b, "[", 1);
	for (int i = 0; i < 63; i++)
		base_buf_append(&b, "]", 1);
	base_buf_append(&b, "]", 1);
	assert_int_equal(sio_packet_decode(b.data, b.len, &p, &err), 0);
	b.len = 0;
	base_buf_append_str(&b, "2[\"deep\",");
	for (int i = 0; i < 64; i++)
		base_buf_append(&b, "{\"a\":", 5);
	base_buf_append(&b, "1", 1);
	for (int i = 0; i < 64; i++)
		base_buf_append(&b, "}", 1);
	base_buf_append(&b, "]", 1);
	assert_int_equal(sio_packet_decode(b.data, b.len, &p, &err), -1);
	/* Very deep input fails fast, without recursion. */
	b.len = 0;
	base_buf_append_str(&b, "2[\"deep\",");
	for (int i = 0; i < 100000; i++)
		base_buf_append(&b, "[", 1);
	assert_int_equal(sio_packet_decode(b.data, b.len, &p, &err), -1);
	base_buf_free(&b);
}

static void test_decode_every_first_byte(void **state)
{
	const char *err;
	sio_packet p;

	for (int c = 0; c < 256; c++) {
		char s[4] = {(char)c, '{', '}'};
		int want = c == '0' || c == '4' ? 0 : -1;

		assert_int_equal(sio_packet_decode(s, 3, &p, &err), want);
	}
}

static void expect_encoded(base_buf *b, const char *want)
{
	if (b->len != strlen(want) || memcmp(b->data, want, b->len) != 0)
		fail_msg("encoded '%.*s', want '%s'", (int)b->len, b->data, want);
	b->len = 0;
}

static void test_encode(void **state)
{
	base_buf b = BASE_BUF_INIT;
	base_slice root = BASE_SLICE_LIT("/"), none = {NULL, 0};

	sio_packet_encode(&b, SIO_CONNECT, root, -1, 0, none);
	expect_encoded(&b, "0");
	sio_packet_encode(&b, SIO_CONNECT, none, -1, 0, BASE_SLICE_LIT("{}"));
	expect_encoded(&b, "0{}");
	sio_packet_encode(&b, SIO_CONNECT, BASE_SLICE_LIT("/admin"), -1, 0,
	                  BASE_SLICE_LIT("{\"sid\":\"x\"}"));
	expect_encoded(&b, "0/admin,{\"sid\":\"x\"}");
	sio_packet_encode(&b, SIO_DISCONNECT, BASE_SLICE_LIT("/admin"), -1, 0, none);
	expect_encoded(&b, "1/admin,");
	sio_packet_encode(&b, SIO_EVENT, root, 0, 0, BASE_SLICE_LIT("[\"a\"]"));
	expect_encoded(&b, "20[\"a\"]");
	sio_packet_encode(&b, SIO_ACK, BASE_SLICE_LIT("/x"), 999999999999999, 0,
	                  BASE_SLICE_LIT("[]"));
	expect_encoded(&b, "3/x,999999999999999[]");
	sio_packet_encode(&b, SIO_BINARY_EVENT, BASE_SLICE_LIT("/x"), 12, 10,
	                  BASE_SLICE_LIT("[\"a\"]"));
	expect_encoded(&b, "510-/x,12[\"a\"]");
	sio_packet_encode(&b, SIO_CONNECT_ERROR, root, -1, 0,
	                  BASE_SLICE_LIT("{\"message\":\"no\"}"));
	expect_encoded(&b, "4{\"message\":\"no\"}");

	/* Appends: what is already in the buffer stays. */
	base_buf_append_str(&b, "keep");
	sio_packet_encode(&b, SIO_DISCONNECT, root, -1, 0, none);
	expect_encoded(&b, "keep1");
	base_buf_free(&b);
}

static void test_encode_event_ack(void **state)
{
	base_buf b = BASE_BUF_INIT;
	base_slice root = BASE_SLICE_LIT("/"), none = {NULL, 0};

	sio_packet_encode_event(&b, root, -1, 0, BASE_SLICE_LIT("message"),
	                        BASE_SLICE_LIT("{\"a\":1},\"hello\""));
	expect_encoded(&b, "2[\"message\",{\"a\":1},\"hello\"]");
	sio_packet_encode_event(&b, BASE_SLICE_LIT("/chat"), 3, 0, BASE_SLICE_LIT("ev"), none);
	expect_encoded(&b, "2/chat,3[\"ev\"]");
	sio_packet_encode_event(&b, root, -1, 0, (base_slice){"a\"b\\c\n\x01\xc3\xa9", 9}, none);
	expect_encoded(&b, "2[\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\"]");
	sio_packet_encode_event(&b, root, -1, 2, BASE_SLICE_LIT("up"),
	                        BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0},"
	                                       "{\"_placeholder\":true,\"num\":1}"));
	expect_encoded(
	    &b, "52-[\"up\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
	sio_packet_encode_ack(&b, root, 4, 0, none);
	expect_encoded(&b, "34[]");
	sio_packet_encode_ack(&b, BASE_SLICE_LIT("/x"), 4, 0, BASE_SLICE_LIT("\"ok\",1"));
	expect_encoded(&b, "3/x,4[\"ok\",1]");
	sio_packet_encode_ack(&b, root, 0, 1, BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0}"));
	expect_encoded(&b, "61-0[{\"_placeholder\":true,\"num\":0}]");
	base_buf_free(&b);
}

static void same_packet(const sio_packet *a, const sio_packet *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->nsp.len, b->nsp.len);
	assert_memory_equal(a->nsp.base, b->nsp.base, a->nsp.len);
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->attachments, b->attachments);
	assert_int_equal(a->data.len, b->data.len);
	if (a->data.len)
		assert_memory_equal(a->data.base, b->data.base, a->data.len);
	assert_int_equal(a->event.len, b->event.len);
	if (a->event.len)
		assert_memory_equal(a->event.base, b->event.base, a->event.len);
	assert_int_equal(a->event_escaped, b->event_escaped);
	assert_int_equal(a->args.len, b->args.len);
	if (a->args.len)
		assert_memory_equal(a->args.base, b->args.base, a->args.len);
}

/* Every valid case survives decode, encode, decode; and re-encoding is stable. */
static void test_roundtrip(void **state)
{
	for (size_t i = 0; i < BASE_ARRAY_SIZE(valid_cases); i++) {
		const char *in = valid_cases[i].in, *err;
		base_buf b1 = BASE_BUF_INIT, b2 = BASE_BUF_INIT;
		sio_packet p1, p2;

		assert_int_equal(sio_packet_decode(in, strlen(in), &p1, &err), 0);
		sio_packet_encode(&b1, p1.type, p1.nsp, p1.id, p1.attachments, p1.data);
		assert_int_equal(sio_packet_decode(b1.data, b1.len, &p2, &err), 0);
		same_packet(&p1, &p2);
		sio_packet_encode(&b2, p2.type, p2.nsp, p2.id, p2.attachments, p2.data);
		assert_int_equal(b1.len, b2.len);
		assert_memory_equal(b1.data, b2.data, b1.len);
		base_buf_free(&b1);
		base_buf_free(&b2);
	}
}

/* encode_event and encode_ack give what decode takes apart again. */
static void test_event_ack_roundtrip(void **state)
{
	static const char *names[] = {
	    "message", "", "with \"quotes\"", "tab\there", "\xc3\xa9t\xc3\xa9", "connect!"};
	static const char *args[] = {"", "1", "{\"a\":[1,2]},\"x\"", "null,true,false"};
	static const char *nsps[] = {"/", "/admin", "/a/b-c"};
	static const int64_t ids[] = {-1, 0, 42, 999999999999999};

	for (size_t n = 0; n < BASE_ARRAY_SIZE(names); n++)
		for (size_t a = 0; a < BASE_ARRAY_SIZE(args); a++)
			for (size_t s = 0; s < BASE_ARRAY_SIZE(nsps); s++)
				for (size_t i = 0; i < BASE_ARRAY_SIZE(ids); i++) {
					base_buf b = BASE_BUF_INIT;
					base_slice nsp = {nsps[s], strlen(nsps[s])};
					base_slice argv = {args[a], strlen(args[a])};
					char name[64];
					const char *err;
					unsigned att = (unsigned)(n % 3);
					sio_packet p;
					ssize_t k;

					sio_packet_encode_event(
					    &b, nsp, ids[i], att,
					    (base_slice){names[n], strlen(names[n])}, argv);
					assert_int_equal(sio_packet_decode(b.data, b.len, &p, &err),
					                 0);
					assert_int_equal(p.type,
					                 att ? SIO_BINARY_EVENT : SIO_EVENT);
					assert_int_equal(p.attachments, att);
					assert_int_equal(p.id, ids[i]);
					assert_true(base_slice_eq(p.nsp, nsps[s]));
					k = sio_json_unescape(p.event.base, p.event.len, name);
					assert_int_equal(k, strlen(names[n]));
					assert_memory_equal(name, names[n], (size_t)k);
					assert_true(base_slice_eq(p.args, args[a]));

					b.len = 0;
					sio_packet_encode_ack(&b, nsp, ids[i], att, argv);
					assert_int_equal(sio_packet_decode(b.data, b.len, &p, &err),
					                 0);
					assert_int_equal(p.type, att ? SIO_BINARY_ACK : SIO_ACK);
					assert_int_equal(p.id, ids[i]);
					assert_true(base_slice_eq(p.args, args[a]));
					base_buf_free(&b);
				}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decode_valid), cmocka_unit_test(test_decode_invalid),
	    cmocka_unit_test(test_decode_deep),  cmocka_unit_test(test_decode_every_first_byte),
	    cmocka_unit_test(test_encode),       cmocka_unit_test(test_encode_event_ack),
	    cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_event_ack_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
