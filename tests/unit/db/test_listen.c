/*
 * Tests spaces/db/listen.c against a real PostgreSQL: LISTEN/NOTIFY delivery
 * in order, notifications that follow their transaction, several and
 * removed registrations, and re-LISTEN after the server restarts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db_test.h"

static dbt_cluster g_pg;

#define KEEP 32

typedef struct {
	int armed; /* NULL payloads: LISTEN (re-)established */
	int n;
	char got[KEEP][96];
	db_pool *pool;     /* for the registration that removes itself */
	int unlisten_self; /* remove this registration at the first notification */
} lctx;

static void on_note(const char *channel, const char *payload, void *ud)
{
	lctx *l = ud;

	if (payload == NULL) {
		l->armed++;
		return;
	}
	snprintf(l->got[l->n % KEEP], sizeof(l->got[0]), "%s:%s", channel, payload);
	l->n++;
	if (l->unlisten_self)
		assert_int_equal(db_unlisten(l->pool, channel, on_note, l), 0);
}

typedef struct {
	int calls;
	int status;
} done_ctx;

static void on_done(const db_result *res, void *ud)
{
	done_ctx *d = ud;

	d->calls++;
	d->status = db_status(res);
}

typedef struct {
	uv_loop_t loop;
	db_pool *pool;
} fx;

static int fx_setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	uv_loop_init(&f->loop);
	f->pool = db_pool_new(&f->loop, g_pg.url, 2);
	*state = f;
	return f->pool != NULL ? 0 : -1;
}

static int fx_teardown(void **state)
{
	fx *f = *state;

	assert_true(dbt_pool_close(&f->loop, f->pool));
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static void notify(fx *f, const char *channel, const char *payload)
{
	done_ctx d = {0, 0};

	assert_int_equal(db_notify(f->pool, channel, payload, on_done, &d), 0);
	assert_true(dbt_wait_count(&f->loop, &d.calls, 1, 10000));
	assert_int_equal(d.status, 0);
}

static void test_listen_notify(void **state)
{
	fx *f = *state;
	lctx a, other;
	char p[12];

	memset(&a, 0, sizeof(a));
	memset(&other, 0, sizeof(other));
	/* Case, dots and quotes in a channel name are kept as they are. */
	assert_int_equal(db_listen(f->pool, "Spaces.\"Events\"", on_note, &a), 0);
	assert_int_equal(db_listen(f->pool, "other", on_note, &other), 0);
	assert_true(dbt_wait_count(&f->loop, &a.armed, 1, 10000));
	assert_true(dbt_wait_count(&f->loop, &other.armed, 1, 10000));
	assert_int_equal(a.n, 0);

	for (int i = 1; i <= 5; i++) {
		snprintf(p, sizeof(p), "%d", i);
		assert_int_equal(db_notify(f->pool, "Spaces.\"Events\"", p, NULL, NULL), 0);
	}
	assert_true(dbt_wait_count(&f->loop, &a.n, 5, 10000));
	notify(f, "Spaces.\"Events\"", "it's \"quoted\" é");
	assert_true(dbt_wait_count(&f->loop, &a.n, 6, 10000));
	/* Each notification went out on its own transaction, possibly on either
	 * pool connection, so only their set is certain; one connection keeps order. */
	int seen[6] = {0};
	for (int i = 0; i < 5; i++) {
		int k = atoi(a.got[i] + strlen("Spaces.\"Events\":"));
		assert_true(k >= 1 && k <= 5);
		seen[k]++;
	}
	for (int k = 1; k <= 5; k++)
		assert_int_equal(seen[k], 1);
	assert_string_equal(a.got[5], "Spaces.\"Events\":it's \"quoted\" é");
	assert_int_equal(other.n, 0);
	assert_int_equal(a.armed, 1);

	/* Bad arguments. */
	assert_int_equal(db_listen(f->pool, "", on_note, &a), BASE_EINVAL);
	assert_int_equal(
	    db_listen(f->pool,
	              "a_channel_name_longer_than_sixty_three_bytes_is_cut_by_the_server_x",
	              on_note, &a),
	    BASE_EINVAL);
	assert_int_equal(db_unlisten(f->pool, "never", on_note, &a), BASE_EINVAL);
}

static void test_notify_follows_transaction(void **state)
{
	fx *f = *state;
	lctx l;
	done_ctx d = {0, 0};
	const char *ch[] = {"tx_chan", "committed"};
	const char *rb[] = {"tx_chan", "rolled back"};
	db_stmt ok[] = {
	    {"CREATE TEMP TABLE IF NOT EXISTS n_t (v text)", 0, NULL},
	    {"INSERT INTO n_t VALUES ('x')", 0, NULL},
	    {"SELECT pg_notify($1, $2)", 2, ch},
	};
	db_stmt bad[] = {
	    {"SELECT pg_notify($1, $2)", 2, rb},
	    {"SELECT 1 / 0", 0, NULL},
	};

	memset(&l, 0, sizeof(l));
	assert_int_equal(db_listen(f->pool, "tx_chan", on_note, &l), 0);
	assert_true(dbt_wait_count(&f->loop, &l.armed, 1, 10000));

	assert_int_equal(db_query_tx(f->pool, ok, 3, on_done, &d), 0);
	assert_true(dbt_wait_count(&f->loop, &d.calls, 1, 10000));
	assert_int_equal(d.status, 0);
	assert_true(dbt_wait_count(&f->loop, &l.n, 1, 10000));
	assert_string_equal(l.got[0], "tx_chan:committed");

	memset(&d, 0, sizeof(d));
	assert_int_equal(db_query_tx(f->pool, bad, 2, on_done, &d), 0);
	assert_true(dbt_wait_count(&f->loop, &d.calls, 1, 10000));
	assert_int_equal(d.status, DB_ESERVER);
	/* A marker sent after the failed transaction: nothing may come before it. */
	notify(f, "tx_chan", "marker");
	assert_true(dbt_wait_count(&f->loop, &l.n, 2, 10000));
	assert_string_equal(l.got[1], "tx_chan:marker");
}

static void test_unlisten(void **state)
{
	fx *f = *state;
	lctx a, b, self, mark;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&self, 0, sizeof(self));
	memset(&mark, 0, sizeof(mark));
	self.pool = f->pool;
	self.unlisten_self = 1;
	assert_int_equal(db_listen(f->pool, "shared", on_note, &a), 0);
	assert_int_equal(db_listen(f->pool, "shared", on_note, &b), 0);
	assert_int_equal(db_listen(f->pool, "shared", on_note, &self), 0);
	assert_int_equal(db_listen(f->pool, "marker", on_note, &mark), 0);
	assert_true(dbt_wait_count(&f->loop, &a.armed, 1, 10000));
	assert_true(dbt_wait_count(&f->loop, &b.armed, 1, 10000));
	assert_true(dbt_wait_count(&f->loop, &self.armed, 1, 10000));
	assert_true(dbt_wait_count(&f->loop, &mark.armed, 1, 10000));

	notify(f, "shared", "one");
	assert_true(dbt_wait_count(&f->loop, &b.n, 1, 10000));
	assert_int_equal(a.n, 1);
	assert_int_equal(self.n, 1); /* and it removed itself */
	assert_int_equal(db_unlisten(f->pool, "shared", on_note, &a), 0);
	assert_int_equal(db_unlisten(f->pool, "shared", on_note, &a), BASE_EINVAL);

	notify(f, "shared", "two");
	assert_true(dbt_wait_count(&f->loop, &b.n, 2, 10000));
	assert_int_equal(a.n, 1);
	assert_int_equal(self.n, 1);

	/* The last registration gone, the channel is UNLISTENed. */
	assert_int_equal(db_unlisten(f->pool, "shared", on_note, &b), 0);
	notify(f, "shared", "three");
	notify(f, "marker", "m");
	assert_true(dbt_wait_count(&f->loop, &mark.n, 1, 10000));
	assert_int_equal(b.n, 2);
}

