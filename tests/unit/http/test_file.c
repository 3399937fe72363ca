/*
 * test_file.c: engineio/http/file.c, responses streamed from a file
 * (http_respond_file) and byte ranges (http_parse_range).
 *
 * Same harness as test_server.c: the libuv loop on the main thread, each
 * test's client a thread with blocking sockets, client checks recorded with
 * CK and turned into a cmocka failure once the client is done. Two temp
 * files hold a known pattern (byte i is pat(i)); every body read is
 * compared with it byte by byte, at the offset it claims to come from.
 *
 * White-box (http_internal.h): the queue of a connection whose body comes
 * from a file is sampled on every loop turn, to see that the file is never
 * read far ahead of the socket. Open descriptors are counted in
 * /proc/self/fd to see that the file is closed however the response ends.
 * The Debug build runs this under ASan/LeakSanitizer: a stream or chunk
 * left behind fails it at exit.
 *
 * The tests at the end are bugs found while writing these, since fixed.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
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
#include "http/http_internal.h"

#include "http_harness.h"

/*
 * file.c's HTTP_FILE_WINDOW and HTTP_FILE_PIECE: a piece is read only while
 * less than the window is queued, so the queue never holds more than both.
 */
#define FILE_WINDOW (256 * 1024)
#define FILE_PIECE (128 * 1024)

/* A client receive buffer this small makes the server's queue fill quickly. */
#define SMALL_RCVBUF (64 * 1024)

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A check made in a helper: reports the helper's line and its caller's. */
static void ck_fail_at(int caller, int line, const char *what)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "%s (helper line %d)", what, line);
	ck_fail(caller, msg);
}

#define CKL(cond)                                            \
	do {                                                 \
		if (!(cond))                                 \
			ck_fail_at(caller, __LINE__, #cond); \
	} while (0)

/* ---- the files ----------------------------------------------------------- */

typedef struct {
	char path[64]; /* /proc/self/fd/N: the file has no name left to leave behind */
	uint64_t size;
	int fd;
} test_file;

/* Not multiples of the piece size: the last piece is a short one. */
#define BIG_SIZE ((uint64_t)3 * 1024 * 1024 + 1234)
#define HUGE_SIZE ((uint64_t)8 * 1024 * 1024 + 4321)

static test_file g_big = {.size = BIG_SIZE, .fd = -1};
static test_file g_huge = {.size = HUGE_SIZE, .fd = -1};

/* Byte i of both files; 251 is prime, so a body shifted by whole pieces does not match. */
static uint8_t pat(uint64_t i)
{
	return (uint8_t)(i % 251 + (i >> 12));
}

/* Writes the pattern to a temp file, unlinked at once and kept open for the handler to reopen. */
static int make_file(test_file *f)
{
	char block[65536], name[] = "/tmp/test_http_file_XXXXXX";
	uint64_t off = 0;

	f->fd = mkstemp(name);
	if (f->fd < 0)
		return -1;
	unlink(name);
	snprintf(f->path, sizeof(f->path), "/proc/self/fd/%d", f->fd);
	while (off < f->size) {
		size_t n = f->size - off < sizeof(block) ? (size_t)(f->size - off) : sizeof(block);

		for (size_t k = 0; k < n; k++)
			block[k] = (char)pat(off + k);
		if (write(f->fd, block, n) != (ssize_t)n)
			return -1;
		off += n;
	}
	return 0;
}

/* Descriptors open in this process. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the directory's own */
}

static int g_fds_base; /* before any server existed */

/* ---- handlers ------------------------------------------------------------ */

static atomic_int g_served; /* http_respond_file calls */
static atomic_int g_bad_rc; /* ... that did not return 0 */

/* The number after key= in the query, if there. */
static int qnum(const http_request *req, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);
	const char *p = req->query.base, *end = p + req->query.len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp != NULL ? amp : end;

		if ((size_t)(e - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
			char tmp[32];
			size_t n = (size_t)(e - p) - kl - 1;

			if (n >= sizeof(tmp))
				return 0;
			memcpy(tmp, p + kl + 1, n);
			tmp[n] = '\0';
			*v = strtoull(tmp, NULL, 10);
			return 1;
		}
		p = amp != NULL ? amp + 1 : end;
	}
	return 0;
}

/*
 * GET /file/<name>: the whole file (200). ?off=&len=: that slice, as 206
 * (len may run past the end of the file: a file shorter than promised).
 * A Range header: what http_parse_range makes of it (206, 416 or 200).
 * ?status=: answers with that status instead. ?sndbuf=: the server's
 * socket send buffer gets that size (white-box), so that a reader that
 * stalls stalls the stream whatever the system's TCP buffer limits.
 */
