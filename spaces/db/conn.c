/*
 * conn.c: one non-blocking libpq connection on the loop.
 *
 *   WAIT --timer--> CONNECTING --PQconnectPoll OK--> UP --failure--> WAIT
 *                        |                                             ^
 *                        +--------------failure / timeout--------------+
 *
 * An UP connection is in pipeline mode. Each job (a query, or the
 * statements of a transaction) is written with PQsendQueryParams and closed
 * with its own Sync, so the server runs it as one implicit transaction and
 * an error in one job never spills into the next. Results come back in the
 * order jobs were sent: a job is finished when its Sync result arrives.
 *
 * When the connection dies, the jobs in flight cannot know whether they ran:
 * they fail with DB_ECONNLOST, except DB_RETRY ones, which go back to the
 * head of the queue once. Reconnecting waits backoff_min_ms, doubling after
 * each failed attempt up to backoff_max_ms.
 */
#include "db_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void conn_on_io(uv_poll_t *h, int status, int events);
static void conn_on_connect_io(uv_poll_t *h, int status, int events);
static void conn_on_timer(uv_timer_t *t);

/* ---- poll handles ----------------------------------------------------------- */

static void poll_on_close(uv_handle_t *h)
{
	db_poll *p = BASE_CONTAINER_OF((uv_poll_t *)h, db_poll, handle);
	db_pool *pool = p->pool;

	free(p);
	db__pool_handle_closed(pool);
}

static void conn_detach_poll(db_conn *c)
{
	if (c->poll == NULL)
		return;
	c->poll->conn = NULL;
	/* uv_close stops watching the fd at once; only the free waits for the loop. */
	uv_close((uv_handle_t *)&c->poll->handle, poll_on_close);
	c->poll = NULL;
	c->poll_events = 0;
}

/*
 * Watches the socket for events. fresh = 1 replaces the handle: while
 * connecting, libpq may close its socket and open another, possibly under
 * the same fd number, which an old epoll registration would never see.
 */
