/*
 * bench-limit: the bare-transport limit of the bench. A libuv WebSocket
 * server on the project's own framing code (engineio/http/ws_frame.c) that
 * answers the bench contract with the least work there can be: a fixed
 * Engine.IO open packet and Socket.IO CONNECT reply, requests turned into
 * replies by rewriting the event name in place, one room, no sessions, no
 * heartbeat, no JSON parsing, no limits beyond a 16 MiB frame. The full
 * Socket.IO server is measured against it, and so is the load generator's
 * own ceiling. Not a server to use for anything else.
 *
 *   bench-limit --port P      (0: any free port)
 *
 * Prints "listening 127.0.0.1:<port> pid <pid>" once it accepts connections;
 * SIGTERM and SIGINT stop it with status 0.
 */
#define _GNU_SOURCE /* memmem */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <uv.h>

#include "http/ws_frame.h"

#define MAX_FRAME (16u << 20)
#define READ_CHUNK 65536

typedef struct conn conn;
struct conn {
	uv_tcp_t tcp;
	char *in; /* bytes of an incomplete frame, kept between reads; NULL when none */
	size_t in_len, in_cap;
	char *out; /* frames not yet written; NULL when none */
	size_t out_len, out_cap;
	unsigned ws : 1;       /* handshake done */
	unsigned bin_echo : 1; /* the next binary frame is an attachment to echo */
	unsigned writing : 1;  /* a uv_write is in progress */
	unsigned closing : 1;
	unsigned in_room : 1;
	unsigned dirty : 1;
	conn *room_prev, *room_next;
	conn *dirty_next;
};

typedef struct {
	uv_write_t req;
	conn *c;
	char *buf;
} write_req;

static uv_loop_t *g_loop;
static uv_tcp_t g_listener;
static uv_signal_t g_sigterm, g_sigint;
static char g_rbuf[READ_CHUNK];
static int g_rbuf_busy;
static conn *g_room;  /* members, a doubly linked list */
static conn *g_dirty; /* connections with output to flush after this read */
static char *g_tmp;   /* a broadcast frame, built once */
static size_t g_tmp_cap;

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		fprintf(stderr, "bench-limit: out of memory\n");
		abort();
	}
	return q;
}

static void reserve(char **buf, size_t *cap, size_t len, size_t extra)
{
	if (len + extra <= *cap)
		return;
	size_t n = *cap ? *cap : 1024;
	while (n < len + extra)
		n *= 2;
	*buf = xrealloc(*buf, n);
	*cap = n;
}

static void mark_dirty(conn *c)
{
	if (!c->dirty) {
		c->dirty = 1;
		c->dirty_next = g_dirty;
		g_dirty = c;
	}
}

/* Appends one unmasked server frame whose payload is a then b. */
static void out_frame(conn *c, unsigned opcode, const char *a, size_t na, const char *b, size_t nb)
{
	char hdr[HTTP_WS_MAX_HEADER];
	size_t h = http_ws_frame_header(hdr, 1, opcode, na + nb);
	reserve(&c->out, &c->out_cap, c->out_len, h + na + nb);
	memcpy(c->out + c->out_len, hdr, h);
	memcpy(c->out + c->out_len + h, a, na);
	if (nb)
		memcpy(c->out + c->out_len + h + na, b, nb);
	c->out_len += h + na + nb;
	mark_dirty(c);
}

static void out_raw(conn *c, const char *p, size_t n)
{
	reserve(&c->out, &c->out_cap, c->out_len, n);
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	mark_dirty(c);
}

static void room_leave(conn *c)
{
	if (!c->in_room)
		return;
	if (c->room_prev)
		c->room_prev->room_next = c->room_next;
	else
		g_room = c->room_next;
	if (c->room_next)
		c->room_next->room_prev = c->room_prev;
	c->in_room = 0;
}

static void on_closed(uv_handle_t *h)
{
	conn *c = (conn *)h;
	/* Pending writes were cancelled (on_written ran) before this. */
	free(c->in);
	free(c->out);
	free(c);
}

