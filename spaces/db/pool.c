/*
 * pool.c: the pool, its queue, dispatch and shutdown.
 *
 * Submitting only queues a job and arms a zero-delay timer (the "kick");
 * the timer's callback hands queued jobs to the least loaded connections
 * that are up. So callbacks never run inside db_query, and every query
 * submitted during one loop turn is written in one burst: pipelining for
 * free. Each connection also kicks after reading answers, as they make room
 * in its pipeline.
 *
 * A queued job carries a timeout (one base_timeq for all, since every entry
 * has the same duration): when no connection takes it in time, it fails
 * with DB_ETIMEDOUT and the last connection error, instead of waiting
 * forever for a server that is gone.
 */
#include "db_internal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#define DB_MAX_POOL 64
#define DB_MAX_DEPTH 1000

void db_options_init(db_options *o)
{
	o->size = 4;
	o->pipeline_depth = 32;
	o->max_queued = 10000;
	o->queue_timeout_ms = 30000;
	o->connect_timeout_ms = 10000;
	o->backoff_min_ms = 100;
	o->backoff_max_ms = 5000;
	o->prepare = 1;
	o->owner_max_active = 4;
	o->owner_max_waiting = 1000;
}

static void pool_on_kick(uv_timer_t *t);
static void pool_on_queue_timeout(base_timeq *q, base_timeq_entry *e);

static void pool_on_handle_close(uv_handle_t *h)
{
	db__pool_handle_closed(h->data);
}

void db__pool_handle_closed(db_pool *pool)
{
	assert(pool->handles > 0);
	pool->handles--;
	if (pool->handles == 0 && pool->closing == 2) {
		pool->closed = 1;
		BASE_LOGD(DB_LOG, "pool closed");
		if (pool->close_cb != NULL)
			pool->close_cb(pool, pool->close_ud);
	}
}

void db__pool_set_error(db_pool *pool, const char *msg)
{
	snprintf(pool->last_error, sizeof(pool->last_error), "%s", msg);
}

const char *db_pool_last_error(const db_pool *pool)
{
	return pool->last_error;
}

db_pool *db_pool_new_opts(uv_loop_t *loop, const char *conninfo, const db_options *o, char *err,
                          size_t errlen)
{
	db_pool *pool = NULL;
	PQconninfoOption *parsed;
	char *perr = NULL;
	const char *why = NULL;
	char msg[DB_ERRBUF], whybuf[DB_ERRBUF + 32];

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (loop == NULL || conninfo == NULL) {
		why = "no loop or no connection string";
		goto fail;
	}
	/* A malformed string will never connect: say so now, not at every retry. */
	parsed = PQconninfoParse(conninfo, &perr);
	if (parsed == NULL) {
		db__oneline(msg, sizeof(msg), perr != NULL ? perr : "out of memory");
		PQfreemem(perr);
		snprintf(whybuf, sizeof(whybuf), "invalid connection string: %s", msg);
		why = whybuf;
		goto fail;
	}
	PQconninfoFree(parsed);

	pool = calloc(1, sizeof(*pool));
	if (pool == NULL) {
		why = "out of memory";
		goto fail;
	}
	pool->loop = loop;
	db_options_init(&pool->opt);
	if (o != NULL) {
		pool->opt = *o;
		if (pool->opt.size == 0)
			pool->opt.size = 4;
		if (pool->opt.pipeline_depth == 0)
			pool->opt.pipeline_depth = 32;
		if (pool->opt.backoff_min_ms == 0)
			pool->opt.backoff_min_ms = 100;
		if (pool->opt.backoff_max_ms < pool->opt.backoff_min_ms)
			pool->opt.backoff_max_ms = pool->opt.backoff_min_ms;
		if (pool->opt.connect_timeout_ms == 0)
			pool->opt.connect_timeout_ms = 10000;
		if (pool->opt.queue_timeout_ms == 0)
			pool->opt.queue_timeout_ms = 30000;
		if (pool->opt.owner_max_active == 0)
			pool->opt.owner_max_active = 4;
		if (pool->opt.owner_max_waiting == 0)
			pool->opt.owner_max_waiting = 1000;
	}
	pool->opt.size = BASE_MIN(pool->opt.size, DB_MAX_POOL);
	pool->opt.pipeline_depth = BASE_MIN(pool->opt.pipeline_depth, DB_MAX_DEPTH);
	base_list_init(&pool->queue);
	base_list_init(&pool->lqueue);
	base_list_init(&pool->regs);
	pool->conninfo = strdup(conninfo);
	pool->conns = calloc(pool->opt.size, sizeof(db_conn));
	if (pool->conninfo == NULL || pool->conns == NULL) {
		why = "out of memory";
		goto fail;
	}
	/* uv_timer_init cannot fail on a valid loop: from here on nothing fails. */
	base_timeq_init(loop, &pool->qtimeout, pool->opt.queue_timeout_ms, pool_on_queue_timeout);
	uv_timer_init(loop, &pool->kick);
	pool->qtimeout.timer.data = pool;
	pool->qtimeout.data = pool;
	pool->kick.data = pool;
	pool->handles = 2;
	for (unsigned i = 0; i < pool->opt.size; i++)
		db__conn_init(pool, &pool->conns[i], i + 1, 0);
	for (unsigned i = 0; i < pool->opt.size; i++)
		db__conn_connect(&pool->conns[i]);
	return pool;

fail:
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", why);
	else
		BASE_LOGE(DB_LOG, "cannot create the pool: %s", why);
	if (pool != NULL) {
		free(pool->conninfo);
		free(pool->conns);
		free(pool);
	}
	return NULL;
}

