/*
 * store.c: the SQL of the spaces, app_connections, requests and uploads
 * tables that the site needs (store.h); the statements the layer runs for
 * itself stay beside the code that runs them (requests.c, results.c,
 * app_protocol.c, nodes.c).
 *
 * Every function queues one statement or one transaction and turns its
 * answer into typed rows whose strings point into the database's answer,
 * valid during the callback.
 */
#include <stdlib.h>

#include "spaces_internal.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"

/* Any of the callbacks below, cast back to its own type before the call. */
typedef void (*any_cb)(void);

/* What a call is waiting for. */
typedef struct {
	sp_app *app;
	const char *what; /* for the log */
	union {
		any_cb any;
		sp_space_cb space;
		sp_spaces_cb spaces;
		sp_space_page_cb page;
		sp_requests_cb requests;
		sp_conns_cb conns;
		sp_counts_cb counts;
		sp_done_cb done;
		sp_upload_cb upload;
		sp_usage_cb usage;
		sp_paths_cb paths;
	} cb;
	void *ud;
	sp_access_action action;
	char id[SP_ID_MAX];
} call;

static call *call_new(sp_app *app, const char *what, any_cb cb, void *ud)
{
	call *c = calloc(1, sizeof(*c));

	if (c) {
		c->app = app;
		c->what = what;
		c->cb.any = cb;
		c->ud = ud;
	}
	return c;
}

/* Queues the statement; frees c when it cannot be queued. */
static int run(call *c, unsigned flags, const char *sql, int n, const char *const *params,
               db_cb done)
{
	int rc = c ? db_query_flags(c->app->db, flags, sql, n, params, done, c) : BASE_ENOMEM;

	if (rc)
		free(c);
	return rc;
}

static int run_tx(call *c, const db_stmt *st, unsigned n, db_cb done)
{
	int rc = c ? db_query_tx(c->app->db, st, n, done, c) : BASE_ENOMEM;

	if (rc)
		free(c);
	return rc;
}

/* How a statement went, logged when it failed for a reason of ours. */
static sp_store_status status_of(const db_result *res, const char *what)
{
	const char *state;

	if (db_ok(res))
		return SP_STORE_OK;
	state = db_sqlstate(res);
	if (strcmp(state, "23505") == 0)
		return SP_STORE_EXISTS;
	if (state[0] == '2' && state[1] == '3')
		return SP_STORE_INVALID;
	BASE_LOGE("spaces", "%s: %s", what, db_error(res));
	if (db_status(res) == DB_ETIMEDOUT || db_status(res) == DB_EQUEUEFULL)
		return SP_STORE_BUSY;
	return SP_STORE_FAILED;
}

/*
 * A zeroed array for the rows of an answer that went well (*st), *n of
 * them (at least one element, so never NULL but on ENOMEM, when *st
 * becomes SP_STORE_FAILED and *n 0).
 */
static void *rows_new(const db_result *res, sp_store_status *st, int *n, size_t size)
{
	void *rows;

	*n = *st == SP_STORE_OK ? db_ntuples(res) : 0;
	rows = calloc((size_t)(*n ? *n : 1), size);
	if (!rows) {
		*st = *st == SP_STORE_OK ? SP_STORE_FAILED : *st;
		*n = 0;
	}
	return rows;
}

static int is_true(const db_result *res, int row, int col)
{
	return !db_isnull(res, row, col) && strcmp(db_value(res, row, col), "t") == 0;
}

static unsigned to_uint(const db_result *res, int row, int col)
{
	return db_isnull(res, row, col) ? 0 : (unsigned)strtoul(db_value(res, row, col), NULL, 10);
}

void sp__space_row(const db_result *res, int row, int col, sp_space_row *out)
{
	memset(out, 0, sizeof(*out));
	out->id = db_value(res, row, col);
	out->name = db_value(res, row, col + 1);
	out->description = db_value(res, row, col + 2);
	out->cover = db_value(res, row, col + 3);
	out->cover_type = db_value(res, row, col + 4);
	out->card_type = db_value(res, row, col + 5);
	for (int i = 0; i < SP_INPUTS; i++)
		out->enable[i] = is_true(res, row, col + 6 + i);
	out->rate_limit_s = to_uint(res, row, col + 10);
	out->timeout_s = to_uint(res, row, col + 11);
	out->max_apps = to_uint(res, row, col + 12);
	out->open = is_true(res, row, col + 13);
	out->has_token = is_true(res, row, col + 14);
	out->token = db_isnull(res, row, col + 15) ? NULL : db_value(res, row, col + 15);
}