static int conn_watch(db_conn *c, int events, uv_poll_cb cb, int fresh)
{
	int fd, r;

	if (fresh)
		conn_detach_poll(c);
	if (c->poll == NULL) {
		db_poll *p;

		fd = PQsocket(c->pg);
		if (fd < 0)
			return -1;
		p = calloc(1, sizeof(*p));
		if (p == NULL)
			return -1;
		r = uv_poll_init(c->pool->loop, &p->handle, fd);
		if (r != 0) {
			free(p);
			return -1;
		}
		p->conn = c;
		p->pool = c->pool;
		c->pool->handles++;
		c->poll = p;
		c->poll_events = 0;
		fresh = 1;
	}
	if (fresh || events != c->poll_events) {
		r = uv_poll_start(&c->poll->handle, events, cb);
		if (r != 0)
			return -1;
		c->poll_events = events;
	}
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------------ */

int db__conn_init(db_pool *pool, db_conn *c, unsigned id, int is_listener)
{
	int r;

	memset(c, 0, sizeof(*c));
	c->pool = pool;
	c->id = id;
	c->is_listener = is_listener;
	c->state = DB_CONN_WAIT;
	c->backoff_ms = pool->opt.backoff_min_ms;
	base_list_init(&c->inflight);
	r = uv_timer_init(pool->loop, &c->timer);
	if (r != 0)
		return r;
	c->timer.data = c;
	pool->handles++;
	return 0;
}

static void conn_timer_on_close(uv_handle_t *h)
{
	db_conn *c = h->data;

	db__pool_handle_closed(c->pool);
}

void db__conn_close_handles(db_conn *c)
{
	uv_close((uv_handle_t *)&c->timer, conn_timer_on_close);
}

static const char *conn_name(const db_conn *c, char *buf, size_t len)
{
	if (c->is_listener)
		snprintf(buf, len, "listener");
	else
		snprintf(buf, len, "connection %u", c->id);
	return buf;
}

/* Closes the socket and the libpq connection; jobs are the caller's business. */
/* ---- prepared statements ---------------------------------------------------- */

/*
 * A cheap hash of a statement, computed at every send: its length and its
 * first and last STMT_HASH_ENDS bytes (the hot statements are kilobytes
 * long, and hashing every byte cost more than sending them). Statements
 * that share both ends and the length only cost a strcmp more.
 */
#define STMT_HASH_ENDS 48

static uint64_t stmt_hash(const char *sql)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	size_t len = strlen(sql);
	const unsigned char *p = (const unsigned char *)sql;
	size_t head = len < 2 * STMT_HASH_ENDS ? len : STMT_HASH_ENDS;

	h = (h ^ (uint64_t)len) * 1099511628211ull;
	for (size_t i = 0; i < head; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	for (size_t i = len - (len < 2 * STMT_HASH_ENDS ? 0 : STMT_HASH_ENDS); i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* Forgets every statement: a new session has none. */
static void stmts_forget(db_conn *c)
{
	for (unsigned i = 0; i < c->nstmts; i++) {
		free(c->stmts[i].sql);
		c->stmts[i].sql = NULL;
	}
	c->nstmts = 0;
	c->stmt_seq = 0;
}

/* The slot is free again (its statement, if any, stays unused on the server). */
static void stmt_forget(db_conn *c, int slot)
{
	free(c->stmts[slot].sql);
	c->stmts[slot].sql = NULL;
}

/*
 * The cache slot of s on c, or -1 when it is not prepared; *fresh is set
 * when a slot was taken for it now (the caller sends the Parse).
 */
static int stmt_slot(db_conn *c, const db_job_stmt *s, int *fresh)
{
	uint64_t h = stmt_hash(s->sql);

	*fresh = 0;
	for (unsigned i = 0; i < c->nstmts; i++) {
		const db_prepared *e = &c->stmts[i];

		if (e->sql != NULL && e->hash == h && e->nparams == s->nparams &&
		    strcmp(e->sql, s->sql) == 0)
			return (int)i;
	}
	for (unsigned i = 0; i < DB_STMT_CACHE; i++) {
		db_prepared *e = &c->stmts[i];

		if (e->sql != NULL)
			continue;
		e->sql = strdup(s->sql);
		if (e->sql == NULL)
			return -1;
		e->hash = h;
		e->nparams = s->nparams;
		snprintf(e->name, sizeof(e->name), "s%u", ++c->stmt_seq);
		if (i >= c->nstmts)
			c->nstmts = i + 1;
		*fresh = 1;
		return (int)i;
	}
	return -1; /* full: sent unnamed, as before */
}

static void conn_drop(db_conn *c)
{
	stmts_forget(c);
	conn_detach_poll(c);
	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	uv_timer_stop(&c->timer);
	c->want_write = 0;
	c->sent = 0;
}

/*
 * Messages of the server that do not answer a query: notices and warnings,
 * and the FATAL it sends before closing a session (an administrator's
 * shutdown, 57P01), which we keep to explain the loss that follows.
 */
static void conn_on_notice(void *arg, const PGresult *r)
{
	db_conn *c = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	char name[32];

	if (msg == NULL)
		msg = "";
	if (sev == NULL)
		sev = "NOTICE";
	if (state != NULL && db__sqlstate_fatal(state)) {
		snprintf(c->fatal_msg, sizeof(c->fatal_msg), "%s", msg);
		snprintf(c->fatal_state, sizeof(c->fatal_state), "%s", state);
	}
	if (strcmp(sev, "NOTICE") == 0 || strcmp(sev, "DEBUG") == 0 || strcmp(sev, "INFO") == 0 ||
	    strcmp(sev, "LOG") == 0)
		BASE_LOGD(DB_LOG, "%s: server %s: %s", conn_name(c, name, sizeof(name)), sev, msg);
	else
		BASE_LOGW(DB_LOG, "%s: server %s: %s", conn_name(c, name, sizeof(name)), sev, msg);
}

static void conn_schedule_retry(db_conn *c)
{
	db_pool *pool = c->pool;

	if (pool->closing) {
		c->state = DB_CONN_CLOSED;
		db__pool_kick(pool);
		return;
	}
	c->state = DB_CONN_WAIT;
	uv_timer_start(&c->timer, conn_on_timer, c->backoff_ms, 0);
	c->backoff_ms = BASE_MIN(c->backoff_ms * 2, pool->opt.backoff_max_ms);
}

static void conn_attempt_failed(db_conn *c, const char *why)
{
	db_pool *pool = c->pool;
	char msg[DB_ERRBUF], name[32];

	db__oneline(msg, sizeof(msg), why);
	conn_drop(c);
	db__pool_set_error(pool, msg);
	c->failures++;
	conn_name(c, name, sizeof(name));
	/* The first failure and then every tenth one are worth a warning; the rest is noise. */
	if (c->failures == 1)
		BASE_LOGW(DB_LOG, "%s: cannot connect to %s: %s; retrying in %u ms", name,
		          c->host[0] ? c->host : "the server", msg, c->backoff_ms);
	else if (c->failures % 10 == 0)
		BASE_LOGW(DB_LOG, "%s: still cannot connect after %u attempts (%" PRIu64 " s): %s",
		          name, c->failures, (base_now_ms() - c->down_since) / 1000, msg);
	else
		BASE_LOGD(DB_LOG, "%s: attempt %u failed: %s", name, c->failures, msg);
	conn_schedule_retry(c);
}

void db__conn_connect(db_conn *c)
{
	db_pool *pool = c->pool;
	const char *host, *port;

	assert(c->pg == NULL && c->poll == NULL);
	if (c->down_since == 0)
		c->down_since = base_now_ms();
	/*
	 * PQconnectStart does not block, except for a host name to resolve:
	 * give an IP address (or hostaddr=) for a server the loop must never
	 * wait for.
	 */
	c->pg = PQconnectStart(pool->conninfo);
	if (c->pg == NULL) {
		conn_attempt_failed(c, "out of memory");
		return;
	}
	host = PQhost(c->pg);
	port = PQport(c->pg);
	snprintf(c->host, sizeof(c->host), "%s%s%s", host ? host : "", port && port[0] ? ":" : "",
	         port ? port : "");
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		conn_attempt_failed(c, PQerrorMessage(c->pg));
		return;
	}
	PQsetNoticeReceiver(c->pg, conn_on_notice, c);
	c->state = DB_CONN_CONNECTING;
	c->fatal_msg[0] = '\0';
	c->fatal_state[0] = '\0';
	/* libpq's connect_timeout is not applied by PQconnectPoll: ours is. */
	uv_timer_start(&c->timer, conn_on_timer, pool->opt.connect_timeout_ms, 0);
	/* Before the first PQconnectPoll, wait as if it had asked for writability. */
	if (conn_watch(c, UV_WRITABLE, conn_on_connect_io, 1) != 0)
		conn_attempt_failed(c, "cannot watch the connection's socket");
}

static void conn_up(db_conn *c)
{
	db_pool *pool = c->pool;
	char name[32];

	uv_timer_stop(&c->timer);
	if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
		conn_attempt_failed(c, PQerrorMessage(c->pg));
		return;
	}
	if (conn_watch(c, UV_READABLE, conn_on_io, 1) != 0) {
		conn_attempt_failed(c, "cannot watch the connection's socket");
		return;
	}
	conn_name(c, name, sizeof(name));
	if (c->was_up) {
		pool->reconnects++;
		BASE_LOGI(DB_LOG, "%s to %s restored after %" PRIu64 " ms (%u failed attempts)",
		          name, c->host, base_now_ms() - c->down_since, c->failures);
	} else if (c->failures > 0) {
		BASE_LOGI(DB_LOG, "%s to %s up after %u failed attempts", name, c->host,
		          c->failures);
	} else {
		BASE_LOGD(DB_LOG, "%s to %s up (server %d)", name, c->host, PQserverVersion(c->pg));
	}
	c->state = DB_CONN_UP;
	c->up_seq = ++pool->up_seq;
	c->was_up = 1;
	c->failures = 0;
	c->down_since = 0;
	c->backoff_ms = pool->opt.backoff_min_ms;
	if (c->is_listener)
		db__listen_on_up(c);
	db__pool_kick(pool);
}

static void conn_connect_step(db_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		if (conn_watch(c, UV_READABLE, conn_on_connect_io, 1) != 0)
			conn_attempt_failed(c, "cannot watch the connection's socket");
		return;
	case PGRES_POLLING_WRITING:
		if (conn_watch(c, UV_WRITABLE, conn_on_connect_io, 1) != 0)
			conn_attempt_failed(c, "cannot watch the connection's socket");
		return;
	case PGRES_POLLING_OK:
		conn_up(c);
		return;
	default:
		conn_attempt_failed(c, PQerrorMessage(c->pg));
		return;
	}
}

