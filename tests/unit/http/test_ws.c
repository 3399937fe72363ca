/*
 * test_ws.c: WebSocket handshake and connection over real sockets.
 *
 * Same harness as test_server.c: the loop on the main thread, a blocking
 * client on a thread, client frames masked by hand with the frame codec.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/http.h"
#include "http/ws_frame.h"

#include "http_harness.h"

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---- WebSocket client pieces --------------------------------------------- */

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char *upgrade_request(const char *path, const char *version)
{
	static _Thread_local char buf[512];

	snprintf(buf, sizeof(buf),
	         "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, "
	         "Upgrade\r\n"
	         "Sec-WebSocket-Key: " RFC_KEY "\r\nSec-WebSocket-Version: %s\r\n\r\n",
	         path, version);
	return buf;
}

/* Builds a client frame: masked unless mask is 0. */
static size_t frame_build(char *out, int fin, unsigned op, const void *data, size_t len, int mask)
{
	static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
	size_t hl = mask ? http_ws_frame_header_masked(out, fin, op, len, key)
	                 : http_ws_frame_header(out, fin, op, len);

	memcpy(out + hl, data, len);
	if (mask)
		http_ws_unmask(out + hl, len, key, 0);
	return hl + len;
}

static int cl_frame_send(cl_t *c, int fin, unsigned op, const void *data, size_t len)
{
	char *buf = malloc(len + HTTP_WS_MAX_HEADER);
	int rc = cl_send(c, buf, frame_build(buf, fin, op, data, len, 1));

	free(buf);
	return rc;
}

typedef struct {
	unsigned op;
	int fin;
	char *data;
	size_t len;
} frame_t;

/* Reads one server frame (unmasked). Returns 0 or -1. */
static int cl_frame(cl_t *c, frame_t *fr)
{
	for (;;) {
		http_ws_frame f;
		const char *err;
		ssize_t h = http_ws_frame_parse(c->buf, c->len, 0, UINT64_MAX >> 1, &f, &err);

		if (h == -1 || (h > 0 && f.masked))
			return -1;
		if (h > 0 && c->len - (size_t)h >= f.payload_len) {
			fr->op = f.opcode;
			fr->fin = (int)f.fin;
			fr->len = (size_t)f.payload_len;
			fr->data = malloc(fr->len + 1);
			memcpy(fr->data, c->buf + h, fr->len);
			fr->data[fr->len] = '\0';
			cl_consume(c, (size_t)h + fr->len);
			return 0;
		}
		if (cl_fill(c) <= 0)
			return -1;
	}
}

/* Expects a close frame with code; then the server closes the TCP connection. */
static void expect_close(cl_t *c, unsigned code, int line)
{
	frame_t fr;

	if (cl_frame(c, &fr) != 0) {
		ck_fail(line, "no close frame");
		return;
	}
	if (fr.op != HTTP_WS_OP_CLOSE || fr.len < 2 ||
	    ((unsigned)(unsigned char)fr.data[0] << 8 | (unsigned char)fr.data[1]) != code)
		ck_fail(line, "wrong close frame");
	free(fr.data);
	if (!cl_wait_close(c))
		ck_fail(line, "connection not closed after close frame");
}

static cl_t *ws_open(void)
{
	cl_t *c = cl_open();
	resp_t r;

	CK(cl_sends(c, upgrade_request("/ws", "13")) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 101);
	resp_free(&r);
	return c;
}

/* ---- server side ---------------------------------------------------------- */

#define MAX_WS 8
static http_ws *g_ws[MAX_WS];
static atomic_int g_closes;
static atomic_int g_last_code;
static char g_last_reason[128];
/* http_ws_get_info of the last connection closed, and its remote address */
static char g_info_path[128], g_info_agent[128], g_info_remote[64];
static int g_after_close_rc;
static base_chunk *g_chunk;
static atomic_int g_queue_full;

