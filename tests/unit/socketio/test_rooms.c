/*
 * test_rooms.c: broadcasts and closes while user code runs inside the
 * library (issue 10), over real sockets, under ASan.
 *
 * The loop and a Socket.IO server run on the main thread; WebSocket clients
 * written by hand run on a thread (tests/unit/http/http_harness.h). Each
 * test builds a fresh server whose listeners do something nasty from inside
 * a callback: broadcast during a broadcast, disconnect the next receiver,
 * close from inside every callback the API offers, fill a receiver's output
 * queue inside a broadcast. The library must not touch freed memory (ASan),
 * must not send to an except room, and must not run on_close/on_disconnect
 * from inside a send.
 */
#include "sio_harness.h"

/* ---- server side (loop thread) ------------------------------------------- */

enum {
	MODE_NESTED_EXCEPT = 1,
	MODE_DISCONNECT_NEXT,
	MODE_CLOSE_NEXT,
	MODE_CLOSE_IN_CONNECTION,
	MODE_CLOSE_IN_MIDDLEWARE,
	MODE_CLOSE_IN_EVENT,
	MODE_CLOSE_IN_ANY,
	MODE_CLOSE_IN_OUTGOING,
	MODE_CLOSE_IN_ACK,
	MODE_CLOSE_IN_ACK_TIMEOUT,
	MODE_CLOSE_IN_DISCONNECT,
	MODE_CLOSE_OTHER_IN_DISCONNECT,
	MODE_QUEUE_FULL_IN_BCAST,
	MODE_ROOM_SLOT,
};

static struct {
	sio_server *io;
	sio_namespace *nsp;
	int mode;
	sio_socket *socks[4]; /* by order of connection; NULL once disconnected */
	int n_conn;
	int nested_done;
	int in_bcast;
	atomic_int disconnects;
	atomic_int disconnect_inside_bcast;
} S;

static void bcast_all(const char *event)
{
	sio_bcast b;
	sio_bcast_init(&b, S.nsp);
	sio_bcast_emit(&b, event, (base_slice){NULL, 0}, NULL, 0);
}

static void close_self(sio_socket *s)
{
	sio_disconnect_all(s);
	/* Whatever comes next must be refused, not crash. */
	sio_emit_str(s, "after", "1");
	sio_disconnect(s);
}

static void on_connection(sio_socket *s, void *ud)
{
	(void)ud;
	int i = S.n_conn++;
	if (i < 4)
		S.socks[i] = s;
	sio_join(s, "r");
	if (S.mode == MODE_NESTED_EXCEPT && i == 2)
		sio_join(s, "ex");
	if (S.mode == MODE_QUEUE_FULL_IN_BCAST && i == 0)
		sio_join(s, "slow");
	if (S.mode == MODE_CLOSE_IN_CONNECTION && i == 0)
		close_self(s);
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
	(void)reason;
	(void)ud;
	for (int i = 0; i < 4; i++)
		if (S.socks[i] == s)
			S.socks[i] = NULL;
	atomic_fetch_add(&S.disconnects, 1);
	if (S.in_bcast)
		atomic_store(&S.disconnect_inside_bcast, 1);
	if (S.mode == MODE_CLOSE_IN_DISCONNECT)
		close_self(s);
	if (S.mode == MODE_CLOSE_OTHER_IN_DISCONNECT)
		for (int i = 0; i < 4; i++)
			if (S.socks[i])
				sio_disconnect_all(S.socks[i]);
}

static void middleware(sio_socket *s, void *ud)
{
	(void)ud;
	if (S.mode == MODE_CLOSE_IN_MIDDLEWARE && S.n_conn == 0) {
		S.n_conn = 1; /* only the first client */
		close_self(s);
	}
	sio_next(s);
}

static void on_ack(sio_socket *s, int timed_out, base_slice args, const base_slice *atts,
                   size_t n_atts, void *ud)
{
	(void)timed_out;
	(void)args;
	(void)atts;
	(void)n_atts;
	(void)ud;
	if (S.mode == MODE_CLOSE_IN_ACK || S.mode == MODE_CLOSE_IN_ACK_TIMEOUT)
		close_self(s);
}

