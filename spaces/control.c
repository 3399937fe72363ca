/*
 * control.c: what a user does to a request of theirs after submitting it:
 * cancel it while it is queued or running, retry it once it failed.
 *
 * A cancelled request ends in the database first (status 'cancelled'), so
 * a result its app sends later finds it ended and is ignored like any
 * result for a finished request. The app holding it is sent
 * cancel_request {request_id}, which it may ignore (older apps do); in a
 * cluster the node holding it hears of it on SP_CANCEL_CHANNEL.
 */
#include <stdlib.h>

#include "spaces_internal.h"

static void answer(sp_json_cb cb, void *ud, int code, const char *error)
{
	json_t *body = error ? json_pack("{s:b,s:s}", "success", 0, "error", error)
	                     : json_pack("{s:b}", "success", 1);
	cb(code, body, ud);
	json_decref(body);
}

/* ---- cancel ------------------------------------------------------------------ */

typedef struct {
	sp_app *app;
	sp_json_cb cb;
	void *ud;
} cancel_ctx;

static void cancelled(const db_result *res, void *ud)
{
	cancel_ctx *x = ud;
	sp_app *app = x->app;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "cancelling a request failed: %s", db_error(res));
		answer(x->cb, x->ud, 500, "Server error, please retry");
	} else if (db_ntuples(res) != 1) {
		answer(x->cb, x->ud, 404, "Request not found");
	} else if (db_isnull(res, 0, 0)) {
		answer(x->cb, x->ud, 409, "The request has already ended");
	} else {
		/* SP_REQ_COLS, the status it had */
		const char *id = db_value(res, 0, 0);
		BASE_LOGI("spaces", "request %s cancelled by its user (it was %s)", id,
		          db_value(res, 0, SP_REQ_NCOLS));
		if (strcmp(db_value(res, 0, SP_REQ_NCOLS), "processing") == 0 &&
		    !sp__held_cancel(app, id))
			sp__nodes_tell_cancel(app, id); /* held by an app of another node */
		app->stats.cancelled++;
		sp__request_push(app, res, 0);
		sp__space_changed(app, db_value(res, 0, 2));
		answer(x->cb, x->ud, 200, NULL);
	}
	free(x);
}

void sp_cancel(sp_app *app, const char *request_id, const char *user_id, sp_json_cb cb, void *ud)
{
	cancel_ctx *x = calloc(1, sizeof(*x));
	if (!x || strlen(request_id) >= 64 || !user_id || !*user_id) {
		free(x);
		answer(cb, ud, x ? 404 : 500, x ? "Request not found" : "Out of memory");
		return;
	}
	x->app = app;
	x->cb = cb;
	x->ud = ud;
	/*
	 * The row as it was (404 when it is not the user's), and the request
	 * cancelled when it was still open (SP_EV_CANCEL: queued or
	 * processing); the update re-checks the status under its lock, so a
	 * result written meanwhile wins.
	 */
	static const char sql[] =
	    "WITH me AS (SELECT id, status FROM requests WHERE id = $1 AND user_id = $2::bigint), "
	    "u AS (UPDATE requests SET status = 'cancelled', finished_at = now(), "
	    "updated_at = now(), result = jsonb_build_object('error', 'Cancelled by the user', "
	    "'reason', 'cancelled') WHERE id = (SELECT id FROM me) "
	    "AND status IN ('queued', 'processing') RETURNING *) "
	    "SELECT " SP_REQ_COLS ", me.status FROM me LEFT JOIN u r ON true";
	const char *params[2] = {request_id, user_id};
	if (db_query(app->db, sql, 2, params, cancelled, x)) {
		free(x);
		answer(cb, ud, 503, "Server busy, please retry");
	}
}

/* ---- retry ------------------------------------------------------------------- */

typedef struct {
	sp_app *app;
	sp_submit_cb cb;
	void *ud;
	char request_id[64];
	char user_id[32];
	char *username;
} retry_ctx;

static void retry_done(retry_ctx *x, int status, const char *error)
{
	sp_submit_result r = {status, error, {0}, 0};
	x->cb(&r, x->ud);
	free(x->username);
	free(x);
}

static void uploads_moved(const db_result *res, void *ud)
{
	(void)ud;
	if (!db_ok(res))
		BASE_LOGE("spaces", "moving the uploads of a retried request failed: %s",
		          db_error(res));
}

