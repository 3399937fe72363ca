/*
 * app_protocol.c: the app side of the Spaces protocol on namespace "/",
 * exactly as the existing Python clients expect it (docs/protocol.md):
 * register → register_response, inference_request out, inference_result
 * and inference_progress in.
 *
 * Every change is written to PostgreSQL before anyone is told; results are
 * accepted only from the connection that holds the request.
 */
#include <sodium.h>
#include <stdlib.h>

#include "spaces_internal.h"

/* ---- helpers ------------------------------------------------------------ */

/* The event's arguments as a JSON array, or NULL. */
static json_t *event_args(const sio_event *ev)
{
	char stack[512];
	size_t need = ev->args.len + 2;
	char *buf = need <= sizeof(stack) ? stack : malloc(need);
	if (!buf)
		return NULL;
	buf[0] = '[';
	memcpy(buf + 1, ev->args.base, ev->args.len);
	buf[need - 1] = ']';
	json_t *arr = json_loadb(buf, need, 0, NULL);
	if (buf != stack)
		free(buf);
	if (!json_is_array(arr)) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

static void emit_json(sio_socket *s, const char *event, json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	if (text)
		sio_emit(s, event, (base_slice){text, strlen(text)}, NULL, 0);
	free(text);
}

static void register_fail(sp_conn *c, const char *message, int disconnect)
{
	if (!c->s)
		return;
	json_t *r = json_pack("{s:b,s:s}", "success", 0, "message", message);
	emit_json(c->s, "register_response", r);
	json_decref(r);
	BASE_LOGI("spaces", "app %s refused: %s", sio_handshake_address(c->s), message);
	if (disconnect)
		sio_disconnect(c->s);
}

/* ---- inference_request --------------------------------------------------- */

int sp__send_request(sp_conn *c, const char *request_id, const char *username,
                     const char *payload_json)
{
	if (!c->s)
		return SIO_ENOT_CONNECTED;
	base_buf b = BASE_BUF_INIT;
	base_buf_append_str(&b, "{\"request_id\":");
	sio_json_append_string(&b, request_id, strlen(request_id));
	base_buf_append_str(&b, ",\"username\":");
	sio_json_append_string(&b, username, strlen(username));
	base_buf_append_str(&b, ",\"payload\":");
	base_buf_append_str(&b, payload_json && *payload_json ? payload_json : "{}");
	base_buf_append(&b, "}", 1);
	int rc = sio_emit(c->s, "inference_request", (base_slice){b.data, b.len}, NULL, 0);
	base_buf_free(&b);
	if (rc == 0)
		c->inflight++;
	return rc;
}

typedef struct {
	sp_app *app;
	sp_conn *conn;
	char space_id[SP_ID_MAX];
} drain_ctx;

static void drained(const db_result *res, void *ud)
{
	drain_ctx *d = ud;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "dispatching queued requests failed: %s", db_error(res));
	} else {
		int n = db_ntuples(res);
		for (int i = 0; i < n; i++) {
			const char *id = db_value(res, i, 0);
			/* The app left while the query ran: its requeue may have run
			 * first, so this one goes back to the queue by itself. */
			if (sp__send_request(d->conn, id, db_value(res, i, 1),
			                     db_value(res, i, 2))) {
				BASE_LOGW("spaces",
				          "request %s: app gone before it was sent; queued again",
				          id);
				sp__requeue_orphan(d->app, id, d->conn->id);
			}
		}
		if (n > 0) {
			BASE_LOGI("spaces", "%d queued request(s) sent to app %s", n, d->conn->id);
			sp__space_changed(d->app, d->space_id);
		}
	}
	sp__conn_unref(d->conn);
	free(d);
}

