/*
 * listen.c: LISTEN/NOTIFY on a connection of its own.
 *
 * Notifications reach only the session that LISTENs, so one dedicated
 * connection holds every channel; it is opened at the first db_listen. When
 * it comes (back) up, every channel is LISTENed again, and each registration
 * is told with a NULL payload once its LISTEN is in place: what was notified
 * while the connection was down is gone, and the registrant must re-read the
 * state it follows. Only registrations whose LISTEN has completed
 * ("armed") receive notifications, so a callback never sees a notification
 * older than its own NULL.
 */
#include "db_internal.h"

#include <stdio.h>
#include <stdlib.h>

#define DB_CHANNEL_MAX 63 /* NAMEDATALEN - 1: longer names are cut by the server */

static int reg_live(const db_listen_reg *r, const char *channel)
{
	return !r->dead && strcmp(r->channel, channel) == 0;
}

static void regs_purge(db_pool *pool)
{
	base_list *pos, *tmp;

	if (pool->in_notify)
		return;
	base_list_foreach_safe(pos, tmp, &pool->regs)
	{
		db_listen_reg *r = BASE_CONTAINER_OF(pos, db_listen_reg, link);

		if (r->dead) {
			base_list_remove(&r->link);
			free(r);
		}
	}
}

static int queue_listen(db_conn *c, db_job_kind kind, const char *channel)
{
	db_pool *pool = c->pool;
	char *quoted = PQescapeIdentifier(c->pg, channel, strlen(channel));
	base_buf sql = BASE_BUF_INIT;
	db_job_stmt s;
	db_job *job = NULL;
	int r = BASE_ENOMEM;

	if (quoted == NULL)
		goto out;
	base_buf_printf(&sql, "%s %s", kind == DB_JOB_LISTEN ? "LISTEN" : "UNLISTEN", quoted);
	s.sql = sql.data;
	s.nparams = 0;
	s.params = NULL;
	job = db__job_new(&s, 1, 0, NULL, NULL);
	if (job == NULL)
		goto out;
	job->kind = kind;
	job->channel = strdup(channel);
	if (job->channel == NULL)
		goto out;
	db__pool_enqueue(pool, &pool->lqueue, job, 0);
	db__pool_kick(pool);
	job = NULL;
	r = 0;
out:
	db__job_free(job);
	base_buf_free(&sql);
	PQfreemem(quoted);
	if (r != 0)
		BASE_LOGE(DB_LOG, "cannot queue %s %s: out of memory",
		          kind == DB_JOB_LISTEN ? "LISTEN" : "UNLISTEN", channel);
	return r;
}

void db__listen_on_up(db_conn *c)
{
	db_pool *pool = c->pool;
	base_list *pos, *prev;

	/* One LISTEN per distinct channel. */
	for (pos = pool->regs.next; pos != &pool->regs; pos = pos->next) {
		db_listen_reg *r = BASE_CONTAINER_OF(pos, db_listen_reg, link);
		int seen = 0;

		if (r->dead)
			continue;
		for (prev = pool->regs.next; prev != pos && !seen; prev = prev->next)
			seen = reg_live(BASE_CONTAINER_OF(prev, db_listen_reg, link), r->channel);
		if (!seen)
			queue_listen(c, DB_JOB_LISTEN, r->channel);
	}
}

void db__listen_on_down(db_pool *pool)
{
	base_list *pos, *tmp;

	base_list_foreach_safe(pos, tmp, &pool->regs)
	{
		BASE_CONTAINER_OF(pos, db_listen_reg, link)->armed = 0;
	}
	/* Queued LISTENs belong to the lost session; the next one queues its own. */
	base_list_foreach_safe(pos, tmp, &pool->lqueue)
	{
		base_list_remove(pos);
		db__job_free(BASE_CONTAINER_OF(pos, db_job, link));
	}
}