db_pool *db_pool_new(uv_loop_t *loop, const char *conninfo, unsigned size)
{
	db_options o;

	db_options_init(&o);
	if (size > 0)
		o.size = size;
	return db_pool_new_opts(loop, conninfo, &o, NULL, 0);
}

/* ---- queue ---------------------------------------------------------------------- */

void db__pool_kick(db_pool *pool)
{
	if (pool->closing == 2)
		return;
	if (!uv_is_active((uv_handle_t *)&pool->kick))
		uv_timer_start(&pool->kick, pool_on_kick, 0, 0);
}

void db__pool_enqueue(db_pool *pool, base_list *queue, db_job *job, int at_head)
{
	if (job->queued_ms == 0)
		job->queued_ms = uv_now(pool->loop);
	if (at_head) {
		/* insert after the head node: first to be sent */
		job->link.prev = queue;
		job->link.next = queue->next;
		queue->next->prev = &job->link;
		queue->next = &job->link;
	} else {
		base_list_insert_tail(queue, &job->link);
	}
	if (queue == &pool->queue) {
		pool->nqueued++;
		base_timeq_arm(&pool->qtimeout, &job->timer);
	}
}

static db_job *pool_pop(db_pool *pool, base_list *queue)
{
	db_job *job = BASE_CONTAINER_OF(queue->next, db_job, link);

	base_list_remove(&job->link);
	if (queue == &pool->queue) {
		pool->nqueued--;
		base_timeq_disarm(&job->timer);
	}
	return job;
}

static unsigned pool_up(const db_pool *pool)
{
	unsigned up = 0;

	for (unsigned i = 0; i < pool->opt.size; i++)
		up += pool->conns[i].state == DB_CONN_UP;
	return up;
}

static void pool_on_queue_timeout(base_timeq *q, base_timeq_entry *e)
{
	db_pool *pool = q->data;
	db_job *job = BASE_CONTAINER_OF(e, db_job, timer);
	char msg[DB_ERRBUF + 96];
	int none_up = pool_up(pool) == 0;

	base_list_remove(&job->link);
	pool->nqueued--;
	if (none_up)
		snprintf(msg, sizeof(msg), "no database connection for %u ms: %s",
		         pool->opt.queue_timeout_ms,
		         pool->last_error[0] ? pool->last_error : "still connecting");
	else
		snprintf(msg, sizeof(msg), "waited %u ms in the queue: every connection was busy",
		         pool->opt.queue_timeout_ms);
	db__job_fail(pool, job, DB_ETIMEDOUT, none_up ? "08001" : "", msg);
}