static void conn_on_connect_io(uv_poll_t *h, int status, int events)
{
	db_poll *p = BASE_CONTAINER_OF(h, db_poll, handle);

	(void)status; /* PQconnectPoll finds out what went wrong with the socket */
	(void)events;
	if (p->conn != NULL)
		conn_connect_step(p->conn);
}

static void conn_on_timer(uv_timer_t *t)
{
	db_conn *c = t->data;
	char msg[64];

	if (c->state == DB_CONN_WAIT) {
		db__conn_connect(c);
	} else if (c->state == DB_CONN_CONNECTING) {
		snprintf(msg, sizeof(msg), "timed out after %u ms",
		         c->pool->opt.connect_timeout_ms);
		conn_attempt_failed(c, msg);
	}
}

/* ---- losing a connection ---------------------------------------------------------- */

void db__conn_lost(db_conn *c, const char *why)
{
	db_pool *pool = c->pool;
	char msg[DB_ERRBUF], name[32], state[6];
	base_list jobs, *pos, *tmp;
	unsigned n = c->ninflight, retried = 0;

	/* The server's own reason (an administrator's shutdown) says more than "EOF". */
	db__oneline(msg, sizeof(msg), c->fatal_msg[0] ? c->fatal_msg : why);
	snprintf(state, sizeof(state), "%s", c->fatal_state[0] ? c->fatal_state : "08006");
	c->fatal_msg[0] = '\0';
	c->fatal_state[0] = '\0';

	/* Take the jobs first: the callbacks below may queue new ones. */
	base_list_init(&jobs);
	if (!base_list_empty(&c->inflight)) {
		jobs.next = c->inflight.next;
		jobs.prev = c->inflight.prev;
		jobs.next->prev = &jobs;
		jobs.prev->next = &jobs;
		base_list_init(&c->inflight);
	}
	c->ninflight = 0;
	conn_drop(c);
	db__pool_set_error(pool, msg);
	c->down_since = base_now_ms();
	c->backoff_ms = pool->opt.backoff_min_ms;
	BASE_LOGW(DB_LOG, "%s to %s lost: %s (%u queries in flight)%s",
	          conn_name(c, name, sizeof(name)), c->host, msg, n,
	          pool->closing ? "" : "; reconnecting");
	if (c->is_listener)
		db__listen_on_down(pool);
	conn_schedule_retry(c);

	/* Jobs that may run again go back to the head of the queue, in their order. */
	for (pos = jobs.prev, tmp = pos->prev; pos != &jobs; pos = tmp, tmp = pos->prev) {
		db_job *job = BASE_CONTAINER_OF(pos, db_job, link);

		if (job->kind != DB_JOB_USER) {
			/* LISTEN / UNLISTEN: the next connection re-LISTENs from the registrations. */
			base_list_remove(&job->link);
			db__job_free(job);
		} else if ((job->flags & DB_RETRY) && !job->retried) {
			base_list_remove(&job->link);
			job->retried = 1;
			/*
			 * Only on a connection made after this loss: the others
			 * were opened to the same server, which is likely going
			 * away with them (a restart ends every session).
			 */
			job->min_up = pool->up_seq + 1;
			db__job_clear_results(job);
			db__pool_enqueue(pool, &pool->queue, job, 1);
			retried++;
		}
	}
	if (retried > 0)
		BASE_LOGI(DB_LOG, "%u idempotent queries queued again", retried);
	base_list_foreach_safe(pos, tmp, &jobs)
	{
		db_job *job = BASE_CONTAINER_OF(pos, db_job, link);

		base_list_remove(&job->link);
		db__job_fail(pool, job, DB_ECONNLOST, state, msg);
	}
	db__pool_kick(pool);
}