/* ---- one space -------------------------------------------------------------- */

/* Answers a call with the first row's space (SP__SPACE_COLUMNS, then a count). */
static void space_found(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);
	sp_space_row row;

	if (st == SP_STORE_OK && db_ntuples(res) == 1) {
		sp__space_row(res, 0, 0, &row);
		if (db_nfields(res) > SP__SPACE_NCOLS)
			row.requests = to_uint(res, 0, SP__SPACE_NCOLS);
		c->cb.space(st, &row, c->ud);
	} else {
		c->cb.space(st == SP_STORE_OK ? SP_STORE_NOTFOUND : st, NULL, c->ud);
	}
	free(c);
}

int sp_store_space_get(sp_app *app, const char *id, sp_space_cb cb, void *ud)
{
	static const char sql[] = "SELECT " SP__SPACE_COLUMNS(
	    "s") ", (SELECT count(*) FROM requests r WHERE r.space_id = s.id) "
	         "FROM spaces s WHERE s.id = $1";
	const char *params[1] = {id};
	call *c = call_new(app, "loading a space", (any_cb)cb, ud);
	return run(c, DB_RETRY, sql, 1, params, space_found);
}

static void spaces_listed(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);
	int n;
	sp_space_row *rows = rows_new(res, &st, &n, sizeof(*rows));

	for (int i = 0; i < n; i++) {
		sp__space_row(res, i, 0, &rows[i]);
		if (db_nfields(res) > SP__SPACE_NCOLS)
			rows[i].open_requests = to_uint(res, i, SP__SPACE_NCOLS);
	}
	c->cb.spaces(st, rows, (unsigned)n, c->ud);
	free(rows);
	free(c);
}

int sp_store_spaces_list(sp_app *app, int with_counts, sp_spaces_cb cb, void *ud)
{
	static const char plain[] =
	    "SELECT " SP__SPACE_COLUMNS("s") " FROM spaces s ORDER BY lower(s.name) LIMIT 1000";
	static const char counted[] =
	    "SELECT " SP__SPACE_COLUMNS("s") ", (SELECT count(*) FROM requests r WHERE "
	                                     "r.space_id = s.id AND r.status IN ('queued', "
	                                     "'processing')) FROM spaces s ORDER BY lower(s.name) "
	                                     "LIMIT 1000";
	call *c = call_new(app, "listing spaces", (any_cb)cb, ud);
	return run(c, DB_RETRY, with_counts ? counted : plain, 0, NULL, spaces_listed);
}

/* The fields as the parameters $1..$12 of the add and update statements. */
#define FIELD_PARAMS 12
static void field_params(const sp_space_fields *f, char nums[3][16],
                         const char *params[FIELD_PARAMS])
{
	snprintf(nums[0], 16, "%u", f->rate_limit_s);
	snprintf(nums[1], 16, "%u", f->timeout_s);
	snprintf(nums[2], 16, "%u", f->max_apps);
	const char *const v[FIELD_PARAMS] = {f->name,
	                                     f->description,
	                                     f->cover,
	                                     f->cover_type,
	                                     f->card_type,
	                                     f->enable[0] ? "t" : "f",
	                                     f->enable[1] ? "t" : "f",
	                                     f->enable[2] ? "t" : "f",
	                                     f->enable[3] ? "t" : "f",
	                                     nums[0],
	                                     nums[1],
	                                     nums[2]};
	memcpy(params, v, sizeof(v));
}

int sp_store_space_add(sp_app *app, const sp_space_fields *f, const char *token,
                       const char *token_hash, sp_space_cb cb, void *ud)
{
	static const char sql[] =
	    "INSERT INTO spaces AS s (name, description, cover, cover_type, card_type, "
	    "enable_prompt, enable_audio, enable_video, enable_file_upload, rate_limit_seconds, "
	    "timeout_seconds, max_apps, app_access, app_token, app_token_hash) VALUES ($1, $2, "
	    "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
	    "RETURNING " SP__SPACE_COLUMNS("s");
	const char *params[FIELD_PARAMS + 3];
	char nums[3][16];
	call *c = call_new(app, "creating a space", (any_cb)cb, ud);
	field_params(f, nums, params);
	params[FIELD_PARAMS] = token ? "token" : "open";
	params[FIELD_PARAMS + 1] = token;
	params[FIELD_PARAMS + 2] = token ? token_hash : NULL;
	return run(c, 0, sql, FIELD_PARAMS + 3, params, space_found);
}

