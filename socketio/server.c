/*
 * server.c: the Socket.IO server and its clients (one per Engine.IO
 * session): feeding each message to the server's parser (parser.h), routing
 * the packets it completes to the namespace sockets, sending through the
 * parser, and the connect timeout.
 */
#include <stdlib.h>
#include <sys/time.h>

#include "server_internal.h"

void sio_options_default(sio_options *o)
{
	memset(o, 0, sizeof(*o));
	eio_options_default(&o->eio);
	o->eio.path = "/socket.io/";
	o->connect_timeout_ms = 45000;
	o->parser = SIO_PARSER_JSON;
	o->recovery_ms = 0;
	o->recovery_skip_middlewares = 1;
	o->max_pending_binary = 0; /* 0: the Engine.IO max payload */
}

/* ---- sending ----------------------------------------------------------- */

int sio__client_send(sio_client *c, const sio_out *p)
{
	if (!c || c->closed)
		return SIO_ENOT_CONNECTED;
	sio_wire w;
	int rc = sio__encode(c->srv->parser, p, &w);
	for (size_t i = 0; i < w.n_msgs && !rc; i++)
		rc = eio_socket_sendv(c->eio, w.msgs[i].binary, w.msgs[i].parts, w.msgs[i].n_parts);
	sio__wire_free(&w);
	return rc;
}

/* ---- clients ----------------------------------------------------------- */

void sio__client_unref(sio_client *c)
{
	if (--c->refs > 0)
		return;
	sio__decoder_free(&c->dec);
	free(c);
}

sio_socket *sio__client_socket(sio_client *c, base_slice nsp)
{
	base_list *pos;
	for (pos = c->sockets.next; pos != &c->sockets; pos = pos->next) {
		sio_socket *s = BASE_CONTAINER_OF(pos, sio_socket, client_link);
		if (s->nsp->name_len == nsp.len && memcmp(s->nsp->name, nsp.base, nsp.len) == 0)
			return s;
	}
	return NULL;
}

/*
 * Headers that only served the WebSocket handshake itself: not kept, so an
 * idle connection does not carry them (about a tenth of its memory).
 */
static int handshake_only(base_slice name)
{
	static const char *const names[] = {"upgrade", "connection", "sec-websocket-key",
	                                    "sec-websocket-version", "sec-websocket-extensions"};
	for (size_t i = 0; i < BASE_ARRAY_SIZE(names); i++)
		if (base_slice_caseeq(name, names[i]))
			return 1;
	return 0;
}

/*
 * Makes a client holding what the handshake request said, in the same
 * allocation: the headers kept, the query and the address. NULL when out of
 * memory.
 */
static sio_client *client_new(const http_request *req)
{
	size_t alen = strnlen(req->remote_addr, sizeof(req->remote_addr) - 1);
	size_t total = req->query.len + alen + 1, kept = 0;
	for (size_t i = 0; i < req->n_headers; i++) {
		if (handshake_only(req->headers[i].name))
			continue;
		total += sizeof(http_header) + req->headers[i].name.len + req->headers[i].value.len;
		kept++;
	}
	sio_client *c = calloc(1, sizeof(*c) + total);
	if (!c)
		return NULL;
	http_header *h = c->headers;
	char *w = (char *)(h + kept);
	size_t n = 0;
	for (size_t i = 0; i < req->n_headers; i++) {
		const http_header *src = &req->headers[i];
		if (handshake_only(src->name))
			continue;
		memcpy(w, src->name.base, src->name.len);
		h[n].name = (base_slice){w, src->name.len};
		w += src->name.len;
		memcpy(w, src->value.base, src->value.len);
		h[n].value = (base_slice){w, src->value.len};
		w += src->value.len;
		n++;
	}
	memcpy(w, req->query.base, req->query.len);
	c->query = (base_slice){w, req->query.len};
	w += req->query.len;
	memcpy(w, req->remote_addr, alen);
	w[alen] = '\0';
	c->n_headers = (uint32_t)kept;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	c->time_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	return c;
}

