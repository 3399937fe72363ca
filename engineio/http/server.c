/*
 * server.c: the listener, accepting connections, the shared read buffer,
 * timeouts and the end-of-turn flush.
 *
 * Timeouts: each kind has one fixed duration, so each is a base_timeq (a
 * list kept in deadline order by appending, and one uv_timer for its
 * head), the same queue Engine.IO's heartbeats use.
 */
#define _GNU_SOURCE /* accept4 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HTTP_BACKLOG 1024

void http_limits_default(http_limits *l)
{
	l->max_header_bytes = 16 * 1024;
	l->max_body_bytes = 1024 * 1024;
	l->header_timeout_ms = 10 * 1000;
	l->body_timeout_ms = 30 * 1000;
	l->idle_timeout_ms = 60 * 1000;
	l->max_connections = 100000;
	l->ws_max_message = 1024 * 1024;
	l->ws_deflate = 0;
	l->ws_deflate_threshold = 1024;
	l->max_output_bytes = 16 * 1024 * 1024;
	l->max_input_bytes = 256 * 1024 * 1024;
}

/* ---- timeouts ------------------------------------------------------------ */

void http__tq_set(http_conn *c, unsigned kind)
{
	http_server *s = c->srv;

	if (c->tkind == kind)
		return;
	base_timeq_disarm(&c->tentry);
	c->tkind = (uint8_t)kind;
	/* A duration of 0 turns that timeout off. */
	if (kind == HTTP_T_NONE || s->tq[kind].duration_ms == 0 || (c->flags & HTTP_F_CLOSED)) {
		c->tkind = HTTP_T_NONE;
		return;
	}
	c->flags &= (uint16_t)~HTTP_F_PROGRESS;
	base_timeq_arm(&s->tq[kind], &c->tentry);
}

/* Restarts the current timeout from now. */
void http__tq_rearm(http_conn *c)
{
	unsigned kind = c->tkind;

	http__tq_set(c, HTTP_T_NONE);
	http__tq_set(c, kind);
}

static void expire(http_conn *c, unsigned kind)
{
	switch (kind) {
	case HTTP_T_HEADER:
		/* A request begun and not finished gets an answer; a silent connection does not. */
		if (c->mode == HTTP_MODE_HTTP && c->u.rx != NULL)
			http__send_error(c, 408);
		else
			http__conn_close(c);
		break;
	case HTTP_T_BODY:
		http__send_error(c, 408);
		break;
	default:
		/* A slow reader that still makes progress keeps its connection. */
		if ((c->out_bytes > 0 || http__fstream_active(c)) && (c->flags & HTTP_F_PROGRESS))
			http__tq_set(c, kind);
		else
			http__conn_close(c);
		break;
	}
}

static void timeq_expired(base_timeq *q, base_timeq_entry *e)
{
	http_server *s = q->data;
	http_conn *c = BASE_CONTAINER_OF(e, http_conn, tentry);
	unsigned kind = (unsigned)(q - s->tq);

	/* The entry is disarmed already: c is in no list unless expire re-arms it. */
	c->tkind = HTTP_T_NONE;
	expire(c, kind);
}

/* ---- end-of-turn work ---------------------------------------------------- */

void http__schedule(http_conn *c, unsigned flag)
{
	c->flags |= (uint16_t)flag;
	if (base_list_empty(&c->plink))
		base_list_insert_tail(&c->srv->pending, &c->plink);
}

/*
 * Runs just before the loop polls: writes everything queued during this
 * turn (one gathered write per connection) and resumes connections whose
 * kept request was answered with more input waiting.
 */
static void prepare_cb(uv_prepare_t *p)
{
	http_server *s = BASE_CONTAINER_OF(p, http_server, prepare);

	while (!base_list_empty(&s->pending)) {
		http_conn *c = BASE_CONTAINER_OF(s->pending.next, http_conn, plink);

		base_list_remove(&c->plink);
		if (c->flags & HTTP_F_RESUME) {
			c->flags &= (uint16_t)~HTTP_F_RESUME;
			http__conn_resume(c);
		}
		if (!(c->flags & HTTP_F_RESUME))
			http__conn_flush(c);
	}
}

/* ---- server life --------------------------------------------------------- */

