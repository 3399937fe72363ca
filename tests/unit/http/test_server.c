/*
 * test_server.c: the HTTP server over real sockets on 127.0.0.1.
 *
 * The libuv loop runs on the main thread; each test's client is a thread
 * with blocking sockets. Client-side checks are recorded (CK) and turned
 * into a cmocka failure on the main thread after the client has finished.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/http.h"

#include "http_harness.h"

/* One request on a fresh connection; expects status and (when body) that body. */
static void expect_simple(const char *request, int status, const char *body)
{
	cl_t *c = cl_open();
	resp_t r;

	CK(cl_sends(c, request) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == status);
	if (body != NULL)
		CK(r.body != NULL && strcmp(r.body, body) == 0);
	resp_free(&r);
	cl_close(c);
}

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* ---- handlers ------------------------------------------------------------ */

static void h_hello(http_request *req, void *ud)
{
	(void)ud;
	http_respond(req, 200, "text/plain", NULL, "hello world", 11);
}

static void h_path(http_request *req, void *ud)
{
	(void)ud;
	http_respond(req, 200, "text/plain", "X-Test: yes\r\n", req->path.base, req->path.len);
}

static void h_echo(http_request *req, void *ud)
{
	base_slice parts[2] = {BASE_SLICE_LIT("echo:"), req->body};

	(void)ud;
	http_respond_parts(req, 200, "application/octet-stream", NULL, parts, 2);
}

static char *g_big;
#define BIG_LEN (3 * 1024 * 1024 + 17)

static void h_big(http_request *req, void *ud)
{
	(void)ud;
	http_respond(req, 200, "application/octet-stream", NULL, g_big, BIG_LEN);
}

static void h_close(http_request *req, void *ud)
{
	(void)ud;
	http_respond_and_close(req, 200, "text/plain", "bye", 3);
}

/* Deferred answers: kept requests answered from a timer. */
static http_request *g_kept;
static uv_timer_t g_defer_timer;
static atomic_int g_aborts;

static void defer_fire(uv_timer_t *t)
{
	(void)t;
	if (g_kept != NULL) {
		http_request *req = g_kept;

		g_kept = NULL;
		http_respond(req, 200, "text/plain", NULL, "deferred", 8);
	}
}

static void on_abort(http_request *req, void *ud)
{
	(void)ud;
	if (req == g_kept)
		g_kept = NULL;
	atomic_fetch_add(&g_aborts, 1);
}

static void h_defer(http_request *req, void *ud)
{
	(void)ud;
	g_kept = req;
	req->on_abort = on_abort;
	req->abort_ud = NULL;
	uv_timer_start(&g_defer_timer, defer_fire, 100, 0);
}

static atomic_int g_holds; /* requests /hold has taken */

static void h_hold(http_request *req, void *ud)
{
	(void)ud;
	atomic_fetch_add(&g_holds, 1);
	g_kept = req;
	req->on_abort = on_abort;
}

/* Answers with the client address the server worked out, and the peer's. */
static void h_client_addr(http_request *req, void *ud)
{
	char text[100];
	int n = snprintf(text, sizeof(text), "%s %s", req->remote_addr, req->peer_addr);

	(void)ud;
	http_respond(req, 200, "text/plain", NULL, text, (size_t)n);
}

static void add_routes(void)
{
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/addr", 0, h_client_addr, NULL), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/hello", 0, h_hello, NULL), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/p/", 1, h_path, NULL), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_POST, "/echo", 0, h_echo, NULL), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/big", 0, h_big, NULL), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/close", 0, h_close, NULL), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/defer", 0, h_defer, NULL), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/hold", 0, h_hold, NULL), 0);
	/* Shadowed by the prefix route above: the first match wins. */
	assert_int_equal(http_route(H.srv, HTTP_M_OTHER, "/p/x", 0, h_hello, NULL), 0);
}

/* A server with these limits (NULL: the defaults), the routes, the timer. */
static int setup_with(const http_limits *lim)
{
	setup_limits(lim);
	add_routes();
	uv_timer_init(&H.loop, &g_defer_timer);
	g_kept = NULL;
	atomic_store(&g_aborts, 0);
	atomic_store(&g_holds, 0);
	return 0;
}