void sp__drain(sp_app *app, const char *space_id)
{
	sp_conn *c = app->closed ? NULL : sp__least_busy(app, space_id);
	if (!c)
		return;
	drain_ctx *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->app = app;
	d->conn = c;
	c->refs++;
	snprintf(d->space_id, sizeof(d->space_id), "%s", space_id);
	/* Oldest first; SKIP LOCKED so two drains never take the same request. */
	static const char sql[] =
	    "WITH picked AS (SELECT id FROM requests WHERE space_id = $1 AND status = 'queued' "
	    "AND deadline_at > now() ORDER BY created_at LIMIT 1000 FOR UPDATE SKIP LOCKED), "
	    "u AS (UPDATE requests r SET status = 'processing', connection_id = $2, "
	    "attempts = attempts + 1, started_at = now(), updated_at = now() "
	    "FROM picked WHERE r.id = picked.id "
	    "RETURNING r.id, r.username, r.payload::text, r.created_at) "
	    "SELECT id, username, payload FROM u ORDER BY created_at";
	const char *params[2] = {space_id, c->id};
	if (db_query(app->db, sql, 2, params, drained, d)) {
		sp__conn_unref(c);
		free(d);
	}
}

/* ---- register ------------------------------------------------------------ */

typedef struct {
	sp_conn *conn;
	char space_id[SP_ID_MAX];
} register_ctx;

static void registered(const db_result *res, void *ud)
{
	register_ctx *r = ud;
	sp_conn *c = r->conn;
	sp_app *app = c->app;
	c->registering = 0;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "recording app connection failed: %s", db_error(res));
		if (c->space) {
			base_list_remove(&c->link);
			c->space->n_apps--;
			c->space = NULL;
		}
		register_fail(c, "Server error, please retry", 1);
	} else if (c->s) {
		char msg[400];
		snprintf(msg, sizeof(msg), "Successfully connected to space \"%s\"",
		         c->space->name);
		json_t *ok = json_pack("{s:b,s:s,s:s,s:s}", "success", 1, "connection_id", c->id,
		                       "space_id", r->space_id, "message", msg);
		emit_json(c->s, "register_response", ok);
		json_decref(ok);
		BASE_LOGI("spaces", "app %s registered for space \"%s\" (%s) as %s",
		          sio_handshake_address(c->s), c->space->name, r->space_id, c->id);
		sp__space_changed(app, r->space_id);
		sp__nodes_tell(app, r->space_id);
		sp__drain(app, r->space_id);
	}
	sp__conn_unref(c);
	free(r);
}

/* The token an app gives: ?token= on its URL, or "token" in its auth. */
static int app_token(sio_socket *s, char *out, size_t cap)
{
	base_slice v;
	if (base_query_get(sio_handshake_query(s), "token", &v) && v.len && v.len < cap) {
		ssize_t n = base_url_decode(v.base, v.len, out, 1);
		if (n >= 0) {
			out[n] = 0;
			return 1;
		}
	}
	base_slice auth = sio_handshake_auth(s);
	json_t *a = json_loadb(auth.base, auth.len, 0, NULL);
	const char *t = json_string_value(json_object_get(a, "token"));
	int found = t && strlen(t) < cap;
	if (found)
		snprintf(out, cap, "%s", t);
	json_decref(a);
	return found;
}

static int token_matches(const char *token, const char *stored_hex)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1];
	crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	return strlen(stored_hex) == strlen(hex) &&
	       sodium_memcmp(hex, stored_hex, strlen(hex)) == 0;
}