/*
 * libuv writes with writev, which raises SIGPIPE on a connection the peer
 * has reset; the default action would end the process because of what a
 * peer did. Ignored here unless the program has chosen a handler itself.
 */
static void ignore_sigpipe(void)
{
	struct sigaction sa;

	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = 0;
		sigaction(SIGPIPE, &sa, NULL);
	}
}

http_server *http_server_new(uv_loop_t *loop, const http_limits *lim)
{
	http_server *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	ignore_sigpipe();
	s->rbuf = malloc(HTTP_RBUF_SIZE);
	if (s->rbuf == NULL) {
		free(s->rbuf);
		free(s);
		return NULL;
	}
	s->loop = loop;
	if (lim != NULL)
		s->lim = *lim;
	else
		http_limits_default(&s->lim);
	/* Header positions and partial frames are kept with 32-bit sizes. */
	if (s->lim.max_header_bytes > (1u << 30))
		s->lim.max_header_bytes = 1u << 30;
	if (s->lim.ws_max_message > (1u << 30))
		s->lim.ws_max_message = 1u << 30;
	if (s->lim.max_header_bytes < 64)
		s->lim.max_header_bytes = 64;
	s->listen_fd = -1;
	s->reserve_fd = -1;
	base_random_id(s->id_prefix, 6);
	uv_prepare_init(loop, &s->prepare);
	uv_prepare_start(&s->prepare, prepare_cb);
	{
		const uint64_t dur[HTTP_T_COUNT] = {
		    [HTTP_T_HEADER] = s->lim.header_timeout_ms,
		    [HTTP_T_BODY] = s->lim.body_timeout_ms,
		    [HTTP_T_IDLE] = s->lim.idle_timeout_ms,
		    [HTTP_T_LINGER] = HTTP_LINGER_MS,
		};

		for (unsigned k = 1; k < HTTP_T_COUNT; k++) {
			base_timeq_init(loop, &s->tq[k], dur[k], timeq_expired);
			s->tq[k].data = s;
			/* Timers do not keep the loop alive: connections and the listener do. */
			uv_unref((uv_handle_t *)&s->tq[k].timer);
		}
	}
	uv_unref((uv_handle_t *)&s->prepare);
	s->aux_open = HTTP_T_COUNT; /* the prepare handle and HTTP_T_COUNT - 1 timers */
	base_list_init(&s->conns);
	base_list_init(&s->pending);
	return s;
}

uv_loop_t *http_server_loop(const http_server *s)
{
	return s->loop;
}

int http_server_port(const http_server *s)
{
	return s->port;
}

unsigned http_server_connections(const http_server *s)
{
	return s->n_conns;
}

static void conn_new(http_server *s, int fd);

/* How often a run of accept errors is logged. */
#define HTTP_ACCEPT_LOG_MS 10000
/* Connections accepted per loop turn, so that a flood of them cannot starve the rest. */
#define HTTP_ACCEPT_BATCH 256
/* With no descriptor in reserve, accepting pauses this long rather than spin. */
#define HTTP_ACCEPT_PAUSE_MS 100

static void accept_cb(uv_poll_t *p, int status, int events);

/* Logged once per HTTP_ACCEPT_LOG_MS, with the number of errors since the last line. */
static void accept_error(http_server *s, int err, unsigned dropped)
{
	uint64_t now = uv_now(s->loop);

	s->accept_errs++;
	s->accept_dropped += dropped;
	if (s->accept_err_logged != 0 && now - s->accept_err_logged < HTTP_ACCEPT_LOG_MS)
		return;
	BASE_LOGW("http",
	          "accept: %s (%u time%s since the last report, %u connection%s closed "
	          "unserved; %u open)",
	          uv_strerror(err), s->accept_errs, s->accept_errs == 1 ? "" : "s",
	          s->accept_dropped, s->accept_dropped == 1 ? "" : "s", s->n_conns);
	s->accept_errs = 0;
	s->accept_dropped = 0;
	s->accept_err_logged = now ? now : 1;
}

