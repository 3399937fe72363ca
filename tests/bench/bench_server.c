/*
 * bench-server: our Socket.IO server answering the bench contract
 * (tests/bench/README.md), the counterpart of node_bench_server.js:
 *
 *   message(...args)              -> emit "message-back" with the same args
 *   message-with-ack(...args, cb) -> cb(...args)
 *   join(room, cb)                -> join the room, then cb()
 *   broadcast-room(room, ...args) -> emit "tick" with args to the room
 *
 *   bench-server --port P
 *
 * Listens on 127.0.0.1, namespace "/", WebSocket and polling, default
 * options otherwise. Prints "listening 127.0.0.1:<port> pid <pid>" on
 * stdout once it accepts connections; SIGTERM/SIGINT exit with status 0.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server_main.h"
#include "socketio.h"

static http_server *g_http;
static sio_server *g_sio;

static void on_message(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_emit(ev->socket, "message-back", ev->args, ev->attachments, ev->n_attachments);
}

static void on_message_with_ack(const sio_event *ev, void *ud)
{
	(void)ud;
	if (ev->ack_id >= 0)
		sio_ack(ev->socket, ev->ack_id, ev->args, ev->attachments, ev->n_attachments);
}

/*
 * Splits args into a leading plain JSON string (no escapes: room names here
 * are simple) and the rest. Returns 0, or -1 when the first argument is not
 * such a string.
 */
static int split_room(base_slice args, char *room, size_t cap, base_slice *rest)
{
	if (args.len < 2 || args.base[0] != '"')
		return -1;
	const char *end = memchr(args.base + 1, '"', args.len - 1);
	if (!end || memchr(args.base + 1, '\\', (size_t)(end - args.base - 1)))
		return -1;
	size_t n = (size_t)(end - args.base - 1);
	if (n >= cap)
		return -1;
	memcpy(room, args.base + 1, n);
	room[n] = 0;
	const char *p = end + 1, *stop = args.base + args.len;
	if (p < stop && *p == ',')
		p++;
	*rest = (base_slice){p, (size_t)(stop - p)};
	return 0;
}

static void on_join(const sio_event *ev, void *ud)
{
	(void)ud;
	char room[256];
	base_slice rest;
	if (split_room(ev->args, room, sizeof(room), &rest) == 0)
		sio_join(ev->socket, room);
	if (ev->ack_id >= 0)
		sio_ack(ev->socket, ev->ack_id, BASE_SLICE_LIT(""), NULL, 0);
}

static void on_broadcast_room(const sio_event *ev, void *ud)
{
	(void)ud;
	char room[256];
	base_slice rest;
	if (split_room(ev->args, room, sizeof(room), &rest))
		return;
	sio_bcast b;
	sio_bcast_init(&b, sio_socket_namespace(ev->socket));
	sio_bcast_to(&b, room);
	sio_bcast_emit(&b, "tick", rest, ev->attachments, ev->n_attachments);
}

static void stop(void *ud)
{
	(void)ud;
	sio_server_close_all(g_sio);
}

static void free_app(void *ud)
{
	(void)ud;
	sio_server_free(g_sio);
}

int main(int argc, char **argv)
{
	int port = 3000;
	http_limits lim;
	http_limits_default(&lim);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--ws-deflate") == 0) {
			lim.ws_deflate = 1;
		} else if (strcmp(argv[i], "--ws-deflate-threshold") == 0 && i + 1 < argc) {
			lim.ws_deflate_threshold = strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: bench-server [--port PORT] [--ws-deflate] "
			                "[--ws-deflate-threshold BYTES]\n");
			return 2;
		}
	}
	/* Large messages come and go all the time: keep freed memory for the
	 * next one instead of giving it back to the kernel and faulting it in
	 * again (a third of the server's time on 64 KiB messages otherwise;
	 * docs/bench/profiles.md). */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	base_log_set_level(BASE_LOG_WARN);
	uv_loop_t *loop = uv_default_loop();
	g_http = http_server_new(loop, &lim);
	if (!g_http)
		return 1;
	sio_options o;
	sio_options_default(&o);
	g_sio = sio_server_new(g_http, &o);
	if (!g_sio)
		return 1;
	sio_namespace *root = sio_of(g_sio, "/");
	sio_on(root, "message", on_message, NULL);
	sio_on(root, "message-with-ack", on_message_with_ack, NULL);
	sio_on(root, "join", on_join, NULL);
	sio_on(root, "broadcast-room", on_broadcast_room, NULL);
	int rc = http_server_listen(g_http, "127.0.0.1", port);
	if (rc) {
		fprintf(stderr, "bench-server: cannot listen on port %d: %s\n", port,
		        uv_strerror(rc));
		return 1;
	}
	printf("listening 127.0.0.1:%d pid %d\n", http_server_port(g_http), (int)getpid());
	fflush(stdout);
	return tsm_run(g_http, stop, free_app, NULL);
}
