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

#define SP_TIME_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

typedef struct {
	sp_app *app;
	sp_submit_cb cb;
	void *ud;
	char space_id[SP_ID_MAX];
	char user_id[32];
	char *username;
	char *payload; /* JSON text, timestamp added */
	char timeout_s[16];
	sp_conn *conn; /* the app chosen, with a reference */
	char request_id[37];
	uint64_t start_ms; /* loop time of sp_submit */
} submit_ctx;

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
	if (s->conn)
		sp__conn_unref(s->conn);
	free(s->username);
	free(s->payload);
	free(s);
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
	                          "updated_at = now() WHERE id::text = $1 AND connection_id = $2 "
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

/* Written as queued, for an app of another node (cluster mode). */
static void queued(const db_result *res, void *ud)
{
	submit_ctx *s = ud;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "writing a request failed: %s", db_error(res));
		submit_done(s, 500, "The request could not be saved, please retry", 0);
		return;
	}
	sp__space_changed(s->app, s->space_id);
	submit_done(s, 200, NULL, 0);
}

/* The prompt is required (enable_prompt) and missing from the payload. */
static int prompt_missing(const submit_ctx *s, int enable_prompt)
{
	if (!enable_prompt)
		return 0;
	json_t *payload = json_loads(s->payload, 0, NULL);
	const char *prompt = json_string_value(json_object_get(payload, "prompt"));
	int missing = !prompt || !*prompt;
	json_decref(payload);
	return missing;
}

/*
 * Judges a submission from its space's row (id, card_type, enable_prompt,
 * rate_limit_seconds, timeout_seconds, seconds since the user's last
 * request there). Answers it and returns -1 when it is refused; returns 0
 * with s->conn (referenced) and s->timeout_s set when it may be written.
 */
static int judge(submit_ctx *s, const db_result *res)
{
	sp_app *app = s->app;
	if (db_ntuples(res) != 1 || strcmp(db_value(res, 0, 1), "websockets") != 0) {
		submit_done(s, 404, "Space not found", 0);
		return -1;
	}
	if (!s->conn) {
		s->conn = sp__least_busy(app, s->space_id);
		/* In a cluster, an app on another node takes it from the queue. */
		if (!s->conn && sp_space_apps(app, s->space_id) == 0) {
			submit_done(s, 503, "Remote app not connected", 0);
			return -1;
		}
		if (s->conn)
			s->conn->refs++;
	}
	if (prompt_missing(s, strcmp(db_value(res, 0, 2), "t") == 0)) {
		submit_done(s, 400, "Prompt is required", 0);
		return -1;
	}
	double limit = atof(db_value(res, 0, 3));
	if (limit > 0 && !db_isnull(res, 0, 5)) {
		double since = atof(db_value(res, 0, 5));
		if (since < limit) {
			unsigned wait = (unsigned)ceil(limit - since);
			submit_done(s, 429, "Rate limit: please wait before submitting again",
			            wait ? wait : 1);
			return -1;
		}
	}
	unsigned timeout = (unsigned)strtoul(db_value(res, 0, 4), NULL, 10);
	snprintf(s->timeout_s, sizeof(s->timeout_s), "%u",
	         timeout ? timeout : app->opts.default_timeout_s);
	return 0;
}

/* Two steps (no app of the space here, so the space must be checked first). */
static void checked(const db_result *res, void *ud)
{
	submit_ctx *s = ud;
	sp_app *app = s->app;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "checking a submission failed: %s", db_error(res));
		submit_done(s, 500, "Server error, please retry", 0);
		return;
	}
	if (judge(s, res))
		return;
	base_uuid4(s->request_id);
	if (!s->conn) {
		/* Queued, and the nodes told once it is written (the NOTIFY commits with it). */
		static const char queued_sql[] =
		    "WITH w AS (INSERT INTO requests (id, space_id, user_id, username, status, "
		    "payload, deadline_at) VALUES ($1, $2, $3, $4, 'queued', $5::jsonb, "
		    "now() + make_interval(secs => $6::int)) RETURNING space_id) "
		    "SELECT pg_notify('" SP_QUEUE_CHANNEL "', space_id) FROM w";
		const char *qparams[6] = {s->request_id, s->space_id, s->user_id,
		                          s->username,   s->payload,  s->timeout_s};
		if (db_query(app->db, queued_sql, 6, qparams, queued, s))
			submit_done(s, 503, "Server busy, please retry", 0);
		return;
	}
	static const char sql[] =
	    "INSERT INTO requests (id, space_id, user_id, username, status, payload, attempts, "
	    "connection_id, started_at, deadline_at) VALUES ($1, $2, $3, $4, 'processing', "
	    "$5::jsonb, 1, $6, now(), now() + make_interval(secs => $7::int))";
	const char *params[7] = {s->request_id, s->space_id, s->user_id,  s->username,
	                         s->payload,    s->conn->id, s->timeout_s};
	if (db_query(app->db, sql, 7, params, inserted, s))
		submit_done(s, 503, "Server busy, please retry", 0);
}

