/*
 * requests.c: the life of a user's request: submit (checks, write, send),
 * status lookups, and the deadline sweep.
 *
 * Round trips to PostgreSQL per request: one to check the space and the
 * user's rate limit, one to write the request (already "processing" with
 * the chosen app), one to record the result. Deadlines are enforced by a
 * sweep in SQL every second, so a restart forgets none.
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "spaces_internal.h"

typedef struct {
	sp_app *app;
	sp_submit_cb cb;        /* sp_submit */
	sp_verdict_cb check_cb; /* sp_submit_check */
	void *ud;
	char space_id[SP_ID_MAX];
	char user_id[32];
	char *username;
	char *payload; /* JSON text, timestamp added (sp_submit) */
	sp_inputs in;  /* strings copied below */
	int has_in;
	char *prompt, *audio_url, *form_error;
	char timeout_s[16];
	sp_conn *conn; /* the app chosen, with a reference */
	char request_id[37];
	sp_verdict v;
	uint64_t start_ms; /* loop time of sp_submit */
} submit_ctx;

static void submit_free(submit_ctx *s)
{
	if (s->conn)
		sp__conn_unref(s->conn);
	free(s->username);
	free(s->payload);
	free(s->prompt);
	free(s->audio_url);
	free(s->form_error);
	free(s);
}

static void submit_done(submit_ctx *s, int status, const char *error, unsigned retry_after)
{
	sp_submit_result r = {status, error, {0}, retry_after};
	if (status == 200) {
		memcpy(r.request_id, s->request_id, sizeof(r.request_id));
		s->app->stats.submitted++;
		BASE_LOGI("spaces", "request %s submitted to space %s by user %s%s", s->request_id,
		          s->space_id, s->user_id, s->conn ? "" : " (queued)");
	} else {
		s->app->stats.rejected++;
	}
	s->cb(&r, s->ud);
	submit_free(s);
}

/* Ends a check or a submission with the verdict s->v. */
static void verdict_done(submit_ctx *s)
{
	if (s->check_cb) {
		s->check_cb(&s->v, s->ud);
		submit_free(s);
		return;
	}
	submit_done(s, s->v.status, s->v.status == 200 ? NULL : s->v.error, s->v.retry_after);
}

static void fail(submit_ctx *s, int status, const char *error)
{
	memset(&s->v, 0, sizeof(s->v));
	s->v.status = status;
	snprintf(s->v.error, sizeof(s->v.error), "%s", error);
	verdict_done(s);
}

static void requeue_orphan_done(const db_result *res, void *ud)
{
	(void)ud;
	if (!db_ok(res))
		BASE_LOGE("spaces", "returning a request to the queue failed: %s", db_error(res));
}

void sp__requeue_orphan(sp_app *app, const char *request_id, const char *connection_id)
{
	/*
	 * Back to the queue, unless another app has it already: the sweep's
	 * drain gives it to the next app within a second.
	 */
	static const char sql[] = "UPDATE requests SET status = 'queued', connection_id = NULL, "
	                          "updated_at = now(), notice = '" SP_NOTICE_REQUEUED "' "
	                          "WHERE id::text = $1 AND connection_id = $2 "
	                          "AND status = 'processing'";
	const char *params[2] = {request_id, connection_id};
	app->stats.requeued++;
	BASE_LOGI("spaces", "request %s queued again: app %s gone", request_id, connection_id);
	db_query(app->db, sql, 2, params, requeue_orphan_done, NULL);
}

static void inserted(const db_result *res, void *ud)
{
	submit_ctx *s = ud;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "writing a request failed: %s", db_error(res));
		submit_done(s, 500, "The request could not be saved, please retry", 0);
		return;
	}
	if (!s->conn) {
		/* Queued for an app of another node (cluster mode), told by the NOTIFY. */
		sp__space_changed(s->app, s->space_id);
		submit_done(s, 200, NULL, 0);
		return;
	}
	/* Written: now the app may hear of it. */
	if (sp__send_request(s->conn, s->request_id, s->username, s->payload)) {
		/* The app left meanwhile: its requests were requeued before this one
		 * existed, so requeue this one too and let the next app take it. */
		sp__requeue_orphan(s->app, s->request_id, s->conn->id);
	} else {
		sp__observe(&s->app->stats.wait, uv_now(sio_server_loop(s->app->io)) - s->start_ms);
	}
	sp__space_changed(s->app, s->space_id);
	submit_done(s, 200, NULL, 0);
}

