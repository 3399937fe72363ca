/*
 * loadgen_raw.c: --client raw, bench-loadgen's own minimal WebSocket client.
 *
 * The libwebsockets client collects every payload one byte at a time through
 * its parser state machine, and each delivery goes through its per-connection
 * service: against the bare limit server that caps a 64 KiB echo at about
 * 2k/s and a broadcast to 1,000 sockets at tens of milliseconds, below what
 * the targets ask the generator to show. The raw client keeps everything
 * else (the Engine.IO and Socket.IO code, the counting) and replaces only the
 * transport: a nonblocking socket on a uv_poll_t, a fixed upgrade request,
 * server frames parsed here in place, and reads by recvmsg() with
 * SO_TIMESTAMPNS, so a reply is timed when the kernel received it rather
 * than when this single thread got round to reading it. The lws client
 * (the default) stays the independent check of the servers' framing.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

#define RAW_READ 65536

/* RFC 6455's sample key and its accept value: no SHA-1 needed here. */
#define RAW_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RAW_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

struct lg_raw {
	uv_poll_t poll;
	int fd;
	int connected;
	int upgraded;
	int events; /* what the poll handle watches */
	char *rb;   /* the start of an incomplete frame, kept between reads */
	size_t rb_len, rb_cap;
	size_t need; /* the whole of that frame, once its header has arrived */
	char *wq;    /* bytes not yet written */
	size_t wq_len, wq_cap;
};

static int grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	char *p = realloc(*buf, n);
	if (!p)
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

