/*
 * parser_msgpack.c: socket.io-msgpack-parser as a parser (the codec is
 * msgpack.c). Every packet is one binary message with its binary values
 * inline, encoded straight from the event name and arguments: nothing goes
 * through the text form.
 */
#include "parser.h"
#include "socketio.h"

static int msgpack_encode(const sio_out *p, sio_wire *w)
{
	int rc;
	if (p->type == SIO_EVENT)
		rc = sio_msgpack_encode_list(&w->buf, SIO_EVENT, p->nsp, p->id, &p->event,
		                             p->event_escaped, p->args, p->atts, p->n_atts);
	else if (p->type == SIO_ACK)
		rc = sio_msgpack_encode_list(&w->buf, SIO_ACK, p->nsp, p->id, NULL, 0, p->args,
		                             p->atts, p->n_atts);
	else
		rc = sio_msgpack_encode(&w->buf, p->type, p->nsp, p->id, p->data, p->atts,
		                        p->n_atts);
	if (rc)
		return rc == BASE_EINVAL ? SIO_EBAD_ARGS : rc;
	w->msgs[0] = (sio_wire_msg){1, 1, {{w->buf.data, w->buf.len}}};
	w->n_msgs = 1;
	return 0;
}

static int msgpack_decode(sio_decoder *d, int binary, const char *data, size_t len,
                          sio_decoded *out, const char **err)
{
	if (!binary) {
		*err = "text message with the msgpack parser";
		return -1;
	}
	*err = NULL;
	d->json.len = 0;
	if (sio_msgpack_decode(data, len, &d->json, &out->pkt, out->atts, SIO_MAX_ATTACHMENTS,
	                       err)) {
		if (!*err)
			*err = "invalid msgpack packet";
		return -1;
	}
	out->n_atts = out->pkt.attachments;
	return 1;
}

const sio_parser_ops sio__parser_msgpack = {"msgpack", msgpack_encode, msgpack_decode};