/* On the client thread: waits until the server's handler has counted n in
 * *v (the event itself, not a guess at how long it takes). */
static void wait_count(atomic_int *v, int n)
{
	uint64_t end = uv_hrtime() / 1000000 + test_ms(5000);

	while (atomic_load(v) < n && uv_hrtime() / 1000000 < end)
		msleep(1);
	CK(atomic_load(v) >= n);
}

static int setup_default(void **state)
{
	(void)state;
	return setup_with(NULL);
}

static int setup_small(void **state)
{
	http_limits lim;

	(void)state;
	http_limits_default(&lim);
	lim.max_header_bytes = 1024;
	lim.max_body_bytes = 100;
	lim.header_timeout_ms = 300;
	lim.body_timeout_ms = 300;
	lim.idle_timeout_ms = 300;
	lim.max_connections = 2;
	return setup_with(&lim);
}

/* Two big uploads do not fit in the server's input budget together. */
static int setup_input_budget(void **state)
{
	http_limits lim;

	(void)state;
	http_limits_default(&lim);
	lim.max_body_bytes = 1024 * 1024;
	lim.max_input_bytes = 1024 * 1024 + 128 * 1024;
	return setup_with(&lim);
}

static int teardown(void **state)
{
	(void)state;
	uv_close((uv_handle_t *)&g_defer_timer, NULL);
	teardown_server();
	return 0;
}

/* ---- tests --------------------------------------------------------------- */

/* X-Forwarded-For is ignored unless the peer is a trusted proxy. */
static void c_forwarded_untrusted(void)
{
	expect_simple("GET /addr HTTP/1.1\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n", 200,
	              "127.0.0.1 127.0.0.1");
}

static void test_forwarded_untrusted(void **state)
{
	(void)state;
	run_client(c_forwarded_untrusted);
}

static void c_forwarded_trusted(void)
{
	/* The rightmost untrusted hop; what the client itself wrote is ignored. */
	expect_simple("GET /addr HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n\r\n", 200,
	              "203.0.113.7 127.0.0.1");
	/* Several headers read as one list; trusted hops are skipped. */
	expect_simple("GET /addr HTTP/1.1\r\nX-Forwarded-For: 198.51.100.1\r\n"
	              "X-Forwarded-For: 10.1.2.3\r\n\r\n",
	              200, "198.51.100.1 127.0.0.1");
	/* No header: the peer. Garbage: the nearest trusted hop. */
	expect_simple("GET /addr HTTP/1.1\r\n\r\n", 200, "127.0.0.1 127.0.0.1");
	expect_simple("GET /addr HTTP/1.1\r\nX-Forwarded-For: <script>, 10.0.0.9\r\n\r\n", 200,
	              "10.0.0.9 127.0.0.1");
	expect_simple("GET /addr HTTP/1.1\r\nX-Forwarded-For: 2001:db8::1\r\n\r\n", 200,
	              "2001:db8::1 127.0.0.1");
}

static void test_forwarded_trusted(void **state)
{
	(void)state;
	assert_int_equal(http_server_trust_proxies(H.srv, "bogus"), BASE_EINVAL);
	assert_int_equal(http_server_trust_proxies(H.srv, "127.0.0.1, 10.0.0.0/8"), 0);
	run_client(c_forwarded_trusted);
}

