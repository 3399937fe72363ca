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
	eio__queue_clear(&s->q);
	free(s);
}

void eio__socket_maybe_free(eio_socket *s)
{
	if (s->state == EIO_S_CLOSED && !s->t->attached(s) && !s->probe && !s->in_callback &&
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

void eio__socket_finalize(eio_socket *s)
{
	if (s->state == EIO_S_CLOSED)
		return;
	s->state = EIO_S_CLOSED;
	base_timeq_disarm(&s->hb);
	base_timeq_disarm(&s->up);
	eio__unlink(s->srv, s);
	s->t->release(s, 0);
	eio__upgrade_release(s, 0);
}

void eio__socket_destroy(eio_socket *s)
{
	pending_unlink(s);
	eio__socket_finalize(s);
	s->t->release(s, 1);
	eio__upgrade_release(s, 1);
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
	s->srv->stats.open[s->t->index]--;
	if ((unsigned)reason < EIO_CLOSE_REASONS)
		s->srv->stats.closed[reason]++;
	base_timeq_disarm(&s->hb);
	base_timeq_disarm(&s->up);
	BASE_LOGD("eio", "session %s closed: %s", s->sid, eio_close_reason_str(reason));

	s->in_callback++;
	if (s->srv->cb.on_close)
		s->srv->cb.on_close(s, reason, s->srv->cb.ud);
	s->in_callback--;

	s->t->closing(s, reason);
}

void eio__linger_expired(base_timeq *q, base_timeq_entry *e)
{
	eio_socket *s = BASE_CONTAINER_OF(e, eio_socket, hb);
	eio__socket_finalize(s);
	eio__socket_maybe_free(s);
}

/* ---- heartbeat --------------------------------------------------------- */

void eio__heartbeat_start(eio_socket *s)
{
	if (s->eio3) {
		/* Protocol 3: the client pings; it must within interval + timeout. */
		base_timeq_arm(&s->srv->eio3_q, &s->hb);
		return;
	}
	base_timeq_arm(&s->srv->ping_q, &s->hb);
}

void eio__ping_expired(base_timeq *q, base_timeq_entry *e)
{
	eio_socket *s = BASE_CONTAINER_OF(e, eio_socket, hb);
	if (s->state != EIO_S_OPEN)
		return;
	base_timeq_arm(&s->srv->pong_q, &s->hb);
	eio__socket_push_ctl(s, EIO_PING);
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
		if (s->eio3) {
			eio__socket_on_close(s, EIO_CLOSE_TRANSPORT_ERROR);
			break;
		}
		/* Any pong proves liveness; the next ping is one interval away. */
		if (base_timeq_armed(&s->hb))
			base_timeq_arm(&s->srv->ping_q, &s->hb);
		break;
	case EIO_CLOSE:
		eio__socket_on_close(s, EIO_CLOSE_CLIENT_CLOSE);
		break;
	case EIO_PING:
		if (s->eio3) {
			eio3__on_ping(s, p);
			break;
		}
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

int eio__socket_enqueue(eio_socket *s, eio_msg *m)
{
	size_t len = eio__msg_packet(m).len;
	if (s->q.bytes + len > s->srv->opts.max_buffered) {
		BASE_LOGW("eio", "session %s: %zu bytes queued, dropping it", s->sid, s->q.bytes);
		eio__socket_close_soon(s, EIO_CLOSE_TRANSPORT_ERROR);
		return BASE_ELIMIT;
	}
	eio__queue_push(&s->q, m);
	return 0;
}

void eio__socket_push_ctl(eio_socket *s, eio_packet_type type)
{
	/* Past the cap: a close or a ping is what ends a stuck session. */
	eio__queue_push(&s->q, s->srv->ctl[type]);
	s->t->flush(s);
}

int eio_socket_sendv(eio_socket *s, int binary, const base_slice *parts, size_t n_parts)
{
	if (s->state != EIO_S_OPEN || s->close_pending)
		return BASE_ECLOSED;
	s->srv->stats.msgs_out++;
	for (size_t i = 0; i < n_parts; i++)
		s->srv->stats.bytes_out += parts[i].len;
	return s->t->send(s, binary, parts, n_parts);
}

int eio_socket_send(eio_socket *s, int binary, const char *data, size_t len)
{
	base_slice p = {data, len};
	return eio_socket_sendv(s, binary, &p, 1);
}

int eio_socket_send_msg(eio_socket *s, eio_msg *m)
{
	if (s->state != EIO_S_OPEN || s->close_pending)
		return BASE_ECLOSED;
	s->srv->stats.msgs_out++;
	/* The data bytes: the packet without its type digit (text). */
	s->srv->stats.bytes_out += eio__msg_packet(m).len - !eio__msg_binary(m);
	return s->t->send_msg(s, m);
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
	return s->t->writable(s);
}

size_t eio_socket_buffered(const eio_socket *s)
{
	return s->q.bytes + s->t->buffered(s);
}

const char *eio_socket_id(const eio_socket *s)
{
	return s->sid;
}

const char *eio_socket_transport(const eio_socket *s)
{
	return s->t->name;
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
