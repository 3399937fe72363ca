/*
 * msgpack.c: the socket.io-msgpack-parser wire format.
 *
 * That parser hands each packet object to notepack.io as is, so a packet is
 * one msgpack map holding whatever fields the sender's packet object had:
 * "type", "nsp", "data", "id", and sometimes others ("options" from
 * socket.io-client) that are ignored. There are no binary packet types and
 * no "attachments" field: binary values sit inline in "data".
 *
 * Inside the server a packet's data is JSON text with placeholders (see
 * packet.h), so both directions convert. Decoding reads values the way
 * notepack.io's decoder turns them into JavaScript and writes the JSON
 * that JSON.stringify would write for them:
 *  - bin 8/16/32 and ext 8/16/32 of type 0 are binary (a Node Buffer and an
 *    ArrayBuffer): each becomes a placeholder and an attachment, numbered in
 *    order of appearance;
 *  - fixext 1 of type 0 is undefined: dropped from maps, null in arrays, and
 *    as "data" or "id" the same as absent;
 *  - fixext 8 of type 0 is a Date: its ISO 8601 string (null when invalid);
 *  - any other ext is the pair [type, <binary>];
 *  - map keys are strings, or integers written as decimal strings; other
 *    key types are refused.
 * Strings must be valid UTF-8 (notepack would replace bad bytes; refusing
 * keeps invalid text away from WebSocket text frames).
 *
 * Encoding writes JSON integers (and numbers with an integral value that
 * fits 64 bits, as notepack does for JavaScript numbers) as msgpack
 * integers in the smallest form, other numbers as float64, placeholders as
 * bin, and orders the packet's fields as the Node server does, so that the
 * common packets are byte for byte what a Node server sends.
 *
 * msgpack-c builds a tree in a zone sized by the counts the input
 * announces, so every count and length is first checked against the bytes
 * actually there (prescan), which bounds the zone to a small multiple of
 * the input. msgpack-c's own parser refuses nesting deeper than
 * MSGPACK_EMBED_STACK_SIZE (32) containers; prescan reports that limit
 * cleanly.
 */
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>

#include "packet.h"
#include "socketio_internal.h"

/* Open containers msgpack-c's unpacker can hold (its compiled-in stack). */
#define MP_MAX_DEPTH 32
/* Ack ids must be exact as a JavaScript number and fit the text form's 15 digits. */
#define MP_MAX_ID 999999999999999LL

/* ---- bounds check of the raw bytes ------------------------------------- */

static uint32_t be16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Walks the encoded value once without building anything: every length
 * must lie inside the input, every container count must be at most the
 * bytes left (each element takes one byte or more), nesting must fit
 * msgpack-c's stack, and the value must end exactly at the end of input.
 */
