/*
 * transport_websocket.c: the WebSocket transport, opened directly or as an
 * upgrade from polling ("2probe" -> "3probe", then "5"). A text frame
 * carries one packet; a binary frame is one binary message.
 */
#include "engineio_internal.h"
#include "http/ws_frame.h"

static void ws_on_message(http_ws *ws, int binary, const char *data, size_t len, void *ud);
static void ws_on_close(http_ws *ws, int code, const char *reason, void *ud);

static const http_ws_callbacks ws_callbacks = {ws_on_message, ws_on_close};

/* The peer does not read: its connection is being dropped, and so is the session. */
static int ws_check(eio_socket *s, int rc)
{
	if (rc == HTTP_EQUEUE_FULL) {
		BASE_LOGW("eio", "session %s: peer does not read, dropping it", s->sid);
		eio__socket_close_soon(s, EIO_CLOSE_TRANSPORT_ERROR);
	}
	return rc;
}

/* Drains the whole queue into the connection's write queue, sharing each chunk. */
static void ws_flush(eio_socket *s)
{
	eio_msg *m;
	while (s->ws && (m = eio__queue_pop(&s->q)) != NULL) {
		base_chunk *c = eio__msg_chunk(m);
		if (s->eio3 && eio__msg_binary(m)) {
			base_slice p = eio__msg_packet(m);
			ws_check(s, eio3__ws_send_binary(s, &p, 1));
		} else {
			ws_check(s, http_ws_send_frames(s->ws, c, 0, c->len));
		}
		eio_msg_unref(m);
	}
	eio__queue_trim(&s->q);
}

static int ws_send_msg(eio_socket *s, eio_msg *m)
{
	/* Until the WebSocket is accepted (on_connection sends before), packets wait in order. */
	if (!s->ws || s->q.len) {
		int rc = eio__socket_enqueue(s, m);
		ws_flush(s);
		return rc;
	}
	base_chunk *c = eio__msg_chunk(m);
	if (s->eio3 && eio__msg_binary(m)) {
		base_slice p = eio__msg_packet(m);
		return ws_check(s, eio3__ws_send_binary(s, &p, 1));
	}
	return ws_check(s, http_ws_send_frames(s->ws, c, 0, c->len));
}

/*
 * A message for one session is written straight into the connection's
 * write queue (small ones are copied into its tail node: no allocation),
 * framed around the parts without building a message first.
 */
static int ws_send(eio_socket *s, int binary, const base_slice *parts, size_t n)
{
	if (!s->ws || s->q.len) {
		eio_msg *m = eio__msg_new(EIO_MESSAGE, binary, parts, n);
		int rc = ws_send_msg(s, m);
		eio_msg_unref(m);
		return rc;
	}
	int rc;
	if (binary) {
		rc = s->eio3 ? eio3__ws_send_binary(s, parts, n) : http_ws_send(s->ws, 1, parts, n);
	} else {
		base_slice local[9];
		if (n < BASE_ARRAY_SIZE(local)) {
			local[0] = BASE_SLICE_LIT("4");
			memcpy(local + 1, parts, n * sizeof(*parts));
			rc = http_ws_send(s->ws, 0, local, n + 1);
		} else {
			eio_msg *m = eio__msg_new(EIO_MESSAGE, 0, parts, n);
			base_chunk *c = eio__msg_chunk(m);
			rc = http_ws_send_frames(s->ws, c, 0, c->len);
			eio_msg_unref(m);
		}
	}
	return ws_check(s, rc);
}

static int ws_writable(const eio_socket *s)
{
	return s->ws && s->q.len == 0 && http_ws_buffered(s->ws) == 0;
}

static size_t ws_buffered(const eio_socket *s)
{
	return s->ws ? http_ws_buffered(s->ws) : 0;
}

static void ws_closing(eio_socket *s, eio_close_reason reason)
{
	(void)reason; /* the WebSocket's close frame says goodbye */
	eio__socket_finalize(s);
}

static void ws_release(eio_socket *s, int detach)
{
	if (!s->ws)
		return;
	if (detach) {
		http_ws_set_data(s->ws, NULL);
		s->ws = NULL;
	} else {
		http_ws_close(s->ws, HTTP_WS_CLOSE_NORMAL, "");
	}
}

static int ws_attached(const eio_socket *s)
{
	return s->ws != NULL;
}

void eio__upgrade_release(eio_socket *s, int detach)
{
	if (!s->probe)
		return;
	if (detach) {
		http_ws_set_data(s->probe, NULL);
		s->probe = NULL;
	} else {
		http_ws_close(s->probe, HTTP_WS_CLOSE_NORMAL, "");
	}
}

const eio_transport_ops eio__websocket_ops = {
    .name = "websocket",
    .index = 1,
    .send = ws_send,
    .send_msg = ws_send_msg,
    .flush = ws_flush,
    .writable = ws_writable,
    .buffered = ws_buffered,
    .closing = ws_closing,
    .release = ws_release,
    .attached = ws_attached,
};

void eio__ws_handshake(eio_server *srv, http_request *req)
{
	eio_socket *s = eio__handshake(srv, &eio__websocket_ops, req);
	if (!s)
		return;
	if (s->state != EIO_S_OPEN) {
		eio__respond_error(srv, req, EIO_ERR_FORBIDDEN);
		eio__socket_maybe_free(s);
		return;
	}
	s->ws = http_ws_accept(req, &ws_callbacks, s, NULL);
	if (!s->ws) {
		eio__socket_on_close(s, EIO_CLOSE_TRANSPORT_ERROR);
		eio__socket_maybe_free(s);
		return;
	}
	ws_flush(s);
}

