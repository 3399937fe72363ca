/*
 * time.c: the monotonic clock every timeout is measured with.
 */
#include "base.h"

#include <time.h>

uint64_t base_now_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC never fails on Linux with a valid pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