static void ws_forget(http_ws *ws)
{
	for (int i = 0; i < MAX_WS; i++) {
		if (g_ws[i] == ws)
			g_ws[i] = NULL;
	}
}

static void on_message(http_ws *ws, int binary, const char *data, size_t len, void *ud)
{
	base_slice part = {data, len};

	(void)ud;
	if (!binary && len == 8 && memcmp(data, "close-me", 8) == 0) {
		http_ws_close(ws, 4000, "bye from server");
		http_ws_close(ws, 4001, "again"); /* harmless */
		g_after_close_rc = http_ws_send(ws, 0, &part, 1);
		return;
	}
	if (!binary && len == 9 && memcmp(data, "broadcast", 9) == 0) {
		/* One encoded frame shared by every connection's queue. */
		char h[HTTP_WS_MAX_HEADER];
		size_t hl = http_ws_frame_header(h, 1, HTTP_WS_OP_TEXT, 4);

		g_chunk = base_chunk_new(hl + 4);
		memcpy(g_chunk->data, h, hl);
		memcpy(g_chunk->data + hl, "news", 4);
		for (int i = 0; i < MAX_WS; i++) {
			if (g_ws[i] != NULL)
				CK(http_ws_send_frames(g_ws[i], g_chunk, 0, hl + 4) == 0);
		}
		return;
	}
	{
		int rc = http_ws_send(ws, binary, &part, 1);

		if (rc == HTTP_EQUEUE_FULL)
			atomic_fetch_add(&g_queue_full, 1);
		else
			CK(rc == 0);
	}
}

static void on_close(http_ws *ws, int code, const char *reason, void *ud)
{
	(void)ud;
	http_ws_info in;
	ws_forget(ws);
	http_ws_get_info(ws, &in);
	snprintf(g_info_path, sizeof(g_info_path), "%s", in.path);
	snprintf(g_info_agent, sizeof(g_info_agent), "%s", in.user_agent);
	snprintf(g_info_remote, sizeof(g_info_remote), "%s", http_ws_remote_addr(ws));
	atomic_store(&g_last_code, code);
	snprintf(g_last_reason, sizeof(g_last_reason), "%s", reason);
	atomic_fetch_add(&g_closes, 1);
}

static const http_ws_callbacks g_cbs = {on_message, on_close};

static void h_ws(http_request *req, void *ud)
{
	http_ws *ws;

	(void)ud;
	ws = http_ws_accept(req, &g_cbs, NULL, "X-Extra: 1\r\n");
	if (ws == NULL)
		return;
	CK(strcmp(http_ws_remote_addr(ws), "127.0.0.1") == 0);
	http_ws_set_data(ws, ws);
	CK(http_ws_data(ws) == ws);
	for (int i = 0; i < MAX_WS; i++) {
		if (g_ws[i] == NULL) {
			g_ws[i] = ws;
			break;
		}
	}
}

static int setup_ws(const http_limits *lim)
{
	setup_limits(lim);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/ws", 0, h_ws, NULL), 0);
	memset(g_ws, 0, sizeof(g_ws));
	atomic_store(&g_closes, 0);
	atomic_store(&g_last_code, 0);
	g_last_reason[0] = '\0';
	g_after_close_rc = 0;
	g_chunk = NULL;
	atomic_store(&g_queue_full, 0);
	return 0;
}

static int setup_default(void **state)
{
	(void)state;
	return setup_ws(NULL);
}

static int setup_small(void **state)
{
	http_limits lim;

	(void)state;
	http_limits_default(&lim);
	lim.ws_max_message = 1000;
	return setup_ws(&lim);
}

static int setup_tight_output(void **state)
{
	http_limits lim;

	(void)state;
	http_limits_default(&lim);
	lim.max_output_bytes = 256 * 1024;
	return setup_ws(&lim);
}

static int teardown(void **state)
{
	(void)state;
	teardown_server();
	base_chunk_unref(g_chunk);
	return 0;
}

