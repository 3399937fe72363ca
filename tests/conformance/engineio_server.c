/*
 * conformance-engineio: the Engine.IO echo server the official Engine.IO
 * protocol test suite expects: port 3000 (or --port), pingInterval 300,
 * pingTimeout 200, maxPayload 1000000, CORS "*", path /engine.io/. Every
 * message comes back to the socket that sent it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engineio.h"

static http_server *g_http;
static eio_server *g_eio;
static uv_signal_t g_sigterm, g_sigint;

static void on_message(eio_socket *s, int binary, const char *data, size_t len, void *ud)
{
	(void)ud;
	eio_socket_send(s, binary, data, len);
}

static void on_closed(void *ud)
{
	(void)ud;
	eio_server_free(g_eio);
	uv_close((uv_handle_t *)&g_sigterm, NULL);
	uv_close((uv_handle_t *)&g_sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	uv_signal_stop(&g_sigterm);
	uv_signal_stop(&g_sigint);
	eio_server_close_all(g_eio);
	http_server_close(g_http, on_closed, NULL);
}

int main(int argc, char **argv)
{
	int port = 3000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else {
			fprintf(stderr, "usage: conformance-engineio [--port PORT]\n");
			return 2;
		}
	}
	uv_loop_t *loop = uv_default_loop();
	http_limits lim;
	http_limits_default(&lim);
	lim.ws_max_message = 1000000;
	lim.max_body_bytes = 1000000;
	g_http = http_server_new(loop, &lim);

	eio_options o;
	eio_options_default(&o);
	o.ping_interval_ms = 300;
	o.ping_timeout_ms = 200;
	o.max_payload = 1000000;
	o.cors_origin = "*";
	o.path = "/engine.io/";
	eio_callbacks cb = {.on_message = on_message};
	g_eio = eio_server_new(g_http, &o, &cb);
	if (!g_http || !g_eio)
		return 1;
	int rc = http_server_listen(g_http, "127.0.0.1", port);
	if (rc) {
		fprintf(stderr, "conformance-engineio: cannot listen on port %d: %s\n", port,
		        uv_strerror(rc));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_signal_init(loop, &g_sigterm);
	uv_signal_init(loop, &g_sigint);
	uv_signal_start(&g_sigterm, on_signal, SIGTERM);
	uv_signal_start(&g_sigint, on_signal, SIGINT);
	fprintf(stderr, "conformance-engineio listening on 127.0.0.1:%d\n",
	        http_server_port(g_http));
	uv_run(loop, UV_RUN_DEFAULT);
	http_server_free(g_http);
	uv_loop_close(loop);
	return 0;
}
