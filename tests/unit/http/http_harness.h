/*
 * http_harness.h: the harness shared by the HTTP layer's socket tests
 * (test_server.c, test_ws.c): the loop on the main thread, a blocking client
 * on a thread, and small socket helpers. Included once per test program.
 */
#ifndef TESTS_HTTP_HARNESS_H
#define TESTS_HTTP_HARNESS_H

#include "test_timeout.h"

/* ---- harness ------------------------------------------------------------- */

static struct {
	uv_loop_t loop;
	http_server *srv;
	int port;
	uv_async_t wake;
	uv_timer_t tick;
	pthread_t th;
	atomic_int done;
	int closed;
} H;

static atomic_int g_failed;
static char g_fail[512];

static void ck_fail(int line, const char *what)
{
	if (atomic_exchange(&g_failed, 1) == 0)
		snprintf(g_fail, sizeof(g_fail), "line %d: %s", line, what);
}

#define CK(cond)                                  \
	do {                                      \
		if (!(cond))                      \
			ck_fail(__LINE__, #cond); \
	} while (0)

static void tick_cb(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until *flag is set or timeout_ms (scaled) passes; returns the flag. */
static int run_until(const atomic_int *flag, unsigned timeout_ms)
{
	uint64_t end = uv_now(&H.loop) + test_ms(timeout_ms);

	uv_timer_start(&H.tick, tick_cb, 5, 5);
	while (!atomic_load(flag) && uv_now(&H.loop) < end)
		uv_run(&H.loop, UV_RUN_ONCE);
	uv_timer_stop(&H.tick);
	return atomic_load(flag);
}

static void setup_limits(const http_limits *lim)
{
	assert_int_equal(uv_loop_init(&H.loop), 0);
	H.srv = http_server_new(&H.loop, lim);
	assert_non_null(H.srv);
	assert_int_equal(http_server_listen(H.srv, "127.0.0.1", 0), 0);
	H.port = http_server_port(H.srv);
	assert_true(H.port > 0);
	uv_async_init(&H.loop, &H.wake, NULL);
	uv_timer_init(&H.loop, &H.tick);
	atomic_store(&g_failed, 0);
	atomic_store(&H.done, 0);
}

static atomic_int g_closed;

static void on_server_closed(void *ud)
{
	(void)ud;
	atomic_store(&g_closed, 1);
}

static void teardown_server(void)
{
	atomic_store(&g_closed, 0);
	http_server_close(H.srv, on_server_closed, NULL);
	assert_true(run_until(&g_closed, 5000));
	http_server_free(H.srv);
	uv_close((uv_handle_t *)&H.wake, NULL);
	uv_close((uv_handle_t *)&H.tick, NULL);
	uv_run(&H.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&H.loop), 0);
}

static void *client_main(void *arg)
{
	void (*fn)(void) = (void (*)(void))arg;

	fn();
	atomic_store(&H.done, 1);
	uv_async_send(&H.wake);
	return NULL;
}

/* Runs fn on a client thread while the loop serves; fails the test on any CK. */
static void run_client(void (*fn)(void))
{
	atomic_store(&H.done, 0);
	assert_int_equal(pthread_create(&H.th, NULL, client_main, (void *)fn), 0);
	run_until(&H.done, 20000);
	pthread_join(H.th, NULL);
	if (atomic_load(&g_failed))
		fail_msg("client: %s", g_fail);
}

/* ---- blocking client ----------------------------------------------------- */

typedef struct {
	int fd;
	size_t len;
	char buf[1 << 22];
} cl_t;

typedef struct {
	int status;
	char head[8192];
	char *body;
	size_t body_len;
} resp_t;

/* A client socket; rcvbuf > 0: a receive buffer of that size (a small, fixed window). */
static cl_t *cl_open_rcvbuf(int rcvbuf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)H.port)};
	struct timeval tv = {.tv_sec = test_ms(5000) / 1000};
	int one = 1;
	cl_t *c = malloc(sizeof(*c));

	c->len = 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	/* Before connect, so the window is agreed on that size and never grows. */
	if (rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		ck_fail(__LINE__, "connect");
	return c;
}

static cl_t *cl_open(void)
{
	return cl_open_rcvbuf(0);
}

static void cl_close(cl_t *c)
{
	close(c->fd);
	free(c);
}

static int cl_send(cl_t *c, const void *p, size_t n)
{
	const char *s = p;

	while (n > 0) {
		ssize_t r = send(c->fd, s, n, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		s += r;
		n -= (size_t)r;
	}
	return 0;
}

static int cl_sends(cl_t *c, const char *s)
{
	return cl_send(c, s, strlen(s));
}

/* Reads more; returns bytes read, 0 on EOF, -1 on error or timeout. */
static ssize_t cl_fill(cl_t *c)
{
	ssize_t r;

	if (c->len == sizeof(c->buf))
		return -1;
	do {
		r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	} while (r < 0 && errno == EINTR);
	if (r > 0)
		c->len += (size_t)r;
	return r;
}

static void cl_consume(cl_t *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static const char *resp_header(const resp_t *r, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = strstr(r->head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
			const char *v = p + 3 + n;

			while (*v == ' ')
				v++;
			return v;
		}
	}
	return NULL;
}

static void resp_free(resp_t *r)
{
	free(r->body);
	r->body = NULL;
}

/* Reads one response (skipping 100 Continue). head_only: a HEAD answer. Returns 0 or -1. */
static int cl_response_ex(cl_t *c, resp_t *r, int head_only)
{
	for (;;) {
		char *end;
		size_t hl, cl = 0;
		const char *v;

		r->body = NULL;
		while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
			if (cl_fill(c) <= 0)
				return -1;
		}
		hl = (size_t)(end - c->buf) + 4;
		if (hl >= sizeof(r->head))
			return -1;
		memcpy(r->head, c->buf, hl);
		r->head[hl] = '\0';
		if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
			return -1;
		cl_consume(c, hl);
		if (r->status >= 100 && r->status < 200 && r->status != 101)
			continue;
		v = resp_header(r, "Content-Length");
		if (v != NULL && !head_only)
			cl = strtoul(v, NULL, 10);
		while (c->len < cl) {
			if (cl_fill(c) <= 0)
				return -1;
		}
		r->body = malloc(cl + 1);
		memcpy(r->body, c->buf, cl);
		r->body[cl] = '\0';
		r->body_len = cl;
		cl_consume(c, cl);
		return 0;
	}
}

static int cl_response(cl_t *c, resp_t *r)
{
	return cl_response_ex(c, r, 0);
}

/*
 * One request on a fresh connection: method, target, extra header lines
 * (each ending in "\r\n", or NULL) and a text body (or NULL). Returns 0
 * with the response in r, or -1.
 */
static __attribute__((unused)) int cl_request(const char *method, const char *target,
                                              const char *extra, const char *body, resp_t *r)
{
	char head[1024];
	cl_t *c = cl_open();
	int rc;

	snprintf(head, sizeof(head),
	         "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %zu\r\n"
	         "Content-Type: text/plain;charset=UTF-8\r\n\r\n",
	         method, target, extra ? extra : "", body ? strlen(body) : 0);
	rc = cl_sends(c, head);
	if (!rc && body)
		rc = cl_sends(c, body);
	if (!rc)
		rc = cl_response(c, r);
	cl_close(c);
	return rc;
}

/* 1 when the server closes the connection (EOF or reset) within the receive timeout. */
static int cl_wait_close(cl_t *c)
{
	for (;;) {
		char tmp[4096];
		ssize_t r = recv(c->fd, tmp, sizeof(tmp), 0);

		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 1;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 0;
	}
}

#endif