void eio__ws_upgrade(eio_socket *s, http_request *req)
{
	eio_server *srv = s->srv;
	if (!srv->opts.allow_upgrades) {
		eio__respond_error(srv, req, EIO_ERR_BAD_REQUEST);
		return;
	}
	if (s->state != EIO_S_OPEN || s->t != &eio__polling_ops || s->upgrade != EIO_UP_NONE) {
		/* Already upgraded, upgrading, or closing: as the reference server
		 * does, the WebSocket opens and is closed at once (no status code). */
		http_ws *ws = http_ws_accept(req, &ws_callbacks, NULL, NULL);
		if (ws)
			http_ws_close(ws, HTTP_WS_CLOSE_NO_STATUS, NULL);
		return;
	}
	s->probe = http_ws_accept(req, &ws_callbacks, s, NULL);
	if (!s->probe)
		return;
	s->upgrade = EIO_UP_PROBING;
	base_timeq_arm(&srv->upgrade_q, &s->up);
}

void eio__upgrade_expired(base_timeq *q, base_timeq_entry *e)
{
	eio_socket *s = BASE_CONTAINER_OF(e, eio_socket, up);
	BASE_LOGD("eio", "session %s: upgrade timed out", s->sid);
	if (s->probe)
		http_ws_close(s->probe, HTTP_WS_CLOSE_NORMAL, "upgrade timeout");
}

static void finish_upgrade(eio_socket *s)
{
	base_timeq_disarm(&s->up);
	/* Release a waiting GET so the client stops polling (it waits only
	 * while nothing is queued, so it gets a noop). */
	if (s->poll_req) {
		eio__queue_push(&s->q, s->srv->ctl[EIO_NOOP]);
		s->t->flush(s);
	}
	/* The queue moves with the session: what polling had not handed out
	 * leaves as WebSocket frames, in order, from the same chunks. */
	s->srv->stats.open[s->t->index]--;
	s->ws = s->probe;
	s->probe = NULL;
	s->t = &eio__websocket_ops;
	s->upgrade = EIO_UP_DONE;
	s->srv->stats.upgrades++;
	s->srv->stats.open[s->t->index]++;
	BASE_LOGD("eio", "session %s upgraded to websocket", s->sid);
	s->t->flush(s);
	if (s->srv->cb.on_upgrade && s->state == EIO_S_OPEN) {
		s->in_callback++;
		s->srv->cb.on_upgrade(s, s->srv->cb.ud);
		s->in_callback--;
	}
}

static void probe_on_message(eio_socket *s, http_ws *ws, int binary, const char *data, size_t len)
{
	eio_packet p;
	if (binary || eio_packet_decode(data, len, &p) != 0) {
		http_ws_close(ws, HTTP_WS_CLOSE_NORMAL, "");
		return;
	}
	if (p.type == EIO_PING && base_slice_eq(p.data, "probe") && s->upgrade == EIO_UP_PROBING) {
		base_slice pong = BASE_SLICE_LIT("3probe");
		http_ws_send(ws, 0, &pong, 1);
		s->upgrade = EIO_UP_PROBED;
		if (s->poll_req && !s->q.len) {
			eio__queue_push(&s->q, s->srv->ctl[EIO_NOOP]);
			s->t->flush(s);
		}
	} else if (p.type == EIO_UPGRADE && s->upgrade == EIO_UP_PROBED) {
		finish_upgrade(s);
	} else {
		http_ws_close(ws, HTTP_WS_CLOSE_NORMAL, "");
	}
}

static void ws_on_message(http_ws *ws, int binary, const char *data, size_t len, void *ud)
{
	eio_socket *s = ud;
	if (!s || s->state != EIO_S_OPEN)
		return;
	s->in_callback++;
	if (ws == s->probe) {
		probe_on_message(s, ws, binary, data, len);
	} else if (ws == s->ws) {
		eio_packet p;
		if (binary && s->eio3) {
			/* Protocol 3: the type byte first. */
			if (len && data[0] == EIO_MESSAGE) {
				p.type = EIO_MESSAGE;
				p.binary = 1;
				p.data = (base_slice){data + 1, len - 1};
				eio__on_packet(s, &p);
			} else {
				eio__socket_on_close(s, EIO_CLOSE_PARSE_ERROR);
			}
		} else if (binary) {
			p.type = EIO_MESSAGE;
			p.binary = 1;
			p.data = (base_slice){data, len};
			eio__on_packet(s, &p);
		} else if (s->eio3 && len && data[0] == 'b') {
			eio3__ws_on_base64(s, data, len);
		} else if (eio_packet_decode(data, len, &p) == 0) {
			eio__on_packet(s, &p);
		} else {
			BASE_LOGD("eio", "session %s: invalid packet", s->sid);
			eio__socket_on_close(s, EIO_CLOSE_PARSE_ERROR);
		}
	}
	s->in_callback--;
	eio__socket_maybe_free(s);
}

static void ws_on_close(http_ws *ws, int code, const char *reason, void *ud)
{
	eio_socket *s = ud;
	if (!s)
		return;
	if (ws == s->probe) {
		s->probe = NULL;
		if (s->upgrade != EIO_UP_DONE)
			s->upgrade = EIO_UP_NONE;
		base_timeq_disarm(&s->up);
	} else if (ws == s->ws) {
		s->ws = NULL;
		if (s->state == EIO_S_OPEN)
			eio__socket_on_close(s, EIO_CLOSE_CLIENT_CLOSE);
	}
	eio__socket_maybe_free(s);
}