/* Runs the loop until on_close has been called n times (or 3 s). */
static void wait_closes(int n)
{
	atomic_int never;

	atomic_store(&never, 0);
	for (int i = 0; i < 300 && atomic_load(&g_closes) < n; i++)
		run_until(&never, 10);
	assert_int_equal(atomic_load(&g_closes), n);
}

/* ---- tests ---------------------------------------------------------------- */

static void c_handshake(void)
{
	cl_t *c = cl_open();
	resp_t r;
	const char *v;

	CK(cl_sends(c, upgrade_request("/ws", "13")) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 101);
	v = resp_header(&r, "Sec-WebSocket-Accept");
	CK(v != NULL && strncmp(v, RFC_ACCEPT "\r\n", 30) == 0);
	v = resp_header(&r, "Upgrade");
	CK(v != NULL && strncasecmp(v, "websocket", 9) == 0);
	CK(resp_header(&r, "X-Extra") != NULL);
	CK(resp_header(&r, "Sec-WebSocket-Extensions") == NULL);
	resp_free(&r);
	cl_close(c);
}

static void test_handshake(void **state)
{
	(void)state;
	run_client(c_handshake);
	wait_closes(1);
	assert_int_equal(atomic_load(&g_last_code), HTTP_WS_CLOSE_ABNORMAL);
}

/* A User-Agent of 200 bytes: the info keeps its first 95 (the access log's). */
static void c_info(void)
{
	cl_t *c = cl_open();
	resp_t r;
	char req[768], ua[201];

	memset(ua, 'u', 200);
	ua[200] = '\0';
	snprintf(req, sizeof(req),
	         "GET /ws?x=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\nUpgrade: websocket\r\n"
	         "Connection: Upgrade\r\nSec-WebSocket-Key: " RFC_KEY
	         "\r\nSec-WebSocket-Version: 13\r\n\r\n",
	         ua);
	CK(cl_sends(c, req) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 101);
	resp_free(&r);
	cl_close(c);
}

static void test_info(void **state)
{
	char want[96];

	(void)state;
	run_client(c_info);
	wait_closes(1);
	assert_string_equal(g_info_path, "/ws");
	memset(want, 'u', 95);
	want[95] = '\0';
	assert_string_equal(g_info_agent, want);
	assert_string_equal(g_info_remote, "127.0.0.1");
	/* Without a User-Agent: "". */
	run_client(c_handshake);
	wait_closes(2);
	assert_string_equal(g_info_path, "/ws");
	assert_string_equal(g_info_agent, "");
}

static void c_bad_handshake(void)
{
	cl_t *c = cl_open();
	resp_t r;
	const char *v;

	CK(cl_sends(c, upgrade_request("/ws", "8")) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 400);
	v = resp_header(&r, "Sec-WebSocket-Version");
	CK(v != NULL && strncmp(v, "13\r\n", 4) == 0);
	resp_free(&r);
	/* The connection stays usable for HTTP. */
	CK(cl_sends(c, "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	               "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 400); /* key is not 16 bytes */
	resp_free(&r);
	CK(cl_sends(c, "GET /ws HTTP/1.1\r\nConnection: close\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 400); /* not an upgrade at all */
	resp_free(&r);
	cl_close(c);
}

static void test_bad_handshake(void **state)
{
	(void)state;
	run_client(c_bad_handshake);
	assert_int_equal(atomic_load(&g_closes), 0);
}

static void c_echo(void)
{
	cl_t *c = ws_open();
	static const unsigned char bin[] = {0x00, 0xff, 0x80, 0x7f, 0x01};
	size_t big_len = 200000;
	char *big = malloc(big_len);
	frame_t fr;

	CK(cl_frame_send(c, 1, HTTP_WS_OP_TEXT, "hello", 5) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_TEXT && fr.fin && fr.len == 5 && memcmp(fr.data, "hello", 5) == 0);
	free(fr.data);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_BINARY, bin, sizeof(bin)) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_BINARY && fr.len == sizeof(bin) &&
	   memcmp(fr.data, bin, sizeof(bin)) == 0);
	free(fr.data);
	/* Empty, then one over 64 KiB (64-bit length, many reads). */
	CK(cl_frame_send(c, 1, HTTP_WS_OP_TEXT, "", 0) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_TEXT && fr.len == 0);
	free(fr.data);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)('a' + i % 26);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_TEXT, big, big_len) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_TEXT && fr.len == big_len && memcmp(fr.data, big, big_len) == 0);
	free(fr.data);
	free(big);
	cl_close(c);
}

