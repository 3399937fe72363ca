/*
 * namespace.c: namespaces (static and dynamic), their handlers and
 * middlewares, and the life of a socket in a namespace: connect through the
 * middlewares, events in, disconnect.
 */
#include <fnmatch.h>
#include <stdlib.h>

#include "server_internal.h"

/* ---- namespaces -------------------------------------------------------- */

sio_namespace *sio_find(sio_server *srv, const char *name, size_t len)
{
	base_list *pos;
	for (pos = srv->namespaces.next; pos != &srv->namespaces; pos = pos->next) {
		sio_namespace *nsp = BASE_CONTAINER_OF(pos, sio_namespace, link);
		if (nsp->name_len == len && memcmp(nsp->name, name, len) == 0)
			return nsp;
	}
	return NULL;
}

static sio_namespace *namespace_new(sio_server *srv, const char *name, size_t len)
{
	sio_namespace *nsp = calloc(1, sizeof(*nsp));
	if (!nsp || !(nsp->name = strndup(name, len))) {
		free(nsp);
		return NULL;
	}
	nsp->srv = srv;
	nsp->name_len = len;
	sio__limit_set(&nsp->event_limit, srv->opts.event_rate, srv->opts.event_burst,
	               srv->opts.event_drop_limit);
	base_list_init(&nsp->sockets);
	base_list_init(&nsp->history);
	base_list_init(&nsp->sessions);
	base_list_insert_tail(&srv->namespaces, &nsp->link);
	return nsp;
}

sio_namespace *sio_of(sio_server *srv, const char *name)
{
	size_t len = strlen(name);
	sio_namespace *nsp = sio_find(srv, name, len);
	return nsp ? nsp : namespace_new(srv, name, len);
}

static void handlers_free(sio_handler *h, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(h[i].name);
	free(h);
}

void sio__namespace_free(sio_namespace *nsp)
{
	while (!base_list_empty(&nsp->sockets)) {
		sio_socket *s = BASE_CONTAINER_OF(nsp->sockets.next, sio_socket, nsp_link);
		sio__socket_closed(s, "server shutting down");
	}
	base_list_remove(&nsp->link);
	sio__rooms_free(nsp);
	sio__recovery_free(nsp);
	sio__cluster_free(nsp);
	handlers_free(nsp->handlers, nsp->n_handlers);
	handlers_free(nsp->any_in, nsp->n_any_in);
	handlers_free(nsp->any_out, nsp->n_any_out);
	free(nsp->mws);
	free(nsp->name);
	free(nsp);
}

const char *sio_namespace_name(const sio_namespace *nsp)
{
	return nsp->name;
}

sio_server *sio_namespace_server(const sio_namespace *nsp)
{
	return nsp->srv;
}

size_t sio_namespace_size(const sio_namespace *nsp)
{
	return nsp->n_sockets;
}

void sio_namespace_event_limit(sio_namespace *nsp, unsigned rate, unsigned burst,
                               unsigned drop_limit)
{
	sio__limit_set(&nsp->event_limit, rate, burst, drop_limit);
}

int sio_dynamic(sio_server *srv, const char *pattern, int (*match)(const char *name, void *ud),
                void (*setup)(sio_namespace *nsp, void *ud), void *ud)
{
	sio_dyn *d = realloc(srv->dyns, (srv->n_dyns + 1) * sizeof(*d));
	if (!d)
		return BASE_ENOMEM;
	srv->dyns = d;
	d += srv->n_dyns;
	d->pattern = pattern ? strdup(pattern) : NULL;
	if (pattern && !d->pattern)
		return BASE_ENOMEM;
	d->match = match;
	d->setup = setup;
	d->ud = ud;
	srv->n_dyns++;
	return 0;
}

sio_namespace *sio__namespace_for_connect(sio_server *srv, base_slice name)
{
	sio_namespace *nsp = sio_find(srv, name.base, name.len);
	if (nsp || !srv->n_dyns || name.len > 256)
		return nsp;
	char buf[257];
	memcpy(buf, name.base, name.len);
	buf[name.len] = 0;
	if (memchr(name.base, 0, name.len))
		return NULL;
	for (size_t i = 0; i < srv->n_dyns; i++) {
		sio_dyn *d = &srv->dyns[i];
		int ok = d->pattern ? fnmatch(d->pattern, buf, 0) == 0
		                    : (d->match && d->match(buf, d->ud));
		if (!ok)
			continue;
		nsp = namespace_new(srv, name.base, name.len);
		if (nsp && d->setup)
			d->setup(nsp, d->ud);
		return nsp;
	}
	return NULL;
}

