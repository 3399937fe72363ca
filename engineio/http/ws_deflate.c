/*
 * ws_deflate.c: permessage-deflate (RFC 7692) for the WebSocket connection.
 *
 * We always answer with server_no_context_takeover and
 * client_no_context_takeover: each message is compressed on its own, by
 * both sides. So one raw deflate stream and one inflate stream serve the
 * whole server (reset per message), and a connection holds no zlib state:
 * only the compressed bytes of a fragmented message in progress, as it
 * would hold the plain bytes without the extension.
 *
 * Offers are taken in the client's order; one we cannot honour (an unknown
 * or repeated parameter, a bad value, server_max_window_bits under 15) is
 * declined and the next one tried. None acceptable: no extension, and the
 * handshake goes on without it.
 */
#include "ws_deflate.h"

#include "ws_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct http_pmd {
	z_stream def, inf;
	int def_ok, inf_ok;
	/* The last chunk compressed by http_ws_send_frames: a broadcast is one
	 * chunk sent to many connections in a row, and without context takeover
	 * its compressed frame is the same for all of them. */
	base_chunk *src;
	size_t src_off, src_len;
	base_chunk *out;
};

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static base_slice trim(const char *a, const char *b)
{
	a = skip_ws(a, b);
	while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
		b--;
	return (base_slice){a, (size_t)(b - a)};
}

static int slice_ieq(base_slice s, const char *lit)
{
	size_t n = strlen(lit);

	if (s.len != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s.base[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != lit[i])
			return 0;
	}
	return 1;
}

/* A window-bits value: 8 to 15, digits only (quotes allowed). -1 when bad. */
static int window_bits(base_slice v)
{
	int n = 0;

	if (v.len >= 2 && v.base[0] == '"' && v.base[v.len - 1] == '"') {
		v.base++;
		v.len -= 2;
	}
	if (v.len < 1 || v.len > 2)
		return -1;
	for (size_t i = 0; i < v.len; i++) {
		if (v.base[i] < '0' || v.base[i] > '9')
			return -1;
		n = n * 10 + (v.base[i] - '0');
	}
	return n >= 8 && n <= 15 ? n : -1;
}

/*
 * One offer: "permessage-deflate; p1; p2=v". Returns 1 when acceptable and
 * sets *server_bits (0 when the client did not give server_max_window_bits).
 */
static int offer_ok(const char *a, const char *b, int *server_bits)
{
	int seen_snct = 0, seen_cnct = 0, seen_smwb = 0, seen_cmwb = 0;
	int first = 1;

	*server_bits = 0;
	while (a <= b) {
		const char *semi = memchr(a, ';', (size_t)(b - a));
		const char *end = semi ? semi : b;
		base_slice tok = trim(a, end), name, val = {NULL, 0};
		const char *eq = memchr(tok.base, '=', tok.len);
		int has_val = eq != NULL;

		if (eq) {
			name = trim(tok.base, eq);
			val = trim(eq + 1, tok.base + tok.len);
		} else {
			name = tok;
		}
		if (first) {
			if (has_val || !slice_ieq(name, "permessage-deflate"))
				return 0;
			first = 0;
		} else if (slice_ieq(name, "server_no_context_takeover")) {
			if (has_val || seen_snct++)
				return 0;
		} else if (slice_ieq(name, "client_no_context_takeover")) {
			if (has_val || seen_cnct++)
				return 0;
		} else if (slice_ieq(name, "server_max_window_bits")) {
			int bits = has_val ? window_bits(val) : -1;

			/* Our deflater always uses a 32 KiB window: a smaller one we cannot promise. */
			if (bits != 15 || seen_smwb++)
				return 0;
			*server_bits = bits;
		} else if (slice_ieq(name, "client_max_window_bits")) {
			/* A window the client may use; we inflate any window up to 15. */
			if ((has_val && window_bits(val) < 0) || seen_cmwb++)
				return 0;
		} else {
			return 0;
		}
		if (!semi)
			break;
		a = semi + 1;
	}
	return !first;
}