static void on_eio_connection(eio_socket *es, const http_request *req, void *ud)
{
	sio_server *srv = ud;
	sio_client *c = client_new(req);
	if (!c) {
		eio_socket_close(es);
		return;
	}
	c->srv = srv;
	c->eio = es;
	c->refs = 1;
	c->dec.max_pending =
	    srv->opts.max_pending_binary ? srv->opts.max_pending_binary : srv->opts.eio.max_payload;
	sio__bucket_init(&c->connects, &srv->connect_limit, uv_now(srv->loop));
	base_list_init(&c->sockets);
	base_timeq_entry_init(&c->connect_timer);
	base_list_insert_tail(&srv->clients, &c->link);
	eio_socket_set_data(es, c);
	base_timeq_arm(&srv->connect_q, &c->connect_timer);
	if (eio_socket_protocol(es) == 3) {
		/* A socket.io-client 2.x (Engine.IO 3) is in "/" without asking. */
		sio_namespace *nsp = sio__namespace_for_connect(srv, BASE_SLICE_LIT("/"));
		if (nsp)
			sio__socket_connect(c, nsp, (base_slice){0});
	}
}

static void connect_expired(base_timeq *q, base_timeq_entry *e)
{
	sio_client *c = BASE_CONTAINER_OF(e, sio_client, connect_timer);
	if (base_list_empty(&c->sockets) && !c->closed) {
		BASE_LOGD("sio", "client %s joined no namespace in time: closing",
		          eio_socket_id(c->eio));
		eio_socket_close(c->eio);
	}
}

/* Drops a client whose packets make no sense; the sockets see "parse error". */
static void client_fail(sio_client *c, const char *why)
{
	BASE_LOGD("sio", "client %s: %s: closing", eio_socket_id(c->eio), why);
	eio_socket_close(c->eio);
}

static void unescape_event(const sio_packet *p, sio_event *ev, char *stack, size_t cap, char **heap)
{
	*heap = NULL;
	if (!p->event_escaped) {
		ev->name = p->event;
		return;
	}
	char *out = stack;
	if (p->event.len > cap) {
		out = *heap = malloc(p->event.len);
		if (!out) {
			ev->name = p->event;
			return;
		}
	}
	ssize_t n = sio_json_unescape(p->event.base, p->event.len, out);
	ev->name = (base_slice){out, n < 0 ? 0 : (size_t)n};
}

int sio__rate_ok(sio_client *c, sio_bucket *b, const sio_limit *l, const char *what)
{
	sio_server *srv = c->srv;
	int rc = sio__bucket_take(b, l, uv_now(srv->loop));
	if (rc > 0)
		return 1;
	srv->events_dropped++;
	if (rc < 0) {
		srv->flood_closes++;
		BASE_LOGW("sio",
		          "client %s (%s): event flood: %u %s dropped over the limit of %u/s "
		          "(burst %u): closing the connection",
		          eio_socket_id(c->eio), sio__client_address(c), b->dropped, what, l->rate,
		          (unsigned)(l->cap / 1000));
		b->dropped = 0;
		eio_socket_close(c->eio);
	}
	return 0;
}

/*
 * The auth payload of a socket.io-client 2.x CONNECT: its "?a=1&b=2" after
 * the namespace as a JSON object of strings, as the reference reads it.
 */
static void v2_query_auth(base_slice q, base_buf *out)
{
	base_buf_append(out, "{", 1);
	const char *p = q.base, *end = q.base + q.len;
	int first = 1;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		const char *ke = eq ? eq : e;
		if (ke > p) {
			char *tmp = malloc((size_t)(e - p) + 1);
			if (!tmp)
				break;
			ssize_t kn = base_url_decode(p, (size_t)(ke - p), tmp, 1);
			ssize_t vn = eq ? base_url_decode(eq + 1, (size_t)(e - eq - 1),
			                                  tmp + (kn > 0 ? kn : 0), 1)
			                : 0;
			if (kn >= 0 && vn >= 0) {
				if (!first)
					base_buf_append(out, ",", 1);
				first = 0;
				sio_json_append_string(out, tmp, (size_t)kn);
				base_buf_append(out, ":", 1);
				sio_json_append_string(out, tmp + kn, (size_t)vn);
			}
			free(tmp);
		}
		p = amp ? amp + 1 : end;
	}
	base_buf_append(out, "}", 1);
}

