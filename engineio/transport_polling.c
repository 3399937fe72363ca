/*
 * transport_polling.c: HTTP long-polling. A GET waits until there is
 * something to send; a POST carries packets from the client. At most one
 * GET may wait per session: a second one is an error that ends the session,
 * as in the reference server.
 */
#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

#include "engineio_internal.h"

enum { ENC_NONE = 0, ENC_GZIP = 1, ENC_DEFLATE = 2 };

/* A q-value ("1", "0.5", "0.001") in thousandths; 1000 when absent or unreadable. */
static int qvalue(base_slice params)
{
	const char *p = params.base, *end = params.base + params.len;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *e = semi ? semi : end;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		if (e - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
			p += 2;
			int q = 0, scale = 1000;
			if (p < e && *p >= '0' && *p <= '1')
				q = (*p++ - '0') * 1000;
			if (p < e && *p == '.')
				for (p++; p < e && *p >= '0' && *p <= '9' && scale > 1; p++)
					q += (*p - '0') * (scale /= 10);
			return q > 1000 ? 1000 : q;
		}
		p = semi ? semi + 1 : end;
	}
	return 1000;
}

/*
 * The encoding of an answer from Accept-Encoding: gzip or deflate, the one
 * with the higher q, the first listed on a tie (as the reference server's
 * negotiator); none when neither is acceptable.
 */
static int accepted_encoding(const http_request *req)
{
	const base_slice *ae = http_header_get(req, "accept-encoding");
	if (!ae)
		return ENC_NONE;
	int q[3] = {-1, -1, -1}, order[3] = {0, 0, 0}; /* gzip, deflate, "*" */
	const char *p = ae->base, *end = ae->base + ae->len;
	for (int i = 0; p < end; i++) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma ? comma : end;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		const char *ne = p;
		while (ne < e && *ne != ';')
			ne++;
		const char *semi = ne < e ? ne : NULL;
		while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
			ne--;
		base_slice name = {p, (size_t)(ne - p)};
		int k = base_slice_caseeq(name, "gzip")      ? 0
		        : base_slice_caseeq(name, "deflate") ? 1
		        : base_slice_eq(name, "*")           ? 2
		                                             : -1;
		if (k >= 0 && q[k] < 0) {
			q[k] = semi ? qvalue((base_slice){semi + 1, (size_t)(e - semi - 1)}) : 1000;
			order[k] = i;
		}
		p = comma ? comma + 1 : end;
	}
	for (int k = 0; k < 2; k++)
		if (q[k] < 0) {
			q[k] = q[2];
			order[k] = order[2];
		}
	if (q[0] <= 0 && q[1] <= 0)
		return ENC_NONE;
	if (q[0] > q[1] || (q[0] == q[1] && order[0] <= order[1]))
		return ENC_GZIP;
	return ENC_DEFLATE;
}

/*
 * Compresses len bytes into srv->zout with the server's compressor for enc
 * (made on first use, reset after). Returns 0, or -1 to answer uncompressed.
 */
static int compress_body(eio_server *srv, int enc, const char *data, size_t len)
{
	z_stream *z = srv->zs[enc - 1];
	if (len > UINT_MAX / 2)
		return -1;
	if (!z) {
		z = calloc(1, sizeof(*z));
		/* gzip: a gzip header (windowBits + 16); deflate: the zlib format,
		 * which is what HTTP's "deflate" is (and Node's createDeflate). The
		 * fastest level: compressing runs on the event loop. */
		if (!z || deflateInit2(z, Z_BEST_SPEED, Z_DEFLATED, enc == ENC_GZIP ? 15 + 16 : 15,
		                       8, Z_DEFAULT_STRATEGY) != Z_OK) {
			free(z);
			return -1;
		}
		srv->zs[enc - 1] = z;
	} else if (deflateReset(z) != Z_OK) {
		return -1;
	}
	size_t bound = deflateBound(z, (uLong)len);
	srv->zout.len = 0;
	base_buf_reserve(&srv->zout, bound);
	z->next_in = (Bytef *)(uintptr_t)data;
	z->avail_in = (uInt)len;
	z->next_out = (Bytef *)srv->zout.data;
	z->avail_out = (uInt)bound;
	if (deflate(z, Z_FINISH) != Z_STREAM_END)
		return -1;
	srv->zout.len = bound - z->avail_out;
	return 0;
}

void eio__compress_free(eio_server *srv)
{
	for (int i = 0; i < 2; i++) {
		if (srv->zs[i]) {
			deflateEnd(srv->zs[i]);
			free(srv->zs[i]);
		}
	}
	base_buf_free(&srv->zout);
}

