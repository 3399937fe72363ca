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

#endif