static void test_echo(void **state)
{
	(void)state;
	run_client(c_echo);
	wait_closes(1);
}

/* The handshake and the first frames in one write. */
static void c_frames_behind_handshake(void)
{
	cl_t *c = cl_open();
	char buf[1024];
	size_t n = strlen(upgrade_request("/ws", "13"));
	resp_t r;
	frame_t fr;

	memcpy(buf, upgrade_request("/ws", "13"), n);
	n += frame_build(buf + n, 1, HTTP_WS_OP_TEXT, "one", 3, 1);
	n += frame_build(buf + n, 1, HTTP_WS_OP_TEXT, "two", 3, 1);
	CK(cl_send(c, buf, n) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 101);
	resp_free(&r);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.len == 3 && memcmp(fr.data, "one", 3) == 0);
	free(fr.data);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.len == 3 && memcmp(fr.data, "two", 3) == 0);
	free(fr.data);
	cl_close(c);
}

static void test_frames_behind_handshake(void **state)
{
	(void)state;
	run_client(c_frames_behind_handshake);
	wait_closes(1);
}

static void c_fragmented(void)
{
	cl_t *c = ws_open();
	char buf[256];
	size_t n = 0;
	frame_t fr;

	CK(cl_frame_send(c, 0, HTTP_WS_OP_TEXT, "Hel", 3) == 0);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_PING, "p!", 2) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_PONG && fr.len == 2 && memcmp(fr.data, "p!", 2) == 0);
	free(fr.data);
	/* A fragment split over two writes, then the last one. */
	n = frame_build(buf, 0, HTTP_WS_OP_CONT, "lo \xc3", 4, 1);
	CK(cl_send(c, buf, 3) == 0);
	msleep(20);
	CK(cl_send(c, buf + 3, n - 3) == 0);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_CONT, "\xa9t\xc3\xa9", 4) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_TEXT && fr.len == 11 &&
	   memcmp(fr.data, "Hello \xc3\xa9t\xc3\xa9", 11) == 0);
	free(fr.data);
	/* Binary in fragments. */
	CK(cl_frame_send(c, 0, HTTP_WS_OP_BINARY, "\x01", 1) == 0);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_CONT, "\x02", 1) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_BINARY && fr.len == 2 && memcmp(fr.data, "\x01\x02", 2) == 0);
	free(fr.data);
	/* A continuation with no message in progress is a protocol error. */
	CK(cl_frame_send(c, 1, HTTP_WS_OP_CONT, "x", 1) == 0);
	expect_close(c, 1002, __LINE__);
	cl_close(c);
}

static void test_fragmented(void **state)
{
	(void)state;
	run_client(c_fragmented);
	wait_closes(1);
	assert_int_equal(atomic_load(&g_last_code), 1002);
}

static void c_unmasked(void)
{
	cl_t *c = ws_open();
	char buf[64];
	size_t n = frame_build(buf, 1, HTTP_WS_OP_TEXT, "hi", 2, 0);

	CK(cl_send(c, buf, n) == 0);
	expect_close(c, 1002, __LINE__);
	cl_close(c);
}

static void test_unmasked(void **state)
{
	(void)state;
	run_client(c_unmasked);
	wait_closes(1);
	assert_int_equal(atomic_load(&g_last_code), 1002);
}

