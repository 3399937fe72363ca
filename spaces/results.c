/*
 * results.c: the requests that apps of this process hold, and what the apps
 * send about them (inference_result, inference_progress).
 *
 * Which connection holds which request is known here, in memory, from the
 * moment the request is sent to it: a result or progress is taken only from
 * the connection holding the request, also while PostgreSQL is away.
 *
 * A result taken goes to the results journal (journal.c) and to PostgreSQL
 * at the same time. It leaves the journal once PostgreSQL has it; until
 * then it is written again whenever the database is back, and after a crash
 * from the journal at start-up. The write is idempotent: it finishes only a
 * request still open (or failed by a deadline that passed after the result
 * was taken), so a result written twice completes its request once. While
 * one waits, nothing returns its request to the queue or fails it for its
 * deadline (the sweep, the requeue of a lost app and the start-up recovery
 * leave out the ids given by sp__pending_ids).
 *
 * Progress is coalesced per request: one write in flight at most, and when
 * it ends the latest value that came meanwhile is written. A value that
 * cannot be written waits for the database; it is not journaled (after a
 * crash the request is sent again and its app reports progress anew).
 */
#include <stdlib.h>
#include <time.h>

#include "spaces_internal.h"

#define REQ_ID_MAX 64
/* Result writes in flight at once; the others wait their turn here. */
#define RESULT_WRITES_MAX 256
/* Longest progress message kept, in bytes (cut on a character boundary). */
#define PROGRESS_MESSAGE_MAX 500

typedef struct sp_req {
	struct sp_req *next; /* hash chain */
	sp_app *app;
	base_list held_link;    /* in held_by->held */
	base_list pending_link; /* in results.pending while has_result */
	sp_conn *held_by;       /* not referenced: it lets go at its disconnect */
	uint64_t serial;        /* new at each hold: progress answers check it */
	uint64_t sent_ms;       /* loop time it was sent to held_by */
	char id[REQ_ID_MAX];
	/* progress */
	int p_waiting;   /* a value not yet written */
	int p_writing;   /* a write in flight */
	int p_value;     /* the latest value, -1 for none */
	char *p_message; /* the latest message, or NULL */
	/* the result, until PostgreSQL has it */
	int has_result;
	int r_writing;
	unsigned r_failures;
	sp_jrec *rec;
	sp_conn *r_conn; /* referenced; NULL when taken back from the journal */
	char r_conn_id[REQ_ID_MAX];
	char r_status[16];
	char *r_result; /* JSON text */
	char r_progress[16];
	char *r_message;
	char r_at[24]; /* when taken: ms since the epoch */
} sp_req;

struct sp_results {
	sp_journal *journal;
	sp_req **tab;
	size_t cap, n;
	uint64_t serial;
	base_list pending;  /* sp_req.pending_link, oldest first */
	unsigned writing;   /* result writes in flight */
	int waiting_logged; /* "kept in the journal" said, since the last catch-up */
	unsigned caught_up; /* results written after waiting, since then */
};

/* ---- the table of requests ------------------------------------------------- */

static size_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

