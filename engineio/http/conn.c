/*
 * conn.c: one connection's bytes in and out, and its closing.
 *
 * Input: reads land in the server's shared buffer and are parsed there;
 * only an unfinished tail is copied into the connection (`in`). Output: a
 * queue of nodes, written with uv_try_write over all of them at once and,
 * when the socket pushes back, one uv_write of what is left. Closing: a
 * connection is freed only in its uv_close callback, never while one of
 * its callbacks runs, so a handler may close it at any time.
 */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

/* Inline nodes get at least this much room, so small writes share a node. */
#define HTTP_OUT_MIN 480
/* Writes this big skip the copy when nothing is queued before them. */
#define HTTP_DIRECT_MIN (16 * 1024)
/* A large frame being collected reads straight into `in` when this much is free. */
#define HTTP_DIRECT_READ_MIN (16 * 1024)

static void conn_closed(uv_handle_t *h);
static void write_cb(uv_write_t *req, int status);
static void drain_done(http_conn *c);

/* ---- reading ------------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	http_conn *c = BASE_CONTAINER_OF(h, http_conn, tcp);

	/*
	 * Only a large frame being collected reads straight into its own
	 * buffer; everything else lands in the shared one, which is free again
	 * as soon as read_cb returns because nothing keeps pointers into it.
	 */
	if (c->in != NULL && c->in_cap - c->in_len >= HTTP_DIRECT_READ_MIN) {
		*buf = uv_buf_init(c->in + c->in_len, c->in_cap - c->in_len);
		return;
	}
	*buf = uv_buf_init(c->srv->rbuf, HTTP_RBUF_SIZE);
}

static int in_append(http_conn *c, const char *p, size_t n)
{
	size_t need = (size_t)c->in_len + n;

	if (need > UINT32_MAX)
		return BASE_ELIMIT;
	if (need > c->in_cap) {
		size_t cap = (size_t)c->in_cap * 2;
		char *q;

		if (cap < need)
			cap = need;
		if (cap > UINT32_MAX)
			cap = UINT32_MAX;
		q = realloc(c->in, cap);
		if (q == NULL)
			return BASE_ENOMEM;
		c->in = q;
		c->in_cap = (uint32_t)cap;
	}
	memcpy(c->in + c->in_len, p, n);
	c->in_len = (uint32_t)need;
	return 0;
}

static void read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	http_conn *c = BASE_CONTAINER_OF(st, http_conn, tcp);
	size_t old = c->in_len;

	if (nread == 0)
		return;
	if (nread < 0) {
		http__conn_eof(c, nread);
		return;
	}
	c->srv->stats.bytes_in += (uint64_t)nread;
	if (c->mode == HTTP_MODE_WS && c->u.ws != NULL)
		c->u.ws->bytes_in += (uint64_t)nread;
	if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))
		return; /* lingering: the peer's last bytes are dropped */
	if (buf->base != c->srv->rbuf) {
		/* Read straight into the tail of `in` (see alloc_cb). */
		c->in_len += (uint32_t)nread;
		http__conn_input_owned(c, old);
	} else if (c->in_len > 0) {
		if (in_append(c, buf->base, (size_t)nread) != 0) {
			http__conn_close(c);
			return;
		}
		http__conn_input_owned(c, old);
	} else {
		http__conn_input_shared(c, buf->base, (size_t)nread);
	}
	/* Answers to everything this read carried leave in one write. */
	if (!(c->flags & HTTP_F_CLOSED))
		http__conn_flush(c);
}

int http__conn_read_start(http_conn *c)
{
	return uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

/* ---- input --------------------------------------------------------------- */

static int kept_request(const http_conn *c)
{
	return c->mode == HTTP_MODE_HTTP && c->u.rx != NULL && c->u.rx->dispatched;
}

void http__conn_update_timeout(http_conn *c)
{
	const http_rx *rx;

	if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))
		return;
	if (c->mode == HTTP_MODE_WS) {
		http__tq_set(c, HTTP_T_NONE);
		return;
	}
	rx = c->u.rx;
	if (rx == NULL)
		http__tq_set(c, HTTP_T_IDLE);
	else if (!rx->headers_done)
		http__tq_set(c, HTTP_T_HEADER);
	else if (!rx->complete)
		http__tq_set(c, HTTP_T_BODY);
	else if (rx->fstream != NULL)
		http__tq_set(c, HTTP_T_IDLE); /* a file being sent: the reader must keep up */
	else
		http__tq_set(c, HTTP_T_NONE); /* the handler has it */
}