static void c_simple_get(void)
{
	cl_t *c = cl_open();
	resp_t r;
	const char *v;

	CK(cl_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200);
	CK(r.body != NULL && strcmp(r.body, "hello world") == 0);
	v = resp_header(&r, "Content-Length");
	CK(v != NULL && atoi(v) == 11);
	v = resp_header(&r, "Content-Type");
	CK(v != NULL && strncmp(v, "text/plain", 10) == 0);
	v = resp_header(&r, "Connection");
	CK(v != NULL && strncasecmp(v, "keep-alive", 10) == 0);
	resp_free(&r);
	/* HEAD: same headers, no body. */
	CK(cl_sends(c, "HEAD /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response_ex(c, &r, 1) == 0);
	CK(r.status == 200);
	v = resp_header(&r, "Content-Length");
	CK(v != NULL && atoi(v) == 11);
	resp_free(&r);
	CK(cl_response(c, &r) == 0); /* would be garbage if HEAD had sent a body */
	CK(r.status == 200 && strcmp(r.body, "hello world") == 0);
	resp_free(&r);
	cl_close(c);
}

static void test_simple_get(void **state)
{
	(void)state;
	run_client(c_simple_get);
}

static void c_not_found(void)
{
	expect_simple("GET /nope HTTP/1.1\r\n\r\n", 404, NULL);
	/* Method mismatch is not a match either. */
	expect_simple("GET /echo HTTP/1.1\r\n\r\n", 404, NULL);
	/* Prefix route, and the first match wins. */
	expect_simple("GET /p/x HTTP/1.1\r\n\r\n", 200, "/p/x");
	expect_simple("GET /p/abc?q=1 HTTP/1.1\r\n\r\n", 200, "/p/abc");
}

static void test_not_found(void **state)
{
	(void)state;
	run_client(c_not_found);
}

/* ---- counters and the observer (metrics, access log) ---------------------- */

static int g_obs_calls, g_obs_last_status;
static uint64_t g_obs_last_id;

static void obs_response(const http_request *req, int status, uint64_t body, void *ud)
{
	(void)body;
	(void)ud;
	g_obs_calls++;
	g_obs_last_status = status;
	g_obs_last_id = req->id;
}

static void c_stats(void)
{
	const char *prefix = http_server_id_prefix(H.srv);
	cl_t *c = cl_open();
	resp_t r;
	const char *id;

	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200);
	id = resp_header(&r, "X-Request-Id");
	CK(id != NULL && strncmp(id, prefix, strlen(prefix)) == 0 && id[strlen(prefix)] == '-');
	resp_free(&r);
	CK(cl_sends(c, "GET /nope HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 404);
	resp_free(&r);
	CK(cl_sends(c, "GET /p/abc?secret=1 HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200);
	resp_free(&r);
	cl_close(c);
}

static uint64_t g_route_2xx[16];
static size_t g_n_routes;

static void route_seen(const char *path, int prefix, const uint64_t by_class[6], void *ud)
{
	(void)path;
	(void)prefix;
	(void)ud;
	if (g_n_routes < 16)
		g_route_2xx[g_n_routes] = by_class[2];
	g_n_routes++;
}

static void test_stats_and_observer(void **state)
{
	http_observer ob = {obs_response, NULL, NULL, 1};
	http_stats st;

	(void)state;
	g_obs_calls = 0;
	g_n_routes = 0;
	http_server_observe(H.srv, &ob);
	run_client(c_stats);
	http_server_get_stats(H.srv, &st);
	assert_int_equal(st.requests, 3);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.unrouted[4], 1);
	assert_true(st.bytes_in > 0 && st.bytes_out > 0);
	assert_int_equal(g_obs_calls, 3);
	assert_int_equal(g_obs_last_status, 200);
	assert_int_equal(g_obs_last_id, 3);
	http_server_each_route(H.srv, route_seen, NULL);
	/* add_routes(): /addr, /hello, /p/, ... */
	assert_true(g_n_routes >= 3);
	assert_int_equal(g_route_2xx[0], 0);
	assert_int_equal(g_route_2xx[1], 1);
	assert_int_equal(g_route_2xx[2], 1);
	http_server_observe(H.srv, NULL);
}

static void c_keep_alive(void)
{
	cl_t *c = cl_open();
	resp_t r;

	for (int i = 0; i < 2; i++) {
		CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
		CK(cl_response(c, &r) == 0);
		CK(r.status == 200 && strcmp(r.body, "hello world") == 0);
		resp_free(&r);
	}
	/* HTTP/1.0 without keep-alive: answered, then closed. */
	CK(cl_sends(c, "GET /hello HTTP/1.0\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200);
	CK(strncasecmp(resp_header(&r, "Connection"), "close", 5) == 0);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
}

static void test_keep_alive(void **state)
{
	(void)state;
	run_client(c_keep_alive);
}

static void c_pipelining(void)
{
	cl_t *c = cl_open();
	resp_t r;

	CK(cl_sends(c, "GET /p/1 HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
	               "abcGET /p/3 HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "/p/1") == 0);
	resp_free(&r);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "echo:abc") == 0);
	resp_free(&r);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "/p/3") == 0);
	resp_free(&r);
	cl_close(c);
}

static void test_pipelining(void **state)
{
	(void)state;
	run_client(c_pipelining);
}

/* Byte by byte: headers and body straddle many reads. */
static void c_trickle(void)
{
	cl_t *c = cl_open();
	const char *req =
	    "POST /echo HTTP/1.1\r\nHost: trickle\r\nX-Long: abcdefghijklmnopqrstuvwxyz\r\n"
	    "Content-Length: 10\r\n\r\n0123456789GET /p/after HTTP/1.1\r\n\r\n";
	resp_t r;

	for (size_t i = 0; req[i] != '\0'; i++) {
		CK(cl_send(c, req + i, 1) == 0);
		msleep(1);
	}
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "echo:0123456789") == 0);
	resp_free(&r);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "/p/after") == 0);
	resp_free(&r);
	cl_close(c);
}