static sp_req *req_find(sp_app *app, const char *id)
{
	struct sp_results *R = app->results;
	if (!R || !R->cap)
		return NULL;
	for (sp_req *e = R->tab[hash_id(id) & (R->cap - 1)]; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static int req_grow(struct sp_results *R)
{
	size_t cap = R->cap ? R->cap * 2 : 256;
	sp_req **tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return BASE_ENOMEM;
	for (size_t i = 0; i < R->cap; i++) {
		sp_req *e = R->tab[i], *next;
		for (; e; e = next) {
			next = e->next;
			size_t b = hash_id(e->id) & (cap - 1);
			e->next = tab[b];
			tab[b] = e;
		}
	}
	free(R->tab);
	R->tab = tab;
	R->cap = cap;
	return 0;
}

static sp_req *req_get(sp_app *app, const char *id)
{
	struct sp_results *R = app->results;
	sp_req *e = req_find(app, id);
	if (e)
		return e;
	if (strlen(id) >= REQ_ID_MAX || (R->n >= R->cap && req_grow(R)))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->app = app;
	e->p_value = -1;
	base_list_init(&e->held_link);
	base_list_init(&e->pending_link);
	snprintf(e->id, sizeof(e->id), "%s", id);
	size_t b = hash_id(id) & (R->cap - 1);
	e->next = R->tab[b];
	R->tab[b] = e;
	R->n++;
	return e;
}

static void progress_clear(sp_req *e)
{
	free(e->p_message);
	e->p_message = NULL;
	e->p_waiting = 0;
	e->p_value = -1;
}

/* Frees e once nobody holds it and no result of it waits. */
static void req_maybe_free(sp_req *e)
{
	if (e->held_by || e->has_result)
		return;
	struct sp_results *R = e->app->results;
	sp_req **pp = &R->tab[hash_id(e->id) & (R->cap - 1)];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	R->n--;
	free(e->p_message);
	free(e);
}

static void unhold(sp_req *e)
{
	if (!e->held_by)
		return;
	if (e->held_by->inflight)
		e->held_by->inflight--;
	base_list_remove(&e->held_link);
	e->held_by = NULL;
}

int sp__held_add(sp_conn *c, const char *request_id)
{
	sp_req *e = req_get(c->app, request_id);
	if (!e)
		return BASE_ENOMEM;
	if (e->held_by == c)
		return 0;
	unhold(e); /* sent again elsewhere: the earlier holder lost it */
	e->held_by = c;
	e->sent_ms = uv_now(sio_server_loop(c->app->io));
	e->serial = ++c->app->results->serial;
	base_list_insert_tail(&c->held, &e->held_link);
	progress_clear(e);
	return 0;
}

void sp__held_drop_conn(sp_conn *c)
{
	while (!base_list_empty(&c->held)) {
		sp_req *e = BASE_CONTAINER_OF(c->held.next, sp_req, held_link);
		unhold(e);
		progress_clear(e);
		req_maybe_free(e);
	}
}

int sp__held_expired(sp_app *app, const char *request_id)
{
	sp_req *e = req_find(app, request_id);
	if (!e)
		return 0;
	unhold(e);
	progress_clear(e);
	int waiting = e->has_result;
	req_maybe_free(e);
	return waiting;
}

int sp__held_cancel(sp_app *app, const char *request_id)
{
	sp_req *e = req_find(app, request_id);
	if (!e || !e->held_by)
		return 0;
	sp_conn *c = e->held_by;
	if (c->s) {
		base_buf b = BASE_BUF_INIT;
		base_buf_append_str(&b, "{\"request_id\":");
		sio_json_append_string(&b, e->id, strlen(e->id));
		base_buf_append(&b, "}", 1);
		sio_emit(c->s, "cancel_request", (base_slice){b.data, b.len}, NULL, 0);
		base_buf_free(&b);
		BASE_LOGI("spaces", "request %s: cancel_request sent to app %s", e->id, c->id);
	}
	unhold(e);
	progress_clear(e);
	req_maybe_free(e);
	return 1;
}

void sp__pending_ids(sp_app *app, const sp_conn *only, base_buf *out)
{
	int first = 1;
	base_list *pos;
	base_buf_append(out, "{", 1);
	for (pos = app->results->pending.next; pos != &app->results->pending; pos = pos->next) {
		sp_req *e = BASE_CONTAINER_OF(pos, sp_req, pending_link);
		if (only && e->r_conn != only)
			continue;
		if (!first)
			base_buf_append(out, ",", 1);
		first = 0;
		/* An array literal's element, quoted. */
		base_buf_append(out, "\"", 1);
		for (const char *s = e->id; *s; s++) {
			if (*s == '"' || *s == '\\')
				base_buf_append(out, "\\", 1);
			base_buf_append(out, s, 1);
		}
		base_buf_append(out, "\"", 1);
	}
	base_buf_append(out, "}", 2); /* with its NUL */
}

int sp__db_up(const sp_app *app)
{
	db_pool_stats st;
	db_pool_get_stats(app->db, &st);
	return st.connected > 0;
}

/* ---- writing results -------------------------------------------------------- */

/* Errors after which the same write may work later: the database away. */
static int transient(const db_result *res)
{
	int st = db_status(res);
	if (st != DB_ESERVER)
		return 1;
	const char *s = db_sqlstate(res);
	/* connection, operator intervention (shutdown), resources, rollbacks */
	return !strncmp(s, "08", 2) || !strncmp(s, "57", 2) || !strncmp(s, "53", 2) ||
	       !strncmp(s, "40", 2) || !strncmp(s, "25", 2);
}

static void result_pump(sp_app *app);

static void result_done(sp_req *e)
{
	struct sp_results *R = e->app->results;
	sp_journal_release(R->journal, e->rec);
	e->rec = NULL;
	base_list_remove(&e->pending_link);
	e->has_result = 0;
	free(e->r_result);
	e->r_result = NULL;
	free(e->r_message);
	e->r_message = NULL;
	if (e->r_conn)
		sp__conn_unref(e->r_conn);
	e->r_conn = NULL;
	req_maybe_free(e);
}

static void result_recorded(const db_result *res, void *ud)
{
	sp_req *e = ud;
	sp_app *app = e->app;
	struct sp_results *R = app->results;
	e->r_writing = 0;
	R->writing--;
	if (!db_ok(res)) {
		if (transient(res)) {
			/* It waits for the database: in the journal now, not after its delay. */
			sp_journal_flush(R->journal);
			/* Once per outage, not once per result. */
			if (!e->r_failures++ && !R->waiting_logged++)
				BASE_LOGW(
				    "spaces",
				    "results cannot be written now (%s, result of %s): they are "
				    "kept in the journal and written when the database is back",
				    db_error(res), e->id);
			return; /* sp__results_tick tries again */
		}
		BASE_LOGE("spaces", "the result of %s cannot be written (%s): given up", e->id,
		          db_error(res));
	} else if (db_ntuples(res) != 1 && !e->r_conn) {
		/* Taken back from the journal: most often written before a crash. */
		BASE_LOGI("spaces", "journaled result of %s: already written, or its request ended",
		          e->id);
	} else if (db_ntuples(res) != 1) {
		BASE_LOGW("spaces", "result for unknown or finished request %s ignored (from %s)",
		          e->id, e->r_conn_id);
	} else {
		if (e->r_failures)
			R->caught_up++;
		if (e->r_conn) {
			e->r_conn->served++;
			if (!e->r_conn->s) /* disconnected meanwhile: its last flush is done */
				sp__flush_served(app, e->r_conn);
		}
		BASE_LOGI("spaces", "request %s %s (app %s)", e->id, db_value(res, 0, 3),
		          e->r_conn_id[0] ? e->r_conn_id : "unknown");
		if (!app->closed) {
			/* SP_REQ_COLS */
			sp__request_push(app, res, 0);
			sp__space_changed(app, db_value(res, 0, 2));
		}
	}
	result_done(e);
	if (base_list_empty(&R->pending) && (R->caught_up || R->waiting_logged)) {
		BASE_LOGI("spaces",
		          "every result kept while the database was away is written "
		          "(%u)",
		          R->caught_up);
		R->caught_up = 0;
		R->waiting_logged = 0;
	}
	if (R->writing == 0 && !base_list_empty(&R->pending))
		result_pump(app);
}

static int result_write(sp_req *e)
{
	sp_app *app = e->app;
	/*
	 * Finishes a request still open, or one failed for a deadline that
	 * passed after the result was taken (the sweep ran before it knew).
	 * After a lost answer, the first attempt may have committed: the
	 * request already ending with this very result counts as written.
	 */
	static const char sql[] =
	    "WITH u AS (UPDATE requests SET status = $2, result = $3::jsonb, "
	    "progress = CASE WHEN $2 = 'completed' THEN 100 ELSE coalesce($4::int, progress) END, "
	    "progress_message = CASE WHEN $4::int IS NULL THEN progress_message ELSE $5 END, "
	    "finished_at = now(), updated_at = now() "
	    "WHERE id = $1 AND (status IN ('queued', 'processing') OR (status = 'failed' "
	    "AND result->>'reason' = 'timeout' AND deadline_at > to_timestamp($6::bigint / "
	    "1000.0))) RETURNING *) "
	    "SELECT " SP_REQ_COLS " FROM u r UNION ALL SELECT " SP_REQ_COLS " FROM requests r "
	    "WHERE $7::boolean AND r.id = $1 AND NOT EXISTS (SELECT 1 FROM u) AND r.status = $2 "
	    "AND r.result = $3::jsonb";
	const char *params[7] = {e->id,
	                         e->r_status,
	                         e->r_result,
	                         e->r_progress[0] ? e->r_progress : NULL,
	                         e->r_message,
	                         e->r_at,
	                         e->r_failures ? "true" : "false"};
	if (db_query(app->db, sql, 7, params, result_recorded, e))
		return -1;
	e->r_writing = 1;
	app->results->writing++;
	return 0;
}

/* Sends the results waiting, within RESULT_WRITES_MAX, while the database is up. */
static void result_pump(sp_app *app)
{
	struct sp_results *R = app->results;
	if (!sp__db_up(app))
		return;
	base_list *pos;
	for (pos = R->pending.next; pos != &R->pending && R->writing < RESULT_WRITES_MAX;
	     pos = pos->next) {
		sp_req *e = BASE_CONTAINER_OF(pos, sp_req, pending_link);
		if (!e->r_writing && result_write(e))
			break;
	}
}

/* The status an app's result moves its request to: old clients send
 * success: true|false instead of status; "error" and anything unknown fail. */
static const char *result_status(json_t *obj)
{
	const char *status = json_string_value(json_object_get(obj, "status"));
	json_t *success = json_object_get(obj, "success");
	int ok = status ? strcmp(status, "completed") == 0
	                : !json_is_boolean(success) || json_is_true(success);
	sp_status to = SP_FAILED;
	sp_request_next(SP_PROCESSING, ok ? SP_EV_COMPLETED : SP_EV_FAILED, &to);
	return sp_status_name(to);
}

/* 1 when status ends a request (what a result may say). */
static int final_status(const char *status)
{
	sp_status st;
	return sp_status_parse(status, &st) == 0 && (st == SP_COMPLETED || st == SP_FAILED);
}

void sp__result_take(sp_conn *c, json_t *obj)
{
	sp_app *app = c->app;
	struct sp_results *R = app->results;
	const char *id = json_string_value(json_object_get(obj, "request_id"));
	if (!c->space || !id || strlen(id) >= REQ_ID_MAX) {
		BASE_LOGW("spaces",
		          "inference_result without a request_id or registration ignored");
		return;
	}
	sp_req *e = req_find(app, id);
	if (!e || e->held_by != c || e->has_result) {
		if (e && e->held_by == c)
			unhold(e); /* sent again while its first result waits: that one stands */
		BASE_LOGW("spaces", "result for unknown or finished request %s ignored (from %s)",
		          id, c->id);
		return;
	}
	const char *status = result_status(obj);
	json_t *result = json_object_get(obj, "result");
	char *text =
	    result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))
	           : strdup("null");
	char *message = e->p_message ? strdup(e->p_message) : NULL;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	long long at = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	base_buf rec = BASE_BUF_INIT;
	int rc = text && (message || !e->p_message) ? 0 : BASE_ENOMEM;
	if (rc == 0) {
		/* One line of the journal; read back by replay_one(). */
		base_buf_append_str(&rec, "{\"v\":1,\"id\":");
		sio_json_append_string(&rec, id, strlen(id));
		base_buf_append_str(&rec, ",\"conn\":");
		sio_json_append_string(&rec, c->id, strlen(c->id));
		base_buf_printf(&rec, ",\"status\":\"%s\",\"at\":%lld,\"progress\":", status, at);
		if (e->p_value >= 0)
			base_buf_printf(&rec, "%d", e->p_value);
		else
			base_buf_append_str(&rec, "null");
		base_buf_append_str(&rec, ",\"message\":");
		if (message)
			sio_json_append_string(&rec, message, strlen(message));
		else
			base_buf_append_str(&rec, "null");
		base_buf_append_str(&rec, ",\"result\":");
		base_buf_append_str(&rec, text);
		base_buf_append(&rec, "}", 1);
	}
	if (rc == 0)
		rc = sp_journal_add(R->journal, rec.data, rec.len, &e->rec);
	base_buf_free(&rec);
	if (rc) {
		/* Not taken: the request stays with its app (and ends with its
		 * deadline, or goes back to the queue if the app leaves). */
		BASE_LOGE("spaces",
		          "the result of %s from app %s is refused: %s (%llu bytes of results "
		          "wait in the journal)",
		          id, c->id,
		          rc == BASE_ELIMIT    ? "the results journal is full (--journal-max-bytes)"
		          : rc == BASE_ECLOSED ? "the results journal cannot be written"
		                               : "out of memory",
		          (unsigned long long)sp_journal_held_bytes(R->journal));
		free(text);
		free(message);
		return;
	}
	e->has_result = 1;
	e->r_failures = 0;
	if (strcmp(status, "completed") == 0)
		app->stats.completed++;
	else
		app->stats.failed++;
	sp__observe(&app->stats.run, uv_now(sio_server_loop(app->io)) - e->sent_ms);
	e->r_conn = c;
	c->refs++;
	snprintf(e->r_conn_id, sizeof(e->r_conn_id), "%s", c->id);
	snprintf(e->r_status, sizeof(e->r_status), "%s", status);
	e->r_result = text;
	e->r_message = message;
	if (e->p_value >= 0)
		snprintf(e->r_progress, sizeof(e->r_progress), "%d", e->p_value);
	else
		e->r_progress[0] = 0;
	snprintf(e->r_at, sizeof(e->r_at), "%lld", at);
	unhold(e);
	progress_clear(e);
	base_list_insert_tail(&R->pending, &e->pending_link);
	if (R->writing < RESULT_WRITES_MAX && sp__db_up(app))
		result_write(e);
	else if (!sp__db_up(app))
		sp_journal_flush(R->journal); /* the database is away: no point waiting */
}

