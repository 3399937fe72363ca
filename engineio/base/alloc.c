/*
 * alloc.c: allocation that aborts on failure (the tree's out-of-memory
 * policy, see base.h).
 */
#include "base.h"

#include <stdlib.h>

void base_oom(const char *what, size_t n)
{
	base_log(BASE_LOG_ERROR, "base", "out of memory (%s of %zu bytes): aborting", what, n);
	abort();
}

void *base_xmalloc(size_t n)
{
	void *p = malloc(n != 0 ? n : 1);

	if (p == NULL)
		base_oom("malloc", n);
	return p;
}

void *base_xcalloc(size_t count, size_t size)
{
	void *p;

	if (count == 0 || size == 0)
		count = size = 1;
	p = calloc(count, size);
	if (p == NULL)
		base_oom("calloc", size > 0 && count > SIZE_MAX / size ? SIZE_MAX : count * size);
	return p;
}

void *base_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n != 0 ? n : 1);

	if (q == NULL)
		base_oom("realloc", n);
	return q;
}

char *base_xstrndup(const char *s, size_t n)
{
	char *p;

	n = strnlen(s, n);
	p = base_xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *base_xstrdup(const char *s)
{
	return base_xstrndup(s, SIZE_MAX);
}