/*
 * Encodes the oldest queued packets into srv->payload: at most
 * polling_max_packets of them (python-engineio 4.x drops a connection
 * whose payload holds more than 16; the rest waits for the next poll, which
 * comes at once). Returns how many it took.
 */
static size_t encode_payload(eio_socket *s)
{
	eio_server *srv = s->srv;
	base_buf *out = &srv->payload;
	size_t n = s->q.len, max = srv->opts.polling_max_packets;
	if (max && n > max)
		n = max;
	if (s->eio3)
		return n; /* encoded by respond_payload */
	out->len = 0;
	for (size_t i = 0; i < n; i++) {
		eio_msg *m = eio__queue_at(&s->q, i);
		base_slice p = eio__msg_packet(m);
		if (eio__msg_binary(m))
			eio_payload_append(out, EIO_MESSAGE, 1, p.base, p.len);
		else
			eio_payload_append(out, (eio_packet_type)(p.base[0] - '0'), 0, p.base + 1,
			                   p.len - 1);
	}
	return n;
}

static void respond_payload(eio_socket *s, http_request *req)
{
	base_buf h = BASE_BUF_INIT;
	eio__cors_headers(s->srv, req, &h);
	/* A poll's answer is for this client, now: never cached by a proxy. */
	base_buf_append_str(&h, "Cache-Control: no-store\r\n");
	if (s->srv->opts.cookie_name && !base_query_get(req->query, "sid", &(base_slice){0}))
		base_buf_printf(&h, "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax\r\n",
		                s->srv->opts.cookie_name, s->sid);
	eio_server *srv = s->srv;
	size_t taken = encode_payload(s);
	const char *ctype = "text/plain; charset=UTF-8";
	if (s->eio3 && eio3__encode_payload(s, taken, &srv->payload))
		ctype = "application/octet-stream";
	const char *body = srv->payload.data;
	size_t n = srv->payload.len, body_len = n;
	int enc;
	if (srv->opts.http_compression && n >= srv->opts.compression_threshold &&
	    (enc = accepted_encoding(req)) != ENC_NONE && compress_body(srv, enc, body, n) == 0) {
		base_buf_printf(&h, "Content-Encoding: %s\r\n",
		                enc == ENC_GZIP ? "gzip" : "deflate");
		body = srv->zout.data;
		body_len = srv->zout.len;
	}
	base_buf_append(&h, "", 1);
	http_respond(req, 200, ctype, h.data, body, body_len);
	base_buf_free(&h);
	/* Keep small buffers for the next answer; give large ones back. */
	if (srv->zout.cap > (256u << 10))
		base_buf_free(&srv->zout);
	if (srv->payload.cap > (256u << 10))
		base_buf_free(&srv->payload);
	while (taken--)
		eio_msg_unref(eio__queue_pop(&s->q));
	if (s->q.len == 0 && s->q.cap > 64)
		eio__queue_trim(&s->q);
}

static void on_poll_abort(http_request *req, void *ud)
{
	eio_socket *s = ud;
	s->poll_req = NULL;
	if (s->state == EIO_S_OPEN) {
		BASE_LOGD("eio", "session %s: poll connection closed prematurely", s->sid);
		eio__socket_on_close(s, EIO_CLOSE_TRANSPORT_ERROR);
	}
	eio__socket_maybe_free(s);
}

static void polling_flush(eio_socket *s)
{
	if (!s->poll_req || !s->q.len)
		return;
	http_request *req = s->poll_req;
	s->poll_req = NULL;
	req->on_abort = NULL;
	respond_payload(s, req);
}

void eio__polling_get(eio_socket *s, http_request *req)
{
	if (s->state == EIO_S_CLOSING && !s->poll_req) {
		/* A lingering session hands over its last packets and the close packet. */
		respond_payload(s, req);
		eio__linger_expired(&s->srv->linger_q, &s->hb);
		return;
	}
	if (s->poll_req) {
		BASE_LOGD("eio", "session %s: overlapping GET requests", s->sid);
		eio__respond_error(s->srv, req, EIO_ERR_BAD_REQUEST);
		s->in_callback++;
		eio__socket_on_close(s, EIO_CLOSE_TRANSPORT_ERROR);
		s->in_callback--;
		eio__socket_maybe_free(s);
		return;
	}
	if (!s->q.len && s->upgrade == EIO_UP_PROBED)
		eio__queue_push(&s->q, s->srv->ctl[EIO_NOOP]);
	if (s->q.len) {
		respond_payload(s, req);
		return;
	}
	s->poll_req = req;
	req->on_abort = on_poll_abort;
	req->abort_ud = s;
}