static int check_stmt(const char *sql, int nparams, const char *const *params)
{
	if (sql == NULL || nparams < 0 || nparams > 65535 || (nparams > 0 && params == NULL))
		return BASE_EINVAL;
	return 0;
}

/* ---- owners --------------------------------------------------------------------- */

/* The key is a pointer: its bytes are its hash's input. */
static size_t owner_hash(const void *key)
{
	return base_table_hash(&key, sizeof(key));
}

static db_owner *owner_get(db_pool *pool, const void *key)
{
	size_t h = owner_hash(key);
	db_owner *o;

	for (base_table_link *l = base_table_bucket(&pool->owners, h); l != NULL; l = l->next) {
		o = BASE_CONTAINER_OF(l, db_owner, hlink);
		if (o->key == key)
			return o;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return NULL;
	o->key = key;
	base_list_init(&o->waiting);
	base_table_insert(&pool->owners, &o->hlink, h);
	return o;
}

static void owner_maybe_free(db_pool *pool, db_owner *o)
{
	if (o->active != 0 || o->nwaiting != 0)
		return;
	base_table_remove(&pool->owners, &o->hlink);
	free(o);
}

void db__owner_job_done(db_pool *pool, db_job *job)
{
	db_owner *o = job->owner;

	if (o == NULL)
		return;
	job->owner = NULL;
	o->active--;
	if (!base_list_empty(&o->waiting)) {
		db_job *next = BASE_CONTAINER_OF(o->waiting.next, db_job, link);

		base_list_remove(&next->link);
		o->nwaiting--;
		pool->nwaiting--;
		o->active++;
		/* To the tail: behind what the others queued meanwhile. */
		db__pool_enqueue(pool, &pool->queue, next, 0);
		db__pool_kick(pool);
		return;
	}
	owner_maybe_free(pool, o);
}

void db_pool_set_owner(db_pool *pool, const void *owner)
{
	pool->current_owner = owner;
}

static void owners_free(db_pool *pool)
{
	base_table_link *l, *next;
	size_t i;

	base_table_foreach_safe(&pool->owners, i, l, next)
	{
		db_owner *o = BASE_CONTAINER_OF(l, db_owner, hlink);

		while (!base_list_empty(&o->waiting)) {
			db_job *job = BASE_CONTAINER_OF(o->waiting.next, db_job, link);

			base_list_remove(&job->link);
			db__job_free(job);
		}
		free(o);
	}
	base_table_free(&pool->owners);
}

static int pool_submit(db_pool *pool, const void *owner, const db_job_stmt *stmts, unsigned n,
                       int is_tx, unsigned flags, db_cb cb, void *ud)
{
	db_job *job;
	db_owner *o = NULL;
	int wait = 0;

	if (pool->closing)
		return DB_ECLOSED;
	if (owner == NULL)
		owner = pool->current_owner;
	if (owner != NULL) {
		o = owner_get(pool, owner);
		if (o == NULL)
			return BASE_ENOMEM;
		wait = o->active >= pool->opt.owner_max_active;
		if (wait && (o->nwaiting >= pool->opt.owner_max_waiting ||
		             pool->nwaiting >= pool->opt.max_queued)) {
			owner_maybe_free(pool, o);
			return DB_EQUEUEFULL;
		}
	}
	if (!wait && pool->nqueued >= pool->opt.max_queued) {
		if (o != NULL)
			owner_maybe_free(pool, o);
		return DB_EQUEUEFULL;
	}
	job = db__job_new(stmts, n, is_tx, cb, ud);
	if (job == NULL) {
		if (o != NULL)
			owner_maybe_free(pool, o);
		return BASE_ENOMEM;
	}
	job->flags = flags;
	job->owner = o;
	if (wait) {
		base_list_insert_tail(&o->waiting, &job->link);
		o->nwaiting++;
		pool->nwaiting++;
		return 0;
	}
	if (o != NULL)
		o->active++;
	db__pool_enqueue(pool, &pool->queue, job, 0);
	db__pool_kick(pool);
	return 0;
}

int db_query_flags(db_pool *pool, unsigned flags, const char *sql, int nparams,
                   const char *const *params, db_cb cb, void *ud)
{
	db_job_stmt s = {sql, nparams, params};

	if (pool == NULL || check_stmt(sql, nparams, params) != 0)
		return BASE_EINVAL;
	return pool_submit(pool, NULL, &s, 1, 0, flags & DB_RETRY, cb, ud);
}

int db_query_owned(db_pool *pool, const void *owner, const char *sql, int nparams,
                   const char *const *params, db_cb cb, void *ud)
{
	db_job_stmt s = {sql, nparams, params};

	if (pool == NULL || check_stmt(sql, nparams, params) != 0)
		return BASE_EINVAL;
	return pool_submit(pool, owner, &s, 1, 0, 0, cb, ud);
}

int db_query(db_pool *pool, const char *sql, int nparams, const char *const *params, db_cb cb,
             void *ud)
{
	return db_query_flags(pool, 0, sql, nparams, params, cb, ud);
}

int db_query_tx(db_pool *pool, const db_stmt *stmts, unsigned n, db_cb cb, void *ud)
{
	db_job_stmt s[DB_MAX_TX_STMTS];

	if (pool == NULL || stmts == NULL || n == 0 || n > DB_MAX_TX_STMTS)
		return BASE_EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (check_stmt(stmts[i].sql, stmts[i].nparams, stmts[i].params) != 0)
			return BASE_EINVAL;
		s[i].sql = stmts[i].sql;
		s[i].nparams = stmts[i].nparams;
		s[i].params = stmts[i].params;
	}
	return pool_submit(pool, NULL, s, n, 1, 0, cb, ud);
}

