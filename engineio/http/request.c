/*
 * request.c: requests read with llhttp, from first byte to handler.
 *
 * llhttp streams: it reports a field in pieces when the field straddles
 * two reads. While the headers are incomplete their bytes are therefore
 * kept contiguous (in the read buffer, then at the front of the
 * connection's `in`), and header positions are recorded as offsets from
 * the request's first byte, which stay true when the bytes move. When the
 * headers are complete they are copied once into the request's arena and
 * the offsets become slices. The message-complete callback pauses the
 * parser, so a handler never runs inside llhttp and the bytes after the
 * request (pipelined ones) are exactly where the parser stopped.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finished requests kept for reuse, so a busy connection does not malloc each time. */
#define HTTP_RX_CACHE 64
#define HTTP_HPOS_INIT 16

static int on_url(llhttp_t *p, const char *at, size_t len);
static int on_header_field(llhttp_t *p, const char *at, size_t len);
static int on_header_field_complete(llhttp_t *p);
static int on_header_value(llhttp_t *p, const char *at, size_t len);
static int on_headers_complete(llhttp_t *p);
static int on_body(llhttp_t *p, const char *at, size_t len);
static int on_message_complete(llhttp_t *p);

static const llhttp_settings_t rx_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static http_method method_of(uint8_t m)
{
	switch (m) {
	case HTTP_GET:
		return HTTP_M_GET;
	case HTTP_HEAD:
		return HTTP_M_HEAD;
	case HTTP_POST:
		return HTTP_M_POST;
	case HTTP_PUT:
		return HTTP_M_PUT;
	case HTTP_DELETE:
		return HTTP_M_DELETE;
	case HTTP_OPTIONS:
		return HTTP_M_OPTIONS;
	case HTTP_PATCH:
		return HTTP_M_PATCH;
	default:
		return HTTP_M_OTHER;
	}
}

static http_rx *rx_new(http_conn *c)
{
	http_server *s = c->srv;
	http_rx *rx = s->rx_free;

	if (rx != NULL) {
		s->rx_free = rx->next_free;
		s->n_rx_free--;
	} else {
		rx = malloc(sizeof(*rx));
		if (rx == NULL)
			return NULL;
	}
	memset(rx, 0, sizeof(*rx));
	llhttp_init(&rx->parser, HTTP_REQUEST, &rx_settings);
	rx->parser.data = rx;
	base_arena_init(&rx->arena, 0);
	rx->conn = c;
	rx->req.server = s;
	rx->req.arena = &rx->arena;
	rx->req.method_name = BASE_SLICE_LIT("");
	rx->req.target = rx->req.path = rx->req.query = rx->req.body = BASE_SLICE_LIT("");
	if (c->peer_family != 0)
		inet_ntop(c->peer_family, c->peer, rx->req.peer_addr, sizeof(rx->req.peer_addr));
	memcpy(rx->req.remote_addr, rx->req.peer_addr, sizeof(rx->req.remote_addr));
	return rx;
}

void http__rx_free(http_server *s, http_rx *rx)
{
	if (rx->fstream != NULL) {
		http__fstream_detach(rx->fstream);
		rx->fstream = NULL;
	}
	base_arena_reset(&rx->arena);
	base_buf_free(&rx->body);
	if (s->n_rx_free < HTTP_RX_CACHE) {
		rx->next_free = s->rx_free;
		s->rx_free = rx;
		s->n_rx_free++;
	} else {
		free(rx);
	}
}

/* ---- llhttp callbacks ---------------------------------------------------- */

