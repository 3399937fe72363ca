/*
 * socket.c: one Engine.IO session, whatever its transport: packets in,
 * messages out, heartbeat, close, and the socket's lifetime.
 *
 * Lifetime: the layer above sees on_close exactly once; the struct itself
 * lives on while an HTTP request or a WebSocket still points at it, and is
 * freed by the last of them (eio__socket_maybe_free), never from inside a
 * user callback.
 */
#include <stdlib.h>

#include "engineio_internal.h"
#include "http/ws_frame.h"

static const char *const close_reasons[] = {
#define EIO_CR_STR(name, str) str,
    EIO_CLOSE_REASON_MAP(EIO_CR_STR)
#undef EIO_CR_STR
};

const char *eio_close_reason_str(eio_close_reason r)
{
	if ((size_t)r < BASE_ARRAY_SIZE(close_reasons))
		return close_reasons[r];
	return "unknown";
}

/* ---- lifetime ---------------------------------------------------------- */

static void socket_free(eio_socket *s)
{
	base_timeq_disarm(&s->hb);
	base_timeq_disarm(&s->up);
	base_buf_free(&s->out);
	free(s);
}

void eio__socket_maybe_free(eio_socket *s)
{
	if (s->state == EIO_S_CLOSED && !s->poll_req && !s->ws && !s->probe && !s->in_callback &&
	    !s->close_pending)
		socket_free(s);
}

/* ---- closes finished at the end of the loop turn ------------------------- */

static void pending_unlink(eio_socket *s)
{
	if (!s->close_pending)
		return;
	s->close_pending = 0;
	base_list_remove(&s->close_link);
}

void eio__close_pending(eio_server *srv)
{
	/* on_close may flag more sockets: they are closed in this same pass. */
	while (!base_list_empty(&srv->pending_close)) {
		eio_socket *s = BASE_CONTAINER_OF(srv->pending_close.next, eio_socket, close_link);
		pending_unlink(s);
		eio__socket_on_close(s, s->pending_reason);
		eio__socket_maybe_free(s);
	}
	uv_check_stop(&srv->close_check);
	uv_idle_stop(&srv->close_idle);
}

static void on_close_check(uv_check_t *h)
{
	eio__close_pending(h->data);
}

static void on_close_idle(uv_idle_t *h)
{
	(void)h; /* only there so that the loop does not block before the check */
}

void eio__socket_close_soon(eio_socket *s, eio_close_reason reason)
{
	eio_server *srv = s->srv;
	if (s->state != EIO_S_OPEN || s->close_pending)
		return;
	s->close_pending = 1;
	s->pending_reason = reason;
	if (base_list_empty(&srv->pending_close)) {
		uv_check_start(&srv->close_check, on_close_check);
		uv_idle_start(&srv->close_idle, on_close_idle);
	}
	base_list_insert_tail(&srv->pending_close, &s->close_link);
}

/* Forgets the sid: later requests for it get "Session ID unknown". */
static void socket_finalize(eio_socket *s)
{
	if (s->state == EIO_S_CLOSED)
		return;
	s->state = EIO_S_CLOSED;
	base_timeq_disarm(&s->hb);
	base_timeq_disarm(&s->up);
	eio__unlink(s->srv, s);
	if (s->ws) {
		http_ws_close(s->ws, HTTP_WS_CLOSE_NORMAL, "");
	}
	if (s->probe) {
		http_ws_close(s->probe, HTTP_WS_CLOSE_NORMAL, "");
	}
}

void eio__socket_destroy(eio_socket *s)
{
	pending_unlink(s);
	socket_finalize(s);
	if (s->poll_req) {
		http_request *req = s->poll_req;
		s->poll_req = NULL;
		req->on_abort = NULL;
		http_respond_and_close(req, 503, "text/plain", "", 0);
	}
	if (s->ws) {
		http_ws_set_data(s->ws, NULL);
		s->ws = NULL;
	}
	if (s->probe) {
		http_ws_set_data(s->probe, NULL);
		s->probe = NULL;
	}
	s->in_callback = 0;
	eio__socket_maybe_free(s);
}

