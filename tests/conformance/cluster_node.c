/*
 * cluster-node: a Socket.IO server whose broadcasts on "/" and "/chat" go to
 * the other processes sharing its PostgreSQL database (spaces/cluster.h),
 * for tests/e2e/cluster.test.js next to tests/conformance/reference_cluster.js
 * (a Node.js server with @socket.io/postgres-adapter), which answers the
 * same events:
 *
 *   "join"(room, ack)    joins the room; acks "ok"
 *   "leave"(room, ack)   leaves it; acks "ok"
 *   "bcast"(opts, ...args, ack)
 *                        broadcasts opts.event (default "msg") with args to
 *                        opts.rooms except opts.except (volatile when
 *                        opts.volatile), the sender included; acks "sent"
 *   "sjoin"(opts, room, ack), "sleave"(opts, room, ack)
 *                        the sockets opts targets (rooms, except) join or
 *                        leave room, on every node; acks their local count
 *   "sdisconnect"(opts, close, ack)
 *                        disconnects them (close: whole connections); acks
 *                        the local count
 *   "stats"(ack)         acks {published, delivered, ignored, dropped, requests,
 *                        timeouts, answered}
 *   "ready"(ack)         acks whether the LISTENs are in place
 *   "broadcast-room"(room, ...args)
 *                        emits "tick"(...args) to room on every node: the
 *                        bench contract's broadcast (tests/bench/README.md),
 *                        for tests/bench/scale.py
 *
 * Requests across nodes (spaces/cluster.h), each acking {err, ...} with err
 * null or "timeout" (the answers that came are there too):
 *
 *   "setdata"(value, ack)    socket.data = value; acks "ok"
 *   "fetch"(opts, ack)       fetchSockets of opts.rooms except opts.except;
 *                            acks {err, sockets: [{id, handshake, rooms, data}]}
 *   "sse"(event, arg, ack)   serverSideEmit(event, arg) waiting for one answer
 *                            per other node; acks {err, replies, bins}: bins[i]
 *                            lists reply i's binary attachments in hex
 *   "sse-noack"(event, arg, ack)
 *                            serverSideEmit(event, arg) with no answer; acks "sent"
 *   "bcastack"(opts, event, arg, ack)
 *                            emits event(arg) to opts.rooms except opts.except
 *                            asking each client for an ack within opts.timeout
 *                            ms; acks {err, replies, bins}
 *   "servercount"(ack)       acks the nodes known on this namespace plus one
 *   "notes"(ack)             acks the serverSideEmit "note" arguments this
 *                            node received, in order
 *
 * Every namespace answers the other nodes' serverSideEmit "whoami"(arg, cb)
 * with cb({node: NAME, arg}) (binary arguments go back as they came) and
 * records "note"(arg).
 *
 * Usage: cluster-node --port P --database-url URL [--name NAME]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cluster.h"
#include "server_main.h"
#include "sio_test_args.h"
#include "socketio.h"

/* A request waiting for its answers, for the socket that asked (NULL once it is gone). */
typedef struct pending {
	struct pending *next;
	sio_socket *s;
	int64_t ack_id;
	int fetch;
} pending;

typedef struct {
	sio_server *io;
	db_pool *db;
	sp_cluster *cluster;
	const char *name;
	json_t *notes;
	pending *pend;
} node;

/* Acks with v and drops it. */
static void ack_new(const sio_event *ev, json_t *v)
{
	ack_json(ev, v);
	json_decref(v);
}

static void on_join(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev);
	if (json_is_string(json_array_get(a, 0)))
		sio_join(ev->socket, json_string_value(json_array_get(a, 0)));
	json_decref(a);
	ack_new(ev, json_string("ok"));
}

static void on_leave(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev);
	if (json_is_string(json_array_get(a, 0)))
		sio_leave(ev->socket, json_string_value(json_array_get(a, 0)));
	json_decref(a);
	ack_new(ev, json_string("ok"));
}

/* b from {rooms, except, volatile}; room names point into opts. */
static void bcast_from(sio_bcast *b, const sio_event *ev, json_t *opts)
{
	json_t *r;
	size_t i;

	sio_bcast_init(b, sio_socket_namespace(ev->socket));
	json_array_foreach(json_object_get(opts, "rooms"), i, r)
	{
		if (json_is_string(r))
			sio_bcast_to(b, json_string_value(r));
	}
	json_array_foreach(json_object_get(opts, "except"), i, r)
	{
		if (json_is_string(r))
			sio_bcast_except(b, json_string_value(r));
	}
	b->is_volatile = json_is_true(json_object_get(opts, "volatile"));
}