static void c_bad_utf8(void)
{
	cl_t *c = ws_open();

	CK(cl_frame_send(c, 1, HTTP_WS_OP_TEXT, "ok\xff", 3) == 0);
	expect_close(c, 1007, __LINE__);
	cl_close(c);
	/* Truncated sequence at the end of a fragmented message. */
	c = ws_open();
	CK(cl_frame_send(c, 0, HTTP_WS_OP_TEXT, "ok", 2) == 0);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_CONT, "\xe2\x82", 2) == 0);
	expect_close(c, 1007, __LINE__);
	cl_close(c);
}

static void test_bad_utf8(void **state)
{
	(void)state;
	run_client(c_bad_utf8);
	wait_closes(2);
	assert_int_equal(atomic_load(&g_last_code), 1007);
}

static void c_too_big(void)
{
	cl_t *c = ws_open();
	char *big = calloc(1, 2000);
	frame_t fr;

	/* At the limit is fine. */
	CK(cl_frame_send(c, 1, HTTP_WS_OP_BINARY, big, 1000) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.len == 1000);
	free(fr.data);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_BINARY, big, 2000) == 0);
	expect_close(c, 1009, __LINE__);
	cl_close(c);
	/* Over the limit only once the fragments add up. */
	c = ws_open();
	CK(cl_frame_send(c, 0, HTTP_WS_OP_BINARY, big, 600) == 0);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_CONT, big, 600) == 0);
	expect_close(c, 1009, __LINE__);
	cl_close(c);
	free(big);
}

static void test_too_big(void **state)
{
	(void)state;
	run_client(c_too_big);
	wait_closes(2);
	assert_int_equal(atomic_load(&g_last_code), 1009);
}

static void c_close_handshake(void)
{
	cl_t *c = ws_open();
	frame_t fr;

	CK(cl_frame_send(c, 1, HTTP_WS_OP_CLOSE,
	                 "\x03\xe8"
	                 "bye",
	                 5) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_CLOSE && fr.len == 2 && memcmp(fr.data, "\x03\xe8", 2) == 0);
	free(fr.data);
	CK(cl_wait_close(c));
	cl_close(c);
	/* A close frame with a code not allowed on the wire. */
	c = ws_open();
	CK(cl_frame_send(c, 1, HTTP_WS_OP_CLOSE, "\x03\xed", 2) == 0); /* 1005 */
	expect_close(c, 1002, __LINE__);
	cl_close(c);
}

static void test_close_handshake(void **state)
{
	(void)state;
	run_client(c_close_handshake);
	wait_closes(2);
	assert_int_equal(atomic_load(&g_last_code), 1002);
}