static void test_trickle(void **state)
{
	(void)state;
	run_client(c_trickle);
}

static void c_chunked(void)
{
	cl_t *c = cl_open();
	resp_t r;

	CK(cl_sends(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	               "5\r\nhello\r\n1\r\n \r\n") == 0);
	msleep(20);
	CK(cl_sends(c, "5\r\nworld\r\n0\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "echo:hello world") == 0);
	resp_free(&r);
	/* Expect: 100-continue gets its interim answer before the body is sent. */
	CK(cl_sends(
	       c, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n") == 0);
	while (memmem(c->buf, c->len, "\r\n\r\n", 4) == NULL && cl_fill(c) > 0) {
	}
	CK(strncmp(c->buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
	CK(cl_sends(c, "ok") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "echo:ok") == 0);
	resp_free(&r);
	cl_close(c);
}

static void test_chunked(void **state)
{
	(void)state;
	run_client(c_chunked);
}

static void c_deferred(void)
{
	cl_t *c = cl_open();
	resp_t r;

	/* The second request waits behind the kept one and is answered after it. */
	CK(cl_sends(c, "GET /defer HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "deferred") == 0);
	resp_free(&r);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "hello world") == 0);
	resp_free(&r);
	/* And again on the same connection, with nothing behind it. */
	CK(cl_sends(c, "GET /defer HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "deferred") == 0);
	resp_free(&r);
	cl_close(c);
}

static void test_deferred(void **state)
{
	(void)state;
	run_client(c_deferred);
	assert_int_equal(atomic_load(&g_aborts), 0);
}

/* Far more pipelined input than may wait behind a kept request: reading pauses, then resumes. */
static void c_deferred_backlog(void)
{
	enum { N = 4000 };
	static const char one[] = "GET /hello HTTP/1.1\r\n\r\n";
	size_t n = strlen("GET /defer HTTP/1.1\r\n\r\n") + N * (sizeof(one) - 1);
	char *req = malloc(n + 1), *p = req;
	cl_t *c = cl_open();
	resp_t r;
	int ok = 1;

	p += sprintf(p, "GET /defer HTTP/1.1\r\n\r\n");
	for (int i = 0; i < N; i++)
		p += sprintf(p, "%s", one);
	CK(cl_send(c, req, n) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "deferred") == 0);
	resp_free(&r);
	for (int i = 0; i < N && ok; i++) {
		ok = cl_response(c, &r) == 0 && r.status == 200 &&
		     strcmp(r.body, "hello world") == 0;
		resp_free(&r);
	}
	CK(ok);
	free(req);
	cl_close(c);
}

static void test_deferred_backlog(void **state)
{
	(void)state;
	run_client(c_deferred_backlog);
}

static void c_abort(void)
{
	cl_t *c = cl_open();

	CK(cl_sends(c, "GET /hold HTTP/1.1\r\n\r\n") == 0);
	wait_count(&g_holds, 1); /* the server holds it: the close aborts a kept request */
	cl_close(c);
}

static void test_abort(void **state)
{
	atomic_int one;

	(void)state;
	run_client(c_abort);
	atomic_store(&one, 0);
	for (int i = 0; i < 200 && atomic_load(&g_aborts) == 0; i++)
		run_until(&one, 10);
	assert_int_equal(atomic_load(&g_aborts), 1);
	assert_null(g_kept);
}

/* A kept request is aborted by server close too. */
static void c_hold_only(void)
{
	cl_t *c = cl_open();

	CK(cl_sends(c, "GET /hold HTTP/1.1\r\n\r\n") == 0);
	wait_count(&g_holds, 1);
	/* Left open: the server closes it. */
	CK(cl_wait_close(c));
	cl_close(c);
}

static void *hold_thread(void *arg)
{
	(void)arg;
	c_hold_only();
	return NULL;
}

static void test_abort_on_server_close(void **state)
{
	pthread_t th;
	atomic_int never;

	(void)state;
	atomic_store(&never, 0);
	assert_int_equal(pthread_create(&th, NULL, hold_thread, NULL), 0);
	for (int i = 0; i < 200 && g_kept == NULL; i++)
		run_until(&never, 10);
	assert_non_null(g_kept);
	assert_int_equal(http_server_connections(H.srv), 1);
	uv_close((uv_handle_t *)&g_defer_timer, NULL);
	teardown_server();
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&g_aborts), 1);
	if (atomic_load(&g_failed))
		fail_msg("client: %s", g_fail);
	/* teardown() must not run again. */
	setup_default(state);
}

static void c_big(void)
{
	cl_t *c = cl_open();
	resp_t r;

	CK(cl_sends(c, "GET /big HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n") == 0);
	/* Not an ordering: a pause so the server's socket fills and the rest goes
	 * through uv_write (the answer is the same either way, only the path). */
	msleep(200);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && r.body_len == BIG_LEN && memcmp(r.body, g_big, BIG_LEN) == 0);
	resp_free(&r);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "hello world") == 0);
	resp_free(&r);
	cl_close(c);
}

static void test_big_response(void **state)
{
	(void)state;
	g_big = malloc(BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i++)
		g_big[i] = (char)('a' + i % 26);
	run_client(c_big);
	free(g_big);
}

static void c_connection_close(void)
{
	cl_t *c = cl_open();
	resp_t r;

	CK(cl_sends(c, "GET /close HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "bye") == 0);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
	c = cl_open();
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
}

static void test_connection_close(void **state)
{
	(void)state;
	run_client(c_connection_close);
}

static void c_header_too_large(void)
{
	cl_t *c = cl_open();
	char req[3000];
	resp_t r;

	memset(req, 0, sizeof(req));
	strcpy(req, "GET /hello HTTP/1.1\r\nX-Big: ");
	memset(req + strlen(req), 'a', 2000);
	strcat(req, "\r\n\r\n");
	CK(cl_sends(c, req) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 431);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
	/* The same, sent in pieces so that no single read is over the limit. */
	c = cl_open();
	for (size_t i = 0; i < strlen(req); i += 100) {
		if (cl_send(c, req + i, BASE_MIN((size_t)100, strlen(req) - i)) != 0)
			break;
		msleep(2); /* separate reads; the answer does not depend on it */
	}
	CK(cl_response(c, &r) == 0);
	CK(r.status == 431);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
}

#define BUDGET_BODY 900000

static void c_input_budget(void)
{
	static char body[BUDGET_BODY];
	static const char head[] = "POST /echo HTTP/1.1\r\nContent-Length: 900000\r\n\r\n";
	cl_t *a = cl_open(), *b = cl_open(), *c, *d;
	resp_t r;

	memset(body, 'b', sizeof(body));
	/*
	 * a and b: bodies announced and begun. Only what has arrived counts
	 * against the budget, not what Content-Length announces: both together
	 * announce more than it, and neither is refused.
	 */
	CK(cl_sends(a, head) == 0);
	CK(cl_send(a, body, 1000) == 0);
	CK(cl_sends(b, head) == 0);
	CK(cl_send(b, body, 1000) == 0);
	/* No event tells this thread that the server has read those bytes (the
	 * body is not answered yet): a pause, scaled for slow machines. */
	usleep(test_ms(200) * 1000);
	CK(cl_send(a, body + 1000, BUDGET_BODY - 1000) == 0);
	CK(cl_response(a, &r) == 0);
	CK(r.status == 200);
	CK(r.body_len == 5 + BUDGET_BODY);
	resp_free(&r);
	cl_close(a);
	CK(cl_send(b, body + 1000, BUDGET_BODY - 1000) == 0);
	CK(cl_response(b, &r) == 0);
	CK(r.status == 200);
	resp_free(&r);
	cl_close(b);
	/* c and d: bodies that have arrived in large part: together over the
	 * budget, so the one that grows past it is refused. */
	c = cl_open();
	CK(cl_sends(c, head) == 0);
	CK(cl_send(c, body, 700000) == 0);
	/* c's bytes must be read before d's: as above, a scaled pause. */
	usleep(test_ms(200) * 1000);
	d = cl_open();
	CK(cl_sends(d, head) == 0);
	CK(cl_send(d, body, 700000) == 0);
	CK(cl_response(d, &r) == 0);
	CK(r.status == 503);
	resp_free(&r);
	CK(cl_wait_close(d));
	cl_close(d);
	/* c is not hurt: it finishes and gets its echo. */
	CK(cl_send(c, body + 700000, BUDGET_BODY - 700000) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200);
	CK(r.body_len == 5 + BUDGET_BODY);
	resp_free(&r);
	cl_close(c);
}

/* Per-path body limits: a Content-Length over them gets 413 before any body is sent. */
static int setup_body_limits(void **state)
{
	(void)state;
	setup_with(NULL);
	assert_int_equal(http_body_limit(H.srv, "/", 1, 50), 0);
	assert_int_equal(http_body_limit(H.srv, "/echo", 0, 2000), 0);
	assert_int_equal(http_body_limit(H.srv, "/p/", 1, 5000), 0);
	assert_int_equal(http_body_limit(H.srv, "/p/", 1, 10), 0); /* replaces */
	return 0;
}

static void expect_413_from_headers(const char *head)
{
	cl_t *c = cl_open();
	resp_t r;

	/* Only the head: the answer must come without the body. */
	CK(cl_sends(c, head) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 413);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
}

static void c_body_limits(void)
{
	static char body[1501];

	memset(body, 'e', 1500);
	expect_413_from_headers("POST /echo HTTP/1.1\r\nContent-Length: 2001\r\n\r\n");
	expect_413_from_headers("POST /p/x HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
	expect_413_from_headers("POST /nowhere HTTP/1.1\r\nContent-Length: 51\r\n\r\n");
	expect_413_from_headers("POST /echox HTTP/1.1\r\nContent-Length: 51\r\n\r\n");
	expect_simple("POST /nowhere HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 404, NULL);
	{
		cl_t *c = cl_open();
		resp_t r;

		CK(cl_sends(c, "POST /echo HTTP/1.1\r\nContent-Length: 1500\r\n\r\n") == 0);
		CK(cl_send(c, body, 1500) == 0);
		CK(cl_response(c, &r) == 0);
		CK(r.status == 200);
		CK(r.body_len == 5 + 1500);
		resp_free(&r);
		cl_close(c);
	}
	/* A chunked body is refused once it passes the limit. */
	{
		cl_t *c = cl_open();
		resp_t r;

		CK(cl_sends(c, "POST /p/y HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		               "8\r\n01234567\r\n8\r\n01234567\r\n") == 0);
		CK(cl_response(c, &r) == 0);
		CK(r.status == 413);
		resp_free(&r);
		cl_close(c);
	}
}

static void test_body_limits(void **state)
{
	(void)state;
	run_client(c_body_limits);
	assert_int_equal(http_body_limit_for(H.srv, "/echo", 5), 2000);
	assert_int_equal(http_body_limit_for(H.srv, "/echo/", 6), 50);
	assert_int_equal(http_body_limit_for(H.srv, "/p/", 3), 10);
	assert_int_equal(http_body_limit_for(H.srv, "/p", 2), 50);
}

static void test_input_budget(void **state)
{
	(void)state;
	run_client(c_input_budget);
	assert_int_equal(http_server_connections(H.srv) <= 1, 1);
}

static void test_header_too_large(void **state)
{
	(void)state;
	run_client(c_header_too_large);
}

static void c_body_too_large(void)
{
	cl_t *c = cl_open();
	char chunk[64];
	resp_t r;

	CK(cl_sends(c, "POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 413);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);

	c = cl_open();
	CK(cl_sends(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == 0);
	memset(chunk, 'z', sizeof(chunk));
	for (int i = 0; i < 3; i++) {
		CK(cl_sends(c, "40\r\n") == 0);
		if (cl_send(c, chunk, sizeof(chunk)) != 0 || cl_sends(c, "\r\n") != 0)
			break;
	}
	CK(cl_response(c, &r) == 0);
	CK(r.status == 413);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
	/* Within the limit is fine. */
	expect_simple("POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\n"
	              "0123456789012345678901234567890123456789012345678901234567890123456789"
	              "012345678901234567890123456789",
	              200, NULL);
}

static void test_body_too_large(void **state)
{
	(void)state;
	run_client(c_body_too_large);
}

static void c_bad_request(void)
{
	static const char *bad[] = {
	    "garbage\r\n\r\n",
	    "GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
	    "GET / HTTP/9.9\r\n\r\n",
	    "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
	    "POST /echo HTTP/1.1\r\nContent-Length: x\r\n\r\n",
	    "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	};

	for (size_t i = 0; i < BASE_ARRAY_SIZE(bad); i++) {
		cl_t *c = cl_open();
		resp_t r;

		CK(cl_sends(c, bad[i]) == 0);
		CK(cl_response(c, &r) == 0);
		CK(r.status == 400);
		resp_free(&r);
		CK(cl_wait_close(c));
		cl_close(c);
	}
	/* The server still serves. */
	expect_simple("GET /hello HTTP/1.1\r\n\r\n", 200, "hello world");
}

static void test_bad_request(void **state)
{
	(void)state;
	run_client(c_bad_request);
}

static void c_header_timeout(void)
{
	cl_t *c = cl_open();
	resp_t r;

	/* A request begun and never finished: 408, then closed. */
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\nHost: slow\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 408);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
	/* A connection that never says anything: closed. */
	c = cl_open();
	CK(cl_wait_close(c));
	cl_close(c);
	/* A body that stops coming. */
	c = cl_open();
	CK(cl_sends(c, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 408);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
	/* Keep-alive idle. */
	c = cl_open();
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200);
	resp_free(&r);
	CK(cl_wait_close(c));
	cl_close(c);
}

static void test_timeouts(void **state)
{
	(void)state;
	run_client(c_header_timeout);
}

static void c_max_connections(void)
{
	cl_t *a = cl_open(), *b = cl_open(), *x;
	resp_t r;

	CK(cl_sends(a, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(a, &r) == 0 && r.status == 200);
	resp_free(&r);
	CK(cl_sends(b, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(b, &r) == 0 && r.status == 200);
	resp_free(&r);
	/* A third is accepted and closed at once. */
	x = cl_open();
	CK(cl_wait_close(x));
	cl_close(x);
	/* Once one goes, there is room again: as soon as the server has seen the
	 * close, a new connection is served (until then it is closed at once). */
	cl_close(a);
	uint64_t end = uv_hrtime() / 1000000 + test_ms(5000);
	int served = 0;
	while (!served && uv_hrtime() / 1000000 < end) {
		x = cl_open();
		if (cl_sends(x, "GET /hello HTTP/1.1\r\n\r\n") == 0 && cl_response(x, &r) == 0) {
			served = r.status == 200;
			resp_free(&r);
		}
		cl_close(x);
		if (!served)
			msleep(1);
	}
	CK(served);
	cl_close(b);
}

static void test_max_connections(void **state)
{
	(void)state;
	run_client(c_max_connections);
}

/* Random bytes and mutated requests: nothing may crash or leak (ASan). */
static void c_garbage(void)
{
	static const char *seeds[] = {
	    "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n",
	    "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	    "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
	};
	unsigned seed = 12345;

	for (int i = 0; i < 60; i++) {
		cl_t *c = cl_open();
		char buf[512];
		size_t n;

		if (i % 3 == 0) {
			n = 1 + rand_r(&seed) % sizeof(buf);
			for (size_t k = 0; k < n; k++)
				buf[k] = (char)rand_r(&seed);
		} else {
			const char *s = seeds[rand_r(&seed) % BASE_ARRAY_SIZE(seeds)];

			n = strlen(s);
			memcpy(buf, s, n);
			for (int m = 0; m < 3; m++)
				buf[rand_r(&seed) % n] = (char)rand_r(&seed);
		}
		cl_send(c, buf, n);
		if (i % 2)
			cl_wait_close(c);
		cl_close(c);
	}
	expect_simple("GET /hello HTTP/1.1\r\n\r\n", 200, "hello world");
}

static void test_garbage(void **state)
{
	(void)state;
	run_client(c_garbage);
}

/* IPv6 listener (dual-stack): an IPv6 peer and an IPv4 peer, each with its address. */
static int g_port6;

static void h_remote(http_request *req, void *ud)
{
	(void)ud;
	http_respond(req, 200, "text/plain", NULL, req->remote_addr, strlen(req->remote_addr));
}

static void c_ipv6(void)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)g_port6)};
	struct timeval tv = {.tv_sec = test_ms(5000) / 1000};
	cl_t *c = malloc(sizeof(*c));
	resp_t r;

	c->len = 0;
	c->fd = socket(AF_INET6, SOCK_STREAM, 0);
	inet_pton(AF_INET6, "::1", &sa.sin6_addr);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	CK(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CK(cl_sends(c, "GET /addr HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "::1") == 0);
	resp_free(&r);
	cl_close(c);
}

static void c_ipv4_on_dual_stack(void)
{
	int saved = H.port;
	cl_t *c;
	resp_t r;

	H.port = g_port6;
	c = cl_open();
	H.port = saved;
	CK(cl_sends(c, "GET /addr HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && strcmp(r.body, "127.0.0.1") == 0);
	resp_free(&r);
	cl_close(c);
}

static void test_ipv6(void **state)
{
	http_server *s6 = http_server_new(&H.loop, NULL);
	http_server *s4 = H.srv;
	int rc;

	(void)state;
	assert_non_null(s6);
	assert_int_equal(http_route(s6, HTTP_M_GET, "/addr", 0, h_remote, NULL), 0);
	rc = http_server_listen(s6, "::", 0);
	if (rc == 0) {
		g_port6 = http_server_port(s6);
		run_client(c_ipv6);
		run_client(c_ipv4_on_dual_stack);
	}
	/* Closed the same way as the main server, then H.srv is restored. */
	H.srv = s6;
	atomic_store(&g_closed, 0);
	http_server_close(s6, on_server_closed, NULL);
	assert_true(run_until(&g_closed, 5000));
	http_server_free(s6);
	H.srv = s4;
	if (rc != 0)
		skip();
}

static void test_strings(void **state)
{
	(void)state;
	assert_string_equal(http_status_text(404), "Not Found");
	assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
	assert_string_equal(base_strerror(HTTP_EQUEUE_FULL), "output queue full");
	assert_string_equal(base_strerror(BASE_ENOMEM), "out of memory");
	assert_non_null(base_strerror(UV_ECONNRESET));
	assert_ptr_equal(http_server_loop(H.srv), &H.loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_simple_get, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_stats_and_observer, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_forwarded_untrusted, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_forwarded_trusted, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_input_budget, setup_input_budget, teardown),
	    cmocka_unit_test_setup_teardown(test_body_limits, setup_body_limits, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_keep_alive, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelining, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_trickle, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_chunked, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_deferred, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_deferred_backlog, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_abort, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_abort_on_server_close, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_big_response, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_connection_close, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_header_too_large, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_body_too_large, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_request, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_timeouts, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_max_connections, setup_small, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_ipv6, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_strings, setup_default, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