static void space_found(const db_result *res, void *ud)
{
	register_ctx *r = ud;
	sp_conn *c = r->conn;
	sp_app *app = c->app;
	char name[256];
	if (!c->s) {
		c->registering = 0;
		goto out;
	}
	if (!db_ok(res)) {
		c->registering = 0;
		BASE_LOGE("spaces", "looking up a space failed: %s", db_error(res));
		register_fail(c, "Server error, please retry", 0);
		goto out;
	}
	snprintf(name, sizeof(name), "%s", r->space_id); /* the name asked for */
	if (db_ntuples(res) != 1 || strcmp(db_value(res, 0, 1), "websockets") != 0) {
		char msg[400];
		c->registering = 0;
		snprintf(msg, sizeof(msg), "Space \"%s\" not found or is not a WebSocket space",
		         name);
		register_fail(c, msg, 1);
		goto out;
	}
	const char *space_id = db_value(res, 0, 0);
	unsigned max_apps = (unsigned)strtoul(db_value(res, 0, 2), NULL, 10);
	if (!db_isnull(res, 0, 3)) {
		char token[256];
		if (!app_token(c->s, token, sizeof(token)) ||
		    !token_matches(token, db_value(res, 0, 3))) {
			c->registering = 0;
			register_fail(c, "Invalid or missing app token for this space", 1);
			goto out;
		}
	}
	sp_space *sp = sp__space_get(app, space_id, 1);
	if (!sp) {
		c->registering = 0;
		register_fail(c, "Server error, please retry", 1);
		goto out;
	}
	/* In a cluster, the apps of the other nodes take slots too. */
	if (sp->n_apps + sp->n_remote >= (max_apps ? max_apps : 1)) {
		c->registering = 0;
		register_fail(c, "Space already has a connected app", 1);
		goto out;
	}
	/* The slot is taken now, so two apps registering at once cannot both get it. */
	snprintf(sp->name, sizeof(sp->name), "%s", name);
	base_list_insert_tail(&sp->apps, &c->link);
	sp->n_apps++;
	c->space = sp;
	snprintf(r->space_id, sizeof(r->space_id), "%s", space_id);
	static const char sql[] =
	    "INSERT INTO app_connections (id, space_id, sid, address, node_id) "
	    "VALUES ($1, $2, $3, $4, $5)";
	const char *params[5] = {c->id, space_id, sio_socket_id(c->s), sio_handshake_address(c->s),
	                         sp__node_id(app)};
	if (db_query(app->db, sql, 5, params, registered, r) == 0)
		return; /* r and the reference go to registered() */
	c->registering = 0;
	register_fail(c, "Server error, please retry", 1);
out:
	sp__conn_unref(c);
	free(r);
}

static void on_register(const sio_event *ev, void *ud)
{
	sp_app *app = ud;
	sp_conn *c = sio_socket_data(ev->socket);
	if (!c)
		return;
	json_t *args = event_args(ev);
	const char *name =
	    json_string_value(json_object_get(json_array_get(args, 0), "space_name"));
	if (!name || !*name) {
		register_fail(c, "space_name is required", 0);
	} else if (c->space || c->registering) {
		register_fail(c, "This connection is already registered", 0);
	} else if (strlen(name) > 200) {
		register_fail(c, "space_name is too long", 1);
	} else {
		register_ctx *r = calloc(1, sizeof(*r));
		if (r) {
			r->conn = c;
			c->refs++;
			c->registering = 1;
			snprintf(r->space_id, sizeof(r->space_id), "%s", name);
			static const char sql[] =
			    "SELECT id::text, card_type, max_apps, app_token_hash "
			    "FROM spaces WHERE name = $1";
			const char *params[1] = {name};
			if (db_query(app->db, sql, 1, params, space_found, r)) {
				c->registering = 0;
				sp__conn_unref(c);
				free(r);
				register_fail(c, "Server busy, please retry", 0);
			}
		}
	}
	json_decref(args);
}

/* ---- inference_result / inference_progress -------------------------------- */

typedef struct {
	sp_app *app;
	sp_conn *conn;
	char request_id[64];
} result_ctx;

static void result_recorded(const db_result *res, void *ud)
{
	result_ctx *r = ud;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "recording the result of %s failed: %s", r->request_id,
		          db_error(res));
	} else if (db_ntuples(res) != 1) {
		BASE_LOGW("spaces", "result for unknown or finished request %s ignored (from %s)",
		          r->request_id, r->conn->id);
	} else {
		if (r->conn->inflight)
			r->conn->inflight--;
		r->conn->served++;
		if (!r->conn->s) /* disconnected meanwhile: its last flush is done */
			sp__flush_served(r->app, r->conn);
		/* user_id, space_id, status, result, updated_at */
		sp__request_update(r->app, db_value(res, 0, 0), r->request_id, db_value(res, 0, 2),
		                   "100", NULL, db_value(res, 0, 3), db_value(res, 0, 4));
		sp__space_changed(r->app, db_value(res, 0, 1));
	}
	sp__conn_unref(r->conn);
	free(r);
}

