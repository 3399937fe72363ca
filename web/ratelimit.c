/*
 * ratelimit.c: attempts counted per key (a client address, an account) in
 * fixed windows.
 *
 * An attempt is taken (web_limiter_take) before the work it guards starts,
 * on the loop, in one synchronous step: two hundred parallel requests
 * cannot all pass a check made before any of them is counted. A guarded
 * attempt that turns out well (a correct password) is given back
 * (web_limiter_refund), so only failures use the budget up.
 *
 * With a pace, a key over its budget is not shut out for the rest of the
 * window: one more attempt is let through every pace seconds. That is the
 * account's limiter: an attacker guessing one account's password gets one
 * guess per pace, and cannot lock the real user out for long.
 *
 * The table has a fixed size, so an attacker rotating addresses cannot make
 * it grow: when the few slots an address may use are all taken, the one
 * whose window started first is recycled. Losing an entry only forgets some
 * failures, which errs towards letting a user in.
 */
#include <stdlib.h>

#include "web_internal.h"

#define LIM_SLOTS 4096
#define LIM_PROBE 8

typedef struct {
	char key[WEB_LIMITER_KEY_MAX];
	uint64_t start_ms;
	uint64_t next_ms; /* with a pace: when the next attempt over the budget may go */
	unsigned count;
} lim_slot;

struct web_limiter {
	unsigned max;
	uint64_t window_ms;
	uint64_t pace_ms;
	lim_slot slots[LIM_SLOTS];
};

web_limiter *web_limiter_new(unsigned max_failures, unsigned window_s)
{
	web_limiter *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->max = max_failures;
	l->window_ms = (uint64_t)window_s * 1000;
	return l;
}

void web_limiter_set_pace(web_limiter *l, unsigned pace_s)
{
	if (l)
		l->pace_ms = (uint64_t)pace_s * 1000;
}

void web_limiter_free(web_limiter *l)
{
	free(l);
}

static uint32_t hash_key(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int live(const web_limiter *l, const lim_slot *s, uint64_t now_ms)
{
	return s->key[0] && now_ms < s->start_ms + l->window_ms;
}

/* The slot of key, or (create) a free, expired or oldest one for it; NULL when absent. */
static lim_slot *slot_for(web_limiter *l, const char *key, uint64_t now_ms, int create)
{
	uint32_t h = hash_key(key);
	lim_slot *victim = NULL;

	for (unsigned i = 0; i < LIM_PROBE; i++) {
		lim_slot *s = &l->slots[(h + i) % LIM_SLOTS];

		if (s->key[0] && strcmp(s->key, key) == 0) {
			if (!live(l, s, now_ms)) {
				s->start_ms = now_ms;
				s->next_ms = 0;
				s->count = 0;
			}
			return s;
		}
		if (!victim || !live(l, s, now_ms) ||
		    (live(l, victim, now_ms) && s->start_ms < victim->start_ms))
			victim = s;
	}
	if (!create)
		return NULL;
	snprintf(victim->key, sizeof(victim->key), "%s", key);
	victim->start_ms = now_ms;
	victim->next_ms = 0;
	victim->count = 0;
	return victim;
}

int web_limiter_blocked(web_limiter *l, const char *key, uint64_t now_ms, unsigned *retry_after_s)
{
	if (!l || l->max == 0)
		return 0;
	lim_slot *s = slot_for(l, key, now_ms, 0);
	if (!s || s->count < l->max)
		return 0;
	if (retry_after_s) {
		uint64_t left = s->start_ms + l->window_ms - now_ms;

		*retry_after_s = (unsigned)((left + 999) / 1000);
	}
	return 1;
}

void web_limiter_fail(web_limiter *l, const char *key, uint64_t now_ms)
{
	if (!l || l->max == 0)
		return;
	lim_slot *s = slot_for(l, key, now_ms, 1);
	s->count++;
}

static unsigned seconds_until(uint64_t t_ms, uint64_t now_ms)
{
	return t_ms > now_ms ? (unsigned)((t_ms - now_ms + 999) / 1000) : 1;
}

int web_limiter_take(web_limiter *l, const char *key, uint64_t now_ms, unsigned *retry_after_s)
{
	if (!l || l->max == 0)
		return 1;
	lim_slot *s = slot_for(l, key, now_ms, 1);
	if (s->count < l->max) {
		if (++s->count == l->max && l->pace_ms)
			s->next_ms = now_ms + l->pace_ms;
		return 1;
	}
	uint64_t end = s->start_ms + l->window_ms;
	if (l->pace_ms && now_ms >= s->next_ms) {
		s->count++;
		s->next_ms = now_ms + l->pace_ms;
		return 1;
	}
	if (retry_after_s) {
		uint64_t at = l->pace_ms && s->next_ms < end ? s->next_ms : end;

		*retry_after_s = seconds_until(at, now_ms);
	}
	return 0;
}

void web_limiter_refund(web_limiter *l, const char *key, uint64_t now_ms)
{
	if (!l || l->max == 0)
		return;
	lim_slot *s = slot_for(l, key, now_ms, 0);
	if (s && s->count > 0)
		s->count--;
}