static int prescan(const unsigned char *b, size_t len, const char **err)
{
	/* Values still to read in each open container; [0] is the root, one value. */
	size_t left[MP_MAX_DEPTH + 1];
	size_t pos = 0, skip, count;
	int depth = 0;
	unsigned char c;

	left[0] = 1;
	while (depth >= 0) {
		if (left[depth] == 0) {
			depth--;
			continue;
		}
		left[depth]--;
		if (pos >= len)
			goto truncated;
		c = b[pos++];
		skip = 0;
		count = 0;
		if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
			/* fixint, nil, bool */
		} else if (c >= 0x80 && c <= 0x8f) {
			count = (size_t)(c & 0x0f) * 2;
		} else if (c >= 0x90 && c <= 0x9f) {
			count = c & 0x0f;
		} else if (c >= 0xa0 && c <= 0xbf) {
			skip = c & 0x1f;
		} else {
			/* Header bytes after the prefix, then the payload length they announce. */
			size_t h;

			switch (c) {
			case 0xcc:
			case 0xd0:
				skip = 1;
				break;
			case 0xcd:
			case 0xd1:
				skip = 2;
				break;
			case 0xca:
			case 0xce:
			case 0xd2:
				skip = 4;
				break;
			case 0xcb:
			case 0xcf:
			case 0xd3:
				skip = 8;
				break;
			case 0xd4:
			case 0xd5:
			case 0xd6:
			case 0xd7:
			case 0xd8:
				/* fixext: the type byte, then 1, 2, 4, 8 or 16 bytes. */
				skip = 1 + ((size_t)1 << (c - 0xd4));
				break;
			case 0xc4:
			case 0xd9:
			case 0xc7:
			case 0xc5:
			case 0xda:
			case 0xc8:
			case 0xc6:
			case 0xdb:
			case 0xc9:
				h = (c == 0xc4 || c == 0xd9 || c == 0xc7)   ? 1
				    : (c == 0xc5 || c == 0xda || c == 0xc8) ? 2
				                                            : 4;
				if (len - pos < h)
					goto truncated;
				skip = h == 1 ? b[pos] : h == 2 ? be16(b + pos) : be32(b + pos);
				pos += h;
				if (c >= 0xc7 && c <= 0xc9)
					skip++; /* the ext type byte */
				break;
			case 0xdc:
			case 0xdd:
			case 0xde:
			case 0xdf:
				h = (c == 0xdc || c == 0xde) ? 2 : 4;
				if (len - pos < h)
					goto truncated;
				count = h == 2 ? be16(b + pos) : be32(b + pos);
				pos += h;
				if (c >= 0xde)
					count *= 2;
				break;
			default: /* 0xc1 is never used */
				*err = "invalid msgpack";
				return -1;
			}
		}
		if (skip > len - pos)
			goto truncated;
		pos += skip;
		if ((c >= 0x80 && c <= 0x9f) || (c >= 0xdc && c <= 0xdf)) {
			/* A container, even an empty one, needs a free slot in msgpack-c's stack. */
			if (depth >= MP_MAX_DEPTH) {
				*err = "msgpack nesting too deep";
				return -1;
			}
			if (count > len - pos)
				goto truncated;
			if (count > 0)
				left[++depth] = count;
		}
	}
	if (pos != len) {
		*err = "trailing bytes after msgpack value";
		return -1;
	}
	return 0;
truncated:
	*err = "truncated msgpack";
	return -1;
}

/* ---- msgpack to JSON ----------------------------------------------------- */

typedef struct {
	base_buf *out;
	const char *buf; /* the input, which every str, bin and ext points into */
	size_t len;
	base_slice *att;
	size_t max_att, n_att;
	const char *err;
} mp_dec;

static int inside_input(const mp_dec *d, const char *p, size_t n)
{
	return p >= d->buf && n <= d->len && (size_t)(p - d->buf) <= d->len - n;
}

/*
 * ext payloads: tells fixext from ext 8/16/32 by the byte before the type
 * byte (msgpack-c points ext data into the input, past the type byte).
 */
static int ext_is_fix(const mp_dec *d, const msgpack_object *o)
{
	static const unsigned char code[17] = {
	    [1] = 0xd4, [2] = 0xd5, [4] = 0xd6, [8] = 0xd7, [16] = 0xd8};
	uint32_t n = o->via.ext.size;

	/*
	 * For ext 8/16/32 that byte is the low byte of the length, which for
	 * sizes up to 16 is never a fixext code: the test cannot be fooled.
	 */
	return n <= 16 && code[n] != 0 && o->via.ext.ptr >= d->buf + 2 &&
	       inside_input(d, o->via.ext.ptr, n) && (unsigned char)o->via.ext.ptr[-2] == code[n];
}

static int is_undefined(const mp_dec *d, const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == 0 && o->via.ext.size == 1 &&
	       ext_is_fix(d, o);
}

static int out_str(mp_dec *d, const char *s)
{
	base_buf_append(d->out, s, strlen(s));
	return 0;
}

static int utf8_ok(const char *s, size_t n)
{
	uint32_t st = 0;

	return base_utf8_validate(&st, (const unsigned char *)s, n) == 0 && st == 0;
}

