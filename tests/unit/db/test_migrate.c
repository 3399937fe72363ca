/*
 * Tests spaces/db/migrate.c against a real PostgreSQL: the repository's
 * migrations apply once and give the schema the Spaces layer expects; files
 * apply in numeric order, each once, a failing one is rolled back and
 * reported with its line; two processes migrating at once do not race; bad
 * connection strings and directories give clear errors.
 *
 * The checks read the database with libpq's blocking calls: this program
 * has no loop to keep free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "db_test.h"

static dbt_cluster g_pg;
static int g_dbs;

/* A fresh database on the test cluster; writes its URL to url. */
static void new_database(char *url, size_t len)
{
	char sql[64], *slash;
	PGconn *pg = PQconnectdb(g_pg.url);
	PGresult *r;

	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	snprintf(sql, sizeof(sql), "CREATE DATABASE mig_%d", ++g_dbs);
	r = PQexec(pg, sql);
	assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(pg);
	snprintf(url, len, "%s", g_pg.url);
	slash = strrchr(url, '/');
	assert_non_null(slash);
	snprintf(slash, len - (size_t)(slash - url), "/mig_%d", g_dbs);
}

/* Runs sql and returns the first value ("" when no rows), or the SQLSTATE prefixed with '!'. */
static const char *q(const char *url, const char *sql)
{
	static char out[256];
	PGconn *pg = PQconnectdb(url);
	PGresult *r;

	assert_int_equal(PQstatus(pg), CONNECTION_OK);
	r = PQexec(pg, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		snprintf(out, sizeof(out), "%s", PQgetvalue(r, 0, 0));
	else if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
		out[0] = '\0';
	else
		snprintf(out, sizeof(out), "!%s", PQresultErrorField(r, PG_DIAG_SQLSTATE));
	PQclear(r);
	PQfinish(pg);
	return out;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void remove_file(const char *dir, const char *name)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

static void make_dir(char *dir, size_t len)
{
	int n = snprintf(dir, len, "%s/migrations.XXXXXX", g_pg.dir);

	assert_true(n > 0 && (size_t)n < len); /* a cut template would make the wrong folder */
	assert_non_null(mkdtemp(dir));
}

/* ---- the repository's migrations ----------------------------------------------------- */

static void test_repo_migrations(void **state)
{
	char url[512], dir[512], root[400], err[512];
	int n;

	(void)state;
	new_database(url, sizeof(url));
	snprintf(dir, sizeof(dir), "%s/migrations", dbt_root(root, sizeof(root)));
	n = db_migrate(url, dir, err, sizeof(err));
	if (n < 0)
		fail_msg("db_migrate: %s", err);
	assert_true(n >= 1);
	/* Twice is a no-op. */
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), 0);
	char count[16];
	snprintf(count, sizeof(count), "%d", n);
	assert_string_equal(q(url, "SELECT count(*) FROM schema_migrations"), count);
	assert_string_equal(
	    q(url, "SELECT version FROM schema_migrations ORDER BY version LIMIT 1"), "0001");
	assert_string_equal(q(url, "SELECT applied_at IS NOT NULL FROM schema_migrations"), "t");

	/* The tables the Spaces layer uses. */
	const char *tables[] = {"users",           "sessions", "spaces",
	                        "app_connections", "requests", "uploads"};
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT to_regclass('%s') IS NOT NULL", tables[i]);
		assert_string_equal(q(url, sql), "t");
	}

	/* users: one name whatever its case, and only [A-Za-z0-9_]. */
	assert_string_equal(
	    q(url,
	      "INSERT INTO users (username, password_hash) VALUES ('Alice', 'h') RETURNING id"),
	    "1");
	assert_string_equal(
	    q(url, "INSERT INTO users (username, password_hash) VALUES ('alice', 'h')"), "!23505");
	assert_string_equal(
	    q(url, "INSERT INTO users (username, password_hash) VALUES ('a b', 'h')"), "!23514");
	assert_string_equal(q(url, "SELECT is_admin FROM users"), "f");

	/* spaces: a short URL-safe id, the defaults of the old server, unique names. */
	const char *id = q(url, "INSERT INTO spaces (name) VALUES ('Demo') RETURNING id");
	char space_id[64];
	snprintf(space_id, sizeof(space_id), "%s", id);
	assert_int_equal(strlen(space_id), 12);
	assert_int_equal(strspn(space_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                                  "0123456789-_"),
	                 12);
	assert_string_equal(
	    q(url, "SELECT card_type || ',' || timeout_seconds || ',' || max_apps || ','"
	           " || rate_limit_seconds || ',' || enable_prompt || ',' || enable_audio"
	           " || ',' || (app_token_hash IS NULL) FROM spaces"),
	    "websockets,120,1,0,true,false,true");
	assert_string_equal(q(url, "INSERT INTO spaces (name) VALUES ('Demo')"), "!23505");
	assert_string_equal(q(url, "UPDATE spaces SET description = 'd' "
	                           "RETURNING updated_at > created_at"),
	                    "t");

	/* requests: the four statuses only, progress 0..100, jsonb payloads. */
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "INSERT INTO app_connections (id, space_id, sid) VALUES ('c1', '%s', 's1')",
	         space_id);
	assert_string_equal(q(url, sql), "");
	snprintf(sql, sizeof(sql),
	         "INSERT INTO requests (id, space_id, user_id, username, payload, deadline_at,"
	         " connection_id) VALUES ('r1', '%s', 1, 'Alice', '{\"prompt\": \"hi\"}',"
	         " now() + interval '120 s', 'c1') RETURNING status || ',' || progress || ','"
	         " || attempts || ',' || (payload->>'prompt')",
	         space_id);
	assert_string_equal(q(url, sql), "queued,0,0,hi");
	assert_string_equal(q(url, "UPDATE requests SET status = 'bogus'"), "!23514");
	assert_string_equal(q(url, "UPDATE requests SET progress = 101"), "!23514");
	assert_string_equal(q(url, "UPDATE requests SET status = 'processing' RETURNING status"),
	                    "processing");
	assert_string_equal(q(url, "INSERT INTO uploads (request_id, token, filename, size, path)"
	                           " VALUES ('r1', 't', 'a.wav', 3, '/x') RETURNING id"),
	                    "1");
	assert_string_equal(q(url, "INSERT INTO uploads (request_id, token, filename, size, path)"
	                           " VALUES ('r1', 't', 'b.wav', 3, '/y')"),
	                    "!23505");
	/* The indexes of the hot queries are there. */
	assert_string_equal(
	    q(url, "SELECT count(*) >= 6 FROM pg_indexes WHERE tablename = 'requests'"), "t");
	assert_string_equal(q(url, "SELECT count(*) FROM pg_indexes WHERE indexname IN"
	                           " ('requests_queued_idx', 'requests_connection_idx',"
	                           " 'requests_deadline_idx', 'requests_created_idx',"
	                           " 'requests_user_space_idx', 'users_username_lower_key')"),
	                    "6");
	/* 0004: the redundant one is gone. */
	assert_string_equal(
	    q(url, "SELECT count(*) FROM pg_indexes WHERE indexname = 'requests_user_idx'"), "0");
}

