/*
 * packet.h: the Socket.IO v5 packet codecs. Pure: no I/O; decoders do not
 * allocate and return slices into the caller's buffer.
 *
 * Internally a packet's data is always JSON text. Binary attachments travel
 * beside it as separate byte slices, referenced from the JSON by
 * {"_placeholder":true,"num":N} objects, exactly as the default parser puts
 * them on the wire. The msgpack parser converts to and from this form.
 */
#ifndef SIO_PACKET_H
#define SIO_PACKET_H

#include "base/base.h"

#define SIO_PACKET_TYPE_MAP(X) \
	X(CONNECT, 0)          \
	X(DISCONNECT, 1)       \
	X(EVENT, 2)            \
	X(ACK, 3)              \
	X(CONNECT_ERROR, 4)    \
	X(BINARY_EVENT, 5)     \
	X(BINARY_ACK, 6)

typedef enum {
#define SIO_PT_ENUM(name, val) SIO_##name = (val),
	SIO_PACKET_TYPE_MAP(SIO_PT_ENUM)
#undef SIO_PT_ENUM
} sio_packet_type;

/** Most attachments accepted in one packet (the reference Decoder's maxAttachments). */
#define SIO_MAX_ATTACHMENTS 10

typedef struct {
	sio_packet_type type;
	base_slice nsp;       /* "/" when absent on the wire */
	int64_t id;           /* ack id, -1 when absent */
	unsigned attachments; /* binary types: number of attachments announced */
	base_slice data;      /* the JSON payload as sent; empty when absent */
	/*
	 * EVENT / BINARY_EVENT: event is the first array element's string
	 * contents, without quotes and still JSON-escaped (event_escaped = 1
	 * when it holds a backslash); args is the text of the remaining
	 * elements, without the brackets (e.g. `1,{"a":2}`), empty when none.
	 * ACK / BINARY_ACK: args is the array's contents. Other types: empty.
	 */
	base_slice event;
	int event_escaped;
	base_slice args;
} sio_packet;

/**
 * Decodes the text form of a packet (one Engine.IO message):
 *   <type>[<attachments>-][<nsp>,][<id>][<json>]
 * and validates it as the reference parser does: a known type; a namespace
 * starting with '/'; ack id digits (at most 15); JSON that is well-formed
 * (fully validated) and of the right shape: CONNECT an object or nothing,
 * DISCONNECT nothing, CONNECT_ERROR an object or string, EVENT a non-empty
 * array whose first element is a string (not a reserved name: connect,
 * connect_error, disconnect, disconnecting, newListener, removeListener),
 * ACK an array; attachments 1..SIO_MAX_ATTACHMENTS only on binary types.
 * Returns 0, or -1 with *err set to a static description.
 */
int sio_packet_decode(const char *buf, size_t len, sio_packet *p, const char **err);

/**
 * Validates a complete JSON text (RFC 8259, nesting at most 64 deep).
 * Returns 0 or -1.
 */
int sio_json_validate(const char *buf, size_t len);

/**
 * Unescapes a JSON string's contents (without quotes) into out, which needs
 * len bytes. Returns the length written, or -1 when invalid.
 */
ssize_t sio_json_unescape(const char *in, size_t len, char *out);

/**
 * Appends `s` as a JSON string (with quotes and escapes) to out.
 */
void sio_json_append_string(base_buf *out, const char *s, size_t len);

/**
 * Encodes a packet header and payload in the text form into out:
 * type, "<attachments>-" when attachments > 0 (the type must then be a
 * binary one), nsp (omitted when "/"), "," after a non-"/" nsp, id when
 * >= 0, then data verbatim. The encoders never fail (out of memory aborts,
 * see base.h), so a packet is never sent truncated.
 */
void sio_packet_encode(base_buf *out, sio_packet_type type, base_slice nsp, int64_t id,
                       unsigned attachments, base_slice data);

/**
 * Encodes an EVENT (or BINARY_EVENT when attachments > 0) with the event
 * name (raw, escaped here) and args (JSON text of the elements after the
 * name, without brackets; may be empty): `2/nsp,12["name",<args>]`.
 */
void sio_packet_encode_event(base_buf *out, base_slice nsp, int64_t id, unsigned attachments,
                             base_slice event, base_slice args);
/** Encodes an ACK (or BINARY_ACK) with args: `3/nsp,12[<args>]`. */
void sio_packet_encode_ack(base_buf *out, base_slice nsp, int64_t id, unsigned attachments,
                           base_slice args);

/* ---- socket.io-msgpack-parser wire format ------------------------------ */

/*
 * With the msgpack parser each packet is one binary Engine.IO message: a
 * msgpack map {"type": int, "nsp": str, "data"?: any, "id"?: int} where
 * binary values are msgpack bin objects inline.
 */

/**
 * Decodes a msgpack packet into p, converting "data" to JSON text appended
 * to json_out (p->data, p->event and p->args then point into json_out,
 * which must not be modified until p is no longer used) and each bin value
 * to a placeholder, whose bytes are sliced from buf into attachments (up to
 * max_attachments; p->attachments is the count). Returns 0, or -1 with *err.
 * Validation of shapes is as for sio_packet_decode. A packet with bin values
 * comes out as BINARY_EVENT / BINARY_ACK, as the text form would.
 */
int sio_msgpack_decode(const char *buf, size_t len, base_buf *json_out, sio_packet *p,
                       base_slice *attachments, size_t max_attachments, const char **err);

/**
 * Encodes a packet in the msgpack form into out: data is JSON text (may be
 * empty: no "data" key) whose placeholders are replaced by the matching
 * attachment as a bin object; BINARY_EVENT / BINARY_ACK are written as
 * EVENT / ACK (the msgpack parser has no separate binary types). Returns 0, BASE_ENOMEM, or BASE_EINVAL when
 * data is not valid JSON or a placeholder has no attachment.
 */
int sio_msgpack_encode(base_buf *out, sio_packet_type type, base_slice nsp, int64_t id,
                       base_slice data, const base_slice *attachments, size_t n_attachments);

/**
 * Encodes an EVENT (name set) or ACK (name NULL) in the msgpack form without
 * going through JSON text for the whole array: "data" is the array of the
 * name (raw, or JSON-escaped string contents when name_escaped) then the
 * values of list, JSON text without brackets ("1,{\"a\":2}", may be
 * empty). Placeholders become bin objects as in sio_msgpack_encode. Returns
 * 0, BASE_ENOMEM, or BASE_EINVAL (list not valid JSON, a placeholder
 * without its attachment).
 */
int sio_msgpack_encode_list(base_buf *out, sio_packet_type type, base_slice nsp, int64_t id,
                            const base_slice *name, int name_escaped, base_slice list,
                            const base_slice *attachments, size_t n_attachments);

/**
 * Appends the JSON value json as one msgpack value to out, each
 * placeholder replaced by its attachment as a bin object (for messages
 * between nodes). Returns 0, BASE_ENOMEM, or BASE_EINVAL (invalid JSON, a
 * placeholder without its attachment).
 */
int sio_msgpack_pack_json(base_buf *out, base_slice json, const base_slice *attachments,
                          size_t n_attachments);

/**
 * Converts one whole msgpack document (any value) to JSON text appended to
 * json_out; bin values become placeholders whose bytes are sliced from buf
 * into attachments (at most max_attachments; *n_attachments is the count).
 * Returns 0, or -1 with *err.
 */
int sio_msgpack_to_json(const char *buf, size_t len, base_buf *json_out, base_slice *attachments,
                        size_t max_attachments, size_t *n_attachments, const char **err);

#endif