/* Writes a double as JSON.stringify would write the same JavaScript number. */
static void put_double(base_buf *out, double v)
{
	char tmp[40];
	int n = 0;

	if (!isfinite(v)) {
		base_buf_append(out, "null", 4);
		return;
	}
	/*
	 * Integral values that fit 64 bits are written out as integers
	 * (JavaScript spells out integral numbers below 1e21 too); they come
	 * back as msgpack integers, so a round trip is stable.
	 */
	if (v == floor(v) && v >= -9223372036854775808.0 && v < 18446744073709551616.0) {
		if (v < 0)
			n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);
		else
			n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);
		base_buf_append(out, tmp, (size_t)n);
		return;
	}
	/* The shortest of 15, 16 or 17 significant digits that reads back the same. */
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	base_buf_append(out, tmp, (size_t)n);
}

/* Date.prototype.toJSON for a time value in milliseconds since the epoch. */
static void put_date(base_buf *out, const unsigned char *p)
{
	int64_t hi = (int32_t)be32(p), ms = hi * 4294967296LL + (int64_t)be32(p + 4);
	int64_t days, rem, z, era, doe, yoe, y, doy, mp, dd, mm;
	char tmp[40];
	int n;

	/* JavaScript dates end 8.64e15 ms either side of the epoch; past that, Invalid Date. */
	if (ms > 8640000000000000LL || ms < -8640000000000000LL) {
		base_buf_append(out, "null", 4);
		return;
	}
	days = ms / 86400000;
	rem = ms % 86400000;
	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	/* Civil date from a day count (the proleptic Gregorian calendar, eras of 400 years). */
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	dd = doy - (153 * mp + 2) / 5 + 1;
	mm = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (mm <= 2);
	if (y >= 0 && y <= 9999)
		n = snprintf(tmp, sizeof(tmp), "\"%04lld", (long long)y);
	else
		n = snprintf(tmp, sizeof(tmp), "\"%c%06lld", y < 0 ? '-' : '+',
		             (long long)llabs(y));
	n += snprintf(tmp + n, sizeof(tmp) - (size_t)n,
	              "-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ\"", (long long)mm, (long long)dd,
	              (long long)(rem / 3600000), (long long)(rem / 60000 % 60),
	              (long long)(rem / 1000 % 60), (long long)(rem % 1000));
	base_buf_append(out, tmp, (size_t)n);
}

static int put_placeholder(mp_dec *d, const char *p, size_t n)
{
	char tmp[48];
	int k;

	if (!inside_input(d, p, n)) {
		d->err = "msgpack value outside its input";
		return -1;
	}
	if (d->n_att == d->max_att) {
		d->err = "too many attachments";
		return -1;
	}
	d->att[d->n_att] = (base_slice){p, n};
	k = snprintf(tmp, sizeof(tmp), "{\"_placeholder\":true,\"num\":%zu}", d->n_att);
	d->n_att++;
	base_buf_append(d->out, tmp, (size_t)k);
	return 0;
}

