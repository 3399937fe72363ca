/*
 * ws.c: the WebSocket handshake and connection (RFC 6455, version 13).
 *
 * Frames are parsed where they lie (the shared read buffer, or `in` for a
 * frame that straddled reads), unmasked in place and handed to on_message
 * without a copy unless the message is fragmented. The one extension is
 * permessage-deflate (ws_deflate.c), when the limits enable it: RSV1 then
 * marks a compressed message, inflated when complete; without it reserved
 * bits are a protocol error.
 *
 * Closing: the connection is freed in its uv_close callback, which is
 * where on_close runs, so http_ws_close from inside on_message only sets
 * state; the frame loop sees the connection draining and stops.
 */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- handshake ----------------------------------------------------------- */

static int bad_handshake(http_request *req, const char *extra, const char *why)
{
	return http_respond(req, 400, "text/plain", extra, why, strlen(why));
}

http_ws *http_ws_accept(http_request *req, const http_ws_callbacks *cb, void *ud,
                        const char *extra_headers)
{
	http_rx *rx = BASE_CONTAINER_OF(req, http_rx, req);
	http_conn *c = rx->conn;
	const base_slice *ver, *key;
	unsigned char raw[18], digest[BASE_SHA1_LEN];
	char concat[24 + sizeof(WS_GUID) - 1], accept[32];
	static const char h1[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                         "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
	base_slice parts[4];
	char ext[160];
	int deflate = 0;
	http_ws *ws;
	size_t alen;

	if (c->mode != HTTP_MODE_HTTP || c->u.rx != rx)
		return NULL;
	if (!http_is_websocket(req)) {
		bad_handshake(req, NULL, "not a WebSocket handshake\n");
		return NULL;
	}
	ver = http_header_get(req, "Sec-WebSocket-Version");
	if (ver == NULL || !base_slice_eq(*ver, "13")) {
		bad_handshake(req, "Sec-WebSocket-Version: 13\r\n",
		              "unsupported WebSocket version\n");
		return NULL;
	}
	key = http_header_get(req, "Sec-WebSocket-Key");
	if (key == NULL || key->len != 24 || base_base64_decode(key->base, 24, raw) != 16) {
		bad_handshake(req, NULL, "bad Sec-WebSocket-Key\n");
		return NULL;
	}
	if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING)) {
		http__request_end(c, 0);
		return NULL;
	}
	{
		/* remote_addr is at most 47 characters (http_request), path and agent are cut. */
		const base_slice *ua = http_header_get(req, "User-Agent");
		size_t rlen = strnlen(req->remote_addr, sizeof(req->remote_addr) - 1);
		size_t plen = req->path.len < HTTP_WS_PATH_MAX ? req->path.len : HTTP_WS_PATH_MAX;
		size_t ualen = ua ? (ua->len < HTTP_WS_AGENT_MAX ? ua->len : HTTP_WS_AGENT_MAX) : 0;
		ws = calloc(1, offsetof(http_ws, str) + rlen + plen + ualen + 3);
		if (ws != NULL) {
			memcpy(ws->str, req->remote_addr, rlen);
			ws->path_off = (uint8_t)(rlen + 1);
			memcpy(ws->str + ws->path_off, req->path.base, plen);
			ws->agent_off = (uint8_t)(ws->path_off + plen + 1);
			if (ualen)
				memcpy(ws->str + ws->agent_off, ua->base, ualen);
		}
	}
	if (ws == NULL) {
		http_respond_and_close(req, 503, "text/plain", "out of memory\n", 14);
		return NULL;
	}
	memcpy(concat, key->base, 24);
	memcpy(concat + 24, WS_GUID, sizeof(WS_GUID) - 1);
	base_sha1(concat, sizeof(concat), digest);
	alen = base_base64_encode(digest, sizeof(digest), accept);
	accept[alen++] = '\r';
	accept[alen++] = '\n';
	parts[0] = (base_slice){accept, alen};
	parts[1] =
	    extra_headers ? (base_slice){extra_headers, strlen(extra_headers)} : BASE_SLICE_LIT("");
	if (c->srv->lim.ws_deflate)
		deflate = http_pmd_negotiate(http_header_get(req, "Sec-WebSocket-Extensions"), ext,
		                             sizeof(ext));
	parts[2] = deflate ? (base_slice){ext, strlen(ext)} : BASE_SLICE_LIT("");
	parts[3] = BASE_SLICE_LIT("\r\n");
	if (http__out_write(c, h1, sizeof(h1) - 1, parts, 4) != 0) {
		/* The connection is gone already; the request ends with it. */
		free(ws);
		http__request_end(c, 0);
		return NULL;
	}
	if (cb != NULL)
		ws->cb = *cb;
	ws->ud = ud;
	ws->conn = c;
	ws->deflate = (uint8_t)deflate;
	ws->id = req->id;
	ws->start_ms = req->start_ms;
	http__count_status(rx, 101);
	c->srv->stats.ws_opened++;
	http__rx_free(c->srv, rx);
	c->mode = HTTP_MODE_WS;
	c->u.ws = ws;
	http__tq_set(c, HTTP_T_NONE);
	/* Frames that arrived behind the handshake are read now, or right after the read loop. */
	if (!(c->flags & HTTP_F_PROCESSING) && c->in_len > 0)
		http__schedule(c, HTTP_F_RESUME);
	if (c->flags & HTTP_F_READ_STOPPED)
		http__schedule(c, HTTP_F_RESUME);
	return ws;
}

