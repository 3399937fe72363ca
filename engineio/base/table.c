/*
 * table.c: the intrusive chained hash table (table.h).
 */
#include "table.h"

#include <stdlib.h>

size_t base_table_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 14695981039346656037ull; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

void base_table_init(base_table *t, size_t min_size)
{
	size_t n = 1;

	while (n < min_size && n <= SIZE_MAX / 4)
		n *= 2;
	memset(t, 0, sizeof(*t));
	t->min_size = n;
}

static size_t table_min(const base_table *t)
{
	return t->min_size ? t->min_size : BASE_TABLE_MIN;
}

/* Moves every link into nsize buckets (a power of two). */
static void table_resize(base_table *t, size_t nsize)
{
	base_table_link **nb = base_xcalloc(nsize, sizeof(*nb));

	for (size_t i = 0; i < t->size; i++) {
		base_table_link *l = t->buckets[i], *next;

		for (; l != NULL; l = next) {
			size_t b = l->hash & (nsize - 1);

			next = l->next;
			l->next = nb[b];
			nb[b] = l;
		}
	}
	free(t->buckets);
	t->buckets = nb;
	t->size = nsize;
}

void base_table_insert(base_table *t, base_table_link *l, size_t hash)
{
	size_t b;

	/* Two entries per bucket on average before doubling: a bucket is a pointer
	 * per (say) idle connection in the sid and room tables, a chain of two a
	 * step more per lookup. */
	if (t->n >= 2 * t->size)
		table_resize(t, t->size ? t->size * 2 : table_min(t));
	b = hash & (t->size - 1);
	l->hash = hash;
	l->next = t->buckets[b];
	t->buckets[b] = l;
	t->n++;
}

void base_table_remove(base_table *t, base_table_link *l)
{
	base_table_link **pp;

	if (t->size == 0)
		return;
	for (pp = &t->buckets[l->hash & (t->size - 1)]; *pp != NULL; pp = &(*pp)->next) {
		if (*pp != l)
			continue;
		*pp = l->next;
		l->next = NULL;
		t->n--;
		if (t->size > table_min(t) && t->n < t->size / 8 && !t->walking)
			table_resize(t, t->size / 2);
		return;
	}
}

void base_table_free(base_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->size = 0;
	t->n = 0;
}
