/*
 * parser.c: what the two parsers share: the encoded wire form, the
 * per-connection decoder state, and the JSON data of an event as it goes
 * to other nodes.
 */
#include <stdlib.h>

#include "parser.h"
#include "socketio.h"

void sio__wire_init(sio_wire *w)
{
	w->buf = (base_buf)BASE_BUF_INIT;
	w->n_msgs = 0;
}

void sio__wire_free(sio_wire *w)
{
	base_buf_free(&w->buf);
	w->n_msgs = 0;
}

int sio__encode(const sio_parser_ops *ops, const sio_out *p, sio_wire *w)
{
	sio__wire_init(w);
	if (p->n_atts > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;
	int rc = ops->encode(p, w);
	if (rc)
		sio__wire_free(w);
	return rc;
}

void sio__out_data(base_buf *out, const sio_out *p)
{
	base_buf_append(out, "[", 1);
	if (p->type == SIO_EVENT) {
		if (p->event_escaped) {
			base_buf_append(out, "\"", 1);
			base_buf_append(out, p->event.base, p->event.len);
			base_buf_append(out, "\"", 1);
		} else {
			sio_json_append_string(out, p->event.base, p->event.len);
		}
		if (p->args.len)
			base_buf_append(out, ",", 1);
	}
	base_buf_append(out, p->args.base, p->args.len);
	base_buf_append(out, "]", 1);
}

void sio__decoder_done(sio_decoder *d)
{
	sio__binary_wait_free(d->done);
	d->done = NULL;
	base_buf_free(&d->json);
}

void sio__decoder_free(sio_decoder *d)
{
	sio__decoder_done(d);
	sio__binary_wait_free(d->bin);
	d->bin = NULL;
}
