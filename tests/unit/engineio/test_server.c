/*
 * test_server.c: engineio/server.c and admission.c over real sockets: the
 * request verification answers the reference server gives (status and
 * {"code","message"} body), CORS, the sid table (a closed session's sid is
 * unknown), and handshake_rate.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "engineio.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../http/http_harness.h"
#pragma GCC diagnostic pop

static eio_server *g_eio;
static int g_connections, g_closes;

static void on_connection(eio_socket *s, const http_request *req, void *ud)
{
	(void)s;
	(void)req;
	(void)ud;
	g_connections++;
}

static void on_message(eio_socket *s, int binary, const char *data, size_t len, void *ud)
{
	(void)binary;
	(void)ud;
	if (len == 4 && memcmp(data, "quit", 4) == 0)
		eio_socket_close(s);
}

static void on_close(eio_socket *s, eio_close_reason reason, void *ud)
{
	(void)s;
	(void)reason;
	(void)ud;
	g_closes++;
}

static void server_start(void (*tune)(eio_options *))
{
	http_limits l;
	http_limits_default(&l);
	setup_limits(&l);
	g_connections = g_closes = 0;
	eio_options o;
	eio_options_default(&o);
	o.cors_origin = "https://app.example";
	if (tune)
		tune(&o);
	eio_callbacks cb = {
	    .on_connection = on_connection, .on_message = on_message, .on_close = on_close};
	g_eio = eio_server_new(H.srv, &o, &cb);
	assert_non_null(g_eio);
}

/* The Engine.IO server goes first (its handles close while the HTTP server closes). */
static void server_stop(void)
{
	eio_server_free(g_eio);
	teardown_server();
}

#define request cl_request

/* Expects status and, when code >= 0, the reference server's error body. */
static void expect(const char *method, const char *target, int status, int code)
{
	resp_t r = {0};
	char want[64];
	CK(request(method, target, NULL, NULL, &r) == 0);
	CK(r.status == status);
	if (code >= 0) {
		snprintf(want, sizeof(want), "{\"code\":%d,", code);
		CK(r.body && strncmp(r.body, want, strlen(want)) == 0);
	}
	resp_free(&r);
}

static char g_sid[32];

static void poll_open(void)
{
	resp_t r = {0};
	CK(request("GET", "/engine.io/?EIO=4&transport=polling", NULL, NULL, &r) == 0);
	CK(r.status == 200);
	const char *p = r.body ? strstr(r.body, "\"sid\":\"") : NULL;
	CK(p != NULL);
	if (p)
		snprintf(g_sid, sizeof(g_sid), "%.20s", p + 7);
	resp_free(&r);
}

static void c_errors(void)
{
	char t[128];
	expect("GET", "/engine.io/?EIO=4", 400, EIO_ERR_UNKNOWN_TRANSPORT);
	expect("GET", "/engine.io/?EIO=4&transport=carrier-pigeon", 400, EIO_ERR_UNKNOWN_TRANSPORT);
	expect("GET", "/engine.io/?EIO=3&transport=polling", 400,
	       EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
	expect("GET", "/engine.io/?transport=polling", 400, EIO_ERR_UNSUPPORTED_PROTOCOL_VERSION);
	expect("POST", "/engine.io/?EIO=4&transport=polling", 400, EIO_ERR_BAD_HANDSHAKE_METHOD);
	expect("GET", "/engine.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA", 400,
	       EIO_ERR_UNKNOWN_SID);
	/* A websocket transport without the upgrade headers. */
	expect("GET", "/engine.io/?EIO=4&transport=websocket", 400, EIO_ERR_BAD_REQUEST);
	/* Both spellings of the path are served. */
	expect("GET", "/engine.io?EIO=4", 400, EIO_ERR_UNKNOWN_TRANSPORT);

	/* A sid lives until its session closes, then it is unknown. */
	poll_open();
	snprintf(t, sizeof(t), "/engine.io/?EIO=4&transport=polling&sid=%s", g_sid);
	resp_t r = {0};
	CK(request("POST", t, NULL, "4quit", &r) == 0 && r.status == 200);
	resp_free(&r);
	CK(request("GET", t, NULL, NULL, &r) == 0 && r.status == 200);
	CK(r.body && strcmp(r.body, "1") == 0); /* the close packet, collected */
	resp_free(&r);
	expect("GET", t, 400, EIO_ERR_UNKNOWN_SID);
}

static void test_request_errors(void **state)
{
	(void)state;
	server_start(NULL);
	run_client(c_errors);
	assert_int_equal(g_connections, 1);
	assert_int_equal(g_closes, 1);
	assert_int_equal(eio_server_clients(g_eio), 0);
	server_stop();
}

static void c_cors(void)
{
	resp_t r = {0};
	CK(request("OPTIONS", "/engine.io/?EIO=4&transport=polling",
	           "Origin: https://app.example\r\nAccess-Control-Request-Headers: x-a\r\n", NULL,
	           &r) == 0);
	CK(r.status == 204);
	const char *v = resp_header(&r, "Access-Control-Allow-Origin");
	CK(v && strncmp(v, "https://app.example\r\n", 21) == 0);
	v = resp_header(&r, "Access-Control-Allow-Headers");
	CK(v && strncmp(v, "x-a\r\n", 5) == 0);
	resp_free(&r);
	/* Errors carry the CORS headers too, so a browser can read them. */
	CK(request("GET", "/engine.io/?EIO=4", "Origin: https://app.example\r\n", NULL, &r) == 0);
	CK(r.status == 400 && resp_header(&r, "Access-Control-Allow-Origin") != NULL);
	resp_free(&r);
}

static void test_cors(void **state)
{
	(void)state;
	server_start(NULL);
	run_client(c_cors);
	server_stop();
}

static void tune_rate(eio_options *o)
{
	o->handshake_rate = 1;
	o->handshake_burst = 2;
}

static void c_rate(void)
{
	resp_t r = {0};
	poll_open();
	poll_open();
	/* The burst is spent: the third handshake in the same second is refused. */
	CK(request("GET", "/engine.io/?EIO=4&transport=polling", NULL, NULL, &r) == 0);
	CK(r.status == 403 && r.body && strstr(r.body, "Too many handshakes") != NULL);
	resp_free(&r);
}

static void test_handshake_rate(void **state)
{
	(void)state;
	server_start(tune_rate);
	run_client(c_rate);
	assert_int_equal(g_connections, 2);
	server_stop();
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_errors),
	    cmocka_unit_test(test_cors),
	    cmocka_unit_test(test_handshake_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