/* ---- handlers ---------------------------------------------------------- */

static int handler_add(sio_handler **arr, size_t *n, const char *name, sio_event_fn fn, void *ud)
{
	sio_handler *h = realloc(*arr, (*n + 1) * sizeof(**arr));
	if (!h)
		return BASE_ENOMEM;
	*arr = h;
	h += *n;
	h->name = name ? strdup(name) : NULL;
	if (name && !h->name)
		return BASE_ENOMEM;
	h->name_len = name ? strlen(name) : 0;
	h->fn = fn;
	h->ud = ud;
	(*n)++;
	return 0;
}

int sio_on(sio_namespace *nsp, const char *name, sio_event_fn fn, void *ud)
{
	return handler_add(&nsp->handlers, &nsp->n_handlers, name, fn, ud);
}

int sio_on_any(sio_namespace *nsp, sio_event_fn fn, void *ud)
{
	return handler_add(&nsp->any_in, &nsp->n_any_in, NULL, fn, ud);
}

int sio_on_any_outgoing(sio_namespace *nsp, sio_event_fn fn, void *ud)
{
	return handler_add(&nsp->any_out, &nsp->n_any_out, NULL, fn, ud);
}

void sio_on_connection(sio_namespace *nsp, sio_socket_fn fn, void *ud)
{
	nsp->on_connection = fn;
	nsp->on_connection_ud = ud;
}

void sio_on_disconnect(sio_namespace *nsp, sio_disconnect_fn fn, void *ud)
{
	nsp->on_disconnect = fn;
	nsp->on_disconnect_ud = ud;
}

int sio_use(sio_namespace *nsp, sio_middleware_fn fn, void *ud)
{
	sio_mw *m = realloc(nsp->mws, (nsp->n_mws + 1) * sizeof(*m));
	if (!m)
		return BASE_ENOMEM;
	nsp->mws = m;
	m[nsp->n_mws].fn = fn;
	m[nsp->n_mws].ud = ud;
	nsp->n_mws++;
	return 0;
}

void sio__dispatch_event(sio_socket *s, const sio_event *ev)
{
	sio_namespace *nsp = s->nsp;
	s->refs++;
	if (nsp->srv->admin)
		sio__admin_event(s, 0, ev->name, ev->args);
	for (size_t i = 0; i < nsp->n_any_in && s->state == SIO_SOCK_CONNECTED; i++)
		nsp->any_in[i].fn(ev, nsp->any_in[i].ud);
	for (size_t i = 0; i < nsp->n_handlers && s->state == SIO_SOCK_CONNECTED; i++) {
		sio_handler *h = &nsp->handlers[i];
		if (h->name_len == ev->name.len && memcmp(h->name, ev->name.base, h->name_len) == 0)
			h->fn(ev, h->ud);
	}
	sio__socket_unref(s);
}

/* ---- socket lifetime --------------------------------------------------- */

void sio__socket_unref(sio_socket *s)
{
	if (--s->refs > 0)
		return;
	free(s->data_json);
	free(s);
}

static void socket_detach(sio_socket *s)
{
	base_list_remove(&s->client_link);
	if (s->client) {
		sio__client_unref(s->client);
		s->client = NULL;
	}
}

/* The CONNECT reply, then "connection". */
static void socket_connected(sio_socket *s)
{
	sio_namespace *nsp = s->nsp;
	sio_client *c = s->client;
	s->state = SIO_SOCK_CONNECTED;
	base_list_insert_tail(&nsp->sockets, &s->nsp_link);
	nsp->n_sockets++;
	base_timeq_disarm(&c->connect_timer);
	if (!s->recovered)
		sio_join(s, s->id);

	char data[80];
	const char *pid = sio__pid(s);
	int n = pid && pid[0]
	            ? snprintf(data, sizeof(data), "{\"sid\":\"%s\",\"pid\":\"%s\"}", s->id, pid)
	            : snprintf(data, sizeof(data), "{\"sid\":\"%s\"}", s->id);
	sio_out out = {.type = SIO_CONNECT,
	               .nsp = {nsp->name, nsp->name_len},
	               .id = -1,
	               .data = {data, (size_t)n}};
	if (eio_socket_protocol(c->eio) == 3)
		out.data = (base_slice){0}; /* socket.io-client 2.x: "0" or "0/nsp," */
	sio__client_send(c, &out);
	s->refs++;
	if (s->recovered)
		sio__session_replay(s);
	if (nsp->srv->admin && s->state == SIO_SOCK_CONNECTED)
		sio__admin_connected(s);
	if (nsp->on_connection && s->state == SIO_SOCK_CONNECTED)
		nsp->on_connection(s, nsp->on_connection_ud);
	sio__socket_unref(s);
}

