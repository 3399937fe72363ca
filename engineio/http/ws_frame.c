/*
 * ws_frame.c: the RFC 6455 framing codec.
 *
 * Parsing checks everything that can be known from the header alone, as early
 * as the bytes allow, so a bad frame is refused before its payload is read.
 */
#include "ws_frame.h"

#include <string.h>

#include "base/base.h"

static ssize_t frame_fail(http_ws_frame *f, const char **err, uint16_t code, const char *why)
{
	f->close_code = code;
	if (err != NULL)
		*err = why;
	return -1;
}

static int opcode_known(unsigned op)
{
	return op == HTTP_WS_OP_CONT || op == HTTP_WS_OP_TEXT || op == HTTP_WS_OP_BINARY ||
	       op == HTTP_WS_OP_CLOSE || op == HTTP_WS_OP_PING || op == HTTP_WS_OP_PONG;
}

ssize_t http_ws_frame_parse(const char *buf, size_t len, int require_mask, uint64_t max_payload,
                            http_ws_frame *f, const char **err)
{
	return http_ws_frame_parse_ext(buf, len, require_mask, 0, max_payload, f, err);
}

ssize_t http_ws_frame_parse_ext(const char *buf, size_t len, int require_mask, int allow_rsv1,
                                uint64_t max_payload, http_ws_frame *f, const char **err)
{
	const unsigned char *p = (const unsigned char *)buf;
	unsigned fin, opcode, masked, len7;
	uint64_t plen;
	size_t hlen;

	if (len < 1)
		return -2;
	fin = p[0] >> 7;
	opcode = p[0] & 0x0f;
	if (p[0] & 0x30)
		return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "reserved bits set");
	if (!opcode_known(opcode))
		return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "unknown opcode");
	if ((p[0] & 0x40) &&
	    (!allow_rsv1 || (opcode != HTTP_WS_OP_TEXT && opcode != HTTP_WS_OP_BINARY)))
		return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "reserved bits set");
	if ((opcode & 0x08) && !fin)
		return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "fragmented control frame");
	if (len < 2)
		return -2;
	masked = p[1] >> 7;
	len7 = p[1] & 0x7f;
	if (require_mask && !masked)
		return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "unmasked client frame");
	if ((opcode & 0x08) && len7 > 125)
		return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "control frame over 125 bytes");
	if (len7 < 126) {
		plen = len7;
		hlen = 2;
	} else if (len7 == 126) {
		if (len < 4)
			return -2;
		plen = (uint64_t)p[2] << 8 | p[3];
		if (plen < 126)
			return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "non-minimal length");
		hlen = 4;
	} else {
		if (len < 10)
			return -2;
		plen = 0;
		for (int i = 2; i < 10; i++)
			plen = plen << 8 | p[i];
		if (plen >> 63)
			return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "length over 63 bits");
		if (plen <= 0xffff)
			return frame_fail(f, err, HTTP_WS_CLOSE_PROTOCOL, "non-minimal length");
		hlen = 10;
	}
	if (plen > max_payload)
		return frame_fail(f, err, HTTP_WS_CLOSE_TOO_BIG, "frame too big");
	if (masked) {
		if (len < hlen + 4)
			return -2;
		memcpy(f->mask, p + hlen, 4);
		hlen += 4;
	} else {
		memset(f->mask, 0, 4);
	}
	f->fin = fin;
	f->opcode = opcode;
	f->masked = masked;
	f->rsv1 = (p[0] >> 6) & 1;
	f->payload_len = plen;
	f->header_len = hlen;
	f->close_code = 0;
	return (ssize_t)hlen;
}

void http_ws_unmask(char *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
	unsigned char *s = (unsigned char *)p;
	unsigned char m[8];
	uint64_t m64;
	size_t i = 0;

	/* Rotate the key so that m[0] applies to p[0], then repeat it to 8 bytes. */
	for (int k = 0; k < 8; k++)
		m[k] = mask[(offset + (uint64_t)k) & 3];
	memcpy(&m64, m, 8);
	/* Eight bytes per step (32 per iteration); memcpy keeps unaligned loads defined. */
	for (; n - i >= 32; i += 32) {
		uint64_t w[4];

		memcpy(w, s + i, 32);
		w[0] ^= m64;
		w[1] ^= m64;
		w[2] ^= m64;
		w[3] ^= m64;
		memcpy(s + i, w, 32);
	}
	for (; n - i >= 8; i += 8) {
		uint64_t w;

		memcpy(&w, s + i, 8);
		w ^= m64;
		memcpy(s + i, &w, 8);
	}
	for (; i < n; i++)
		s[i] ^= m[i & 3];
}

static size_t put_header(unsigned char *o, int fin, unsigned opcode, uint64_t len,
                         unsigned mask_bit)
{
	o[0] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		o[1] = (unsigned char)(mask_bit | len);
		return 2;
	}
	if (len <= 0xffff) {
		o[1] = (unsigned char)(mask_bit | 126);
		o[2] = (unsigned char)(len >> 8);
		o[3] = (unsigned char)len;
		return 4;
	}
	o[1] = (unsigned char)(mask_bit | 127);
	for (int i = 0; i < 8; i++)
		o[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	return 10;
}

size_t http_ws_frame_header(char out[HTTP_WS_MAX_HEADER], int fin, unsigned opcode, uint64_t len)
{
	return put_header((unsigned char *)out, fin, opcode, len, 0);
}

size_t http_ws_frame_header_rsv1(char out[HTTP_WS_MAX_HEADER], int fin, unsigned opcode,
                                 uint64_t len)
{
	size_t n = put_header((unsigned char *)out, fin, opcode, len, 0);

	out[0] = (char)(out[0] | 0x40);
	return n;
}

size_t http_ws_frame_header_masked(char out[HTTP_WS_MAX_HEADER], int fin, unsigned opcode,
                                   uint64_t len, const uint8_t mask[4])
{
	size_t n = put_header((unsigned char *)out, fin, opcode, len, 0x80);

	memcpy(out + n, mask, 4);
	return n + 4;
}

int http_ws_seq_next(http_ws_seq *s, const http_ws_frame *f, uint64_t max_message)
{
	/* Control frames are not part of the sequence; the caller should not pass them. */
	if (f->opcode & 0x08)
		return 0;
	if (f->opcode == HTTP_WS_OP_CONT) {
		if (!s->in_message)
			return HTTP_WS_CLOSE_PROTOCOL;
		if (f->payload_len > max_message || s->size > max_message - f->payload_len)
			return HTTP_WS_CLOSE_TOO_BIG;
		s->size += f->payload_len;
	} else {
		if (s->in_message)
			return HTTP_WS_CLOSE_PROTOCOL;
		if (f->payload_len > max_message)
			return HTTP_WS_CLOSE_TOO_BIG;
		s->opcode = f->opcode;
		s->size = f->payload_len;
	}
	s->in_message = !f->fin;
	return 0;
}

static int close_code_allowed(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

int http_ws_close_payload_parse(const char *p, size_t len, uint16_t *code)
{
	uint32_t st = 0;
	unsigned c;

	if (len == 0) {
		*code = HTTP_WS_CLOSE_NO_STATUS;
		return 0;
	}
	if (len == 1)
		return -1;
	c = (unsigned)(unsigned char)p[0] << 8 | (unsigned char)p[1];
	if (!close_code_allowed(c))
		return -1;
	if (base_utf8_validate(&st, (const unsigned char *)p + 2, len - 2) < 0 || st != 0)
		return -1;
	*code = (uint16_t)c;
	return 0;
}
