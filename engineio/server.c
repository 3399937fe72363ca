/*
 * server.c: the Engine.IO server: request verification, handshake, the sid
 * table, CORS and error answers.
 *
 * Every request under the path arrives here. It is verified the way the
 * reference server (engine.io 6.x) verifies it, so clients see the same
 * status codes and {"code","message"} bodies, then handed to a transport.
 */
#include <stdio.h>
#include <stdlib.h>

#include "engineio_internal.h"

static const char *const eio_error_messages[] = {
#define EIO_ERR_MSG(name, val, msg) [val] = msg,
    EIO_ERROR_MAP(EIO_ERR_MSG)
#undef EIO_ERR_MSG
};

void eio_options_default(eio_options *o)
{
	memset(o, 0, sizeof(*o));
	o->ping_interval_ms = 25000;
	o->ping_timeout_ms = 20000;
	o->max_payload = 1000000;
	o->path = "/engine.io/";
	o->allow_polling = 1;
	o->allow_websocket = 1;
	o->allow_upgrades = 1;
	o->upgrade_timeout_ms = 10000;
	o->max_buffered = 16u << 20;
	o->http_compression = 1;
	o->compression_threshold = 1024;
	o->polling_max_packets = 16;
}

/* ---- sid table --------------------------------------------------------- */

#define EIO_SID_TABLE_MIN 1024 /* buckets: sessions come in thousands */

static eio_socket *sid_entry(base_table_link *l)
{
	return BASE_CONTAINER_OF(l, eio_socket, hlink);
}

eio_socket *eio__find(eio_server *srv, const char *sid, size_t len)
{
	if (len != EIO_SID_LEN)
		return NULL;
	size_t h = base_table_hash(sid, len);
	for (base_table_link *l = base_table_bucket(&srv->sids, h); l; l = l->next)
		if (l->hash == h && memcmp(sid_entry(l)->sid, sid, len) == 0)
			return sid_entry(l);
	return NULL;
}

void eio__unlink(eio_server *srv, eio_socket *s)
{
	base_table_remove(&srv->sids, &s->hlink);
}

/* ---- answers ----------------------------------------------------------- */

/* The Origin of req when cors_origin_ok accepts it, else NULL. */
static const base_slice *cors_listed_origin(eio_server *srv, const http_request *req)
{
	const base_slice *origin = http_header_get(req, "origin");
	if (!origin || !origin->len || !srv->opts.cors_origin_ok ||
	    srv->opts.cors_origin_ok(origin, srv->opts.cors_ud) != 1)
		return NULL;
	/* Only characters a browser sends go back into a header. */
	for (size_t i = 0; i < origin->len; i++)
		if ((unsigned char)origin->base[i] < 0x21 || (unsigned char)origin->base[i] > 0x7e)
			return NULL;
	return origin;
}

static void cors_listed_headers(eio_server *srv, const http_request *req, base_buf *b)
{
	const base_slice *origin = cors_listed_origin(srv, req);
	if (origin)
		base_buf_printf(b,
		                "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n"
		                "Access-Control-Allow-Credentials: true\r\n",
		                (int)origin->len, origin->base);
}

void eio__cors_headers(eio_server *srv, const http_request *req, base_buf *b)
{
	const char *allowed = srv->opts.cors_origin;
	if (!allowed) {
		if (srv->opts.cors_origin_ok)
			cors_listed_headers(srv, req, b);
		return;
	}
	const base_slice *origin = http_header_get(req, "origin");
	if (strcmp(allowed, "*") == 0) {
		/* "*" cannot carry credentials: then the request's origin is reflected. */
		if (srv->opts.cors_credentials && origin && origin->len)
			base_buf_printf(b, "Access-Control-Allow-Origin: %.*s\r\nVary: Origin\r\n",
			                (int)origin->len, origin->base);
		else
			base_buf_append_str(b, "Access-Control-Allow-Origin: *\r\n");
	} else {
		base_buf_printf(b, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", allowed);
	}
	if (srv->opts.cors_credentials)
		base_buf_append_str(b, "Access-Control-Allow-Credentials: true\r\n");
}

void eio__respond_error(eio_server *srv, http_request *req, eio_error_code code)
{
	eio__respond_error_msg(srv, req, code, NULL);
}

void eio__respond_error_msg(eio_server *srv, http_request *req, eio_error_code code,
                            const char *message)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", (int)code,
	                 message ? message : eio_error_messages[code]);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	base_buf h = BASE_BUF_INIT;
	eio__cors_headers(srv, req, &h);
	base_buf_append(&h, "", 1);
	http_respond(req, code == EIO_ERR_FORBIDDEN ? 403 : 400, "application/json", h.data, body,
	             (size_t)n);
	base_buf_free(&h);
}

