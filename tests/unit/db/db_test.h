/*
 * db_test.h: what the tests of spaces/db/ share: a throwaway PostgreSQL
 * cluster per test program (ci/pg.sh), and helpers to run the loop until
 * callbacks have come.
 *
 * The cluster is stopped and its directory removed by a small reaper
 * process that waits for this program to end, however it ends (a failed
 * assertion, a sanitizer abort, a ctest timeout), so no server is left
 * running behind a test.
 */
#ifndef DB_TEST_H
#define DB_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"

typedef struct {
	char dir[512];
	char url[256];
	char pgsh[512];
	int port;
	pid_t reaper;
	int reaper_fd;
} dbt_cluster;

static inline const char *dbt_root(char *buf, size_t len)
{
	const char *env = getenv("SPACES_SOURCE_DIR");
	char *p;

	if (env != NULL && env[0] != '\0') {
		snprintf(buf, len, "%s", env);
		return buf;
	}
	/* Built by CMake, __FILE__ is absolute: <root>/tests/unit/db/db_test.h. */
	snprintf(buf, len, "%s", __FILE__);
	p = strstr(buf, "/tests/unit/db/");
	if (p != NULL)
		*p = '\0';
	return buf;
}

static inline int dbt_sh(const char *cmd, char *out, size_t outlen)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;
	int st;

	if (f == NULL)
		return -1;
	if (out != NULL && outlen > 0) {
		n = fread(out, 1, outlen - 1, f);
		out[n] = '\0';
		while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
			out[--n] = '\0';
	} else {
		char sink[256];
		while (fread(sink, 1, sizeof(sink), f) > 0) {
		}
	}
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline int dbt_pg(dbt_cluster *c, const char *what, char *out, size_t outlen)
{
	char cmd[2048];

	if (strcmp(what, "start") == 0)
		snprintf(cmd, sizeof(cmd), "'%s' start '%s' %d", c->pgsh, c->dir, c->port);
	else
		snprintf(cmd, sizeof(cmd), "'%s' %s '%s'", c->pgsh, what, c->dir);
	return dbt_sh(cmd, out, outlen);
}

