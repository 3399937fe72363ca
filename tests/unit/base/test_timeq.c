/* Tests engineio/base/timeq.c: fixed-duration timeout queues on one uv_timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_timeout.h"

#include "base/timeq.h"

typedef struct {
	base_timeq_entry e;
	int fired;
	uint64_t at;
} item;

static int total_fired;

static void on_expire(base_timeq *q, base_timeq_entry *e)
{
	item *it = BASE_CONTAINER_OF(e, item, e);
	it->fired++;
	it->at = uv_now(q->timer.loop);
	total_fired++;
}

static void test_order_and_disarm(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	base_timeq q;
	assert_int_equal(base_timeq_init(&loop, &q, 30, on_expire), 0);
	item a = {0}, b = {0}, c = {0};
	base_timeq_entry_init(&a.e);
	base_timeq_entry_init(&b.e);
	base_timeq_entry_init(&c.e);
	total_fired = 0;
	uint64_t start = uv_now(&loop);
	base_timeq_arm(&q, &a.e);
	base_timeq_arm(&q, &b.e);
	base_timeq_arm(&q, &c.e);
	assert_true(base_timeq_armed(&b.e));
	base_timeq_disarm(&b.e);
	assert_false(base_timeq_armed(&b.e));
	base_timeq_disarm(&b.e); /* twice is harmless */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 0);
	assert_int_equal(c.fired, 1);
	assert_true(a.at >= start + 30);
	assert_true(c.at >= a.at);
	base_timeq_close(&q, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

typedef struct {
	base_timeq *q;
	item *it;
	int rearms;
} rearm_ctx;

static rearm_ctx g_rearm;

static void on_rearm(uv_timer_t *t)
{
	/* Re-arming moves the entry to the back: it must not fire at the first deadline. */
	if (g_rearm.rearms++ < 3)
		base_timeq_arm(g_rearm.q, &g_rearm.it->e);
	else
		uv_timer_stop(t);
}

static void test_rearm_postpones(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	base_timeq q;
	/* Scaled (SPACES_TEST_TIMEOUT_MULTIPLIER): on a loaded machine the 20 ms
	 * re-arm timer can come later than the 40 ms deadline it must beat. */
	base_timeq_init(&loop, &q, test_ms(40), on_expire);
	item a = {0};
	base_timeq_entry_init(&a.e);
	uint64_t start = uv_now(&loop);
	base_timeq_arm(&q, &a.e);
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	g_rearm = (rearm_ctx){&q, &a, 0};
	uv_timer_start(&t, on_rearm, test_ms(20), test_ms(20));
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(a.fired, 1);
	/* Last re-arm at ~60 ms, so it fires at ~100 ms, not at 40. */
	assert_true(a.at >= start + test_ms(90));
	uv_close((uv_handle_t *)&t, NULL);
	base_timeq_close(&q, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_close_with_armed_entries(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	base_timeq q;
	base_timeq_init(&loop, &q, 1000, on_expire);
	item a = {0};
	base_timeq_entry_init(&a.e);
	base_timeq_arm(&q, &a.e);
	base_timeq_close(&q, NULL);
	assert_false(base_timeq_armed(&a.e));
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(a.fired, 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_disarm),
	    cmocka_unit_test(test_rearm_postpones),
	    cmocka_unit_test(test_close_with_armed_entries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
