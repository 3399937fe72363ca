/*
 * test_cluster.c: requests across nodes at the Socket.IO level
 * (socketio/cluster.c) with a fake adapter standing for the other nodes:
 * who finishes a request and when, what is copied, how other nodes'
 * serverSideEmit reach the handlers and are answered. The sockets' side
 * (descriptions, acks from real clients) is tested end to end by
 * tests/e2e/cluster.test.js.
 */
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "socketio.h"

static struct {
	uv_loop_t loop;
	http_server *http;
	sio_server *io;
	sio_namespace *nsp;
	/* the fake adapter */
	sio_remote *req;
	int fetch_calls, emit_calls, bcast_calls;
	char packet[256];
	size_t packet_atts;
	/* results */
	int done, err;
	size_t n;
	char texts[8][128];
	size_t n_atts[8];
	char att0[8][32];
	int closed;
} T;

static void fake_fetch(sio_namespace *nsp, const sio_bcast *b, unsigned timeout_ms, sio_remote *req,
                       void *ud)
{
	(void)nsp;
	(void)b;
	(void)ud;
	assert_int_equal(timeout_ms, 5000);
	T.fetch_calls++;
	T.req = req;
}

static void fake_emit(sio_namespace *nsp, base_slice packet, const base_slice *atts, size_t n_atts,
                      unsigned timeout_ms, sio_remote *req, void *ud)
{
	(void)nsp;
	(void)atts;
	(void)timeout_ms;
	(void)ud;
	T.emit_calls++;
	snprintf(T.packet, sizeof(T.packet), "%.*s", (int)packet.len, packet.base);
	T.packet_atts = n_atts;
	T.req = req;
}

static void fake_bcast(sio_namespace *nsp, const sio_bcast *b, base_slice packet,
                       const base_slice *atts, size_t n_atts, unsigned timeout_ms, sio_remote *req,
                       void *ud)
{
	(void)nsp;
	(void)b;
	(void)atts;
	(void)ud;
	assert_int_equal(timeout_ms, 1234);
	T.bcast_calls++;
	snprintf(T.packet, sizeof(T.packet), "%.*s", (int)packet.len, packet.base);
	T.packet_atts = n_atts;
	T.req = req;
}

static void on_closed(void *ud)
{
	(void)ud;
	T.closed = 1;
}

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	assert_int_equal(uv_loop_init(&T.loop), 0);
	T.http = http_server_new(&T.loop, NULL);
	assert_non_null(T.http);
	sio_options o;
	sio_options_default(&o);
	T.io = sio_server_new(T.http, &o);
	assert_non_null(T.io);
	T.nsp = sio_of(T.io, "/");
	sio_adapter ad = {.fetch = fake_fetch, .server_emit = fake_emit, .bcast_ack = fake_bcast};
	sio_set_adapter(T.nsp, &ad);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sio_server_close_all(T.io);
	http_server_close(T.http, on_closed, NULL);
	while (!T.closed)
		uv_run(&T.loop, UV_RUN_ONCE);
	sio_server_free(T.io);
	http_server_free(T.http);
	uv_run(&T.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&T.loop), 0);
	return 0;
}

static void fetched(int err, const sio_socket_desc *v, size_t n, void *ud)
{
	assert_ptr_equal(ud, &T);
	T.done++;
	T.err = err;
	T.n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		snprintf(T.texts[i], sizeof(T.texts[i]), "%s|%.*s|%.*s|%.*s", v[i].id,
		         (int)v[i].handshake.len, v[i].handshake.base, (int)v[i].rooms.len,
		         v[i].rooms.base, (int)v[i].data.len, v[i].data.base);
		assert_null(v[i].socket);
	}
}

static void replied(int err, const sio_value *v, size_t n, void *ud)
{
	assert_ptr_equal(ud, &T);
	T.done++;
	T.err = err;
	T.n = n;
	for (size_t i = 0; i < n && i < 8; i++) {
		snprintf(T.texts[i], sizeof(T.texts[i]), "%.*s", (int)v[i].json.len,
		         v[i].json.base);
		T.n_atts[i] = v[i].n_attachments;
		if (v[i].n_attachments)
			snprintf(T.att0[i], sizeof(T.att0[i]), "%.*s", (int)v[i].attachments[0].len,
			         v[i].attachments[0].base);
	}
}

/* With b->local, or no adapter, only this node answers: at once. */
static void test_fetch_local_only(void **state)
{
	(void)state;
	sio_bcast b;
	sio_bcast_init(&b, T.nsp);
	b.local = 1;
	assert_int_equal(sio_fetch_sockets(&b, 0, fetched, &T), 0);
	assert_int_equal(T.done, 1);
	assert_int_equal(T.err, 0);
	assert_int_equal(T.n, 0);
	assert_int_equal(T.fetch_calls, 0);

	sio_namespace *other = sio_of(T.io, "/other");
	sio_bcast_init(&b, other);
	assert_int_equal(sio_fetch_sockets(&b, 0, fetched, &T), 0);
	assert_int_equal(T.done, 2);
}

