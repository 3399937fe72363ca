/*
 * test_router.c: engineio/http/router.c without sockets: routes (method,
 * exact path or prefix, first match wins, GET answering HEAD), body limits
 * (longest match, exact beats prefix, replaced when given again), header
 * look-ups and the WebSocket upgrade test (tokens in lists, any case).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "http/http_internal.h"

static uv_loop_t g_loop;
static http_server *g_srv;

static int setup(void **state)
{
	(void)state;
	http_limits l;
	http_limits_default(&l);
	l.max_body_bytes = 1000;
	if (uv_loop_init(&g_loop) != 0)
		return -1;
	g_srv = http_server_new(&g_loop, &l);
	return g_srv ? 0 : -1;
}

static void closed(void *ud)
{
	*(int *)ud = 1;
}

static int teardown(void **state)
{
	(void)state;
	int done = 0;
	http_server_close(g_srv, closed, &done);
	uv_run(&g_loop, UV_RUN_DEFAULT);
	if (!done)
		return -1;
	http_server_free(g_srv);
	return uv_loop_close(&g_loop) == 0 ? 0 : -1;
}

static void h_a(http_request *req, void *ud)
{
	(void)req;
	(void)ud;
}

static void h_b(http_request *req, void *ud)
{
	(void)req;
	(void)ud;
}

static http_request req_of(http_method m, const char *path)
{
	http_request r;
	memset(&r, 0, sizeof(r));
	r.method = m;
	r.path = (base_slice){path, strlen(path)};
	return r;
}

static http_handler_fn found(http_method m, const char *path)
{
	http_request r = req_of(m, path);
	const http_route_entry *e = http__route_find(g_srv, &r);
	return e ? e->fn : NULL;
}

static void test_routes(void **state)
{
	(void)state;
	static int ud_a, ud_b;
	assert_int_equal(http_route(g_srv, HTTP_M_GET, "/exact", 0, h_a, &ud_a), 0);
	assert_int_equal(http_route(g_srv, HTTP_M_OTHER, "/exact", 0, h_b, &ud_b), 0);
	assert_int_equal(http_route(g_srv, HTTP_M_POST, "/api/", 1, h_a, &ud_a), 0);
	assert_int_equal(http_route(g_srv, HTTP_M_OTHER, "/api/", 1, h_b, &ud_b), 0);

	/* The first match wins; a GET route answers HEAD as well. */
	assert_ptr_equal(found(HTTP_M_GET, "/exact"), h_a);
	assert_ptr_equal(found(HTTP_M_HEAD, "/exact"), h_a);
	assert_ptr_equal(found(HTTP_M_POST, "/exact"), h_b);
	/* Exact means exact: no prefix, no trailing slash. */
	assert_null(found(HTTP_M_GET, "/exact/"));
	assert_null(found(HTTP_M_GET, "/exac"));
	/* A prefix matches itself and anything longer. */
	assert_ptr_equal(found(HTTP_M_POST, "/api/"), h_a);
	assert_ptr_equal(found(HTTP_M_POST, "/api/x/y"), h_a);
	assert_ptr_equal(found(HTTP_M_DELETE, "/api/x"), h_b);
	assert_null(found(HTTP_M_GET, "/api"));
	assert_null(found(HTTP_M_GET, "/"));
	http_request r = req_of(HTTP_M_GET, "/exact");
	assert_ptr_equal(http__route_find(g_srv, &r)->ud, &ud_a);
}

static size_t limit_for(const char *path)
{
	return http_body_limit_for(g_srv, path, strlen(path));
}

static void test_body_limits(void **state)
{
	(void)state;
	/* None set: the server's default. */
	assert_int_equal(limit_for("/anything"), 1000);
	assert_int_equal(http_body_limit(g_srv, "/up/", 1, 5000), 0);
	assert_int_equal(http_body_limit(g_srv, "/up/big/", 1, 9000), 0);
	assert_int_equal(http_body_limit(g_srv, "/up/big/", 0, 7000), 0);
	assert_int_equal(limit_for("/up/x"), 5000);
	/* The longest match wins, whatever the order of the calls. */
	assert_int_equal(limit_for("/up/big/file"), 9000);
	/* An exact path beats a prefix of the same length. */
	assert_int_equal(limit_for("/up/big/"), 7000);
	assert_int_equal(limit_for("/up"), 1000);
	/* The same rule given again replaces its limit. */
	assert_int_equal(http_body_limit(g_srv, "/up/", 1, 6000), 0);
	assert_int_equal(limit_for("/up/x"), 6000);
	assert_int_equal(g_srv->n_limits, 3);
}

static void test_headers_and_upgrade(void **state)
{
	(void)state;
	http_header h[] = {
	    {BASE_SLICE_LIT("Host"), BASE_SLICE_LIT("x")},
	    {BASE_SLICE_LIT("connection"), BASE_SLICE_LIT("keep-alive, Upgrade")},
	    {BASE_SLICE_LIT("UPGRADE"), BASE_SLICE_LIT(" WebSocket ")},
	    {BASE_SLICE_LIT("host"), BASE_SLICE_LIT("second")},
	};
	http_request r = req_of(HTTP_M_GET, "/ws");
	r.headers = h;
	r.n_headers = 4;
	/* Any case; the first of several. */
	const base_slice *v = http_header_get(&r, "HOST");
	assert_non_null(v);
	assert_true(base_slice_eq(*v, "x"));
	assert_null(http_header_get(&r, "origin"));
	assert_true(http_is_websocket(&r));
	/* Only a GET upgrades. */
	r.method = HTTP_M_POST;
	assert_false(http_is_websocket(&r));
	/* Connection must list "upgrade" as a token, not as a part of one. */
	r.method = HTTP_M_GET;
	h[1].value = (base_slice)BASE_SLICE_LIT("keep-alive, upgraded");
	assert_false(http_is_websocket(&r));
	h[1].value = (base_slice)BASE_SLICE_LIT("upgrade");
	h[2].value = (base_slice)BASE_SLICE_LIT("h2c");
	assert_false(http_is_websocket(&r));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_body_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_headers_and_upgrade, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