int sp_store_space_update(sp_app *app, const char *id, const sp_space_fields *f, sp_space_cb cb,
                          void *ud)
{
	static const char sql[] =
	    "UPDATE spaces AS s SET name = $1, description = $2, cover = $3, cover_type = $4, "
	    "card_type = $5, enable_prompt = $6, enable_audio = $7, enable_video = $8, "
	    "enable_file_upload = $9, rate_limit_seconds = $10, timeout_seconds = $11, "
	    "max_apps = $12 WHERE id = $13 RETURNING " SP__SPACE_COLUMNS("s");
	const char *params[FIELD_PARAMS + 1];
	char nums[3][16];
	call *c = call_new(app, "saving a space", (any_cb)cb, ud);
	field_params(f, nums, params);
	params[FIELD_PARAMS] = id;
	return run(c, 0, sql, FIELD_PARAMS + 1, params, space_found);
}

/* A change of access or a deletion is written: the apps no longer admitted go. */
static void access_written(const db_result *res, void *ud)
{
	call *c = ud;

	if (db_ok(res) && db_ntuples(res) == 1)
		sp_space_access_changed(c->app, c->id);
	space_found(res, ud);
}

int sp_store_space_access(sp_app *app, const char *id, sp_access_action action, const char *token,
                          const char *token_hash, sp_space_cb cb, void *ud)
{
	/* $2, $3: a new token and its hash, used by generate, and by require
	 * when the space has no token yet. */
	static const char generate_sql[] =
	    "UPDATE spaces AS s SET app_access = 'token', app_token = $2, app_token_hash = $3 "
	    "WHERE id = $1 RETURNING " SP__SPACE_COLUMNS("s");
	static const char require_sql[] =
	    "UPDATE spaces AS s SET app_access = 'token', "
	    "app_token = CASE WHEN app_token_hash IS NULL THEN $2 ELSE app_token END, "
	    "app_token_hash = coalesce(app_token_hash, $3) WHERE id = $1 "
	    "RETURNING " SP__SPACE_COLUMNS("s");
	static const char open_sql[] = "UPDATE spaces AS s SET app_access = 'open' WHERE id = $1 "
	                               "RETURNING " SP__SPACE_COLUMNS("s");
	static const char clear_sql[] =
	    "UPDATE spaces AS s SET app_access = 'open', app_token = NULL, app_token_hash = NULL "
	    "WHERE id = $1 RETURNING " SP__SPACE_COLUMNS("s");
	static const char *const sqls[] = {generate_sql, require_sql, open_sql, clear_sql};
	const char *params[3] = {id, token, token_hash};
	int with_token = action == SP_ACCESS_GENERATE || action == SP_ACCESS_REQUIRE;
	call *c;

	if ((unsigned)action > SP_ACCESS_CLEAR || (with_token && (!token || !token_hash)) ||
	    strlen(id) >= SP_ID_MAX)
		return BASE_EINVAL;
	c = call_new(app, "changing the app access of a space", (any_cb)cb, ud);
	if (c) {
		c->action = action;
		snprintf(c->id, sizeof(c->id), "%s", id);
	}
	return run(c, 0, sqls[action], with_token ? 3 : 1, params, access_written);
}

int sp_store_space_delete(sp_app *app, const char *id, sp_space_cb cb, void *ud)
{
	static const char sql[] =
	    "DELETE FROM spaces AS s WHERE id = $1 RETURNING " SP__SPACE_COLUMNS("s");
	const char *params[1] = {id};
	call *c;

	if (strlen(id) >= SP_ID_MAX)
		return BASE_EINVAL;
	c = call_new(app, "deleting a space", (any_cb)cb, ud);
	if (c) {
		snprintf(c->id, sizeof(c->id), "%s", id);
	}
	return run(c, 0, sql, 1, params, access_written);
}

/* ---- requests and apps ------------------------------------------------------- */

/* Reads rows of (id, space id, space name, username, status, progress, prompt,
 * result, excerpt, created, seconds) into a new array (NULL on ENOMEM). */
