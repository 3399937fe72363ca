/*
 * transport_polling.c: HTTP long-polling. A GET waits until there is
 * something to send; a POST carries packets from the client. At most one
 * GET may wait per session: a second one is an error that ends the session,
 * as in the reference server.
 */
#include "engineio_internal.h"

static void respond_payload(eio_socket *s, http_request *req)
{
	base_buf h = BASE_BUF_INIT;
	eio__cors_headers(s->srv, req, &h);
	/* A poll's answer is for this client, now: never cached by a proxy. */
	base_buf_append_str(&h, "Cache-Control: no-store\r\n");
	if (s->srv->opts.cookie_name && !base_query_get(req->query, "sid", &(base_slice){0}))
		base_buf_printf(&h, "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax\r\n",
		                s->srv->opts.cookie_name, s->sid);
	base_buf_append(&h, "", 1);
	/* python-engineio 4.x drops a connection whose payload holds more than
	 * 16 packets: answer with at most that many; the rest waits for the
	 * next poll, which comes at once. */
	size_t n = s->out.len;
	const char *p = s->out.data, *end = s->out.data + s->out.len;
	int seps = 0;
	while (p < end && (p = memchr(p, EIO_RECORD_SEP, (size_t)(end - p))) != NULL) {
		if (++seps == EIO_MAX_PACKETS_PER_POLL) {
			n = (size_t)(p - s->out.data);
			break;
		}
		p++;
	}
	http_respond(req, 200, "text/plain; charset=UTF-8", h.data, s->out.data, n);
	base_buf_free(&h);
	if (n < s->out.len) {
		base_buf_consume(&s->out, n + 1);
		return;
	}
	/* Keep a small buffer around for the next poll; give a large one back. */
	if (s->out.cap > 4096)
		base_buf_free(&s->out);
	s->out.len = 0;
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

void eio__polling_flush(eio_socket *s)
{
	if (!s->poll_req || !s->out.len)
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
	if (!s->out.len && s->upgrade == EIO_UP_PROBED)
		eio_payload_append(&s->out, EIO_NOOP, 0, NULL, 0);
	if (s->out.len) {
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
	if (ct && ct->len >= 24 &&
	    base_slice_caseeq((base_slice){ct->base, 24}, "application/octet-stream")) {
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
		ssize_t n = eio_payload_next(buf, len, &p);
		if (n <= 0) {
			BASE_LOGD("eio", "session %s: invalid payload", s->sid);
			eio__socket_on_close(s, EIO_CLOSE_PARSE_ERROR);
			break;
		}
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
