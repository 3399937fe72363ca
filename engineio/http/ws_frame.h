/*
 * ws_frame.h: the RFC 6455 framing codec. Pure: no I/O, no allocation.
 * Shaped like picohttpparser: parse functions return bytes consumed,
 * -2 when the input is incomplete, -1 when it is invalid.
 */
#ifndef HTTP_WS_FRAME_H
#define HTTP_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
	HTTP_WS_OP_CONT = 0x0,
	HTTP_WS_OP_TEXT = 0x1,
	HTTP_WS_OP_BINARY = 0x2,
	HTTP_WS_OP_CLOSE = 0x8,
	HTTP_WS_OP_PING = 0x9,
	HTTP_WS_OP_PONG = 0xA,
};

/* Close codes we send. */
enum {
	HTTP_WS_CLOSE_NORMAL = 1000,
	HTTP_WS_CLOSE_GOING_AWAY = 1001,
	HTTP_WS_CLOSE_PROTOCOL = 1002,
	HTTP_WS_CLOSE_NO_STATUS = 1005, /* never sent: "none given" */
	HTTP_WS_CLOSE_ABNORMAL = 1006,  /* never sent: "connection dropped" */
	HTTP_WS_CLOSE_BAD_DATA = 1007,
	HTTP_WS_CLOSE_POLICY = 1008,
	HTTP_WS_CLOSE_TOO_BIG = 1009,
	HTTP_WS_CLOSE_INTERNAL = 1011,
};

/** Maximum bytes of a frame header (2 + 8 length + 4 mask). */
#define HTTP_WS_MAX_HEADER 14

typedef struct {
	unsigned fin;    /* 1 on the last frame of a message */
	unsigned opcode; /* HTTP_WS_OP_* */
	unsigned masked; /* 1 when a masking key is present */
	unsigned rsv1;   /* 1 when RSV1 is set (permessage-deflate: a compressed message) */
	uint8_t mask[4];
	uint64_t payload_len;
	size_t header_len;   /* bytes before the payload */
	uint16_t close_code; /* on -1: the close code to answer with (1002 or 1009) */
} http_ws_frame;

/**
 * Parses one frame header from buf. On success returns header_len and fills
 * f; the payload (f->payload_len bytes) follows and may not have arrived yet.
 * Returns -2 when the header itself is incomplete, -1 when invalid: reserved
 * bits set (no extensions are negotiated), unknown opcode, a control frame
 * fragmented or over 125 bytes, a non-minimal or 64-bit-overflowing length,
 * no mask when require_mask, or payload_len > max_payload. On -1,
 * f->close_code is 1009 for the size limit and 1002 otherwise, and *err a
 * static description.
 */
ssize_t http_ws_frame_parse(const char *buf, size_t len, int require_mask, uint64_t max_payload,
                            http_ws_frame *f, const char **err);

/**
 * As http_ws_frame_parse, with allow_rsv1 set when permessage-deflate (RFC
 * 7692) is negotiated: RSV1 is then accepted on the first frame of a data
 * message (text or binary), and still refused (1002) on continuation and
 * control frames. RSV2 and RSV3 are always refused.
 */
ssize_t http_ws_frame_parse_ext(const char *buf, size_t len, int require_mask, int allow_rsv1,
                                uint64_t max_payload, http_ws_frame *f, const char **err);

/** Writes an unmasked frame header with RSV1 set (a compressed message). */
size_t http_ws_frame_header_rsv1(char out[HTTP_WS_MAX_HEADER], int fin, unsigned opcode,
                                 uint64_t len);

/**
 * XORs n bytes at p with mask, as if they started at byte offset of the
 * payload (so a payload can be unmasked in pieces). In place.
 */
void http_ws_unmask(char *p, size_t n, const uint8_t mask[4], uint64_t offset);

/**
 * Writes an unmasked (server) frame header for a payload of len bytes into
 * out. Returns the header length (2, 4 or 10).
 */
size_t http_ws_frame_header(char out[HTTP_WS_MAX_HEADER], int fin, unsigned opcode, uint64_t len);

/**
 * Writes a masked (client) frame header with mask into out. Returns the
 * header length (6, 8 or 14). The caller masks the payload with http_ws_unmask.
 */
size_t http_ws_frame_header_masked(char out[HTTP_WS_MAX_HEADER], int fin, unsigned opcode,
                                   uint64_t len, const uint8_t mask[4]);

/*
 * Message-level rules over a sequence of data frames: a continuation only
 * inside a fragmented message, no new data frame inside one, the message
 * size limit over all fragments. Control frames may come between fragments
 * and are not passed here.
 */
typedef struct {
	unsigned in_message; /* 1 between a non-final data frame and its final fragment */
	unsigned opcode;     /* opcode of the message in progress */
	uint64_t size;       /* bytes of the message so far */
} http_ws_seq;

/**
 * Checks data frame f against the sequence state and advances it.
 * Returns 0, or the close code to answer with (1002 protocol, 1009 size).
 */
int http_ws_seq_next(http_ws_seq *s, const http_ws_frame *f, uint64_t max_message);

/**
 * Validates a close frame payload (after unmasking): empty, or a 2-byte
 * code allowed on the wire (1000-1003, 1007-1011, 3000-4999) and a UTF-8
 * reason. Returns 0 and sets *code (1005 when empty), or -1.
 */
int http_ws_close_payload_parse(const char *p, size_t len, uint16_t *code);

#endif
