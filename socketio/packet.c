/*
 * packet.c: the text form of Socket.IO v5 packets.
 *
 *   <type>[<attachments>-][<nsp>,][<id>][<json>]
 *
 * Every message a client sends goes through sio_packet_decode, so it reads
 * the header with a few byte tests and validates the JSON in the same pass
 * that finds the event name and its arguments (sio__json_split). Nothing is
 * copied or allocated: the packet holds slices of the caller's buffer.
 *
 * Validation follows socket.io-parser's Decoder (4.2.x) with the bounds
 * packet.h promises, and is stricter in a few places where the reference
 * accepts text no real client writes and gives it a surprising meaning
 * (its type, attachment and id fields go through JavaScript's Number(), so
 * it reads "", " " or "\n" as the number 0):
 *  - the type is one of the digits 0-6 (the reference takes an empty
 *    message or a leading space as CONNECT);
 *  - the attachment count is decimal digits (Number() would also take
 *    " 1", "+1", "0x1" or "1e0");
 *  - an ack id has at most 15 digits, so that it is exact as a JavaScript
 *    number (the reference silently rounds longer ones);
 *  - JSON data may not start with whitespace: the reference reads that
 *    whitespace as an ack id of 0;
 *  - EVENT, ACK and CONNECT_ERROR need data (the reference lets them come
 *    without), and an event name must be a string (the reference also
 *    takes a number).
 * The attachment limit is SIO_MAX_ATTACHMENTS (the reference's Decoder
 * defaults to 10).
 */
#include <assert.h>

#include "packet.h"
#include "socketio_internal.h"

/* Ack ids longer than this could not be represented exactly by a JavaScript peer. */
#define SIO_ID_MAX_DIGITS 15

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * The names socket.io-parser refuses as event names. name holds a string's
 * contents, still escaped when escaped is set.
 */
static int is_reserved_event(const char *name, size_t len, int escaped)
{
	char tmp[84]; /* the longest reserved name, 14 bytes, with every byte escaped as \uXXXX */
	ssize_t n;

	if (escaped) {
		if (len > sizeof(tmp))
			return 0;
		n = sio_json_unescape(name, len, tmp);
		if (n < 0)
			return 0;
		name = tmp;
		len = (size_t)n;
	}
	switch (len) {
	case 7:
		return memcmp(name, "connect", 7) == 0;
	case 10:
		return memcmp(name, "disconnect", 10) == 0;
	case 11:
		return memcmp(name, "newListener", 11) == 0;
	case 13:
		return memcmp(name, "connect_error", 13) == 0 ||
		       memcmp(name, "disconnecting", 13) == 0;
	case 14:
		return memcmp(name, "removeListener", 14) == 0;
	default:
		return 0;
	}
}

int sio__packet_check_data(sio_packet *p, const char **err)
{
	sio__json_split_t s;
	int kind = SIO__JSON_NONE;

	/* Separate stores: a chained struct assignment reads each one back. */
	p->event = (base_slice){p->data.base, 0};
	p->args = (base_slice){p->data.base, 0};
	p->event_escaped = 0;
	if (p->data.len > 0) {
		kind = sio__json_split(p->data.base, p->data.len, &s);
		if (kind < 0) {
			*err = "invalid JSON payload";
			return -1;
		}
	}
	switch (p->type) {
	case SIO_CONNECT:
		if (kind != SIO__JSON_NONE && kind != SIO__JSON_OBJECT)
			goto bad;
		return 0;
	case SIO_DISCONNECT:
		if (kind != SIO__JSON_NONE)
			goto bad;
		return 0;
	case SIO_CONNECT_ERROR:
		if (kind != SIO__JSON_OBJECT && kind != SIO__JSON_STRING)
			goto bad;
		return 0;
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		if (kind != SIO__JSON_ARRAY || s.first_kind != SIO__JSON_STRING)
			goto bad;
		if (is_reserved_event(s.first.base, s.first.len, s.escaped)) {
			*err = "reserved event name";
			return -1;
		}
		p->event = s.first;
		p->event_escaped = s.escaped;
		p->args = s.rest;
		return 0;
	case SIO_ACK:
	case SIO_BINARY_ACK:
		if (kind != SIO__JSON_ARRAY)
			goto bad;
		p->args = s.inside;
		return 0;
	}
bad:
	*err = "invalid payload";
	return -1;
}