/* Records where a piece of the request line or headers is, and enforces the header limit. */
static int rx_span(http_rx *rx, const char *at, size_t len, uint32_t *off)
{
	size_t o = (size_t)(at - rx->start), end = o + len;

	if (end > rx->conn->srv->lim.max_header_bytes) {
		rx->err = 431;
		return -1;
	}
	*off = (uint32_t)o;
	if (end > rx->span_end)
		rx->span_end = (uint32_t)end;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	http_rx *rx = p->data;
	uint32_t off;

	if (rx_span(rx, at, len, &off) != 0)
		return -1;
	if (rx->url_len == 0)
		rx->url_off = off;
	rx->url_len += (uint32_t)len;
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	http_rx *rx = p->data;
	uint32_t off;

	if (rx_span(rx, at, len, &off) != 0)
		return -1;
	if (!rx->in_field) {
		if (rx->n_hpos == rx->cap_hpos) {
			uint32_t cap = rx->cap_hpos ? rx->cap_hpos * 2 : HTTP_HPOS_INIT;
			http_hdr_pos *n = base_arena_alloc(&rx->arena, cap * sizeof(*n));

			if (n == NULL) {
				rx->err = 503;
				return -1;
			}
			if (rx->n_hpos > 0)
				memcpy(n, rx->hpos, rx->n_hpos * sizeof(*n));
			rx->hpos = n;
			rx->cap_hpos = cap;
		}
		memset(&rx->hpos[rx->n_hpos], 0, sizeof(rx->hpos[0]));
		rx->hpos[rx->n_hpos].name_off = off;
		rx->n_hpos++;
		rx->in_field = 1;
	}
	rx->hpos[rx->n_hpos - 1].name_len += (uint32_t)len;
	return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
	http_rx *rx = p->data;

	rx->in_field = 0;
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	http_rx *rx = p->data;
	http_hdr_pos *h;
	uint32_t off;

	if (rx_span(rx, at, len, &off) != 0)
		return -1;
	if (rx->n_hpos == 0)
		return 0;
	h = &rx->hpos[rx->n_hpos - 1];
	if (h->value_len == 0)
		h->value_off = off;
	h->value_len += (uint32_t)len;
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	http_rx *rx = p->data;
	http_conn *c = rx->conn;
	http_request *req = &rx->req;
	const char *name = llhttp_method_name((llhttp_method_t)p->method);
	http_header *hdrs = NULL;
	const char *q;
	char *hb;

	/* One copy of the header bytes, so they outlive the read buffer. */
	hb = base_arena_alloc(&rx->arena, rx->span_end + 1);
	if (rx->n_hpos > 0)
		hdrs = base_arena_alloc(&rx->arena, rx->n_hpos * sizeof(*hdrs));
	if (hb == NULL || (rx->n_hpos > 0 && hdrs == NULL)) {
		rx->err = 503;
		return -1;
	}
	memcpy(hb, rx->start, rx->span_end);
	hb[rx->span_end] = '\0';
	req->method = method_of(p->method);
	req->method_name = (base_slice){name, strlen(name)};
	req->target = (base_slice){hb + rx->url_off, rx->url_len};
	q = memchr(req->target.base, '?', req->target.len);
	if (q != NULL) {
		req->path = (base_slice){req->target.base, (size_t)(q - req->target.base)};
		req->query = (base_slice){q + 1, req->target.len - req->path.len - 1};
	} else {
		req->path = req->target;
		req->query = (base_slice){req->target.base + req->target.len, 0};
	}
	for (uint32_t i = 0; i < rx->n_hpos; i++) {
		const http_hdr_pos *h = &rx->hpos[i];
		size_t vlen = h->value_len;

		/* llhttp drops leading whitespace of a value; trailing is ours to drop. */
		while (vlen > 0 &&
		       (hb[h->value_off + vlen - 1] == ' ' || hb[h->value_off + vlen - 1] == '\t'))
			vlen--;
		hdrs[i].name = (base_slice){hb + h->name_off, h->name_len};
		hdrs[i].value = (base_slice){vlen ? hb + h->value_off : hb + rx->span_end, vlen};
	}
	req->headers = hdrs;
	req->n_headers = rx->n_hpos;
	if (c->srv->n_proxies > 0 &&
	    http__proxy_match(c->srv->proxies, c->srv->n_proxies, c->peer_family, c->peer))
		http__forwarded_client(c->srv->proxies, c->srv->n_proxies, hdrs, rx->n_hpos,
		                       req->remote_addr, sizeof(req->remote_addr));
	req->keep_alive = llhttp_should_keep_alive(p);
	rx->headers_done = 1;
	rx->route = -1;
	req->id = ++c->srv->next_id;
	req->start_ms = uv_now(c->srv->loop);
	c->srv->stats.requests++;
	/* Decided before any of the body is read: a body over it is never received. */
	rx->max_body = http_body_limit_for(c->srv, req->path.base, req->path.len);
	if ((p->flags & F_CONTENT_LENGTH) && p->content_length > rx->max_body) {
		rx->err = 413;
		return -1;
	}
	if (p->content_length > 0 || (p->flags & F_CHUNKED)) {
		const base_slice *e = http_header_get(req, "Expect");

		if (e != NULL && base_slice_caseeq(*e, "100-continue")) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			http__out_write(c, cont, sizeof(cont) - 1, NULL, 0);
		}
	}
	return 0;
}

/*
 * Moves a body still lying in the read buffer into the request's own buffer.
 * The buffer is sized for what has arrived, never for what Content-Length
 * announces: a client that announces a large body and sends two bytes holds
 * two bytes (and counts that much against max_input_bytes); it grows by
 * doubling as the rest arrives.
 */
static void rx_keep_piece(http_rx *rx)
{
	if (rx->piece == NULL)
		return;
	base_buf_append(&rx->body, rx->piece, rx->piece_len);
	rx->piece = NULL;
	rx->piece_len = 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	http_rx *rx = p->data;

	rx->body_total += len;
	if (rx->body_total > rx->max_body) {
		rx->err = 413;
		return -1;
	}
	/* The common case: the whole body in one piece, used where it lies. */
	if (rx->piece == NULL && rx->body.len == 0 && rx->body_total == len) {
		rx->piece = at;
		rx->piece_len = len;
		return 0;
	}
	rx_keep_piece(rx);
	base_buf_append(&rx->body, at, len);
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	http_rx *rx = p->data;

	rx->complete = 1;
	if (rx->piece != NULL)
		rx->req.body = (base_slice){rx->piece, rx->piece_len};
	else if (rx->body.len > 0)
		rx->req.body = (base_slice){rx->body.data, rx->body.len};
	return HPE_PAUSED;
}