static void on_bcast(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev), *opts = json_array_get(a, 0);
	base_buf args = BASE_BUF_INIT;
	const char *event = json_string_value(json_object_get(opts, "event"));
	sio_bcast b;

	if (!json_is_object(opts)) {
		json_decref(a);
		ack_new(ev, json_string("bad options"));
		return;
	}
	bcast_from(&b, ev, opts);
	/* Placeholders keep their numbers: opts carries no binary. */
	args_text(a, 1, json_array_size(a), &args);
	sio_bcast_emit(&b, event ? event : "msg", (base_slice){args.data, args.len},
	               ev->attachments, ev->n_attachments);
	base_buf_free(&args);
	json_decref(a);
	ack_new(ev, json_string("sent"));
}

static void on_broadcast_room(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev);
	base_buf args = BASE_BUF_INIT;
	sio_bcast b;

	if (json_is_string(json_array_get(a, 0))) {
		sio_bcast_init(&b, sio_socket_namespace(ev->socket));
		sio_bcast_to(&b, json_string_value(json_array_get(a, 0)));
		args_text(a, 1, json_array_size(a), &args);
		sio_bcast_emit(&b, "tick", (base_slice){args.data, args.len}, ev->attachments,
		               ev->n_attachments);
		base_buf_free(&args);
	}
	json_decref(a);
}

static void on_sockets(const sio_event *ev, void *ud)
{
	const char *what = ud;
	json_t *a = args_array(ev), *opts = json_array_get(a, 0), *arg = json_array_get(a, 1);
	sio_bcast b;
	int n;

	if (!json_is_object(opts)) {
		json_decref(a);
		ack_new(ev, json_string("bad options"));
		return;
	}
	bcast_from(&b, ev, opts);
	if (strcmp(what, "join") == 0 && json_is_string(arg))
		n = sio_bcast_join(&b, json_string_value(arg));
	else if (strcmp(what, "leave") == 0 && json_is_string(arg))
		n = sio_bcast_leave(&b, json_string_value(arg));
	else if (strcmp(what, "disconnect") == 0)
		n = sio_bcast_disconnect(&b, json_is_true(arg));
	else
		n = -1;
	/* ev->socket is held during the call; disconnected by its own request, it gets no ack. */
	ack_new(ev, json_integer(n));
	json_decref(a);
}

static void on_stats(const sio_event *ev, void *ud)
{
	node *n = ud;
	sp_cluster_stats st;

	sp_cluster_stats_get(n->cluster, &st);
	ack_new(ev, json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "published",
	                      (json_int_t)st.published, "delivered", (json_int_t)st.delivered,
	                      "ignored", (json_int_t)st.ignored, "dropped", (json_int_t)st.dropped,
	                      "requests", (json_int_t)st.requests, "timeouts",
	                      (json_int_t)st.timeouts, "answered", (json_int_t)st.answered));
}

static void on_ready(const sio_event *ev, void *ud)
{
	node *n = ud;

	ack_new(ev, json_boolean(sp_cluster_ready(n->cluster)));
}

/* ---- requests across nodes ------------------------------------------------ */

static node *the_node;

static pending *pending_new(const sio_event *ev, int fetch)
{
	pending *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->s = ev->socket;
	p->ack_id = ev->ack_id;
	p->fetch = fetch;
	p->next = the_node->pend;
	the_node->pend = p;
	return p;
}

