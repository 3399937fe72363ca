/*
 * base64.c: RFC 4648 base64, standard alphabet with padding, and base64url
 * without padding for ids.
 *
 * The decoder is strict so that every accepted input has exactly one
 * encoding: characters outside the alphabet, misplaced or excess padding, a
 * length that leaves a lone character, and non-zero unused bits in the last
 * character are all rejected. Missing padding is accepted, as browsers'
 * atob() does.
 */
#include "base_internal.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* One more than the 6-bit value for the standard alphabet; 0 for everything else. */
static const uint8_t b64_dec1[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64};

static int b64_val(unsigned char c)
{
	return (int)b64_dec1[c] - 1;
}

size_t base_base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

static size_t encode(const unsigned char *in, size_t len, char *out, const char *alpha, int pad)
{
	size_t i = 0, o = 0;

	for (; len - i >= 3; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		out[o++] = alpha[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = alpha[v >> 18];
		out[o++] = alpha[(v >> 12) & 63];
		out[o++] = alpha[(v >> 6) & 63];
		if (pad)
			out[o++] = '=';
	}
	return o;
}

size_t base_base64_encode(const void *in, size_t len, char *out)
{
	return encode(in, len, out, b64_std, 1);
}

size_t base__base64url_encode(const void *in, size_t len, char *out)
{
	return encode(in, len, out, b64_url, 0);
}

ssize_t base_base64_decode(const char *in, size_t len, void *outp)
{
	const unsigned char *s = (const unsigned char *)in;
	unsigned char *out = outp;
	size_t i = 0, o = 0, tail;

	/* Strip at most two '=' from a padded input, which must then be whole quads. */
	if (len > 0 && s[len - 1] == '=') {
		if (len % 4 != 0)
			return -1;
		len--;
		if (s[len - 1] == '=')
			len--;
	}
	tail = len % 4;
	if (tail == 1)
		return -1;
	/*
	 * Each quad is read completely before its three bytes are written, and the
	 * output never passes the input, so decoding in place (out == in) is safe.
	 */
	for (; len - i >= 4; i += 4) {
		int a = b64_val(s[i]), b = b64_val(s[i + 1]);
		int c = b64_val(s[i + 2]), d = b64_val(s[i + 3]);

		if ((a | b | c | d) < 0)
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		out[o++] = (unsigned char)(b << 4 | c >> 2);
		out[o++] = (unsigned char)(c << 6 | d);
	}
	if (tail == 2) {
		int a = b64_val(s[i]), b = b64_val(s[i + 1]);

		if ((a | b) < 0 || (b & 0x0f) != 0)
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
	} else if (tail == 3) {
		int a = b64_val(s[i]), b = b64_val(s[i + 1]), c = b64_val(s[i + 2]);

		if ((a | b | c) < 0 || (c & 0x03) != 0)
			return -1;
		out[o++] = (unsigned char)(a << 2 | b >> 4);
		out[o++] = (unsigned char)(b << 4 | c >> 2);
	}
	return (ssize_t)o;
}
