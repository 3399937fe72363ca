/*
 * eio3.c: Engine.IO protocol 3 (the payload codec is packet_v3.c), for socket.io-client 2.x (allow_eio3, the
 * reference server's allowEIO3). What differs from protocol 4:
 *
 * - A polling payload is a run of "<len>:<packet>", len counting the
 *   packet's UTF-16 code units (a JavaScript string's length); a binary
 *   message in it is "b4" followed by base64.
 * - A client that takes binary (no b64 in the query) gets a payload with a
 *   binary message in the binary format instead: per packet a byte 0 (text)
 *   or 1 (binary), the length's decimal digits as bytes 0..9, a byte 255,
 *   then the packet (text as UTF-8; binary as the type byte 4 and the data).
 *   It posts binary the same way (Content-Type: application/octet-stream).
 * - Over WebSocket a binary frame starts with the type byte 4.
 * - The client pings and the server answers pong; a client that has not
 *   pinged for ping_interval + ping_timeout is dropped.
 */
#include <stdlib.h>

#include "engineio_internal.h"

int eio3__encode_payload(const eio_socket *s, size_t n, base_buf *out)
{
	int binary = 0;
	out->len = 0;
	if (!s->eio3_b64)
		for (size_t i = 0; i < n && !binary; i++)
			binary = eio__msg_binary(eio__queue_at(&s->q, i));
	for (size_t i = 0; i < n; i++) {
		eio_msg *m = eio__queue_at(&s->q, i);
		base_slice p = eio__msg_packet(m);
		if (eio__msg_binary(m))
			eio3_payload_append(out, binary, EIO_MESSAGE, 1, p.base, p.len);
		else
			eio3_payload_append(out, binary, (eio_packet_type)(p.base[0] - '0'), 0,
			                    p.base + 1, p.len - 1);
	}
	return binary;
}

int eio3__ws_send_binary(eio_socket *s, const base_slice *parts, size_t n)
{
	if (s->eio3_b64) {
		base_buf raw = BASE_BUF_INIT, text = BASE_BUF_INIT;
		for (size_t i = 0; i < n; i++)
			base_buf_append(&raw, parts[i].base, parts[i].len);
		base_buf_reserve(&text, 2 + base_base64_encoded_len(raw.len));
		base_buf_append(&text, "b4", 2);
		text.len += base_base64_encode(raw.data, raw.len, text.data + text.len);
		base_slice one = {text.data, text.len};
		int rc = http_ws_send(s->ws, 0, &one, 1);
		base_buf_free(&raw);
		base_buf_free(&text);
		return rc;
	}
	base_slice local[9];
	if (n < BASE_ARRAY_SIZE(local)) {
		local[0] = BASE_SLICE_LIT("\x04");
		memcpy(local + 1, parts, n * sizeof(*parts));
		return http_ws_send(s->ws, 1, local, n + 1);
	}
	base_buf b = BASE_BUF_INIT;
	base_buf_append(&b, "\x04", 1);
	for (size_t i = 0; i < n; i++)
		base_buf_append(&b, parts[i].base, parts[i].len);
	base_slice one = {b.data, b.len};
	int rc = http_ws_send(s->ws, 1, &one, 1);
	base_buf_free(&b);
	return rc;
}

void eio3__ws_on_base64(eio_socket *s, const char *data, size_t len)
{
	char *copy = malloc(len);
	eio_packet p;
	if (!copy) {
		eio__socket_on_close(s, EIO_CLOSE_TRANSPORT_ERROR);
		return;
	}
	memcpy(copy, data, len);
	/* The frame is one packet: decode it as a one-packet binary-less payload would. */
	if (len >= 2 && copy[1] == '0' + EIO_MESSAGE) {
		ssize_t n = base_base64_decode(copy + 2, len - 2, copy + 2);
		if (n >= 0) {
			p.type = EIO_MESSAGE;
			p.binary = 1;
			p.data = (base_slice){copy + 2, (size_t)n};
			eio__on_packet(s, &p);
			free(copy);
			return;
		}
	}
	free(copy);
	eio__socket_on_close(s, EIO_CLOSE_PARSE_ERROR);
}

void eio3__on_ping(eio_socket *s, const eio_packet *p)
{
	(void)p;
	if (base_timeq_armed(&s->hb))
		base_timeq_arm(&s->srv->eio3_q, &s->hb);
	eio__socket_push_ctl(s, EIO_PONG);
}

int eio_socket_protocol(const eio_socket *s)
{
	return s && s->eio3 ? 3 : 4;
}