/* ---- order, once, rollback -------------------------------------------------------------- */

static void test_order_and_failures(void **state)
{
	char url[512], dir[512], err[512];

	(void)state;
	new_database(url, sizeof(url));
	make_dir(dir, sizeof(dir));
	write_file(dir, "0001_table.sql", "CREATE TABLE t (id int);\n");
	write_file(dir, "0002_rows.sql", "INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n");
	write_file(dir, "README.md", "not a migration\n");
	write_file(dir, "12_short.sql", "SELECT 1/0;\n"); /* ignored: not NNNN_ */
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), 2);
	assert_string_equal(q(url, "SELECT count(*) FROM t"), "2");

	/* A failing migration: reported with file and line, rolled back entirely. */
	write_file(dir, "0003_bad.sql",
	           "CREATE TABLE t3 (id int);\n"
	           "-- a comment with an accent: é\n"
	           "INSERT INTO t VALUES (3);\n"
	           "SELEC oops;\n");
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), DB_EMIGRATE);
	assert_non_null(strstr(err, "0003_bad.sql"));
	assert_non_null(strstr(err, "line 4"));
	assert_non_null(strstr(err, "syntax error"));
	assert_non_null(strstr(err, "42601"));
	assert_string_equal(q(url, "SELECT to_regclass('t3') IS NULL"), "t");
	assert_string_equal(q(url, "SELECT count(*) FROM t"), "2");
	assert_string_equal(
	    q(url, "SELECT string_agg(version, ',' ORDER BY version) FROM schema_migrations"),
	    "0001,0002");

	/* Fixed, it applies; then numbers order numerically: 0009 before 0010. */
	write_file(dir, "0003_bad.sql", "CREATE TABLE t3 (id int);\n");
	write_file(dir, "0010_uses_t9.sql", "INSERT INTO t9 VALUES (9);\n");
	write_file(dir, "0009_t9.sql", "CREATE TABLE t9 (id int);\n");
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), 3);
	assert_string_equal(q(url, "SELECT count(*) FROM t9"), "1");
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), 0);

	/* A migration may not end its own transaction. */
	write_file(dir, "0011_commits.sql", "CREATE TABLE t11 (id int);\nCOMMIT;\n");
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), DB_EMIGRATE);
	assert_non_null(strstr(err, "0011_commits.sql"));
	remove_file(dir, "0011_commits.sql");

	/* Two files with one number. */
	write_file(dir, "0012_a.sql", "SELECT 1;\n");
	write_file(dir, "00012_b.sql", "SELECT 1;\n");
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), DB_EMIGRATE);
	assert_non_null(strstr(err, "same number"));
}

