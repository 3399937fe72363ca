/*
 * fuzz_sio_packet.c: libFuzzer driver for socketio/packet.c and json.c.
 *
 * Decodes the input as a text packet. When it is valid: every slice lies
 * inside the input, the fields are in range, and encoding the packet again
 * (sio_packet_encode, and for events and acks encode_event / encode_ack)
 * gives text that decodes to the same fields. The JSON helpers are checked
 * on the same input: validate agrees with split, and a string that
 * unescapes comes back from append_string as valid JSON with the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/packet.h"
#include "socketio/socketio_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int slice_same(base_slice a, base_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

static int slice_inside(base_slice s, const char *buf, size_t len)
{
	return s.len == 0 || (s.base >= buf && s.base + s.len <= buf + len);
}

static void check_packet(const sio_packet *p, const char *buf, size_t len)
{
	if ((unsigned)p->type > SIO_BINARY_ACK || p->id < -1 || p->id > 999999999999999LL)
		abort();
	if ((p->attachments > 0) != (p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK) ||
	    p->attachments > SIO_MAX_ATTACHMENTS)
		abort();
	if (p->nsp.len == 0 || p->nsp.base[0] != '/' || memchr(p->nsp.base, ',', p->nsp.len))
		abort();
	if (!slice_inside(p->data, buf, len) || !slice_inside(p->event, buf, len) ||
	    !slice_inside(p->args, buf, len))
		abort();
	if (p->data.len > 0 && sio_json_validate(p->data.base, p->data.len) != 0)
		abort();
	if ((p->type == SIO_EVENT || p->type == SIO_BINARY_EVENT) && p->data.len < 4)
		abort(); /* at least ["" ] */
}

static void same_fields(const sio_packet *a, const sio_packet *b)
{
	if (a->type != b->type || a->id != b->id || a->attachments != b->attachments ||
	    !slice_same(a->nsp, b->nsp) || !slice_same(a->data, b->data) ||
	    !slice_same(a->event, b->event) || a->event_escaped != b->event_escaped ||
	    !slice_same(a->args, b->args))
		abort();
}

static void check_reencode(const sio_packet *p)
{
	base_buf out = BASE_BUF_INIT;
	const char *err;
	sio_packet q;

	sio_packet_encode(&out, p->type, p->nsp, p->id, p->attachments, p->data);
	if (sio_packet_decode(out.data, out.len, &q, &err) != 0)
		abort();
	check_packet(&q, out.data, out.len);
	same_fields(p, &q);

	/* The event helpers take the name unescaped and give it back escaped their way. */
	out.len = 0;
	if (p->type == SIO_EVENT || p->type == SIO_BINARY_EVENT) {
		char *name = malloc(p->event.len + 1);
		ssize_t n = sio_json_unescape(p->event.base, p->event.len, name);

		if (n < 0)
			abort();
		sio_packet_encode_event(&out, p->nsp, p->id, p->attachments,
		                        (base_slice){name, (size_t)n}, p->args);
		/* A name that unescapes to a reserved one was refused in the first place. */
		if (sio_packet_decode(out.data, out.len, &q, &err) != 0)
			abort();
		if (q.type != p->type || q.id != p->id || !slice_same(q.args, p->args))
			abort();
		free(name);
	} else if (p->type == SIO_ACK || p->type == SIO_BINARY_ACK) {
		sio_packet_encode_ack(&out, p->nsp, p->id, p->attachments, p->args);
		if (sio_packet_decode(out.data, out.len, &q, &err) != 0)
			abort();
		if (q.type != p->type || q.id != p->id || !slice_same(q.args, p->args))
			abort();
	}
	base_buf_free(&out);
}

static void check_json(const char *buf, size_t len)
{
	sio__json_split_t s;
	int kind = sio__json_split(buf, len, &s);
	char *tmp;
	ssize_t n;

	if ((kind >= 0) != (sio_json_validate(buf, len) == 0))
		abort();
	if (kind == SIO__JSON_ARRAY) {
		if (!slice_inside(s.inside, buf, len) || !slice_inside(s.rest, buf, len) ||
		    !slice_inside(s.first, buf, len) || s.rest.len > s.inside.len)
			abort();
	}

	/* The input as string contents. */
	tmp = malloc(len ? len : 1);
	n = sio_json_unescape(buf, len, tmp);
	if (n >= 0) {
		base_buf out = BASE_BUF_INIT;
		char *back;

		if ((size_t)n > len)
			abort();
		sio_json_append_string(&out, tmp, (size_t)n);
		if (sio_json_validate(out.data, out.len) != 0)
			abort();
		back = malloc(out.len);
		if (sio_json_unescape(out.data + 1, out.len - 2, back) != n ||
		    (n > 0 && memcmp(back, tmp, (size_t)n) != 0))
			abort();
		free(back);
		base_buf_free(&out);
	}
	free(tmp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so that ASan catches any read past the end. */
	char *copy = malloc(size ? size : 1);
	const char *err = NULL;
	sio_packet p;

	memcpy(copy, data, size);
	if (sio_packet_decode(copy, size, &p, &err) == 0) {
		check_packet(&p, copy, size);
		check_reencode(&p);
	} else if (err == NULL) {
		abort();
	}
	check_json(copy, size);
	free(copy);
	return 0;
}