static int put_json(mp_dec *d, const msgpack_object *o)
{
	char tmp[32];
	int n, first;

	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return out_str(d, "null");
	case MSGPACK_OBJECT_BOOLEAN:
		return out_str(d, o->via.boolean ? "true" : "false");
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)o->via.u64);
		base_buf_append(d->out, tmp, (size_t)n);
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		n = snprintf(tmp, sizeof(tmp), "%lld", (long long)o->via.i64);
		base_buf_append(d->out, tmp, (size_t)n);
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		put_double(d->out, o->via.f64);
		return 0;
	case MSGPACK_OBJECT_STR:
		if (!inside_input(d, o->via.str.ptr, o->via.str.size) ||
		    !utf8_ok(o->via.str.ptr, o->via.str.size)) {
			d->err = "invalid UTF-8 in string";
			return -1;
		}
		sio_json_append_string(d->out, o->via.str.ptr, o->via.str.size);
		return 0;
	case MSGPACK_OBJECT_BIN:
		return put_placeholder(d, o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_EXT:
		if (o->via.ext.type == 0 && !ext_is_fix(d, o))
			return put_placeholder(d, o->via.ext.ptr, o->via.ext.size);
		if (o->via.ext.type == 0 && o->via.ext.size == 1)
			return out_str(d, "null"); /* undefined, in an array */
		if (o->via.ext.type == 0 && o->via.ext.size == 8) {
			put_date(d->out, (const unsigned char *)o->via.ext.ptr);
			return 0;
		}
		n = snprintf(tmp, sizeof(tmp), "[%d,", (int)o->via.ext.type);
		base_buf_append(d->out, tmp, (size_t)n);
		if (put_placeholder(d, o->via.ext.ptr, o->via.ext.size) < 0)
			return -1;
		return out_str(d, "]");
	case MSGPACK_OBJECT_ARRAY:
		if (out_str(d, "[") < 0)
			return -1;
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			if ((i > 0 && out_str(d, ",") < 0) || put_json(d, &o->via.array.ptr[i]) < 0)
				return -1;
		}
		return out_str(d, "]");
	case MSGPACK_OBJECT_MAP:
		if (out_str(d, "{") < 0)
			return -1;
		first = 1;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object *k = &o->via.map.ptr[i].key,
			                     *v = &o->via.map.ptr[i].val;

			if (is_undefined(d, v))
				continue; /* JSON.stringify leaves such members out */
			if (!first && out_str(d, ",") < 0)
				return -1;
			first = 0;
			if (k->type == MSGPACK_OBJECT_STR) {
				if (put_json(d, k) < 0)
					return -1;
			} else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
			           k->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
				/* JavaScript makes a property name of it. */
				if (out_str(d, "\"") < 0 || put_json(d, k) < 0 ||
				    out_str(d, "\"") < 0)
					return -1;
			} else {
				d->err = "unsupported map key";
				return -1;
			}
			if (out_str(d, ":") < 0 || put_json(d, v) < 0)
				return -1;
		}
		return out_str(d, "}");
	default:
		d->err = "unsupported msgpack value";
		return -1;
	}
}

/* JavaScript's Number.isInteger over a msgpack number; returns 0 and *v, or -1. */
static int mp_integer(const msgpack_object *o, int64_t *v)
{
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > INT64_MAX)
			return -1;
		*v = (int64_t)o->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*v = o->via.i64;
		return 0;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (!isfinite(o->via.f64) || o->via.f64 != floor(o->via.f64) ||
		    fabs(o->via.f64) > 9007199254740992.0)
			return -1;
		*v = (int64_t)o->via.f64;
		return 0;
	default:
		return -1;
	}
}

static int key_eq(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);

	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
	       memcmp(k->via.str.ptr, s, n) == 0;
}

int sio_msgpack_decode(const char *buf, size_t len, base_buf *json_out, sio_packet *p,
                       base_slice *attachments, size_t max_attachments, const char **err)
{
	const msgpack_object *type = NULL, *nsp = NULL, *data = NULL, *id = NULL, *top;
	msgpack_unpacked u;
	mp_dec d = {json_out, buf, len, attachments, max_attachments, 0, NULL};
	size_t start = json_out->len, off = 0;
	int64_t v;
	int rc = -1;

	p->nsp = BASE_SLICE_LIT("/");
	p->id = -1;
	p->attachments = 0;
	p->data = (base_slice){NULL, 0};
	p->event = (base_slice){NULL, 0};
	p->args = (base_slice){NULL, 0};
	p->event_escaped = 0;
	if (d.max_att > SIO_MAX_ATTACHMENTS)
		d.max_att = SIO_MAX_ATTACHMENTS;

	if (prescan((const unsigned char *)buf, len, err) < 0)
		return -1;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
		*err = "invalid msgpack";
		goto out;
	}
	top = &u.data;
	if (top->type != MSGPACK_OBJECT_MAP) {
		*err = "packet is not a map";
		goto out;
	}
	/* Later duplicates win, as when notepack fills a JavaScript object. */
	for (uint32_t i = 0; i < top->via.map.size; i++) {
		const msgpack_object *k = &top->via.map.ptr[i].key, *val = &top->via.map.ptr[i].val;

		if (key_eq(k, "type"))
			type = val;
		else if (key_eq(k, "nsp"))
			nsp = val;
		else if (key_eq(k, "data"))
			data = val;
		else if (key_eq(k, "id"))
			id = val;
	}
	if (type == NULL || mp_integer(type, &v) < 0 || v < SIO_CONNECT || v > SIO_CONNECT_ERROR) {
		*err = "invalid packet type";
		goto out;
	}
	p->type = (sio_packet_type)v;
	/*
	 * socket.io-msgpack-parser takes any string; we also hold it to what the
	 * text form can carry (a leading '/', no comma), so that every decoded
	 * namespace can be written in either form.
	 */
	if (nsp == NULL || nsp->type != MSGPACK_OBJECT_STR ||
	    !inside_input(&d, nsp->via.str.ptr, nsp->via.str.size) || nsp->via.str.size == 0 ||
	    nsp->via.str.ptr[0] != '/' || memchr(nsp->via.str.ptr, ',', nsp->via.str.size) ||
	    !utf8_ok(nsp->via.str.ptr, nsp->via.str.size)) {
		*err = "invalid namespace";
		goto out;
	}
	p->nsp = (base_slice){nsp->via.str.ptr, nsp->via.str.size};
	if (id != NULL && !is_undefined(&d, id)) {
		if (mp_integer(id, &v) < 0 || v < 0 || v > MP_MAX_ID) {
			*err = "invalid packet id";
			goto out;
		}
		p->id = v;
	}
	if (data != NULL && !is_undefined(&d, data)) {
		if (put_json(&d, data) < 0) {
			*err = d.err ? d.err : "out of memory";
			goto out;
		}
		p->data = (base_slice){json_out->data + start, json_out->len - start};
	}
	if (d.n_att > 0) {
		/* Only events and acks carry binary in the text form. */
		if (p->type == SIO_EVENT) {
			p->type = SIO_BINARY_EVENT;
		} else if (p->type == SIO_ACK) {
			p->type = SIO_BINARY_ACK;
		} else {
			*err = "binary data in a packet that cannot carry it";
			goto out;
		}
		p->attachments = (unsigned)d.n_att;
	}
	rc = sio__packet_check_data(p, err);