/* ---- dispatch ------------------------------------------------------------------- */

/* The least loaded connection that is up, has room, and may take job. */
static db_conn *pool_pick(db_pool *pool, const db_job *job, int *room)
{
	db_conn *best = NULL;

	*room = 0;
	for (unsigned i = 0; i < pool->opt.size; i++) {
		db_conn *c = &pool->conns[i];

		if (c->state != DB_CONN_UP || c->ninflight >= pool->opt.pipeline_depth)
			continue;
		*room = 1;
		/* While closing no new connection will come: any will do. */
		if (c->up_seq < job->min_up && !pool->closing)
			continue;
		if (best == NULL || c->ninflight < best->ninflight)
			best = c;
	}
	return best;
}

static void pool_close_handles(db_pool *pool)
{
	pool->closing = 2;
	uv_timer_stop(&pool->kick);
	uv_close((uv_handle_t *)&pool->kick, pool_on_handle_close);
	base_timeq_close(&pool->qtimeout, pool_on_handle_close);
	for (unsigned i = 0; i < pool->opt.size; i++)
		db__conn_close_handles(&pool->conns[i]);
	if (pool->listener != NULL)
		db__conn_close_handles(pool->listener);
}

/*
 * One step of a shutdown: drop what is not up, let what is up drain the
 * queue and its pipeline, close each connection once idle, and close the
 * handles when no connection is left.
 */
