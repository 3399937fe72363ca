/*
 * arena.c: per-request bump allocator.
 *
 * Blocks form a singly linked list, newest first; only the newest block is
 * bumped. The limit bounds the bytes taken from malloc (block payloads), so a
 * request cannot grow its arena past what its owner allows.
 */
#include "base.h"

#include <stdlib.h>

#define ARENA_ALIGN 16
#define ARENA_BLOCK_SIZE 4096

struct base_arena_block {
	base_arena_block *next;
	size_t size; /* usable bytes in data */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

void base_arena_init(base_arena *a, size_t limit)
{
	a->head = NULL;
	a->used = 0;
	a->total = 0;
	a->limit = limit;
}

static base_arena_block *arena_grow(base_arena *a, size_t n)
{
	size_t size = n > ARENA_BLOCK_SIZE ? n : ARENA_BLOCK_SIZE;
	base_arena_block *b;

	if (a->limit != 0) {
		size_t left = a->total < a->limit ? a->limit - a->total : 0;

		if (left < n)
			return NULL;
		/* Near the limit, take only what is left rather than a full block. */
		if (size > left)
			size = left;
	}
	if (size > SIZE_MAX - sizeof(*b) - ARENA_ALIGN)
		base_oom("base_arena", SIZE_MAX);
	b = aligned_alloc(ARENA_ALIGN,
	                  (sizeof(*b) + size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1));
	if (b == NULL)
		base_oom("base_arena", size);
	b->next = a->head;
	b->size = size;
	a->head = b;
	a->used = 0;
	a->total += size;
	return b;
}

void *base_arena_alloc(base_arena *a, size_t n)
{
	size_t off = 0;
	void *p;

	if (n == 0)
		n = 1;
	/* Align the start rather than the size, so an allocation may end a block exactly. */
	if (a->head != NULL) {
		off = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
		if (off > a->head->size || a->head->size - off < n)
			off = SIZE_MAX;
	}
	if (a->head == NULL || off == SIZE_MAX) {
		if (arena_grow(a, n) == NULL)
			return NULL;
		off = 0;
	}
	p = a->head->data + off;
	a->used = off + n;
	return p;
}

char *base_arena_strndup(base_arena *a, const char *s, size_t len)
{
	char *p;

	if (len == SIZE_MAX)
		base_oom("base_arena", SIZE_MAX);
	p = base_arena_alloc(a, len + 1);
	if (p == NULL)
		return NULL;
	if (len > 0)
		memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

void base_arena_reset(base_arena *a)
{
	base_arena_block *b = a->head;

	while (b != NULL) {
		base_arena_block *next = b->next;

		free(b);
		b = next;
	}
	a->head = NULL;
	a->used = 0;
	a->total = 0;
}