/* ---- sending ------------------------------------------------------------- */

static int ws_open(const http_ws *ws)
{
	return !(ws->conn->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING));
}

static int ws_frame_out(http_conn *c, unsigned opcode, const base_slice *parts, size_t n)
{
	char head[HTTP_WS_MAX_HEADER];
	uint64_t total = 0;
	size_t hlen;

	for (size_t i = 0; i < n; i++)
		total += parts[i].len;
	hlen = http_ws_frame_header(head, 1, opcode, total);
	return http__out_write(c, head, hlen, parts, n);
}

/* A compressed data frame (RSV1) holding the parts; 1 when not worth it (under the threshold). */
static int ws_deflate_out(http_ws *ws, unsigned opcode, const base_slice *parts, size_t n)
{
	http_server *srv = ws->conn->srv;
	base_buf z = BASE_BUF_INIT;
	char head[HTTP_WS_MAX_HEADER];
	uint64_t total = 0;
	size_t hlen;
	int rc;

	for (size_t i = 0; i < n; i++)
		total += parts[i].len;
	if (total < srv->lim.ws_deflate_threshold ||
	    http_pmd_deflate(&srv->pmd, parts, n, &z) != 0) {
		base_buf_free(&z);
		return 1;
	}
	hlen = http_ws_frame_header_rsv1(head, 1, opcode, z.len);
	rc = http__out_write(ws->conn, head, hlen, &(base_slice){z.data, z.len}, 1);
	base_buf_free(&z);
	return rc;
}

int http_ws_send(http_ws *ws, int binary, const base_slice *parts, size_t n_parts)
{
	unsigned op = binary ? HTTP_WS_OP_BINARY : HTTP_WS_OP_TEXT;

	if (!ws_open(ws))
		return BASE_ECLOSED;
	if (ws->deflate) {
		int rc = ws_deflate_out(ws, op, parts, n_parts);

		if (rc != 1)
			return rc;
	}
	return ws_frame_out(ws->conn, op, parts, n_parts);
}

/*
 * The pre-framed chunk with its large whole-message frames compressed, or
 * NULL when there is none to compress (or the frames are not ours to read).
 * The last result is cached: a broadcast sends one chunk to many
 * connections in a row, and the compressed frame is the same for all.
 */
