/*
 * queue.c: shared outgoing messages and the per-session queue that holds
 * them until a transport takes them.
 *
 * A message is encoded once, as the WebSocket frame it will be, into one
 * refcounted chunk: a broadcast to a thousand WebSocket sessions is one
 * allocation shared by a thousand write queues. Polling reads the packet
 * out of the same chunk when it builds a GET's answer.
 */
#include <stdlib.h>

#include "engineio_internal.h"
#include "http/ws_frame.h"

/* ---- messages ------------------------------------------------------------ */

eio_msg *eio__msg_new(eio_packet_type type, int binary, const base_slice *parts, size_t n_parts)
{
	size_t payload = binary ? 0 : 1;
	for (size_t i = 0; i < n_parts; i++)
		payload += parts[i].len;
	char hdr[HTTP_WS_MAX_HEADER];
	size_t hlen =
	    http_ws_frame_header(hdr, 1, binary ? HTTP_WS_OP_BINARY : HTTP_WS_OP_TEXT, payload);
	base_chunk *c = base_chunk_new(hlen + payload);
	char *w = c->data;
	memcpy(w, hdr, hlen);
	w += hlen;
	if (!binary)
		*w++ = (char)('0' + (int)type);
	for (size_t i = 0; i < n_parts; i++) {
		if (parts[i].len)
			memcpy(w, parts[i].base, parts[i].len);
		w += parts[i].len;
	}
	c->flags = (uint32_t)(binary ? 1u : 0u) | (uint32_t)hlen << 8;
	return (eio_msg *)(void *)c;
}

eio_msg *eio_msg_new(int binary, const base_slice *parts, size_t n_parts)
{
	return eio__msg_new(EIO_MESSAGE, binary, parts, n_parts);
}

eio_msg *eio_msg_ref(eio_msg *m)
{
	base_chunk_ref(eio__msg_chunk(m));
	return m;
}

void eio_msg_unref(eio_msg *m)
{
	if (m)
		base_chunk_unref(eio__msg_chunk(m));
}

/* ---- the queue ------------------------------------------------------------ */

void eio__queue_push(eio_queue *q, eio_msg *m)
{
	if (q->len == q->cap) {
		/* A queue is bounded in bytes (max_buffered) and a packet is at
		 * least one byte, so the count stays far below 2^31. */
		uint32_t ncap = q->cap ? q->cap * 2 : 4;
		eio_msg **ns = base_xmalloc(ncap * sizeof(*ns));
		/* Unwrap the ring into the new array, oldest first. */
		for (uint32_t i = 0; i < q->len; i++)
			ns[i] = q->slot[(q->head + i) & (q->cap - 1)];
		free(q->slot);
		q->slot = ns;
		q->cap = ncap;
		q->head = 0;
	}
	q->slot[(q->head + q->len) & (q->cap - 1)] = eio_msg_ref(m);
	q->len++;
	q->bytes += eio__msg_packet(m).len;
}

eio_msg *eio__queue_at(const eio_queue *q, size_t i)
{
	return q->slot[(q->head + i) & (q->cap - 1)];
}

eio_msg *eio__queue_pop(eio_queue *q)
{
	if (!q->len)
		return NULL;
	eio_msg *m = q->slot[q->head];
	q->head = (q->head + 1) & (q->cap - 1);
	q->len--;
	q->bytes -= eio__msg_packet(m).len;
	return m;
}

void eio__queue_trim(eio_queue *q)
{
	if (q->len)
		return;
	free(q->slot);
	q->slot = NULL;
	q->cap = 0;
	q->head = 0;
}

void eio__queue_clear(eio_queue *q)
{
	eio_msg *m;
	while ((m = eio__queue_pop(q)) != NULL)
		eio_msg_unref(m);
	eio__queue_trim(q);
	q->bytes = 0;
}
