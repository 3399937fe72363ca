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
 *   "stats"(ack)         acks {published, delivered, ignored, dropped}
 *   "ready"(ack)         acks whether the LISTENs are in place
 *   "broadcast-room"(room, ...args)
 *                        emits "tick"(...args) to room on every node: the
 *                        bench contract's broadcast (tests/bench/README.md),
 *                        for tests/bench/scale.py
 *
 * Usage: cluster-node --port P --database-url URL
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cluster.h"
#include "server_main.h"
#include "sio_test_args.h"
#include "socketio.h"

typedef struct {
	sio_server *io;
	db_pool *db;
	sp_cluster *cluster;
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
	ack_new(ev, json_pack("{s:I,s:I,s:I,s:I}", "published", (json_int_t)st.published,
	                      "delivered", (json_int_t)st.delivered, "ignored",
	                      (json_int_t)st.ignored, "dropped", (json_int_t)st.dropped));
}

static void on_ready(const sio_event *ev, void *ud)
{
	node *n = ud;

	ack_new(ev, json_boolean(sp_cluster_ready(n->cluster)));
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
}

int main(int argc, char **argv)
{
	int port = 3000;
	const char *url = NULL;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--database-url") == 0)
			url = argv[i + 1];
	}
	if (url == NULL) {
		fprintf(stderr, "usage: cluster-node --port P --database-url URL\n");
		return 2;
	}
	uv_loop_t *loop = uv_default_loop();
	http_server *http = http_server_new(loop, NULL);
	sio_options opts;
	sio_options_default(&opts);
	node n = {sio_server_new(http, &opts), db_pool_new(loop, url, 2), NULL};
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
	}
	if (http_server_listen(http, "127.0.0.1", port) != 0) {
		fprintf(stderr, "cluster-node: cannot listen on port %d\n", port);
		return 1;
	}
	int rc = tsm_run(http, stop, free_app, &n);
	db_pool_free(n.db);
	return rc;
}