/* ---- driving the parser -------------------------------------------------- */

static void dispatch(http_conn *c, http_rx *rx)
{
	const http_route_entry *r;

	rx->dispatched = 1;
	http__tq_set(c, HTTP_T_NONE);
	r = http__route_find(c->srv, &rx->req);
	rx->route = r != NULL ? (int)(r - c->srv->routes) : -1;
	if (r != NULL)
		r->fn(&rx->req, r->ud);
	else
		http_respond(&rx->req, 404, "text/plain", NULL, "Not Found\n", 10);
}

/*
 * Feeds buf[*off, len) to the request in progress (starting one if none).
 * Returns HTTP_RX_NEXT when a request was answered and parsing may go on
 * at *off, or HTTP_RX_STOP with *off the first byte to keep for later.
 */
int http__rx_input(http_conn *c, char *buf, size_t len, size_t *off)
{
	http_rx *rx = c->u.rx;
	llhttp_errno_t e;
	int status;

	if (rx == NULL) {
		rx = rx_new(c);
		if (rx == NULL) {
			http__conn_close(c);
			*off = len;
			return HTTP_RX_STOP;
		}
		c->u.rx = rx;
		rx->start = buf + *off;
		http__tq_set(c, HTTP_T_HEADER);
	} else if (!rx->headers_done) {
		/* Its first bytes were kept at the front of this buffer. */
		rx->start = buf;
	}
	e = llhttp_execute(&rx->parser, buf + *off, len - *off);
	if (c->flags & HTTP_F_CLOSED) {
		*off = len;
		return HTTP_RX_STOP;
	}
	if (e == HPE_OK) {
		/* Everything was parsed and the request is not complete yet. */
		if (!rx->headers_done) {
			if ((size_t)(buf + len - rx->start) > c->srv->lim.max_header_bytes) {
				http__send_error(c, 431);
				*off = len;
				return HTTP_RX_STOP;
			}
			*off = (size_t)(rx->start - buf);
			return HTTP_RX_STOP;
		}
		rx_keep_piece(rx);
		*off = len;
		return HTTP_RX_STOP;
	}
	if ((e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) && rx->complete) {
		*off = (size_t)(llhttp_get_error_pos(&rx->parser) - buf);
		dispatch(c, rx);
		if (c->mode == HTTP_MODE_HTTP && c->u.rx == rx) {
			/* Kept by the handler: its body must outlive the read buffer. */
			rx_keep_piece(rx);
			if (rx->body.len > 0)
				rx->req.body = (base_slice){rx->body.data, rx->body.len};
			return HTTP_RX_STOP;
		}
		return HTTP_RX_NEXT;
	}
	status = rx->err != 0 ? rx->err : 400;
	BASE_LOGD("http", "request refused with %d: %s (%s)", status, llhttp_errno_name(e),
	          llhttp_get_error_reason(&rx->parser) ? llhttp_get_error_reason(&rx->parser) : "");
	http__send_error(c, status);
	*off = len;
	return HTTP_RX_STOP;
}

void http__request_end(http_conn *c, int keep_alive)
{
	http_rx *rx = c->u.rx;

	c->u.rx = NULL;
	if (rx != NULL)
		http__rx_free(c->srv, rx);
	http__conn_account(c); /* the body is gone */
	if (c->flags & HTTP_F_CLOSED)
		return;
	if (!keep_alive) {
		http__conn_drain(c, 1);
		return;
	}
	/* Inside the read loop the next request is parsed right away. */
	if (c->flags & HTTP_F_PROCESSING)
		return;
	if (c->in_len > 0)
		http__schedule(c, HTTP_F_RESUME);
	else
		http__conn_update_timeout(c);
}

void http__send_error(http_conn *c, int status)
{
	const char *text = http_status_text(status);
	char head[320];
	int n;

	if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))
		return;
	c->srv->stats.refused++;
	if (c->mode == HTTP_MODE_HTTP && c->u.rx != NULL) {
		if (c->u.rx->dispatched) {
			/* The handler owns it: only closing (and on_abort) can end it. */
			http__conn_close(c);
			return;
		}
		if (c->u.rx->headers_done && c->srv->obs.on_response)
			c->srv->obs.on_response(&c->u.rx->req, status, strlen(text) + 1,
			                        c->srv->obs.ud);
		http__rx_free(c->srv, c->u.rx);
		c->u.rx = NULL;
	}
	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
	             "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n%s\n",
	             status, text, strlen(text) + 1, text);
	if (n > 0 && (size_t)n < sizeof(head))
		http__out_write(c, head, (size_t)n, NULL, 0);
	http__conn_drain(c, 1);
}