void eio__socket_on_close(eio_socket *s, eio_close_reason reason)
{
	pending_unlink(s);
	if (s->state != EIO_S_OPEN)
		return;
	s->state = EIO_S_CLOSING;
	s->reason = reason;
	s->srv->stats.open[s->transport & 1]--;
	if ((unsigned)reason < EIO_CLOSE_REASONS)
		s->srv->stats.closed[reason]++;
	base_timeq_disarm(&s->hb);
	base_timeq_disarm(&s->up);
	BASE_LOGD("eio", "session %s closed: %s", s->sid, eio_close_reason_str(reason));

	s->in_callback++;
	if (s->srv->cb.on_close)
		s->srv->cb.on_close(s, reason, s->srv->cb.ud);
	s->in_callback--;

	if (s->transport == EIO_T_POLLING && s->upgrade != EIO_UP_DONE) {
		/* Polling: the close packet goes to the pending GET, or to the next one.
		 * A client that closed itself gets a noop instead, as from the reference. */
		eio_payload_append(&s->out, reason == EIO_CLOSE_CLIENT_CLOSE ? EIO_NOOP : EIO_CLOSE,
		                   0, NULL, 0);
		if (s->poll_req) {
			eio__polling_flush(s);
			socket_finalize(s);
		} else if (reason == EIO_CLOSE_SERVER_CLOSE) {
			/* A server-side close lets the client collect what was queued. */
			base_timeq_arm(&s->srv->linger_q, &s->hb);
		} else {
			socket_finalize(s);
		}
	} else {
		socket_finalize(s);
	}
}

void eio__linger_expired(base_timeq *q, base_timeq_entry *e)
{
	eio_socket *s = BASE_CONTAINER_OF(e, eio_socket, hb);
	socket_finalize(s);
	eio__socket_maybe_free(s);
}

/* ---- heartbeat --------------------------------------------------------- */

void eio__heartbeat_start(eio_socket *s)
{
	base_timeq_arm(&s->srv->ping_q, &s->hb);
}

void eio__ping_expired(base_timeq *q, base_timeq_entry *e)
{
	eio_socket *s = BASE_CONTAINER_OF(e, eio_socket, hb);
	if (s->state != EIO_S_OPEN)
		return;
	base_timeq_arm(&s->srv->pong_q, &s->hb);
	if (s->ws && s->upgrade != EIO_UP_PROBING && s->upgrade != EIO_UP_PROBED) {
		base_slice p = BASE_SLICE_LIT("2");
		http_ws_send(s->ws, 0, &p, 1);
	} else {
		eio_payload_append(&s->out, EIO_PING, 0, NULL, 0);
		eio__polling_flush(s);
	}
}

void eio__pong_expired(base_timeq *q, base_timeq_entry *e)
{
	eio_socket *s = BASE_CONTAINER_OF(e, eio_socket, hb);
	eio__socket_on_close(s, EIO_CLOSE_PING_TIMEOUT);
	eio__socket_maybe_free(s);
}

/* ---- packets in -------------------------------------------------------- */

void eio__on_packet(eio_socket *s, const eio_packet *p)
{
	if (s->state != EIO_S_OPEN || s->close_pending)
		return;
	switch (p->type) {
	case EIO_MESSAGE:
		s->srv->stats.msgs_in++;
		s->srv->stats.bytes_in += p->data.len;
		if (s->srv->cb.on_message) {
			s->in_callback++;
			s->srv->cb.on_message(s, p->binary, p->data.base, p->data.len,
			                      s->srv->cb.ud);
			s->in_callback--;
		}
		break;
	case EIO_PONG:
		/* Any pong proves liveness; the next ping is one interval away. */
		if (base_timeq_armed(&s->hb))
			base_timeq_arm(&s->srv->ping_q, &s->hb);
		break;
	case EIO_CLOSE:
		eio__socket_on_close(s, EIO_CLOSE_CLIENT_CLOSE);
		break;
	case EIO_PING:
		/* Protocol 4 pings go from server to client only. */
		eio__socket_on_close(s, EIO_CLOSE_TRANSPORT_ERROR);
		break;
	case EIO_OPEN:
	case EIO_UPGRADE:
	case EIO_NOOP:
		break;
	}
}

/* ---- messages out ------------------------------------------------------ */

static int polling_queue(eio_socket *s, int binary, const base_slice *parts, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += parts[i].len;
	if (s->out.len + total > s->srv->opts.max_buffered) {
		BASE_LOGW("eio", "session %s: %zu bytes queued, dropping it", s->sid, s->out.len);
		eio__socket_close_soon(s, EIO_CLOSE_TRANSPORT_ERROR);
		return BASE_ELIMIT;
	}
	if (binary) {
		/* Gather the parts once so base64 runs over contiguous bytes. */
		if (n == 1) {
			eio_payload_append(&s->out, EIO_MESSAGE, 1, parts[0].base, parts[0].len);
		} else {
			base_buf tmp = BASE_BUF_INIT;
			for (size_t i = 0; i < n; i++)
				base_buf_append(&tmp, parts[i].base, parts[i].len);
			eio_payload_append(&s->out, EIO_MESSAGE, 1, tmp.data, tmp.len);
			base_buf_free(&tmp);
		}
	} else {
		base_buf_reserve(&s->out, total + 2);
		if (s->out.len)
			s->out.data[s->out.len++] = EIO_RECORD_SEP;
		s->out.data[s->out.len++] = '4';
		for (size_t i = 0; i < n; i++) {
			memcpy(s->out.data + s->out.len, parts[i].base, parts[i].len);
			s->out.len += parts[i].len;
		}
	}
	eio__polling_flush(s);
	return 0;
}