static void c_close_first(void)
{
	cl_t *c = ws_open();
	frame_t fr;

	CK(cl_frame_send(c, 1, HTTP_WS_OP_TEXT, "hi", 2) == 0);
	CK(cl_frame(c, &fr) == 0);
	free(fr.data);
	CK(cl_frame_send(c, 1, HTTP_WS_OP_TEXT, "close-me", 8) == 0);
	CK(cl_frame(c, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_CLOSE && fr.len == 2 + 15 &&
	   memcmp(fr.data,
	          "\x0f\xa0"
	          "bye from server",
	          17) == 0);
	free(fr.data);
	/* Our echo; the server then closes. */
	CK(cl_frame_send(c, 1, HTTP_WS_OP_CLOSE, "\x0f\xa0", 2) == 0);
	CK(cl_wait_close(c));
	cl_close(c);
}

static void test_server_initiated_close(void **state)
{
	(void)state;
	run_client(c_close_first);
	wait_closes(1);
	assert_int_equal(atomic_load(&g_last_code), 4000);
	assert_string_equal(g_last_reason, "bye from server");
	assert_int_equal(g_after_close_rc, BASE_ECLOSED);
}

static void c_broadcast(void)
{
	cl_t *a = ws_open(), *b = ws_open();
	frame_t fr;

	CK(cl_frame_send(a, 1, HTTP_WS_OP_TEXT, "broadcast", 9) == 0);
	CK(cl_frame(a, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_TEXT && fr.len == 4 && memcmp(fr.data, "news", 4) == 0);
	free(fr.data);
	CK(cl_frame(b, &fr) == 0);
	CK(fr.op == HTTP_WS_OP_TEXT && fr.len == 4 && memcmp(fr.data, "news", 4) == 0);
	free(fr.data);
	cl_close(a);
	cl_close(b);
}

static void test_broadcast_chunk(void **state)
{
	(void)state;
	run_client(c_broadcast);
	wait_closes(2);
	/* Both queues let go of their references once written. */
	assert_non_null(g_chunk);
	assert_int_equal(g_chunk->refs, 1);
}

static void c_server_close(void)
{
	cl_t *c = ws_open();

	/* The main thread closes the server; the client sees 1001. */
	expect_close(c, 1001, __LINE__);
	cl_close(c);
}

static void *server_close_thread(void *arg)
{
	(void)arg;
	c_server_close();
	return NULL;
}

static void test_server_close(void **state)
{
	pthread_t th;
	atomic_int never;

	(void)state;
	atomic_store(&never, 0);
	assert_int_equal(pthread_create(&th, NULL, server_close_thread, NULL), 0);
	for (int i = 0; i < 300 && g_ws[0] == NULL; i++)
		run_until(&never, 10);
	assert_non_null(g_ws[0]);
	assert_int_equal(http_server_connections(H.srv), 1);
	assert_int_equal(http_ws_buffered(g_ws[0]), 0);
	teardown_server();
	pthread_join(th, NULL);
	if (atomic_load(&g_failed))
		fail_msg("client: %s", g_fail);
	assert_int_equal(atomic_load(&g_closes), 1);
	assert_int_equal(atomic_load(&g_last_code), 1001);
	setup_default(state);
}

/* A peer that sends and never reads: its echoes pile up until it is dropped. */
static void c_slow_reader(void)
{
	cl_t *c = ws_open();
	size_t n = 512 * 1024;
	char *msg = malloc(n);
	int small = 4096, sent = 0;

	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	memset(msg, 'x', n);
	for (int i = 0; i < 64; i++) {
		if (cl_frame_send(c, 1, HTTP_WS_OP_BINARY, msg, n) != 0)
			break;
		sent++;
	}
	CK(sent < 64); /* the server hung up before all of it went out */
	CK(cl_wait_close(c));
	free(msg);
	cl_close(c);
}

static void test_slow_reader_dropped(void **state)
{
	(void)state;
	run_client(c_slow_reader);
	wait_closes(1);
	assert_true(atomic_load(&g_queue_full) >= 1);
	assert_int_equal(atomic_load(&g_last_code), HTTP_WS_CLOSE_ABNORMAL);
}

/* Random frames: nothing may crash or leak. */
static void c_garbage(void)
{
	unsigned seed = 777;

	for (int i = 0; i < 40; i++) {
		cl_t *c = ws_open();
		char buf[300];
		size_t n = 0;

		while (n < 200) {
			size_t len = rand_r(&seed) % 40;
			char data[40];

			for (size_t k = 0; k < len; k++)
				data[k] = (char)rand_r(&seed);
			n += frame_build(buf + n, rand_r(&seed) % 2, rand_r(&seed) % 11, data, len,
			                 rand_r(&seed) % 8 != 0);
		}
		for (int m = 0; m < 3; m++)
			buf[rand_r(&seed) % n] = (char)rand_r(&seed);
		cl_send(c, buf, n);
		cl_wait_close(c);
		cl_close(c);
	}
}

static void test_garbage(void **state)
{
	(void)state;
	run_client(c_garbage);
	wait_closes(40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_handshake, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_handshake, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_info, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_echo, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_frames_behind_handshake, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_fragmented, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_unmasked, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_utf8, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_too_big, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_close_handshake, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_server_initiated_close, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_broadcast_chunk, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_server_close, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_reader_dropped, setup_tight_output, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup_default, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