void db__conn_shutdown(db_conn *c)
{
	base_list *pos, *tmp;

	conn_drop(c);
	c->state = DB_CONN_CLOSED;
	base_list_foreach_safe(pos, tmp, &c->inflight)
	{
		db_job *job = BASE_CONTAINER_OF(pos, db_job, link);

		base_list_remove(&job->link);
		if (job->kind == DB_JOB_USER)
			db__job_fail(c->pool, job, DB_ECLOSED, "", NULL);
		else
			db__job_free(job);
	}
	c->ninflight = 0;
}

/* ---- sending ------------------------------------------------------------------------- */

int db__conn_send(db_conn *c, db_job *job)
{
	db_pool *pool = c->pool;
	char msg[DB_ERRBUF];

	assert(c->state == DB_CONN_UP);
	job->prep_pending = 0;
	job->prep_slot = -1;
	if (job->nstmts == 1 && job->stmts[0].nparams > 0 && !c->is_listener && pool->opt.prepare) {
		/*
		 * Only a job's first statement is prepared: a Parse behind another
		 * statement could be skipped when that one fails, and a later
		 * job would then find no statement of that name.
		 */
		const db_job_stmt *s = &job->stmts[0];
		int fresh, slot = stmt_slot(c, s, &fresh);

		if (slot >= 0) {
			const char *name = c->stmts[slot].name;

			if (fresh) {
				if (!PQsendPrepare(c->pg, name, s->sql, s->nparams, NULL)) {
					stmt_forget(c, slot);
					goto fail;
				}
				job->prep_pending = 1;
			}
			job->prep_slot = slot;
			if (!PQsendQueryPrepared(c->pg, name, s->nparams, s->params, NULL, NULL, 0))
				goto fail;
			goto sync;
		}
	}
	for (unsigned i = 0; i < job->nstmts; i++) {
		const db_job_stmt *s = &job->stmts[i];

		if (!PQsendQueryParams(c->pg, s->sql, s->nparams, NULL, s->params, NULL, NULL, 0))
			goto fail;
	}
sync:
	if (!PQpipelineSync(c->pg))
		goto fail;
	base_list_insert_tail(&c->inflight, &job->link);
	c->ninflight++;
	c->sent++;
	return 0;

fail:
	/*
	 * Without its Sync the job cannot have committed: it goes back to the
	 * head of the queue, and the connection, whose pipeline is now out of
	 * step, is dropped.
	 */
	db__oneline(msg, sizeof(msg), PQerrorMessage(c->pg));
	if (job->kind == DB_JOB_USER)
		db__pool_enqueue(pool, &pool->queue, job, 1);
	else
		db__job_free(job);
	db__conn_lost(c, msg[0] ? msg : "cannot send the query");
	return -1;
}