static void reserve_open(http_server *s)
{
	if (s->reserve_fd < 0)
		s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_resume(uv_timer_t *t)
{
	http_server *s = t->data;

	uv_close((uv_handle_t *)t, (uv_close_cb)free);
	s->accept_paused = 0;
	if (!s->closing && s->listener_open)
		uv_poll_start(&s->listener, UV_READABLE, accept_cb);
}

/*
 * Out of file descriptors (EMFILE, ENFILE): the waiting connections cannot
 * be accepted, and left in the backlog they would wake the loop again at
 * once, forever. The descriptor kept in reserve is given up for a moment
 * to take them off the backlog and close them (their clients see the
 * connection closed rather than hanging), then taken back. With no reserve
 * (something else took it), accepting pauses briefly instead.
 */
static void out_of_descriptors(http_server *s, int err)
{
	unsigned dropped = 0;
	uv_timer_t *t;

	if (s->reserve_fd >= 0) {
		close(s->reserve_fd);
		s->reserve_fd = -1;
		for (;;) {
			int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

			if (fd < 0) {
				if (errno == EINTR || errno == ECONNABORTED)
					continue;
				break;
			}
			close(fd);
			dropped++;
		}
		reserve_open(s);
	}
	accept_error(s, err, dropped);
	if (s->reserve_fd >= 0 || s->accept_paused)
		return;
	t = malloc(sizeof(*t));
	if (t == NULL || uv_timer_init(s->loop, t) != 0) {
		free(t);
		return;
	}
	t->data = s;
	uv_unref((uv_handle_t *)t);
	uv_poll_stop(&s->listener);
	s->accept_paused = 1;
	uv_timer_start(t, accept_resume, HTTP_ACCEPT_PAUSE_MS, 0);
}

static void accept_cb(uv_poll_t *p, int status, int events)
{
	http_server *s = BASE_CONTAINER_OF(p, http_server, listener);

	(void)events;
	if (status < 0 || s->closing)
		return;
	for (unsigned n = 0; n < HTTP_ACCEPT_BATCH; n++) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			int e = errno;

			if (e == EINTR || e == ECONNABORTED || e == EPROTO)
				continue;
			if (e == EMFILE || e == ENFILE)
				out_of_descriptors(s, -e);
			else if (e != EAGAIN && e != EWOULDBLOCK)
				accept_error(s, -e, 0);
			return;
		}
		if (s->n_conns >= s->lim.max_connections) {
			/* Closed at once: cheaper than a 503. */
			close(fd);
			continue;
		}
		conn_new(s, fd);
	}
}

static void conn_new(http_server *s, int fd)
{
	http_conn *c = calloc(1, sizeof(*c));
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (c == NULL || uv_tcp_init(s->loop, &c->tcp) != 0) {
		free(c);
		close(fd);
		return;
	}
	c->srv = s;
	base_timeq_entry_init(&c->tentry);
	base_list_init(&c->plink);
	base_list_insert_tail(&s->conns, &c->link);
	s->n_conns++;
	s->stats.accepted++;
	if (uv_tcp_open(&c->tcp, fd) != 0) {
		close(fd);
		http__conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			c->peer_family = AF_INET;
			memcpy(c->peer, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		} else if (ss.ss_family == AF_INET6) {
			const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

			/* An IPv4 peer of a dual-stack listener is shown as IPv4. */
			if (IN6_IS_ADDR_V4MAPPED(a)) {
				c->peer_family = AF_INET;
				memcpy(c->peer, a->s6_addr + 12, 4);
			} else {
				c->peer_family = AF_INET6;
				memcpy(c->peer, a, 16);
			}
		}
	}
	if (http__conn_read_start(c) != 0) {
		http__conn_close(c);
		return;
	}
	/* The first request must come as promptly as its headers would. */
	http__tq_set(c, HTTP_T_HEADER);
}

/*
 * The listening socket is ours, watched with a uv_poll_t rather than
 * uv_listen: libuv's own accept loop handles EMFILE silently (and spins
 * when its reserve descriptor is gone), where we want to log it and pause.
 */
