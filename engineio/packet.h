/*
 * packet.h: the Engine.IO v4 packet and payload codec. Pure: no I/O, no
 * allocation; outputs are slices into the caller's buffer.
 */
#ifndef EIO_PACKET_H
#define EIO_PACKET_H

#include "base/base.h"

typedef enum {
	EIO_OPEN = 0,
	EIO_CLOSE = 1,
	EIO_PING = 2,
	EIO_PONG = 3,
	EIO_MESSAGE = 4,
	EIO_UPGRADE = 5,
	EIO_NOOP = 6,
} eio_packet_type;

/** The record separator between packets of an HTTP long-polling payload. */
#define EIO_RECORD_SEP '\x1e'

typedef struct {
	eio_packet_type type;
	int binary;      /* 1: data is raw bytes (a binary message) */
	base_slice data; /* the packet's data, without the type character */
} eio_packet;

/**
 * Decodes one packet carried by a WebSocket text frame: a type digit '0'..'6'
 * followed by data. Returns 0, or -1 (empty input, unknown type).
 * A WebSocket binary frame is always a binary message: no decoding needed.
 */
int eio_packet_decode(const char *buf, size_t len, eio_packet *p);

/**
 * Decodes the next packet of a polling payload (packets joined with 0x1e;
 * a binary packet is 'b' followed by base64). Binary data is base64-decoded
 * in place, so buf must be writable and p->data points into it.
 * Returns the bytes consumed including a trailing separator (> 0), 0 when
 * len is 0, or -1 when invalid (empty packet, unknown type, bad base64).
 */
ssize_t eio_payload_next(char *buf, size_t len, eio_packet *p);

/**
 * Appends one packet to a polling payload being built in out, adding the
 * separator first when out is not empty. Binary data is written as
 * 'b' + base64. Never fails (out of memory aborts, see base.h).
 */
void eio_payload_append(base_buf *out, eio_packet_type type, int binary, const char *data,
                        size_t len);

/*
 * Engine.IO protocol 3 payloads (packet_v3.c), for allow_eio3. A text
 * payload is a run of "<len>:<packet>", len counting the packet's UTF-16
 * code units (a JavaScript string's length; here: each byte that does not
 * continue a UTF-8 sequence counts one, two from 0xf0 on), a binary message
 * being "b4" + base64. A binary payload (application/octet-stream) is per
 * packet a byte 0 (text) or 1 (binary), the length's decimal digits as
 * bytes 0..9, a byte 0xff, then the packet: text as type digit and data,
 * binary as the type byte 4 and the data.
 */

/**
 * Decodes the next packet of a v3 payload; binary_payload: the binary
 * format. Base64 is decoded in place. Returns the bytes consumed (> 0), 0
 * when len is 0, -1 when invalid. An empty packet ("0:") is consumed with
 * p->type set to -1: nothing to handle.
 */
ssize_t eio3_payload_next(char *buf, size_t len, int binary_payload, eio_packet *p);

/** Appends one packet to a v3 payload (binary data: a message). */
void eio3_payload_append(base_buf *out, int binary_payload, eio_packet_type type, int binary,
                         const char *data, size_t len);

#endif