/* One step: the space's row, and the request written when it passes. */
static void checked_and_written(const db_result *res, void *ud)
{
	submit_ctx *s = ud;
	/* A failure, or written: as after the two-step path's INSERT. */
	if (!db_ok(res) || (db_ntuples(res) == 1 && strcmp(db_value(res, 0, 6), "1") == 0)) {
		inserted(res, s);
		return;
	}
	/* Refused: the same verdict in C says why. */
	if (judge(s, res) == 0)
		submit_done(s, 500, "The request could not be saved, please retry", 0);
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
	s->app = app;
	s->start_ms = uv_now(sio_server_loop(app->io));
	s->cb = cb;
	s->ud = ud;
	snprintf(s->space_id, sizeof(s->space_id), "%s", sub->space_id);
	snprintf(s->user_id, sizeof(s->user_id), "%s", sub->user_id);
	s->username = strdup(sub->username);
	s->payload = payload_with_timestamp(sub->payload, sub->upload);
	if (!s->username || !s->payload || strlen(sub->space_id) >= SP_ID_MAX) {
		submit_done(
		    s, strlen(sub->space_id) >= SP_ID_MAX ? 404 : 500,
		    strlen(sub->space_id) >= SP_ID_MAX ? "Space not found" : "Out of memory", 0);
		return;
	}
	/* user_id is the users.id of a logged-in user: compared as a bigint so
	 * that the (user_id, space_id, created_at) index answers it. */
	const char *user = s->user_id[0] ? s->user_id : NULL;
	s->conn = sp__least_busy(app, s->space_id);
	if (!s->conn) {
		/* No app here: whether the space exists decides between 404 and 503. */
		static const char sql[] =
		    "SELECT s.id::text, s.card_type, s.enable_prompt, s.rate_limit_seconds, "
		    "s.timeout_seconds, (SELECT EXTRACT(EPOCH FROM now() - max(r.created_at)) "
		    "FROM requests r WHERE r.space_id = s.id AND r.user_id = $2::bigint) "
		    "FROM spaces s WHERE s.id = $1";
		const char *params[2] = {s->space_id, user};
		if (db_query(app->db, sql, 2, params, checked, s))
			submit_done(s, 503, "Server busy, please retry", 0);
		return;
	}
	/*
	 * The usual case, in one round trip and one statement: the space's row
	 * and the checks of judge(), and the request written (already assigned
	 * to the app) only when they pass.
	 */
	s->conn->refs++;
	base_uuid4(s->request_id);
	char default_timeout[16];
	snprintf(default_timeout, sizeof(default_timeout), "%u", app->opts.default_timeout_s);
	static const char sql[] =
	    "WITH s AS (SELECT sp.id, sp.card_type, sp.enable_prompt, sp.rate_limit_seconds, "
	    "sp.timeout_seconds, (SELECT EXTRACT(EPOCH FROM now() - max(r.created_at)) "
	    "FROM requests r WHERE r.space_id = sp.id AND r.user_id = $3::bigint) AS since "
	    "FROM spaces sp WHERE sp.id = $2), "
	    "w AS (INSERT INTO requests (id, space_id, user_id, username, status, payload, "
	    "attempts, connection_id, started_at, deadline_at) "
	    "SELECT $1, s.id, $3::bigint, $4, 'processing', $5::jsonb, 1, $6, now(), "
	    "now() + make_interval(secs => CASE WHEN s.timeout_seconds > 0 "
	    "THEN s.timeout_seconds ELSE $7::int END) FROM s "
	    "WHERE s.card_type = 'websockets' AND NOT (s.enable_prompt AND $8::boolean) "
	    "AND NOT (s.rate_limit_seconds > 0 AND s.since IS NOT NULL "
	    "AND s.since < s.rate_limit_seconds) RETURNING 1) "
	    "SELECT s.id::text, s.card_type, s.enable_prompt, s.rate_limit_seconds, "
	    "s.timeout_seconds, s.since, (SELECT count(*) FROM w) FROM s";
	const char *params[8] = {s->request_id,
	                         s->space_id,
	                         user,
	                         s->username,
	                         s->payload,
	                         s->conn->id,
	                         default_timeout,
	                         prompt_missing(s, 1) ? "true" : "false"};
	if (db_query(app->db, sql, 8, params, checked_and_written, s))
		submit_done(s, 503, "Server busy, please retry", 0);
}