static int ws_is_transport(const eio_socket *s)
{
	return s->ws && s->transport == EIO_T_WEBSOCKET;
}

int eio_socket_sendv(eio_socket *s, int binary, const base_slice *parts, size_t n_parts)
{
	if (s->state != EIO_S_OPEN || s->close_pending)
		return BASE_ECLOSED;
	s->srv->stats.msgs_out++;
	for (size_t i = 0; i < n_parts; i++)
		s->srv->stats.bytes_out += parts[i].len;
	if (ws_is_transport(s))
		return eio__ws_send(s, binary, parts, n_parts);
	return polling_queue(s, binary, parts, n_parts);
}

int eio_socket_send(eio_socket *s, int binary, const char *data, size_t len)
{
	base_slice p = {data, len};
	return eio_socket_sendv(s, binary, &p, 1);
}

eio_msg *eio_msg_new(int binary, const base_slice *parts, size_t n_parts)
{
	size_t payload = binary ? 0 : 1;
	for (size_t i = 0; i < n_parts; i++)
		payload += parts[i].len;
	char hdr[HTTP_WS_MAX_HEADER];
	size_t hlen =
	    http_ws_frame_header(hdr, 1, binary ? HTTP_WS_OP_BINARY : HTTP_WS_OP_TEXT, payload);
	eio_msg *m = malloc(sizeof(*m));
	base_chunk *c = base_chunk_new(hlen + payload);
	if (!m || !c) {
		free(m);
		base_chunk_unref(c);
		return NULL;
	}
	char *w = c->data;
	memcpy(w, hdr, hlen);
	w += hlen;
	if (!binary)
		*w++ = '4';
	for (size_t i = 0; i < n_parts; i++) {
		memcpy(w, parts[i].base, parts[i].len);
		w += parts[i].len;
	}
	m->refs = 1;
	m->binary = (uint8_t) !!binary;
	m->frame_hdr_len = (uint8_t)hlen;
	m->chunk = c;
	return m;
}

eio_msg *eio_msg_ref(eio_msg *m)
{
	m->refs++;
	return m;
}

void eio_msg_unref(eio_msg *m)
{
	if (m && --m->refs == 0) {
		base_chunk_unref(m->chunk);
		free(m);
	}
}

int eio_socket_send_msg(eio_socket *s, eio_msg *m)
{
	if (s->state != EIO_S_OPEN || s->close_pending)
		return BASE_ECLOSED;
	s->srv->stats.msgs_out++;
	s->srv->stats.bytes_out += m->chunk->len - m->frame_hdr_len - !m->binary;
	if (ws_is_transport(s)) {
		int rc = http_ws_send_frames(s->ws, m->chunk, 0, m->chunk->len);
		if (rc == HTTP_EQUEUE_FULL)
			eio__socket_close_soon(s, EIO_CLOSE_TRANSPORT_ERROR);
		return rc;
	}
	/* Polling is the slow path: its payload is text, so the message is re-encoded. */
	base_slice p = {m->chunk->data + m->frame_hdr_len + (m->binary ? 0 : 1),
	                m->chunk->len - m->frame_hdr_len - (m->binary ? 0 : 1)};
	return polling_queue(s, m->binary, &p, 1);
}

void eio_socket_close(eio_socket *s)
{
	/* Often called from inside a callback or a send: finished at the end of the turn. */
	eio__socket_close_soon(s, EIO_CLOSE_SERVER_CLOSE);
}

int eio_socket_is_open(const eio_socket *s)
{
	return s->state == EIO_S_OPEN && !s->close_pending;
}

int eio_socket_writable(const eio_socket *s)
{
	if (s->state != EIO_S_OPEN || s->close_pending)
		return 0;
	if (ws_is_transport(s))
		return http_ws_buffered(s->ws) == 0;
	return s->poll_req != NULL && s->out.len == 0;
}

size_t eio_socket_buffered(const eio_socket *s)
{
	return s->out.len + (s->ws ? http_ws_buffered(s->ws) : 0);
}

const char *eio_socket_id(const eio_socket *s)
{
	return s->sid;
}

const char *eio_socket_transport(const eio_socket *s)
{
	return ws_is_transport(s) ? "websocket" : "polling";
}

const char *eio_socket_remote_addr(const eio_socket *s)
{
	return s->remote;
}

void eio_socket_set_data(eio_socket *s, void *ud)
{
	s->user = ud;
}

void *eio_socket_data(const eio_socket *s)
{
	return s->user;
}

eio_server *eio_socket_server(const eio_socket *s)
{
	return s->srv;
}
