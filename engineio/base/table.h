/*
 * table.h: an intrusive chained hash table keyed by the owner's bytes.
 *
 * The owner embeds a base_table_link in each entry and keeps the key; the
 * table keeps only the links and each entry's hash, so inserting never
 * allocates per entry and a resize never hashes again. Buckets are a power
 * of two; the table doubles when it holds twice as many entries as buckets and
 * halves when it is an eighth full (never below its first size), so it
 * gives memory back after a spike and never flaps between two sizes.
 *
 * Lookups walk one bucket:
 *
 *     for (base_table_link *l = base_table_bucket(&t, h); l; l = l->next)
 *             if (l->hash == h && key_of(l) equals key) return it;
 *
 * Out of memory aborts (base.h), so insert and remove never fail.
 */
#ifndef BASE_TABLE_H
#define BASE_TABLE_H

#include "base.h"

typedef struct base_table_link {
	struct base_table_link *next;
	size_t hash;
} base_table_link;

typedef struct {
	base_table_link **buckets;
	size_t size; /* buckets: 0 until the first insert, then a power of two */
	size_t n;    /* entries */
	size_t
	    min_size; /* buckets at the first insert, and the least after a shrink (0: BASE_TABLE_MIN) */
	int walking; /* > 0 while someone walks the buckets: the table does not shrink */
} base_table;

/** The hash of len bytes (FNV-1a, 64 bits). */
size_t base_table_hash(const void *key, size_t len);
/*
 * An empty table that starts at min_size buckets (rounded up to a power of
 * two). A zeroed base_table is an empty one that starts at BASE_TABLE_MIN.
 */
#define BASE_TABLE_MIN 64
void base_table_init(base_table *t, size_t min_size);
/** Adds l with its key's hash; the caller has checked that the key is not there. */
void base_table_insert(base_table *t, base_table_link *l, size_t hash);
/** Removes l, which must be in t. */
void base_table_remove(base_table *t, base_table_link *l);
/** Frees the buckets (not the entries) and empties t. */
void base_table_free(base_table *t);

/** The first link of the bucket of hash (NULL when empty); follow ->next. */
static inline base_table_link *base_table_bucket(const base_table *t, size_t hash)
{
	return t->size ? t->buckets[hash & (t->size - 1)] : NULL;
}

/*
 * Visits every link; the body may remove the current one (only that one).
 * Wrap the loop in walking++ / walking-- when the body may remove entries,
 * so that no shrink moves the buckets under it.
 */
#define base_table_foreach_safe(t, i, l, tmp) \
	for ((i) = 0; (i) < (t)->size; (i)++) \
		for ((l) = (t)->buckets[i]; (l) != NULL && ((tmp) = (l)->next, 1); (l) = (tmp))

#endif