/* ---- two processes at once ---------------------------------------------------------------- */

typedef struct {
	const char *url, *dir;
	int ret;
	char err[512];
} mig_thread;

static void *run_migrate(void *arg)
{
	mig_thread *m = arg;

	m->ret = db_migrate(m->url, m->dir, m->err, sizeof(m->err));
	return NULL;
}

static void test_concurrent(void **state)
{
	char url[512], dir[512];
	mig_thread a, b;
	pthread_t ta, tb;

	(void)state;
	new_database(url, sizeof(url));
	make_dir(dir, sizeof(dir));
	/* Not idempotent, and slow enough for the two to overlap without the lock. */
	write_file(dir, "0001_c.sql", "CREATE TABLE c (id int);\nSELECT pg_sleep(0.3);\n");
	write_file(dir, "0002_c.sql", "INSERT INTO c VALUES (1);\n");
	a = (mig_thread){url, dir, 0, ""};
	b = (mig_thread){url, dir, 0, ""};
	pthread_create(&ta, NULL, run_migrate, &a);
	pthread_create(&tb, NULL, run_migrate, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	if (a.ret < 0 || b.ret < 0)
		fail_msg("a: %d %s / b: %d %s", a.ret, a.err, b.ret, b.err);
	assert_int_equal(a.ret + b.ret, 2);
	assert_string_equal(q(url, "SELECT count(*) FROM c"), "1");
	assert_string_equal(q(url, "SELECT count(*) FROM schema_migrations"), "2");
}

/* ---- clear errors ---------------------------------------------------------------------------- */

static void test_errors(void **state)
{
	char url[512], dir[512], err[512];

	(void)state;
	make_dir(dir, sizeof(dir));
	assert_int_equal(db_migrate("host=127.0.0.1 nonsense=1", dir, err, sizeof(err)),
	                 DB_ECONNINFO);
	assert_non_null(strstr(err, "invalid connection string"));
	assert_non_null(strstr(err, "nonsense"));

	assert_int_equal(
	    db_migrate("postgresql://postgres@127.0.0.1:1/spaces", dir, err, sizeof(err)),
	    DB_ECONNECT);
	assert_non_null(strstr(err, "cannot connect"));
	assert_non_null(strstr(err, "refused"));

	snprintf(url, sizeof(url), "%s", g_pg.url);
	strcpy(strrchr(url, '/'), "/no_such_db");
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), DB_ECONNECT);
	assert_non_null(strstr(err, "does not exist"));

	assert_int_equal(db_migrate(g_pg.url, "/nonexistent/migrations", err, sizeof(err)),
	                 BASE_EINVAL);
	assert_non_null(strstr(err, "/nonexistent/migrations"));

	/* An empty directory is fine: nothing to do. */
	new_database(url, sizeof(url));
	assert_int_equal(db_migrate(url, dir, err, sizeof(err)), 0);
	assert_string_equal(q(url, "SELECT count(*) FROM schema_migrations"), "0");
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
	    cmocka_unit_test(test_repo_migrations),
	    cmocka_unit_test(test_order_and_failures),
	    cmocka_unit_test(test_concurrent),
	    cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
