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

void eio3__on_ping(eio_socket *s, const eio_packet *p)
{
	(void)p;
	if (base_timeq_armed(&s->hb))
		base_timeq_arm(&s->srv->eio3_q, &s->hb);
	eio__socket_push_ctl(s, EIO_PONG);
}

int eio_socket_protocol(const eio_socket *s)
{
	return s->eio3 ? 3 : 4;
}