/*
 * Routes a decoded packet. As in the reference server, a CONNECT for a
 * namespace already joined, or any other packet for a namespace not
 * joined, means the client lost track of its state: it is closed.
 */
static void dispatch(sio_client *c, const sio_packet *p, const base_slice *atts, size_t n_atts)
{
	if (p->type == SIO_CONNECT && c->srv->connect_limit.cap &&
	    !sio__rate_ok(c, &c->connects, &c->srv->connect_limit, "namespace connects"))
		return;
	sio_socket *s = sio__client_socket(c, p->nsp);
	if (p->type == SIO_CONNECT) {
		if (s) {
			client_fail(c, "CONNECT for a namespace already joined");
			return;
		}
		sio_namespace *nsp = sio__namespace_for_connect(c->srv, p->nsp);
		if (!nsp) {
			static const char invalid[] = "{\"message\":\"Invalid namespace\"}";
			sio_out out = {.type = SIO_CONNECT_ERROR,
			               .nsp = p->nsp,
			               .id = -1,
			               .data = {invalid, sizeof(invalid) - 1}};
			sio__client_send(c, &out);
			return;
		}
		sio__socket_connect(c, nsp, p->data);
		return;
	}
	if (!s || p->type == SIO_CONNECT_ERROR) {
		client_fail(c, "packet for a namespace not joined");
		return;
	}
	switch (p->type) {
	case SIO_DISCONNECT:
		sio__socket_closed(s, "client namespace disconnect");
		return;
	case SIO_EVENT:
	case SIO_BINARY_EVENT: {
		if (s->state != SIO_SOCK_CONNECTED)
			return; /* still in a middleware */
		if (s->nsp->event_limit.cap &&
		    !sio__rate_ok(c, &s->bucket, &s->nsp->event_limit, "events"))
			return;
		c->srv->stats.events_in++;
		sio_event ev = {s, {0}, p->args, atts, n_atts, p->id};
		char stack[256], *heap;
		unescape_event(p, &ev, stack, sizeof(stack), &heap);
		sio__dispatch_event(s, &ev);
		free(heap);
		return;
	}
	case SIO_ACK:
	case SIO_BINARY_ACK:
		sio__ack_received(s, p->id, p->args, atts, n_atts);
		return;
	default:
		return;
	}
}

/* A socket.io-client 2.x CONNECT names the namespace with "?query": the query is the auth. */
static void dispatch_v2_connect(sio_client *c, const sio_packet *p, const base_slice *atts,
                                size_t n_atts)
{
	sio_packet v2 = *p;
	base_buf auth = BASE_BUF_INIT;
	const char *q = memchr(p->nsp.base, '?', p->nsp.len);
	v2.data = (base_slice){0};
	if (q) {
		v2.nsp.len = (size_t)(q - p->nsp.base);
		v2_query_auth((base_slice){q + 1, p->nsp.len - v2.nsp.len - 1}, &auth);
		v2.data = (base_slice){auth.data, auth.len};
	}
	dispatch(c, &v2, atts, n_atts);
	base_buf_free(&auth);
}

static void on_eio_message(eio_socket *es, int binary, const char *data, size_t len, void *ud)
{
	sio_client *c = eio_socket_data(es);
	if (!c || c->closed)
		return;
	c->refs++;
	sio_decoded in;
	const char *err = NULL;
	int rc = c->srv->parser->decode(&c->dec, binary, data, len, &in, &err);
	if (rc < 0)
		client_fail(c, err ? err : "invalid packet");
	else if (rc > 0 && in.pkt.type == SIO_CONNECT && eio_socket_protocol(c->eio) == 3)
		dispatch_v2_connect(c, &in.pkt, in.atts, in.n_atts);
	else if (rc > 0)
		dispatch(c, &in.pkt, in.atts, in.n_atts);
	sio__decoder_done(&c->dec);
	sio__client_unref(c);
}

static void on_eio_close(eio_socket *es, eio_close_reason reason, void *ud)
{
	sio_client *c = eio_socket_data(es);
	if (!c)
		return;
	c->closed = 1;
	eio_socket_set_data(es, NULL);
	base_timeq_disarm(&c->connect_timer);
	base_list_remove(&c->link);
	const char *why = eio_close_reason_str(reason);
	while (!base_list_empty(&c->sockets)) {
		sio_socket *s = BASE_CONTAINER_OF(c->sockets.next, sio_socket, client_link);
		sio__socket_closed(s, why);
	}
	c->eio = NULL;
	sio__client_unref(c);
}