static void on_result(const sio_event *ev, void *ud)
{
	sp_app *app = ud;
	sp_conn *c = sio_socket_data(ev->socket);
	json_t *args = event_args(ev), *obj = json_array_get(args, 0);
	const char *id = json_string_value(json_object_get(obj, "request_id"));
	const char *status = json_string_value(json_object_get(obj, "status"));
	json_t *success = json_object_get(obj, "success");
	if (!c || !c->space || !id || strlen(id) >= 64) {
		BASE_LOGW("spaces",
		          "inference_result without a request_id or registration ignored");
		goto out;
	}
	/* The older clients send success: true|false instead of a status. */
	if (status && strcmp(status, "completed") && strcmp(status, "failed"))
		status = "failed"; /* "error" and anything unknown */
	else if (!status && json_is_boolean(success))
		status = json_is_true(success) ? "completed" : "failed";
	else if (!status)
		status = "completed";
	json_t *result = json_object_get(obj, "result");
	char *result_text =
	    result ? json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))
	           : strdup("null");
	result_ctx *r = calloc(1, sizeof(*r));
	if (!r || !result_text) {
		free(r);
		free(result_text);
		goto out;
	}
	r->app = app;
	r->conn = c;
	c->refs++;
	snprintf(r->request_id, sizeof(r->request_id), "%s", id);
	static const char sql[] =
	    "WITH u AS (UPDATE requests SET status = $3, result = $4::jsonb, "
	    "progress = CASE WHEN $3 = 'completed' THEN 100 ELSE progress END, "
	    "finished_at = now(), updated_at = now() "
	    "WHERE id::text = $1 AND connection_id = $2 AND status = 'processing' "
	    "RETURNING user_id, space_id, status, result, updated_at) "
	    "SELECT user_id::text, space_id::text, status, result::text, "
	    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM u";
	const char *params[4] = {id, c->id, status, result_text};
	if (db_query(app->db, sql, 4, params, result_recorded, r)) {
		sp__conn_unref(c);
		free(r);
	}
	free(result_text);
out:
	json_decref(args);
}

typedef struct {
	sp_app *app;
	char request_id[64];
	char progress[16];
	char *message;
} progress_ctx;

static void progress_recorded(const db_result *res, void *ud)
{
	progress_ctx *p = ud;
	if (db_ok(res) && db_ntuples(res) == 1)
		sp__request_update(p->app, db_value(res, 0, 0), p->request_id, "processing",
		                   p->progress, p->message, NULL, db_value(res, 0, 1));
	free(p->message);
	free(p);
}

static void on_progress(const sio_event *ev, void *ud)
{
	sp_app *app = ud;
	sp_conn *c = sio_socket_data(ev->socket);
	json_t *args = event_args(ev), *obj = json_array_get(args, 0);
	const char *id = json_string_value(json_object_get(obj, "request_id"));
	json_t *pv = json_object_get(obj, "progress");
	const char *message = json_string_value(json_object_get(obj, "message"));
	progress_ctx *p;
	if (!c || !c->space || !id || strlen(id) >= 64 || !json_is_number(pv) ||
	    !(p = calloc(1, sizeof(*p))))
		goto out;
	double v = json_number_value(pv);
	v = v < 0 ? 0 : v > 100 ? 100 : v;
	p->app = app;
	snprintf(p->request_id, sizeof(p->request_id), "%s", id);
	snprintf(p->progress, sizeof(p->progress), "%d", (int)v);
	p->message = message ? strndup(message, 500) : NULL;
	static const char sql[] =
	    "UPDATE requests SET progress = $3, progress_message = $4, updated_at = now() "
	    "WHERE id::text = $1 AND connection_id = $2 AND status = 'processing' "
	    "RETURNING user_id::text, "
	    "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
	const char *params[4] = {id, c->id, p->progress, p->message};
	if (db_query(app->db, sql, 4, params, progress_recorded, p)) {
		free(p->message);
		free(p);
	}
out:
	json_decref(args);
}

