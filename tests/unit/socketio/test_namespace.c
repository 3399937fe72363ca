/*
 * Tests socketio/namespace.c over real WebSocket connections: middlewares
 * (refusing with data, and going on later from a timer), dynamic namespaces
 * by pattern and by function, the order of the catch-all and named
 * handlers, the disconnect reasons, the handshake accessors, and the event
 * rate limit set per namespace.
 */
#include "sio_harness.h"

static struct {
	int any_before_named, named, any, any_pending;
	char reasons[4][64];
	int n_reasons;
	int setups;
	char auth[64], query[64], header[16];
	int connections;
	uv_timer_t later;
	sio_socket *waiting;
} S;

/* ---- middlewares ----------------------------------------------------------- */

static void later_cb(uv_timer_t *t)
{
	(void)t;
	sio_next(S.waiting);
}

static void gate(sio_socket *s, void *ud)
{
	(void)ud;
	base_slice auth = sio_handshake_auth(s);
	if (auth.len >= 6 && memmem(auth.base, auth.len, "\"no\"", 4)) {
		sio_refuse(s, "not \"you\"", "{\"code\":7}");
		return;
	}
	if (memmem(auth.base, auth.len, "\"later\"", 7)) {
		/* Goes on from another loop turn, as after a database lookup. */
		S.waiting = s;
		uv_timer_start(&S.later, later_cb, 1, 0);
		return;
	}
	sio_next(s);
}

static void on_connection(sio_socket *s, void *ud)
{
	(void)ud;
	S.connections++;
	base_slice a = sio_handshake_auth(s), q = sio_handshake_query(s);
	const base_slice *h = sio_handshake_header(s, "x-TEST");
	snprintf(S.auth, sizeof(S.auth), "%.*s", (int)a.len, a.base);
	snprintf(S.query, sizeof(S.query), "%.*s", (int)q.len, q.base);
	snprintf(S.header, sizeof(S.header), "%.*s", h ? (int)h->len : 0, h ? h->base : "");
	assert_null(
	    sio_handshake_header(s, "upgrade")); /* the WebSocket handshake's own: not kept */
	assert_true(sio_handshake_time(s) > 0);
	assert_true(sio_socket_connected(s) && sio_socket_alive(s));
}

static void client_middlewares(void)
{
	char reply[512];
	cl_t *c = sio_connect("0/gate,{\"who\":\"no\"}", reply, sizeof(reply));
	CK(strcmp(reply, "4/gate,{\"message\":\"not \\\"you\\\"\",\"data\":{\"code\":7}}") == 0);
	cl_close(c);
	c = ws_open("&k=v");
	char msg[512];
	ws_text(c, "0/gate,{\"who\":\"later\"}");
	const char *r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strncmp(r, "0/gate,{\"sid\":", 14) == 0);
	cl_close(c);
}

static void test_middlewares(void **state)
{
	(void)state;
	memset(&S, 0, sizeof(S));
	io_start(NULL);
	uv_timer_init(&H.loop, &S.later);
	sio_namespace *nsp = sio_of(g_io, "/gate");
	sio_use(nsp, gate, NULL);
	sio_on_connection(nsp, on_connection, NULL);
	run_client(client_middlewares);
	assert_int_equal(S.connections, 1);
	assert_string_equal(S.auth, "{\"who\":\"later\"}");
	assert_string_equal(S.query, "EIO=4&transport=websocket&k=v");
	assert_string_equal(S.header, "yes");
	uv_close((uv_handle_t *)&S.later, NULL);
	io_stop();
}

/* ---- dynamic namespaces ------------------------------------------------------ */

static int match_fn(const char *name, void *ud)
{
	(void)ud;
	return strcmp(name, "/by-fn") == 0;
}

static void setup_dyn(sio_namespace *nsp, void *ud)
{
	(void)ud;
	S.setups++;
	sio_on_connection(nsp, on_connection, NULL);
}

static void client_dynamic(void)
{
	char reply[512];
	cl_t *c = sio_connect("0/dyn-1,", reply, sizeof(reply));
	CK(strncmp(reply, "0/dyn-1,{\"sid\":", 15) == 0);
	ws_text(c, "0/by-fn,");
	const char *r = ws_next_text(c, reply, sizeof(reply));
	CK(r && strncmp(r, "0/by-fn,{\"sid\":", 15) == 0);
	ws_text(c, "0/other,");
	r = ws_next_text(c, reply, sizeof(reply));
	CK(r && strcmp(r, "4/other,{\"message\":\"Invalid namespace\"}") == 0);
	cl_close(c);
	/* The second CONNECT to /dyn-1 finds the namespace made by the first. */
	c = sio_connect("0/dyn-1,", reply, sizeof(reply));
	CK(strncmp(reply, "0/dyn-1,{\"sid\":", 15) == 0);
	cl_close(c);
}

