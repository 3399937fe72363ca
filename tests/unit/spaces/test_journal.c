/* Tests spaces/journal.c: the results journal on disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spaces_internal.h"

typedef struct {
	int n;
	char seen[8][64];
	sp_jrec *recs[8];
} replayed;

static void on_replay(sp_jrec *rec, const char *json, size_t len, void *ud)
{
	replayed *r = ud;
	if (r->n < 8) {
		snprintf(r->seen[r->n], sizeof(r->seen[0]), "%.*s", (int)len, json);
		r->recs[r->n] = rec;
	}
	r->n++;
}

static char dir[] = "/tmp/spaces-journal-test-XXXXXX";

static long file_size(void)
{
	char path[256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/results.journal", dir);
	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Runs the loop until the journal's operation in flight, if any, is done. */
static void settle(uv_loop_t *loop)
{
	for (int i = 0; i < 200; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	uv_run(loop, UV_RUN_DEFAULT);
}

static void test_replay_release_and_truncate(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	assert_non_null(mkdtemp(dir));
	replayed r = {0};
	sp_journal *j;
	assert_int_equal(sp_journal_open(&loop, dir, 1 << 20, on_replay, &r, &j), 0);
	assert_int_equal(r.n, 0);
	sp_jrec *a, *b;
	assert_int_equal(sp_journal_add(j, "{\"id\":\"a\"}", 10, &a), 0);
	assert_int_equal(sp_journal_add(j, "{\"id\":\"b\"}", 10, &b), 0);
	settle(&loop);
	assert_int_equal(file_size(), 2 * (9 + 10 + 1));

	/* A second process (here: a second open) is kept out by the lock. */
	sp_journal *other;
	assert_int_not_equal(sp_journal_open(&loop, dir, 1 << 20, on_replay, &r, &other), 0);
	assert_int_equal(r.n, 0);

	/* Killed now: both come back at the next start, in order. */
	sp_journal_free(j);
	assert_int_equal(sp_journal_open(&loop, dir, 1 << 20, on_replay, &r, &j), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.seen[0], "{\"id\":\"a\"}");
	assert_string_equal(r.seen[1], "{\"id\":\"b\"}");
	/* Written: released. A small file is left as it is until every record
	 * in it is released, then emptied. */
	sp_journal_release(j, r.recs[0]);
	settle(&loop);
	assert_int_equal(file_size(), 2 * (9 + 10 + 1));
	sp_journal_release(j, r.recs[1]);
	settle(&loop);
	assert_int_equal(file_size(), 0);
	assert_int_equal(sp_journal_held_bytes(j), 0);
	sp_journal_free(j);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_damaged_tail_is_dropped(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	replayed r = {0};
	sp_journal *j;
	assert_int_equal(sp_journal_open(&loop, dir, 1 << 20, on_replay, &r, &j), 0);
	sp_jrec *a;
	assert_int_equal(sp_journal_add(j, "{\"id\":\"c\"}", 10, &a), 0);
	settle(&loop);
	sp_journal_free(j);
	/* A record cut by a crash, and a flipped byte's checksum. */
	char path[256];
	snprintf(path, sizeof(path), "%s/results.journal", dir);
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("00000000 {\"id\":\"d\"}\n12345678 {\"id\":", f);
	fclose(f);
	assert_int_equal(sp_journal_open(&loop, dir, 1 << 20, on_replay, &r, &j), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.seen[0], "{\"id\":\"c\"}");
	assert_int_equal(file_size(), 9 + 10 + 1);
	/* New records follow the good ones. */
	assert_int_equal(sp_journal_add(j, "{\"id\":\"e\"}", 10, &a), 0);
	settle(&loop);
	sp_journal_free(j);
	memset(&r, 0, sizeof(r));
	assert_int_equal(sp_journal_open(&loop, dir, 1 << 20, on_replay, &r, &j), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.seen[1], "{\"id\":\"e\"}");
	sp_journal_release(j, r.recs[0]);
	sp_journal_release(j, r.recs[1]);
	settle(&loop);
	sp_journal_free(j);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* Runs what is ready now, without waiting for timers. */
static void spin(uv_loop_t *loop)
{
	for (int i = 0; i < 200; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

/*
 * With a delay, a record released within it never reaches the file; one
 * not released is appended once the delay is over, or at once when asked
 * (the database is away), or when the journal is closed.
 */
static void test_delay_spares_records_released_in_time(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	replayed r = {0};
	sp_journal *j;
	assert_int_equal(sp_journal_open(&loop, dir, 1 << 20, on_replay, &r, &j), 0);
	assert_int_equal(r.n, 0);
	sp_journal_set_delay(j, 600000);
	sp_jrec *a, *b, *c;
	assert_int_equal(sp_journal_add(j, "{\"id\":\"a\"}", 10, &a), 0);
	spin(&loop);
	assert_int_equal(file_size(), 0);
	sp_journal_release(j, a);
	spin(&loop);
	assert_int_equal(file_size(), 0);
	assert_int_equal(sp_journal_held_bytes(j), 0);
	/* Flushed: written now. */
	assert_int_equal(sp_journal_add(j, "{\"id\":\"b\"}", 10, &b), 0);
	sp_journal_flush(j);
	spin(&loop);
	assert_int_equal(file_size(), 9 + 10 + 1);
	/* Closed while one waits: it is written on the way out. */
	assert_int_equal(sp_journal_add(j, "{\"id\":\"c\"}", 10, &c), 0);
	spin(&loop);
	assert_int_equal(file_size(), 9 + 10 + 1);
	sp_journal_free(j);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(file_size(), 2 * (9 + 10 + 1));
	assert_int_equal(sp_journal_open(&loop, dir, 1 << 20, on_replay, &r, &j), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.seen[0], "{\"id\":\"b\"}");
	assert_string_equal(r.seen[1], "{\"id\":\"c\"}");
	sp_journal_release(j, r.recs[0]);
	sp_journal_release(j, r.recs[1]);
	settle(&loop);
	assert_int_equal(file_size(), 0);
	/* A short delay over: appended by the timer. */
	sp_journal_set_delay(j, 30);
	assert_int_equal(sp_journal_add(j, "{\"id\":\"d\"}", 10, &a), 0);
	settle(&loop); /* runs until the timer's append is done */
	assert_int_equal(file_size(), 9 + 10 + 1);
	sp_journal_release(j, a);
	settle(&loop);
	assert_int_equal(file_size(), 0);
	sp_journal_free(j);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bound_refuses_and_compaction_makes_room(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	replayed r = {0};
	sp_journal *j;
	/* Room for 100 records of 1000 bytes (each line is 1010). */
	assert_int_equal(sp_journal_open(&loop, dir, 101000, on_replay, &r, &j), 0);
	char json[1001];
	memset(json, 'x', sizeof(json));
	json[0] = '"';
	json[999] = '"';
	json[1000] = 0;
	sp_jrec *recs[100], *extra;
	for (int i = 0; i < 100; i++)
		assert_int_equal(sp_journal_add(j, json, 1000, &recs[i]), 0);
	assert_int_equal(sp_journal_add(j, json, 1000, &extra), BASE_ELIMIT);
	settle(&loop);
	assert_int_equal(file_size(), 101000);
	/* Half written: still no room in the file, until it is rewritten. */
	for (int i = 0; i < 50; i++)
		sp_journal_release(j, recs[i]);
	for (int i = 0; i < 50; i++)
		assert_int_equal(sp_journal_add(j, json, 1000, &recs[i]), 0);
	settle(&loop);
	assert_true(file_size() <= 101000);
	assert_int_equal(sp_journal_held_bytes(j), 101000);
	sp_journal_free(j);
	memset(&r, 0, sizeof(r));
	assert_int_equal(sp_journal_open(&loop, dir, 101000, on_replay, &r, &j), 0);
	assert_int_equal(r.n, 100);
	for (int i = 0; i < 8; i++)
		sp_journal_release(j, r.recs[i]);
	sp_journal_free(j);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	base_log_set_level(BASE_LOG_OFF);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replay_release_and_truncate),
	    cmocka_unit_test(test_damaged_tail_is_dropped),
	    cmocka_unit_test(test_delay_spares_records_released_in_time),
	    cmocka_unit_test(test_bound_refuses_and_compaction_makes_room),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