static int conn_update_watch(db_conn *c)
{
	if (conn_watch(c, UV_READABLE | (c->want_write ? UV_WRITABLE : 0), conn_on_io, 0) != 0) {
		db__conn_lost(c, "cannot watch the connection's socket");
		return -1;
	}
	return 0;
}

/* Returns 0, or -1 when the connection was lost. */
static int conn_flush(db_conn *c)
{
	int r = PQflush(c->pg);

	if (r < 0) {
		db__conn_lost(c, PQerrorMessage(c->pg));
		return -1;
	}
	c->want_write = r == 1;
	c->sent = 0;
	return conn_update_watch(c);
}

static int conn_read(db_conn *c);

void db__conn_flush(db_conn *c)
{
	unsigned before;

	if (c->state != DB_CONN_UP || (c->sent == 0 && !c->want_write))
		return;
	if (conn_flush(c) != 0)
		return;
	/*
	 * A flush that cannot write everything reads what the server sent
	 * meanwhile (libpq does so to avoid a deadlock). Those answers sit in
	 * libpq's buffer, where no socket event will announce them.
	 */
	before = c->ninflight;
	if (before == 0 || conn_read(c) != 0)
		return;
	if (c->is_listener)
		db__listen_deliver(c);
	if (c->ninflight < before)
		db__pool_kick(c->pool);
}

/* ---- receiving ------------------------------------------------------------------------ */