static sp_request_row *request_rows(const db_result *res, sp_store_status *st, int *n)
{
	sp_request_row *rows = rows_new(res, st, n, sizeof(*rows));

	for (int i = 0; i < *n; i++) {
		sp_request_row *r = &rows[i];

		r->id = db_value(res, i, 0);
		r->space_id = db_value(res, i, 1);
		r->space_name = db_value(res, i, 2);
		r->username = db_value(res, i, 3);
		r->status = db_value(res, i, 4);
		r->progress = atoi(db_value(res, i, 5));
		r->prompt = db_value(res, i, 6);
		r->result_json = db_isnull(res, i, 7) ? NULL : db_value(res, i, 7);
		r->excerpt = db_value(res, i, 8);
		r->created_at = db_value(res, i, 9);
		r->seconds = db_isnull(res, i, 10) ? -1 : atof(db_value(res, i, 10));
	}
	return rows;
}

static void page_loaded(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);
	const db_result *sp = st == SP_STORE_OK ? db_tx_result(res, 0) : NULL;
	const db_result *rq =
	    st == SP_STORE_OK && db_tx_count(res) > 1 ? db_tx_result(res, 1) : NULL;
	sp_store_status rst = rq ? SP_STORE_OK : SP_STORE_NOTFOUND;
	int n = 0;
	sp_request_row *rows = NULL;
	sp_space_row row;

	if (sp && db_ntuples(sp) == 1) {
		sp__space_row(sp, 0, 0, &row);
		rows = request_rows(rq, &rst, &n);
		c->cb.page(SP_STORE_OK, &row, rows, (unsigned)n, c->ud);
	} else {
		c->cb.page(st == SP_STORE_OK ? SP_STORE_NOTFOUND : st, NULL, NULL, 0, c->ud);
	}
	free(rows);
	free(c);
}

int sp_store_space_page(sp_app *app, const char *id, const char *user_id, sp_space_page_cb cb,
                        void *ud)
{
	static const char space_sql[] =
	    "SELECT " SP__SPACE_COLUMNS("s") " FROM spaces s WHERE s.id = $1";
	static const char reqs_sql[] =
	    "SELECT id, space_id, '', username, status, progress, "
	    "coalesce(payload->>'prompt', ''), result::text, '', "
	    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"'), NULL "
	    "FROM requests WHERE space_id = $1 AND user_id = $2::bigint "
	    "ORDER BY created_at DESC LIMIT 10";
	const char *p1[1] = {id};
	const char *p2[2] = {id, user_id};
	db_stmt st[2] = {{space_sql, 1, p1}, {reqs_sql, 2, p2}};
	call *c = call_new(app, "loading a space", (any_cb)cb, ud);
	return run_tx(c, st, user_id ? 2 : 1, page_loaded);
}

static void requests_listed(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);
	int n;
	sp_request_row *rows = request_rows(res, &st, &n);

	c->cb.requests(st, rows, (unsigned)n, c->ud);
	free(rows);
	free(c);
}

int sp_store_requests_list(sp_app *app, const sp_request_filter *f, sp_requests_cb cb, void *ud)
{
	static const char sql[] =
	    "SELECT r.id, r.space_id, s.name, r.username, r.status, r.progress, "
	    "coalesce(r.payload->>'prompt', ''), NULL, "
	    "left(coalesce(r.result->>'text_output', r.result->>'error', r.result::text, ''), "
	    "160), " TS("r.created_at") ", EXTRACT(EPOCH FROM r.finished_at - r.created_at) "
	                                "FROM requests r JOIN spaces s ON s.id = r.space_id "
	                                "WHERE ($1 = '' OR r.space_id = $1) AND ($2 = '' OR "
	                                "r.status = $2) AND ($3 = '' OR r.username = $3) "
	                                "ORDER BY r.created_at DESC LIMIT 100";
	const char *params[3] = {f && f->space_id ? f->space_id : "",
	                         f && f->status ? f->status : "",
	                         f && f->username ? f->username : ""};
	call *c = call_new(app, "listing requests", (any_cb)cb, ud);
	return run(c, DB_RETRY, sql, 3, params, requests_listed);
}

static void conns_listed(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);
	int n;
	sp_conn_row *rows = rows_new(res, &st, &n, sizeof(*rows));

	for (int i = 0; i < n; i++) {
		rows[i].space_id = db_value(res, i, 0);
		rows[i].space_name = db_value(res, i, 1);
		rows[i].id = db_value(res, i, 2);
		rows[i].address = db_value(res, i, 3);
		rows[i].since = db_value(res, i, 4);
		rows[i].served = db_value(res, i, 5);
	}
	c->cb.conns(st, rows, (unsigned)n, c->ud);
	free(rows);
	free(c);
}