static void h_file(http_request *req, void *ud)
{
	const test_file *tf = ud;
	uint64_t off = 0, len = tf->size, st, start, rlen;
	const base_slice *range = http_header_get(req, "Range");
	char extra[160] = "";
	int status = 200, fd, rc, sliced;

	fd = open(tf->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		http_respond(req, 500, "text/plain", NULL, "open\n", 5);
		return;
	}
	sliced = qnum(req, "off", &off);
	sliced |= qnum(req, "len", &len);
	if (sliced) {
		status = 206;
		if (len > 0)
			snprintf(extra, sizeof(extra), "Content-Range: bytes %llu-%llu/%llu\r\n",
			         (unsigned long long)off, (unsigned long long)(off + len - 1),
			         (unsigned long long)tf->size);
	} else if (range != NULL) {
		int r = http_parse_range(range, tf->size, &start, &rlen);

		if (r < 0) {
			close(fd);
			snprintf(extra, sizeof(extra), "Content-Range: bytes */%llu\r\n",
			         (unsigned long long)tf->size);
			http_respond(req, 416, "text/plain", extra, "unsatisfiable\n", 14);
			return;
		}
		if (r > 0) {
			status = 206;
			off = start;
			len = rlen;
			snprintf(extra, sizeof(extra), "Content-Range: bytes %llu-%llu/%llu\r\n",
			         (unsigned long long)off, (unsigned long long)(off + len - 1),
			         (unsigned long long)tf->size);
		}
	}
	if (qnum(req, "status", &st))
		status = (int)st;
	if (qnum(req, "sndbuf", &st)) {
		int n = (int)st;

		uv_send_buffer_size((uv_handle_t *)&BASE_CONTAINER_OF(req, http_rx, req)->conn->tcp,
		                    &n);
	}
	atomic_fetch_add(&g_served, 1);
	rc = http_respond_file(req, status, "application/octet-stream", extra[0] ? extra : NULL, fd,
	                       off, len);
	if (rc != 0)
		atomic_fetch_add(&g_bad_rc, 1);
}

static void h_hello(http_request *req, void *ud)
{
	(void)ud;
	http_respond(req, 200, "text/plain", NULL, "hello world", 11);
}

/* ---- setup --------------------------------------------------------------- */

/* GET routes answer HEAD too (router.c): HEAD reaches h_file without a route of its own. */
static int setup_with(const http_limits *lim)
{
	setup_limits(lim);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/file/big", 0, h_file, &g_big), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/file/huge", 0, h_file, &g_huge), 0);
	assert_int_equal(http_route(H.srv, HTTP_M_GET, "/hello", 0, h_hello, NULL), 0);
	atomic_store(&g_served, 0);
	atomic_store(&g_bad_rc, 0);
	return 0;
}

static int setup_default(void **state)
{
	(void)state;
	return setup_with(NULL);
}

/* A reader that takes nothing for 300 ms is dropped. */
static int setup_idle(void **state)
{
	http_limits lim;

	(void)state;
	http_limits_default(&lim);
	lim.idle_timeout_ms = 300;
	return setup_with(&lim);
}

/* An output limit far below one piece of the file. */
static int setup_small_output(void **state)
{
	http_limits lim;

	(void)state;
	http_limits_default(&lim);
	lim.max_output_bytes = 64 * 1024;
	return setup_with(&lim);
}

/* Test 6's sampler of the server's queues (a uv_check on the loop). */
static uv_check_t g_check;
static int g_check_open; /* closed by teardown when a failure left it running */

static void check_close(void)
{
	if (g_check_open) {
		g_check_open = 0;
		uv_close((uv_handle_t *)&g_check, NULL);
	}
}

static int teardown(void **state)
{
	(void)state;
	check_close(); /* the sampler reads the server's connections */
	teardown_server();
	/* Every file, socket and loop descriptor is gone again. */
	assert_int_equal(count_fds(), g_fds_base);
	return 0;
}

static int group_setup(void **state)
{
	uv_loop_t loop;

	(void)state;
	if (make_file(&g_big) != 0 || make_file(&g_huge) != 0)
		return -1;
	/* The first loop opens libuv's process-wide descriptors (its signal pipe). */
	if (uv_loop_init(&loop) != 0 || uv_loop_close(&loop) != 0)
		return -1;
	g_fds_base = count_fds();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (g_big.fd >= 0)
		close(g_big.fd);
	if (g_huge.fd >= 0)
		close(g_huge.fd);
	return 0;
}

static atomic_int g_never;

static void run_for(unsigned ms)
{
	run_until(&g_never, ms);
}

/*
 * Runs the loop until the server has no connection left and want
 * descriptors are open (a file closed by a read that was still in flight
 * when its connection went takes a moment). Returns 1 when that happened.
 */
