/*
 * Tests spaces/db/pool.c, conn.c and result.c against a real PostgreSQL:
 * queries with parameters and NULLs, errors, a thousand concurrent queries,
 * transactions, queries while connecting, a full queue, an unreachable
 * server, a bad connection string, a server restart in the middle, and
 * shutdown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "db_test.h"

static dbt_cluster g_pg;

/* ---- capturing results ----------------------------------------------------------- */

#define CAP_COLS 4
#define CAP_PARTS 4

typedef struct {
	int calls;
	int status;
	char sqlstate[6];
	char error[512];
	char detail[256];
	int ntuples, nfields;
	char v[CAP_COLS][64];
	int null[CAP_COLS];
	uint64_t affected;
	unsigned count;
	int failed;
	int part_status[CAP_PARTS];
	char part_v[CAP_PARTS][64];
} capture;

static void on_capture(const db_result *res, void *ud)
{
	capture *c = ud;

	c->calls++;
	c->status = db_status(res);
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", db_sqlstate(res));
	snprintf(c->error, sizeof(c->error), "%s", db_error(res) ? db_error(res) : "");
	snprintf(c->detail, sizeof(c->detail), "%s",
	         db_error_detail(res) ? db_error_detail(res) : "");
	c->ntuples = db_ntuples(res);
	c->nfields = db_nfields(res);
	for (int i = 0; i < CAP_COLS; i++) {
		const char *v = db_value(res, 0, i);
		snprintf(c->v[i], sizeof(c->v[i]), "%s", v ? v : "(out of range)");
		c->null[i] = db_isnull(res, 0, i);
	}
	c->affected = db_affected(res);
	c->count = db_tx_count(res);
	c->failed = db_tx_failed(res);
	for (unsigned i = 0; i < c->count && i < CAP_PARTS; i++) {
		const db_result *p = db_tx_result(res, i);
		const char *v = db_value(p, 0, 0);
		c->part_status[i] = db_status(p);
		snprintf(c->part_v[i], sizeof(c->part_v[i]), "%s", v ? v : "");
	}
}

typedef struct {
	uv_loop_t loop;
	db_pool *pool;
} fx;

static int fx_setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));

	uv_loop_init(&f->loop);
	f->pool = db_pool_new(&f->loop, g_pg.url, 4);
	*state = f;
	return f->pool != NULL ? 0 : -1;
}