/* ---- status --------------------------------------------------------------- */

typedef struct {
	sp_json_cb cb;
	void *ud;
	char request_id[64];
} status_ctx;

static json_t *json_or_null(const db_result *res, int row, int col)
{
	if (db_isnull(res, row, col))
		return json_null();
	json_t *v = json_loads(db_value(res, row, col), JSON_DECODE_ANY, NULL);
	return v ? v : json_null();
}

static void status_found(const db_result *res, void *ud)
{
	status_ctx *st = ud;
	json_t *body;
	int code;
	if (!db_ok(res)) {
		code = 500;
		body = json_pack("{s:s}", "error", "Server error");
	} else if (db_ntuples(res) != 1) {
		code = 404;
		body = json_pack("{s:s}", "error", "Request not found");
	} else {
		code = 200;
		body = json_pack("{s:s,s:s,s:o,s:i,s:s,s:s,s:s}", "request_id", st->request_id,
		                 "status", db_value(res, 0, 0), "result", json_or_null(res, 0, 1),
		                 "progress", atoi(db_value(res, 0, 2)), "created_at",
		                 db_value(res, 0, 3), "updated_at", db_value(res, 0, 4), "space_id",
		                 db_value(res, 0, 5));
		if (!db_isnull(res, 0, 6))
			json_object_set_new(body, "message", json_string(db_value(res, 0, 6)));
	}
	st->cb(code, body, st->ud);
	json_decref(body);
	free(st);
}

void sp_request_status(sp_app *app, const char *request_id, sp_json_cb cb, void *ud)
{
	status_ctx *st = calloc(1, sizeof(*st));
	if (!st || strlen(request_id) >= sizeof(st->request_id)) {
		json_t *body = json_pack("{s:s}", "error", "Request not found");
		cb(404, body, ud);
		json_decref(body);
		free(st);
		return;
	}
	st->cb = cb;
	st->ud = ud;
	snprintf(st->request_id, sizeof(st->request_id), "%s", request_id);
	static const char sql[] = "SELECT status, result::text, progress, " SP_TIME_SQL(
	    "created_at") ", " SP_TIME_SQL("updated_at") ", space_id::text, progress_message "
	                                                 "FROM requests WHERE id::text = $1";
	const char *params[1] = {request_id};
	if (db_query(app->db, sql, 1, params, status_found, st)) {
		json_t *body = json_pack("{s:s}", "error", "Server busy");
		cb(503, body, ud);
		json_decref(body);
		free(st);
	}
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
		/* id, user_id, space_id, connection_id, result, updated_at */
		if (sp__held_expired(app, db_value(res, i, 0)))
			continue; /* its result, taken meanwhile, is being written over it */
		BASE_LOGI("spaces", "request %s timed out", db_value(res, i, 0));
		app->stats.timed_out++;
		sp__request_update(app, db_value(res, i, 1), db_value(res, i, 0), "failed", NULL,
		                   NULL, db_value(res, i, 4), db_value(res, i, 5));
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
	    "UPDATE requests SET status = 'failed', finished_at = now(), updated_at = now(), "
	    "result = jsonb_build_object('error', 'Request timed out after ' || "
	    "round(EXTRACT(EPOCH FROM deadline_at - created_at))::int || ' seconds', "
	    "'reason', 'timeout') "
	    "WHERE status IN ('queued', 'processing') AND deadline_at <= now() "
	    "AND NOT (id = ANY($1::text[])) "
	    "RETURNING id::text, user_id::text, space_id::text, connection_id, "
	    "result::text, " SP_TIME_SQL("updated_at");
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
