/*
 * conformance-socketio: the Socket.IO server the official Socket.IO
 * protocol test suite expects: port 3000 (or --port), pingInterval 300,
 * pingTimeout 200, maxPayload 1000000, connectTimeout 1000, CORS "*", path
 * /socket.io/. On "/": emits "auth" with the handshake auth, answers
 * "message" with "message-back" and the same arguments, acks
 * "message-with-ack" with its arguments. On "/custom": emits "auth".
 *
 * Options for our own client tests: --parser msgpack, --recovery MS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "socketio.h"

static http_server *g_http;
static sio_server *g_sio;
static uv_signal_t g_sigterm, g_sigint;

static void emit_auth(sio_socket *s, void *ud)
{
	(void)ud;
	sio_emit(s, "auth", sio_handshake_auth(s), NULL, 0);
}

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

static void on_closed(void *ud)
{
	(void)ud;
	sio_server_free(g_sio);
	uv_close((uv_handle_t *)&g_sigterm, NULL);
	uv_close((uv_handle_t *)&g_sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	uv_signal_stop(&g_sigterm);
	uv_signal_stop(&g_sigint);
	sio_server_close_all(g_sio);
	http_server_close(g_http, on_closed, NULL);
}

static int usage(void)
{
	fprintf(stderr, "usage: conformance-socketio [--port PORT] [--parser json|msgpack] "
	                "[--recovery MS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int port = 3000;
	sio_options o;
	sio_options_default(&o);
	o.eio.ping_interval_ms = 300;
	o.eio.ping_timeout_ms = 200;
	o.eio.max_payload = 1000000;
	o.eio.cors_origin = "*";
	o.connect_timeout_ms = 1000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--parser") == 0 && i + 1 < argc) {
			const char *p = argv[++i];
			if (strcmp(p, "msgpack") == 0)
				o.parser = SIO_PARSER_MSGPACK;
			else if (strcmp(p, "json") != 0)
				return usage();
		} else if (strcmp(argv[i], "--recovery") == 0 && i + 1 < argc) {
			o.recovery_ms = (unsigned)atoi(argv[++i]);
		} else {
			return usage();
		}
	}
	uv_loop_t *loop = uv_default_loop();
	http_limits lim;
	http_limits_default(&lim);
	lim.ws_max_message = o.eio.max_payload;
	lim.max_body_bytes = o.eio.max_payload;
	g_http = http_server_new(loop, &lim);
	if (!g_http)
		return 1;
	g_sio = sio_server_new(g_http, &o);
	if (!g_sio)
		return 1;

	sio_namespace *root = sio_of(g_sio, "/");
	sio_on_connection(root, emit_auth, NULL);
	sio_on(root, "message", on_message, NULL);
	sio_on(root, "message-with-ack", on_message_with_ack, NULL);
	sio_on_connection(sio_of(g_sio, "/custom"), emit_auth, NULL);

	int rc = http_server_listen(g_http, "127.0.0.1", port);
	if (rc) {
		fprintf(stderr, "conformance-socketio: cannot listen on port %d: %s\n", port,
		        uv_strerror(rc));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(loop, &g_sigterm);
	uv_signal_init(loop, &g_sigint);
	uv_signal_start(&g_sigterm, on_signal, SIGTERM);
	uv_signal_start(&g_sigint, on_signal, SIGINT);
	fprintf(stderr, "conformance-socketio listening on 127.0.0.1:%d\n",
	        http_server_port(g_http));
	uv_run(loop, UV_RUN_DEFAULT);
	http_server_free(g_http);
	uv_loop_close(loop);
	return 0;
}
