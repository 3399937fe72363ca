/* Tests engineio/base/table.c: the intrusive chained hash table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "base/table.h"

typedef struct {
	base_table_link link;
	char key[16];
	int value;
} entry;

static entry *find(base_table *t, const char *key)
{
	size_t h = base_table_hash(key, strlen(key));

	for (base_table_link *l = base_table_bucket(t, h); l; l = l->next) {
		entry *e = BASE_CONTAINER_OF(l, entry, link);

		if (l->hash == h && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

static void add(base_table *t, entry *e, int i)
{
	snprintf(e->key, sizeof(e->key), "k%d", i);
	e->value = i;
	base_table_insert(t, &e->link, base_table_hash(e->key, strlen(e->key)));
}

static void test_hash_is_fnv1a(void **state)
{
	/* FNV-1a 64 of "" and "a" (the published test vectors). */
	assert_true(base_table_hash("", 0) == (size_t)0xcbf29ce484222325ull);
	assert_true(base_table_hash("a", 1) == (size_t)0xaf63dc4c8601ec8cull);
}

static void test_empty(void **state)
{
	base_table t = {0};

	assert_null(find(&t, "x"));
	assert_int_equal(t.size, 0);
	base_table_free(&t);
}

/* Insert, find, remove many: the table grows at two entries per bucket and
 * shrinks at an eighth, never below its first size. */
static void test_grow_find_shrink(void **state)
{
	enum { N = 5000 };
	entry *e = calloc(N, sizeof(*e));
	base_table t;
	char key[16];

	base_table_init(&t, 100); /* rounded up to 128 */
	for (int i = 0; i < N; i++) {
		add(&t, &e[i], i);
		assert_true(t.n <= 2 * t.size);
	}
	assert_int_equal(t.n, N);
	assert_int_equal(t.size, 4096);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_ptr_equal(find(&t, key), &e[i]);
	}
	assert_null(find(&t, "k-1"));
	for (int i = 0; i < N; i += 2)
		base_table_remove(&t, &e[i].link);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		if (i % 2)
			assert_ptr_equal(find(&t, key), &e[i]);
		else
			assert_null(find(&t, key));
	}
	for (int i = 1; i < N; i += 2)
		base_table_remove(&t, &e[i].link);
	assert_int_equal(t.n, 0);
	assert_int_equal(t.size, 128); /* shrunk back to its first size */
	base_table_free(&t);
	free(e);
}

/* A zeroed table starts at BASE_TABLE_MIN buckets. */
static void test_zeroed_table(void **state)
{
	base_table t = {0};
	entry e;

	add(&t, &e, 1);
	assert_int_equal(t.size, BASE_TABLE_MIN);
	assert_ptr_equal(find(&t, "k1"), &e);
	base_table_remove(&t, &e.link);
	assert_null(find(&t, "k1"));
	base_table_free(&t);
}

/* Removing the current entry inside foreach_safe, with walking set, visits
 * every entry once and does not shrink under the loop. */
static void test_foreach_remove(void **state)
{
	enum { N = 600 };
	entry *e = calloc(N, sizeof(*e));
	base_table t;
	base_table_link *l, *tmp;
	size_t i, seen = 0;
	long sum = 0;

	base_table_init(&t, 8);
	for (int k = 0; k < N; k++)
		add(&t, &e[k], k);
	size_t size = t.size;
	t.walking++;
	base_table_foreach_safe(&t, i, l, tmp)
	{
		sum += BASE_CONTAINER_OF(l, entry, link)->value;
		seen++;
		base_table_remove(&t, l);
	}
	t.walking--;
	assert_int_equal(seen, N);
	assert_int_equal(sum, (long)N * (N - 1) / 2);
	assert_int_equal(t.n, 0);
	assert_int_equal(t.size, size);
	base_table_free(&t);
	free(e);
}

/* Equal hashes (different keys) share a bucket and are told apart by key. */
static void test_collisions(void **state)
{
	base_table t = {0};
	entry a = {.key = "a"}, b = {.key = "b"};

	base_table_insert(&t, &a.link, 42);
	base_table_insert(&t, &b.link, 42);
	int found = 0;
	for (base_table_link *l = base_table_bucket(&t, 42); l; l = l->next)
		found += l == &a.link || l == &b.link;
	assert_int_equal(found, 2);
	base_table_remove(&t, &a.link);
	assert_ptr_equal(base_table_bucket(&t, 42), &b.link);
	base_table_remove(&t, &b.link);
	assert_null(base_table_bucket(&t, 42));
	base_table_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_is_fnv1a),    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_grow_find_shrink), cmocka_unit_test(test_zeroed_table),
	    cmocka_unit_test(test_foreach_remove),   cmocka_unit_test(test_collisions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
