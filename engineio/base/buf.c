/*
 * buf.c: the growable heap buffer.
 */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>

/* Small buffers start at this size so that a few appends do not each realloc. */
#define BASE_BUF_MIN_CAP 64

void base_buf_reserve(base_buf *b, size_t extra)
{
	size_t need, cap;

	if (extra > SIZE_MAX - b->len)
		base_oom("base_buf", SIZE_MAX);
	need = b->len + extra;
	if (need <= b->cap)
		return;
	/* Doubling keeps appends amortised O(1); fall back to the exact size near SIZE_MAX. */
	cap = b->cap < BASE_BUF_MIN_CAP ? BASE_BUF_MIN_CAP : b->cap;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	b->data = base_xrealloc(b->data, cap);
	b->cap = cap;
}

void base_buf_append(base_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return;
	base_buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void base_buf_append_str(base_buf *b, const char *s)
{
	base_buf_append(b, s, strlen(s));
}

/* vsnprintf fails only on a format the compiler's check would have refused
 * (or output past INT_MAX): a bug, not an input, so it aborts like OOM. */
static void buf_format_failed(const char *fmt)
{
	base_log(BASE_LOG_ERROR, "base", "base_buf_printf: cannot format \"%s\": aborting", fmt);
	abort();
}

void base_buf_printf(base_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room = b->cap - b->len;
	int n;

	/* First try into the room already there; most formats fit and need one pass. */
	va_start(ap, fmt);
	n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		buf_format_failed(fmt);
	if ((size_t)n >= room) {
		base_buf_reserve(b, (size_t)n + 1);
		va_start(ap, fmt);
		n = vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
		if (n < 0)
			buf_format_failed(fmt);
	}
	b->len += (size_t)n;
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
