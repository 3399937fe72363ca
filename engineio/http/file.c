/*
 * file.c: a response body streamed from a file, and byte ranges.
 *
 * The file is read on libuv's threadpool one piece at a time into a shared
 * chunk that goes into the output queue without a copy. A new piece is read
 * only while less than a window is queued, so a response of any size, to a
 * reader of any speed, holds at most HTTP_FILE_WINDOW + one piece of memory
 * and never trips max_output_bytes. The stream hangs off the request; when
 * the connection goes away first, the stream is detached and frees itself
 * once its read in flight (if any) comes back.
 */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

/* Bytes read from the file at a time. */
#define HTTP_FILE_PIECE (128 * 1024)
/* A new piece is read only while less than this is queued. */
#define HTTP_FILE_WINDOW (256 * 1024)
/* Pieces a stream owns and reuses: those queued within the window, and one being read. */
#define HTTP_FILE_BUFS 3

struct http_fstream {
	uv_fs_t fs;
	http_conn *conn; /* NULL once the connection is gone */
	base_chunk *bufs[HTTP_FILE_BUFS];
	base_chunk *chunk; /* the one being read, among bufs */
	uv_file fd;
	uint64_t off, left;
	uint8_t reading, keep_alive;
};

static void fstream_free(http_fstream *f)
{
	uv_fs_t req;

	for (size_t i = 0; i < HTTP_FILE_BUFS; i++)
		base_chunk_unref(f->bufs[i]);
	/* A synchronous close of a regular file: nothing to wait for. */
	uv_fs_close(NULL, &req, f->fd, NULL);
	uv_fs_req_cleanup(&req);
	free(f);
}

void http__fstream_detach(http_fstream *f)
{
	f->conn = NULL;
	if (!f->reading)
		fstream_free(f);
}

int http__fstream_active(const http_conn *c)
{
	return c->mode == HTTP_MODE_HTTP && c->u.rx != NULL && c->u.rx->fstream != NULL;
}

static void read_cb(uv_fs_t *fs);

/* Reads the next piece when the window has room. */
static void pump(http_fstream *f)
{
	http_conn *c = f->conn;
	size_t n;
	uv_buf_t buf;

	if (f->reading || f->left == 0 || c->out_bytes >= HTTP_FILE_WINDOW ||
	    (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING)))
		return;
	n = f->left < HTTP_FILE_PIECE ? (size_t)f->left : HTTP_FILE_PIECE;
	/*
	 * A piece the socket has taken all of (only our reference left) is
	 * reused: a stream allocates at most HTTP_FILE_BUFS pieces, however
	 * long the file (sized for the first read: later ones are never larger).
	 * When all are still queued, the next flush calls again.
	 */
	f->chunk = NULL;
	for (size_t i = 0; i < HTTP_FILE_BUFS && f->chunk == NULL; i++) {
		if (f->bufs[i] == NULL)
			f->bufs[i] = base_chunk_new(n);
		if (f->bufs[i]->refs == 1)
			f->chunk = f->bufs[i];
	}
	if (f->chunk == NULL)
		return;
	buf = uv_buf_init(f->chunk->data, (unsigned)n);
	f->fs.data = f;
	if (uv_fs_read(c->srv->loop, &f->fs, f->fd, &buf, 1, (int64_t)f->off, read_cb) != 0) {
		http__conn_close(c);
		return;
	}
	f->reading = 1;
}