void db__listen_job_done(db_pool *pool, db_job *job, const db_result *res)
{
	base_list *pos, *tmp;

	if (!db_ok(res)) {
		BASE_LOGE(DB_LOG, "%s %s failed: %s",
		          job->kind == DB_JOB_LISTEN ? "LISTEN" : "UNLISTEN", job->channel,
		          db_error(res));
		return;
	}
	if (job->kind != DB_JOB_LISTEN)
		return;
	BASE_LOGD(DB_LOG, "listening on %s", job->channel);
	pool->in_notify++;
	base_list_foreach_safe(pos, tmp, &pool->regs)
	{
		db_listen_reg *r = BASE_CONTAINER_OF(pos, db_listen_reg, link);

		if (r->armed || !reg_live(r, job->channel))
			continue;
		r->armed = 1;
		r->cb(r->channel, NULL, r->ud);
	}
	pool->in_notify--;
	regs_purge(pool);
}

void db__listen_deliver(db_conn *c)
{
	db_pool *pool = c->pool;
	PGnotify *n;
	base_list *pos, *tmp;

	pool->in_notify++;
	while ((n = PQnotifies(c->pg)) != NULL) {
		base_list_foreach_safe(pos, tmp, &pool->regs)
		{
			db_listen_reg *r = BASE_CONTAINER_OF(pos, db_listen_reg, link);

			/* Registrations made by these callbacks are not armed yet. */
			if (r->armed && reg_live(r, n->relname))
				r->cb(n->relname, n->extra != NULL ? n->extra : "", r->ud);
		}
		PQfreemem(n);
	}
	pool->in_notify--;
	regs_purge(pool);
}

void db__listen_free_all(db_pool *pool)
{
	base_list *pos, *tmp;

	base_list_foreach_safe(pos, tmp, &pool->regs)
	{
		base_list_remove(pos);
		free(BASE_CONTAINER_OF(pos, db_listen_reg, link));
	}
}

int db_listen(db_pool *pool, const char *channel, db_notify_cb cb, void *ud)
{
	size_t len;
	db_listen_reg *r;

	if (pool == NULL || channel == NULL || cb == NULL)
		return BASE_EINVAL;
	len = strlen(channel);
	if (len == 0 || len > DB_CHANNEL_MAX)
		return BASE_EINVAL;
	if (pool->closing)
		return DB_ECLOSED;
	r = calloc(1, sizeof(*r) + len + 1);
	if (r == NULL)
		return BASE_ENOMEM;
	memcpy(r->channel, channel, len + 1);
	r->cb = cb;
	r->ud = ud;
	base_list_insert_tail(&pool->regs, &r->link);

	if (pool->listener == NULL) {
		db_conn *c = calloc(1, sizeof(*c));

		if (c == NULL || db__conn_init(pool, c, 0, 1) != 0) {
			free(c);
			base_list_remove(&r->link);
			free(r);
			return BASE_ENOMEM;
		}
		pool->listener = c;
		/* Its LISTENs are queued when it comes up. */
		db__conn_connect(c);
		return 0;
	}
	if (pool->listener->state == DB_CONN_UP)
		return queue_listen(pool->listener, DB_JOB_LISTEN, channel);
	return 0;
}

int db_unlisten(db_pool *pool, const char *channel, db_notify_cb cb, void *ud)
{
	base_list *pos;
	db_listen_reg *found = NULL;
	int others = 0;

	if (pool == NULL || channel == NULL)
		return BASE_EINVAL;
	for (pos = pool->regs.next; pos != &pool->regs; pos = pos->next) {
		db_listen_reg *r = BASE_CONTAINER_OF(pos, db_listen_reg, link);

		if (!reg_live(r, channel))
			continue;
		if (found == NULL && r->cb == cb && r->ud == ud)
			found = r;
		else
			others++;
	}
	if (found == NULL)
		return BASE_EINVAL;
	found->dead = 1;
	found->armed = 0;
	regs_purge(pool);
	if (others == 0 && pool->listener != NULL && pool->listener->state == DB_CONN_UP &&
	    !pool->closing)
		return queue_listen(pool->listener, DB_JOB_UNLISTEN, channel);
	return 0;
}

int db_notify(db_pool *pool, const char *channel, const char *payload, db_cb cb, void *ud)
{
	const char *params[2] = {channel, payload != NULL ? payload : ""};

	if (channel == NULL)
		return BASE_EINVAL;
	return db_query(pool, "SELECT pg_notify($1, $2)", 2, params, cb, ud);
}