/* A record of the journal, at start-up: its result is written again. */
static void replay_one(sp_jrec *rec, const char *json, size_t len, void *ud)
{
	sp_app *app = ud;
	struct sp_results *R = app->results;
	json_t *o = json_loadb(json, len, 0, NULL);
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *conn = json_string_value(json_object_get(o, "conn"));
	const char *status = json_string_value(json_object_get(o, "status"));
	json_t *progress = json_object_get(o, "progress");
	const char *message = json_string_value(json_object_get(o, "message"));
	json_t *result = json_object_get(o, "result");
	sp_req *e = NULL;
	char *text = NULL;
	if (!id || !conn || !status || !result || !json_is_integer(json_object_get(o, "at")) ||
	    !final_status(status)) {
		BASE_LOGW("spaces", "results journal: a record that is not a result skipped");
		goto drop;
	}
	e = req_get(app, id);
	if (e && e->has_result) {
		/* Twice in the file (taken again after a crash): the first stands. */
		goto drop;
	}
	text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	char *m = message ? strdup(message) : NULL;
	if (!e || !text || (message && !m)) {
		BASE_LOGE("spaces", "results journal: out of memory taking back the result of %s",
		          id);
		free(m);
		if (e)
			req_maybe_free(e);
		goto drop;
	}
	e->r_message = m;
	e->has_result = 1;
	e->r_failures = 1; /* the earlier run may have written it already */
	e->rec = rec;
	snprintf(e->r_conn_id, sizeof(e->r_conn_id), "%s", conn);
	snprintf(e->r_status, sizeof(e->r_status), "%s", status);
	e->r_result = text;
	if (json_is_integer(progress))
		snprintf(e->r_progress, sizeof(e->r_progress), "%d",
		         (int)json_integer_value(progress));
	snprintf(e->r_at, sizeof(e->r_at), "%lld",
	         (long long)json_integer_value(json_object_get(o, "at")));
	base_list_insert_tail(&R->pending, &e->pending_link);
	json_decref(o);
	return;
drop:
	free(text);
	json_decref(o);
	sp_journal_release(R->journal, rec);
}