static int fx_teardown(void **state)
{
	fx *f = *state;

	if (f->pool != NULL)
		assert_true(dbt_pool_close(&f->loop, f->pool));
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

/* Runs one query and waits for its answer. */
static void run(fx *f, const char *sql, int n, const char *const *params, capture *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(db_query(f->pool, sql, n, params, on_capture, c), 0);
	assert_true(dbt_wait_count(&f->loop, &c->calls, 1, 10000));
	assert_int_equal(c->calls, 1);
}

static void run_ok(fx *f, const char *sql, int n, const char *const *params, capture *c)
{
	run(f, sql, n, params, c);
	if (c->status != 0)
		fail_msg("%s: %s (%s)", sql, c->error, c->sqlstate);
}

/* ---- queries ---------------------------------------------------------------------- */

static void test_params(void **state)
{
	fx *f = *state;
	capture c;
	const char *p[] = {"2", "3", "it's; DROP TABLE x --"};

	run_ok(f, "SELECT $1::int + $2::int AS sum, $3::text AS name, 'x' AS \"Upper\"", 3, p, &c);
	assert_true(c.status == 0);
	assert_int_equal(c.ntuples, 1);
	assert_int_equal(c.nfields, 3);
	assert_string_equal(c.v[0], "5");
	assert_string_equal(c.v[1], "it's; DROP TABLE x --");
	assert_string_equal(c.v[3], "(out of range)");
	assert_null(c.error[0] ? c.error : NULL);
	assert_string_equal(c.sqlstate, "");
	assert_int_equal(c.count, 1);
	assert_int_equal(c.failed, -1);

	const char *n[] = {"5"};
	run_ok(f, "SELECT g FROM generate_series(1, $1::int) g", 1, n, &c);
	assert_int_equal(c.ntuples, 5);
	assert_int_equal(c.affected, 5);
}

/*
 * Single-statement queries with parameters are prepared once per connection
 * (a named Parse, then Bind/Execute only). The answers must be those of the
 * unprepared path, whatever the cache does.
 */
static void test_prepared(void **state)
{
	fx *f = *state;
	capture c;
	char num[16], want[16];

	/* The statement sees itself: it runs as a prepared statement. */
	run_ok(f, "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", 1,
	       (const char *const[]){
	           "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1"},
	       &c);
	assert_string_equal(c.v[0], "1");
	/* Many uses, every pool connection, other parameters each time. */
	for (int i = 0; i < 50; i++) {
		snprintf(num, sizeof(num), "%d", i);
		snprintf(want, sizeof(want), "%d", i * 2);
		run_ok(f, "SELECT $1::int * 2", 1, (const char *const[]){num}, &c);
		assert_string_equal(c.v[0], want);
	}
	/* A broken statement reports its own error every time, not "no such statement". */
	for (int i = 0; i < 3; i++) {
		run(f, "SELEC $1", 1, (const char *const[]){"1"}, &c);
		assert_int_equal(c.status, DB_ESERVER);
		assert_string_equal(c.sqlstate, "42601");
	}
	/* A statement that cannot be prepared yet works once it can. */
	run(f, "SELECT k FROM t_later WHERE k = $1", 1, (const char *const[]){"a"}, &c);
	assert_string_equal(c.sqlstate, "42P01");
	run_ok(f, "CREATE TABLE t_later (k text)", 0, NULL, &c);
	run_ok(f, "INSERT INTO t_later VALUES ($1)", 1, (const char *const[]){"a"}, &c);
	for (int i = 0; i < 4; i++) {
		run_ok(f, "SELECT k FROM t_later WHERE k = $1", 1, (const char *const[]){"a"}, &c);
		assert_int_equal(c.ntuples, 1);
	}
	/* The schema changes under a prepared statement: at most one use per
	 * connection fails (0A000), then it is prepared afresh and works. */
	for (int i = 0; i < 4; i++)
		run_ok(f, "SELECT * FROM t_later WHERE k = $1", 1, (const char *const[]){"a"}, &c);
	run_ok(f, "ALTER TABLE t_later ADD COLUMN v int DEFAULT 7", 0, NULL, &c);
	int failures = 0;
	for (int i = 0; i < 12; i++) {
		run(f, "SELECT * FROM t_later WHERE k = $1", 1, (const char *const[]){"a"}, &c);
		if (c.status != 0) {
			assert_string_equal(c.sqlstate, "0A000");
			failures++;
		} else {
			assert_int_equal(c.nfields, 2);
			assert_string_equal(c.v[1], "7");
		}
	}
	assert_true(failures <= 4); /* at most one per pool connection */
	assert_int_equal(c.status, 0);
	/* More distinct statements than the cache holds: all still answered. */
	for (int i = 0; i < 100; i++) {
		char sql[64];

		snprintf(sql, sizeof(sql), "SELECT $1::int + %d", i);
		snprintf(want, sizeof(want), "%d", i + 1);
		run_ok(f, sql, 1, (const char *const[]){"1"}, &c);
		assert_string_equal(c.v[0], want);
	}
}

/* prepare = 0 (a pooler that keeps no statements): nothing is prepared. */
static void test_prepare_off(void **state)
{
	uv_loop_t loop;
	db_options o;
	db_pool *pool;
	capture c;
	char err[256];
	static const char sql[] = "SELECT count(*) FROM pg_prepared_statements WHERE $1::int = 1";

	(void)state;
	uv_loop_init(&loop);
	db_options_init(&o);
	assert_int_equal(o.prepare, 1);
	o.prepare = 0;
	o.size = 1;
	pool = db_pool_new_opts(&loop, g_pg.url, &o, err, sizeof(err));
	assert_non_null(pool);
	for (int i = 0; i < 3; i++) {
		memset(&c, 0, sizeof(c));
		assert_int_equal(db_query(pool, sql, 1, (const char *const[]){"1"}, on_capture, &c),
		                 0);
		assert_true(dbt_wait_count(&loop, &c.calls, 1, 10000));
		assert_int_equal(c.status, 0);
		assert_string_equal(c.v[0], "0");
	}
	assert_true(dbt_pool_close(&loop, pool));
	assert_int_equal(uv_loop_close(&loop), 0);
}

static int g_field_checked;

static void on_fields(const db_result *res, void *ud)
{
	(void)ud;
	assert_true(db_ok(res));
	assert_int_equal(db_field_index(res, "sum"), 0);
	assert_int_equal(db_field_index(res, "Upper"), 1);
	assert_int_equal(db_field_index(res, "upper"), -1);
	assert_int_equal(db_field_index(res, "nope"), -1);
	assert_string_equal(db_field_name(res, 1), "Upper");
	assert_null(db_field_name(res, 2));
	assert_int_equal(db_value_len(res, 0, 1), 3);
	assert_string_equal(db_value(res, 1, 0), "2");
	assert_null(db_value(res, 2, 0));
	g_field_checked++;
}

static void test_field_index(void **state)
{
	fx *f = *state;

	g_field_checked = 0;
	assert_int_equal(
	    db_query(f->pool, "SELECT g AS sum, 'abc' AS \"Upper\" FROM generate_series(1, 2) g", 0,
	             NULL, on_fields, NULL),
	    0);
	assert_true(dbt_wait_count(&f->loop, &g_field_checked, 1, 10000));
}

static void test_nulls(void **state)
{
	fx *f = *state;
	capture c;
	const char *p[] = {NULL, "7"};

	run_ok(f, "SELECT $1::text AS a, $2::int AS b, $1::text IS NULL AS c", 2, p, &c);
	assert_int_equal(c.null[0], 1);
	assert_string_equal(c.v[0], "");
	assert_int_equal(c.null[1], 0);
	assert_string_equal(c.v[1], "7");
	assert_string_equal(c.v[2], "t");
	assert_int_equal(c.null[3], 1); /* out of range reads as NULL */
}

static void test_errors(void **state)
{
	fx *f = *state;
	capture c;
	const char *a[] = {"a"};

	run(f, "SELEC 1", 0, NULL, &c);
	assert_int_equal(c.status, DB_ESERVER);
	assert_string_equal(c.sqlstate, "42601");
	assert_non_null(strstr(c.error, "syntax error"));

	run_ok(f, "CREATE TABLE t_uniq (k text PRIMARY KEY)", 0, NULL, &c);
	run_ok(f, "INSERT INTO t_uniq VALUES ($1)", 1, a, &c);
	assert_int_equal(c.affected, 1);
	run(f, "INSERT INTO t_uniq VALUES ($1)", 1, a, &c);
	assert_int_equal(c.status, DB_ESERVER);
	assert_string_equal(c.sqlstate, "23505");
	assert_non_null(strstr(c.error, "duplicate key"));
	assert_non_null(strstr(c.detail, "already exists"));

	run(f, "SELECT 1 / $1::int", 1, (const char *const[]){"0"}, &c);
	assert_string_equal(c.sqlstate, "22012");
	run(f, "SELECT $1::int", 1, (const char *const[]){"not a number"}, &c);
	assert_string_equal(c.sqlstate, "22P02");
	/* Two statements in one query are refused by the extended protocol. */
	run(f, "SELECT 1; SELECT 2", 0, NULL, &c);
	assert_int_equal(c.status, DB_ESERVER);

	/* The connections are still good. */
	run_ok(f, "INSERT INTO t_uniq SELECT 'x' || g FROM generate_series(1, 3) g", 0, NULL, &c);
	assert_int_equal(c.affected, 3);
	run_ok(f, "UPDATE t_uniq SET k = k || '!' WHERE k LIKE 'x%'", 0, NULL, &c);
	assert_int_equal(c.affected, 3);

	/* Bad arguments are refused at once, without a callback. */
	assert_int_equal(db_query(f->pool, NULL, 0, NULL, on_capture, &c), BASE_EINVAL);
	assert_int_equal(db_query(f->pool, "SELECT $1", 1, NULL, on_capture, &c), BASE_EINVAL);
	assert_int_equal(db_query_tx(f->pool, NULL, 0, on_capture, &c), BASE_EINVAL);
	assert_string_equal(base_strerror(DB_EQUEUEFULL),
	                    "too many queries are waiting for a connection");
	assert_string_equal(base_strerror(BASE_ENOMEM), "out of memory");
}

/* ---- a thousand at once ------------------------------------------------------------- */

#define MANY 1000

typedef struct {
	int calls[MANY];
	int order[MANY]; /* completion order */
	int pid[MANY];
	int done;
	int bad;
	unsigned max_in_flight;
	db_pool *pool;
} many_ctx;

typedef struct {
	many_ctx *ctx;
	int i;
} many_item;

static void on_many(const db_result *res, void *ud)
{
	many_item *it = ud;
	many_ctx *m = it->ctx;
	db_pool_stats st;

	if (!db_ok(res) || atoi(db_value(res, 0, 0)) != it->i)
		m->bad++;
	else
		m->pid[it->i] = atoi(db_value(res, 0, 1));
	m->calls[it->i]++;
	m->order[m->done++] = it->i;
	db_pool_get_stats(m->pool, &st);
	if (st.in_flight > m->max_in_flight)
		m->max_in_flight = st.in_flight;
}

static void test_many_concurrent(void **state)
{
	fx *f = *state;
	many_ctx *m = calloc(1, sizeof(*m));
	many_item *items = calloc(MANY, sizeof(*items));
	char num[MANY][12];
	int pids[16] = {0}, last[16], npids = 0;
	db_pool_stats st;

	m->pool = f->pool;
	for (int i = 0; i < MANY; i++) {
		const char *p[1] = {num[i]};

		snprintf(num[i], sizeof(num[i]), "%d", i);
		items[i].ctx = m;
		items[i].i = i;
		assert_int_equal(
		    db_query(f->pool, "SELECT $1::int, pg_backend_pid()", 1, p, on_many, &items[i]),
		    0);
	}
	assert_true(dbt_wait_count(&f->loop, &m->done, MANY, 20000));
	assert_int_equal(m->bad, 0);
	for (int i = 0; i < MANY; i++)
		assert_int_equal(m->calls[i], 1);
	/* Per connection (backend pid), answers come in the order of submission. */
	for (int k = 0; k < MANY; k++) {
		int i = m->order[k], j;

		for (j = 0; j < npids && pids[j] != m->pid[i]; j++) {
		}
		if (j == npids) {
			assert_true(npids < 16);
			pids[npids] = m->pid[i];
			last[npids++] = -1;
		}
		assert_true(i > last[j]);
		last[j] = i;
	}
	assert_true(npids >= 2 && npids <= 4);
	/* Pipelining: more queries in flight than connections. */
	assert_true(m->max_in_flight > 4);
	db_pool_get_stats(f->pool, &st);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.in_flight, 0);
	assert_true(st.completed >= MANY);
	free(items);
	free(m);
}