static int settle(int want, unsigned timeout_ms)
{
	for (unsigned t = 0; t < timeout_ms; t += 10) {
		if (http_server_connections(H.srv) == 0 && count_fds() == want)
			return 1;
		run_for(10);
	}
	return http_server_connections(H.srv) == 0 && count_fds() == want;
}

/*
 * The descriptors open once connections have come and gone: libuv opens
 * one of its own for its loop with the first TCP handle (the first
 * connection, since the listener is a uv_poll_t).
 */
static int fds_at_rest(void)
{
	return count_fds() + (H.loop.emfile_fd < 0 ? 1 : 0);
}

/* The only connection of the server, or NULL. */
static http_conn *only_conn(void)
{
	if (http_server_connections(H.srv) != 1)
		return NULL;
	return BASE_CONTAINER_OF(H.srv->conns.next, http_conn, link);
}

/* ---- client helpers ------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static int cl_sendf(cl_t *c, const char *fmt, ...)
{
	char req[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(req, sizeof(req), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -1;
	return cl_send(c, req, (size_t)n);
}

/* Reads a response head: returns its status (-1 on failure); *clen is its Content-Length or -1. */
static int read_head(cl_t *c, resp_t *r, long long *clen)
{
	const char *v;

	*clen = -1;
	if (cl_response_ex(c, r, 1) != 0) {
		resp_free(r);
		return -1;
	}
	resp_free(r);
	v = resp_header(r, "Content-Length");
	if (v != NULL)
		*clen = strtoll(v, NULL, 10);
	return r->status;
}

/*
 * Reads up to want body bytes (fewer when the connection closes or the
 * read times out), comparing each with the file's byte at off onwards.
 * *bad: a byte differed. *closed: the server closed (EOF or reset).
 */
static uint64_t read_body(cl_t *c, uint64_t off, uint64_t want, int *bad, int *closed)
{
	uint64_t got = 0;

	*bad = 0;
	*closed = 0;
	while (got < want) {
		size_t n;

		if (c->len == 0) {
			ssize_t r = cl_fill(c);

			if (r <= 0) {
				*closed = r == 0 || errno == ECONNRESET;
				break;
			}
		}
		n = c->len;
		if (n > want - got)
			n = (size_t)(want - got);
		for (size_t k = 0; k < n && !*bad; k++) {
			if ((uint8_t)c->buf[k] != pat(off + got + k))
				*bad = 1;
		}
		cl_consume(c, n);
		got += n;
	}
	return got;
}

/* A response with this status whose body is the file's bytes [off, off + len). */
#define EXPECT_FILE(c, status, off, len) expect_file(__LINE__, c, status, off, len)

static void expect_file(int caller, cl_t *c, int status, uint64_t off, uint64_t len)
{
	resp_t r;
	long long clen;
	int bad, closed;

	CKL(read_head(c, &r, &clen) == status);
	CKL(clen == (long long)len);
	CKL(read_body(c, off, len, &bad, &closed) == len);
	CKL(!bad);
}

#define EXPECT_HELLO(c) expect_hello(__LINE__, c)

static void expect_hello(int caller, cl_t *c)
{
	resp_t r;

	CKL(cl_response(c, &r) == 0);
	CKL(r.status == 200 && r.body != NULL && strcmp(r.body, "hello world") == 0);
	resp_free(&r);
}

/* ---- 1. http_parse_range -------------------------------------------------- */

/* http_parse_range over a NUL-terminated value; *start and *len are poisoned first. */
static int pr(const char *v, uint64_t size, uint64_t *start, uint64_t *len)
{
	base_slice s = {v, strlen(v)};

	*start = *len = 0xdeadbeef;
	return http_parse_range(&s, size, start, len);
}

#define RANGE_OK(v, size, s, l)                                 \
	do {                                                    \
		assert_int_equal(pr(v, size, &start, &len), 1); \
		assert_int_equal(start, (s));                   \
		assert_int_equal(len, (l));                     \
	} while (0)

