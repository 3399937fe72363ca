/*
 * test_queue.c: engineio/queue.c, the shared messages and a session's
 * outgoing queue: a message is its WebSocket frame in one refcounted chunk,
 * the queue keeps order across its ring's wrap and growth, counts bytes,
 * holds one reference per entry and gives its memory back when empty.
 */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "engineio_internal.h"
#include "http/ws_frame.h"

static eio_msg *text(const char *s)
{
	base_slice p = {s, strlen(s)};
	return eio__msg_new(EIO_MESSAGE, 0, &p, 1);
}

/* A message holds the frame a WebSocket writes as it is. */
static void test_msg_is_a_ready_frame(void **state)
{
	(void)state;
	base_slice parts[2] = {BASE_SLICE_LIT("hel"), BASE_SLICE_LIT("lo")};
	eio_msg *m = eio_msg_new(0, parts, 2);
	assert_non_null(m);
	base_chunk *c = eio__msg_chunk(m);
	assert_int_equal(c->len, 2 + 6);
	assert_int_equal((unsigned char)c->data[0], 0x80 | HTTP_WS_OP_TEXT);
	assert_int_equal((unsigned char)c->data[1], 6);
	assert_memory_equal(c->data + 2, "4hello", 6);
	assert_false(eio__msg_binary(m));
	base_slice p = eio__msg_packet(m);
	assert_int_equal(p.len, 6);
	assert_memory_equal(p.base, "4hello", 6);
	eio_msg_unref(m);

	/* Binary: the raw bytes, no type digit, a binary frame. */
	static const char raw[3] = {0, 1, 2};
	base_slice b = {raw, 3};
	m = eio_msg_new(1, &b, 1);
	c = eio__msg_chunk(m);
	assert_true(eio__msg_binary(m));
	assert_int_equal((unsigned char)c->data[0], 0x80 | HTTP_WS_OP_BINARY);
	p = eio__msg_packet(m);
	assert_int_equal(p.len, 3);
	assert_memory_equal(p.base, raw, 3);
	eio_msg_unref(m);

	/* Control packets: a type digit alone. */
	m = eio__msg_new(EIO_PING, 0, NULL, 0);
	p = eio__msg_packet(m);
	assert_int_equal(p.len, 1);
	assert_int_equal(p.base[0], '2');
	eio_msg_unref(m);
}

/* A payload past 125 and past 65535 bytes gets the longer frame headers. */
static void test_msg_long_headers(void **state)
{
	(void)state;
	size_t sizes[] = {125, 126, 65535, 65536, 70000};
	for (size_t i = 0; i < BASE_ARRAY_SIZE(sizes); i++) {
		char *buf = malloc(sizes[i]);
		memset(buf, 'x', sizes[i]);
		base_slice b = {buf, sizes[i]};
		eio_msg *m = eio_msg_new(1, &b, 1);
		base_slice p = eio__msg_packet(m);
		assert_int_equal(p.len, sizes[i]);
		assert_memory_equal(p.base, buf, sizes[i]);
		base_chunk *c = eio__msg_chunk(m);
		http_ws_frame f;
		const char *err = NULL;
		ssize_t h = http_ws_frame_parse(c->data, c->len, 0, 1u << 20, &f, &err);
		assert_int_equal(h, (ssize_t)(c->len - sizes[i]));
		assert_int_equal(f.payload_len, sizes[i]);
		eio_msg_unref(m);
		free(buf);
	}
}

/* The queue holds its own reference: a message outlives its creator's unref. */
static void test_queue_refs(void **state)
{
	(void)state;
	eio_queue q = {0};
	eio_msg *m = text("shared");
	eio__queue_push(&q, m);
	eio__queue_push(&q, m); /* twice, as a broadcast to one queue */
	assert_int_equal(eio__msg_chunk(m)->refs, 3);
	eio_msg_unref(m);
	assert_int_equal(q.len, 2);
	assert_int_equal(q.bytes, 2 * strlen("4shared"));
	eio_msg *a = eio__queue_pop(&q);
	assert_ptr_equal(a, m);
	assert_int_equal(eio__msg_chunk(a)->refs, 2);
	eio_msg_unref(a);
	eio__queue_clear(&q); /* drops the last reference (ASan checks the leak) */
	assert_int_equal(q.len, 0);
	assert_int_equal(q.bytes, 0);
	assert_null(q.slot);
	assert_null(eio__queue_pop(&q));
}

/* Order survives the ring wrapping around and growing while wrapped. */
static void test_queue_order_across_wrap_and_growth(void **state)
{
	(void)state;
	eio_queue q = {0};
	char name[16];
	int next_in = 0, next_out = 0;
	for (int round = 0; round < 50; round++) {
		/* Push 3, pop 2: the head walks around the ring as it grows. */
		for (int k = 0; k < 3; k++) {
			snprintf(name, sizeof(name), "%d", next_in++);
			eio_msg *m = text(name);
			eio__queue_push(&q, m);
			eio_msg_unref(m);
		}
		for (int k = 0; k < 2; k++) {
			eio_msg *m = eio__queue_pop(&q);
			snprintf(name, sizeof(name), "4%d", next_out++);
			base_slice p = eio__msg_packet(m);
			assert_int_equal(p.len, strlen(name));
			assert_memory_equal(p.base, name, p.len);
			eio_msg_unref(m);
		}
		assert_true(q.cap >= q.len);
		assert_int_equal(q.cap & (q.cap - 1), 0);
	}
	assert_int_equal(q.len, 50);
	/* eio__queue_at sees the same order without removing. */
	for (size_t i = 0; i < q.len; i++) {
		snprintf(name, sizeof(name), "4%d", next_out + (int)i);
		base_slice p = eio__msg_packet(eio__queue_at(&q, i));
		assert_memory_equal(p.base, name, p.len);
	}
	size_t bytes = 0;
	for (size_t i = 0; i < q.len; i++)
		bytes += eio__msg_packet(eio__queue_at(&q, i)).len;
	assert_int_equal(q.bytes, bytes);
	eio__queue_trim(&q); /* not empty: keeps everything */
	assert_non_null(q.slot);
	eio__queue_clear(&q);
}

/* An emptied queue gives its ring back on trim. */
static void test_queue_trim(void **state)
{
	(void)state;
	eio_queue q = {0};
	eio_msg *m = text("x");
	eio__queue_push(&q, m);
	eio_msg_unref(eio__queue_pop(&q));
	assert_non_null(q.slot);
	eio__queue_trim(&q);
	assert_null(q.slot);
	assert_int_equal(q.cap, 0);
	/* ... and works again afterwards. */
	eio__queue_push(&q, m);
	assert_int_equal(q.len, 1);
	eio_msg_unref(m);
	eio__queue_clear(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_msg_is_a_ready_frame),
	    cmocka_unit_test(test_msg_long_headers),
	    cmocka_unit_test(test_queue_refs),
	    cmocka_unit_test(test_queue_order_across_wrap_and_growth),
	    cmocka_unit_test(test_queue_trim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