/* Accepted: written as processing with the least busy app here, or queued. */
static void write_request(submit_ctx *s)
{
	sp_app *app = s->app;

	base_uuid4(s->request_id);
	/* In a cluster, an app on another node takes it from the queue. */
	s->conn = sp__least_busy(app, s->space_id);
	if (!s->conn) {
		/* Queued, and the nodes told once it is written (the NOTIFY commits with it). */
		static const char queued_sql[] =
		    "WITH w AS (INSERT INTO requests (id, space_id, user_id, username, status, "
		    "payload, deadline_at) VALUES ($1, $2, $3, $4, 'queued', $5::jsonb, "
		    "now() + make_interval(secs => $6::int)) RETURNING space_id) "
		    "SELECT pg_notify('" SP_QUEUE_CHANNEL "', space_id) FROM w";
		const char *qparams[6] = {s->request_id, s->space_id, s->user_id,
		                          s->username,   s->payload,  s->timeout_s};
		if (db_query(app->db, queued_sql, 6, qparams, inserted, s))
			submit_done(s, 503, "Server busy, please retry", 0);
		return;
	}
	s->conn->refs++;
	static const char sql[] =
	    "INSERT INTO requests (id, space_id, user_id, username, status, payload, attempts, "
	    "connection_id, started_at, deadline_at) VALUES ($1, $2, $3, $4, 'processing', "
	    "$5::jsonb, 1, $6, now(), now() + make_interval(secs => $7::int))";
	const char *params[7] = {s->request_id, s->space_id, s->user_id,  s->username,
	                         s->payload,    s->conn->id, s->timeout_s};
	if (db_query(app->db, sql, 7, params, inserted, s))
		submit_done(s, 503, "Server busy, please retry", 0);
}

/* The space's row and the user's last request there: judged. */
static void facts_found(const db_result *res, void *ud)
{
	submit_ctx *s = ud;
	sp_app *app = s->app;
	sp_space_row row;
	sp_submit_facts f = {1, NULL, 0, -1, s->has_in ? &s->in : NULL};

	if (!db_ok(res)) {
		BASE_LOGE("spaces", "checking a submission failed: %s", db_error(res));
		fail(s,
		     db_status(res) == DB_EQUEUEFULL || db_status(res) == DB_ETIMEDOUT ? 503 : 500,
		     "Server error, please retry");
		return;
	}
	if (db_ntuples(res) == 1) {
		sp__space_row(res, 0, 0, &row);
		f.space = &row;
		if (!db_isnull(res, 0, SP__SPACE_NCOLS))
			f.since_last_s = atof(db_value(res, 0, SP__SPACE_NCOLS));
		snprintf(s->timeout_s, sizeof(s->timeout_s), "%u",
		         row.timeout_s ? row.timeout_s : app->opts.default_timeout_s);
	}
	f.apps = sp_space_apps(app, s->space_id);
	sp_submit_judge(&f, &s->v);
	if (s->v.status != 200 || s->check_cb) {
		verdict_done(s);
		return;
	}
	write_request(s);
}

static char *dup_or_null(const char *v, int *oom)
{
	char *d = v ? strdup(v) : NULL;
	if (v && !d)
		*oom = 1;
	return d;
}