out:
	if (rc < 0)
		json_out->len = start;
	msgpack_unpacked_destroy(&u);
	return rc;
}

/* ---- JSON to msgpack ----------------------------------------------------- */

typedef struct {
	msgpack_packer pk;
	base_buf *out;
	base_buf scratch; /* unescaped strings and number text */
	const base_slice *att;
	size_t n_att;
	int rc; /* the first error */
} mp_enc;

/* msgpack-c's writer: never fails (out of memory aborts, base.h). */
static int buf_write(void *data, const char *b, size_t len)
{
	base_buf_append(data, b, len);
	return 0;
}

static int enc_fail(mp_enc *e, int rc)
{
	if (e->rc == 0)
		e->rc = rc;
	return -1;
}

static int put_str(mp_enc *e, const char *s, size_t len, int escaped)
{
	ssize_t n;

	if (escaped) {
		e->scratch.len = 0;
		base_buf_reserve(&e->scratch, len + 1);
		n = sio_json_unescape(s, len, e->scratch.data);
		if (n < 0)
			return enc_fail(e, BASE_EINVAL);
		s = e->scratch.data;
		len = (size_t)n;
	}
	if (len > UINT32_MAX)
		return enc_fail(e, BASE_EINVAL);
	if (msgpack_pack_str(&e->pk, len) < 0 || msgpack_pack_str_body(&e->pk, s, len) < 0)
		return enc_fail(e, BASE_ENOMEM);
	return 0;
}

static int put_number(mp_enc *e, const char *s, size_t len)
{
	const char *p = s, *end = s + len;
	int neg = 0, r;
	uint64_t u = 0;
	double v;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	/* An integer literal that fits 64 bits is written exactly. */
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (u > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			break;
		u = u * 10 + (uint64_t)(*p - '0');
	}
	if (p == end && !neg)
		r = msgpack_pack_uint64(&e->pk, u);
	else if (p == end && u <= (uint64_t)INT64_MAX + 1)
		r = msgpack_pack_int64(&e->pk,
		                       u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u);
	else
		goto real;
	return r < 0 ? enc_fail(e, BASE_ENOMEM) : 0;
real:
	e->scratch.len = 0;
	base_buf_append(&e->scratch, s, len);
	base_buf_append(&e->scratch, "", 1);
	v = strtod(e->scratch.data, NULL);
	/* What notepack does with a JavaScript number: integral values become integers. */
	if (v == floor(v) && v >= -9223372036854775808.0 && v < 18446744073709551616.0)
		r = v < 0 ? msgpack_pack_int64(&e->pk, (int64_t)v)
		          : msgpack_pack_uint64(&e->pk, (uint64_t)v);
	else
		r = msgpack_pack_double(&e->pk, v);
	return r < 0 ? enc_fail(e, BASE_ENOMEM) : 0;
}

