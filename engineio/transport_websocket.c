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

int eio__ws_send(eio_socket *s, int binary, const base_slice *parts, size_t n)
{
	int rc;
	if (binary) {
		rc = http_ws_send(s->ws, 1, parts, n);
	} else {
		base_slice local[9];
		if (n < BASE_ARRAY_SIZE(local)) {
			local[0] = BASE_SLICE_LIT("4");
			memcpy(local + 1, parts, n * sizeof(*parts));
			rc = http_ws_send(s->ws, 0, local, n + 1);
		} else {
			base_buf tmp = BASE_BUF_INIT;
			base_buf_append(&tmp, "4", 1);
			for (size_t i = 0; i < n; i++)
				base_buf_append(&tmp, parts[i].base, parts[i].len);
			base_slice one = {tmp.data, tmp.len};
			rc = http_ws_send(s->ws, 0, &one, 1);
			base_buf_free(&tmp);
		}
	}
	if (rc == HTTP_EQUEUE_FULL) {
		BASE_LOGW("eio", "session %s: peer does not read, dropping it", s->sid);
		eio__socket_close_soon(s, EIO_CLOSE_TRANSPORT_ERROR);
	}
	return rc;
}

void eio__flush_to_ws(eio_socket *s)
{
	char *buf = s->out.data;
	size_t len = s->out.len;
	while (len > 0 && s->ws) {
		eio_packet p;
		ssize_t n = eio_payload_next(buf, len, &p);
		if (n <= 0)
			break; /* we wrote it: cannot happen */
		base_slice frame;
		if (p.binary)
			frame = p.data;
		else
			frame = (base_slice){p.data.base - 1, p.data.len + 1};
		http_ws_send(s->ws, p.binary, &frame, 1);
		buf += n;
		len -= (size_t)n;
	}
	base_buf_free(&s->out);
}

void eio__ws_handshake(eio_server *srv, http_request *req)
{
	eio_socket *s = eio__handshake(srv, EIO_T_WEBSOCKET, req);
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
	eio__flush_to_ws(s);
}

void eio__ws_upgrade(eio_socket *s, http_request *req)
{
	eio_server *srv = s->srv;
	if (!srv->opts.allow_upgrades) {
		eio__respond_error(srv, req, EIO_ERR_BAD_REQUEST);
		return;
	}
	if (s->state != EIO_S_OPEN || s->transport != EIO_T_POLLING || s->upgrade != EIO_UP_NONE) {
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
	/* Release a waiting GET so the client stops polling. */
	if (s->poll_req) {
		if (!s->out.len)
			eio_payload_append(&s->out, EIO_NOOP, 0, NULL, 0);
		eio__polling_flush(s);
	}
	s->ws = s->probe;
	s->probe = NULL;
	s->transport = EIO_T_WEBSOCKET;
	s->upgrade = EIO_UP_DONE;
	s->srv->stats.upgrades++;
	s->srv->stats.open[0]--;
	s->srv->stats.open[1]++;
	BASE_LOGD("eio", "session %s upgraded to websocket", s->sid);
	eio__flush_to_ws(s);
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
		if (s->poll_req && !s->out.len) {
			eio_payload_append(&s->out, EIO_NOOP, 0, NULL, 0);
			eio__polling_flush(s);
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
		if (binary) {
			p.type = EIO_MESSAGE;
			p.binary = 1;
			p.data = (base_slice){data, len};
			eio__on_packet(s, &p);
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