static void conn_close(conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	room_leave(c);
	uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void flush(conn *c);

static void on_written(uv_write_t *req, int status)
{
	write_req *w = (write_req *)req;
	conn *c = w->c;
	free(w->buf);
	free(w);
	c->writing = 0;
	if (c->closing) {
		free(c->out);
		c->out = NULL;
		return;
	}
	if (status < 0) {
		conn_close(c);
		return;
	}
	flush(c);
}

static void flush(conn *c)
{
	if (c->closing || c->writing || c->out_len == 0)
		return;
	uv_buf_t b = uv_buf_init(c->out, (unsigned)c->out_len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n == (int)c->out_len) {
		/* Idle connections hold no buffer at all. */
		free(c->out);
		c->out = NULL;
		c->out_len = c->out_cap = 0;
		return;
	}
	if (n < 0 && n != UV_EAGAIN) {
		conn_close(c);
		return;
	}
	if (n < 0)
		n = 0;
	/* The rest goes by uv_write, which owns the buffer until it is done. */
	write_req *w = xrealloc(NULL, sizeof(*w));
	w->c = c;
	w->buf = c->out;
	b = uv_buf_init(c->out + n, (unsigned)(c->out_len - (size_t)n));
	c->out = NULL;
	c->out_len = c->out_cap = 0;
	c->writing = 1;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
		free(w->buf);
		free(w);
		c->writing = 0;
		conn_close(c);
	}
}

static void flush_dirty(void)
{
	while (g_dirty) {
		conn *c = g_dirty;
		g_dirty = c->dirty_next;
		c->dirty = 0;
		flush(c);
	}
}

/* ---- The WebSocket handshake ---- */

static const char *find_header(const char *req, size_t len, const char *name, size_t *vlen)
{
	size_t nl = strlen(name);
	for (const char *p = req; p + nl < req + len; p++) {
		if ((p == req || p[-1] == '\n') && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			const char *e = v;
			while (e < req + len && *e != '\r' && *e != '\n')
				e++;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			*vlen = (size_t)(e - v);
			return v;
		}
	}
	return NULL;
}