int http_server_listen(http_server *s, const char *host, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = -1, one = 1, rc;

	if (s->closing)
		return BASE_ECLOSED;
	if (s->listener_open)
		return BASE_EINVAL;
	if (strchr(host, ':') != NULL)
		rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
	else
		rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
	if (rc != 0)
		return rc;
	len = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* As libuv's uv_tcp_bind: an IPv6 listener takes IPv4 peers too. */
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){0}, sizeof(int)) != 0) {
		rc = -errno;
		goto fail;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (const struct sockaddr *)&ss, len) != 0 || listen(fd, HTTP_BACKLOG) != 0) {
		rc = -errno;
		goto fail;
	}
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
		rc = -errno;
		goto fail;
	}
	if (ss.ss_family == AF_INET6)
		s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	rc = uv_poll_init_socket(s->loop, &s->listener, fd);
	if (rc != 0)
		goto fail;
	s->listen_fd = fd;
	s->listener_open = 1;
	reserve_open(s);
	return uv_poll_start(&s->listener, UV_READABLE, accept_cb);
fail:
	close(fd);
	return rc;
}

/* ---- closing ------------------------------------------------------------- */

static void aux_closed(uv_handle_t *h)
{
	http_server *s = h->data;

	if (--s->aux_open == 0) {
		s->closed = 1;
		if (s->close_cb != NULL)
			s->close_cb(s->close_ud);
	}
}

/* Called whenever something closes: finishes the server once nothing is left. */
static void maybe_finish(http_server *s)
{
	if (!s->closing || s->listener_open || s->n_conns > 0 ||
	    uv_is_closing((uv_handle_t *)&s->prepare))
		return;
	for (unsigned k = 1; k < HTTP_T_COUNT; k++) {
		s->tq[k].timer.data = s;
		base_timeq_close(&s->tq[k], aux_closed);
	}
	s->prepare.data = s;
	uv_close((uv_handle_t *)&s->prepare, aux_closed);
}

void http__server_conn_gone(http_server *s)
{
	maybe_finish(s);
}

static void listener_closed(uv_handle_t *h)
{
	http_server *s = BASE_CONTAINER_OF(h, http_server, listener);

	close(s->listen_fd);
	s->listen_fd = -1;
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	s->reserve_fd = -1;
	s->listener_open = 0;
	maybe_finish(s);
}

void http_server_close(http_server *s, void (*cb)(void *ud), void *ud)
{
	base_list *pos, *tmp;

	if (s->closing)
		return;
	s->closing = 1;
	s->close_cb = cb;
	s->close_ud = ud;
	if (s->listener_open)
		uv_close((uv_handle_t *)&s->listener, listener_closed);
	base_list_foreach_safe(pos, tmp, &s->conns)
	{
		http_conn *c = BASE_CONTAINER_OF(pos, http_conn, link);

		if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING))
			continue;
		if (c->mode == HTTP_MODE_WS)
			http_ws_close(c->u.ws, HTTP_WS_CLOSE_GOING_AWAY, "server closing");
		else if (c->out_head != NULL && c->u.rx == NULL)
			http__conn_drain(c, 0); /* let the last response out */
		else
			http__conn_close(c); /* a kept request is aborted */
	}
	maybe_finish(s);
}

void http_server_free(http_server *s)
{
	if (s == NULL)
		return;
	/* The handles live inside s: it may only go once they are closed. */
	assert(s->closed);
	while (s->rx_free != NULL) {
		http_rx *rx = s->rx_free;

		s->rx_free = rx->next_free;
		free(rx);
	}
	for (size_t i = 0; i < s->n_routes; i++)
		free(s->routes[i].path);
	free(s->routes);
	for (size_t i = 0; i < s->n_limits; i++)
		free(s->limits[i].path);
	free(s->limits);
	free(s->rbuf);
	http_pmd_free(s->pmd);
	free(s);
}

void http_server_get_stats(const http_server *s, http_stats *st)
{
	*st = s->stats;
}

void http_server_each_route(const http_server *s,
                            void (*fn)(const char *path, int prefix, const uint64_t by_class[6],
                                       void *ud),
                            void *ud)
{
	for (size_t i = 0; i < s->n_routes; i++)
		fn(s->routes[i].path, s->routes[i].prefix, s->routes[i].by_class, ud);
}

const char *http_server_id_prefix(const http_server *s)
{
	return s->id_prefix;
}

void http_server_observe(http_server *s, const http_observer *o)
{
	if (o != NULL)
		s->obs = *o;
	else
		memset(&s->obs, 0, sizeof(s->obs));
}
