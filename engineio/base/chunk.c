/*
 * chunk.c: refcounted immutable byte chunks shared between write queues.
 */
#include "base.h"

#include <assert.h>
#include <stdlib.h>

base_chunk *base_chunk_new(size_t len)
{
	base_chunk *c;

	if (len > SIZE_MAX - sizeof(*c))
		base_oom("base_chunk", SIZE_MAX);
	c = base_xmalloc(sizeof(*c) + len);
	c->refs = 1;
	c->flags = 0;
	c->len = len;
	return c;
}

base_chunk *base_chunk_from(const void *data, size_t len)
{
	base_chunk *c = base_chunk_new(len);

	if (len > 0)
		memcpy(c->data, data, len);
	return c;
}

void base_chunk_unref(base_chunk *c)
{
	if (c == NULL)
		return;
	assert(c->refs > 0);
	if (--c->refs == 0)
		free(c);
}
