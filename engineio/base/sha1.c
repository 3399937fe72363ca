/*
 * sha1.c: SHA-1 (FIPS 180-4, section 6.1), for the WebSocket handshake's
 * Sec-WebSocket-Accept (RFC 6455 section 4.2.2) and nothing that needs
 * collision resistance.
 *
 * Ours rather than OpenSSL's SHA1(): in OpenSSL 3 that call goes through
 * the provider machinery, whose first use pages in about 2 MB of libcrypto
 * and allocates its tables, in every server process (docs/bench/scale.md).
 * One hash of 60 bytes per WebSocket handshake needs none of it.
 */
#include "base_internal.h"

static inline uint32_t rol32(uint32_t x, unsigned n)
{
	return (x << n) | (x >> (32 - n));
}

/* Processes one 64-byte block into h. */
static void sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80];
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

	for (unsigned t = 0; t < 16; t++)
		w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
		       (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
	for (unsigned t = 16; t < 80; t++)
		w[t] = rol32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
	for (unsigned t = 0; t < 80; t++) {
		uint32_t f, k;
		if (t < 20) {
			f = (b & c) | (~b & d);
			k = 0x5a827999u;
		} else if (t < 40) {
			f = b ^ c ^ d;
			k = 0x6ed9eba1u;
		} else if (t < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8f1bbcdcu;
		} else {
			f = b ^ c ^ d;
			k = 0xca62c1d6u;
		}
		uint32_t tmp = rol32(a, 5) + f + e + k + w[t];
		e = d;
		d = c;
		c = rol32(b, 30);
		b = a;
		a = tmp;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void base_sha1(const void *data, size_t len, uint8_t out[BASE_SHA1_LEN])
{
	const uint8_t *p = data;
	uint32_t h[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u};
	uint64_t bits = (uint64_t)len * 8;
	uint8_t last[128];
	size_t rest, n;

	for (; len >= 64; len -= 64, p += 64)
		sha1_block(h, p);
	/* Padding: 0x80, zeros, then the length in bits (big-endian), to a whole block or two. */
	rest = len;
	memcpy(last, p, rest);
	last[rest++] = 0x80;
	n = rest + 8 <= 64 ? 64 : 128;
	memset(last + rest, 0, n - rest);
	for (unsigned i = 0; i < 8; i++)
		last[n - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha1_block(h, last);
	if (n == 128)
		sha1_block(h, last + 64);
	for (unsigned i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}