static void pool_close_step(db_pool *pool)
{
	base_list *pos, *tmp;
	int open = 0;

	if (pool->listener != NULL && pool->listener->state != DB_CONN_CLOSED)
		db__conn_shutdown(pool->listener);
	base_list_foreach_safe(pos, tmp, &pool->lqueue)
	{
		base_list_remove(pos);
		db__job_free(BASE_CONTAINER_OF(pos, db_job, link));
	}
	for (unsigned i = 0; i < pool->opt.size; i++) {
		db_conn *c = &pool->conns[i];

		if (c->state == DB_CONN_WAIT || c->state == DB_CONN_CONNECTING)
			db__conn_shutdown(c);
	}
	if (pool_up(pool) == 0) {
		while (!base_list_empty(&pool->queue))
			db__job_fail(pool, pool_pop(pool, &pool->queue), DB_ECLOSED, "",
			             "the pool closed before the query could be sent");
	}
	if (!base_list_empty(&pool->queue))
		return;
	for (unsigned i = 0; i < pool->opt.size; i++) {
		db_conn *c = &pool->conns[i];

		if (c->state == DB_CONN_UP && c->ninflight == 0 && !c->want_write)
			db__conn_shutdown(c);
		open += c->state != DB_CONN_CLOSED;
	}
	if (open == 0 && pool->closing == 1)
		pool_close_handles(pool);
}

static void pool_dispatch(db_pool *pool)
{
	base_list *pos = pool->queue.next;
	db_conn *c;
	int room = 1;

	/*
	 * In order, except that a retried job waits for a new connection
	 * while the jobs behind it go ahead.
	 */
	while (pos != &pool->queue && room) {
		db_job *job = BASE_CONTAINER_OF(pos, db_job, link);
		base_list *next = pos->next;

		c = pool_pick(pool, job, &room);
		if (c == NULL) {
			pos = next;
			continue;
		}
		base_list_remove(&job->link);
		pool->nqueued--;
		base_timeq_disarm(&job->timer);
		/* A failed send puts jobs back at the head: start again from there. */
		pos = db__conn_send(c, job) == 0 ? next : pool->queue.next;
	}
	/* One write per connection for everything queued this turn. */
	for (unsigned i = 0; i < pool->opt.size; i++)
		db__conn_flush(&pool->conns[i]);

	c = pool->listener;
	if (c != NULL && c->state == DB_CONN_UP) {
		while (!base_list_empty(&pool->lqueue) && c->state == DB_CONN_UP &&
		       c->ninflight < pool->opt.pipeline_depth)
			db__conn_send(c, pool_pop(pool, &pool->lqueue));
		db__conn_flush(c);
	}
	if (pool->closing == 1)
		pool_close_step(pool);
}

static void pool_on_kick(uv_timer_t *t)
{
	pool_dispatch(t->data);
}

/* ---- state and shutdown ------------------------------------------------------------ */

void db_pool_get_stats(const db_pool *pool, db_pool_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = pool->opt.size;
	st->connected = pool_up(pool);
	st->queued = pool->nqueued;
	st->waiting = pool->nwaiting;
	for (unsigned i = 0; i < pool->opt.size; i++)
		st->in_flight += pool->conns[i].ninflight;
	st->completed = pool->completed;
	st->failed = pool->failed;
	st->reconnects = pool->reconnects;
	memcpy(st->lat_bucket, pool->lat_bucket, sizeof(st->lat_bucket));
	st->lat_sum_ms = pool->lat_sum_ms;
}

int db_pool_close(db_pool *pool, db_close_cb cb, void *ud)
{
	if (pool->closing)
		return DB_ECLOSED;
	pool->closing = 1;
	pool->close_cb = cb;
	pool->close_ud = ud;
	/* The work happens in the kick: this may be called from inside a callback of ours. */
	db__pool_kick(pool);
	return 0;
}

void db_pool_free(db_pool *pool)
{
	if (pool == NULL)
		return;
	if (!pool->closed) {
		BASE_LOGE(DB_LOG, "db_pool_free before db_pool_close finished: leaking the pool");
		return;
	}
	db__listen_free_all(pool);
	owners_free(pool);
	free(pool->listener);
	free(pool->conns);
	free(pool->conninfo);
	free(pool);
}