/* Returns bytes consumed, 0 when the request is incomplete, -1 to close. */
static ssize_t handshake(conn *c, const char *p, size_t n)
{
	static unsigned long sid;
	const char *end = memmem(p, n, "\r\n\r\n", 4);
	if (!end)
		return n > 16384 ? -1 : 0;
	size_t klen;
	const char *key = find_header(p, (size_t)(end - p), "Sec-WebSocket-Key", &klen);
	if (!key || klen == 0 || klen > 64) {
		static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
		                          "Connection: close\r\n\r\n";
		out_raw(c, bad, sizeof(bad) - 1);
		return -1;
	}
	char cat[128];
	unsigned char digest[SHA_DIGEST_LENGTH];
	unsigned char accept[64];
	memcpy(cat, key, klen);
	memcpy(cat + klen, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
	SHA1((const unsigned char *)cat, klen + 36, digest);
	EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
	char resp[256];
	int rn = snprintf(resp, sizeof(resp),
	                  "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	                  (const char *)accept);
	out_raw(c, resp, (size_t)rn);
	char open[160];
	int on = snprintf(open, sizeof(open),
	                  "0{\"sid\":\"limit%lu\",\"upgrades\":[],\"pingInterval\":25000,"
	                  "\"pingTimeout\":20000,\"maxPayload\":1000000}",
	                  ++sid);
	out_frame(c, HTTP_WS_OP_TEXT, open, (size_t)on, NULL, 0);
	c->ws = 1;
	return end + 4 - p;
}

/* ---- The bench contract, by string surgery ---- */

static int starts(const char *p, size_t n, const char *s)
{
	size_t l = strlen(s);
	return n >= l && memcmp(p, s, l) == 0;
}

static void broadcast(const char *args, size_t n)
{
	/* One frame, copied to every member: 42["tick",<args>. */
	static const char head[] = "42[\"tick\",";
	size_t plen = sizeof(head) - 1 + n;
	char hdr[HTTP_WS_MAX_HEADER];
	size_t h = http_ws_frame_header(hdr, 1, HTTP_WS_OP_TEXT, plen);
	reserve(&g_tmp, &g_tmp_cap, 0, h + plen);
	memcpy(g_tmp, hdr, h);
	memcpy(g_tmp + h, head, sizeof(head) - 1);
	memcpy(g_tmp + h + sizeof(head) - 1, args, n);
	for (conn *m = g_room; m; m = m->room_next)
		out_raw(m, g_tmp, h + plen);
}

static void on_text(conn *c, const char *p, size_t n)
{
	if (n == 1 && p[0] == '2') {
		out_frame(c, HTTP_WS_OP_TEXT, "3", 1, NULL, 0);
		return;
	}
	if (n == 2 && p[0] == '4' && p[1] == '0') {
		static const char ok[] = "40{\"sid\":\"limit\"}";
		out_frame(c, HTTP_WS_OP_TEXT, ok, sizeof(ok) - 1, NULL, 0);
		return;
	}
	if (starts(p, n, "42[\"message\"")) {
		size_t skip = strlen("42[\"message\"");
		out_frame(c, HTTP_WS_OP_TEXT, "42[\"message-back\"", 17, p + skip, n - skip);
		return;
	}
	if (starts(p, n, "451-[\"message\"")) {
		size_t skip = strlen("451-[\"message\"");
		out_frame(c, HTTP_WS_OP_TEXT, "451-[\"message-back\"", 19, p + skip, n - skip);
		c->bin_echo = 1;
		return;
	}
	if (starts(p, n, "42[\"broadcast-room\",\"")) {
		/* Skip the room name (there is one room) and its comma. */
		const char *q = p + strlen("42[\"broadcast-room\",\"");
		const char *e = p + n;
		while (q < e && *q != '"')
			q++;
		if (q + 2 <= e && q[1] == ',')
			broadcast(q + 2, (size_t)(e - q - 2));
		return;
	}
	if (starts(p, n, "42") && n > 2 && p[2] >= '0' && p[2] <= '9') {
		/* With an ack id: 42<id>["message-with-ack",args] or 42<id>["join",room]. */
		const char *q = p + 2, *e = p + n;
		while (q < e && *q >= '0' && *q <= '9')
			q++;
		size_t idlen = (size_t)(q - p - 2);
		char ack[40];
		if (idlen > 20)
			return;
		ack[0] = '4';
		ack[1] = '3';
		memcpy(ack + 2, p + 2, idlen);
		ack[2 + idlen] = '[';
		if (starts(q, (size_t)(e - q), "[\"message-with-ack\"")) {
			q += strlen("[\"message-with-ack\"");
			if (q < e && *q == ',')
				q++;
			out_frame(c, HTTP_WS_OP_TEXT, ack, idlen + 3, q, (size_t)(e - q));
		} else if (starts(q, (size_t)(e - q), "[\"join\"")) {
			if (!c->in_room) {
				c->in_room = 1;
				c->room_prev = NULL;
				c->room_next = g_room;
				if (g_room)
					g_room->room_prev = c;
				g_room = c;
			}
			out_frame(c, HTTP_WS_OP_TEXT, ack, idlen + 3, "]", 1);
		}
	}
}

/* Returns bytes consumed (whole frames only), or -1 to close. */
static ssize_t on_frames(conn *c, char *p, size_t n)
{
	size_t off = 0;
	while (off < n) {
		http_ws_frame f;
		const char *err;
		ssize_t h = http_ws_frame_parse(p + off, n - off, 1, MAX_FRAME, &f, &err);
		if (h == -2)
			break;
		if (h < 0 || !f.fin || f.opcode == HTTP_WS_OP_CONT)
			return -1; /* fragmented messages are not part of the bench */
		if (n - off - (size_t)h < f.payload_len)
			break;
		char *pl = p + off + h;
		size_t len = (size_t)f.payload_len;
		http_ws_unmask(pl, len, f.mask, 0);
		switch (f.opcode) {
		case HTTP_WS_OP_TEXT:
			on_text(c, pl, len);
			break;
		case HTTP_WS_OP_BINARY:
			if (c->bin_echo) {
				c->bin_echo = 0;
				out_frame(c, HTTP_WS_OP_BINARY, pl, len, NULL, 0);
			}
			break;
		case HTTP_WS_OP_PING:
			out_frame(c, HTTP_WS_OP_PONG, pl, len, NULL, 0);
			break;
		case HTTP_WS_OP_CLOSE:
			out_frame(c, HTTP_WS_OP_CLOSE, pl, len < 2 ? len : 2, NULL, 0);
			return -1;
		default:
			break;
		}
		off += (size_t)h + len;
	}
	return (ssize_t)off;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	conn *c = (conn *)h;
	if (c->in_len == 0 && !g_rbuf_busy) {
		/* Idle connections hold no buffer: reads land in a shared one. */
		g_rbuf_busy = 1;
		*buf = uv_buf_init(g_rbuf, sizeof(g_rbuf));
		return;
	}
	reserve(&c->in, &c->in_cap, c->in_len, READ_CHUNK);
	*buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	conn *c = (conn *)s;
	int shared = buf->base == g_rbuf;
	if (shared)
		g_rbuf_busy = 0;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (nread == 0)
		return;
	char *p;
	size_t n;
	if (shared) {
		p = g_rbuf;
		n = (size_t)nread;
	} else {
		c->in_len += (size_t)nread;
		p = c->in;
		n = c->in_len;
	}
	size_t off = 0;
	if (!c->ws) {
		ssize_t k = handshake(c, p, n);
		if (k < 0) {
			flush_dirty();
			conn_close(c);
			return;
		}
		off = (size_t)k;
	}
	if (c->ws && off < n) {
		ssize_t k = on_frames(c, p + off, n - off);
		if (k < 0) {
			flush_dirty();
			conn_close(c);
			return;
		}
		off += (size_t)k;
	}
	/* Keep the incomplete rest, in the connection's own buffer. */
	size_t rest = n - off;
	if (rest == 0) {
		free(c->in);
		c->in = NULL;
		c->in_len = c->in_cap = 0;
	} else if (shared) {
		reserve(&c->in, &c->in_cap, 0, rest);
		memcpy(c->in, p + off, rest);
		c->in_len = rest;
	} else if (off) {
		memmove(c->in, c->in + off, rest);
		c->in_len = rest;
	}
	flush_dirty();
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		return;
	conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_tcp_init(g_loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		uv_close((uv_handle_t *)&c->tcp, on_closed);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h)) {
		if (h->type == UV_TCP && h != (uv_handle_t *)&g_listener)
			conn_close((conn *)h);
		else
			uv_close(h, NULL);
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	uv_walk(g_loop, close_walk, NULL);
}

int main(int argc, char **argv)
{
	int port = 3000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: bench-limit [--port PORT]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	g_loop = uv_default_loop();
	struct sockaddr_in addr;
	uv_ip4_addr("127.0.0.1", port, &addr);
	uv_tcp_init(g_loop, &g_listener);
	int rc = uv_tcp_bind(&g_listener, (const struct sockaddr *)&addr, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&g_listener, 4096, on_connection);
	if (rc) {
		fprintf(stderr, "bench-limit: cannot listen on port %d: %s\n", port,
		        uv_strerror(rc));
		return 1;
	}
	struct sockaddr_in bound;
	int blen = sizeof(bound);
	uv_tcp_getsockname(&g_listener, (struct sockaddr *)&bound, &blen);
	printf("listening 127.0.0.1:%d pid %d\n", ntohs(bound.sin_port), (int)getpid());
	fflush(stdout);
	uv_signal_init(g_loop, &g_sigterm);
	uv_signal_init(g_loop, &g_sigint);
	uv_signal_start(&g_sigterm, on_signal, SIGTERM);
	uv_signal_start(&g_sigint, on_signal, SIGINT);
	uv_run(g_loop, UV_RUN_DEFAULT);
	uv_loop_close(g_loop);
	free(g_tmp);
	return 0;
}