/* ---- big parameters and results: writes that do not fit the socket at once ---- */

#define BIG_N 64
#define BIG_LEN (256 * 1024)

typedef struct {
	int done;
	int bad;
} big_ctx;

static void on_big(const db_result *res, void *ud)
{
	big_ctx *b = ud;

	b->done++;
	if (!db_ok(res) || atoi(db_value(res, 0, 0)) != BIG_LEN ||
	    db_value_len(res, 0, 1) != BIG_LEN || db_value(res, 0, 1)[BIG_LEN - 1] != 'z')
		b->bad++;
}

static void test_large_values(void **state)
{
	fx *f = *state;
	big_ctx b = {0, 0};
	char *big = malloc(BIG_LEN + 1);
	const char *p[1] = {big};

	memset(big, 'a', BIG_LEN);
	big[BIG_LEN - 1] = 'z';
	big[BIG_LEN] = '\0';
	/* 16 MB each way: libpq's buffers and the sockets fill in both directions. */
	for (int i = 0; i < BIG_N; i++)
		assert_int_equal(db_query(f->pool, "SELECT length($1), $1", 1, p, on_big, &b), 0);
	free(big); /* copied by db_query */
	assert_true(dbt_wait_count(&f->loop, &b.done, BIG_N, 20000));
	assert_int_equal(b.bad, 0);
}