static void on_outgoing(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_socket *s = ev->socket;
	int is_first = ev->name.len == 5 && memcmp(ev->name.base, "first", 5) == 0;
	int is_hello = ev->name.len == 5 && memcmp(ev->name.base, "hello", 5) == 0;
	if (S.mode == MODE_NESTED_EXCEPT && is_first && !S.nested_done) {
		/* A second broadcast, to the same room, while the first is being sent. */
		sio_bcast b;
		S.nested_done = 1;
		sio_bcast_init(&b, S.nsp);
		sio_bcast_to(&b, "r");
		sio_bcast_emit(&b, "second", (base_slice){NULL, 0}, NULL, 0);
	} else if ((S.mode == MODE_DISCONNECT_NEXT || S.mode == MODE_CLOSE_NEXT) && is_first &&
	           s == S.socks[0] && S.socks[1]) {
		/* The next receiver goes while the broadcast walks the room. */
		if (S.mode == MODE_DISCONNECT_NEXT)
			sio_disconnect(S.socks[1]);
		else
			sio_disconnect_all(S.socks[1]);
	} else if (S.mode == MODE_CLOSE_IN_OUTGOING && is_hello) {
		close_self(s);
	}
}

static void on_any(const sio_event *ev, void *ud)
{
	(void)ud;
	if (S.mode == MODE_CLOSE_IN_ANY && ev->name.len == 2 && memcmp(ev->name.base, "go", 2) == 0)
		close_self(ev->socket);
}

static void on_go(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_socket *s = ev->socket;
	sio_bcast b;
	switch (S.mode) {
	case MODE_NESTED_EXCEPT:
		sio_bcast_init(&b, S.nsp);
		sio_bcast_to(&b, "r");
		sio_bcast_except(&b, "ex");
		sio_bcast_emit(&b, "first", BASE_SLICE_LIT("1"), NULL, 0);
		break;
	case MODE_DISCONNECT_NEXT:
	case MODE_CLOSE_NEXT:
		sio_bcast_init(&b, S.nsp);
		sio_bcast_to(&b, "r");
		sio_bcast_emit(&b, "first", BASE_SLICE_LIT("1"), NULL, 0);
		break;
	case MODE_CLOSE_IN_EVENT:
		close_self(s);
		break;
	case MODE_CLOSE_IN_OUTGOING:
		sio_emit_str(s, "hello", "1");
		sio_emit_str(s, "hello", "2");
		break;
	case MODE_CLOSE_IN_ACK:
		sio_emit_ack(s, "ask", BASE_SLICE_LIT("1"), NULL, 0, 5000, on_ack, NULL);
		return; /* the client answers "ask"; its ack closes */
	case MODE_CLOSE_IN_ACK_TIMEOUT:
		sio_emit_ack(s, "ask", BASE_SLICE_LIT("1"), NULL, 0, 20, on_ack, NULL);
		return; /* "done" comes from the close */
	case MODE_QUEUE_FULL_IN_BCAST: {
		static char big[16384];
		memset(big, 'x', sizeof(big));
		big[0] = big[sizeof(big) - 1] = '"';
		sio_bcast_init(&b, S.nsp);
		sio_bcast_to(&b, "slow");
		S.in_bcast = 1;
		for (int i = 0; i < 64; i++)
			sio_bcast_emit(&b, "big", (base_slice){big, sizeof(big)}, NULL, 0);
		S.in_bcast = 0;
		break;
	}
	case MODE_ROOM_SLOT: {
		/*
		 * A room's first membership shares the room's allocation (rooms.c):
		 * the first member leaves while others stay, comes back into the
		 * freed slot, and a socket's own room keeps a second member after
		 * its owner left it.
		 */
		sio_socket *a = S.socks[0], *bs = S.socks[1], *c = S.socks[2];
		CK(a && bs && c);
		sio_leave(a, "r");
		CK(!sio_in_room(a, "r") && sio_in_room(bs, "r") && sio_in_room(c, "r"));
		CK(sio_join(a, "r") == 0 && sio_join(a, "r") == 0 && sio_in_room(a, "r"));
		sio_leave(bs, "r");
		CK(!sio_in_room(bs, "r"));
		CK(sio_join(c, sio_socket_id(a)) == 0);
		sio_leave(a, sio_socket_id(a));
		CK(!sio_in_room(a, sio_socket_id(a)) && sio_in_room(c, sio_socket_id(a)));
		sio_bcast_init(&b, S.nsp);
		sio_bcast_to(&b, "r");
		sio_bcast_emit(&b, "first", BASE_SLICE_LIT("1"), NULL, 0);
		sio_bcast_init(&b, S.nsp);
		sio_bcast_to(&b, sio_socket_id(a));
		sio_bcast_emit(&b, "second", BASE_SLICE_LIT("1"), NULL, 0);
		break;
	}
	default:
		break;
	}
	bcast_all("done");
}

