/*
 * parser_util.h: helpers shared by the parser tests (test_parser*.c):
 * flattening an encoded wire into messages, and feeding them to a decoder.
 */
#ifndef TESTS_SIO_PARSER_UTIL_H
#define TESTS_SIO_PARSER_UTIL_H

#include "socketio/parser.h"
#include "socketio/socketio.h"

/* One wire message, its parts concatenated. */
typedef struct {
	int binary;
	size_t len;
	char *data;
} flat_msg;

typedef struct {
	size_t n;
	flat_msg m[1 + SIO_MAX_ATTACHMENTS];
} flat_wire;

static inline void flatten(const sio_wire *w, flat_wire *f)
{
	f->n = w->n_msgs;
	for (size_t i = 0; i < w->n_msgs; i++) {
		const sio_wire_msg *m = &w->msgs[i];
		size_t len = 0;
		for (size_t j = 0; j < m->n_parts; j++)
			len += m->parts[j].len;
		f->m[i].binary = m->binary;
		f->m[i].len = len;
		f->m[i].data = malloc(len + 1);
		len = 0;
		for (size_t j = 0; j < m->n_parts; j++) {
			if (m->parts[j].len)
				memcpy(f->m[i].data + len, m->parts[j].base, m->parts[j].len);
			len += m->parts[j].len;
		}
		f->m[i].data[len] = 0;
	}
}

static inline void flat_free(flat_wire *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->m[i].data);
	f->n = 0;
}

/* Encodes p with ops into f; returns encode's result. */
static inline int encode_flat(const sio_parser_ops *ops, const sio_out *p, flat_wire *f)
{
	sio_wire w;
	int rc = sio__encode(ops, p, &w);
	f->n = 0;
	if (rc == 0)
		flatten(&w, f);
	sio__wire_free(&w);
	return rc;
}

/*
 * Feeds every message of f to a fresh decoder of ops; the last must complete
 * the packet (the earlier ones must not). Returns decode's last result; *d
 * must be released by the caller (sio__decoder_done then _free).
 */
static inline int decode_flat(const sio_parser_ops *ops, sio_decoder *d, const flat_wire *f,
                              sio_decoded *out, const char **err)
{
	int rc = -1;
	memset(d, 0, sizeof(*d));
	d->max_pending = 1 << 20;
	for (size_t i = 0; i < f->n; i++) {
		rc = ops->decode(d, f->m[i].binary, f->m[i].data, f->m[i].len, out, err);
		if (i + 1 < f->n && rc != 0)
			return -2;
	}
	return rc;
}

static inline int slice_is(base_slice s, const char *text)
{
	return s.len == strlen(text) && (s.len == 0 || memcmp(s.base, text, s.len) == 0);
}

#endif