/* Reads every result that has arrived. Returns 0, or -1 when the connection was lost. */
static int conn_read(db_conn *c)
{
	db_pool *pool = c->pool;
	int nulls = 0;

	while (!base_list_empty(&c->inflight)) {
		db_job *job = BASE_CONTAINER_OF(c->inflight.next, db_job, link);
		PGresult *r;
		ExecStatusType st;

		if (PQisBusy(c->pg))
			break;
		r = PQgetResult(c->pg);
		if (r == NULL) {
			/*
			 * One NULL ends each statement's results. Two in a row
			 * with jobs in flight mean libpq and we disagree on what
			 * was sent: nothing sane can follow on this connection.
			 */
			if (++nulls >= 2) {
				db__conn_lost(
				    c, "protocol out of step: no result for a query in flight");
				return -1;
			}
			continue;
		}
		nulls = 0;
		st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			base_list_remove(&job->link);
			c->ninflight--;
			db__job_complete(pool, job);
			continue;
		}
		if (st == PGRES_FATAL_ERROR &&
		    db__sqlstate_fatal(PQresultErrorField(r, PG_DIAG_SQLSTATE))) {
			/* The server is ending the session (shutdown, crash): no Sync will come. */
			snprintf(c->fatal_msg, sizeof(c->fatal_msg), "%s",
			         PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			             ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)
			             : "");
			snprintf(c->fatal_state, sizeof(c->fatal_state), "%s",
			         PQresultErrorField(r, PG_DIAG_SQLSTATE));
			PQclear(r);
			db__conn_lost(c, "the server ended the session");
			return -1;
		}
		if (job->prep_pending) {
			/* The Parse's own result, before the statement's. */
			job->prep_pending = 0;
			if (st == PGRES_COMMAND_OK) {
				PQclear(r);
				continue;
			}
			/*
			 * Not prepared (a broken statement): its error is the
			 * answer, the Execute's "aborted" is dropped below, and the
			 * slot is freed so that the next use reports its own error.
			 */
			stmt_forget(c, job->prep_slot);
			job->res[job->nres++] = r;
			continue;
		}
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		if (job->prep_slot >= 0 && st == PGRES_FATAL_ERROR && state != NULL &&
		    strcmp(state, "0A000") == 0) {
			/*
			 * "cached plan must not change result type": the schema
			 * changed under the statement. This use fails; the next
			 * one prepares it afresh under a new name.
			 */
			stmt_forget(c, job->prep_slot);
			job->prep_slot = -1;
		}
		if (job->nres < job->nstmts)
			job->res[job->nres++] = r;
		else if (st == PGRES_PIPELINE_ABORTED)
			PQclear(r);
		else if (job->extra == NULL && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
			job->extra = r;
		else
			PQclear(r);
	}
	return 0;
}

/* What went wrong with the socket, in words (libuv only says EBADF). */
static const char *conn_socket_error(db_conn *c, int status)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(PQsocket(c->pg), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0)
		return strerror(err);
	return uv_strerror(status);
}

static void conn_on_io(uv_poll_t *h, int status, int events)
{
	db_poll *p = BASE_CONTAINER_OF(h, db_poll, handle);
	db_conn *c = p->conn;
	db_pool *pool;

	if (c == NULL)
		return;
	pool = c->pool;
	/*
	 * A socket error (POLLERR, reported as UV_EBADF) often follows the
	 * server's last words: let libpq read them, so the loss is explained
	 * by the server's message rather than by the socket's.
	 */
	if (status < 0)
		events = UV_READABLE;
	if ((events & UV_READABLE) && !PQconsumeInput(c->pg)) {
		db__conn_lost(c, PQerrorMessage(c->pg));
		return;
	}
	/* libpq may need to read before it can write: try again after each read. */
	if ((c->want_write || (events & UV_WRITABLE)) && conn_flush(c) != 0)
		return;
	if (conn_read(c) != 0)
		return;
	if (c->is_listener)
		db__listen_deliver(c);
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		db__conn_lost(c, PQerrorMessage(c->pg));
		return;
	}
	if (status < 0) {
		/* libuv stopped watching this socket: it cannot be used any more. */
		db__conn_lost(c, conn_socket_error(c, status));
		return;
	}
	if (conn_update_watch(c) != 0)
		return;
	/* Answers made room in the pipeline. */
	db__pool_kick(pool);
}