/* ---- progress ----------------------------------------------------------------- */

typedef struct {
	sp_app *app;
	uint64_t serial;
	int value;
	char *message;
	char request_id[REQ_ID_MAX];
} progress_ctx;

static void progress_write(sp_req *e);

static void progress_recorded(const db_result *res, void *ud)
{
	progress_ctx *p = ud;
	sp_req *e = req_find(p->app, p->request_id);
	if (e && e->serial != p->serial)
		e = NULL; /* another delivery of the request, or no longer held */
	if (e)
		e->p_writing = 0;
	if (!db_ok(res)) {
		if (e && e->held_by && !e->p_waiting && transient(res)) {
			/* Nothing newer came: this value waits for the database. */
			e->p_waiting = 1;
			e->p_value = p->value;
			free(e->p_message);
			e->p_message = p->message;
			p->message = NULL;
		} else if (!transient(res)) {
			BASE_LOGW("spaces", "recording the progress of %s failed: %s",
			          p->request_id, db_error(res));
		}
	} else {
		if (db_ntuples(res) == 1 && !p->app->closed)
			sp__request_push(p->app, res, 0);
		if (e && e->held_by && e->p_waiting)
			progress_write(e); /* the latest that came meanwhile */
	}
	free(p->message);
	free(p);
}

