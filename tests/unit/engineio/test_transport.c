/*
 * test_transport.c: an Engine.IO session over real sockets, through both
 * transports and the upgrade, seen from a client written by hand.
 *
 * What it pins down: the one outgoing queue (messages sent before a
 * transport can take them wait in order; a polling answer carries at most
 * polling_max_packets of them; binary goes as base64 over polling and as a
 * binary frame over WebSocket), the upgrade handing the queue to the
 * WebSocket (packets queued while polling leave as frames, in order), the
 * transport operations (eio_socket_transport, stats), closing a socket from
 * inside its own callback, the output cap, and admission (max_sessions).
 *
 * The loop and the server run on the main thread, the client on a thread
 * (tests/unit/http/http_harness.h); server-side observations are checked
 * on the main thread after the client is done.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "engineio.h"
#include "http/ws_frame.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../http/http_harness.h"
#pragma GCC diagnostic pop

/* ---- server side (loop thread) ------------------------------------------- */

#define N_BURST 20 /* text messages sent on "go", then one binary */

static struct {
	eio_server *eio;
	eio_socket *sock;
	int connections;
	int closes;
	int close_inside_callback; /* on_close ran while a callback of ours was running */
	int in_cb;
	eio_close_reason reason;
	char transport_at_connect[16];
	char transport_at_go[16];
	int send_rc_over_cap;
} E;

static atomic_int g_on_close;

static void send_burst(eio_socket *s)
{
	char msg[32];
	for (int i = 0; i < N_BURST; i++) {
		int n = snprintf(msg, sizeof(msg), "m%d", i);
		eio_socket_send(s, 0, msg, (size_t)n);
	}
	static const char bin[4] = {0, 1, 2, (char)0xff};
	eio_socket_send(s, 1, bin, sizeof(bin));
}

static void on_connection(eio_socket *s, const http_request *req, void *ud)
{
	(void)req;
	(void)ud;
	E.in_cb++;
	E.sock = s;
	E.connections++;
	snprintf(E.transport_at_connect, sizeof(E.transport_at_connect), "%s",
	         eio_socket_transport(s));
	/* Sent before the transport can take it: waits behind the open packet. */
	eio_socket_send(s, 0, "hello", 5);
	E.in_cb--;
}

static void on_message(eio_socket *s, int binary, const char *data, size_t len, void *ud)
{
	(void)ud;
	(void)binary;
	E.in_cb++;
	base_slice m = {data, len};
	if (base_slice_eq(m, "go")) {
		snprintf(E.transport_at_go, sizeof(E.transport_at_go), "%s",
		         eio_socket_transport(s));
		send_burst(s);
	} else if (base_slice_eq(m, "close")) {
		eio_socket_close(s);
		/* Closed for sending at once, and on_close has not run yet. */
		if (eio_socket_send(s, 0, "late", 4) != BASE_ECLOSED || E.closes)
			E.close_inside_callback = 1;
	} else if (base_slice_eq(m, "flood")) {
		char big[600];
		memset(big, 'x', sizeof(big));
		E.send_rc_over_cap = 0;
		for (int i = 0; i < 4 && !E.send_rc_over_cap; i++)
			E.send_rc_over_cap = eio_socket_send(s, 0, big, sizeof(big));
	}
	E.in_cb--;
}

static void on_close(eio_socket *s, eio_close_reason reason, void *ud)
{
	(void)s;
	(void)ud;
	if (E.in_cb)
		E.close_inside_callback = 1;
	E.closes++;
	E.reason = reason;
	atomic_store(&g_on_close, 1);
	E.sock = NULL;
}

static void server_start(void (*tune)(eio_options *))
{
	http_limits l;
	http_limits_default(&l);
	setup_limits(&l);
	memset(&E, 0, sizeof(E));
	atomic_store(&g_on_close, 0);
	eio_options o;
	eio_options_default(&o);
	o.http_compression = 0;
	if (tune)
		tune(&o);
	eio_callbacks cb = {
	    .on_connection = on_connection, .on_message = on_message, .on_close = on_close};
	E.eio = eio_server_new(H.srv, &o, &cb);
	assert_non_null(E.eio);
}

/* The Engine.IO server goes first (its handles close while the HTTP server closes). */
static void server_stop(void)
{
	eio_server_free(E.eio);
	teardown_server();
}

/* ---- client side (client thread) ----------------------------------------- */

static char g_sid[32];

/* One request to /engine.io/?EIO=4&query on a fresh connection. */
static int request(const char *method, const char *query, const char *body, resp_t *r)
{
	char target[256];
	snprintf(target, sizeof(target), "/engine.io/?EIO=4&%s", query);
	return cl_request(method, target, NULL, body, r);
}

static void poll_get(resp_t *r)
{
	char q[96];
	snprintf(q, sizeof(q), "transport=polling&sid=%s", g_sid);
	CK(request("GET", q, NULL, r) == 0 && r->status == 200);
}