/* ---- transactions ------------------------------------------------------------------- */

static void test_tx_commit(void **state)
{
	fx *f = *state;
	capture c;
	const char *a[] = {"a"}, *b[] = {"b"};
	db_stmt st[] = {
	    {"INSERT INTO tx_t (v) VALUES ($1) RETURNING id", 1, a},
	    {"INSERT INTO tx_t (v) VALUES ($1) RETURNING id", 1, b},
	    {"SELECT count(*) FROM tx_t", 0, NULL},
	};

	run_ok(f, "CREATE TABLE tx_t (id serial PRIMARY KEY, v text UNIQUE)", 0, NULL, &c);
	memset(&c, 0, sizeof(c));
	assert_int_equal(db_query_tx(f->pool, st, 3, on_capture, &c), 0);
	assert_true(dbt_wait_count(&f->loop, &c.calls, 1, 10000));
	assert_int_equal(c.status, 0);
	assert_int_equal(c.count, 3);
	assert_int_equal(c.failed, -1);
	assert_int_equal(c.ntuples, 0); /* a transaction's rows are its statements' */
	assert_int_equal(c.part_status[0], 0);
	assert_string_equal(c.part_v[0], "1");
	assert_string_equal(c.part_v[1], "2");
	assert_string_equal(c.part_v[2], "2");
	run_ok(f, "SELECT string_agg(v, ',' ORDER BY id) FROM tx_t", 0, NULL, &c);
	assert_string_equal(c.v[0], "a,b");
}