/*
 * Converts the JSON value starting at p (validated, so at most 64 deep:
 * the recursion is bounded) and returns the position after it, or NULL.
 */
static const char *put_msgpack(mp_enc *e, const char *p, const char *end)
{
	const char *q, *v;
	int kind, esc = 0, ph;
	size_t n;
	int64_t num;

	p = sio__json_skip_ws(p, end);
	switch (*p) {
	case '"':
		q = sio__json_scan(p, end, 0, &kind, &esc);
		if (q == NULL || put_str(e, p + 1, (size_t)(q - p) - 2, esc) < 0)
			return NULL;
		return q;
	case 't':
		return msgpack_pack_true(&e->pk) < 0 ? (enc_fail(e, BASE_ENOMEM), NULL) : p + 4;
	case 'f':
		return msgpack_pack_false(&e->pk) < 0 ? (enc_fail(e, BASE_ENOMEM), NULL) : p + 5;
	case 'n':
		return msgpack_pack_nil(&e->pk) < 0 ? (enc_fail(e, BASE_ENOMEM), NULL) : p + 4;
	case '[':
		/* msgpack wants the count first: count the elements, then convert them. */
		n = 0;
		q = sio__json_skip_ws(p + 1, end);
		while (*q != ']') {
			q = sio__json_scan(q, end, SIO__JSON_MAX_DEPTH, &kind, &esc);
			if (q == NULL)
				return NULL;
			n++;
			q = sio__json_skip_ws(q, end);
			if (*q == ',')
				q = sio__json_skip_ws(q + 1, end);
		}
		if (n > UINT32_MAX)
			return enc_fail(e, BASE_EINVAL), NULL;
		if (msgpack_pack_array(&e->pk, n) < 0)
			return enc_fail(e, BASE_ENOMEM), NULL;
		q = sio__json_skip_ws(p + 1, end);
		while (*q != ']') {
			q = put_msgpack(e, q, end);
			if (q == NULL)
				return NULL;
			q = sio__json_skip_ws(q, end);
			if (*q == ',')
				q = sio__json_skip_ws(q + 1, end);
		}
		return q + 1;
	case '{':
		ph = sio__json_placeholder(p, end, &q, &num);
		if (ph < 0 || (ph == 1 && (uint64_t)num >= e->n_att))
			return enc_fail(e, BASE_EINVAL), NULL;
		if (ph == 1) {
			const base_slice *a = &e->att[num];

			if (a->len > UINT32_MAX)
				return enc_fail(e, BASE_EINVAL), NULL;
			if (msgpack_pack_bin(&e->pk, a->len) < 0 ||
			    msgpack_pack_bin_body(&e->pk, a->base, a->len) < 0)
				return enc_fail(e, BASE_ENOMEM), NULL;
			return q;
		}
		n = 0;
		q = sio__json_skip_ws(p + 1, end);
		while (*q != '}') {
			/* key, ':', value */
			q = sio__json_scan(q, end, 0, &kind, &esc);
			q = sio__json_skip_ws(sio__json_skip_ws(q, end) + 1, end);
			q = sio__json_scan(q, end, SIO__JSON_MAX_DEPTH, &kind, &esc);
			if (q == NULL)
				return NULL;
			n++;
			q = sio__json_skip_ws(q, end);
			if (*q == ',')
				q = sio__json_skip_ws(q + 1, end);
		}
		if (n > UINT32_MAX)
			return enc_fail(e, BASE_EINVAL), NULL;
		if (msgpack_pack_map(&e->pk, n) < 0)
			return enc_fail(e, BASE_ENOMEM), NULL;
		q = sio__json_skip_ws(p + 1, end);
		while (*q != '}') {
			esc = 0;
			v = sio__json_scan(q, end, 0, &kind, &esc);
			if (v == NULL || put_str(e, q + 1, (size_t)(v - q) - 2, esc) < 0)
				return NULL;
			q = sio__json_skip_ws(sio__json_skip_ws(v, end) + 1, end);
			q = put_msgpack(e, q, end);
			if (q == NULL)
				return NULL;
			q = sio__json_skip_ws(q, end);
			if (*q == ',')
				q = sio__json_skip_ws(q + 1, end);
		}
		return q + 1;
	default:
		q = sio__json_scan(p, end, 0, &kind, &esc);
		if (q == NULL || put_number(e, p, (size_t)(q - p)) < 0)
			return NULL;
		return q;
	}
}