/* Unlinks p and acks v (taken) to its socket if it is still there. */
static void pending_answer(pending *p, json_t *v)
{
	for (pending **pp = &the_node->pend; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (t && p->s && p->ack_id >= 0)
		sio_ack(p->s, p->ack_id, (base_slice){t, strlen(t)}, NULL, 0);
	free(t);
	json_decref(v);
	free(p);
}

static void on_gone(sio_socket *s, const char *reason, void *ud)
{
	(void)reason;
	(void)ud;
	for (pending *p = the_node->pend; p; p = p->next)
		if (p->s == s)
			p->s = NULL;
}

static json_t *err_json(int err)
{
	return err == 0 ? json_null()
	                : json_string(err == SIO_ETIMEDOUT ? "timeout" : base_strerror(err));
}

static json_t *load(base_slice t)
{
	json_t *v = json_loadb(t.base, t.len, JSON_DECODE_ANY, NULL);
	return v ? v : json_string("<invalid JSON>");
}

static void fetched(int err, const sio_socket_desc *v, size_t n, void *ud)
{
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{s:s,s:o,s:o,s:o}", "id", v[i].id,
		                                      "handshake", load(v[i].handshake), "rooms",
		                                      load(v[i].rooms), "data", load(v[i].data)));
	pending_answer(ud, json_pack("{s:o,s:o}", "err", err_json(err), "sockets", list));
}

static void replied(int err, const sio_value *v, size_t n, void *ud)
{
	static const char hex[] = "0123456789abcdef";
	json_t *list = json_array(), *bins = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *b = json_array();
		json_array_append_new(list, load(v[i].json));
		for (size_t k = 0; k < v[i].n_attachments; k++) {
			base_buf h = BASE_BUF_INIT;
			for (size_t j = 0; j < v[i].attachments[k].len; j++) {
				unsigned char ch = (unsigned char)v[i].attachments[k].base[j];
				base_buf_append(&h, &hex[ch >> 4], 1);
				base_buf_append(&h, &hex[ch & 15], 1);
			}
			json_array_append_new(b, json_stringn(h.data ? h.data : "", h.len));
			base_buf_free(&h);
		}
		json_array_append_new(bins, b);
	}
	pending_answer(
	    ud, json_pack("{s:o,s:o,s:o}", "err", err_json(err), "replies", list, "bins", bins));
}

static void on_setdata(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev);
	char *t = json_dumps(json_array_get(a, 0), JSON_COMPACT | JSON_ENCODE_ANY);
	int rc = t ? sio_socket_set_data_json(ev->socket, (base_slice){t, strlen(t)}) : -1;
	free(t);
	json_decref(a);
	ack_new(ev, json_string(rc == 0 ? "ok" : "failed"));
}

static void on_fetch(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev);
	sio_bcast b;
	pending *p = pending_new(ev, 1);
	bcast_from(&b, ev, json_array_get(a, 0));
	if (!p || sio_fetch_sockets(&b, 5000, fetched, p) != 0)
		ack_new(ev, json_string("failed"));
	json_decref(a);
}

static void on_sse(const sio_event *ev, void *ud)
{
	int with_ack = ud != NULL;
	json_t *a = args_array(ev);
	const char *event = json_string_value(json_array_get(a, 0));
	base_buf args = BASE_BUF_INIT;
	args_text(a, 1, json_array_size(a), &args);
	pending *p = with_ack ? pending_new(ev, 0) : NULL;
	int rc = event ? sio_server_side_emit(sio_socket_namespace(ev->socket), event,
	                                      (base_slice){args.data, args.len}, ev->attachments,
	                                      ev->n_attachments, 5000, with_ack ? replied : NULL, p)
	               : -1;
	if (!with_ack)
		ack_new(ev, json_string(rc == 0 ? "sent" : "failed"));
	else if (rc != 0)
		pending_answer(p, json_string("failed"));
	base_buf_free(&args);
	json_decref(a);
}

static void on_bcastack(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev), *opts = json_array_get(a, 0);
	const char *event = json_string_value(json_array_get(a, 1));
	json_t *t = json_object_get(opts, "timeout");
	base_buf args = BASE_BUF_INIT;
	sio_bcast b;
	bcast_from(&b, ev, opts);
	args_text(a, 2, json_array_size(a), &args);
	pending *p = pending_new(ev, 0);
	int rc = event && p
	             ? sio_bcast_emit_ack(
	                   &b, event, (base_slice){args.data, args.len}, ev->attachments,
	                   ev->n_attachments,
	                   json_is_integer(t) ? (unsigned)json_integer_value(t) : 5000, replied, p)
	             : -1;
	if (rc != 0 && p)
		pending_answer(p, json_string("failed"));
	base_buf_free(&args);
	json_decref(a);
}

static void on_servercount(const sio_event *ev, void *ud)
{
	node *n = ud;
	const char *nsp = sio_namespace_name(sio_socket_namespace(ev->socket));
	ack_new(ev, json_integer(sp_cluster_nodes(n->cluster, nsp) + 1));
}