static void test_dynamic(void **state)
{
	(void)state;
	memset(&S, 0, sizeof(S));
	io_start(NULL);
	assert_int_equal(sio_dynamic(g_io, "/dyn-*", NULL, setup_dyn, NULL), 0);
	assert_int_equal(sio_dynamic(g_io, NULL, match_fn, setup_dyn, NULL), 0);
	assert_null(sio_find(g_io, "/dyn-1", 6));
	run_client(client_dynamic);
	assert_int_equal(S.setups, 2);
	assert_int_equal(S.connections, 3);
	assert_non_null(sio_find(g_io, "/dyn-1", 6));
	assert_null(sio_find(g_io, "/other", 6));
	io_stop();
}

/* ---- handlers and disconnects -------------------------------------------------- */

static void on_any(const sio_event *ev, void *ud)
{
	(void)ev;
	(void)ud;
	S.any++;
	S.any_pending = 1;
}

static void on_named(const sio_event *ev, void *ud)
{
	(void)ud;
	S.named++;
	if (S.any_pending)
		S.any_before_named++; /* the catch-all heard this event first */
	S.any_pending = 0;
	if (ev->args.len == 4 && memcmp(ev->args.base, "\"me\"", 4) == 0)
		sio_disconnect(ev->socket);
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
	(void)ud;
	assert_false(sio_socket_connected(s));
	if (S.n_reasons < 4)
		snprintf(S.reasons[S.n_reasons++], sizeof(S.reasons[0]), "%s", reason);
}

static void client_handlers(void)
{
	char msg[512];
	cl_t *c = sio_connect("0", NULL, 0);
	ws_text(c, "2[\"ev\",1]");
	ws_text(c, "2[\"unknown\"]");
	ws_text(c, "2[\"e\\u0076\",2]"); /* an escaped name reaches the same handler */
	ws_text(c, "1");                 /* client namespace disconnect */
	ws_text(c, "0");
	CK(ws_next_text(c, msg, sizeof(msg)) != NULL);
	ws_text(c, "2[\"ev\",\"me\"]"); /* server namespace disconnect */
	const char *r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "1") == 0);
	cl_close(c); /* transport close */
}

static void test_handlers_and_disconnects(void **state)
{
	(void)state;
	memset(&S, 0, sizeof(S));
	io_start(NULL);
	sio_namespace *nsp = sio_of(g_io, "/");
	sio_on(nsp, "ev", on_named, NULL);
	sio_on_any(nsp, on_any, NULL);
	sio_on_disconnect(nsp, on_disconnect, NULL);
	run_client(client_handlers);
	assert_int_equal(S.any, 4);
	assert_int_equal(S.named, 3);
	assert_int_equal(S.any_before_named, 3);
	assert_int_equal(S.n_reasons, 2);
	assert_string_equal(S.reasons[0], "client namespace disconnect");
	assert_string_equal(S.reasons[1], "server namespace disconnect");
	io_stop();
}

/* ---- event rate limit ------------------------------------------------------------ */

static void client_flood(void)
{
	char msg[512];
	cl_t *c = sio_connect("0", NULL, 0);
	ws_text(c, "0/slow,");
	CK(ws_next_text(c, msg, sizeof(msg)) != NULL);
	for (int i = 0; i < 5; i++)
		ws_text(c, "2/slow,[\"ev\"]");
	/*
	 * "/" has no limit: its ack comes after the server has read every event
	 * above (one connection's packets are handled in order), and shows the
	 * connection stayed (no drop limit).
	 */
	ws_text(c, "21[\"sync\"]");
	const char *r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "31[]") == 0);
	cl_close(c);
}

static void on_slow(const sio_event *ev, void *ud)
{
	(void)ev;
	(void)ud;
	S.named++;
}

static void on_sync(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_ack(ev->socket, ev->ack_id, (base_slice){NULL, 0}, NULL, 0);
}

static void test_event_limit(void **state)
{
	(void)state;
	memset(&S, 0, sizeof(S));
	io_start(NULL);
	sio_on(sio_of(g_io, "/"), "sync", on_sync, NULL);
	sio_namespace *nsp = sio_of(g_io, "/slow");
	/* A burst of two, then one per second: of five at once, three are dropped. */
	sio_namespace_event_limit(nsp, 1, 2, 0);
	sio_on(nsp, "ev", on_slow, NULL);
	run_client(client_flood);
	assert_int_equal(S.named, 2);
	assert_int_equal(sio_server_events_dropped(g_io), 3);
	assert_int_equal(sio_server_flood_closes(g_io), 0);
	io_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_middlewares),
	    cmocka_unit_test(test_dynamic),
	    cmocka_unit_test(test_handlers_and_disconnects),
	    cmocka_unit_test(test_event_limit),
	};
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