static base_chunk *ws_deflate_chunk(http_server *srv, base_chunk *chunk, size_t offset, size_t len)
{
	base_chunk *out = http_pmd_cached(srv->pmd, chunk, offset, len);
	base_buf b = BASE_BUF_INIT, z = BASE_BUF_INIT;
	size_t pos = offset, end = offset + len;
	int any = 0;

	if (out != NULL)
		return base_chunk_ref(out);
	/* First pass: is any frame worth compressing? */
	while (pos < end) {
		http_ws_frame f;
		ssize_t h =
		    http_ws_frame_parse(chunk->data + pos, end - pos, 0, UINT64_MAX, &f, NULL);

		if (h < 0 || f.payload_len > end - pos - (size_t)h)
			return NULL;
		if (!(f.opcode & 0x08) && f.opcode != HTTP_WS_OP_CONT && f.fin &&
		    f.payload_len >= srv->lim.ws_deflate_threshold)
			any = 1;
		pos += (size_t)h + (size_t)f.payload_len;
	}
	if (!any)
		return NULL;
	for (pos = offset; pos < end;) {
		http_ws_frame f;
		ssize_t h =
		    http_ws_frame_parse(chunk->data + pos, end - pos, 0, UINT64_MAX, &f, NULL);
		size_t flen = (size_t)h + (size_t)f.payload_len;
		base_slice pl = {chunk->data + pos + h, (size_t)f.payload_len};

		if (!(f.opcode & 0x08) && f.opcode != HTTP_WS_OP_CONT && f.fin &&
		    f.payload_len >= srv->lim.ws_deflate_threshold &&
		    http_pmd_deflate(&srv->pmd, &pl, 1, &z) == 0) {
			char head[HTTP_WS_MAX_HEADER];
			size_t hl = http_ws_frame_header_rsv1(head, 1, f.opcode, z.len);

			base_buf_append(&b, head, hl);
			base_buf_append(&b, z.data, z.len);
		} else {
			base_buf_append(&b, chunk->data + pos, flen);
		}
		pos += flen;
	}
	out = base_chunk_from(b.data, b.len);
	base_buf_free(&b);
	base_buf_free(&z);
	http_pmd_cache(&srv->pmd, chunk, offset, len, out);
	return out;
}

int http_ws_send_frames(http_ws *ws, base_chunk *chunk, size_t offset, size_t len)
{
	if (!ws_open(ws))
		return BASE_ECLOSED;
	if (ws->deflate && len >= ws->conn->srv->lim.ws_deflate_threshold) {
		base_chunk *z = ws_deflate_chunk(ws->conn->srv, chunk, offset, len);

		if (z != NULL) {
			int rc = http__out_chunk(ws->conn, z, 0, z->len);

			base_chunk_unref(z);
			return rc;
		}
	}
	return http__out_chunk(ws->conn, chunk, offset, len);
}

size_t http_ws_buffered(const http_ws *ws)
{
	return ws->conn->out_bytes;
}

void http_ws_set_data(http_ws *ws, void *ud)
{
	ws->ud = ud;
}

void *http_ws_data(const http_ws *ws)
{
	return ws->ud;
}

const char *http_ws_remote_addr(const http_ws *ws)
{
	return ws->str;
}

/* Remembers why the connection ends; the first reason wins. */
static void ws_set_close(http_ws *ws, uint16_t code, const char *reason, size_t rlen)
{
	if (ws->close_code != 0)
		return;
	ws->close_code = code;
	if (rlen > 0) {
		ws->close_reason = malloc(rlen + 1);
		if (ws->close_reason != NULL) {
			memcpy(ws->close_reason, reason, rlen);
			ws->close_reason[rlen] = '\0';
		}
	}
}

/* Queues a close frame; code 0 or 1005 sends an empty one. */
static void ws_send_close(http_conn *c, uint16_t code, const char *reason, size_t rlen)
{
	char payload[125];
	base_slice part = {payload, 0};

	if (code != 0 && code != HTTP_WS_CLOSE_NO_STATUS) {
		payload[0] = (char)(code >> 8);
		payload[1] = (char)(code & 0xff);
		if (rlen > 123)
			rlen = 123;
		if (rlen > 0)
			memcpy(payload + 2, reason, rlen);
		part.len = 2 + rlen;
	}
	ws_frame_out(c, HTTP_WS_OP_CLOSE, &part, 1);
}