/* Starts a check (check_cb) or a submission (cb). */
static void judge_start(sp_app *app, submit_ctx *s, const char *space_id, const char *user_id,
                        const sp_inputs *in)
{
	int oom = 0;

	s->app = app;
	s->start_ms = uv_now(sio_server_loop(app->io));
	snprintf(s->space_id, sizeof(s->space_id), "%s", space_id ? space_id : "");
	snprintf(s->user_id, sizeof(s->user_id), "%s", user_id ? user_id : "");
	if (in) {
		s->has_in = 1;
		s->in = *in;
		s->in.prompt = s->prompt = dup_or_null(in->prompt, &oom);
		s->in.audio_url = s->audio_url = dup_or_null(in->audio_url, &oom);
		s->in.form_error = s->form_error = dup_or_null(in->form_error, &oom);
	}
	if (oom || (!s->check_cb && !s->payload)) {
		fail(s, 500, "Out of memory");
		return;
	}
	if (!user_id || !*user_id || !space_id || strlen(space_id) >= SP_ID_MAX || !*space_id) {
		/* No query: the rules answer from what is known (401 or 404). */
		sp_submit_facts f = {user_id && *user_id, NULL, 0, -1, NULL};
		sp_submit_judge(&f, &s->v);
		verdict_done(s);
		return;
	}
	/* user_id is the users.id of a logged-in user: compared as a bigint so
	 * that the (user_id, space_id, created_at) index answers it. The row is
	 * read without its long texts, which the rules do not look at. */
	static const char sql[] = "SELECT " SP__SPACE_COLUMNS_SHORT(
	    "s") ", (SELECT EXTRACT(EPOCH FROM now() - max(r.created_at)) "
	         "FROM requests r WHERE r.space_id = s.id AND r.user_id = $2::bigint) "
	         "FROM spaces s WHERE s.id = $1";
	const char *params[2] = {s->space_id, s->user_id};
	if (db_query_flags(app->db, DB_RETRY, sql, 2, params, facts_found, s))
		fail(s, 503, "Server busy, please retry");
}

void sp_submit_check(sp_app *app, const char *space_id, const char *user_id, const sp_inputs *in,
                     sp_verdict_cb cb, void *ud)
{
	submit_ctx *s = calloc(1, sizeof(*s));
	if (!s) {
		sp_verdict v = {500, "Out of memory", 0};
		cb(&v, ud);
		return;
	}
	s->check_cb = cb;
	s->ud = ud;
	judge_start(app, s, space_id, user_id, in);
}

static char *payload_with_timestamp(json_t *payload, json_t *upload)
{
	json_t *p = json_is_object(payload) ? json_deep_copy(payload) : json_object();
	if (!json_object_get(p, "timestamp")) {
		char ts[40];
		struct timespec now;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &tm);
		size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(ts + n, sizeof(ts) - n, ".%06ldZ", now.tv_nsec / 1000);
		json_object_set_new(p, "timestamp", json_string(ts));
	}
	if (upload)
		json_object_set(p, "upload", upload);
	char *text = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	return text;
}

void sp_submit(sp_app *app, const sp_submission *sub, sp_submit_cb cb, void *ud)
{
	submit_ctx *s = calloc(1, sizeof(*s));
	if (!s) {
		sp_submit_result r = {500, "Out of memory", {0}, 0};
		cb(&r, ud);
		return;
	}
	s->cb = cb;
	s->ud = ud;
	s->app = app;
	s->username = strdup(sub->username ? sub->username : "");
	s->payload = s->username ? payload_with_timestamp(sub->payload, sub->upload) : NULL;
	judge_start(app, s, sub->space_id, sub->user_id, sub->in);
}

/* ---- deadlines ------------------------------------------------------------ */

static void waiting_found(const db_result *res, void *ud)
{
	sp_app *app = ud;
	if (!db_ok(res)) {
		BASE_LOGW("spaces", "looking for queued requests failed: %s", db_error(res));
		return;
	}
	for (int i = 0; i < db_ntuples(res) && !app->closed; i++)
		sp__drain(app, db_value(res, i, 0));
}

/*
 * A safety net under the event-driven dispatch: requests that became queued
 * while no drain could see them (start-up recovery racing a register, an app
 * gone while its drain ran, a failed query) reach an app within a sweep. One
 * query finds the spaces with apps here that have any; only those drain.
 */
static void drain_waiting(sp_app *app)
{
	static const char sql[] = "SELECT DISTINCT space_id FROM requests WHERE status = 'queued' "
	                          "AND space_id = ANY($1::text[]) AND deadline_at > now()";
	base_buf ids = BASE_BUF_INIT;
	base_buf_append(&ids, "{", 1);
	for (sp_space *sp = app->spaces; sp; sp = sp->next) {
		if (!sp->n_apps)
			continue;
		if (ids.len > 1)
			base_buf_append(&ids, ",", 1);
		/* An array literal's element, quoted (ids are URL-safe, but still). */
		base_buf_append(&ids, "\"", 1);
		for (const char *c = sp->id; *c; c++) {
			if (*c == '"' || *c == '\\')
				base_buf_append(&ids, "\\", 1);
			base_buf_append(&ids, c, 1);
		}
		base_buf_append(&ids, "\"", 1);
	}
	base_buf_append(&ids, "}", 1);
	if (ids.data && ids.len > 2) {
		base_buf_append(&ids, "", 1);
		const char *params[1] = {ids.data};
		db_query(app->db, sql, 1, params, waiting_found, app);
	}
	base_buf_free(&ids);
}