int sp_store_conns_list(sp_app *app, sp_conns_cb cb, void *ud)
{
	/* The address, and in cluster mode the process holding the app. */
	static const char sql[] =
	    "SELECT s.id, s.name, c.id, coalesce(c.address, '') || "
	    "CASE WHEN c.node_id <> '' THEN ' on ' || c.node_id ELSE '' END, " TS(
	        "c.connected_at") ", c.requests_served::text "
	                          "FROM app_connections c JOIN spaces s ON "
	                          "s.id = c.space_id WHERE c.disconnected_at "
	                          "IS NULL ORDER BY c.connected_at DESC "
	                          "LIMIT 500";
	call *c = call_new(app, "listing apps", (any_cb)cb, ud);
	return run(c, DB_RETRY, sql, 0, NULL, conns_listed);
}

static void counted(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);
	int n;
	sp_count_row *rows = rows_new(res, &st, &n, sizeof(*rows));
	unsigned ns = 0, k = 0;

	/* Statuses first ('s' rows), then queues ('q'). */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			if ((strcmp(db_value(res, i, 0), "s") == 0) != (pass == 0))
				continue;
			rows[k].key = db_value(res, i, 1);
			rows[k].count = db_value(res, i, 2);
			k++;
		}
		if (pass == 0)
			ns = k;
	}
	c->cb.counts(st, rows, ns, rows ? rows + ns : NULL, (unsigned)n - ns, c->ud);
	free(rows);
	free(c);
}

int sp_store_request_counts(sp_app *app, sp_counts_cb cb, void *ud)
{
	static const char sql[] =
	    "(SELECT 's', status::text, count(*) FROM requests GROUP BY status) "
	    "UNION ALL (SELECT 'q', space_id::text, count(*) FROM requests WHERE status = 'queued' "
	    "GROUP BY space_id ORDER BY 3 DESC LIMIT 500)";
	call *c = call_new(app, "counting requests", (any_cb)cb, ud);
	return run(c, 0, sql, 0, NULL, counted);
}

/* ---- uploads ------------------------------------------------------------------- */

static void done_answered(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);

	if (c->cb.done)
		c->cb.done(st, c->ud);
	free(c);
}

int sp_store_uploads_add(sp_app *app, const sp_upload_row *rows, unsigned n, const char *user_id,
                         sp_done_cb cb, void *ud)
{
	static const char sql[] =
	    "INSERT INTO uploads (token, filename, content_type, size, path, user_id) "
	    "VALUES ($1, $2, $3, $4, $5, $6)";
	db_stmt st[SP_UPLOADS];
	const char *params[SP_UPLOADS][6];
	char sizes[SP_UPLOADS][24];
	call *c;

	if (n == 0 || n > SP_UPLOADS)
		return BASE_EINVAL;
	for (unsigned i = 0; i < n; i++) {
		snprintf(sizes[i], sizeof(sizes[i]), "%llu", (unsigned long long)rows[i].size);
		params[i][0] = rows[i].token;
		params[i][1] = rows[i].filename;
		params[i][2] = rows[i].content_type;
		params[i][3] = sizes[i];
		params[i][4] = rows[i].path;
		params[i][5] = user_id;
		st[i] = (db_stmt){sql, 6, params[i]};
	}
	c = call_new(app, "recording uploads", (any_cb)cb, ud);
	return run_tx(c, st, n, done_answered);
}

/* The tokens as a PostgreSQL array literal: tokens are base64url, no quoting needed. */
static void token_array(base_buf *b, const char *const *tokens, unsigned n)
{
	base_buf_append(b, "{", 1);
	for (unsigned i = 0; i < n; i++) {
		const char *t = tokens[i];

		if (!t || !*t ||
		    strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		              "0123456789-_") != strlen(t))
			continue;
		base_buf_printf(b, "%s%s", b->len > 1 ? "," : "", t);
	}
	base_buf_append(b, "}", 2); /* with the NUL */
}

static int tokens_statement(sp_app *app, const char *what, const char *sql,
                            const char *const *tokens, unsigned n, const char *request_id,
                            sp_done_cb cb, void *ud)
{
	base_buf arr = BASE_BUF_INIT;
	int rc;

	token_array(&arr, tokens, n);
	const char *params[2] = {arr.data, request_id};
	rc = run(call_new(app, what, (any_cb)cb, ud), 0, sql, request_id ? 2 : 1, params,
	         done_answered);
	base_buf_free(&arr);
	return rc;
}