void http_ws_close(http_ws *ws, uint16_t code, const char *reason)
{
	http_conn *c = ws->conn;
	size_t rlen = reason != NULL ? strlen(reason) : 0;

	if (!ws_open(ws))
		return;
	/* Codes that must never be on the wire become "no code". */
	if (code == HTTP_WS_CLOSE_ABNORMAL || code == 1015 || code < 1000 || code >= 5000)
		code = HTTP_WS_CLOSE_NO_STATUS;
	if (code == HTTP_WS_CLOSE_NO_STATUS) {
		rlen = 0;
	} else if (rlen > 123) {
		/* Cut on a character boundary so the reason stays valid UTF-8. */
		rlen = 123;
		while (rlen > 0 && ((unsigned char)reason[rlen] & 0xc0) == 0x80)
			rlen--;
	}
	ws_set_close(ws, code, reason, rlen);
	ws_send_close(c, code, reason, rlen);
	http__conn_drain(c, 1);
}

/* A protocol error: say why, then close without waiting for more frames. */
static void ws_fail(http_ws *ws, uint16_t code)
{
	ws_set_close(ws, code, NULL, 0);
	ws_send_close(ws->conn, code, NULL, 0);
	http__conn_drain(ws->conn, 1);
}

void http__ws_closed(http_ws *ws)
{
	uint16_t code = ws->close_code ? ws->close_code : HTTP_WS_CLOSE_ABNORMAL;
	http_server *srv = ws->conn->srv;

	srv->stats.ws_closed++;
	if (srv->obs.on_ws_end)
		srv->obs.on_ws_end(ws, code, ws->close_reason ? ws->close_reason : "", srv->obs.ud);
	if (ws->cb.on_close != NULL)
		ws->cb.on_close(ws, code, ws->close_reason ? ws->close_reason : "", ws->ud);
	if (ws->frag) {
		base_buf_free(ws->frag);
		free(ws->frag);
	}
	free(ws->close_reason);
	free(ws);
}

/* ---- receiving ----------------------------------------------------------- */

/* The buffer of a fragmented message, made at its first fragment (an idle connection has none). */
static base_buf *ws_frag(http_ws *ws)
{
	if (ws->frag == NULL) {
		ws->frag = base_xmalloc(sizeof(*ws->frag));
		*ws->frag = (base_buf)BASE_BUF_INIT;
	}
	return ws->frag;
}

/* Detaches the fragmented message's bytes (the caller frees them) and drops the buffer. */
static base_buf ws_frag_take(http_ws *ws)
{
	base_buf b = BASE_BUF_INIT;
	if (ws->frag) {
		b = *ws->frag;
		free(ws->frag);
		ws->frag = NULL;
	}
	return b;
}

static void ws_deliver(http_ws *ws, const char *data, size_t len)
{
	if (ws->cb.on_message != NULL)
		ws->cb.on_message(ws, ws->binary, data != NULL ? data : "", len, ws->ud);
}

static void ws_control(http_ws *ws, const http_ws_frame *f, const char *p, size_t n)
{
	uint16_t code;

	switch (f->opcode) {
	case HTTP_WS_OP_PING: {
		base_slice part = {p, n};

		ws_frame_out(ws->conn, HTTP_WS_OP_PONG, &part, 1);
		break;
	}
	case HTTP_WS_OP_CLOSE:
		if (http_ws_close_payload_parse(p, n, &code) != 0) {
			ws_fail(ws, HTTP_WS_CLOSE_PROTOCOL);
			break;
		}
		/* Echo the code; the peer has said its last word, so close as soon as it is out. */
		ws_set_close(ws, code, n > 2 ? p + 2 : NULL, n > 2 ? n - 2 : 0);
		ws_send_close(ws->conn, code, NULL, 0);
		http__conn_drain(ws->conn, 0);
		break;
	default: /* pong */
		break;
	}
}