/*
 * Runs the protocol over buf[from, len). Returns the offset of the first
 * byte that must be kept for later (len when none); *want is the size a
 * partial WebSocket frame will have, to size the buffer once.
 */
static size_t conn_input(http_conn *c, char *buf, size_t len, size_t from, size_t *want)
{
	size_t off = from;

	*want = 0;
	c->flags |= HTTP_F_PROCESSING;
	for (;;) {
		if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING)) {
			off = len;
			break;
		}
		if (c->mode == HTTP_MODE_WS) {
			off = http__ws_input(c, buf, len, off, want);
			break;
		}
		/* Behind a kept request, the rest waits (answers go in order). */
		if (off >= len || kept_request(c))
			break;
		if (http__rx_input(c, buf, len, &off) == HTTP_RX_STOP)
			break;
	}
	c->flags &= (uint16_t)~HTTP_F_PROCESSING;
	http__conn_update_timeout(c);
	return off;
}

/* Bytes a kept request may have waiting behind it before reading pauses. */
static size_t pipeline_max(const http_server *s)
{
	return s->lim.max_header_bytes + 64 * 1024;
}

int http__conn_account(http_conn *c)
{
	http_server *s = c->srv;
	size_t now = c->in_cap;
	uint32_t before = c->held;

	if (c->mode == HTTP_MODE_HTTP && c->u.rx != NULL)
		now += c->u.rx->body.cap;
	else if (c->mode == HTTP_MODE_WS && c->u.ws != NULL)
		now += c->u.ws->frag ? c->u.ws->frag->cap : 0;
	if (now > UINT32_MAX)
		now = UINT32_MAX;
	s->held = s->held - before + now;
	c->held = (uint32_t)now;
	return now > before && s->held > s->lim.max_input_bytes;
}

static void after_input(http_conn *c)
{
	if (c->flags & HTTP_F_CLOSED)
		return;
	if (http__conn_account(c)) {
		BASE_LOGW("http",
		          "%u connections hold %zu bytes of input, over the limit of %zu: "
		          "refusing more from one",
		          c->srv->n_conns, c->srv->held, c->srv->lim.max_input_bytes);
		if (c->mode == HTTP_MODE_WS && c->u.ws != NULL)
			http_ws_close(c->u.ws, 1013, "server busy");
		else
			http__send_error(c, 503);
		return;
	}
	if (kept_request(c)) {
		if (c->in_len > pipeline_max(c->srv) && !(c->flags & HTTP_F_READ_STOPPED)) {
			uv_read_stop((uv_stream_t *)&c->tcp);
			c->flags |= HTTP_F_READ_STOPPED;
		}
	} else if (c->flags & HTTP_F_READ_STOPPED) {
		c->flags &= (uint16_t)~HTTP_F_READ_STOPPED;
		if (http__conn_read_start(c) != 0)
			http__conn_close(c);
	}
}

/*
 * The capacity of `in` for n kept bytes of a frame that will be want bytes
 * long (0: unknown), given its capacity now. It grows with what arrives
 * (doubling, and enough room to read straight into it) and never past want:
 * a frame header announcing a megabyte costs what has been received, not a
 * megabyte.
 */
static size_t in_room(size_t n, size_t cap, size_t want)
{
	size_t room = n + HTTP_DIRECT_READ_MIN;

	if (room < 2 * cap)
		room = 2 * cap;
	if (want < n)
		want = n;
	return room < want ? room : want;
}

void http__conn_input_shared(http_conn *c, char *buf, size_t len)
{
	size_t want, keep = conn_input(c, buf, len, 0, &want);

	if (keep < len && !(c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))) {
		size_t n = len - keep, cap = in_room(n, 0, want);

		c->in = malloc(cap);
		if (c->in == NULL) {
			http__conn_close(c);
			return;
		}
		memcpy(c->in, buf + keep, n);
		c->in_len = (uint32_t)n;
		c->in_cap = (uint32_t)cap;
	}
	after_input(c);
}