static void test_tx_rollback(void **state)
{
	fx *f = *state;
	capture c;
	const char *a[] = {"a"}, *x[] = {"c"}, *d[] = {"d"};
	db_stmt st[] = {
	    {"INSERT INTO tx_r (v) VALUES ($1)", 1, x},
	    {"INSERT INTO tx_r (v) VALUES ($1)", 1, a}, /* duplicate */
	    {"INSERT INTO tx_r (v) VALUES ($1)", 1, d},
	};

	run_ok(f, "CREATE TABLE tx_r (id serial PRIMARY KEY, v text UNIQUE)", 0, NULL, &c);
	run_ok(f, "INSERT INTO tx_r (v) VALUES ('a')", 0, NULL, &c);
	memset(&c, 0, sizeof(c));
	assert_int_equal(db_query_tx(f->pool, st, 3, on_capture, &c), 0);
	assert_true(dbt_wait_count(&f->loop, &c.calls, 1, 10000));
	assert_int_equal(c.status, DB_ESERVER);
	assert_string_equal(c.sqlstate, "23505");
	assert_int_equal(c.failed, 1);
	assert_int_equal(c.part_status[0], 0); /* it ran, and was rolled back */
	assert_int_equal(c.part_status[1], DB_ESERVER);
	assert_int_equal(c.part_status[2], DB_ESKIPPED);
	run_ok(f, "SELECT count(*) FROM tx_r WHERE v IN ('c', 'd')", 0, NULL, &c);
	assert_string_equal(c.v[0], "0");

	/* No connection is left inside an aborted transaction. */
	capture more[12];
	memset(more, 0, sizeof(more));
	for (int i = 0; i < 12; i++)
		assert_int_equal(
		    db_query(f->pool, "SELECT count(*) FROM tx_r", 0, NULL, on_capture, &more[i]),
		    0);
	for (int i = 0; i < 12; i++) {
		assert_true(dbt_wait_count(&f->loop, &more[i].calls, 1, 10000));
		assert_int_equal(more[i].status, 0);
		assert_string_equal(more[i].v[0], "1");
	}

	/* A transaction of one failing statement, and a commit-time failure. */
	db_stmt defer[] = {
	    {"CREATE TEMP TABLE IF NOT EXISTS tx_p (id int PRIMARY KEY)", 0, NULL},
	    {"CREATE TEMP TABLE IF NOT EXISTS tx_c (id int REFERENCES tx_p (id) "
	     "DEFERRABLE INITIALLY DEFERRED)",
	     0, NULL},
	    {"INSERT INTO tx_c VALUES (42)", 0, NULL},
	};
	memset(&c, 0, sizeof(c));
	assert_int_equal(db_query_tx(f->pool, defer, 3, on_capture, &c), 0);
	assert_true(dbt_wait_count(&f->loop, &c.calls, 1, 10000));
	assert_int_equal(c.status, DB_ESERVER);
	assert_string_equal(c.sqlstate, "23503");
	assert_int_equal(c.failed, -1);        /* no statement failed: the commit did */
	assert_int_equal(c.part_status[2], 0); /* it ran, and was rolled back */

	/* Every connection is still in step after a commit-time failure. */
	memset(more, 0, sizeof(more));
	for (int i = 0; i < 12; i++)
		assert_int_equal(db_query(f->pool, "SELECT to_regclass('tx_c') IS NULL", 0, NULL,
		                          on_capture, &more[i]),
		                 0);
	for (int i = 0; i < 12; i++) {
		assert_true(dbt_wait_count(&f->loop, &more[i].calls, 1, 10000));
		assert_int_equal(more[i].status, 0);
		assert_string_equal(more[i].v[0], "t");
	}
}

/* ---- pool behaviour ---------------------------------------------------------------------- */