static int listener_ready_again(void *arg)
{
	lctx *l = arg;
	return l->armed >= 2;
}

static void test_relisten_after_restart(void **state)
{
	fx *f = *state;
	lctx l;
	dbt_restart rs;
	done_ctx d;

	memset(&l, 0, sizeof(l));
	assert_int_equal(db_listen(f->pool, "restart_chan", on_note, &l), 0);
	assert_true(dbt_wait_count(&f->loop, &l.armed, 1, 10000));
	notify(f, "restart_chan", "before");
	assert_true(dbt_wait_count(&f->loop, &l.n, 1, 10000));

	dbt_restart_begin(&rs, &g_pg, 300);
	/* The listener comes back by itself and says so with a NULL payload. */
	assert_true(dbt_wait(&f->loop, listener_ready_again, &l, 15000));
	pthread_join(rs.thread, NULL);
	assert_int_equal(dbt_restart_phase(&rs), 2);
	assert_int_equal(l.armed, 2);

	/* A pool connection may still be reconnecting: retry the notify until it goes. */
	for (int tries = 0; tries < 50; tries++) {
		memset(&d, 0, sizeof(d));
		assert_int_equal(db_notify(f->pool, "restart_chan", "after", on_done, &d), 0);
		assert_true(dbt_wait_count(&f->loop, &d.calls, 1, 15000));
		if (d.status == 0)
			break;
	}
	assert_int_equal(d.status, 0);
	assert_true(dbt_wait_count(&f->loop, &l.n, 2, 10000));
	assert_string_equal(l.got[1], "restart_chan:after");
}

static int group_setup(void **state)
{
	(void)state;
	return dbt_start(&g_pg);
}

static int group_teardown(void **state)
{
	(void)state;
	dbt_stop(&g_pg);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_listen_notify, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_notify_follows_transaction, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_unlisten, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_relisten_after_restart, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
