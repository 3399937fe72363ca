/*
 * packet.c: the Engine.IO v4 packet and polling payload codec.
 *
 * Over WebSocket a text frame is "<type digit><data>" and a binary frame is
 * the raw bytes of a message. Over polling, packets are joined by 0x1e and a
 * binary message is "b" followed by its base64. A text packet cannot carry
 * 0x1e; the layers above only ever send JSON there, which escapes it.
 */
#include "packet.h"

static int type_from_char(char c, eio_packet_type *t)
{
	if (c < '0' || c > '6')
		return -1;
	*t = (eio_packet_type)(c - '0');
	return 0;
}

int eio_packet_decode(const char *buf, size_t len, eio_packet *p)
{
	if (len == 0 || type_from_char(buf[0], &p->type) < 0)
		return -1;
	p->binary = 0;
	p->data.base = buf + 1;
	p->data.len = len - 1;
	return 0;
}

ssize_t eio_payload_next(char *buf, size_t len, eio_packet *p)
{
	char *sep;
	size_t rec, used;

	if (len == 0)
		return 0;
	sep = memchr(buf, EIO_RECORD_SEP, len);
	rec = sep != NULL ? (size_t)(sep - buf) : len;
	used = sep != NULL ? rec + 1 : len;
	/*
	 * An empty record is refused, including the one after a trailing
	 * separator ("4a\x1e"): the reference parser reports an error for it too.
	 */
	if (rec == 0 || (sep != NULL && used == len))
		return -1;
	if (buf[0] == 'b') {
		ssize_t n = base_base64_decode(buf + 1, rec - 1, buf + 1);

		if (n < 0)
			return -1;
		p->type = EIO_MESSAGE;
		p->binary = 1;
		p->data.base = buf + 1;
		p->data.len = (size_t)n;
		return (ssize_t)used;
	}
	if (eio_packet_decode(buf, rec, p) < 0)
		return -1;
	return (ssize_t)used;
}

void eio_payload_append(base_buf *out, eio_packet_type type, int binary, const char *data,
                        size_t len)
{
	size_t body = binary ? base_base64_encoded_len(len) : len;
	char *w;

	if (body > SIZE_MAX - 2)
		base_oom("eio payload", SIZE_MAX);
	base_buf_reserve(out, body + 2);
	w = out->data + out->len;
	if (out->len > 0)
		*w++ = EIO_RECORD_SEP;
	/* Binary data is always a message in v4, so 'b' stands for the type. */
	if (binary) {
		*w++ = 'b';
		w += base_base64_encode(data, len, w);
	} else {
		*w++ = (char)('0' + (int)type);
		if (len > 0)
			memcpy(w, data, len);
		w += len;
	}
	out->len = (size_t)(w - out->data);
}