static void on_eio_upgrade(eio_socket *es, void *ud)
{
	sio_client *c = eio_socket_data(es);
	if (!c || c->closed || !c->srv->admin)
		return;
	c->refs++;
	for (base_list *pos = c->sockets.next; pos != &c->sockets; pos = pos->next) {
		sio_socket *s = BASE_CONTAINER_OF(pos, sio_socket, client_link);
		if (s->state == SIO_SOCK_CONNECTED)
			sio__admin_updated(s);
	}
	sio__client_unref(c);
}

/* ---- server ------------------------------------------------------------ */

sio_server *sio_server_new(http_server *http, const sio_options *opts)
{
	sio_server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	if (opts)
		srv->opts = *opts;
	else
		sio_options_default(&srv->opts);
	srv->parser =
	    srv->opts.parser == SIO_PARSER_MSGPACK ? &sio__parser_msgpack : &sio__parser_json;
	srv->http = http;
	srv->loop = http_server_loop(http);
	sio__limit_set(&srv->connect_limit, srv->opts.event_rate, srv->opts.event_burst,
	               srv->opts.event_drop_limit);
	base_list_init(&srv->namespaces);
	base_list_init(&srv->clients);
	base_timeq_init(http_server_loop(http), &srv->connect_q, srv->opts.connect_timeout_ms,
	                connect_expired);
	srv->connect_q.data = srv;
	eio_callbacks cb = {
	    .on_connection = on_eio_connection,
	    .on_message = on_eio_message,
	    .on_close = on_eio_close,
	    .on_upgrade = on_eio_upgrade,
	    .ud = srv,
	};
	srv->eio = eio_server_new(http, &srv->opts.eio, &cb);
	if (!srv->eio || !sio_of(srv, "/")) {
		sio_server_free(srv);
		return NULL;
	}
	return srv;
}

void sio_server_close_all(sio_server *srv)
{
	/* Each namespace socket hears "server shutting down" through its client. */
	if (srv->eio)
		eio_server_close_all(srv->eio);
}

static void connect_q_closed(uv_handle_t *h)
{
	base_timeq *q = BASE_CONTAINER_OF((uv_timer_t *)h, base_timeq, timer);
	free(q->data);
}

void sio_server_free(sio_server *srv)
{
	if (!srv)
		return;
	sio__admin_free(srv);
	if (srv->eio)
		eio_server_free(srv->eio);
	srv->eio = NULL;
	while (!base_list_empty(&srv->namespaces)) {
		sio_namespace *nsp = BASE_CONTAINER_OF(srv->namespaces.next, sio_namespace, link);
		sio__namespace_free(nsp);
	}
	for (size_t i = 0; i < srv->n_dyns; i++)
		free(srv->dyns[i].pattern);
	free(srv->dyns);
	base_timeq_close(&srv->connect_q, connect_q_closed);
}

eio_server *sio_server_engine(const sio_server *srv)
{
	return srv->eio;
}

uv_loop_t *sio_server_loop(const sio_server *srv)
{
	return http_server_loop(srv->http);
}

uint64_t sio_server_events_dropped(const sio_server *srv)
{
	return srv->events_dropped;
}

uint64_t sio_server_flood_closes(const sio_server *srv)
{
	return srv->flood_closes;
}

size_t sio_server_clients(const sio_server *srv)
{
	return srv->eio ? eio_server_clients(srv->eio) : 0;
}

void sio_server_get_stats(const sio_server *srv, sio_stats *st)
{
	*st = srv->stats;
}

void sio_server_each_namespace(const sio_server *srv,
                               void (*fn)(const char *name, size_t sockets, void *ud), void *ud)
{
	const base_list *pos;

	for (pos = srv->namespaces.next; pos != &srv->namespaces; pos = pos->next) {
		const sio_namespace *nsp = BASE_CONTAINER_OF(pos, sio_namespace, link);
		fn(nsp->name, nsp->n_sockets, ud);
	}
}