/* ---- connect / disconnect ------------------------------------------------- */

static void on_connection(sio_socket *s, void *ud)
{
	sp_app *app = ud;
	sp_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		sio_disconnect(s);
		return;
	}
	c->app = app;
	c->s = s;
	c->refs = 1;
	base_list_init(&c->link);
	base_uuid4(c->id);
	sio_socket_set_data(s, c);
}

typedef struct {
	sp_app *app;
	char space_id[SP_ID_MAX];
} requeue_ctx;

static void requeued(const db_result *res, void *ud)
{
	requeue_ctx *q = ud;
	if (!db_ok(res))
		BASE_LOGE("spaces", "requeueing the requests of a lost app failed: %s",
		          db_error(res));
	else if (strcmp(db_value(res, 0, 0), "0") != 0)
		BASE_LOGI("spaces", "%s unanswered request(s) of a lost app queued again",
		          db_value(res, 0, 0));
	if (!q->app->closed) {
		sp__drain(q->app, q->space_id);
		sp__space_changed(q->app, q->space_id);
		sp__nodes_tell(q->app, q->space_id); /* the others' apps may take them */
	}
	free(q);
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
	sp_app *app = ud;
	sp_conn *c = sio_socket_data(s);
	if (!c)
		return;
	sio_socket_set_data(s, NULL);
	c->s = NULL;
	if (c->space) {
		sp_space *sp = c->space;
		base_list_remove(&c->link);
		sp->n_apps--;
		c->space = NULL;
		BASE_LOGI("spaces", "app %s of space \"%s\" disconnected (%s)", c->id, sp->name,
		          reason);
		requeue_ctx *q = calloc(1, sizeof(*q));
		if (q) {
			q->app = app;
			snprintf(q->space_id, sizeof(q->space_id), "%s", sp->id);
			static const char sql[] =
			    "WITH r AS (UPDATE requests SET status = 'queued', connection_id = "
			    "NULL, "
			    "updated_at = now() WHERE connection_id = $1 AND status = 'processing' "
			    "RETURNING 1), c AS (UPDATE app_connections SET disconnected_at = "
			    "now(), requests_served = requests_served + $2::int "
			    "WHERE id = $1 RETURNING 1) SELECT count(*) FROM r";
			char served[16];
			snprintf(served, sizeof(served), "%u", c->served);
			const char *params[2] = {c->id, served};
			if (db_query(app->db, sql, 2, params, requeued, q))
				free(q);
			else
				c->served = 0;
		}
	}
	sp__conn_unref(c);
}

/*
 * Progress reports count against their connection in the database pool: a
 * flood of them waits in that connection's own list (db_query_owned) instead
 * of filling the queue every page and every other app waits in.
 */
static void on_progress_owned(const sio_event *ev, void *ud)
{
	sp_app *app = ud;
	db_pool_set_owner(app->db, ev->socket);
	on_progress(ev, ud);
	db_pool_set_owner(app->db, NULL);
}

void sp__apps_init(sp_app *app)
{
	app->apps_nsp = sio_of(app->io, "/");
	sio_on_connection(app->apps_nsp, on_connection, app);
	sio_on_disconnect(app->apps_nsp, on_disconnect, app);
	sio_on(app->apps_nsp, "register", on_register, app);
	sio_on(app->apps_nsp, "inference_result", on_result, app);
	sio_on(app->apps_nsp, "inference_progress", on_progress_owned, app);
}