static void server_start(int mode, const http_limits *lim)
{
	memset(&S, 0, sizeof(S));
	S.mode = mode;
	io_start_limits(lim, NULL);
	S.io = g_io;
	S.nsp = sio_of(S.io, "/");
	sio_on_connection(S.nsp, on_connection, NULL);
	sio_on_disconnect(S.nsp, on_disconnect, NULL);
	sio_use(S.nsp, middleware, NULL);
	sio_on_any(S.nsp, on_any, NULL);
	sio_on_any_outgoing(S.nsp, on_outgoing, NULL);
	sio_on(S.nsp, "go", on_go, NULL);
}

static void server_stop(void)
{
	io_stop();
}

/* ---- client side (client thread) ----------------------------------------- */

/* Opens a WebSocket session and connects to "/"; NULL when refused. */
static cl_t *sio_open(int rcvbuf, int expect_connect)
{
	cl_t *c = ws_open_rcvbuf(rcvbuf, NULL);
	char msg[512];
	ws_send_text(c, "40");
	if (expect_connect) {
		CK(ws_recv(c, NULL, msg, sizeof(msg)) > 0 && strncmp(msg, "40{", 3) == 0);
	}
	return c;
}

typedef struct {
	int first, second, done, disconnected, closed, ask;
} seen_t;

/* Reads until "done" (or the connection ends), noting what came. */
static void read_until_done(cl_t *c, seen_t *st, int answer_ask)
{
	char msg[65536];
	memset(st, 0, sizeof(*st));
	for (;;) {
		ssize_t n = ws_recv(c, NULL, msg, sizeof(msg));
		if (n < 0) {
			st->closed = 1;
			return;
		}
		if (strstr(msg, "\"first\""))
			st->first++;
		if (strstr(msg, "\"second\""))
			st->second++;
		if (strncmp(msg, "41", 2) == 0)
			st->disconnected = 1;
		if (strncmp(msg, "42", 2) == 0 && strstr(msg, "\"ask\"")) {
			st->ask = 1;
			if (answer_ask) {
				/* 42<id>["ask",1] → 43<id>[] */
				char reply[64];
				snprintf(reply, sizeof(reply), "43%d[]", atoi(msg + 2));
				ws_send_text(c, reply);
			}
		}
		if (strstr(msg, "\"done\"")) {
			st->done = 1;
			return;
		}
	}
}

/* A fresh client still gets served: the server survived what came before. */
static void server_still_serves(void)
{
	cl_t *c = sio_open(0, 1);
	cl_close(c);
}

/* ---- tests --------------------------------------------------------------- */

static void client_nested_except(void)
{
	cl_t *a = sio_open(0, 1), *b = sio_open(0, 1), *c = sio_open(0, 1);
	seen_t sa, sb, sc;
	ws_send_text(a, "42[\"go\"]");
	read_until_done(a, &sa, 0);
	read_until_done(b, &sb, 0);
	read_until_done(c, &sc, 0);
	CK(sa.first == 1 && sb.first == 1);
	CK(sc.first == 0); /* in the except room: never, whatever a listener did */
	CK(sa.second == 1 && sb.second == 1 && sc.second == 1);
	cl_close(a);
	cl_close(b);
	cl_close(c);
}

static void test_broadcast_inside_broadcast_keeps_except(void **state)
{
	(void)state;
	server_start(MODE_NESTED_EXCEPT, NULL);
	run_client(client_nested_except);
	server_stop();
}

static void client_disconnect_next(void)
{
	cl_t *a = sio_open(0, 1), *b = sio_open(0, 1), *c = sio_open(0, 1);
	seen_t sa, sb, sc;
	ws_send_text(a, "42[\"go\"]");
	read_until_done(a, &sa, 0);
	read_until_done(c, &sc, 0);
	read_until_done(b, &sb, 0);
	CK(sa.first == 1 && sa.done);
	CK(sc.first == 1 && sc.done);
	CK(sb.first == 0 && !sb.done);
	CK(sb.disconnected || sb.closed);
	cl_close(a);
	cl_close(b);
	cl_close(c);
	server_still_serves();
}