static void progress_write(sp_req *e)
{
	sp_app *app = e->app;
	if (e->p_writing || !e->p_waiting || !e->held_by || !sp__db_up(app))
		return;
	progress_ctx *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->app = app;
	p->serial = e->serial;
	p->value = e->p_value;
	p->message = e->p_message ? strdup(e->p_message) : NULL;
	snprintf(p->request_id, sizeof(p->request_id), "%s", e->id);
	char value[16];
	snprintf(value, sizeof(value), "%d", p->value);
	static const char sql[] =
	    "UPDATE requests r SET progress = $3, progress_message = $4, updated_at = now(), "
	    "progress_at = coalesce(progress_at, now()) "
	    "WHERE id = $1 AND connection_id = $2 AND status = 'processing' "
	    "RETURNING " SP_REQ_COLS;
	const char *params[4] = {e->id, e->held_by->id, value, p->message};
	if ((e->p_message && !p->message) ||
	    db_query(app->db, sql, 4, params, progress_recorded, p)) {
		free(p->message);
		free(p);
		return;
	}
	e->p_writing = 1;
	e->p_waiting = 0;
}

void sp__progress_take(sp_conn *c, json_t *obj)
{
	const char *id = json_string_value(json_object_get(obj, "request_id"));
	json_t *pv = json_object_get(obj, "progress");
	const char *message = json_string_value(json_object_get(obj, "message"));
	if (!c->space || !id || !json_is_number(pv))
		return;
	sp_req *e = req_find(c->app, id);
	if (!e || e->held_by != c)
		return; /* not this app's: ignored, as the database would */
	double v = json_number_value(pv);
	v = v < 0 ? 0 : v > 100 ? 100 : v;
	char *m = NULL;
	if (message) {
		/* Cut on a character boundary: half a character is not UTF-8, and
		 * PostgreSQL would refuse the whole update. */
		size_t n = strlen(message);
		if (n > PROGRESS_MESSAGE_MAX) {
			n = PROGRESS_MESSAGE_MAX;
			while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80)
				n--;
		}
		if (!(m = strndup(message, n)))
			return;
	}
	free(e->p_message);
	e->p_message = m;
	e->p_value = (int)v;
	e->p_waiting = 1;
	progress_write(e);
}