static int pack_key(mp_enc *e, const char *k)
{
	size_t n = strlen(k);

	if (msgpack_pack_str(&e->pk, n) < 0 || msgpack_pack_str_body(&e->pk, k, n) < 0)
		return enc_fail(e, BASE_ENOMEM);
	return 0;
}

static int pack_id(mp_enc *e, int64_t id)
{
	if (pack_key(e, "id") < 0 || msgpack_pack_int64(&e->pk, id) < 0)
		return enc_fail(e, BASE_ENOMEM);
	return 0;
}

/*
 * A packet's "data": a whole JSON value (json), or, for events and acks,
 * an array written from its parts: the event name (when name is set) then
 * the elements of list, JSON without brackets. has says there is data.
 */
typedef struct {
	int has;
	base_slice json;
	const base_slice *name;
	int name_escaped;
	int is_list;
	base_slice list;
} mp_data;

/*
 * Validates a list of JSON values without brackets ("1,{"a":2}", or nothing)
 * as the same text between brackets would be, and counts them. Returns the
 * count, or -1 when invalid.
 */
static ssize_t list_count(const char *p, const char *end)
{
	ssize_t n = 0;
	int kind, esc;

	p = sio__json_skip_ws(p, end);
	if (p == end)
		return 0;
	for (;;) {
		p = sio__json_scan(p, end, SIO__JSON_MAX_DEPTH - 1, &kind, &esc);
		if (p == NULL)
			return -1;
		n++;
		p = sio__json_skip_ws(p, end);
		if (p == end)
			return n;
		if (*p != ',')
			return -1;
		p = sio__json_skip_ws(p + 1, end);
		if (p == end)
			return -1;
	}
}

static int pack_data(mp_enc *e, const mp_data *d, size_t count)
{
	const char *q, *end;

	if (pack_key(e, "data") < 0)
		return -1;
	if (!d->is_list)
		return put_msgpack(e, d->json.base, d->json.base + d->json.len) == NULL ? -1 : 0;
	if (msgpack_pack_array(&e->pk, count) < 0)
		return enc_fail(e, BASE_ENOMEM);
	if (d->name && put_str(e, d->name->base, d->name->len, d->name_escaped) < 0)
		return -1;
	q = d->list.base;
	end = d->list.base + d->list.len;
	q = sio__json_skip_ws(q, end);
	while (q < end) {
		q = put_msgpack(e, q, end);
		if (q == NULL)
			return -1;
		q = sio__json_skip_ws(q, end);
		if (q < end && *q == ',')
			q = sio__json_skip_ws(q + 1, end);
	}
	return 0;
}

