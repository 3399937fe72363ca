/*
 * timeq.h: timeouts of one fixed duration, for many owners, on one uv_timer.
 *
 * When every entry of a queue has the same duration, appending at the tail
 * keeps the list ordered by deadline, so arming, re-arming and cancelling
 * are O(1) and a queue costs one timer however many entries it holds (the
 * trick nginx and h2o use for keep-alive and heartbeat timeouts).
 */
#ifndef BASE_TIMEQ_H
#define BASE_TIMEQ_H

#include <uv.h>

#include "base.h"

typedef struct base_timeq_entry {
	base_list link;    /* unlinked (points to itself) when not armed */
	uint64_t deadline; /* loop time (ms) at which it expires */
} base_timeq_entry;

typedef struct base_timeq base_timeq;
/** Called once per expired entry; the entry is already disarmed and may be re-armed. */
typedef void (*base_timeq_cb)(base_timeq *q, base_timeq_entry *e);

struct base_timeq {
	uv_timer_t timer;
	base_list entries;
	uint64_t duration_ms;
	uint64_t armed_for; /* deadline the uv timer is set for; 0 when stopped */
	base_timeq_cb cb;
	void *data; /* free for the owner's use */
};

/** Prepares q on loop. Returns 0 or a libuv error. */
int base_timeq_init(uv_loop_t *loop, base_timeq *q, uint64_t duration_ms, base_timeq_cb cb);
void base_timeq_entry_init(base_timeq_entry *e);
/** Arms e to expire duration_ms from now, moving it if it was armed (in any queue). */
void base_timeq_arm(base_timeq *q, base_timeq_entry *e);
/** Disarms e. Harmless when not armed. */
void base_timeq_disarm(base_timeq_entry *e);
static inline int base_timeq_armed(const base_timeq_entry *e)
{
	return !base_list_empty(&e->link);
}
/** Closes the timer handle; entries are left disarmed. cb may be NULL. */
void base_timeq_close(base_timeq *q, uv_close_cb cb);

#endif