static void swept(const db_result *res, void *ud)
{
	sp_app *app = ud;
	app->sweeping = 0;
	if (!app->closed)
		drain_waiting(app);
	if (!db_ok(res)) {
		BASE_LOGW("spaces", "deadline sweep failed: %s", db_error(res));
		return;
	}
	int n = db_ntuples(res);
	for (int i = 0; i < n; i++) {
		/* SP_REQ_COLS */
		if (sp__held_expired(app, db_value(res, i, 0)))
			continue; /* its result, taken meanwhile, is being written over it */
		BASE_LOGI("spaces", "request %s timed out", db_value(res, i, 0));
		app->stats.timed_out++;
		sp__request_push(app, res, i);
		sp__space_changed(app, db_value(res, i, 2));
	}
}

static void served_flushed(const db_result *res, void *ud)
{
	(void)ud;
	if (!db_ok(res))
		BASE_LOGW("spaces", "counting served requests failed: %s", db_error(res));
}

void sp__flush_served(sp_app *app, sp_conn *c)
{
	if (c->served == 0)
		return;
	static const char sql[] = "UPDATE app_connections SET requests_served = "
	                          "requests_served + $2::int WHERE id = $1";
	char served[16];
	snprintf(served, sizeof(served), "%u", c->served);
	const char *params[2] = {c->id, served};
	if (db_query(app->db, sql, 2, params, served_flushed, NULL) == 0)
		c->served = 0;
}

static void sweep_tick(uv_timer_t *t)
{
	sp_app *app = t->data;
	if (app->closed)
		return;
	for (sp_space *sp = app->spaces; sp; sp = sp->next) {
		base_list *pos, *tmp;
		base_list_foreach_safe(pos, tmp, &sp->apps)
		{
			sp__flush_served(app, BASE_CONTAINER_OF(pos, sp_conn, link));
		}
	}
	sp__nodes_tick(app);
	sp__results_tick(app);
	/* Not while the database is away: a sweep waiting for it would not know
	 * of the results taken meanwhile. */
	if (app->sweeping || !sp__db_up(app))
		return;
	/* A request whose result waits to be written has been answered. */
	static const char sql[] =
	    "UPDATE requests r SET status = 'failed', finished_at = now(), updated_at = now(), "
	    "result = jsonb_build_object('error', 'Request timed out after ' || "
	    "round(EXTRACT(EPOCH FROM deadline_at - created_at))::int || ' seconds', "
	    "'reason', 'timeout'), notice = 'Timed out after ' || "
	    "round(EXTRACT(EPOCH FROM deadline_at - created_at))::int || ' s.' "
	    "WHERE status IN ('queued', 'processing') AND deadline_at <= now() "
	    "AND NOT (id = ANY($1::text[])) RETURNING " SP_REQ_COLS;
	base_buf answered = BASE_BUF_INIT;
	sp__pending_ids(app, NULL, &answered);
	const char *params[1] = {answered.data};
	app->sweeping = db_query(app->db, sql, 1, params, swept, app) == 0;
	base_buf_free(&answered);
}

void sp__sweep_start(sp_app *app)
{
	uv_timer_init(sio_server_loop(app->io), &app->sweep);
	app->sweep.data = app;
	uv_timer_start(&app->sweep, sweep_tick, app->opts.sweep_interval_ms,
	               app->opts.sweep_interval_ms);
}

void sp__observe(sp_histogram *h, uint64_t ms)
{
	static const uint64_t bounds[SP_LAT_BUCKETS - 1] = SP_LAT_BOUNDS_MS;
	unsigned i = 0;

	while (i < SP_LAT_BUCKETS - 1 && ms > bounds[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_ms += ms;
}

void sp_app_get_stats(const sp_app *app, sp_stats *st)
{
	*st = app->stats;
}