static void read_cb(uv_fs_t *fs)
{
	http_fstream *f = fs->data;
	http_conn *c = f->conn;
	ssize_t n = fs->result;

	uv_fs_req_cleanup(fs);
	f->reading = 0;
	if (c == NULL) {
		fstream_free(f);
		return;
	}
	if (n <= 0) {
		/* The head promised more bytes than the file has now: nothing can be
		 * answered any more; the peer sees the connection close early. */
		BASE_LOGW("http", "file response: %s at offset %llu",
		          n < 0 ? uv_strerror((int)n) : "unexpected end of file",
		          (unsigned long long)f->off);
		http__conn_close(c);
		return;
	}
	if ((uint64_t)n > f->left)
		n = (ssize_t)f->left;
	if (http__out_chunk(c, f->chunk, 0, (size_t)n) != 0)
		return; /* the connection is closing; the rx, and f with it, go then */
	f->off += (uint64_t)n;
	f->left -= (uint64_t)n;
	if (f->left == 0) {
		int keep = f->keep_alive;

		c->u.rx->fstream = NULL;
		fstream_free(f);
		/* Out of the idle list, so the keep-alive wait starts afresh. */
		http__tq_set(c, HTTP_T_NONE);
		http__request_end(c, keep);
		return;
	}
	pump(f);
}

void http__fstream_peer_done(http_conn *c)
{
	c->u.rx->fstream->keep_alive = 0;
}

void http__fstream_writable(http_conn *c)
{
	pump(c->u.rx->fstream);
}

int http_respond_file(http_request *req, int status, const char *content_type,
                      const char *extra_headers, uv_file fd, uint64_t offset, uint64_t len)
{
	http_rx *rx = BASE_CONTAINER_OF(req, http_rx, req);
	http_conn *c = rx->conn;
	http_fstream *f;
	int keep_alive, rc;

	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		uv_fs_t close_req;

		uv_fs_close(NULL, &close_req, fd, NULL);
		uv_fs_req_cleanup(&close_req);
		http_respond(req, 500, "text/plain", NULL, "Out of memory\n", 14);
		return BASE_ENOMEM;
	}
	f->fd = fd;
	if (status < 100 || status > 999)
		status = 500; /* as http_respond */
	rc = http__respond_head(req, status, content_type, extra_headers, len, &keep_alive);
	/* Statuses without a body (1xx, 204, 304) send none, as http_respond. */
	if (rc != 0 || req->method == HTTP_M_HEAD || len == 0 || status < 200 || status == 204 ||
	    status == 304) {
		fstream_free(f);
		if (c->mode == HTTP_MODE_HTTP && c->u.rx == rx)
			http__request_end(c, rc == 0 && keep_alive);
		return rc;
	}
	f->conn = c;
	f->off = offset;
	f->left = len;
	f->keep_alive = (uint8_t)keep_alive;
	rx->fstream = f;
	/* The socket has the head; the body's pace is the reader's. */
	http__conn_update_timeout(c);
	pump(f);
	return 0;
}

/* ---- Range: bytes=... ----------------------------------------------------- */

static int digits(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	while (*p < end && **p >= '0' && **p <= '9') {
		if (x > (UINT64_MAX - 9) / 10)
			return 0;
		x = x * 10 + (uint64_t)(**p - '0');
		(*p)++;
	}
	*v = x;
	return *p > s;
}

int http_parse_range(const base_slice *value, uint64_t size, uint64_t *start, uint64_t *len)
{
	const char *p, *end;
	uint64_t a, b;

	if (value == NULL || value->len < 6 || strncmp(value->base, "bytes=", 6) != 0)
		return 0;
	p = value->base + 6;
	end = value->base + value->len;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	if (p < end && *p == '-') {
		/* The last b bytes. */
		p++;
		if (!digits(&p, end, &b))
			return 0;
		a = b >= size ? 0 : size - b;
		b = size;
		if (size == 0 || a == size)
			goto tail;
	} else {
		if (!digits(&p, end, &a) || p >= end || *p++ != '-')
			return 0;
		if (p < end && *p >= '0' && *p <= '9') {
			if (!digits(&p, end, &b) || b < a)
				return 0;
			b = b >= size ? size : b + 1;
		} else {
			b = size;
		}
		if (a >= size)
			goto tail;
	}
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	/* Several ranges are allowed to be answered with the whole file. */
	if (p != end)
		return 0;
	*start = a;
	*len = b - a;
	return 1;
tail:
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p == end ? -1 : 0;
}