static void resubmitted(const sp_submit_result *r, void *ud)
{
	retry_ctx *x = ud;
	if (r->status == 200) {
		/* The files now belong to the new request: kept as long as it is. */
		static const char sql[] =
		    "UPDATE uploads SET request_id = $2 WHERE request_id = $1";
		const char *params[2] = {x->request_id, r->request_id};
		db_query(x->app->db, sql, 2, params, uploads_moved, NULL);
		BASE_LOGI("spaces", "request %s retried as %s", x->request_id, r->request_id);
	}
	x->cb(r, x->ud);
	free(x->username);
	free(x);
}

static void retry_found(const db_result *res, void *ud)
{
	retry_ctx *x = ud;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "reading a request to retry failed: %s", db_error(res));
		retry_done(x, 500, "Server error, please retry");
		return;
	}
	if (db_ntuples(res) != 1) {
		retry_done(x, 404, "Request not found");
		return;
	}
	/* space_id, status, payload, has files, files kept */
	const char *status = db_value(res, 0, 1);
	if (strcmp(status, "failed") != 0 && strcmp(status, "cancelled") != 0) {
		retry_done(x, 409,
		           strcmp(status, "completed") == 0
		               ? "The request completed: submit a new one"
		               : "The request is still open: cancel it first");
		return;
	}
	if (strcmp(db_value(res, 0, 3), "t") == 0 && strcmp(db_value(res, 0, 4), "t") != 0) {
		retry_done(x, 410,
		           "The files of this request are no longer kept: submit it again "
		           "with the files");
		return;
	}
	json_t *payload = json_loads(db_value(res, 0, 2), 0, NULL);
	if (!json_is_object(payload)) {
		json_decref(payload);
		retry_done(x, 500, "The request cannot be read");
		return;
	}
	json_object_del(payload, "timestamp"); /* the new request's own */
	/* Judged again by the rules, as the space is now (its inputs may have changed). */
	static const char *const fields[SP_UPLOADS] = {"audio_file", "video_file", "other_file"};
	json_t *upload = json_object_get(payload, "upload");
	sp_inputs in;
	memset(&in, 0, sizeof(in));
	in.prompt = json_string_value(json_object_get(payload, "prompt"));
	if (!json_object_get(upload, "audio_file"))
		in.audio_url = json_string_value(json_object_get(payload, "audio"));
	for (int i = 0; i < SP_UPLOADS; i++) {
		json_t *f = json_object_get(upload, fields[i]);
		in.file[i].given = f != NULL;
		in.file[i].size = (uint64_t)json_integer_value(json_object_get(f, "size"));
	}
	sp_submission sub = {db_value(res, 0, 0), x->user_id, x->username, &in, payload, NULL};
	sp_submit(x->app, &sub, resubmitted, x);
	json_decref(payload);
}

void sp_retry(sp_app *app, const char *request_id, const char *user_id, const char *username,
              sp_submit_cb cb, void *ud)
{
	retry_ctx *x = calloc(1, sizeof(*x));
	if (!x || !(x->username = strdup(username ? username : ""))) {
		free(x);
		sp_submit_result r = {500, "Out of memory", {0}, 0};
		cb(&r, ud);
		return;
	}
	x->app = app;
	x->cb = cb;
	x->ud = ud;
	if (strlen(request_id) >= sizeof(x->request_id) || !user_id || !*user_id ||
	    strlen(user_id) >= sizeof(x->user_id)) {
		retry_done(x, 404, "Request not found");
		return;
	}
	snprintf(x->request_id, sizeof(x->request_id), "%s", request_id);
	snprintf(x->user_id, sizeof(x->user_id), "%s", user_id);
	static const char sql[] =
	    "SELECT r.space_id::text, r.status, r.payload::text, r.payload ? 'upload', "
	    "EXISTS (SELECT 1 FROM uploads u WHERE u.request_id = r.id) "
	    "FROM requests r WHERE r.id = $1 AND r.user_id = $2::bigint";
	const char *params[2] = {x->request_id, x->user_id};
	if (db_query(app->db, sql, 2, params, retry_found, x))
		retry_done(x, 503, "Server busy, please retry");
}