/* CLOCK_REALTIME (kernel timestamps) minus uv_hrtime's CLOCK_MONOTONIC. */
static int64_t real_minus_mono(void)
{
	static int64_t off;
	static int done;
	if (!done) {
		struct timespec r;
		clock_gettime(CLOCK_REALTIME, &r);
		uint64_t m = uv_hrtime();
		off = (int64_t)r.tv_sec * 1000000000 + r.tv_nsec - (int64_t)m;
		done = 1;
	}
	return off;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void set_events(lg_conn *c, int events)
{
	struct lg_raw *r = c->raw;
	if (r->events != events) {
		r->events = events;
		uv_poll_start(&r->poll, events, on_poll);
	}
}

static void on_closed(uv_handle_t *h)
{
	struct lg_raw *r = h->data;
	close(r->fd);
	free(r->rb);
	free(r->wq);
	free(r);
}

void lg_raw_fail(lg_conn *c, const char *why)
{
	struct lg_raw *r = c->raw;
	if (!r)
		return;
	c->raw = NULL;
	r->poll.data = r;
	uv_close((uv_handle_t *)&r->poll, on_closed);
	lg_on_gone(c->lg, c, why);
}

/* Writes what is queued; returns -1 when the connection failed. */
static int drain(lg_conn *c)
{
	struct lg_raw *r = c->raw;
	while (r->wq_len) {
		ssize_t n = send(r->fd, r->wq, r->wq_len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return -1;
		memmove(r->wq, r->wq + n, r->wq_len - (size_t)n);
		r->wq_len -= (size_t)n;
	}
	set_events(c, UV_READABLE | (r->wq_len ? UV_WRITABLE : 0));
	return 0;
}

int lg_raw_send(lg_conn *c, const void *p, size_t len)
{
	struct lg_raw *r = c->raw;
	if (!r)
		return -1;
	if (r->wq_len == 0) {
		ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -1;
		if (n < 0)
			n = 0;
		p = (const char *)p + n;
		len -= (size_t)n;
		if (len == 0)
			return 0;
	}
	if (grow(&r->wq, &r->wq_cap, r->wq_len + len))
		return -1;
	memcpy(r->wq + r->wq_len, p, len);
	r->wq_len += len;
	set_events(c, UV_READABLE | UV_WRITABLE);
	return 0;
}

int lg_raw_busy(const lg_conn *c)
{
	return c->raw && c->raw->wq_len > 0;
}

void lg_raw_want_write(lg_conn *c)
{
	if (c->raw)
		set_events(c, UV_READABLE | UV_WRITABLE);
}

/* A masked client control frame (pong or close), queued. */
static int control(lg_conn *c, unsigned opcode, const char *p, size_t n)
{
	unsigned char f[2 + 4 + 125];
	if (n > 125)
		n = 125;
	f[0] = (unsigned char)(0x80 | opcode);
	f[1] = (unsigned char)(0x80 | n);
	memset(f + 2, 0, 4); /* an all-zero mask leaves the payload as it is */
	memcpy(f + 6, p, n);
	return lg_raw_send(c, f, 6 + n);
}

/*
 * Parses whole server frames from b[0..len). Returns bytes consumed, or -1 to
 * drop the connection (with *why set). *need is the size of an incomplete
 * frame at the end, so the next read can make room for all of it.
 */
static ssize_t frames(lg_conn *c, const unsigned char *b, size_t len_all, size_t *need,
                      const char **why)
{
	size_t off = 0;
	*need = 0;
	while (c->raw && len_all - off >= 2) {
		const unsigned char *h = b + off;
		size_t avail = len_all - off, hl = 2;
		uint64_t len = h[1] & 0x7f;
		unsigned fin = h[0] >> 7, op = h[0] & 0x0f;
		if ((h[0] & 0x70) || (h[1] & 0x80)) {
			*why = "server frame with reserved bits or a mask";
			return -1;
		}
		if (len == 126) {
			if (avail < 4)
				break;
			len = (uint64_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int i = 2; i < 10; i++)
				len = len << 8 | h[i];
			hl = 10;
		}
		if (len > (64u << 20)) {
			*why = "server frame over 64 MiB";
			return -1;
		}
		if (avail - hl < len) {
			*need = hl + (size_t)len;
			break;
		}
		const char *pl = (const char *)h + hl;
		off += hl + (size_t)len;
		int rc = 0;
		switch (op) {
		case 0x1:
		case 0x2:
			if (fin && c->rx_len == 0) {
				rc = lg_conn_on_message(c, op == 0x2, pl, (size_t)len);
				break;
			}
			c->rx_bin = op == 0x2;
			__attribute__((fallthrough)); /* the first fragment of a message */
		case 0x0:
			if (lg_conn_rx_append(c, pl, (size_t)len))
				rc = -1;
			else if (fin) {
				rc = lg_conn_on_message(c, c->rx_bin, c->rx, c->rx_len);
				c->rx_len = 0;
			}
			break;
		case 0x8:
			*why = "WebSocket close from the server";
			control(c, 0x8, pl, len < 2 ? (size_t)len : 2);
			return -1;
		case 0x9:
			rc = control(c, 0xA, pl, (size_t)len);
			break;
		case 0xA:
			break;
		default:
			*why = "unknown opcode from the server";
			return -1;
		}
		if (rc < 0) {
			*why = "Engine.IO close or a failed write";
			return -1;
		}
	}
	return (ssize_t)off;
}

/* The 101 response: checked, then consumed. Returns bytes used, 0, or -1. */
static ssize_t handshake(lg_conn *c, const char *p, size_t len)
{
	const char *end = memmem(p, len, "\r\n\r\n", 4);
	if (!end)
		return len > 16384 ? -1 : 0;
	size_t n = (size_t)(end + 4 - p);
	if (len < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0 ||
	    !memmem(p, n, RAW_ACCEPT, sizeof(RAW_ACCEPT) - 1))
		return -1;
	c->raw->upgraded = 1;
	c->state = LG_CS_WS;
	return (ssize_t)n;
}

/* The kernel's receive time of what recvmsg just read, on uv_hrtime's clock. */
static uint64_t rx_time(struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;
			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			int64_t t =
			    (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - real_minus_mono();
			return t > 0 ? (uint64_t)t : 0;
		}
	}
	return 0;
}

/*
 * Reads go to one shared buffer; only the tail of an incomplete frame is
 * kept per connection (so 10,000 idle receivers hold no read buffers).
 */
static void on_readable(lg_conn *c)
{
	static char shared[RAW_READ];
	lg *g = c->lg;
	struct lg_raw *r = c->raw;
	const char *why = "connection closed by the server";
	/* A few reads per turn, so one busy connection does not starve others. */
	for (int round = 0; round < 4 && c->raw; round++) {
		int own = r->rb_len > 0;
		char *dst = shared;
		size_t room = sizeof(shared);
		if (own) {
			size_t want = r->rb_len + RAW_READ;
			if (r->need > want)
				want = r->need;
			if (grow(&r->rb, &r->rb_cap, want)) {
				why = "out of memory";
				goto gone;
			}
			dst = r->rb + r->rb_len;
			room = r->rb_cap - r->rb_len;
		}
		char cbuf[CMSG_SPACE(sizeof(struct timespec))];
		struct iovec iov = {dst, room};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = cbuf,
		                    .msg_controllen = sizeof(cbuf)};
		ssize_t n = recvmsg(r->fd, &mh, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0)
			why = "read error";
		if (n <= 0)
			goto gone;
		const char *data = own ? r->rb : shared;
		size_t len = own ? r->rb_len + (size_t)n : (size_t)n;
		size_t off = 0, need = 0;
		g->rx_now = rx_time(&mh);
		if (!r->upgraded) {
			ssize_t k = handshake(c, data, len);
			if (k < 0) {
				why = "WebSocket handshake refused";
				goto gone;
			}
			off = (size_t)k;
		}
		if (r->upgraded) {
			ssize_t k =
			    frames(c, (const unsigned char *)data + off, len - off, &need, &why);
			if (k < 0)
				goto gone;
			off += (size_t)k;
		}
		g->rx_now = 0;
		if (!c->raw)
			return; /* dropped while handling a message */
		size_t rest = len - off;
		r->need = need;
		if (rest == 0) {
			free(r->rb);
			r->rb = NULL;
			r->rb_len = r->rb_cap = 0;
		} else if (!own) {
			if (grow(&r->rb, &r->rb_cap, rest > need ? rest : need)) {
				why = "out of memory";
				goto gone;
			}
			memcpy(r->rb, data + off, rest);
			r->rb_len = rest;
		} else {
			memmove(r->rb, r->rb + off, rest);
			r->rb_len = rest;
		}
		if ((size_t)n < room)
			return; /* the socket is empty */
	}
	return;
gone:
	g->rx_now = 0;
	lg_raw_fail(c, why);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	lg_conn *c = h->data;
	struct lg_raw *r = c->raw;
	if (status < 0) {
		lg_raw_fail(c, uv_strerror(status));
		return;
	}
	if (!r->connected) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			lg_raw_fail(c, strerror(err));
			return;
		}
		r->connected = 1;
		char req[256];
		int n =
		    snprintf(req, sizeof(req),
		             "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
		             "Host: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		             "Sec-WebSocket-Key: " RAW_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
		             c->lg->cfg.host, lg_conn_port(c->lg, c));
		if (lg_raw_send(c, req, (size_t)n) || drain(c))
			lg_raw_fail(c, "cannot send the upgrade request");
		return;
	}
	if (events & UV_WRITABLE) {
		if (drain(c)) {
			lg_raw_fail(c, "write error");
			return;
		}
		if (r->wq_len == 0 && lg_conn_write(c)) {
			lg_raw_fail(c, "write error");
			return;
		}
	}
	if ((events & UV_READABLE) && c->raw)
		on_readable(c);
}