static void poll_post(const char *body)
{
	char q[96];
	resp_t r = {0};
	snprintf(q, sizeof(q), "transport=polling&sid=%s", g_sid);
	CK(request("POST", q, body, &r) == 0 && r.status == 200);
	resp_free(&r);
}

/* Polling handshake: remembers the sid; the answer holds the open packet. */
static void poll_open(resp_t *r)
{
	CK(request("GET", "transport=polling", NULL, r) == 0 && r->status == 200);
	const char *p = strstr(r->body ? r->body : "", "\"sid\":\"");
	CK(r->body && r->body[0] == '0' && p);
	if (p)
		snprintf(g_sid, sizeof(g_sid), "%.20s", p + 7);
}

static size_t count_packets(const char *body, size_t len)
{
	size_t n = len ? 1 : 0;
	for (size_t i = 0; i < len; i++)
		n += body[i] == '\x1e';
	return n;
}

static int ws_send_text(cl_t *c, const char *text)
{
	static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
	size_t len = strlen(text);
	char buf[256];
	size_t hl = http_ws_frame_header_masked(buf, 1, HTTP_WS_OP_TEXT, len, key);
	memcpy(buf + hl, text, len);
	http_ws_unmask(buf + hl, len, key, 0);
	return cl_send(c, buf, hl + len);
}

/* The next data frame (NUL-terminated in out); its opcode, or -1 on close/EOF. */
static int ws_recv(cl_t *c, char *out, size_t cap, size_t *len_out)
{
	for (;;) {
		while (c->len < 2)
			if (cl_fill(c) <= 0)
				return -1;
		unsigned char *p = (unsigned char *)c->buf;
		unsigned op = p[0] & 0x0f;
		size_t hl = 2, len = p[1] & 0x7f;
		if (len >= 126)
			return -1; /* no long frames in these tests */
		while (c->len < hl + len)
			if (cl_fill(c) <= 0)
				return -1;
		if (op == HTTP_WS_OP_CLOSE)
			return -1;
		size_t n = len < cap - 1 ? len : cap - 1;
		memcpy(out, c->buf + hl, n);
		out[n] = 0;
		if (len_out)
			*len_out = n;
		cl_consume(c, hl + len);
		if (op == HTTP_WS_OP_TEXT || op == HTTP_WS_OP_BINARY)
			return (int)op;
	}
}

static cl_t *ws_connect(const char *query)
{
	char head[512];
	cl_t *c = cl_open();
	snprintf(head, sizeof(head),
	         "GET /engine.io/?EIO=4&%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
	         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	         "Sec-WebSocket-Version: 13\r\n\r\n",
	         query);
	cl_sends(c, head);
	char *end;
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (cl_fill(c) <= 0) {
			ck_fail(__LINE__, "no handshake answer");
			return c;
		}
	CK(c->len > 12 && memcmp(c->buf, "HTTP/1.1 101", 12) == 0);
	cl_consume(c, (size_t)(end + 4 - c->buf));
	return c;
}

/* Expects the burst of send_burst over a WebSocket: N_BURST texts, then binary. */
static void ws_expect_burst(cl_t *c)
{
	char msg[256], want[32];
	size_t n;
	for (int i = 0; i < N_BURST; i++) {
		snprintf(want, sizeof(want), "4m%d", i);
		CK(ws_recv(c, msg, sizeof(msg), NULL) == HTTP_WS_OP_TEXT && strcmp(msg, want) == 0);
	}
	CK(ws_recv(c, msg, sizeof(msg), &n) == HTTP_WS_OP_BINARY && n == 4 && msg[3] == (char)0xff);
}

/* ---- 1. polling: the queue drained at most polling_max_packets at a time -- */

static void c_polling(void)
{
	resp_t r = {0};
	poll_open(&r);
	/* The open packet and what on_connection sent, in that order. */
	CK(r.body && strstr(r.body, "\x1e"
	                            "4hello") != NULL);
	resp_free(&r);
	poll_post("4go");
	poll_get(&r);
	CK(count_packets(r.body, r.body_len) == 16);
	CK(strncmp(r.body, "4m0\x1e", 4) == 0);
	resp_free(&r);
	poll_get(&r);
	/* The rest: m16..m19 and the binary message as base64. */
	CK(count_packets(r.body, r.body_len) == N_BURST - 16 + 1);
	CK(strncmp(r.body, "4m16\x1e", 5) == 0);
	CK(strstr(r.body, "\x1e"
	                  "bAAEC/w==") != NULL);
	resp_free(&r);
}

static void test_polling_queue_and_cap(void **state)
{
	(void)state;
	server_start(NULL);
	run_client(c_polling);
	assert_int_equal(E.connections, 1);
	assert_string_equal(E.transport_at_connect, "polling");
	assert_string_equal(E.transport_at_go, "polling");
	eio_stats st;
	eio_server_get_stats(E.eio, &st);
	assert_int_equal(st.opened[0], 1);
	assert_int_equal(st.open[0], 1);
	server_stop();
}

