/*
 * parser_json.c: the default Socket.IO parser (socket.io-parser).
 *
 * A packet is one text message (packet.c's text form); a packet with binary
 * values is a BINARY_EVENT or BINARY_ACK whose header announces N
 * attachments, each following as its own binary message.
 *
 * Encoding gathers the text message from parts — the header with the event
 * name, the arguments as given, the closing bracket — so the arguments are
 * copied once, by whoever takes the parts (a socket's write queue, or one
 * shared message for a broadcast), and never parsed.
 *
 * Decoding keeps a copy of a binary packet's header until its attachments
 * have come; the last attachment is used where it lies.
 */
#include <jansson.h>
#include <stdlib.h>

#include "parser.h"
#include "socketio.h"

struct sio_binary_wait {
	base_buf header; /* copy of the text packet announcing attachments */
	sio_packet pkt;  /* slices into header */
	base_buf data;   /* attachments, back to back */
	size_t offsets[SIO_MAX_ATTACHMENTS + 1];
	unsigned received;
};

void sio__binary_wait_free(sio_binary_wait *w)
{
	if (!w)
		return;
	base_buf_free(&w->header);
	base_buf_free(&w->data);
	free(w);
}

/* ---- encode ------------------------------------------------------------ */

static int json_encode(const sio_out *p, sio_wire *w)
{
	unsigned n = (unsigned)p->n_atts;
	sio_packet_type type = p->type;
	if (n && type == SIO_EVENT)
		type = SIO_BINARY_EVENT;
	else if (n && type == SIO_ACK)
		type = SIO_BINARY_ACK;
	else if (n)
		return SIO_EBAD_ARGS; /* only events and acks carry binary */
	sio_packet_encode(&w->buf, type, p->nsp, p->id, n, (base_slice){NULL, 0});
	sio_wire_msg *m = &w->msgs[0];
	m->binary = 0;
	m->n_parts = 1;
	switch (p->type) {
	case SIO_EVENT:
		if (p->event_escaped) {
			base_buf_append(&w->buf, "[\"", 2);
			base_buf_append(&w->buf, p->event.base, p->event.len);
			base_buf_append(&w->buf, "\"", 1);
		} else {
			base_buf_append(&w->buf, "[", 1);
			sio_json_append_string(&w->buf, p->event.base, p->event.len);
		}
		if (p->args.len) {
			m->parts[m->n_parts++] = BASE_SLICE_LIT(",");
			m->parts[m->n_parts++] = p->args;
		}
		m->parts[m->n_parts++] = BASE_SLICE_LIT("]");
		break;
	case SIO_ACK:
		base_buf_append(&w->buf, "[", 1);
		if (p->args.len)
			m->parts[m->n_parts++] = p->args;
		m->parts[m->n_parts++] = BASE_SLICE_LIT("]");
		break;
	default:
		if (p->data.len)
			m->parts[m->n_parts++] = p->data;
		break;
	}
	/* The buffer is complete: only now may a part point into it. */
	m->parts[0] = (base_slice){w->buf.data, w->buf.len};
	for (size_t i = 0; i < p->n_atts; i++)
		w->msgs[1 + i] = (sio_wire_msg){1, 1, {p->atts[i]}};
	w->n_msgs = 1 + p->n_atts;
	return 0;
}

/* ---- decode ------------------------------------------------------------ */

/* Every {"_placeholder":true,"num":N} must name an attachment that came. */
static int placeholders_ok(json_t *v, size_t n_atts)
{
	size_t i;
	json_t *child;
	const char *key;
	if (json_is_array(v)) {
		json_array_foreach(v, i, child) if (!placeholders_ok(child, n_atts)) return 0;
	} else if (json_is_object(v)) {
		if (json_is_true(json_object_get(v, "_placeholder"))) {
			json_t *num = json_object_get(v, "num");
			return json_is_integer(num) && json_integer_value(num) >= 0 &&
			       (size_t)json_integer_value(num) < n_atts;
		}
		json_object_foreach(v, key, child) if (!placeholders_ok(child, n_atts)) return 0;
	}
	return 1;
}

int sio__placeholders_valid(base_slice json, size_t n_atts)
{
	json_t *doc = json_loadb(json.base, json.len, JSON_DECODE_ANY, NULL);
	int ok = doc && placeholders_ok(doc, n_atts);
	json_decref(doc);
	return ok;
}

static int on_attachment(sio_decoder *d, const char *data, size_t len, sio_decoded *out,
                         const char **err)
{
	sio_binary_wait *w = d->bin;
	if (w->data.len + len > d->max_pending) {
		*err = "attachments too large";
		return -1;
	}
	if (w->received + 1 < w->pkt.attachments) {
		/* Not the last: kept until the rest have arrived. */
		base_buf_append(&w->data, data, len);
		w->offsets[++w->received] = w->data.len;
		return 0;
	}
	/* The last one is used where it lies: it outlives the dispatch. */
	for (unsigned i = 0; i < w->received; i++)
		out->atts[i] =
		    (base_slice){w->data.data + w->offsets[i], w->offsets[i + 1] - w->offsets[i]};
	out->atts[w->received++] = (base_slice){data, len};
	out->n_atts = w->received;
	out->pkt = w->pkt;
	d->bin = NULL;
	d->done = w;
	if (!sio__placeholders_valid(w->pkt.data, w->received)) {
		*err = "placeholder without a matching attachment";
		return -1;
	}
	return 1;
}

static int json_decode(sio_decoder *d, int binary, const char *data, size_t len, sio_decoded *out,
                       const char **err)
{
	if (d->bin) {
		if (binary)
			return on_attachment(d, data, len, out, err);
		*err = "text packet while waiting for attachments";
		return -1;
	}
	if (binary) {
		*err = "unexpected binary message";
		return -1;
	}
	*err = NULL;
	if (sio_packet_decode(data, len, &out->pkt, err)) {
		if (!*err)
			*err = "invalid packet";
		return -1;
	}
	out->n_atts = 0;
	if (out->pkt.attachments == 0)
		return 1;
	/* Keep the header until its attachments have arrived. */
	sio_binary_wait *w = base_xcalloc(1, sizeof(*w));
	base_buf_append(&w->header, data, len);
	if (sio_packet_decode(w->header.data, w->header.len, &w->pkt, err)) {
		sio__binary_wait_free(w); /* cannot be: the same bytes decoded above */
		return -1;
	}
	d->bin = w;
	return 0;
}

const sio_parser_ops sio__parser_json = {"default", json_encode, json_decode};