static void test_parse_range(void **state)
{
	uint64_t start, len;
	base_slice s;

	(void)state;
	/* a-b, a-, -n. */
	RANGE_OK("bytes=0-99", 1000, 0, 100);
	RANGE_OK("bytes=0-0", 1000, 0, 1);
	RANGE_OK("bytes=999-999", 1000, 999, 1);
	RANGE_OK("bytes=100-", 1000, 100, 900);
	RANGE_OK("bytes=999-", 1000, 999, 1);
	RANGE_OK("bytes=-10", 1000, 990, 10);
	RANGE_OK("bytes=-1", 1000, 999, 1);
	/* A suffix longer than the body is the whole body; an end past it is clamped. */
	RANGE_OK("bytes=-5000", 1000, 0, 1000);
	RANGE_OK("bytes=-1000", 1000, 0, 1000);
	RANGE_OK("bytes=500-5000", 1000, 500, 500);
	RANGE_OK("bytes=0-999", 1000, 0, 1000);
	RANGE_OK("bytes=0-1000", 1000, 0, 1000);
	/* Unsatisfiable: an empty suffix, a start at or past the end, an empty body. */
	assert_int_equal(pr("bytes=-0", 1000, &start, &len), -1);
	assert_int_equal(pr("bytes=1000-", 1000, &start, &len), -1);
	assert_int_equal(pr("bytes=1000-1005", 1000, &start, &len), -1);
	assert_int_equal(pr("bytes=2000-", 1000, &start, &len), -1);
	assert_int_equal(pr("bytes=2000-3000", 1000, &start, &len), -1);
	assert_int_equal(pr("bytes=0-", 0, &start, &len), -1);
	assert_int_equal(pr("bytes=0-10", 0, &start, &len), -1);
	assert_int_equal(pr("bytes=-5", 0, &start, &len), -1);
	/* The whole body instead: b < a, several ranges, another unit, garbage. */
	assert_int_equal(pr("bytes=5-4", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=0-1,5-6", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=0-1, 5-6", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=-1,0-1", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=2000-,0-1", 1000, &start, &len), 0);
	assert_int_equal(pr("lines=1-2", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes", 1000, &start, &len), 0);
	assert_int_equal(pr("", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=abc", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=5", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=-", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=--5", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=5-x", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=0-5 x", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=99999999999999999999999-", 1000, &start, &len), 0);
	assert_int_equal(pr("bytes=99999999999999999999999-", 0, &start, &len), 0);
	/* Blanks around the range are fine. */
	RANGE_OK("bytes= 0-4 ", 1000, 0, 5);
	RANGE_OK("bytes=\t-3\t", 1000, 997, 3);
	RANGE_OK("bytes=10- ", 1000, 10, 990);
	/* Only the slice's bytes count: what follows it in memory is not read. */
	s = (base_slice){"bytes=0-99,200-300", 10};
	start = len = 0;
	assert_int_equal(http_parse_range(&s, 1000, &start, &len), 1);
	assert_int_equal(start, 0);
	assert_int_equal(len, 100);
	s = (base_slice){"bytes=100-", 8}; /* "bytes=10" */
	assert_int_equal(http_parse_range(&s, 1000, &start, &len), 0);
	/* No header at all. */
	assert_int_equal(http_parse_range(NULL, 1000, &start, &len), 0);
}

/* ---- 2. the whole file ---------------------------------------------------- */

static void c_whole(void)
{
	cl_t *c = cl_open();
	resp_t r;
	long long clen;
	const char *v;
	int bad, closed;

	CK(cl_sends(c, "GET /file/big HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
	CK(read_head(c, &r, &clen) == 200);
	CK(clen == (long long)BIG_SIZE);
	v = resp_header(&r, "Content-Type");
	CK(v != NULL && strncmp(v, "application/octet-stream", 24) == 0);
	v = resp_header(&r, "Connection");
	CK(v != NULL && strncasecmp(v, "keep-alive", 10) == 0);
	CK(resp_header(&r, "Content-Range") == NULL);
	CK(read_body(c, 0, BIG_SIZE, &bad, &closed) == BIG_SIZE);
	CK(!bad);
	/* The connection moves on after the stream: a second request, and the file again. */
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	EXPECT_HELLO(c);
	CK(cl_sends(c, "GET /file/huge HTTP/1.1\r\n\r\n") == 0);
	EXPECT_FILE(c, 200, 0, HUGE_SIZE);
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	EXPECT_HELLO(c);
	/* Connection: close: the whole body, then the close. */
	CK(cl_sends(c, "GET /file/big HTTP/1.1\r\nConnection: close\r\n\r\n") == 0);
	CK(read_head(c, &r, &clen) == 200);
	CK(clen == (long long)BIG_SIZE);
	v = resp_header(&r, "Connection");
	CK(v != NULL && strncasecmp(v, "close", 5) == 0);
	CK(read_body(c, 0, BIG_SIZE, &bad, &closed) == BIG_SIZE);
	CK(!bad);
	CK(c->len == 0);
	CK(cl_wait_close(c));
	cl_close(c);
	/* HTTP/1.0 without keep-alive: the same. */
	c = cl_open();
	CK(cl_sends(c, "GET /file/big HTTP/1.0\r\n\r\n") == 0);
	EXPECT_FILE(c, 200, 0, BIG_SIZE);
	CK(cl_wait_close(c));
	cl_close(c);
}

static void test_whole(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_whole);
	/* Each file was closed when its body was out. */
	assert_true(settle(fds, 3000));
	assert_int_equal(atomic_load(&g_served), 4);
	assert_int_equal(atomic_load(&g_bad_rc), 0);
}

/* ---- 3. ranges ------------------------------------------------------------ */

static void c_range(void)
{
	cl_t *c = cl_open();
	resp_t r;
	long long clen;
	const char *v;
	char want[100];

	/* A slice that starts and ends inside pieces and spans several. */
	CK(cl_sends(c, "GET /file/big?off=100000&len=300001 HTTP/1.1\r\n\r\n") == 0);
	CK(read_head(c, &r, &clen) == 206);
	CK(clen == 300001);
	snprintf(want, sizeof(want), "bytes 100000-400000/%llu\r\n", (unsigned long long)BIG_SIZE);
	v = resp_header(&r, "Content-Range");
	CK(v != NULL && strncmp(v, want, strlen(want)) == 0);
	{
		int bad, closed;

		CK(read_body(c, 100000, 300001, &bad, &closed) == 300001);
		CK(!bad);
	}
	CK(cl_sends(c, "GET /file/big?off=131071&len=262147 HTTP/1.1\r\n\r\n") == 0);
	EXPECT_FILE(c, 206, 131071, 262147);
	/* The last bytes, and the first one. */
	CK(cl_sendf(c, "GET /file/big?off=%llu&len=10 HTTP/1.1\r\n\r\n",
	            (unsigned long long)(BIG_SIZE - 10)) == 0);
	EXPECT_FILE(c, 206, BIG_SIZE - 10, 10);
	CK(cl_sends(c, "GET /file/big?off=0&len=1 HTTP/1.1\r\n\r\n") == 0);
	EXPECT_FILE(c, 206, 0, 1);
	/* Nothing at all: an empty body, and the connection goes on. */
	CK(cl_sends(c, "GET /file/big?off=5&len=0 HTTP/1.1\r\n\r\n") == 0);
	EXPECT_FILE(c, 206, 5, 0);
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	EXPECT_HELLO(c);
	CK(c->len == 0);
	/* Range headers, through http_parse_range. */
	CK(cl_sends(c, "GET /file/big HTTP/1.1\r\nRange: bytes=-10\r\n\r\n") == 0);
	CK(read_head(c, &r, &clen) == 206);
	CK(clen == 10);
	snprintf(want, sizeof(want), "bytes %llu-%llu/%llu\r\n",
	         (unsigned long long)(BIG_SIZE - 10), (unsigned long long)(BIG_SIZE - 1),
	         (unsigned long long)BIG_SIZE);
	v = resp_header(&r, "Content-Range");
	CK(v != NULL && strncmp(v, want, strlen(want)) == 0);
	{
		int bad, closed;

		CK(read_body(c, BIG_SIZE - 10, 10, &bad, &closed) == 10);
		CK(!bad);
	}
	CK(cl_sends(c, "GET /file/big HTTP/1.1\r\nRange: bytes=1000-1999\r\n\r\n") == 0);
	EXPECT_FILE(c, 206, 1000, 1000);
	CK(cl_sendf(c, "GET /file/big HTTP/1.1\r\nRange: bytes=%llu-\r\n\r\n",
	            (unsigned long long)BIG_SIZE) == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 416);
	snprintf(want, sizeof(want), "bytes */%llu\r\n", (unsigned long long)BIG_SIZE);
	v = resp_header(&r, "Content-Range");
	CK(v != NULL && strncmp(v, want, strlen(want)) == 0);
	resp_free(&r);
	/* Several ranges: the whole file. */
	CK(cl_sends(c, "GET /file/big HTTP/1.1\r\nRange: bytes=0-1,5-6\r\n\r\n") == 0);
	EXPECT_FILE(c, 200, 0, BIG_SIZE);
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	EXPECT_HELLO(c);
	cl_close(c);
}

static void test_range(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_range);
	assert_true(settle(fds, 3000));
	assert_int_equal(atomic_load(&g_served), 8);
	assert_int_equal(atomic_load(&g_bad_rc), 0);
}

/* ---- 4. pipelining --------------------------------------------------------- */

static void c_pipelining(void)
{
	cl_t *c = cl_open();

	/* All sent at once: each waits behind the file before it. */
	CK(cl_sends(c,
	            "GET /file/big HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"
	            "GET /file/big?off=7&len=1000000 HTTP/1.1\r\n\r\n"
	            "GET /file/big?off=9&len=0 HTTP/1.1\r\n\r\n"
	            "GET /file/big?off=3&len=5 HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n") == 0);
	EXPECT_FILE(c, 200, 0, BIG_SIZE);
	EXPECT_HELLO(c);
	EXPECT_FILE(c, 206, 7, 1000000);
	EXPECT_FILE(c, 206, 9, 0);
	EXPECT_FILE(c, 206, 3, 5);
	EXPECT_HELLO(c);
	CK(c->len == 0);
	/* The next request arrives while the file is on its way. */
	CK(cl_sends(c, "GET /file/huge HTTP/1.1\r\n\r\n") == 0);
	{
		resp_t r;
		long long clen;
		int bad, closed;

		CK(read_head(c, &r, &clen) == 200);
		CK(clen == (long long)HUGE_SIZE);
		CK(read_body(c, 0, 1000000, &bad, &closed) == 1000000);
		CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
		CK(read_body(c, 1000000, HUGE_SIZE - 1000000, &bad, &closed) ==
		   HUGE_SIZE - 1000000);
		CK(!bad);
	}
	EXPECT_HELLO(c);
	cl_close(c);
}

static void test_pipelining(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_pipelining);
	assert_true(settle(fds, 3000));
	assert_int_equal(atomic_load(&g_served), 5);
	assert_int_equal(atomic_load(&g_bad_rc), 0);
}

/* ---- 5. HEAD --------------------------------------------------------------- */

static void c_head(void)
{
	cl_t *c = cl_open();
	resp_t r;
	long long clen;

	/* Sent together: a body after the HEAD answer would be read as the next response. */
	CK(cl_sends(c, "HEAD /file/big HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(read_head(c, &r, &clen) == 200);
	CK(clen == (long long)BIG_SIZE);
	EXPECT_HELLO(c);
	CK(cl_sends(c,
	            "HEAD /file/huge?off=10&len=20 HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n") ==
	   0);
	CK(read_head(c, &r, &clen) == 206);
	CK(clen == 20);
	CK(resp_header(&r, "Content-Range") != NULL);
	EXPECT_HELLO(c);
	/* And a GET after it still gets the whole body. */
	CK(cl_sends(c, "HEAD /file/big HTTP/1.1\r\n\r\nGET /file/big HTTP/1.1\r\n\r\n") == 0);
	CK(read_head(c, &r, &clen) == 200);
	CK(clen == (long long)BIG_SIZE);
	EXPECT_FILE(c, 200, 0, BIG_SIZE);
	CK(c->len == 0);
	cl_close(c);
}

static void test_head(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_head);
	/* HEAD closes the file at once. */
	assert_true(settle(fds, 3000));
	assert_int_equal(atomic_load(&g_served), 4);
	assert_int_equal(atomic_load(&g_bad_rc), 0);
}

/* ---- 6. a slow reader ------------------------------------------------------ */

/* The most queued on a connection sending a file, sampled after every loop turn's callbacks. */
static size_t g_max_out;
static int g_stream_seen;

static void sample_cb(uv_check_t *h)
{
	base_list *p;

	(void)h;
	for (p = H.srv->conns.next; p != &H.srv->conns; p = p->next) {
		http_conn *c = BASE_CONTAINER_OF(p, http_conn, link);

		if (c->flags & HTTP_F_CLOSED)
			continue;
		if (http__fstream_active(c)) {
			g_stream_seen = 1;
			if (c->out_bytes > g_max_out)
				g_max_out = c->out_bytes;
		}
	}
}

static void c_slow(void)
{
	cl_t *c = cl_open_rcvbuf(SMALL_RCVBUF);
	resp_t r;
	long long clen;
	int bad, closed;

	CK(cl_sends(c, "GET /file/huge?sndbuf=65536 HTTP/1.1\r\n\r\n") == 0);
	msleep(500); /* reads nothing while the server has 8 MiB to send */
	CK(read_head(c, &r, &clen) == 200);
	CK(clen == (long long)HUGE_SIZE);
	CK(read_body(c, 0, HUGE_SIZE, &bad, &closed) == HUGE_SIZE);
	CK(!bad);
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	EXPECT_HELLO(c);
	cl_close(c);
}

static void test_slow_reader(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	g_max_out = 0;
	g_stream_seen = 0;
	uv_check_init(&H.loop, &g_check);
	uv_check_start(&g_check, sample_cb);
	g_check_open = 1;
	run_client(c_slow);
	check_close();
	assert_true(settle(fds, 3000));
	/* The reader stalled while the queue was watched... */
	assert_true(g_stream_seen);
	assert_true(g_max_out > 0);
	/* ...and the file was never read more than a window and a piece ahead (plus the head). */
	if (g_max_out > FILE_WINDOW + FILE_PIECE + 1024)
		fail_msg("%zu bytes queued, over the window", g_max_out);
}

/* A reader that stops taking anything for longer than idle_timeout_ms is dropped. */
static void c_stalled_dropped(void)
{
	cl_t *c = cl_open_rcvbuf(SMALL_RCVBUF);
	resp_t r;
	long long clen;
	int bad, closed;
	uint64_t got;

	CK(cl_sends(c, "GET /file/huge?sndbuf=65536 HTTP/1.1\r\n\r\n") == 0);
	msleep(1500);
	CK(read_head(c, &r, &clen) == 200);
	got = read_body(c, 0, HUGE_SIZE, &bad, &closed);
	CK(closed);
	CK(got < HUGE_SIZE);
	CK(!bad);
	cl_close(c);
}

/* One that keeps reading, however slowly, is not. */
static void c_paced(void)
{
	cl_t *c = cl_open_rcvbuf(SMALL_RCVBUF);
	resp_t r;
	long long clen;
	uint64_t got = 0;
	int bad = 0, closed = 0;

	CK(cl_sends(c, "GET /file/huge?sndbuf=65536 HTTP/1.1\r\n\r\n") == 0);
	CK(read_head(c, &r, &clen) == 200);
	while (got < HUGE_SIZE && !bad && !closed) {
		uint64_t n = HUGE_SIZE - got < 65536 ? HUGE_SIZE - got : 65536;
		uint64_t k = read_body(c, got, n, &bad, &closed);

		got += k;
		if (k < n)
			break;
		msleep(10);
	}
	CK(got == HUGE_SIZE);
	CK(!bad);
	cl_close(c);
}

static void test_idle_timeout(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_stalled_dropped);
	assert_true(settle(fds, 3000));
	run_client(c_paced);
	assert_true(settle(fds, 3000));
	assert_int_equal(atomic_load(&g_served), 2);
}

/* ---- 7. the client goes away mid-stream ----------------------------------- */

/* How much of the body each connection reads before it closes. */
static const uint64_t g_disconnect_after[] = {0, 1, 65536, 1000000, 3000000, 6000000};

static void c_disconnect(void)
{
	for (size_t i = 0; i < sizeof(g_disconnect_after) / sizeof(g_disconnect_after[0]); i++) {
		cl_t *c = cl_open();
		uint64_t n = g_disconnect_after[i];

		CK(cl_sends(c, "GET /file/huge HTTP/1.1\r\n\r\n") == 0);
		if (n > 0) {
			resp_t r;
			long long clen;
			int bad, closed;

			CK(read_head(c, &r, &clen) == 200);
			CK(read_body(c, 0, n, &bad, &closed) == n);
			CK(!bad);
		} else {
			msleep(20); /* the server has begun */
		}
		/* Unread bytes in the receive buffer: a reset, as a browser's cancel. */
		cl_close(c);
	}
}

static void c_after(void)
{
	cl_t *c = cl_open();

	CK(cl_sends(c, "GET /file/big HTTP/1.1\r\n\r\n") == 0);
	EXPECT_FILE(c, 200, 0, BIG_SIZE);
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	EXPECT_HELLO(c);
	cl_close(c);
}

static void test_disconnect(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_disconnect);
	/* Every stream was dropped and its file closed, reading or not. */
	assert_true(settle(fds, 3000));
	assert_int_equal(atomic_load(&g_served), 6);
	run_client(c_after);
	assert_true(settle(fds, 3000));
	assert_int_equal(atomic_load(&g_bad_rc), 0);
}

/* ---- 8. a file shorter than promised -------------------------------------- */

static void c_short(void)
{
	cl_t *c = cl_open();
	resp_t r;
	long long clen;
	int bad, closed;
	uint64_t got;

	CK(cl_sendf(c, "GET /file/big?off=0&len=%llu&status=200 HTTP/1.1\r\n\r\n",
	            (unsigned long long)(BIG_SIZE + 300000)) == 0);
	CK(read_head(c, &r, &clen) == 200);
	CK(clen == (long long)(BIG_SIZE + 300000));
	got = read_body(c, 0, BIG_SIZE + 300000, &bad, &closed);
	/* Closed early: what came is the file's, and no more than the file has. */
	CK(closed);
	CK(got <= BIG_SIZE);
	CK(!bad);
	cl_close(c);
	/* Starting past the end: the head, then the close. */
	c = cl_open();
	CK(cl_sendf(c, "GET /file/big?off=%llu&len=100 HTTP/1.1\r\n\r\n",
	            (unsigned long long)(BIG_SIZE + 10)) == 0);
	CK(read_head(c, &r, &clen) == 206);
	CK(clen == 100);
	got = read_body(c, 0, 100, &bad, &closed);
	CK(closed);
	CK(got == 0);
	cl_close(c);
	/* The server is fine. */
	c = cl_open();
	CK(cl_sends(c, "GET /hello HTTP/1.1\r\n\r\n") == 0);
	EXPECT_HELLO(c);
	cl_close(c);
}

static void test_short_file(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_short);
	assert_true(settle(fds, 3000));
	assert_int_equal(atomic_load(&g_served), 2);
	/* The failure shows only on the wire: http_respond_file had returned 0. */
	assert_int_equal(atomic_load(&g_bad_rc), 0);
}

/* ---- 9. the server closes with a stream in progress ----------------------- */

static atomic_int g_stalled, g_release;
static pthread_t g_stall_th;

static void *stall_main(void *arg)
{
	cl_t *c = cl_open_rcvbuf(SMALL_RCVBUF);
	resp_t r;
	long long clen;
	int bad, closed;
	uint64_t got;

	(void)arg;
	CK(cl_sends(c, "GET /file/huge?sndbuf=65536 HTTP/1.1\r\n\r\n") == 0);
	CK(read_head(c, &r, &clen) == 200);
	atomic_store(&g_stalled, 1);
	/* Reads nothing more until the server is gone. */
	for (int i = 0; i < 2000 && !atomic_load(&g_release); i++)
		msleep(5);
	got = read_body(c, 0, HUGE_SIZE, &bad, &closed);
	CK(closed);
	CK(got < HUGE_SIZE);
	CK(!bad);
	cl_close(c);
	return NULL;
}

static void test_server_close(void **state)
{
	http_conn *c;

	(void)state;
	atomic_store(&g_stalled, 0);
	atomic_store(&g_release, 0);
	assert_int_equal(pthread_create(&g_stall_th, NULL, stall_main, NULL), 0);
	run_until(&g_stalled, 5000);
	run_for(100); /* the socket and the window fill up */
	c = only_conn();
	assert_non_null(c);
	assert_true(http__fstream_active(c));
	/* Left as it is: teardown closes the server over it. */
}

static int teardown_server_close(void **state)
{
	(void)state;
	teardown_server();
	atomic_store(&g_release, 1);
	pthread_join(g_stall_th, NULL);
	if (atomic_load(&g_failed))
		fail_msg("client: %s", g_fail);
	assert_int_equal(count_fds(), g_fds_base);
	return 0;
}

/* ---- bugs found by these tests (fixed) ------------------------------------- */

/*
 * A client that half-closes after its request still gets its answer
 * (conn.c's http__conn_eof lets queued output drain), as it does for
 * http_respond, although a file response is a kept request there.
 */
static void c_half_close(void)
{
	cl_t *c = cl_open();

	CK(cl_sends(c, "GET /file/big HTTP/1.1\r\n\r\n") == 0);
	CK(shutdown(c->fd, SHUT_WR) == 0);
	EXPECT_FILE(c, 200, 0, BIG_SIZE);
	cl_close(c);
}

static void test_half_close(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_half_close);
	assert_true(settle(fds, 3000));
}