/* A compressed message: its bytes are gathered, then inflated and checked whole. */
static void ws_data_compressed(http_ws *ws, const http_ws_frame *f, const char *p, size_t n)
{
	http_server *srv = ws->conn->srv;
	base_buf in = BASE_BUF_INIT, out = BASE_BUF_INIT;
	int rc;

	if (!(f->fin && f->opcode != HTTP_WS_OP_CONT)) {
		base_buf_append(ws_frag(ws), p, n);
		if (!f->fin)
			return;
		/* Detached first: on_message may close, and the buffer goes either way. */
		in = ws_frag_take(ws);
		p = in.data;
		n = in.len;
	}
	rc = http_pmd_inflate(&srv->pmd, p != NULL ? p : "", n, srv->lim.ws_max_message, &out);
	base_buf_free(&in);
	if (rc == 0 && !ws->binary) {
		uint32_t st = 0;

		if (base_utf8_validate(&st, (const unsigned char *)out.data, out.len) != 0 ||
		    st != 0)
			rc = HTTP_WS_CLOSE_BAD_DATA;
	}
	if (rc != 0)
		ws_fail(ws, (uint16_t)rc);
	else
		ws_deliver(ws, out.data, out.len);
	base_buf_free(&out);
}

static void ws_data(http_ws *ws, const http_ws_frame *f, const char *p, size_t n)
{
	const http_limits *lim = &ws->conn->srv->lim;
	int rc = http_ws_seq_next(&ws->seq, f, lim->ws_max_message);

	if (rc != 0) {
		ws_fail(ws, (uint16_t)rc);
		return;
	}
	if (f->opcode != HTTP_WS_OP_CONT) {
		ws->binary = f->opcode == HTTP_WS_OP_BINARY;
		ws->utf8 = 0;
		ws->compressed = (uint8_t)f->rsv1;
	}
	if (ws->compressed) {
		ws_data_compressed(ws, f, p, n);
		return;
	}
	/* Text is checked as it comes, so a bad message fails at its first bad fragment. */
	if (!ws->binary) {
		if (base_utf8_validate(&ws->utf8, (const unsigned char *)p, n) != 0 ||
		    (f->fin && ws->utf8 != 0)) {
			ws_fail(ws, HTTP_WS_CLOSE_BAD_DATA);
			return;
		}
	}
	if (f->fin && f->opcode != HTTP_WS_OP_CONT) {
		ws_deliver(ws, p, n);
		return;
	}
	base_buf_append(ws_frag(ws), p, n);
	if (f->fin) {
		/* Detached first: on_message may close, and the buffer goes either way. */
		base_buf frag = ws_frag_take(ws);

		ws_deliver(ws, frag.data, frag.len);
		base_buf_free(&frag);
	}
}

size_t http__ws_input(http_conn *c, char *buf, size_t len, size_t off, size_t *want)
{
	http_ws *ws = c->u.ws;
	uint64_t max = c->srv->lim.ws_max_message;

	while (off < len) {
		http_ws_frame f;
		const char *err = NULL;
		ssize_t h;
		char *p;
		size_t n;

		if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))
			return len;
		h = http_ws_frame_parse_ext(buf + off, len - off, 1, ws->deflate, max, &f, &err);
		if (h == -2)
			break;
		if (h < 0) {
			BASE_LOGD("http", "ws frame refused: %s", err ? err : "?");
			ws_fail(ws, f.close_code ? f.close_code : HTTP_WS_CLOSE_PROTOCOL);
			return len;
		}
		if (f.payload_len > len - off - (size_t)h) {
			/* Incomplete: the caller keeps it, in a buffer sized for the whole frame. */
			*want = (size_t)h + (size_t)f.payload_len;
			break;
		}
		p = buf + off + h;
		n = (size_t)f.payload_len;
		http_ws_unmask(p, n, f.mask, 0);
		off += (size_t)h + n;
		if (f.opcode & 0x08)
			ws_control(ws, &f, p, n);
		else
			ws_data(ws, &f, p, n);
	}
	if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))
		return len;
	return off;
}

void http_ws_get_info(const http_ws *ws, http_ws_info *info)
{
	info->id = ws->id;
	info->start_ms = ws->start_ms;
	info->bytes_in = ws->bytes_in;
	info->bytes_out = ws->bytes_out;
	info->path = ws->str + ws->path_off;
	info->user_agent = ws->str + ws->agent_off;
}