/*
 * References: a socket holds one for being alive (dropped when it
 * disconnects or is refused), and one more for each middleware that has
 * been called and has not yet called sio_next or sio_refuse.
 */
static void run_middlewares(sio_socket *s)
{
	sio_namespace *nsp = s->nsp;
	if (s->state != SIO_SOCK_CONNECTING)
		return;
	if (s->mw_next < nsp->n_mws &&
	    !(s->recovered && nsp->srv->opts.recovery_skip_middlewares)) {
		sio_mw *m = &nsp->mws[s->mw_next++];
		s->refs++;
		m->fn(s, m->ud);
		return;
	}
	socket_connected(s);
}

void sio_next(sio_socket *s)
{
	run_middlewares(s);
	sio__socket_unref(s);
}

void sio_refuse(sio_socket *s, const char *message, const char *data_json)
{
	if (s->state == SIO_SOCK_CONNECTING) {
		base_buf b = BASE_BUF_INIT;
		base_buf_append_str(&b, "{\"message\":");
		sio_json_append_string(&b, message ? message : "", message ? strlen(message) : 0);
		if (data_json && *data_json &&
		    sio_json_validate(data_json, strlen(data_json)) == 0) {
			base_buf_append_str(&b, ",\"data\":");
			base_buf_append_str(&b, data_json);
		}
		base_buf_append(&b, "}", 1);
		if (eio_socket_protocol(s->client->eio) == 3) {
			/* socket.io-client 2.x gets the data, or else the message, alone. */
			b.len = 0;
			if (data_json && *data_json &&
			    sio_json_validate(data_json, strlen(data_json)) == 0)
				base_buf_append_str(&b, data_json);
			else
				sio_json_append_string(&b, message ? message : "",
				                       message ? strlen(message) : 0);
		}
		sio_out out = {.type = SIO_CONNECT_ERROR,
		               .nsp = {s->nsp->name, s->nsp->name_len},
		               .id = -1,
		               .data = {b.data, b.len}};
		sio__client_send(s->client, &out);
		base_buf_free(&b);
		s->state = SIO_SOCK_DISCONNECTED;
		socket_detach(s);
		s->refs--; /* the connection's; the middleware's still holds s */
	}
	sio__socket_unref(s);
}

void sio__socket_connect(sio_client *c, sio_namespace *nsp, base_slice auth)
{
	if (!auth.len)
		auth = BASE_SLICE_LIT("{}");
	/* The auth lives in the socket's own allocation, after the struct. */
	int with_pid = nsp->srv->opts.recovery_ms != 0;
	sio_socket *s = calloc(1, offsetof(sio_socket, auth_buf) + auth.len + 1 +
	                              (with_pid ? SIO_ID_LEN + 1 : 0));
	if (!s)
		return;
	s->has_pid = (uint8_t)with_pid;
	memcpy(s->auth_buf, auth.base, auth.len);
	s->auth_buf[auth.len] = 0;
	s->auth_len = auth.len;
	s->client = c;
	c->refs++;
	s->nsp = nsp;
	s->refs = 1; /* dropped by the disconnect */
	base_list_init(&s->nsp_link);
	base_list_init(&s->rooms);
	base_list_init(&s->acks);
	base_list_insert_tail(&c->sockets, &s->client_link);
	s->state = SIO_SOCK_CONNECTING;
	sio__bucket_init(&s->bucket, &nsp->event_limit, uv_now(nsp->srv->loop));

	if (!(s->has_pid && sio__session_restore(s))) {
		base_random_id(s->id, SIO_ID_BYTES);
		if (s->has_pid)
			base_random_id(sio__pid(s), SIO_ID_BYTES);
	}
	run_middlewares(s);
}

