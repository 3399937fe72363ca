/*
 * sio_test_args.h: reading an event's arguments and acking with JSON, for the
 * test servers (conformance-socketio, cluster-node). jansson is fine here:
 * these are test programs, not hot paths. Included once per program.
 */
#ifndef TESTS_SIO_TEST_ARGS_H
#define TESTS_SIO_TEST_ARGS_H

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "socketio.h"

/* The event's arguments as a JSON array (NULL when not valid). */
static json_t *args_array(const sio_event *ev)
{
	base_buf b = BASE_BUF_INIT;
	base_buf_append(&b, "[", 1);
	base_buf_append(&b, ev->args.base, ev->args.len);
	base_buf_append(&b, "]", 1);
	json_t *arr = json_loadb(b.data, b.len, 0, NULL);
	base_buf_free(&b);
	return json_is_array(arr) ? arr : (json_decref(arr), NULL);
}

/* Elements from..end of arr as JSON text without brackets, into out. */
static void args_text(json_t *arr, size_t from, size_t end, base_buf *out)
{
	for (size_t i = from; i < end; i++) {
		char *t = json_dumps(json_array_get(arr, i), JSON_COMPACT | JSON_ENCODE_ANY);
		if (i > from)
			base_buf_append(out, ",", 1);
		base_buf_append_str(out, t ? t : "null");
		free(t);
	}
}

/* Acks with v (borrowed) when the client asked for an ack. */
static void ack_json(const sio_event *ev, json_t *v)
{
	char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (t && ev->ack_id >= 0)
		sio_ack(ev->socket, ev->ack_id, (base_slice){t, strlen(t)}, NULL, 0);
	free(t);
}

#endif