static void respond_preflight(eio_server *srv, http_request *req)
{
	base_buf h = BASE_BUF_INIT;
	eio__cors_headers(srv, req, &h);
	base_buf_append_str(&h, "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n");
	const base_slice *rh = http_header_get(req, "access-control-request-headers");
	if (rh && rh->len)
		base_buf_printf(&h, "Access-Control-Allow-Headers: %.*s\r\n", (int)rh->len,
		                rh->base);
	base_buf_append(&h, "", 1);
	http_respond(req, 204, NULL, h.data, NULL, 0);
	base_buf_free(&h);
}

/* ---- sockets ----------------------------------------------------------- */

static eio_socket *socket_new(eio_server *srv, const eio_transport_ops *t, const http_request *req)
{
	size_t rlen = strnlen(req->remote_addr, sizeof(req->remote_addr) - 1);
	eio_socket *s = calloc(1, offsetof(eio_socket, remote) + rlen + 1);
	if (!s)
		return NULL;
	memcpy(s->remote, req->remote_addr, rlen);
	s->srv = srv;
	s->t = t;
	srv->stats.opened[t->index]++;
	srv->stats.open[t->index]++;
	base_timeq_entry_init(&s->hb);
	base_timeq_entry_init(&s->up);
	base_slice v;
	if (base_query_get(req->query, "EIO", &v) && base_slice_eq(v, "3")) {
		s->eio3 = 1;
		/* As the reference: any non-empty b64 asks for base64 only. */
		s->eio3_b64 = base_query_get(req->query, "b64", &v) && v.len > 0;
	}
	do {
		base_random_id(s->sid, EIO_SID_BYTES);
	} while (eio__find(srv, s->sid, EIO_SID_LEN));
	base_table_insert(&srv->sids, &s->hlink, base_table_hash(s->sid, EIO_SID_LEN));
	return s;
}

static void queue_open(eio_socket *s)
{
	const char *tail = s->srv->open_tail[s->t->index];
	char open[EIO_SID_LEN + 200];
	int n = snprintf(open, sizeof(open), "{\"sid\":\"%s\",%s", s->sid, tail);
	base_slice part = {open, (size_t)n};
	eio_msg *m = eio__msg_new(EIO_OPEN, 0, &part, 1);
	eio__queue_push(&s->q, m);
	eio_msg_unref(m);
}

eio_socket *eio__handshake(eio_server *srv, const eio_transport_ops *t, http_request *req)
{
	eio_socket *s = socket_new(srv, t, req);
	if (!s) {
		http_respond_and_close(req, 503, "text/plain", "Server busy", 11);
		return NULL;
	}
	BASE_LOGD("eio", "new %s session %s from %s", t->name, s->sid, s->remote);
	queue_open(s);
	eio__heartbeat_start(s);
	s->in_callback++;
	if (srv->cb.on_connection)
		srv->cb.on_connection(s, req, srv->cb.ud);
	s->in_callback--;
	return s;
}

static void handshake_polling(eio_server *srv, http_request *req)
{
	eio_socket *s = eio__handshake(srv, &eio__polling_ops, req);
	/* The handshake GET is answered with the open packet (and anything queued). */
	if (s)
		eio__polling_get(s, req);
}

/* ---- the request handler ----------------------------------------------- */