/* Starts a cluster in a fresh directory. Returns 0, or -1 (and prints why). */
static inline int dbt_start(dbt_cluster *c)
{
	const char *base = getenv("SPACES_BUILD_DIR");
	char root[400], cmd[2048], portbuf[32];
	int fds[2];
	FILE *f;

	memset(c, 0, sizeof(*c));
	c->reaper_fd = -1;
	snprintf(c->pgsh, sizeof(c->pgsh), "%s/ci/pg.sh", dbt_root(root, sizeof(root)));
	snprintf(c->dir, sizeof(c->dir), "%s/dbtest.XXXXXX", base && base[0] ? base : "/tmp");
	if (mkdtemp(c->dir) == NULL || chmod(c->dir, 0755) != 0) {
		fprintf(stderr, "dbt: cannot make %s: %s\n", c->dir, strerror(errno));
		return -1;
	}
	/* The reaper: a shell that waits for our end (EOF on its stdin), then cleans up. */
	if (pipe(fds) != 0)
		return -1;
	fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	fcntl(fds[1], F_SETFD, FD_CLOEXEC);
	c->reaper = fork();
	if (c->reaper == 0) {
		setsid();
		dup2(fds[0], 0);
		execl("/bin/sh", "sh", "-c",
		      "read _ ; \"$0\" stop \"$1\" >/dev/null 2>&1 ; rm -rf \"$1\"", c->pgsh,
		      c->dir, (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	c->reaper_fd = fds[1];

	snprintf(cmd, sizeof(cmd), "'%s' start '%s'", c->pgsh, c->dir);
	if (dbt_sh(cmd, c->url, sizeof(c->url)) != 0 || strncmp(c->url, "postgresql://", 13) != 0) {
		fprintf(stderr, "dbt: ci/pg.sh start failed (%s)\n", c->url);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "%s/port", c->dir);
	f = fopen(cmd, "r");
	if (f == NULL || fgets(portbuf, sizeof(portbuf), f) == NULL) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	c->port = atoi(portbuf);
	return 0;
}

/* Stops the cluster and removes its directory (through the reaper). */
static inline void dbt_stop(dbt_cluster *c)
{
	if (c->reaper_fd >= 0) {
		close(c->reaper_fd);
		c->reaper_fd = -1;
		waitpid(c->reaper, NULL, 0);
	}
}

/* ---- restarting the server while the loop runs ------------------------------ */

typedef struct {
	dbt_cluster *c;
	unsigned down_ms; /* how long the server stays down */
	int phase;        /* 1: stopped, 2: started again, -1: failed (atomic) */
	pthread_t thread;
} dbt_restart;

static inline void *dbt_restart_main(void *arg)
{
	dbt_restart *r = arg;
	int ok = dbt_pg(r->c, "stop", NULL, 0) == 0;

	__atomic_store_n(&r->phase, ok ? 1 : -1, __ATOMIC_SEQ_CST);
	usleep(r->down_ms * 1000);
	ok = ok && dbt_pg(r->c, "start", NULL, 0) == 0;
	__atomic_store_n(&r->phase, ok ? 2 : -1, __ATOMIC_SEQ_CST);
	return NULL;
}

static inline void dbt_restart_begin(dbt_restart *r, dbt_cluster *c, unsigned down_ms)
{
	r->c = c;
	r->down_ms = down_ms;
	r->phase = 0;
	pthread_create(&r->thread, NULL, dbt_restart_main, r);
}

static inline int dbt_restart_phase(dbt_restart *r)
{
	return __atomic_load_n(&r->phase, __ATOMIC_SEQ_CST);
}

/* ---- running the loop ----------------------------------------------------------- */

static inline void dbt_tick(uv_timer_t *t)
{
	(void)t;
}

typedef int (*dbt_pred)(void *arg);

/* Runs the loop until pred(arg) or ms pass. Returns 1 when pred became true. */
static inline int dbt_wait(uv_loop_t *loop, dbt_pred pred, void *arg, unsigned ms)
{
	uv_timer_t t;
	uint64_t end = base_now_ms() + ms;
	int ok;

	/* A ticking timer keeps uv_run from blocking past the deadline. */
	uv_timer_init(loop, &t);
	uv_timer_start(&t, dbt_tick, 5, 5);
	while (!(ok = pred(arg)) && base_now_ms() < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return ok;
}

static inline int dbt_never(void *arg)
{
	(void)arg;
	return 0;
}

/* Runs the loop for ms. */
static inline void dbt_run_for(uv_loop_t *loop, unsigned ms)
{
	dbt_wait(loop, dbt_never, NULL, ms);
}

typedef struct {
	int *counter;
	int target;
} dbt_count;

static inline int dbt_count_reached(void *arg)
{
	dbt_count *c = arg;
	return *c->counter >= c->target;
}

/* Runs the loop until *counter >= target, for at most ms. */
static inline int dbt_wait_count(uv_loop_t *loop, int *counter, int target, unsigned ms)
{
	dbt_count c = {counter, target};
	return dbt_wait(loop, dbt_count_reached, &c, ms);
}

static inline int dbt_pool_connected(void *arg)
{
	db_pool_stats st;
	db_pool_get_stats(arg, &st);
	return st.connected == st.size;
}

static inline void dbt_on_closed(db_pool *pool, void *ud)
{
	(void)pool;
	*(int *)ud = 1;
}

/* Closes and frees the pool, running the loop. Returns 1 when it closed in time. */
static inline int dbt_pool_close(uv_loop_t *loop, db_pool *pool)
{
	int closed = 0;

	if (db_pool_close(pool, dbt_on_closed, &closed) != 0)
		return 0;
	if (!dbt_wait_count(loop, &closed, 1, 10000))
		return 0;
	db_pool_free(pool);
	return 1;
}

#endif
