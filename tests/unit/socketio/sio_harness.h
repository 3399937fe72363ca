/*
 * sio_harness.h: a Socket.IO server on the loop thread and raw WebSocket
 * clients on a client thread, for the tests of socketio/ files that need
 * real connections (test_server.c, test_emit.c, test_namespace.c,
 * test_recovery.c, test_broadcast.c, test_rooms.c). Built on tests/unit/http/http_harness.h.
 * Included once per test program.
 *
 * Server state lives in the test's own variables and is read by the test
 * function after run_client has joined the client thread.
 */
#ifndef TESTS_SIO_HARNESS_H
#define TESTS_SIO_HARNESS_H

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
#include "socketio.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../http/http_harness.h"
#pragma GCC diagnostic pop

/* ---- server (loop thread) ------------------------------------------------ */

static sio_server *g_io;

/* Starts a server with HTTP limits lim and options o (NULL: the defaults). */
static inline void io_start_limits(const http_limits *lim, const sio_options *o)
{
	http_limits l;
	sio_options d;
	http_limits_default(&l);
	setup_limits(lim ? lim : &l);
	if (!o) {
		sio_options_default(&d);
		o = &d;
	}
	g_io = sio_server_new(H.srv, o);
	assert_non_null(g_io);
}

static inline void io_start(const sio_options *o)
{
	io_start_limits(NULL, o);
}

static inline void io_stop(void)
{
	sio_server_close_all(g_io);
	atomic_store(&g_closed, 0);
	http_server_close(H.srv, on_server_closed, NULL);
	assert_true(run_until(&g_closed, 5000));
	sio_server_free(g_io);
	g_io = NULL;
	http_server_free(H.srv);
	uv_close((uv_handle_t *)&H.wake, NULL);
	uv_close((uv_handle_t *)&H.tick, NULL);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&H.loop), 0);
}

/* ---- client (client thread) ---------------------------------------------- */

static inline int ws_send(cl_t *c, unsigned op, const void *data, size_t len)
{
	static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
	char *buf = malloc(len + HTTP_WS_MAX_HEADER);
	size_t hl = http_ws_frame_header_masked(buf, 1, op, len, key);
	memcpy(buf + hl, data, len);
	http_ws_unmask(buf + hl, len, key, 0);
	int rc = cl_send(c, buf, hl + len);
	free(buf);
	return rc;
}

/* Sends one text frame: an Engine.IO packet as given ("42[...]"). */
static inline int ws_send_text(cl_t *c, const char *text)
{
	return ws_send(c, HTTP_WS_OP_TEXT, text, strlen(text));
}

/* Sends an Engine.IO message carrying a Socket.IO text packet ("4" + text). */
static inline int ws_text(cl_t *c, const char *sio_text)
{
	size_t n = strlen(sio_text);
	char *b = malloc(n + 1);
	b[0] = '4';
	memcpy(b + 1, sio_text, n);
	int rc = ws_send(c, HTTP_WS_OP_TEXT, b, n + 1);
	free(b);
	return rc;
}

static inline int ws_binary(cl_t *c, const void *data, size_t len)
{
	return ws_send(c, HTTP_WS_OP_BINARY, data, len);
}

/*
 * Reads the next data frame into out (NUL-terminated, cut to cap); *binary
 * says its kind. Engine.IO pings are answered and skipped. Returns the
 * length, or -1 on a close frame, EOF or timeout (5 s without a byte).
 */
static inline ssize_t ws_recv(cl_t *c, int *binary, char *out, size_t cap)
{
	for (;;) {
		while (c->len < 2)
			if (cl_fill(c) <= 0)
				return -1;
		unsigned char *p = (unsigned char *)c->buf;
		unsigned op = p[0] & 0x0f;
		size_t hl = 2, len = p[1] & 0x7f;
		if (len == 126)
			hl = 4;
		else if (len == 127)
			hl = 10;
		while (c->len < hl)
			if (cl_fill(c) <= 0)
				return -1;
		p = (unsigned char *)c->buf;
		if (hl == 4)
			len = (size_t)p[2] << 8 | p[3];
		else if (hl == 10)
			for (int i = 0; i < 8; i++)
				len = (i ? len << 8 : 0) | p[2 + i];
		while (c->len < hl + len)
			if (cl_fill(c) <= 0)
				return -1;
		if (op == HTTP_WS_OP_CLOSE)
			return -1;
		size_t n = len < cap - 1 ? len : cap - 1;
		memcpy(out, c->buf + hl, n);
		out[n] = 0;
		cl_consume(c, hl + len);
		if (op == HTTP_WS_OP_TEXT && n == 1 && out[0] == '2') {
			ws_send(c, HTTP_WS_OP_TEXT, "3", 1);
			continue;
		}
		if (op == HTTP_WS_OP_TEXT || op == HTTP_WS_OP_BINARY) {
			if (binary)
				*binary = op == HTTP_WS_OP_BINARY;
			return (ssize_t)n;
		}
	}
}

/* The next text message, without its Engine.IO "4": a Socket.IO packet. */
static inline const char *ws_next_text(cl_t *c, char *out, size_t cap)
{
	int bin = 0;
	ssize_t n = ws_recv(c, &bin, out, cap);
	if (n < 1 || bin || out[0] != '4')
		return NULL;
	return out + 1;
}

/* 1 when the server ends the connection (a close frame, EOF) before sending more data. */
static inline int ws_closed(cl_t *c)
{
	char buf[4096];
	for (;;) {
		int bin;
		ssize_t n = ws_recv(c, &bin, buf, sizeof(buf));
		if (n < 0)
			return 1;
		/* An Engine.IO close or noop, or a Socket.IO DISCONNECT, may come first. */
		if (!bin && (buf[0] == '1' || buf[0] == '6' || strncmp(buf, "41", 2) == 0))
			continue;
		return 0;
	}
}