int sio_packet_decode(const char *buf, size_t len, sio_packet *p, const char **err)
{
	const char *s = buf, *end = buf + len, *start;
	unsigned type, n;
	int64_t id;

	p->nsp = BASE_SLICE_LIT("/");
	p->id = -1;
	p->attachments = 0;
	p->data = (base_slice){end, 0};
	p->event = (base_slice){end, 0};
	p->args = (base_slice){end, 0};
	p->event_escaped = 0;

	if (len == 0) {
		*err = "empty packet";
		return -1;
	}
	type = (unsigned)(unsigned char)*s - '0';
	if (type > SIO_BINARY_ACK) {
		*err = "unknown packet type";
		return -1;
	}
	p->type = (sio_packet_type)type;
	s++;

	if (type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK) {
		start = s;
		n = 0;
		while (s < end && is_digit(*s)) {
			/* Stop accumulating once past the limit; the digits still have to end in '-'. */
			if (n <= SIO_MAX_ATTACHMENTS)
				n = n * 10 + (unsigned)(*s - '0');
			s++;
		}
		if (s == start || s == end || *s != '-' || n == 0) {
			*err = "illegal attachments";
			return -1;
		}
		if (n > SIO_MAX_ATTACHMENTS) {
			*err = "too many attachments";
			return -1;
		}
		p->attachments = n;
		s++;
	}

	/* A namespace runs to the first comma, or to the end when there is none. */
	if (s < end && *s == '/') {
		start = s;
		s = memchr(s, ',', (size_t)(end - s));
		if (s == NULL)
			s = end;
		p->nsp = (base_slice){start, (size_t)(s - start)};
		if (s < end)
			s++;
	}

	if (s < end && is_digit(*s)) {
		start = s;
		id = 0;
		do {
			if (s - start == SIO_ID_MAX_DIGITS) {
				*err = "ack id too long";
				return -1;
			}
			id = id * 10 + (*s - '0');
			s++;
		} while (s < end && is_digit(*s));
		p->id = id;
	}

	if (s < end) {
		if (sio__json_ws[(unsigned char)*s]) {
			*err = "whitespace before payload";
			return -1;
		}
		p->data = (base_slice){s, (size_t)(end - s)};
	}
	return sio__packet_check_data(p, err);
}

static size_t dec_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static char *put_dec(char *w, uint64_t v, size_t n)
{
	for (size_t i = n; i > 0; i--) {
		w[i - 1] = (char)('0' + v % 10);
		v /= 10;
	}
	return w + n;
}

static int nsp_is_root(base_slice nsp)
{
	return nsp.len == 0 || (nsp.len == 1 && nsp.base[0] == '/');
}

/* The header's exact length, so that one reservation covers the whole packet. */
static size_t header_len(base_slice nsp, int64_t id, unsigned attachments)
{
	size_t n = 1;

	if (attachments > 0)
		n += dec_len(attachments) + 1;
	if (!nsp_is_root(nsp))
		n += nsp.len + 1;
	if (id >= 0)
		n += dec_len((uint64_t)id);
	return n;
}

/* Writes the header into room reserved by the caller; returns the position after it. */
static char *put_header(char *w, sio_packet_type type, base_slice nsp, int64_t id,
                        unsigned attachments)
{
	/* A comma ends the namespace on the wire: one inside it could not be read back. */
	assert(nsp.len == 0 || memchr(nsp.base, ',', nsp.len) == NULL);
	assert(attachments == 0 || type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK);
	*w++ = (char)('0' + type);
	if (attachments > 0) {
		w = put_dec(w, attachments, dec_len(attachments));
		*w++ = '-';
	}
	if (!nsp_is_root(nsp)) {
		memcpy(w, nsp.base, nsp.len);
		w += nsp.len;
		*w++ = ',';
	}
	if (id >= 0)
		w = put_dec(w, (uint64_t)id, dec_len((uint64_t)id));
	return w;
}

void sio_packet_encode(base_buf *out, sio_packet_type type, base_slice nsp, int64_t id,
                       unsigned attachments, base_slice data)
{
	size_t h = header_len(nsp, id, attachments);
	char *w;

	if (data.len > SIZE_MAX - h)
		base_oom("sio_packet_encode", SIZE_MAX);
	base_buf_reserve(out, h + data.len);
	w = put_header(out->data + out->len, type, nsp, id, attachments);
	if (data.len > 0)
		memcpy(w, data.base, data.len);
	out->len += h + data.len;
}

/*
 * Writes header, '[', optionally the name as a JSON string, optionally ','
 * and args, and ']', sized exactly first so that one reservation and plain
 * stores do it all: this encodes every broadcast.
 */
static void encode_array(base_buf *out, sio_packet_type type, base_slice nsp, int64_t id,
                         unsigned attachments, const base_slice *name, base_slice args)
{
	size_t h = header_len(nsp, id, attachments), n = 0, total;
	char *w;

	if (name != NULL) {
		if (name->len > SIZE_MAX / 8)
			base_oom("sio_packet_encode", SIZE_MAX);
		n = sio__json_escaped_len(name->base, name->len);
	}
	/* Header, brackets, the quoted name, a comma: never near SIZE_MAX unless args is. */
	total = h + 2 + (name ? n + 2 : 0) + (name && args.len > 0 ? 1 : 0);
	if (args.len > SIZE_MAX - total)
		base_oom("sio_packet_encode", SIZE_MAX);
	base_buf_reserve(out, total + args.len);
	w = put_header(out->data + out->len, type, nsp, id, attachments);
	*w++ = '[';
	if (name != NULL) {
		*w++ = '"';
		if (n == name->len) {
			memcpy(w, name->base, n);
			w += n;
		} else {
			w = sio__json_put_escaped(w, name->base, name->len);
		}
		*w++ = '"';
		if (args.len > 0)
			*w++ = ',';
	}
	if (args.len > 0) {
		memcpy(w, args.base, args.len);
		w += args.len;
	}
	*w = ']';
	out->len += total + args.len;
}

void sio_packet_encode_event(base_buf *out, base_slice nsp, int64_t id, unsigned attachments,
                             base_slice event, base_slice args)
{
	encode_array(out, attachments > 0 ? SIO_BINARY_EVENT : SIO_EVENT, nsp, id, attachments,
	             &event, args);
}

void sio_packet_encode_ack(base_buf *out, base_slice nsp, int64_t id, unsigned attachments,
                           base_slice args)
{
	encode_array(out, attachments > 0 ? SIO_BINARY_ACK : SIO_ACK, nsp, id, attachments, NULL,
	             args);
}