static void client_room_slot(void)
{
	cl_t *a = sio_open(0, 1), *b = sio_open(0, 1), *c = sio_open(0, 1);
	seen_t sa, sb, sc;
	ws_send_text(a, "42[\"go\"]");
	read_until_done(a, &sa, 0);
	read_until_done(b, &sb, 0);
	read_until_done(c, &sc, 0);
	CK(sa.first == 1 && sa.second == 0 && sa.done);
	CK(sb.first == 0 && sb.second == 0 && sb.done);
	CK(sc.first == 1 && sc.second == 1 && sc.done);
	cl_close(a);
	cl_close(b);
	cl_close(c);
	server_still_serves();
}

static void test_room_slot(void **state)
{
	(void)state;
	server_start(MODE_ROOM_SLOT, NULL);
	run_client(client_room_slot);
	server_stop();
}

static void test_disconnect_next_receiver_during_broadcast(void **state)
{
	(void)state;
	server_start(MODE_DISCONNECT_NEXT, NULL);
	run_client(client_disconnect_next);
	server_stop();
	server_start(MODE_CLOSE_NEXT, NULL);
	run_client(client_disconnect_next);
	server_stop();
}

/* The first client's socket is closed from inside a callback; a second one is served. */
static void client_close_first(void)
{
	int refused = S.mode == MODE_CLOSE_IN_CONNECTION || S.mode == MODE_CLOSE_IN_MIDDLEWARE;
	cl_t *a = sio_open(0, !refused);
	seen_t sa;
	ws_send_text(a, "42[\"go\"]");
	read_until_done(a, &sa, S.mode != MODE_CLOSE_IN_ACK_TIMEOUT);
	CK(sa.closed); /* the whole connection went */
	cl_close(a);
	server_still_serves();
}

static void run_close_mode(int mode)
{
	server_start(mode, NULL);
	run_client(client_close_first);
	server_stop();
}

static void test_close_from_every_callback(void **state)
{
	(void)state;
	static const int modes[] = {MODE_CLOSE_IN_CONNECTION, MODE_CLOSE_IN_MIDDLEWARE,
	                            MODE_CLOSE_IN_EVENT,      MODE_CLOSE_IN_ANY,
	                            MODE_CLOSE_IN_OUTGOING,   MODE_CLOSE_IN_ACK,
	                            MODE_CLOSE_IN_ACK_TIMEOUT};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		run_close_mode(modes[i]);
}

static void client_close_in_disconnect(void)
{
	cl_t *a = sio_open(0, 1), *b = sio_open(0, 1);
	seen_t sb;
	ws_send_text(a, "41");
	/* b is closed by a's disconnect listener (MODE_CLOSE_OTHER_IN_DISCONNECT) or not. */
	if (S.mode == MODE_CLOSE_OTHER_IN_DISCONNECT) {
		read_until_done(b, &sb, 0);
		CK(sb.closed);
	}
	cl_close(a);
	cl_close(b);
	server_still_serves();
}

static void test_close_from_disconnect_listener(void **state)
{
	(void)state;
	server_start(MODE_CLOSE_IN_DISCONNECT, NULL);
	run_client(client_close_in_disconnect);
	server_stop();
	server_start(MODE_CLOSE_OTHER_IN_DISCONNECT, NULL);
	run_client(client_close_in_disconnect);
	server_stop();
}

static void client_queue_full(void)
{
	/* A client that reads nothing, behind a small receive window. */
	cl_t *slow = sio_open(4096, 1), *a = sio_open(0, 1);
	seen_t sa;
	ws_send_text(a, "42[\"go\"]");
	read_until_done(a, &sa, 0);
	CK(sa.done);
	/* The slow one was dropped, but not from inside the broadcast. */
	for (int i = 0; i < 500 && atomic_load(&S.disconnects) == 0; i++) {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	CK(atomic_load(&S.disconnects) == 1);
	CK(atomic_load(&S.disconnect_inside_bcast) == 0);
	cl_close(slow);
	cl_close(a);
}

static void test_full_output_queue_closes_after_the_broadcast(void **state)
{
	(void)state;
	http_limits l;
	http_limits_default(&l);
	l.max_output_bytes = 65536;
	server_start(MODE_QUEUE_FULL_IN_BCAST, &l);
	run_client(client_queue_full);
	server_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_broadcast_inside_broadcast_keeps_except),
	    cmocka_unit_test(test_room_slot),
	    cmocka_unit_test(test_disconnect_next_receiver_during_broadcast),
	    cmocka_unit_test(test_close_from_every_callback),
	    cmocka_unit_test(test_close_from_disconnect_listener),
	    cmocka_unit_test(test_full_output_queue_closes_after_the_broadcast),
	};
	/* TEST_FILTER=pattern runs only the matching tests (one at a time under ASan). */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