/* "max_output_bytes does not apply" to a file body (http.h). */
static void c_small_output(void)
{
	cl_t *c = cl_open();

	CK(cl_sends(c, "GET /file/big HTTP/1.1\r\n\r\n") == 0);
	EXPECT_FILE(c, 200, 0, BIG_SIZE);
	cl_close(c);
}

static void test_small_output_limit(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_small_output);
	assert_true(settle(fds, 3000));
}

/* The status web/uploads.c answers an unsatisfiable range with has its reason phrase. */
static void test_status_416(void **state)
{
	(void)state;
	assert_string_equal(http_status_text(416), "Range Not Satisfiable");
	assert_string_equal(http_status_text(206), "Partial Content");
}

/*
 * A status without a body (304, 204) sends none, as http_respond: the
 * head has no Content-Length, so streaming the file would corrupt the next
 * answer on the connection.
 */
static void c_bodiless_status(void)
{
	cl_t *c = cl_open();
	resp_t r;

	CK(cl_sends(c,
	            "GET /file/big?status=304 HTTP/1.1\r\n\r\n"
	            "GET /file/big?status=204 HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n") == 0);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 304 && r.body_len == 0);
	resp_free(&r);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 204 && r.body_len == 0);
	resp_free(&r);
	CK(cl_response(c, &r) == 0);
	CK(r.status == 200 && r.body != NULL && strcmp(r.body, "hello world") == 0);
	resp_free(&r);
	cl_close(c);
}

static void test_bodiless_status(void **state)
{
	int fds = fds_at_rest();

	(void)state;
	run_client(c_bodiless_status);
	assert_true(settle(fds, 3000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_range),
	    cmocka_unit_test_setup_teardown(test_whole, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_range, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_pipelining, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_head, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_slow_reader, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_idle_timeout, setup_idle, teardown),
	    cmocka_unit_test_setup_teardown(test_disconnect, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_short_file, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_server_close, setup_default,
	                                    teardown_server_close),
	    cmocka_unit_test_setup_teardown(test_half_close, setup_default, teardown),
	    cmocka_unit_test_setup_teardown(test_small_output_limit, setup_small_output, teardown),
	    cmocka_unit_test(test_status_416),
	    cmocka_unit_test_setup_teardown(test_bodiless_status, setup_default, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
