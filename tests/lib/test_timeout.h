/*
 * test_timeout.h: the timing multiplier of the C tests.
 *
 * SPACES_TEST_TIMEOUT_MULTIPLIER (as libuv's UV_TEST_TIMEOUT_MULTIPLIER)
 * scales every timeout and deadline of the tests, for slow or loaded
 * machines: test_ms(5000) is 5 s normally, 15 s with the variable at 3. The
 * Python and Node harnesses (tests/lib/harness.py, harness.js) read the same
 * variable. Never below 1.
 */
#ifndef TESTS_TEST_TIMEOUT_H
#define TESTS_TEST_TIMEOUT_H

#include <stdlib.h>

static inline double test_timeout_multiplier(void)
{
	const char *e = getenv("SPACES_TEST_TIMEOUT_MULTIPLIER");
	double m = e != NULL ? strtod(e, NULL) : 1.0;

	return m > 1.0 ? m : 1.0;
}

/** A timeout of ms milliseconds, scaled. */
static inline unsigned test_ms(unsigned ms)
{
	return (unsigned)((double)ms * test_timeout_multiplier());
}

#endif
