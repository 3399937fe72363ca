/*
 * conformance-engineio: the Engine.IO echo server the official Engine.IO
 * protocol test suite expects: port 3000 (or --port), pingInterval 300,
 * pingTimeout 200, maxPayload 1000000, CORS "*", path /engine.io/. Every
 * message comes back to the socket that sent it.
 *
 * Options for the tests of eio_options (tests/e2e/engineio_compression.test.js):
 * --no-http-compression, --compression-threshold BYTES, --polling-max-packets N.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engineio.h"
#include "server_main.h"

static http_server *g_http;
static eio_server *g_eio;

static void on_message(eio_socket *s, int binary, const char *data, size_t len, void *ud)
{
	(void)ud;
	eio_socket_send(s, binary, data, len);
}

static void stop(void *ud)
{
	(void)ud;
	eio_server_close_all(g_eio);
}

static void free_app(void *ud)
{
	(void)ud;
	eio_server_free(g_eio);
}

int main(int argc, char **argv)
{
	int port = 3000;
	eio_options o;
	int ws_deflate = 0;
	size_t ws_deflate_threshold = 1024;
	eio_options_default(&o);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--no-http-compression") == 0) {
			o.http_compression = 0;
		} else if (strcmp(argv[i], "--compression-threshold") == 0 && i + 1 < argc) {
			o.compression_threshold = strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--polling-max-packets") == 0 && i + 1 < argc) {
			o.polling_max_packets = (unsigned)strtoul(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--ws-deflate") == 0) {
			ws_deflate = 1;
		} else if (strcmp(argv[i], "--ws-deflate-threshold") == 0 && i + 1 < argc) {
			ws_deflate_threshold = strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: conformance-engineio [--port PORT] "
			                "[--no-http-compression] [--compression-threshold BYTES] "
			                "[--polling-max-packets N] [--ws-deflate] "
			                "[--ws-deflate-threshold BYTES]\n");
			return 2;
		}
	}
	uv_loop_t *loop = uv_default_loop();
	http_limits lim;
	http_limits_default(&lim);
	lim.ws_max_message = 1000000;
	lim.max_body_bytes = 1000000;
	lim.ws_deflate = ws_deflate;
	lim.ws_deflate_threshold = ws_deflate_threshold;
	g_http = http_server_new(loop, &lim);

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
	fprintf(stderr, "conformance-engineio listening on 127.0.0.1:%d\n",
	        http_server_port(g_http));
	return tsm_run(g_http, stop, free_app, NULL);
}
