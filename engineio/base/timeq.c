#include "timeq.h"

static void timeq_fire(uv_timer_t *t);

static void timeq_schedule(base_timeq *q)
{
	if (base_list_empty(&q->entries)) {
		if (q->armed_for) {
			uv_timer_stop(&q->timer);
			q->armed_for = 0;
		}
		return;
	}
	base_timeq_entry *head = BASE_CONTAINER_OF(q->entries.next, base_timeq_entry, link);
	/* A timer set for an earlier deadline fires first and reschedules. */
	if (q->armed_for && q->armed_for <= head->deadline)
		return;
	uint64_t now = uv_now(q->timer.loop);
	q->armed_for = head->deadline;
	uv_timer_start(&q->timer, timeq_fire, head->deadline > now ? head->deadline - now : 0, 0);
}

static void timeq_fire(uv_timer_t *t)
{
	base_timeq *q = BASE_CONTAINER_OF(t, base_timeq, timer);
	uint64_t now = uv_now(t->loop);
	q->armed_for = 0;
	while (!base_list_empty(&q->entries)) {
		base_timeq_entry *e = BASE_CONTAINER_OF(q->entries.next, base_timeq_entry, link);
		if (e->deadline > now)
			break;
		base_list_remove(&e->link);
		q->cb(q, e);
	}
	timeq_schedule(q);
}

int base_timeq_init(uv_loop_t *loop, base_timeq *q, uint64_t duration_ms, base_timeq_cb cb)
{
	base_list_init(&q->entries);
	q->duration_ms = duration_ms;
	q->armed_for = 0;
	q->cb = cb;
	q->data = NULL;
	return uv_timer_init(loop, &q->timer);
}

void base_timeq_entry_init(base_timeq_entry *e)
{
	base_list_init(&e->link);
	e->deadline = 0;
}

void base_timeq_arm(base_timeq *q, base_timeq_entry *e)
{
	base_list_remove(&e->link);
	e->deadline = uv_now(q->timer.loop) + q->duration_ms;
	base_list_insert_tail(&q->entries, &e->link);
	timeq_schedule(q);
}

void base_timeq_disarm(base_timeq_entry *e)
{
	base_list_remove(&e->link);
}

void base_timeq_close(base_timeq *q, uv_close_cb cb)
{
	base_timeq_entry *e;
	base_list *pos, *tmp;
	base_list_foreach_safe(pos, tmp, &q->entries)
	{
		e = BASE_CONTAINER_OF(pos, base_timeq_entry, link);
		base_list_remove(&e->link);
	}
	q->armed_for = 0;
	uv_close((uv_handle_t *)&q->timer, cb);
}