static void test_query_while_connecting(void **state)
{
	uv_loop_t loop;
	db_pool *pool;
	db_pool_stats st;
	capture c;

	(void)state;
	uv_loop_init(&loop);
	pool = db_pool_new(&loop, g_pg.url, 2);
	assert_non_null(pool);
	memset(&c, 0, sizeof(c));
	assert_int_equal(db_query(pool, "SELECT 'early'", 0, NULL, on_capture, &c), 0);
	db_pool_get_stats(pool, &st);
	assert_int_equal(st.connected, 0);
	assert_int_equal(st.queued, 1);
	assert_int_equal(c.calls, 0); /* never from inside db_query */
	assert_true(dbt_wait_count(&loop, &c.calls, 1, 10000));
	assert_int_equal(c.status, 0);
	assert_string_equal(c.v[0], "early");
	assert_true(dbt_pool_close(&loop, pool));
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_queue_full(void **state)
{
	uv_loop_t loop;
	db_pool *pool;
	db_options o;
	capture c[6];
	char err[256];
	int done = 0;

	(void)state;
	uv_loop_init(&loop);
	db_options_init(&o);
	o.size = 1;
	o.max_queued = 5;
	pool = db_pool_new_opts(&loop, g_pg.url, &o, err, sizeof(err));
	assert_non_null(pool);
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 5; i++)
		assert_int_equal(db_query(pool, "SELECT 1", 0, NULL, on_capture, &c[i]), 0);
	assert_int_equal(db_query(pool, "SELECT 1", 0, NULL, on_capture, &c[5]), DB_EQUEUEFULL);
	for (int i = 0; i < 5; i++) {
		assert_true(dbt_wait_count(&loop, &c[i].calls, 1, 10000));
		assert_int_equal(c[i].status, 0);
		done++;
	}
	assert_int_equal(c[5].calls, 0);
	assert_int_equal(done, 5);
	/* Room again. */
	assert_int_equal(db_query(pool, "SELECT 1", 0, NULL, on_capture, &c[5]), 0);
	assert_true(dbt_wait_count(&loop, &c[5].calls, 1, 10000));
	assert_true(dbt_pool_close(&loop, pool));
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- fairness between owners (issue 10) --------------------------------------------- */

static int g_order;

typedef struct {
	int at; /* 1 + completions before this one */
	int status;
} order_mark;

static void on_order(const db_result *res, void *ud)
{
	order_mark *m = ud;

	m->at = ++g_order;
	m->status = db_status(res);
}

/*
 * One owner floods the pool; a query of someone else, submitted after the
 * flood, waits behind at most owner_max_active of the flood's, and the
 * owner's own list is bounded.
 */
static void test_owner_fairness(void **state)
{
	enum { FLOOD = 60 };
	uv_loop_t loop;
	db_pool *pool;
	db_options o;
	order_mark flood[FLOOD + 1], other, implicit[3];
	char err[256];
	int flooder, someone;
	unsigned done = 0;

	(void)state;
	uv_loop_init(&loop);
	db_options_init(&o);
	o.size = 1;
	o.pipeline_depth = 1;
	o.owner_max_active = 4;
	o.owner_max_waiting = FLOOD - 4;
	pool = db_pool_new_opts(&loop, g_pg.url, &o, err, sizeof(err));
	assert_non_null(pool);
	g_order = 0;
	memset(flood, 0, sizeof(flood));
	memset(&other, 0, sizeof(other));
	memset(implicit, 0, sizeof(implicit));
	for (int i = 0; i < FLOOD; i++)
		assert_int_equal(
		    db_query_owned(pool, &flooder, "SELECT 1", 0, NULL, on_order, &flood[i]), 0);
	/* Its list is full now. */
	assert_int_equal(
	    db_query_owned(pool, &flooder, "SELECT 1", 0, NULL, on_order, &flood[FLOOD]),
	    DB_EQUEUEFULL);
	db_pool_stats st;
	db_pool_get_stats(pool, &st);
	assert_int_equal(st.queued, 4);
	assert_int_equal(st.waiting, FLOOD - 4);
	/* db_query inside an owned section counts against that owner. */
	db_pool_set_owner(pool, &someone);
	for (int i = 0; i < 3; i++)
		assert_int_equal(db_query(pool, "SELECT 2", 0, NULL, on_order, &implicit[i]), 0);
	db_pool_set_owner(pool, NULL);
	assert_int_equal(db_query(pool, "SELECT 3", 0, NULL, on_order, &other), 0);
	assert_true(dbt_wait_count(&loop, &other.at, 1, 10000));
	for (int i = 0; i < FLOOD; i++) {
		assert_true(dbt_wait_count(&loop, &flood[i].at, 1, 10000));
		assert_int_equal(flood[i].status, 0);
		done++;
	}
	assert_int_equal(done, FLOOD);
	/* The owned ones in order; the others behind the first 4 only. */
	for (int i = 1; i < FLOOD; i++)
		assert_true(flood[i].at > flood[i - 1].at);
	for (int i = 0; i < 3; i++)
		assert_true(implicit[i].at <= 4 + 3);
	assert_int_equal(other.status, 0);
	assert_true(other.at <= 4 + 3 + 1);
	db_pool_get_stats(pool, &st);
	assert_int_equal(st.waiting, 0);
	assert_true(dbt_pool_close(&loop, pool));
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bad_conninfo(void **state)
{
	uv_loop_t loop;
	char err[512];

	(void)state;
	uv_loop_init(&loop);
	assert_null(db_pool_new_opts(&loop, "host=127.0.0.1 bogus=1", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "invalid connection string"));
	assert_non_null(strstr(err, "bogus"));
	assert_null(db_pool_new_opts(&loop, "postgresql://[::1", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "invalid connection string"));
	assert_null(db_pool_new_opts(&loop, "just words", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "invalid connection string"));
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_unreachable_server(void **state)
{
	uv_loop_t loop;
	db_pool *pool;
	db_options o;
	capture c;
	char err[256];
	uint64_t t0;

	(void)state;
	uv_loop_init(&loop);
	db_options_init(&o);
	o.size = 1;
	o.queue_timeout_ms = 400;
	o.backoff_min_ms = 50;
	/* Port 1 on loopback: nothing listens, the connection is refused. */
	pool = db_pool_new_opts(&loop, "postgresql://postgres@127.0.0.1:1/spaces", &o, err,
	                        sizeof(err));
	assert_non_null(pool);
	memset(&c, 0, sizeof(c));
	t0 = base_now_ms();
	assert_int_equal(db_query(pool, "SELECT 1", 0, NULL, on_capture, &c), 0);
	assert_true(dbt_wait_count(&loop, &c.calls, 1, 5000));
	assert_true(base_now_ms() - t0 >= 350);
	assert_int_equal(c.status, DB_ETIMEDOUT);
	assert_string_equal(c.sqlstate, "08001");
	assert_non_null(strstr(c.error, "no database connection for 400 ms"));
	assert_non_null(strstr(c.error, "refused"));
	assert_non_null(strstr(db_pool_last_error(pool), "refused"));
	assert_true(dbt_pool_close(&loop, pool));
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void on_notify_unused(const char *channel, const char *payload, void *ud)
{
	(void)channel;
	(void)payload;
	(void)ud;
}

static void test_close_drains(void **state)
{
	uv_loop_t loop;
	db_pool *pool;
	capture c[20], late;
	int closed = 0;

	(void)state;
	uv_loop_init(&loop);
	pool = db_pool_new(&loop, g_pg.url, 2);
	assert_true(dbt_wait(&loop, dbt_pool_connected, pool, 10000));
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 20; i++)
		assert_int_equal(
		    db_query(pool, "SELECT pg_sleep(0.01)", 0, NULL, on_capture, &c[i]), 0);
	assert_int_equal(db_pool_close(pool, dbt_on_closed, &closed), 0);
	assert_int_equal(db_pool_close(pool, dbt_on_closed, &closed), DB_ECLOSED);
	assert_int_equal(db_query(pool, "SELECT 1", 0, NULL, on_capture, &late), DB_ECLOSED);
	assert_int_equal(db_listen(pool, "x", on_notify_unused, NULL), DB_ECLOSED);
	assert_true(dbt_wait_count(&loop, &closed, 1, 10000));
	for (int i = 0; i < 20; i++) {
		assert_int_equal(c[i].calls, 1);
		assert_int_equal(c[i].status, 0);
	}
	db_pool_free(pool);
	assert_int_equal(uv_loop_close(&loop), 0);

	/* Closed before any connection is up: queued queries fail with DB_ECLOSED. */
	uv_loop_init(&loop);
	pool = db_pool_new(&loop, g_pg.url, 2);
	memset(c, 0, sizeof(c));
	assert_int_equal(db_query(pool, "SELECT 1", 0, NULL, on_capture, &c[0]), 0);
	assert_true(dbt_pool_close(&loop, pool));
	assert_int_equal(c[0].calls, 1);
	assert_int_equal(c[0].status, DB_ECLOSED);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- the server restarts under our feet ---------------------------------------------------- */

static int pool_down(void *arg)
{
	db_pool_stats st;
	db_pool_get_stats(arg, &st);
	return st.connected == 0;
}

static int in_flight_at_least_4(void *arg)
{
	db_pool_stats st;
	db_pool_get_stats(arg, &st);
	return st.in_flight >= 4;
}

static void test_server_restart(void **state)
{
	uv_loop_t loop;
	db_pool *pool;
	db_options o;
	capture slow[2], retry[2], during[5], after[10];
	char err[256];
	dbt_restart rs;
	db_pool_stats st;
	const char *r1[] = {"r1"}, *r2[] = {"r2"};

	(void)state;
	uv_loop_init(&loop);
	db_options_init(&o);
	o.size = 2;
	pool = db_pool_new_opts(&loop, g_pg.url, &o, err, sizeof(err));
	assert_true(dbt_wait(&loop, dbt_pool_connected, pool, 10000));
	memset(slow, 0, sizeof(slow));
	memset(retry, 0, sizeof(retry));
	memset(during, 0, sizeof(during));
	memset(after, 0, sizeof(after));

	/* In flight when the server stops: two plain queries, two idempotent ones. */
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		    db_query(pool, "SELECT pg_sleep(30)", 0, NULL, on_capture, &slow[i]), 0);
	assert_int_equal(db_query_flags(pool, DB_RETRY, "SELECT $1::text, pg_sleep(0.5)", 1, r1,
	                                on_capture, &retry[0]),
	                 0);
	assert_int_equal(db_query_flags(pool, DB_RETRY, "SELECT $1::text, pg_sleep(0.5)", 1, r2,
	                                on_capture, &retry[1]),
	                 0);
	assert_true(dbt_wait(&loop, in_flight_at_least_4, pool, 5000));

	dbt_restart_begin(&rs, &g_pg, 700);
	/* The pool notices at once (the server terminates the sessions). */
	assert_true(dbt_wait(&loop, pool_down, pool, 10000));
	for (int i = 0; i < 2; i++) {
		assert_true(dbt_wait_count(&loop, &slow[i].calls, 1, 10000));
		assert_int_equal(slow[i].status, DB_ECONNLOST);
		assert_true(strcmp(slow[i].sqlstate, "57P01") == 0 ||
		            strcmp(slow[i].sqlstate, "08006") == 0);
		assert_true(slow[i].error[0] != '\0');
	}
	/* Submitted while the server is down: they wait for it. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(db_query(pool, "SELECT 'during'", 0, NULL, on_capture, &during[i]),
		                 0);
	for (int i = 0; i < 5; i++) {
		assert_true(dbt_wait_count(&loop, &during[i].calls, 1, 15000));
		assert_int_equal(during[i].status, 0);
	}
	for (int i = 0; i < 2; i++) {
		assert_true(dbt_wait_count(&loop, &retry[i].calls, 1, 15000));
		assert_int_equal(retry[i].calls, 1);
		assert_int_equal(retry[i].status, 0);
		assert_string_equal(retry[i].v[0], i == 0 ? "r1" : "r2");
	}
	pthread_join(rs.thread, NULL);
	assert_int_equal(dbt_restart_phase(&rs), 2);

	assert_true(dbt_wait(&loop, dbt_pool_connected, pool, 15000));
	for (int i = 0; i < 10; i++)
		assert_int_equal(db_query(pool, "SELECT 'after'", 0, NULL, on_capture, &after[i]),
		                 0);
	for (int i = 0; i < 10; i++) {
		assert_true(dbt_wait_count(&loop, &after[i].calls, 1, 10000));
		assert_int_equal(after[i].status, 0);
		assert_string_equal(after[i].v[0], "after");
	}
	/* Nothing was answered twice. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(slow[i].calls, 1);
		assert_int_equal(retry[i].calls, 1);
	}
	db_pool_get_stats(pool, &st);
	assert_true(st.reconnects >= 2);
	assert_true(dbt_pool_close(&loop, pool));
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* A stream of queries through a restart: each gets exactly one answer. */

#define STREAM_MAX 4000

typedef struct {
	db_pool *pool;
	uv_timer_t timer;
	int submitted, answered, ok, lost, other;
	int calls[STREAM_MAX];
	int stop;
} stream_ctx;

typedef struct {
	stream_ctx *s;
	int i;
} stream_item;

static stream_item g_items[STREAM_MAX];

static void on_stream(const db_result *res, void *ud)
{
	stream_item *it = ud;
	stream_ctx *s = it->s;

	s->calls[it->i]++;
	s->answered++;
	if (db_ok(res))
		s->ok++;
	else if (db_status(res) == DB_ECONNLOST)
		s->lost++;
	else
		s->other++;
}

static void stream_tick(uv_timer_t *t)
{
	stream_ctx *s = t->data;

	for (int k = 0; k < 20 && !s->stop && s->submitted < STREAM_MAX; k++) {
		stream_item *it = &g_items[s->submitted];
		unsigned flags = s->submitted % 2 ? DB_RETRY : 0;

		it->s = s;
		it->i = s->submitted;
		assert_int_equal(db_query_flags(s->pool, flags, "SELECT pg_sleep(0.002)", 0, NULL,
		                                on_stream, it),
		                 0);
		s->submitted++;
	}
}

static int stream_all_answered(void *arg)
{
	stream_ctx *s = arg;
	return s->stop && s->answered == s->submitted;
}

static void test_restart_under_load(void **state)
{
	uv_loop_t loop;
	stream_ctx *s = calloc(1, sizeof(*s));
	dbt_restart rs;

	(void)state;
	uv_loop_init(&loop);
	s->pool = db_pool_new(&loop, g_pg.url, 4);
	assert_true(dbt_wait(&loop, dbt_pool_connected, s->pool, 10000));
	uv_timer_init(&loop, &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, stream_tick, 0, 10);

	/* Run a while, restart in the middle, and keep going until it is back. */
	dbt_run_for(&loop, 300);
	dbt_restart_begin(&rs, &g_pg, 300);
	assert_true(dbt_wait(&loop, pool_down, s->pool, 10000));
	assert_true(dbt_wait(&loop, dbt_pool_connected, s->pool, 15000));
	dbt_run_for(&loop, 300);
	s->stop = 1;
	uv_timer_stop(&s->timer);
	assert_true(dbt_wait(&loop, stream_all_answered, s, 20000));
	pthread_join(rs.thread, NULL);
	assert_int_equal(dbt_restart_phase(&rs), 2);

	print_message("%d queries through the restart: %d answered ok, %d lost in flight\n",
	              s->submitted, s->ok, s->lost);
	for (int i = 0; i < s->submitted; i++)
		assert_int_equal(s->calls[i], 1);
	assert_int_equal(s->other, 0);
	assert_int_equal(s->ok + s->lost, s->submitted);
	/* Only what was in flight at the stop can be lost. */
	assert_true(s->lost <= 4 * 32);
	assert_true(s->ok > s->submitted / 2);
	uv_close((uv_handle_t *)&s->timer, NULL);
	assert_true(dbt_pool_close(&loop, s->pool));
	assert_int_equal(uv_loop_close(&loop), 0);
	free(s);
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
	    cmocka_unit_test_setup_teardown(test_params, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_prepared, fx_setup, fx_teardown),
	    cmocka_unit_test(test_prepare_off),
	    cmocka_unit_test(test_owner_fairness),
	    cmocka_unit_test_setup_teardown(test_field_index, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_nulls, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_errors, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_many_concurrent, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_large_values, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tx_commit, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_tx_rollback, fx_setup, fx_teardown),
	    cmocka_unit_test(test_query_while_connecting),
	    cmocka_unit_test(test_queue_full),
	    cmocka_unit_test(test_bad_conninfo),
	    cmocka_unit_test(test_unreachable_server),
	    cmocka_unit_test(test_close_drains),
	    cmocka_unit_test(test_server_restart),
	    cmocka_unit_test(test_restart_under_load),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
