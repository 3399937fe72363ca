/*
 * packet_v3.c: the Engine.IO protocol 3 payload codec (see packet.h), for
 * socket.io-client 2.x. Pure: no I/O; base64 is decoded in place.
 */
#include "packet.h"

/* UTF-16 code units of UTF-8 text: one per sequence, two past U+FFFF. */
static size_t utf16_units(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c & 0xc0) != 0x80)
			n += c >= 0xf0 ? 2 : 1;
	}
	return n;
}

static void put_char(base_buf *out, char c)
{
	base_buf_append(out, &c, 1);
}

/* n in decimal: as characters, or (raw) as bytes 0..9. */
static void put_digits(base_buf *out, size_t n, int raw)
{
	char d[24];
	int k = 0;
	do {
		d[k++] = (char)(n % 10);
		n /= 10;
	} while (n);
	while (k--)
		put_char(out, raw ? d[k] : (char)('0' + d[k]));
}

void eio3_payload_append(base_buf *out, int binary_payload, eio_packet_type type, int binary,
                         const char *data, size_t len)
{
	if (binary_payload) {
		put_char(out, (char)(binary ? 1 : 0));
		put_digits(out, len + 1, 1);
		put_char(out, (char)0xff);
		put_char(out, binary ? (char)EIO_MESSAGE : (char)('0' + (int)type));
	} else if (binary) {
		size_t b = base_base64_encoded_len(len);
		put_digits(out, b + 2, 0);
		base_buf_append_str(out, ":b4");
		base_buf_reserve(out, b);
		out->len += base_base64_encode(data, len, out->data + out->len);
		return;
	} else {
		put_digits(out, 1 + utf16_units(data, len), 0);
		put_char(out, ':');
		put_char(out, (char)('0' + (int)type));
	}
	if (len)
		base_buf_append(out, data, len);
}

/* One packet of a payload: text (a "b4" first: base64, decoded in place) or binary. */
static int decode_one(char *buf, size_t len, int bin, eio_packet *p)
{
	if (bin) {
		/* socket.io-client 2.x only sends messages as binary. */
		if (buf[0] != EIO_MESSAGE)
			return -1;
		p->type = EIO_MESSAGE;
		p->binary = 1;
		p->data = (base_slice){buf + 1, len - 1};
		return 0;
	}
	if (buf[0] == 'b') {
		if (len < 2 || buf[1] != '0' + EIO_MESSAGE)
			return -1;
		ssize_t n = base_base64_decode(buf + 2, len - 2, buf + 2);
		if (n < 0)
			return -1;
		p->type = EIO_MESSAGE;
		p->binary = 1;
		p->data = (base_slice){buf + 2, (size_t)n};
		return 0;
	}
	return eio_packet_decode(buf, len, p);
}

#define EIO3_MAX_DIGITS 9 /* packets under 1 GB */

ssize_t eio3_payload_next(char *buf, size_t len, int binary_payload, eio_packet *p)
{
	size_t i, n = 0, digits = 0, bytes;
	int bin = 0;

	if (len == 0)
		return 0;
	if (binary_payload) {
		if ((unsigned char)buf[0] > 1)
			return -1;
		bin = buf[0] == 1;
		for (i = 1; i < len && (unsigned char)buf[i] != 0xff; i++) {
			if ((unsigned char)buf[i] > 9 || ++digits > EIO3_MAX_DIGITS)
				return -1;
			n = n * 10 + (unsigned char)buf[i];
		}
		if (i == len || digits == 0 || n > len - i - 1)
			return -1;
		i++;
		bytes = n;
	} else {
		for (i = 0; i < len && buf[i] != ':'; i++) {
			if (buf[i] < '0' || buf[i] > '9' || ++digits > EIO3_MAX_DIGITS)
				return -1;
			n = n * 10 + (size_t)(buf[i] - '0');
		}
		if (i == len || digits == 0)
			return -1;
		i++;
		/* n counts UTF-16 code units: the bytes they span, continuations included. */
		size_t units = 0, j = i;
		for (; j < len; j++) {
			unsigned char c = (unsigned char)buf[j];
			if ((c & 0xc0) != 0x80) {
				if (units >= n)
					break;
				units += c >= 0xf0 ? 2 : 1;
			}
		}
		if (units != n)
			return -1;
		bytes = j - i;
	}
	if (bytes == 0) {
		if (bin)
			return -1;
		p->type = (eio_packet_type)-1; /* "0:": nothing, as the reference skips it */
		p->binary = 0;
		p->data = (base_slice){buf + i, 0};
		return (ssize_t)i;
	}
	if (decode_one(buf + i, bytes, bin, p) < 0)
		return -1;
	return (ssize_t)(i + bytes);
}
