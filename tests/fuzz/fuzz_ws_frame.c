/*
 * fuzz_ws_frame.c: libFuzzer driver for engineio/http/ws_frame.c.
 *
 * Input: one configuration byte, then a stream of frames. Bit 0 of the first
 * byte sets require_mask, bits 1-2 pick max_payload and bits 3-4 the message
 * limit, bit 5 negotiates permessage-deflate. Frames are parsed one after
 * another as a connection would, with every result checked against what the
 * header promises. With permessage-deflate, a message whose first frame has
 * RSV1 is gathered and inflated as the connection does (ws_deflate.c): the
 * result is within the limit or refused with 1007 or 1009, and a good one
 * survives a deflate and inflate round trip.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "http/ws_deflate.h"
#include "http/ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t limits[4] = {UINT64_MAX, 0, 125, 65536};

static void check_unmask(const char *p, size_t n, const uint8_t mask[4], uint64_t offset)
{
	char *fast = malloc(n ? n : 1), *slow = malloc(n ? n : 1);

	memcpy(fast, p, n);
	memcpy(slow, p, n);
	http_ws_unmask(fast, n, mask, offset);
	for (size_t i = 0; i < n; i++)
		slow[i] ^= (char)mask[(offset + i) & 3];
	if (n > 0 && memcmp(fast, slow, n) != 0)
		abort();
	/* Unmasking in two pieces gives the same bytes as in one. */
	if (n > 1) {
		size_t cut = (size_t)(offset % n);

		memcpy(slow, p, n);
		http_ws_unmask(slow, cut, mask, offset);
		http_ws_unmask(slow + cut, n - cut, mask, offset + cut);
		if (memcmp(fast, slow, n) != 0)
			abort();
	}
	free(fast);
	free(slow);
}

static http_pmd *pmd; /* kept across inputs, as a server keeps it across messages */

/* Inflates a whole compressed message and checks the outcome. */
static void check_inflate(const char *p, size_t n, uint64_t max_message)
{
	size_t max = max_message > (1u << 20) ? (1u << 20) : (size_t)max_message;
	base_buf out = BASE_BUF_INIT, again = BASE_BUF_INIT, z = BASE_BUF_INIT;
	int rc = http_pmd_inflate(&pmd, p, n, max, &out);

	if (rc != 0 && rc != HTTP_WS_CLOSE_BAD_DATA && rc != HTTP_WS_CLOSE_TOO_BIG)
		abort();
	if (rc == 0) {
		base_slice s = {out.data, out.len};

		if (out.len > max)
			abort();
		/* What we send back inflates to the same bytes. */
		if (http_pmd_deflate(&pmd, &s, 1, &z) != 0 ||
		    http_pmd_inflate(&pmd, z.data, z.len, max, &again) != 0 ||
		    again.len != out.len || (out.len > 0 && memcmp(again.data, out.data, out.len)))
			abort();
	}
	base_buf_free(&out);
	base_buf_free(&again);
	base_buf_free(&z);
}

static void check_reencode(const char *buf, const http_ws_frame *f)
{
	char h[HTTP_WS_MAX_HEADER];
	size_t n;

	/* The parser accepts only minimal headers, RSV1 the one extension bit: encoding is exact. */
	if (f->masked)
		n = http_ws_frame_header_masked(h, (int)f->fin, f->opcode, f->payload_len, f->mask);
	else if (f->rsv1)
		n = http_ws_frame_header_rsv1(h, (int)f->fin, f->opcode, f->payload_len);
	else
		n = http_ws_frame_header(h, (int)f->fin, f->opcode, f->payload_len);
	if (f->rsv1)
		h[0] = (char)(h[0] | 0x40);
	if (n != f->header_len || memcmp(h, buf, n) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	http_ws_seq seq = {0};
	uint64_t max_payload, max_message;
	int require_mask, deflate;
	base_buf msg = BASE_BUF_INIT; /* the compressed message in progress */
	int compressed = 0;
	size_t at = 1;
	int frames = 0;

	if (size < 1)
		return 0;
	require_mask = data[0] & 1;
	max_payload = limits[(data[0] >> 1) & 3];
	max_message = limits[(data[0] >> 3) & 3];
	deflate = (data[0] >> 5) & 1;

	while (at < size && frames++ < 64) {
		/* A heap copy of exactly what is left, so ASan sees any over-read. */
		size_t left = size - at;
		char *buf = malloc(left);
		http_ws_frame f;
		const char *err = NULL;
		ssize_t r;

		memcpy(buf, data + at, left);
		r = http_ws_frame_parse_ext(buf, left, require_mask, deflate, max_payload, &f,
		                            &err);
		if (r == -2) {
			if (left >= HTTP_WS_MAX_HEADER)
				abort();
			free(buf);
			break;
		}
		if (r == -1) {
			if (err == NULL || (f.close_code != HTTP_WS_CLOSE_PROTOCOL &&
			                    f.close_code != HTTP_WS_CLOSE_TOO_BIG))
				abort();
			free(buf);
			break;
		}
		if (r < 2 || (size_t)r != f.header_len || f.header_len > left ||
		    f.header_len > HTTP_WS_MAX_HEADER || f.payload_len > max_payload ||
		    (require_mask && !f.masked) || f.close_code != 0)
			abort();
		if ((f.opcode & 8) && (!f.fin || f.payload_len > 125))
			abort();
		if (f.rsv1 &&
		    (!deflate || (f.opcode != HTTP_WS_OP_TEXT && f.opcode != HTTP_WS_OP_BINARY)))
			abort();
		check_reencode(buf, &f);
		/* Every shorter prefix of a good header is partial. */
		for (size_t k = 0; k < f.header_len; k++) {
			http_ws_frame g;

			if (http_ws_frame_parse_ext(buf, k, require_mask, deflate, max_payload, &g,
			                            &err) != -2)
				abort();
		}

		size_t avail = left - f.header_len;
		size_t plen = f.payload_len < avail ? (size_t)f.payload_len : avail;
		char *payload = buf + f.header_len;

		check_unmask(payload, plen, f.mask, f.payload_len);
		if (f.masked)
			http_ws_unmask(payload, plen, f.mask, 0);
		if (f.opcode == HTTP_WS_OP_CLOSE && plen == f.payload_len) {
			uint16_t code = 0;

			if (http_ws_close_payload_parse(payload, plen, &code) == 0 && plen >= 2 &&
			    code != (uint16_t)((unsigned char)payload[0] << 8 |
			                       (unsigned char)payload[1]))
				abort();
		} else if (!(f.opcode & 8)) {
			int rc = http_ws_seq_next(&seq, &f, max_message);

			if (rc == 0) {
				if (seq.size > max_message || seq.in_message != !f.fin)
					abort();
				if (f.opcode != HTTP_WS_OP_CONT) {
					compressed = (int)f.rsv1;
					msg.len = 0;
				}
				if (compressed && plen == f.payload_len) {
					base_buf_append(&msg, payload, plen);
					if (f.fin)
						check_inflate(msg.data ? msg.data : "", msg.len,
						              max_message);
				}
			} else if (rc != HTTP_WS_CLOSE_PROTOCOL && rc != HTTP_WS_CLOSE_TOO_BIG) {
				abort();
			} else {
				free(buf);
				break;
			}
		}
		free(buf);
		if (plen < f.payload_len)
			break;
		at += f.header_len + plen;
	}
	base_buf_free(&msg);
	return 0;
}