static void on_request(http_request *req, void *ud)
{
	eio_server *srv = ud;
	base_slice v = {0}, sid = {0};

	if (req->method == HTTP_M_OPTIONS &&
	    (srv->opts.cors_origin || cors_listed_origin(srv, req))) {
		respond_preflight(srv, req);
		return;
	}

	int is_ws = 0;
	if (!base_query_get(req->query, "transport", &v)) {
		eio__respond_error(srv, req, EIO_ERR_UNKNOWN_TRANSPORT);
		return;
	}
	if (base_slice_eq(v, "polling") && srv->opts.allow_polling) {
		is_ws = 0;
	} else if (base_slice_eq(v, "websocket") && srv->opts.allow_websocket) {
		is_ws = 1;
	} else {
		eio__respond_error(srv, req, EIO_ERR_UNKNOWN_TRANSPORT);
		return;
	}

	/* Origins with characters no browser sends are refused (as the reference does). */
	const base_slice *origin = http_header_get(req, "origin");
	if (origin) {
		for (size_t i = 0; i < origin->len; i++) {
			unsigned char c = (unsigned char)origin->base[i];
			if (c < 0x20 || c > 0x7e) {
				eio__respond_error(srv, req, EIO_ERR_BAD_REQUEST);
				return;
			}
		}
	}

	if (!base_query_get(req->query, "EIO", &v) ||
	    !(base_slice_eq(v, "4") || (srv->opts.allow_eio3 && base_slice_eq(v, "3")))) {
		eio__respond_error(srv, req, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
		return;
	}

	int upgrade_req = is_ws && http_is_websocket(req);
	if (base_query_get(req->query, "sid", &sid)) {
		eio_socket *s = eio__find(srv, sid.base, sid.len);
		if (!s || s->state == EIO_S_CLOSED) {
			eio__respond_error(srv, req, EIO_ERR_UNKNOWN_SID);
			return;
		}
		if (!upgrade_req && (is_ws || s->t != &eio__polling_ops)) {
			/* A transport mismatch, e.g. polling after the upgrade. */
			eio__respond_error(srv, req, EIO_ERR_BAD_REQUEST);
			return;
		}
		if (srv->cb.allow_request && srv->cb.allow_request(req, srv->cb.ud)) {
			eio__respond_error(srv, req, EIO_ERR_FORBIDDEN);
			return;
		}
		if (upgrade_req) {
			eio__ws_upgrade(s, req);
		} else if (req->method == HTTP_M_GET) {
			eio__polling_get(s, req);
		} else if (req->method == HTTP_M_POST) {
			eio__polling_post(s, req);
		} else {
			eio__respond_error(srv, req, EIO_ERR_BAD_REQUEST);
		}
		return;
	}

	/* No sid: a handshake, which only GET may start. */
	if (req->method != HTTP_M_GET) {
		eio__respond_error(srv, req, EIO_ERR_BAD_HANDSHAKE_METHOD);
		return;
	}
	if (is_ws && !upgrade_req) {
		eio__respond_error(srv, req, EIO_ERR_BAD_REQUEST);
		return;
	}
	const char *refused = eio__admit(srv, req);
	if (refused) {
		eio__respond_error_msg(srv, req, EIO_ERR_FORBIDDEN, refused);
		return;
	}
	if (srv->cb.allow_request && srv->cb.allow_request(req, srv->cb.ud)) {
		eio__respond_error(srv, req, EIO_ERR_FORBIDDEN);
		return;
	}
	if (is_ws)
		eio__ws_handshake(srv, req);
	else
		handshake_polling(srv, req);
}

/* ---- lifetime ---------------------------------------------------------- */

static void build_open_tail(eio_server *srv, char *out, size_t cap, int upgrades)
{
	snprintf(out, cap,
	         "\"upgrades\":[%s],\"pingInterval\":%u,\"pingTimeout\":%u,\"maxPayload\":%zu}",
	         upgrades ? "\"websocket\"" : "", srv->opts.ping_interval_ms,
	         srv->opts.ping_timeout_ms, srv->opts.max_payload);
}

eio_server *eio_server_new(http_server *http, const eio_options *opts, const eio_callbacks *cb)
{
	eio_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->http = http;
	base_table_init(&srv->sids, EIO_SID_TABLE_MIN);
	if (opts)
		srv->opts = *opts;
	else
		eio_options_default(&srv->opts);
	if (cb)
		srv->cb = *cb;
	if (srv->opts.handshake_rate && !srv->opts.handshake_burst)
		srv->opts.handshake_burst = srv->opts.handshake_rate;
	uv_loop_t *loop = http_server_loop(http);
	base_list_init(&srv->pending_close);
	uv_check_init(loop, &srv->close_check);
	uv_idle_init(loop, &srv->close_idle);
	srv->close_check.data = srv->close_idle.data = srv;
	base_timeq_init(loop, &srv->ping_q, srv->opts.ping_interval_ms, eio__ping_expired);
	base_timeq_init(loop, &srv->pong_q, srv->opts.ping_timeout_ms, eio__pong_expired);
	base_timeq_init(loop, &srv->upgrade_q, srv->opts.upgrade_timeout_ms, eio__upgrade_expired);
	/* A polling client polls again at once, so a short wait is enough. */
	base_timeq_init(loop, &srv->linger_q,
	                BASE_MAX(srv->opts.ping_interval_ms, 1000u) + srv->opts.ping_timeout_ms,
	                eio__linger_expired);
	base_timeq_init(loop, &srv->eio3_q, srv->opts.ping_interval_ms + srv->opts.ping_timeout_ms,
	                eio__pong_expired);
	srv->ping_q.data = srv->pong_q.data = srv->upgrade_q.data = srv->linger_q.data = srv;
	srv->eio3_q.data = srv;
	build_open_tail(srv, srv->open_tail[eio__polling_ops.index], sizeof(srv->open_tail[0]),
	                srv->opts.allow_upgrades && srv->opts.allow_websocket);
	build_open_tail(srv, srv->open_tail[eio__websocket_ops.index], sizeof(srv->open_tail[1]),
	                0);
	static const eio_packet_type ctl[] = {EIO_CLOSE, EIO_PING, EIO_PONG, EIO_NOOP};
	for (size_t i = 0; i < BASE_ARRAY_SIZE(ctl); i++)
		srv->ctl[ctl[i]] = eio__msg_new(ctl[i], 0, NULL, 0);

	/* Route "/engine.io/" and "/engine.io" alike. */
	const char *path = srv->opts.path;
	size_t plen = strlen(path);
	/* A polling POST carries at most maxPayload: anything larger is refused
	 * (413) from its headers, before its body is read. */
	if (http_route(http, HTTP_M_OTHER, path, 0, on_request, srv) ||
	    http_body_limit(http, path, 0, srv->opts.max_payload)) {
		eio_server_free(srv);
		return NULL;
	}
	if (plen > 1 && path[plen - 1] == '/') {
		char *alt = strndup(path, plen - 1);
		int rc =
		    alt ? http_route(http, HTTP_M_OTHER, alt, 0, on_request, srv) : BASE_ENOMEM;
		if (!rc)
			rc = http_body_limit(http, alt, 0, srv->opts.max_payload);
		free(alt);
		if (rc) {
			eio_server_free(srv);
			return NULL;
		}
	}
	return srv;
}

void eio_server_close_all(eio_server *srv)
{
	size_t i;
	base_table_link *l, *next;

	srv->sids.walking++; /* the table must not move under this loop */
	base_table_foreach_safe(&srv->sids, i, l, next)
	{
		eio_socket *s = sid_entry(l);
		if (s->state == EIO_S_OPEN) {
			eio__socket_on_close(s, EIO_CLOSE_SERVER_SHUTDOWN);
			eio__socket_maybe_free(s);
		}
	}
	srv->sids.walking--;
}

/* The handles are embedded in srv: it is freed when the last one has closed. */
static void server_handle_closed(eio_server *srv)
{
	if (--srv->closing == 0) {
		eio__admission_free(srv);
		eio__compress_free(srv);
		for (size_t i = 0; i < BASE_ARRAY_SIZE(srv->ctl); i++)
			eio_msg_unref(srv->ctl[i]);
		base_buf_free(&srv->payload);
		base_table_free(&srv->sids);
		free(srv);
	}
}

static void timeq_closed(uv_handle_t *h)
{
	base_timeq *q = BASE_CONTAINER_OF((uv_timer_t *)h, base_timeq, timer);
	server_handle_closed(q->data);
}

static void handle_closed(uv_handle_t *h)
{
	server_handle_closed(h->data);
}

void eio_server_free(eio_server *srv)
{
	if (!srv)
		return;
	eio_server_close_all(srv);
	eio__close_pending(srv);
	/* Sockets still lingering (closed, waiting for a last GET) go now. */
	srv->sids.walking++;
	for (size_t i = 0; i < srv->sids.size; i++) {
		while (srv->sids.buckets[i])
			eio__socket_destroy(sid_entry(srv->sids.buckets[i]));
	}
	srv->closing = 7;
	uv_close((uv_handle_t *)&srv->close_check, handle_closed);
	uv_close((uv_handle_t *)&srv->close_idle, handle_closed);
	base_timeq_close(&srv->ping_q, timeq_closed);
	base_timeq_close(&srv->pong_q, timeq_closed);
	base_timeq_close(&srv->upgrade_q, timeq_closed);
	base_timeq_close(&srv->linger_q, timeq_closed);
	base_timeq_close(&srv->eio3_q, timeq_closed);
}

size_t eio_server_clients(const eio_server *srv)
{
	return srv->sids.n;
}

void eio_server_get_stats(const eio_server *srv, eio_stats *st)
{
	*st = srv->stats;
}