/* ---- life ------------------------------------------------------------------------ */

void sp__results_tick(sp_app *app)
{
	struct sp_results *R = app->results;
	if (!R || !sp__db_up(app))
		return;
	result_pump(app);
	for (size_t i = 0; i < R->cap; i++)
		for (sp_req *e = R->tab[i]; e; e = e->next)
			if (e->p_waiting && !e->p_writing)
				progress_write(e);
}

int sp__results_open(sp_app *app)
{
	struct sp_results *R = calloc(1, sizeof(*R));
	if (!R || req_grow(R)) {
		free(R);
		return BASE_ENOMEM;
	}
	base_list_init(&R->pending);
	app->results = R;
	const char *dir = app->opts.data_dir ? app->opts.data_dir : "var/data";
	uint64_t max = app->opts.journal_max_bytes ? app->opts.journal_max_bytes : 256ull << 20;
	int rc = sp_journal_open(sio_server_loop(app->io), dir, max, replay_one, app, &R->journal);
	if (rc == 0)
		sp_journal_set_delay(R->journal, app->opts.journal_delay_ms);
	if (rc == 0 && !base_list_empty(&R->pending))
		result_pump(app);
	return rc;
}

void sp__results_free(sp_app *app)
{
	struct sp_results *R = app->results;
	if (!R)
		return;
	for (size_t i = 0; i < R->cap; i++) {
		sp_req *e = R->tab[i], *next;
		for (; e; e = next) {
			next = e->next;
			/* Results not written stay in the file for the next start. */
			/* Connections let go of what they held at their disconnect. */
			if (e->r_conn)
				sp__conn_unref(e->r_conn);
			free(e->r_result);
			free(e->r_message);
			free(e->p_message);
			free(e);
		}
	}
	free(R->tab);
	sp_journal_free(R->journal);
	free(R);
	app->results = NULL;
}

uint64_t sp_journal_bytes(const sp_app *app)
{
	return app->results && app->results->journal ? sp_journal_held_bytes(app->results->journal)
	                                             : 0;
}