int lg_raw_start(lg *g, lg_conn *c)
{
	struct lg_raw *r = calloc(1, sizeof(*r));
	if (!r) {
		lg_on_gone(g, c, "out of memory");
		return -1;
	}
	r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		free(r);
		lg_on_gone(g, c, strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(r->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	const char *why = NULL;
	if (g->cfg.nsrc) {
		/* The port is chosen at connect(), per destination: more of them. */
		setsockopt(r->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		struct sockaddr_in src = {.sin_family = AF_INET};
		inet_pton(AF_INET, g->cfg.src[c->id % (uint32_t)g->cfg.nsrc], &src.sin_addr);
		if (bind(r->fd, (struct sockaddr *)&src, sizeof(src)) != 0)
			why = "bind to the source address failed";
	}
	struct sockaddr_in dst = {.sin_family = AF_INET,
	                          .sin_port = htons((uint16_t)lg_conn_port(g, c))};
	if (!why && inet_pton(AF_INET, g->cfg.host, &dst.sin_addr) != 1)
		why = "--host is not an IPv4 address";
	if (!why && connect(r->fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 &&
	    errno != EINPROGRESS)
		why = strerror(errno);
	if (!why && uv_poll_init_socket(g->loop, &r->poll, r->fd) != 0)
		why = "uv_poll_init_socket failed";
	if (why) {
		close(r->fd);
		free(r);
		lg_on_gone(g, c, why);
		return -1;
	}
	r->poll.data = c;
	c->raw = r;
	c->state = LG_CS_CONNECTING;
	set_events(c, UV_WRITABLE);
	return 0;
}

void lg_raw_close(lg_conn *c)
{
	struct lg_raw *r = c->raw;
	if (!r)
		return;
	c->raw = NULL;
	r->poll.data = r;
	uv_close((uv_handle_t *)&r->poll, on_closed);
}