static int encode_packet(base_buf *out, sio_packet_type type, base_slice nsp, int64_t id,
                         const mp_data *data, const base_slice *attachments, size_t n_attachments)
{
	mp_enc e = {.out = out, .att = attachments, .n_att = n_attachments};
	size_t start = out->len, count = 0;
	int has_data = data->has, has_id = id >= 0;
	int wire_type = type == SIO_BINARY_EVENT ? SIO_EVENT
	                : type == SIO_BINARY_ACK ? SIO_ACK
	                                         : (int)type;

	if (data->is_list) {
		ssize_t n = list_count(data->list.base, data->list.base + data->list.len);

		if (n < 0 || (data->name && data->name->len > UINT32_MAX))
			return BASE_EINVAL;
		count = (size_t)n + (data->name ? 1 : 0);
	} else if (has_data && sio_json_validate(data->json.base, data->json.len) < 0) {
		return BASE_EINVAL;
	}
	if (nsp.len == 0)
		nsp = BASE_SLICE_LIT("/");
	if (nsp.len > UINT32_MAX)
		return BASE_EINVAL;
	msgpack_packer_init(&e.pk, out, buf_write);
	/*
	 * Fields in the order the Node server creates them: {id, type, data,
	 * nsp} for acks, {type, nsp, data} for connect errors, {type, data,
	 * id, nsp} otherwise.
	 */
	if (msgpack_pack_map(&e.pk, 2 + (size_t)has_data + (size_t)has_id) < 0) {
		enc_fail(&e, BASE_ENOMEM);
		goto out;
	}
	if (wire_type == SIO_ACK && has_id && pack_id(&e, id) < 0)
		goto out;
	if (pack_key(&e, "type") < 0 || msgpack_pack_int(&e.pk, wire_type) < 0) {
		enc_fail(&e, BASE_ENOMEM);
		goto out;
	}
	if (wire_type == SIO_CONNECT_ERROR &&
	    (pack_key(&e, "nsp") < 0 || put_str(&e, nsp.base, nsp.len, 0) < 0))
		goto out;
	if (has_data && pack_data(&e, data, count) < 0 && e.rc == 0)
		e.rc = BASE_EINVAL;
	if (e.rc < 0)
		goto out;
	if (wire_type != SIO_ACK && has_id && pack_id(&e, id) < 0)
		goto out;
	if (wire_type != SIO_CONNECT_ERROR &&
	    (pack_key(&e, "nsp") < 0 || put_str(&e, nsp.base, nsp.len, 0) < 0))
		goto out;
out:
	base_buf_free(&e.scratch);
	if (e.rc < 0)
		out->len = start;
	return e.rc;
}

int sio_msgpack_encode(base_buf *out, sio_packet_type type, base_slice nsp, int64_t id,
                       base_slice data, const base_slice *attachments, size_t n_attachments)
{
	mp_data d = {.has = data.len > 0, .json = data};

	return encode_packet(out, type, nsp, id, &d, attachments, n_attachments);
}

int sio_msgpack_encode_list(base_buf *out, sio_packet_type type, base_slice nsp, int64_t id,
                            const base_slice *name, int name_escaped, base_slice list,
                            const base_slice *attachments, size_t n_attachments)
{
	mp_data d = {
	    .has = 1, .name = name, .name_escaped = name_escaped, .is_list = 1, .list = list};

	return encode_packet(out, type, nsp, id, &d, attachments, n_attachments);
}

/* ---- any value (the cluster adapter's messages) -------------------------- */

int sio_msgpack_pack_json(base_buf *out, base_slice json, const base_slice *attachments,
                          size_t n_attachments)
{
	mp_enc e = {.out = out, .att = attachments, .n_att = n_attachments};
	size_t start = out->len;

	if (json.len == 0 || sio_json_validate(json.base, json.len) < 0)
		return BASE_EINVAL;
	msgpack_packer_init(&e.pk, out, buf_write);
	if (put_msgpack(&e, json.base, json.base + json.len) == NULL && e.rc == 0)
		e.rc = BASE_EINVAL;
	base_buf_free(&e.scratch);
	if (e.rc < 0)
		out->len = start;
	return e.rc;
}

int sio_msgpack_to_json(const char *buf, size_t len, base_buf *json_out, base_slice *attachments,
                        size_t max_attachments, size_t *n_attachments, const char **err)
{
	msgpack_unpacked u;
	mp_dec d = {json_out, buf, len, attachments, max_attachments, 0, NULL};
	size_t start = json_out->len, off = 0;
	int rc = -1;

	*n_attachments = 0;
	if (prescan((const unsigned char *)buf, len, err) < 0)
		return -1;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
		*err = "invalid msgpack";
	} else if (put_json(&d, &u.data) < 0) {
		*err = d.err ? d.err : "out of memory";
	} else {
		*n_attachments = d.n_att;
		rc = 0;
	}
	if (rc < 0)
		json_out->len = start;
	msgpack_unpacked_destroy(&u);
	return rc;
}