int http_pmd_negotiate(const base_slice *hdr, char *out, size_t outlen)
{
	const char *p, *end;

	if (hdr == NULL)
		return 0;
	p = hdr->base;
	end = hdr->base + hdr->len;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *oe = comma ? comma : end;
		int bits;

		if (offer_ok(p, oe, &bits)) {
			int n =
			    snprintf(out, outlen,
			             "Sec-WebSocket-Extensions: permessage-deflate; "
			             "server_no_context_takeover; client_no_context_takeover%s\r\n",
			             bits ? "; server_max_window_bits=15" : "");
			return n > 0 && (size_t)n < outlen;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return 0;
}

static http_pmd *pmd_get(http_pmd **zp)
{
	if (*zp == NULL)
		*zp = calloc(1, sizeof(**zp));
	return *zp;
}

int http_pmd_inflate(http_pmd **zp, const char *in, size_t n, size_t max, base_buf *out)
{
	static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
	http_pmd *z = pmd_get(zp);
	int rc = Z_OK;

	if (z == NULL)
		return HTTP_WS_CLOSE_INTERNAL;
	if (!z->inf_ok) {
		if (inflateInit2(&z->inf, -15) != Z_OK)
			return HTTP_WS_CLOSE_INTERNAL;
		z->inf_ok = 1;
	} else {
		inflateReset(&z->inf);
	}
	out->len = 0;
	/* The message, then the 4 bytes the sender took off its end (RFC 7692 7.2.2). */
	for (int pass = 0; pass < 2 && rc != Z_STREAM_END; pass++) {
		z->inf.next_in = pass == 0 ? (Bytef *)(uintptr_t)in : (Bytef *)(uintptr_t)tail;
		z->inf.avail_in = pass == 0 ? (uInt)n : 4;
		for (;;) {
			char probe;
			size_t room = max - out->len;

			if (room > 65536)
				room = 65536;
			if (room == 0) {
				/* Full: one byte more out means over the limit (a bomb, or too big). */
				z->inf.next_out = (Bytef *)&probe;
				z->inf.avail_out = 1;
			} else {
				base_buf_reserve(out, room);
				z->inf.next_out = (Bytef *)out->data + out->len;
				z->inf.avail_out = (uInt)room;
			}
			rc = inflate(&z->inf, Z_SYNC_FLUSH);
			if (room == 0 && z->inf.avail_out == 0)
				return HTTP_WS_CLOSE_TOO_BIG;
			out->len += room - (room ? z->inf.avail_out : 0);
			if (rc == Z_STREAM_END)
				break;
			if (rc != Z_OK && rc != Z_BUF_ERROR)
				return HTTP_WS_CLOSE_BAD_DATA;
			/* Input used up and the output not full: all of it is out. */
			if (z->inf.avail_out > 0 && (z->inf.avail_in == 0 || rc == Z_BUF_ERROR))
				break;
		}
	}
	return 0;
}

int http_pmd_deflate(http_pmd **zp, const base_slice *parts, size_t n, base_buf *out)
{
	http_pmd *z = pmd_get(zp);
	size_t total = 0;

	if (z == NULL)
		return -1;
	if (!z->def_ok) {
		if (deflateInit2(&z->def, Z_BEST_SPEED, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
		    Z_OK)
			return -1;
		z->def_ok = 1;
	} else {
		deflateReset(&z->def);
	}
	for (size_t i = 0; i < n; i++)
		total += parts[i].len;
	out->len = 0;
	base_buf_reserve(out, deflateBound(&z->def, (uLong)total) + 16);
	for (size_t i = 0; i <= n; i++) {
		int last = i == n;

		z->def.next_in = last ? Z_NULL : (Bytef *)(uintptr_t)parts[i].base;
		z->def.avail_in = last ? 0 : (uInt)parts[i].len;
		do {
			if (out->cap - out->len < 64)
				base_buf_reserve(out, 4096);
			z->def.next_out = (Bytef *)out->data + out->len;
			z->def.avail_out = (uInt)(out->cap - out->len);
			if (deflate(&z->def, last ? Z_SYNC_FLUSH : Z_NO_FLUSH) == Z_STREAM_ERROR)
				return -1;
			out->len = (size_t)((char *)z->def.next_out - out->data);
		} while (z->def.avail_in > 0 || (last && z->def.avail_out == 0));
	}
	/* A sync flush ends with 00 00 ff ff, which the message leaves off. */
	if (out->len >= 4 && memcmp(out->data + out->len - 4, "\0\0\xff\xff", 4) == 0)
		out->len -= 4;
	return 0;
}

base_chunk *http_pmd_cached(http_pmd *z, const base_chunk *src, size_t off, size_t len)
{
	if (z == NULL || z->src != src || z->src_off != off || z->src_len != len)
		return NULL;
	return z->out;
}

void http_pmd_cache(http_pmd **zp, base_chunk *src, size_t off, size_t len, base_chunk *out)
{
	http_pmd *z = pmd_get(zp);

	if (z == NULL)
		return;
	base_chunk_unref(z->src);
	base_chunk_unref(z->out);
	/* The reference on src keeps its address from being reused by another chunk. */
	z->src = base_chunk_ref(src);
	z->src_off = off;
	z->src_len = len;
	z->out = base_chunk_ref(out);
}

void http_pmd_free(http_pmd *z)
{
	if (z == NULL)
		return;
	if (z->def_ok)
		deflateEnd(&z->def);
	if (z->inf_ok)
		inflateEnd(&z->inf);
	base_chunk_unref(z->src);
	base_chunk_unref(z->out);
	free(z);
}