int sp_store_uploads_attach(sp_app *app, const char *const *tokens, unsigned n,
                            const char *request_id, sp_done_cb cb, void *ud)
{
	static const char sql[] =
	    "UPDATE uploads SET request_id = $2 WHERE token = ANY($1::text[])";

	return tokens_statement(app, "attaching uploads", sql, tokens, n, request_id, cb, ud);
}

int sp_store_uploads_forget(sp_app *app, const char *const *tokens, unsigned n, sp_done_cb cb,
                            void *ud)
{
	static const char sql[] = "DELETE FROM uploads WHERE token = ANY($1::text[])";

	return tokens_statement(app, "removing uploads", sql, tokens, n, NULL, cb, ud);
}

static void upload_found(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);

	if (st == SP_STORE_OK && db_ntuples(res) == 1) {
		sp_upload_row row = {c->id, db_value(res, 0, 1), db_value(res, 0, 2),
		                     db_value(res, 0, 0), strtoull(db_value(res, 0, 3), NULL, 10)};
		c->cb.upload(st, &row, c->ud);
	} else {
		c->cb.upload(st == SP_STORE_OK ? SP_STORE_NOTFOUND : st, NULL, c->ud);
	}
	free(c);
}

int sp_store_upload_get(sp_app *app, const char *token, sp_upload_cb cb, void *ud)
{
	static const char sql[] =
	    "SELECT path, filename, content_type, size FROM uploads WHERE token = $1";
	const char *params[1] = {token};
	call *c;

	if (strlen(token) >= SP_ID_MAX)
		return BASE_EINVAL;
	c = call_new(app, "looking up an upload", (any_cb)cb, ud);
	if (c) {
		snprintf(c->id, sizeof(c->id), "%s", token);
	}
	return run(c, DB_RETRY, sql, 1, params, upload_found);
}

static void usage_found(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);

	if (st == SP_STORE_OK && db_ntuples(res) != 1)
		st = SP_STORE_FAILED;
	c->cb.usage(st, st ? 0 : strtoull(db_value(res, 0, 0), NULL, 10),
	            st ? 0 : strtoull(db_value(res, 0, 1), NULL, 10), c->ud);
	free(c);
}

int sp_store_upload_usage(sp_app *app, const char *user_id, int want_total, sp_usage_cb cb,
                          void *ud)
{
	static const char sql[] =
	    "SELECT (SELECT coalesce(sum(size), 0) FROM uploads WHERE user_id = $1 "
	    "AND created_at > now() - interval '1 day')::text, "
	    "(CASE WHEN $2 THEN (SELECT coalesce(sum(size), 0) FROM uploads) ELSE 0 END)::text";
	const char *params[2] = {user_id, want_total ? "t" : "f"};
	call *c = call_new(app, "checking the upload quota", (any_cb)cb, ud);
	return run(c, DB_RETRY, sql, 2, params, usage_found);
}

static void expired_found(const db_result *res, void *ud)
{
	call *c = ud;
	sp_store_status st = status_of(res, c->what);
	int n;
	const char **paths = rows_new(res, &st, &n, sizeof(*paths));

	for (int i = 0; i < n; i++)
		paths[i] = db_value(res, i, 0);
	c->cb.paths(st, paths, (unsigned)n, c->ud);
	free(paths);
	free(c);
}

int sp_store_uploads_expire(sp_app *app, unsigned retention_s, unsigned grace_s, sp_paths_cb cb,
                            void *ud)
{
	static const char sql[] =
	    "DELETE FROM uploads WHERE id IN (SELECT u.id FROM uploads u "
	    "LEFT JOIN requests r ON r.id = u.request_id "
	    "WHERE (u.request_id IS NULL AND u.created_at < now() - make_interval(secs => "
	    "$2::int)) OR r.finished_at < now() - make_interval(secs => $1::int) "
	    "LIMIT 500) RETURNING path";
	char retention[16], grace[16];
	const char *params[2] = {retention, grace};

	snprintf(retention, sizeof(retention), "%u", retention_s);
	snprintf(grace, sizeof(grace), "%u", grace_s);
	return run(call_new(app, "removing expired uploads", (any_cb)cb, ud), 0, sql, 2, params,
	           expired_found);
}