void sio__socket_closed(sio_socket *s, const char *reason)
{
	if (s->state == SIO_SOCK_DISCONNECTED)
		return;
	int was_connected = s->state == SIO_SOCK_CONNECTED;
	s->state = SIO_SOCK_DISCONNECTED;
	s->refs++;
	if (was_connected) {
		sio_namespace *nsp = s->nsp;
		if (s->has_pid && strcmp(reason, "client namespace disconnect") &&
		    strcmp(reason, "server namespace disconnect"))
			sio__session_save(s);
		base_list_remove(&s->nsp_link);
		nsp->n_sockets--;
		sio__acks_cancel(s);
		if (nsp->on_disconnect)
			nsp->on_disconnect(s, reason, nsp->on_disconnect_ud);
		if (nsp->srv->admin)
			sio__admin_disconnected(s, reason);
		sio__leave_all(s);
	}
	/* A socket still in a middleware lives on until sio_next / sio_refuse. */
	socket_detach(s);
	s->refs--; /* the connection's reference; ours still holds s */
	sio__socket_unref(s);
}

/* ---- accessors --------------------------------------------------------- */

const char *sio_socket_id(const sio_socket *s)
{
	return s->id;
}

sio_namespace *sio_socket_namespace(const sio_socket *s)
{
	return s->nsp;
}

int sio_socket_connected(const sio_socket *s)
{
	return s->state == SIO_SOCK_CONNECTED;
}

int sio_socket_alive(const sio_socket *s)
{
	return s->state != SIO_SOCK_DISCONNECTED;
}

int sio_socket_recovered(const sio_socket *s)
{
	return s->recovered;
}

eio_socket *sio_socket_engine(const sio_socket *s)
{
	return s->client ? s->client->eio : NULL;
}

void sio_socket_set_data(sio_socket *s, void *ud)
{
	s->user = ud;
}

void *sio_socket_data(const sio_socket *s)
{
	return s->user;
}

const base_slice *sio_handshake_header(const sio_socket *s, const char *name)
{
	if (!s->client)
		return NULL;
	for (size_t i = 0; i < s->client->n_headers; i++)
		if (base_slice_caseeq(s->client->headers[i].name, name))
			return &s->client->headers[i].value;
	return NULL;
}

base_slice sio_handshake_query(const sio_socket *s)
{
	return s->client ? s->client->query : (base_slice){"", 0};
}

base_slice sio_handshake_auth(const sio_socket *s)
{
	return (base_slice){s->auth_buf, s->auth_len};
}

const char *sio_handshake_address(const sio_socket *s)
{
	return s->client ? sio__client_address(s->client) : "";
}

uint64_t sio_handshake_time(const sio_socket *s)
{
	return s->client ? s->client->time_ms : 0;
}

void sio_disconnect(sio_socket *s)
{
	if (s->state != SIO_SOCK_CONNECTED)
		return;
	sio_out out = {.type = SIO_DISCONNECT, .nsp = {s->nsp->name, s->nsp->name_len}, .id = -1};
	sio__client_send(s->client, &out);
	sio__socket_closed(s, "server namespace disconnect");
}

void sio_disconnect_all(sio_socket *s)
{
	sio_client *c = s->client;
	if (!c || c->closed)
		return;
	/*
	 * Every namespace hears a DISCONNECT, then the connection closes. A socket
	 * already disconnecting (this may be called from its own on_disconnect or
	 * ack callbacks) is skipped; the list is searched again after each, as
	 * the listeners may have closed others.
	 */
	c->refs++;
	for (;;) {
		sio_socket *each = NULL;
		base_list *pos;
		for (pos = c->sockets.next; pos != &c->sockets && !each; pos = pos->next) {
			sio_socket *t = BASE_CONTAINER_OF(pos, sio_socket, client_link);
			if (t->state != SIO_SOCK_DISCONNECTED)
				each = t;
		}
		if (!each)
			break;
		if (each->state == SIO_SOCK_CONNECTED)
			sio_disconnect(each);
		else
			sio__socket_closed(each, "server namespace disconnect");
	}
	if (!c->closed)
		eio_socket_close(c->eio);
	sio__client_unref(c);
}