void http__conn_input_owned(http_conn *c, size_t old_len)
{
	char *buf = c->in;
	size_t len = c->in_len, cap = c->in_cap, want, keep, from = 0;

	/* Only a request still in its headers resumes mid-buffer; the rest starts over. */
	if (c->mode == HTTP_MODE_HTTP && c->u.rx != NULL && !c->u.rx->headers_done)
		from = old_len;
	/* The buffer is ours while we parse it: nothing below may touch c->in. */
	c->in = NULL;
	c->in_len = 0;
	c->in_cap = 0;
	keep = conn_input(c, buf, len, from, &want);
	if (keep < len && !(c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))) {
		size_t n = len - keep;

		if (keep > 0)
			memmove(buf, buf + keep, n);
		if (want > cap && want <= UINT32_MAX) {
			size_t ncap = in_room(n, cap, want);
			char *q = realloc(buf, ncap);

			if (q == NULL) {
				free(buf);
				http__conn_close(c);
				return;
			}
			buf = q;
			cap = ncap;
		}
		c->in = buf;
		c->in_len = (uint32_t)n;
		c->in_cap = (uint32_t)cap;
	} else {
		free(buf);
	}
	after_input(c);
}

void http__conn_resume(http_conn *c)
{
	if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))
		return;
	/* A read since the request ended may already have started the next one. */
	if (c->mode == HTTP_MODE_HTTP && c->u.rx != NULL)
		return;
	if (c->in_len > 0) {
		http__conn_input_owned(c, 0);
	} else {
		http__conn_update_timeout(c);
		after_input(c);
	}
}

/* ---- output -------------------------------------------------------------- */

static void out_link(http_conn *c, http_out *o)
{
	o->next = NULL;
	if (c->out_tail != NULL)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
}

static void out_free(http_out *o)
{
	base_chunk_unref(o->chunk);
	free(o);
}

/* Drops the first n written bytes. */
static void out_consume(http_conn *c, size_t n)
{
	c->out_bytes -= n;
	c->srv->stats.bytes_out += n;
	if (c->mode == HTTP_MODE_WS && c->u.ws != NULL)
		c->u.ws->bytes_out += n;
	while (n > 0 && c->out_head != NULL) {
		http_out *o = c->out_head;

		if (n < o->len) {
			o->pos += n;
			o->len -= n;
			break;
		}
		n -= o->len;
		c->out_head = o->next;
		out_free(o);
	}
	if (c->out_head == NULL)
		c->out_tail = NULL;
}

static int out_full(const http_conn *c, size_t n)
{
	return n > c->srv->lim.max_output_bytes || c->out_bytes > c->srv->lim.max_output_bytes - n;
}

/* Room for n more bytes at the end of the queue, or NULL when out of memory. */
static char *out_reserve(http_conn *c, size_t n)
{
	http_out *t = c->out_tail;
	char *p;

	/* A node being written may still grow: only its written prefix is in flight. */
	if (t != NULL && t->chunk == NULL && t->room >= n) {
		p = t->pos + t->len;
		t->len += n;
		t->room -= n;
	} else {
		size_t cap = n < HTTP_OUT_MIN ? HTTP_OUT_MIN : n;
		http_out *o = malloc(sizeof(*o) + cap);

		if (o == NULL)
			return NULL;
		o->chunk = NULL;
		o->pos = o->data;
		o->len = n;
		o->room = cap - n;
		out_link(c, o);
		p = o->data;
	}
	c->out_bytes += n;
	return p;
}

/* Copies src[0, n) minus the first *skip bytes to *dst. */
static void copy_skip(char **dst, const char *src, size_t n, size_t *skip)
{
	if (*skip >= n) {
		*skip -= n;
		return;
	}
	memcpy(*dst, src + *skip, n - *skip);
	*dst += n - *skip;
	*skip = 0;
}

static size_t out_gather(const http_conn *c, uv_buf_t *bufs, unsigned *nb);