/* ---- 2. WebSocket from the start: what was queued before the accept -------- */

static void c_websocket(void)
{
	char msg[256];
	cl_t *c = ws_connect("transport=websocket");
	CK(ws_recv(c, msg, sizeof(msg), NULL) == HTTP_WS_OP_TEXT && msg[0] == '0');
	CK(ws_recv(c, msg, sizeof(msg), NULL) == HTTP_WS_OP_TEXT && strcmp(msg, "4hello") == 0);
	ws_send_text(c, "4go");
	ws_expect_burst(c);
	cl_close(c);
}

static void test_websocket_queue(void **state)
{
	(void)state;
	server_start(NULL);
	run_client(c_websocket);
	assert_string_equal(E.transport_at_connect, "websocket");
	assert_string_equal(E.transport_at_go, "websocket");
	server_stop();
}

/* ---- 3. the upgrade hands the queue to the WebSocket ----------------------- */

/*
 * The probe, then a burst queued while no GET waits; "5" completes the
 * upgrade and the burst leaves as WebSocket frames. Polling the sid after
 * that is refused (400), and the session goes on over the WebSocket.
 */
static void c_upgrade(void)
{
	resp_t r = {0};
	char q[96], msg[256];
	poll_open(&r);
	resp_free(&r);
	snprintf(q, sizeof(q), "transport=websocket&sid=%s", g_sid);
	cl_t *c = ws_connect(q);
	ws_send_text(c, "2probe");
	CK(ws_recv(c, msg, sizeof(msg), NULL) == HTTP_WS_OP_TEXT && strcmp(msg, "3probe") == 0);
	poll_post("4go");
	ws_send_text(c, "5");
	ws_expect_burst(c);
	snprintf(q, sizeof(q), "transport=polling&sid=%s", g_sid);
	CK(request("GET", q, NULL, &r) == 0 && r.status == 400);
	resp_free(&r);
	/* The session goes on over the WebSocket. */
	ws_send_text(c, "4go");
	ws_expect_burst(c);
	cl_close(c);
}

static void test_upgrade_moves_the_queue(void **state)
{
	(void)state;
	server_start(NULL);
	run_client(c_upgrade);
	assert_string_equal(E.transport_at_go, "websocket");
	eio_stats st;
	eio_server_get_stats(E.eio, &st);
	assert_int_equal(st.upgrades, 1);
	assert_int_equal(st.opened[0], 1);
	server_stop();
}

/* ---- 4. closing a socket from inside its own callback ---------------------- */

static void c_close_inside(void)
{
	resp_t r = {0};
	poll_open(&r);
	resp_free(&r);
	poll_post("4close");
	/* The close packet waits for the next GET (a server close lingers for it). */
	poll_get(&r);
	CK(r.body && r.body_len == 1 && r.body[0] == '1');
	resp_free(&r);
}

static void test_close_from_own_callback(void **state)
{
	(void)state;
	server_start(NULL);
	run_client(c_close_inside);
	assert_int_equal(E.closes, 1);
	assert_int_equal(E.reason, EIO_CLOSE_SERVER_CLOSE);
	assert_int_equal(E.close_inside_callback, 0);
	server_stop();
}

/* ---- 5. the output cap drops a session that does not collect -------------- */

static void tune_small_buffer(eio_options *o)
{
	o->max_buffered = 1000;
}

static void c_flood(void)
{
	resp_t r = {0};
	poll_open(&r);
	resp_free(&r);
	poll_post("4flood");
}

static void test_output_cap(void **state)
{
	(void)state;
	server_start(tune_small_buffer);
	run_client(c_flood);
	/* The close runs at the end of the turn that passed the cap. */
	assert_true(run_until(&g_on_close, 5000));
	assert_int_equal(E.send_rc_over_cap, BASE_ELIMIT);
	assert_int_equal(E.closes, 1);
	assert_int_equal(E.reason, EIO_CLOSE_TRANSPORT_ERROR);
	server_stop();
}

/* ---- 6. admission: max_sessions ------------------------------------------- */

static void tune_one_session(eio_options *o)
{
	o->max_sessions = 1;
}

static void c_admission(void)
{
	resp_t r = {0};
	poll_open(&r);
	resp_free(&r);
	CK(request("GET", "transport=polling", NULL, &r) == 0 && r.status == 403);
	CK(r.body && strstr(r.body, "Too many sessions") != NULL);
	resp_free(&r);
}

static void test_admission_max_sessions(void **state)
{
	(void)state;
	server_start(tune_one_session);
	run_client(c_admission);
	assert_int_equal(E.connections, 1);
	assert_int_equal(eio_server_clients(E.eio), 1);
	server_stop();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_polling_queue_and_cap),
	    cmocka_unit_test(test_websocket_queue),
	    cmocka_unit_test(test_upgrade_moves_the_queue),
	    cmocka_unit_test(test_close_from_own_callback),
	    cmocka_unit_test(test_output_cap),
	    cmocka_unit_test(test_admission_max_sessions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