static void on_notes(const sio_event *ev, void *ud)
{
	node *n = ud;
	ack_json(ev, n->notes);
}

/* The other nodes' serverSideEmit. */
static void on_server_event(const sio_server_event *ev, void *ud)
{
	node *n = ud;
	base_buf b = BASE_BUF_INIT;
	base_buf_append(&b, "[", 1);
	base_buf_append(&b, ev->args.base, ev->args.len);
	base_buf_append(&b, "]", 1);
	json_t *a = json_loadb(b.data, b.len, 0, NULL);
	base_buf_free(&b);
	if (ev->name.len == 4 && memcmp(ev->name.base, "note", 4) == 0)
		json_array_append(n->notes,
		                  json_array_get(a, 0) ? json_array_get(a, 0) : json_null());
	if (ev->ack) {
		json_t *r = json_pack("{s:s,s:O}", "node", n->name, "arg",
		                      json_array_get(a, 0) ? json_array_get(a, 0) : json_null());
		char *t = json_dumps(r, JSON_COMPACT);
		if (ev->name.len == 6 && memcmp(ev->name.base, "whoami", 6) == 0 && t)
			sio_server_ack_send(ev->ack, (base_slice){t, strlen(t)}, ev->attachments,
			                    ev->n_attachments);
		else
			sio_server_ack_drop(ev->ack);
		free(t);
		json_decref(r);
	}
	json_decref(a);
}

static void stop(void *ud)
{
	node *n = ud;

	sp_cluster_free(n->cluster);
	sio_server_close_all(n->io);
	db_pool_close(n->db, NULL, NULL);
}

static void free_app(void *ud)
{
	node *n = ud;

	sio_server_free(n->io);
	while (n->pend) {
		pending *p = n->pend;
		n->pend = p->next;
		free(p);
	}
	json_decref(n->notes);
}

int main(int argc, char **argv)
{
	int port = 3000;
	const char *url = NULL;
	const char *name = "C";

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--database-url") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--name") == 0)
			name = argv[i + 1];
	}
	if (url == NULL) {
		fprintf(stderr, "usage: cluster-node --port P --database-url URL\n");
		return 2;
	}
	uv_loop_t *loop = uv_default_loop();
	http_server *http = http_server_new(loop, NULL);
	sio_options opts;
	sio_options_default(&opts);
	node n = {
	    sio_server_new(http, &opts), db_pool_new(loop, url, 2), NULL, name, json_array(), NULL};
	the_node = &n;
	if (!n.io || !n.db || !(n.cluster = sp_cluster_new(n.db, loop)))
		return 1;
	static const char *const names[] = {"/", "/chat"};
	for (size_t i = 0; i < 2; i++) {
		sio_namespace *nsp = sio_of(n.io, names[i]);
		if (!nsp || sp_cluster_attach(n.cluster, nsp) != 0)
			return 1;
		sio_on(nsp, "join", on_join, &n);
		sio_on(nsp, "leave", on_leave, &n);
		sio_on(nsp, "bcast", on_bcast, &n);
		sio_on(nsp, "stats", on_stats, &n);
		sio_on(nsp, "sjoin", on_sockets, "join");
		sio_on(nsp, "sleave", on_sockets, "leave");
		sio_on(nsp, "sdisconnect", on_sockets, "disconnect");
		sio_on(nsp, "ready", on_ready, &n);
		sio_on(nsp, "broadcast-room", on_broadcast_room, &n);
		sio_on(nsp, "setdata", on_setdata, &n);
		sio_on(nsp, "fetch", on_fetch, &n);
		sio_on(nsp, "sse", on_sse, "ack");
		sio_on(nsp, "sse-noack", on_sse, NULL);
		sio_on(nsp, "bcastack", on_bcastack, &n);
		sio_on(nsp, "servercount", on_servercount, &n);
		sio_on(nsp, "notes", on_notes, &n);
		sio_on_disconnect(nsp, on_gone, &n);
		sio_on_server_side_emit(nsp, NULL, on_server_event, &n);
	}
	if (http_server_listen(http, "127.0.0.1", port) != 0) {
		fprintf(stderr, "cluster-node: cannot listen on port %d\n", port);
		return 1;
	}
	int rc = tsm_run(http, stop, free_app, &n);
	db_pool_free(n.db);
	return rc;
}
