/*
 * chat.c: a tutorial for the Socket.IO C API, as a small chat server.
 *
 *   build/debug/example-chat --port 3000
 *
 * and connect any Socket.IO client to http://127.0.0.1:3000/ with
 * auth {"name": "ada"}.
 *
 * 1. A libuv loop and an HTTP server carry everything.
 * 2. sio_server_new puts Socket.IO on it, at /socket.io/.
 * 3. A middleware decides who may connect.
 * 4. Event handlers get the arguments as the JSON text the client sent.
 * 5. Rooms and broadcasts send one encoding to many sockets.
 * 6. SIGTERM or SIGINT shuts down cleanly: sessions closed, memory freed.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socketio.h"

/* 3. Middleware: refuse clients whose auth has no "name". A middleware
 * calls sio_next or sio_refuse exactly once, now or later. */
static void require_name(sio_socket *s, void *ud)
{
	(void)ud;
	base_slice auth = sio_handshake_auth(s);
	if (!memmem(auth.base, auth.len, "\"name\"", 6)) {
		sio_refuse(s, "a name is required", "{\"hint\":\"auth: {name: ...}\"}");
		return;
	}
	sio_next(s);
}

/* A socket connected: greet it and put it in the lobby. */
static void on_connection(sio_socket *s, void *ud)
{
	(void)ud;
	sio_join(s, "lobby");
	sio_emit_str(s, "welcome", "\"you are in the lobby\"");
}

/* 4. "chat" → everyone else in the lobby gets "chat" with the same
 * arguments: the bytes the client sent are passed on, not re-encoded. */
static void on_chat(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_bcast b;
	sio_bcast_init(&b, sio_socket_namespace(ev->socket));
	sio_bcast_to(&b, "lobby");
	sio_bcast_except(&b, sio_socket_id(ev->socket)); /* every socket is in its own room */
	sio_bcast_emit(&b, "chat", ev->args, ev->attachments, ev->n_attachments);
}

/* "ping" with an acknowledgement: the client's callback gets "pong". */
static void on_ping(const sio_event *ev, void *ud)
{
	(void)ud;
	if (ev->ack_id >= 0)
		sio_ack(ev->socket, ev->ack_id, BASE_SLICE_LIT("\"pong\""), NULL, 0);
}

/* Asking the client for an acknowledgement, with a timeout. */
static void on_are_you_there(sio_socket *s, int timed_out, base_slice args, const base_slice *atts,
                             size_t n_atts, void *ud)
{
	(void)atts;
	(void)n_atts;
	(void)ud;
	if (timed_out)
		printf("%s did not answer\n", sio_socket_id(s));
	else
		printf("%s answered %.*s\n", sio_socket_id(s), (int)args.len, args.base);
}

static void on_poke(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_emit_ack(ev->socket, "are-you-there", BASE_SLICE_LIT(""), NULL, 0, 5000,
	             on_are_you_there, NULL);
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
	(void)ud;
	printf("%s left: %s\n", sio_socket_id(s), reason);
}

/* 6. Shutting down: close every session, then the HTTP server; free the
 * Socket.IO server once the HTTP server's handles are closed. */
typedef struct {
	http_server *http;
	sio_server *io;
	uv_signal_t sigterm, sigint;
} chat_app;

static void on_http_closed(void *ud)
{
	chat_app *app = ud;
	sio_server_free(app->io);
	uv_close((uv_handle_t *)&app->sigterm, NULL);
	uv_close((uv_handle_t *)&app->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	chat_app *app = h->data;
	uv_signal_stop(&app->sigterm);
	uv_signal_stop(&app->sigint);
	sio_server_close_all(app->io);
	http_server_close(app->http, on_http_closed, app);
}

int main(int argc, char **argv)
{
	int port = argc > 2 && strcmp(argv[1], "--port") == 0 ? atoi(argv[2]) : 3000;

	/* 1. The loop and the HTTP server. */
	uv_loop_t *loop = uv_default_loop();
	http_server *http = http_server_new(loop, NULL);

	/* 2. Socket.IO with default options (path /socket.io/, JSON parser). */
	sio_options opts;
	sio_options_default(&opts);
	sio_server *io = sio_server_new(http, &opts);
	if (!http || !io)
		return 1;

	sio_namespace *nsp = sio_of(io, "/");
	sio_use(nsp, require_name, NULL);
	sio_on_connection(nsp, on_connection, NULL);
	sio_on_disconnect(nsp, on_disconnect, NULL);
	sio_on(nsp, "chat", on_chat, NULL);
	sio_on(nsp, "ping", on_ping, NULL);
	sio_on(nsp, "poke", on_poke, NULL);

	if (http_server_listen(http, "127.0.0.1", port))
		return 1;
	chat_app app = {http, io, {0}, {0}};
	uv_signal_init(loop, &app.sigterm);
	uv_signal_init(loop, &app.sigint);
	app.sigterm.data = app.sigint.data = &app;
	uv_signal_start(&app.sigterm, on_signal, SIGTERM);
	uv_signal_start(&app.sigint, on_signal, SIGINT);
	printf("chat on http://127.0.0.1:%d/\n", http_server_port(http));
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	http_server_free(http);
	return uv_loop_close(loop) == 0 ? 0 : 1;
}