/* The adapter answers later; what it gave is copied, its error kept. */
static void test_fetch_remote_later(void **state)
{
	(void)state;
	sio_bcast b;
	sio_bcast_init(&b, T.nsp);
	sio_bcast_to(&b, "room");
	assert_int_equal(sio_fetch_sockets(&b, 0, fetched, &T), 0);
	assert_int_equal(T.fetch_calls, 1);
	assert_int_equal(T.done, 0);
	char id[8] = "r1", hs[16] = "{\"a\":1}";
	sio_socket_desc d[2] = {
	    {id, {hs, strlen(hs)}, BASE_SLICE_LIT("[\"r1\",\"room\"]"), BASE_SLICE_LIT("{}"), NULL},
	    {"r2", BASE_SLICE_LIT("{}"), BASE_SLICE_LIT("[\"r2\"]"), BASE_SLICE_LIT("7"), NULL}};
	sio_remote_add_sockets(T.req, d, 1);
	memset(id, 'x', sizeof(id) - 1); /* copied: the caller's memory may change */
	memset(hs, 'x', sizeof(hs) - 1);
	sio_remote_add_sockets(T.req, d + 1, 1);
	assert_int_equal(T.done, 0);
	sio_remote_done(T.req, SIO_ETIMEDOUT);
	assert_int_equal(T.done, 1);
	assert_int_equal(T.err, SIO_ETIMEDOUT);
	assert_int_equal(T.n, 2);
	assert_string_equal(T.texts[0], "r1|{\"a\":1}|[\"r1\",\"room\"]|{}");
	assert_string_equal(T.texts[1], "r2|{}|[\"r2\"]|7");
}

static void test_server_side_emit(void **state)
{
	(void)state;
	base_slice att = BASE_SLICE_LIT("\x01\x02");
	/* Without a callback: sent, nothing to finish. */
	assert_int_equal(
	    sio_server_side_emit(T.nsp, "ev", BASE_SLICE_LIT("1,\"x\""), NULL, 0, 0, NULL, NULL),
	    0);
	assert_int_equal(T.emit_calls, 1);
	assert_string_equal(T.packet, "[\"ev\",1,\"x\"]");
	assert_null(T.req);

	/* With one: the replies (binary ones too) when the adapter is done. */
	assert_int_equal(sio_server_side_emit(T.nsp, "q\"uote",
	                                      BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0}"),
	                                      &att, 1, 0, replied, &T),
	                 0);
	assert_int_equal(T.emit_calls, 2);
	assert_string_equal(T.packet, "[\"q\\\"uote\",{\"_placeholder\":true,\"num\":0}]");
	assert_int_equal(T.packet_atts, 1);
	assert_non_null(T.req);
	assert_int_equal(T.done, 0);
	sio_value v[2] = {{BASE_SLICE_LIT("{\"node\":\"A\"}"), NULL, 0},
	                  {BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0}"), &att, 1}};
	sio_remote_add_replies(T.req, v, 2);
	sio_remote_done(T.req, 0);
	assert_int_equal(T.done, 1);
	assert_int_equal(T.err, 0);
	assert_int_equal(T.n, 2);
	assert_string_equal(T.texts[0], "{\"node\":\"A\"}");
	assert_int_equal(T.n_atts[0], 0);
	assert_int_equal(T.n_atts[1], 1);
	assert_string_equal(T.att0[1], "\x01\x02");
}

/* The other nodes' serverSideEmit reach the handler of their name, or the catch-all. */
static sio_server_ack *g_ack;
static char g_seen[128];

static void on_hello(const sio_server_event *ev, void *ud)
{
	snprintf(g_seen, sizeof(g_seen), "%s:%.*s:%.*s", (const char *)ud, (int)ev->name.len,
	         ev->name.base, (int)ev->args.len, ev->args.base);
	g_ack = ev->ack;
}

static int g_replies;
static char g_reply[64];

static void reply(void *rctx, const sio_value *v)
{
	assert_ptr_equal(rctx, &g_replies);
	g_replies++;
	snprintf(g_reply, sizeof(g_reply), "%.*s", v ? (int)v->json.len : 4,
	         v ? v->json.base : "NULL");
}

