/*
 * buf.c: the growable heap buffer.
 */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>

/* Small buffers start at this size so that a few appends do not each realloc. */
#define BASE_BUF_MIN_CAP 64

int base_buf_reserve(base_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX - b->len)
		return BASE_ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;
	/* Doubling keeps appends amortised O(1); fall back to the exact size near SIZE_MAX. */
	cap = b->cap < BASE_BUF_MIN_CAP ? BASE_BUF_MIN_CAP : b->cap;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	p = realloc(b->data, cap);
	if (p == NULL)
		return BASE_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int base_buf_append(base_buf *b, const void *data, size_t len)
{
	int rc;

	if (len == 0)
		return 0;
	rc = base_buf_reserve(b, len);
	if (rc < 0)
		return rc;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

int base_buf_append_str(base_buf *b, const char *s)
{
	return base_buf_append(b, s, strlen(s));
}

int base_buf_printf(base_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room = b->cap - b->len;
	int n;

	/* First try into the room already there; most formats fit and need one pass. */
	va_start(ap, fmt);
	n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		return BASE_EINVAL;
	if ((size_t)n >= room) {
		if (base_buf_reserve(b, (size_t)n + 1) < 0)
			return BASE_ENOMEM;
		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
		if (n < 0)
			return BASE_EINVAL;
	}
	b->len += (size_t)n;
	return 0;
}

void base_buf_consume(base_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void base_buf_free(base_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