void eio__polling_post(eio_socket *s, http_request *req)
{
	eio_server *srv = s->srv;
	if (s->state != EIO_S_OPEN) {
		eio__respond_error(srv, req, EIO_ERR_BAD_REQUEST);
		return;
	}
	const base_slice *ct = http_header_get(req, "content-type");
	int binary_payload =
	    ct && ct->len >= 24 &&
	    base_slice_caseeq((base_slice){ct->base, 24}, "application/octet-stream");
	if (binary_payload && !s->eio3) {
		/* Protocol 4 polling carries binary as base64 text only. */
		eio__respond_error(srv, req, EIO_ERR_BAD_REQUEST);
		eio__socket_on_close(s, EIO_CLOSE_TRANSPORT_ERROR);
		eio__socket_maybe_free(s);
		return;
	}
	if (req->body.len > srv->opts.max_payload) {
		http_respond_and_close(req, 413, "text/plain", "Payload Too Large", 17);
		eio__socket_on_close(s, EIO_CLOSE_TRANSPORT_ERROR);
		eio__socket_maybe_free(s);
		return;
	}

	/* The body is the request's own memory until it is answered: binary
	 * packets are base64-decoded in place. */
	char *buf = (char *)req->body.base;
	size_t len = req->body.len;
	s->in_callback++;
	if (len == 0) {
		/* The reference parser reads an empty payload as an error. */
		eio__socket_on_close(s, EIO_CLOSE_PARSE_ERROR);
	}
	while (len > 0 && s->state == EIO_S_OPEN) {
		eio_packet p;
		ssize_t n = s->eio3 ? eio3_payload_next(buf, len, binary_payload, &p)
		                    : eio_payload_next(buf, len, &p);
		if (n <= 0) {
			BASE_LOGD("eio", "session %s: invalid payload", s->sid);
			eio__socket_on_close(s, EIO_CLOSE_PARSE_ERROR);
			break;
		}
		if ((int)p.type >= 0)
			eio__on_packet(s, &p);
		buf += n;
		len -= (size_t)n;
	}
	s->in_callback--;

	base_buf h = BASE_BUF_INIT;
	eio__cors_headers(srv, req, &h);
	base_buf_append(&h, "", 1);
	http_respond(req, 200, "text/html", h.data, "ok", 2);
	base_buf_free(&h);
	eio__socket_maybe_free(s);
}

/* ---- the transport's operations ------------------------------------------ */

static int polling_send_msg(eio_socket *s, eio_msg *m)
{
	int rc = eio__socket_enqueue(s, m);
	if (rc == 0)
		polling_flush(s);
	return rc;
}

static int polling_send(eio_socket *s, int binary, const base_slice *parts, size_t n)
{
	eio_msg *m = eio__msg_new(EIO_MESSAGE, binary, parts, n);
	int rc = polling_send_msg(s, m);
	eio_msg_unref(m);
	return rc;
}

static int polling_writable(const eio_socket *s)
{
	return s->poll_req != NULL && s->q.len == 0;
}

static size_t polling_buffered(const eio_socket *s)
{
	(void)s;
	return 0; /* an answer handed to HTTP is the connection's, no longer the session's */
}

static void polling_closing(eio_socket *s, eio_close_reason reason)
{
	/* The close packet goes to the pending GET, or to the next one. A
	 * client that closed itself gets a noop instead, as from the reference. */
	eio__queue_push(&s->q,
	                s->srv->ctl[reason == EIO_CLOSE_CLIENT_CLOSE ? EIO_NOOP : EIO_CLOSE]);
	if (s->poll_req) {
		polling_flush(s);
		eio__socket_finalize(s);
	} else if (reason == EIO_CLOSE_SERVER_CLOSE) {
		/* A server-side close lets the client collect what was queued. */
		base_timeq_arm(&s->srv->linger_q, &s->hb);
	} else {
		eio__socket_finalize(s);
	}
}

static void polling_release(eio_socket *s, int detach)
{
	/* A waiting GET is answered by the close packet (closing), or here at shutdown. */
	if (detach && s->poll_req) {
		http_request *req = s->poll_req;
		s->poll_req = NULL;
		req->on_abort = NULL;
		http_respond_and_close(req, 503, "text/plain", "", 0);
	}
}

static int polling_attached(const eio_socket *s)
{
	return s->poll_req != NULL;
}

const eio_transport_ops eio__polling_ops = {
    .name = "polling",
    .index = 0,
    .send = polling_send,
    .send_msg = polling_send_msg,
    .flush = polling_flush,
    .writable = polling_writable,
    .buffered = polling_buffered,
    .closing = polling_closing,
    .release = polling_release,
    .attached = polling_attached,
};