static void test_server_event(void **state)
{
	(void)state;
	assert_int_equal(sio_on_server_side_emit(T.nsp, "hello", on_hello, "h"), 0);
	/* No handler for the name, no catch-all: answered with nothing at once. */
	assert_int_equal(sio_adapter_server_event(T.nsp, BASE_SLICE_LIT("[\"other\",1]"), NULL, 0,
	                                          reply, &g_replies),
	                 0);
	assert_int_equal(g_replies, 1);
	assert_string_equal(g_reply, "NULL");

	/* An escaped name; answered later by the handler. */
	assert_int_equal(sio_adapter_server_event(T.nsp,
	                                          BASE_SLICE_LIT("[\"h\\u0065llo\",{\"a\":[1]}]"),
	                                          NULL, 0, reply, &g_replies),
	                 0);
	assert_string_equal(g_seen, "h:hello:{\"a\":[1]}");
	assert_non_null(g_ack);
	assert_int_equal(g_replies, 1);
	sio_server_ack_send(g_ack, BASE_SLICE_LIT("\"fine\""), NULL, 0);
	assert_int_equal(g_replies, 2);
	assert_string_equal(g_reply, "\"fine\"");

	/* Without a reply wanted: the handler gets no ack. */
	g_ack = (sio_server_ack *)1;
	assert_int_equal(
	    sio_adapter_server_event(T.nsp, BASE_SLICE_LIT("[\"hello\"]"), NULL, 0, NULL, NULL), 0);
	assert_null(g_ack);
	assert_string_equal(g_seen, "h:hello:");

	/* The catch-all takes the rest; a second handler for a name replaces the first. */
	assert_int_equal(sio_on_server_side_emit(T.nsp, NULL, on_hello, "any"), 0);
	assert_int_equal(sio_on_server_side_emit(T.nsp, "hello", on_hello, "h2"), 0);
	assert_int_equal(sio_adapter_server_event(T.nsp, BASE_SLICE_LIT("[\"x\",2]"), NULL, 0,
	                                          reply, &g_replies),
	                 0);
	assert_string_equal(g_seen, "any:x:2");
	sio_server_ack_drop(g_ack);
	assert_int_equal(g_replies, 3);
	assert_string_equal(g_reply, "NULL");
	assert_int_equal(
	    sio_adapter_server_event(T.nsp, BASE_SLICE_LIT("[\"hello\"]"), NULL, 0, NULL, NULL), 0);
	assert_string_equal(g_seen, "h2:hello:");

	/* Not an array with a name first. */
	assert_int_equal(sio_adapter_server_event(T.nsp, BASE_SLICE_LIT("{\"a\":1}"), NULL, 0,
	                                          reply, &g_replies),
	                 SIO_EBAD_ARGS);
	assert_int_equal(
	    sio_adapter_server_event(T.nsp, BASE_SLICE_LIT("[1,2]"), NULL, 0, reply, &g_replies),
	    SIO_EBAD_ARGS);
	assert_int_equal(g_replies, 3);
}

static size_t g_count = 99;
static int g_acks_end;

static void count(void *rctx, size_t n)
{
	assert_ptr_equal(rctx, &g_count);
	g_count = n;
}

static void ack(void *rctx, const sio_value *v)
{
	assert_ptr_equal(rctx, &g_count);
	assert_null(v);
	g_acks_end++;
}

static void test_bcast_ack(void **state)
{
	(void)state;
	sio_bcast b;
	sio_bcast_init(&b, T.nsp);
	assert_int_equal(sio_bcast_emit_ack(&b, "ev", BASE_SLICE_LIT("1"), NULL, 0, 0, replied, &T),
	                 BASE_EINVAL);
	assert_int_equal(T.bcast_calls, 0);
	assert_int_equal(
	    sio_bcast_emit_ack(&b, "ev", BASE_SLICE_LIT("1"), NULL, 0, 1234, replied, &T), 0);
	assert_int_equal(T.bcast_calls, 1);
	assert_string_equal(T.packet, "[\"ev\",1]");
	assert_int_equal(T.done, 0); /* no local socket: the other nodes' part is what is left */
	sio_value v = {BASE_SLICE_LIT("\"c1\""), NULL, 0};
	sio_remote_add_replies(T.req, &v, 1);
	sio_remote_done(T.req, 0);
	assert_int_equal(T.done, 1);
	assert_int_equal(T.n, 1);
	assert_string_equal(T.texts[0], "\"c1\"");

	/* Another node's, with no socket here: counted 0, then finished. */
	sio_bcast_init(&b, T.nsp);
	b.local = 1;
	assert_int_equal(sio_adapter_bcast_ack(&b, BASE_SLICE_LIT("[\"ev\",1]"), NULL, 0, 100,
	                                       count, ack, &g_count),
	                 0);
	assert_int_equal(g_count, 0);
	assert_int_equal(g_acks_end, 1);
	assert_int_equal(
	    sio_adapter_bcast_ack(&b, BASE_SLICE_LIT("[]"), NULL, 0, 100, count, ack, &g_count),
	    SIO_EBAD_ARGS);
	assert_int_equal(g_acks_end, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fetch_local_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fetch_remote_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_side_emit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_event, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bcast_ack, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