int http__out_write(http_conn *c, const char *head, size_t hlen, const base_slice *parts,
                    size_t n_parts)
{
	size_t total = hlen, done = 0;
	char *p;

	if (c->flags & HTTP_F_CLOSED)
		return BASE_ECLOSED;
	for (size_t i = 0; i < n_parts; i++)
		total += parts[i].len;
	if (total == 0)
		return 0;
	if (out_full(c, total)) {
		http__conn_close(c);
		return HTTP_EQUEUE_FULL;
	}
	/*
	 * A big write goes out from the caller's memory, together with whatever
	 * small output is queued before it (a Socket.IO header before its binary
	 * attachment), in one writev: only what the socket does not take is
	 * copied.
	 */
	if (total >= HTTP_DIRECT_MIN && c->wreq == NULL && n_parts < HTTP_IOV_MAX) {
		uv_buf_t bufs[HTTP_IOV_MAX];
		unsigned nb = 0;
		size_t queued = 0;
		int r;

		if (c->out_head != NULL)
			queued = out_gather(c, bufs, &nb);
		if (queued != c->out_bytes || nb + 1 + n_parts > HTTP_IOV_MAX)
			goto copy; /* more queued than one writev takes: keep the order simple */
		if (hlen > 0)
			bufs[nb++] = uv_buf_init((char *)head, (unsigned)hlen);
		for (size_t i = 0; i < n_parts; i++) {
			if (parts[i].len > 0) {
				bufs[nb].base = (char *)parts[i].base;
				bufs[nb++].len = parts[i].len;
			}
		}
		r = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
		if (r > 0) {
			size_t w = (size_t)r;

			c->flags |= HTTP_F_PROGRESS;
			out_consume(c, w < queued ? w : queued);
			done = w > queued ? w - queued : 0;
		} else if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS) {
			http__conn_close(c);
			return r;
		}
		if (done == total)
			return 0;
	}
copy:
	p = out_reserve(c, total - done);
	if (p == NULL) {
		http__conn_close(c);
		return BASE_ENOMEM;
	}
	copy_skip(&p, head, hlen, &done);
	for (size_t i = 0; i < n_parts; i++)
		copy_skip(&p, parts[i].base, parts[i].len, &done);
	http__schedule(c, 0);
	return 0;
}

int http__out_chunk(http_conn *c, base_chunk *chunk, size_t offset, size_t len)
{
	http_out *o;

	if (c->flags & HTTP_F_CLOSED)
		return BASE_ECLOSED;
	if (offset > chunk->len || len > chunk->len - offset)
		return BASE_EINVAL;
	if (len == 0)
		return 0;
	/* A file's pieces are bounded by its window, not by max_output_bytes. */
	if (out_full(c, len) && !http__fstream_active(c)) {
		http__conn_close(c);
		return HTTP_EQUEUE_FULL;
	}
	o = malloc(sizeof(*o));
	if (o == NULL) {
		http__conn_close(c);
		return BASE_ENOMEM;
	}
	o->chunk = base_chunk_ref(chunk);
	o->pos = chunk->data + offset;
	o->len = len;
	o->room = 0;
	out_link(c, o);
	c->out_bytes += len;
	http__schedule(c, 0);
	return 0;
}

static size_t out_gather(const http_conn *c, uv_buf_t *bufs, unsigned *nb)
{
	size_t total = 0;
	unsigned n = 0;

	for (const http_out *o = c->out_head; o != NULL && n < HTTP_IOV_MAX; o = o->next) {
		bufs[n].base = o->pos;
		bufs[n].len = o->len;
		total += o->len;
		n++;
	}
	*nb = n;
	return total;
}

static void start_write(http_conn *c)
{
	uv_buf_t bufs[HTTP_IOV_MAX];
	unsigned nb;
	http_wreq *w = malloc(sizeof(*w));

	if (w == NULL) {
		http__conn_close(c);
		return;
	}
	w->conn = c;
	w->nbytes = out_gather(c, bufs, &nb);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nb, write_cb) != 0) {
		free(w);
		http__conn_close(c);
		return;
	}
	c->wreq = w;
}

void http__conn_flush(http_conn *c)
{
	if (!(c->flags & HTTP_F_RESUME))
		base_list_remove(&c->plink);
	if ((c->flags & HTTP_F_CLOSED) || c->wreq != NULL)
		return;
	while (c->out_head != NULL) {
		uv_buf_t bufs[HTTP_IOV_MAX];
		unsigned nb;
		size_t total = out_gather(c, bufs, &nb);
		int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);

		if (r == UV_EAGAIN || r == UV_ENOSYS)
			r = 0;
		if (r < 0) {
			http__conn_close(c);
			return;
		}
		if (r > 0) {
			out_consume(c, (size_t)r);
			c->flags |= HTTP_F_PROGRESS;
		}
		if ((size_t)r < total) {
			/* The socket is full: libuv writes the rest when it drains. */
			start_write(c);
			break;
		}
	}
	if (c->flags & HTTP_F_CLOSED)
		return;
	if (http__fstream_active(c))
		http__fstream_writable(c);
	else if ((c->flags & HTTP_F_DRAINING) && c->out_head == NULL && c->wreq == NULL)
		drain_done(c);
}

