/*
 * ws_deflate.h: permessage-deflate (RFC 7692) with no context takeover
 * either way, so that one raw deflate stream and one inflate stream (an
 * http_pmd, made on first use) serve every connection of a server.
 * Depends on base and zlib only (the frame fuzzer builds it alone).
 */
#ifndef HTTP_WS_DEFLATE_H
#define HTTP_WS_DEFLATE_H

#include <stddef.h>

#include "base/base.h"

typedef struct http_pmd http_pmd;

/**
 * Picks the first acceptable permessage-deflate offer in a
 * Sec-WebSocket-Extensions value (hdr may be NULL) and writes the whole
 * response header line, CRLF included, into out. Returns 1 when one is
 * accepted, 0 when none is (the handshake goes on without the extension).
 */
int http_pmd_negotiate(const base_slice *hdr, char *out, size_t outlen);

/**
 * Inflates one message (without its 00 00 ff ff tail) into out, replacing
 * its contents, never past max bytes. Returns 0, or the WebSocket close
 * code: 1009 when the message inflates past max, 1007 when it is not
 * deflate data, 1011 when zlib cannot start.
 */
int http_pmd_inflate(http_pmd **z, const char *in, size_t n, size_t max, base_buf *out);

/** Deflates the parts as one message into out (replaced), tail removed. 0 or -1. */
int http_pmd_deflate(http_pmd **z, const base_slice *parts, size_t n, base_buf *out);

/** The compressed chunk last cached for (src, off, len), or NULL. Borrowed. */
base_chunk *http_pmd_cached(http_pmd *z, const base_chunk *src, size_t off, size_t len);
/** Caches out as the compressed form of (src, off, len); both are referenced. */
void http_pmd_cache(http_pmd **z, base_chunk *src, size_t off, size_t len, base_chunk *out);
/** Frees the streams and the cache. NULL is allowed. */
void http_pmd_free(http_pmd *z);

#endif