/*
 * Opens a WebSocket Engine.IO session (query appended to the URL; rcvbuf > 0:
 * a small fixed receive window); reads the open packet.
 */
static inline cl_t *ws_open_rcvbuf(int rcvbuf, const char *query)
{
	cl_t *c = cl_open_rcvbuf(rcvbuf);
	char req[1024];
	snprintf(req, sizeof(req),
	         "GET /socket.io/?EIO=4&transport=websocket%s HTTP/1.1\r\nHost: x\r\n"
	         "X-Test: yes\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	         query ? query : "");
	cl_sends(c, req);
	char *end;
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (cl_fill(c) <= 0) {
			ck_fail(__LINE__, "no handshake answer");
			return c;
		}
	CK(c->len > 12 && memcmp(c->buf, "HTTP/1.1 101", 12) == 0);
	cl_consume(c, (size_t)(end + 4 - c->buf));
	char msg[512];
	int bin;
	CK(ws_recv(c, &bin, msg, sizeof(msg)) > 0 && msg[0] == '0');
	return c;
}

static inline cl_t *ws_open(const char *query)
{
	return ws_open_rcvbuf(0, query);
}

/*
 * Opens a session and connects to a namespace with the default parser:
 * connect is the CONNECT packet ("0", "0/chat,{...}"). Copies the answer
 * (without "4") to reply when not NULL.
 */
static inline cl_t *sio_connect(const char *connect, char *reply, size_t cap)
{
	cl_t *c = ws_open(NULL);
	char msg[4096];
	ws_text(c, connect);
	const char *r = ws_next_text(c, msg, sizeof(msg));
	CK(r != NULL);
	if (reply && cap) {
		size_t n = r ? strlen(r) : 0;
		n = n < cap - 1 ? n : cap - 1;
		memcpy(reply, r ? r : "", n);
		reply[n] = 0;
	}
	return c;
}

/* ---- client packets in either parser's form -------------------------------- */

/* A packet as a client received it: binary types folded into EVENT / ACK. */
typedef struct {
	sio_packet_type type;
	int64_t id;
	char data[2048]; /* the JSON data */
	char event[64];  /* events: the name, unescaped */
	size_t n_atts;
	size_t att_len[4];
	char att[4][64]; /* the first attachments (cut to 64 bytes) */
} rx_t;

/* Sends a packet to namespace "/" with data (JSON text, may be "") in the parser's form. */
static inline void sio_tx(cl_t *c, int parser, sio_packet_type t, const char *data,
                          const base_slice *atts, size_t n)
{
	base_buf b = BASE_BUF_INIT;
	if (parser == SIO_PARSER_MSGPACK) {
		CK(sio_msgpack_encode(&b, t, BASE_SLICE_LIT("/"), -1,
		                      (base_slice){data, strlen(data)}, atts, n) == 0);
		ws_binary(c, b.data, b.len);
	} else {
		base_buf_append(&b, "4", 1);
		if (n)
			t = t == SIO_EVENT ? SIO_BINARY_EVENT : SIO_BINARY_ACK;
		sio_packet_encode(&b, t, BASE_SLICE_LIT("/"), -1, (unsigned)n,
		                  (base_slice){data, strlen(data)});
		ws_send(c, HTTP_WS_OP_TEXT, b.data, b.len);
		for (size_t i = 0; i < n; i++)
			ws_binary(c, atts[i].base, atts[i].len);
	}
	base_buf_free(&b);
}

/* Receives one packet (and, with the default parser, its attachments): 0, or -1. */
static inline int sio_rx(cl_t *c, int parser, rx_t *r)
{
	static _Thread_local char raw[8192];
	base_buf json = BASE_BUF_INIT;
	base_slice atts[SIO_MAX_ATTACHMENTS];
	sio_packet p;
	const char *err;
	int bin = 0, rc = -1;
	ssize_t n = ws_recv(c, &bin, raw, sizeof(raw));
	memset(r, 0, sizeof(*r));
	if (n < 0)
		return -1;
	if (parser == SIO_PARSER_MSGPACK) {
		if (!bin ||
		    sio_msgpack_decode(raw, (size_t)n, &json, &p, atts, SIO_MAX_ATTACHMENTS, &err))
			goto out;
		for (size_t i = 0; i < p.attachments && i < 4; i++) {
			r->att_len[i] = atts[i].len < 64 ? atts[i].len : 64;
			memcpy(r->att[i], atts[i].base, r->att_len[i]);
		}
	} else {
		if (bin || raw[0] != '4' || sio_packet_decode(raw + 1, (size_t)n - 1, &p, &err))
			goto out;
		for (size_t i = 0; i < p.attachments; i++) {
			char a[64];
			ssize_t m = ws_recv(c, &bin, a, sizeof(a));
			if (m < 0 || !bin)
				goto out;
			if (i < 4) {
				r->att_len[i] = (size_t)m;
				memcpy(r->att[i], a, (size_t)m);
			}
		}
	}
	r->type = p.type == SIO_BINARY_EVENT ? SIO_EVENT
	          : p.type == SIO_BINARY_ACK ? SIO_ACK
	                                     : p.type;
	r->id = p.id;
	r->n_atts = p.attachments;
	snprintf(r->data, sizeof(r->data), "%.*s", (int)p.data.len, p.data.base);
	if (p.event.len && p.event.len < sizeof(r->event)) {
		ssize_t m = sio_json_unescape(p.event.base, p.event.len, r->event);
		r->event[m < 0 ? 0 : m] = 0;
	}
	rc = 0;
out:
	base_buf_free(&json);
	return rc;
}

#endif