static void write_cb(uv_write_t *req, int status)
{
	http_wreq *w = BASE_CONTAINER_OF(req, http_wreq, req);
	http_conn *c = w->conn;
	size_t n = w->nbytes;

	free(w);
	c->wreq = NULL;
	if (status < 0) {
		http__conn_close(c);
		return;
	}
	out_consume(c, n);
	c->flags |= HTTP_F_PROGRESS;
	http__conn_flush(c);
}

/* ---- closing ------------------------------------------------------------- */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	http_conn *c = BASE_CONTAINER_OF(req->handle, http_conn, tcp);

	free(req);
	if (status < 0)
		http__conn_close(c);
}

/* Output is out: close now, or half-close and give the peer a moment to close its side. */
static void drain_done(http_conn *c)
{
	uv_shutdown_t *req;

	if (!(c->flags & HTTP_F_LINGER)) {
		http__conn_close(c);
		return;
	}
	if (c->flags & HTTP_F_SHUT)
		return;
	c->flags |= HTTP_F_SHUT;
	/*
	 * Closing with the peer's bytes unread would reset the connection and
	 * could destroy our last answer in flight; a FIN first, then reading
	 * (and dropping) until the peer closes or the grace period ends.
	 */
	req = malloc(sizeof(*req));
	if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) != 0) {
		free(req);
		http__conn_close(c);
		return;
	}
	http__tq_rearm(c);
}

void http__conn_drain(http_conn *c, int linger)
{
	if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))
		return;
	c->flags |= HTTP_F_DRAINING;
	if (linger)
		c->flags |= HTTP_F_LINGER;
	free(c->in);
	c->in = NULL;
	c->in_len = 0;
	c->in_cap = 0;
	if (c->mode == HTTP_MODE_HTTP && c->u.rx != NULL && !c->u.rx->dispatched) {
		http__rx_free(c->srv, c->u.rx);
		c->u.rx = NULL;
	}
	http__tq_set(c, HTTP_T_NONE);
	http__tq_set(c, HTTP_T_LINGER);
	if (c->out_head == NULL && c->wreq == NULL)
		drain_done(c);
	else
		http__schedule(c, 0);
}

void http__conn_eof(http_conn *c, ssize_t err)
{
	if (c->flags & HTTP_F_CLOSED)
		return;
	/*
	 * A client may half-close right after its last request: its answers are
	 * still written. A kept request is aborted: nobody waits for it.
	 */
	/* So is a file being sent: it goes on, then the connection closes. */
	if (err == UV_EOF && !(c->flags & HTTP_F_SHUT) && http__fstream_active(c)) {
		http__fstream_peer_done(c);
		return;
	}
	if (err == UV_EOF && !(c->flags & HTTP_F_SHUT) && c->mode == HTTP_MODE_HTTP &&
	    !kept_request(c) && (c->out_head != NULL || c->wreq != NULL)) {
		c->flags &= (uint16_t)~HTTP_F_LINGER;
		http__conn_drain(c, 0);
		return;
	}
	http__conn_close(c);
}

void http__conn_close(http_conn *c)
{
	if (c->flags & HTTP_F_CLOSED)
		return;
	c->flags |= HTTP_F_CLOSED;
	http__tq_set(c, HTTP_T_NONE);
	base_list_remove(&c->plink);
	uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_closed(uv_handle_t *h)
{
	http_conn *c = BASE_CONTAINER_OF(h, http_conn, tcp);
	http_server *s = c->srv;

	if (c->mode == HTTP_MODE_HTTP && c->u.rx != NULL) {
		http_rx *rx = c->u.rx;

		/* Unlinked first: an answer from inside on_abort finds no connection. */
		c->u.rx = NULL;
		if (rx->dispatched && rx->req.on_abort != NULL)
			rx->req.on_abort(&rx->req, rx->req.abort_ud);
		http__rx_free(s, rx);
	} else if (c->mode == HTTP_MODE_WS && c->u.ws != NULL) {
		http_ws *ws = c->u.ws;

		c->u.ws = NULL;
		http__ws_closed(ws);
	}
	while (c->out_head != NULL) {
		http_out *o = c->out_head;

		c->out_head = o->next;
		out_free(o);
	}
	free(c->in);
	s->held -= c->held;
	base_list_remove(&c->link);
	base_timeq_disarm(&c->tentry);
	base_list_remove(&c->plink);
	s->n_conns--;
	free(c);
	http__server_conn_gone(s);
}
