/*
 * fuzz_sio_msgpack.c: libFuzzer driver for socketio/msgpack.c.
 *
 * Decodes the input as a msgpack packet. When it is valid: attachments are
 * slices of the input, the data is valid JSON of the right shape, and
 * encoding the packet again gives bytes that decode to the same packet and
 * encode to the same bytes; for events and acks, encoding from the name
 * and the argument list (sio_msgpack_encode_list, the parser's path) gives
 * the same bytes as encoding the whole data. The input is also tried as
 * JSON data for the encoder, which must either refuse it or produce msgpack
 * that decodes, and as an argument list, which must be refused exactly when
 * the same text in brackets is, and otherwise encode as it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "socketio/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ATT 16

static int slice_same(base_slice a, base_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

static int slice_inside(base_slice s, const char *buf, size_t len)
{
	return s.len == 0 || (s.base >= buf && s.base + s.len <= buf + len);
}

static void check_packet(const sio_packet *p, const base_slice *att, const char *in, size_t len,
                         const base_buf *json)
{
	if ((unsigned)p->type > SIO_BINARY_ACK || p->id < -1 || p->id > 999999999999999LL)
		abort();
	if ((p->attachments > 0) != (p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK) ||
	    p->attachments > MAX_ATT)
		abort();
	if (!slice_inside(p->nsp, in, len))
		abort();
	for (unsigned i = 0; i < p->attachments; i++) {
		if (!slice_inside(att[i], in, len))
			abort();
	}
	if (!slice_inside(p->data, json->data, json->len) ||
	    !slice_inside(p->event, json->data, json->len) ||
	    !slice_inside(p->args, json->data, json->len))
		abort();
	if (p->data.len > 0 && sio_json_validate(p->data.base, p->data.len) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);
	base_buf json = BASE_BUF_INIT, json2 = BASE_BUF_INIT, enc = BASE_BUF_INIT;
	base_buf enc2 = BASE_BUF_INIT;
	base_slice att[MAX_ATT], att2[MAX_ATT];
	const char *err = NULL;
	sio_packet p, q;
	int rc;

	memcpy(copy, data, size);
	if (sio_msgpack_decode(copy, size, &json, &p, att, MAX_ATT, &err) != 0) {
		if (err == NULL || json.len != 0)
			abort();
		goto as_json;
	}
	check_packet(&p, att, copy, size, &json);

	if (sio_msgpack_encode(&enc, p.type, p.nsp, p.id, p.data, att, p.attachments) != 0)
		abort();
	if (sio_msgpack_decode(enc.data, enc.len, &json2, &q, att2, MAX_ATT, &err) != 0) {
		/*
		 * An ext value of a type other than 0 is a leaf in msgpack but
		 * comes back as a [type, bin] array, one level deeper: near
		 * msgpack-c's 32 levels that is the one allowed failure.
		 */
		if (strcmp(err, "msgpack nesting too deep") != 0)
			abort();
		goto as_json;
	}
	check_packet(&q, att2, enc.data, enc.len, &json2);
	if (q.type != p.type || q.id != p.id || q.attachments != p.attachments ||
	    !slice_same(q.nsp, p.nsp) || !slice_same(q.data, p.data) ||
	    !slice_same(q.event, p.event) || !slice_same(q.args, p.args))
		abort();
	for (unsigned i = 0; i < p.attachments; i++) {
		if (!slice_same(att[i], att2[i]))
			abort();
	}
	if (sio_msgpack_encode(&enc2, q.type, q.nsp, q.id, q.data, att2, q.attachments) != 0)
		abort();
	if (!slice_same((base_slice){enc.data, enc.len}, (base_slice){enc2.data, enc2.len}))
		abort();
	if (p.type == SIO_EVENT || p.type == SIO_BINARY_EVENT || p.type == SIO_ACK ||
	    p.type == SIO_BINARY_ACK) {
		int ev = p.type == SIO_EVENT || p.type == SIO_BINARY_EVENT;
		enc2.len = 0;
		if (sio_msgpack_encode_list(&enc2, p.type, p.nsp, p.id, ev ? &p.event : NULL,
		                            p.event_escaped, p.args, att, p.attachments) != 0 ||
		    !slice_same((base_slice){enc.data, enc.len}, (base_slice){enc2.data, enc2.len}))
			abort();
	}

as_json:
	/* The input as the JSON data of an ack, with two attachments to point at. */
	enc.len = 0;
	json2.len = 0;
	att2[0] = (base_slice){"ab", 2};
	att2[1] = (base_slice){"", 0};
	rc = sio_msgpack_encode(&enc, SIO_ACK, BASE_SLICE_LIT("/n"), 1, (base_slice){copy, size},
	                        att2, 2);
	if (rc != 0 && rc != BASE_EINVAL)
		abort();
	if (rc == BASE_EINVAL && enc.len != 0)
		abort();
	if (rc == 0 && sio_msgpack_decode(enc.data, enc.len, &json2, &q, att, MAX_ATT, &err) == 0)
		check_packet(&q, att, enc.data, enc.len, &json2);

	/* The input as an argument list: as valid as "[" input "]", and the same bytes. */
	json.len = 0;
	base_buf_append(&json, "[", 1);
	base_buf_append(&json, copy, size);
	base_buf_append(&json, "]", 1);
	enc.len = 0;
	enc2.len = 0;
	rc = sio_msgpack_encode(&enc, SIO_ACK, BASE_SLICE_LIT("/"), 2,
	                        (base_slice){json.data, json.len}, att2, 2);
	int rc2 = sio_msgpack_encode_list(&enc2, SIO_ACK, BASE_SLICE_LIT("/"), 2, NULL, 0,
	                                  (base_slice){copy, size}, att2, 2);
	if (rc != rc2 || (rc == 0 && !slice_same((base_slice){enc.data, enc.len},
	                                         (base_slice){enc2.data, enc2.len})))
		abort();
	free(copy);
	base_buf_free(&json);
	base_buf_free(&json2);
	base_buf_free(&enc);
	base_buf_free(&enc2);
	return 0;
}
