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

/*
 * Failed registrations per client address: a few slots, each counting the
 * failures of one address for a minute. A full table reuses the slot whose
 * minute began first, so the table stays small whatever the addresses.
 */
#define FAIL_WINDOW_MS 60000

static struct sp_fail_slot *fail_slot(sp_app *app, const char *addr, int take)
{
	uint64_t now = uv_now(sio_server_loop(app->io));
	struct sp_fail_slot *oldest = NULL;

	for (size_t i = 0; i < BASE_ARRAY_SIZE(app->fails); i++) {
		struct sp_fail_slot *f = &app->fails[i];

		if (f->n && now - f->since >= FAIL_WINDOW_MS)
			f->n = 0; /* its minute is over */
		if (f->n && strcmp(f->addr, addr) == 0)
			return f;
		if (!oldest || (oldest->n && (!f->n || f->since < oldest->since)))
			oldest = f;
	}
	if (!take)
		return NULL;
	snprintf(oldest->addr, sizeof(oldest->addr), "%s", addr);
	oldest->since = now;
	oldest->n = 0;
	return oldest;
}

/* Seconds until addr may try again, or 0 when it may now. */
static unsigned register_blocked(sp_app *app, const char *addr)
{
	unsigned max = app->opts.register_max_failures;
	struct sp_fail_slot *f = max ? fail_slot(app, addr, 0) : NULL;

	if (!f || f->n < max)
		return 0;
	uint64_t left = FAIL_WINDOW_MS - (uv_now(sio_server_loop(app->io)) - f->since);
	return (unsigned)((left + 999) / 1000);
}

static void register_failed(sp_app *app, const char *addr)
{
	struct sp_fail_slot *f = app->opts.register_max_failures ? fail_slot(app, addr, 1) : NULL;

	if (f && ++f->n == app->opts.register_max_failures)
		BASE_LOGW("spaces",
		          "%u failed app registrations from %s within a minute: its registrations "
		          "are refused for the rest of the minute",
		          f->n, addr);
}

/* Disconnects a registered app that its space no longer admits, saying why. */
static void kick(sp_conn *c, const char *reason)
{
	if (!c->s)
		return;
	BASE_LOGW("spaces", "app %s (%s) of space \"%s\" disconnected: %s", c->id,
	          sio_handshake_address(c->s), c->space ? c->space->name : "?", reason);
	json_t *r = json_pack("{s:b,s:s}", "success", 0, "message", reason);
	emit_json(c->s, "register_response", r);
	json_decref(r);
	sio_disconnect(c->s);
}

/* ---- inference_request --------------------------------------------------- */

int sp__send_request(sp_conn *c, const char *request_id, const char *username,
                     const char *payload_json)
{
	if (!c->s)
		return SIO_ENOT_CONNECTED;
	/* Known as its own before it is sent: its result is taken only from it. */
	if (sp__held_add(c, request_id))
		return BASE_ENOMEM;
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
	if (rc == 0) {
		c->inflight++;
		c->app->stats.dispatched++;
		BASE_LOGI("spaces", "request %s dispatched to app %s", request_id, c->id);
	} else
		sp__held_expired(c->app, request_id); /* it lets go again */
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
			                     db_value(res, i, 2)) == 0) {
				long long waited = atoll(db_value(res, i, 3));
				sp__observe(&d->app->stats.wait, waited > 0 ? (uint64_t)waited : 0);
			} else {
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
	    "attempts = attempts + 1, started_at = now(), updated_at = now(), "
	    "progress = 0, progress_message = NULL, progress_at = NULL "
	    "FROM picked WHERE r.id = picked.id "
	    "RETURNING r.id, r.username, r.payload::text, r.created_at) "
	    "SELECT id, username, payload, "
	    "(EXTRACT(EPOCH FROM clock_timestamp() - created_at) * 1000)::bigint FROM u "
	    "ORDER BY created_at";
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
	} else if (db_ntuples(res) != 1) {
		/* The space's access changed (or it went) between the look-up and now. */
		if (c->space) {
			base_list_remove(&c->link);
			c->space->n_apps--;
			c->space = NULL;
		}
		register_fail(c, "The space's app access changed meanwhile: please register again",
		              1);
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
		if (c->recheck) {
			c->recheck = 0;
			sp__access_check(app, r->space_id);
		}
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
	int same =
	    strlen(stored_hex) == strlen(hex) && sodium_memcmp(hex, stored_hex, strlen(hex)) == 0;
	sodium_memzero(h, sizeof(h));
	return same;
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
	const char *stored = db_isnull(res, 0, 3) ? NULL : db_value(res, 0, 3);
	int open = strcmp(db_value(res, 0, 4), "open") == 0;
	char token[256];
	int given = app_token(c->s, token, sizeof(token));
	/* Hashed whatever the space, so that an answer takes the same time. */
	int match = given && token_matches(token, stored ? stored : "");
	sodium_memzero(token, sizeof(token));
	/* An open space takes any app; a token space only one with its token. */
	if (!open && !match) {
		char msg[400];
		c->registering = 0;
		register_failed(app, sio_handshake_address(c->s));
		if (given)
			snprintf(msg, sizeof(msg), "Invalid app token for space \"%s\"", name);
		else
			snprintf(msg, sizeof(msg),
			         "Space \"%s\" requires an app token: add ?token=<token> to the "
			         "server URL, or give token in the Socket.IO auth",
			         name);
		register_fail(c, msg, 1);
		goto out;
	}
	snprintf(c->token_hash, sizeof(c->token_hash), "%s", match ? stored : "");
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
	/* Only while the space still admits it: an admin may have changed its
	 * access since the look-up (sp_space_access_changed covers the rest). */
	static const char sql[] =
	    "INSERT INTO app_connections (id, space_id, sid, address, node_id) "
	    "SELECT $1, $2, $3, $4, $5 FROM spaces WHERE id = $2 "
	    "AND (app_access = 'open' OR app_token_hash = $6) RETURNING 1";
	const char *params[6] = {c->id,
	                         space_id,
	                         sio_socket_id(c->s),
	                         sio_handshake_address(c->s),
	                         sp__node_id(app),
	                         c->token_hash[0] ? c->token_hash : NULL};
	if (db_query(app->db, sql, 6, params, registered, r) == 0)
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
	unsigned wait;
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
	} else if ((wait = register_blocked(app, sio_handshake_address(ev->socket))) != 0) {
		char msg[160];
		snprintf(msg, sizeof(msg),
		         "Too many failed registrations from this address: retry in %u s", wait);
		register_fail(c, msg, 1);
	} else {
		register_ctx *r = calloc(1, sizeof(*r));
		if (r) {
			r->conn = c;
			c->refs++;
			c->registering = 1;
			snprintf(r->space_id, sizeof(r->space_id), "%s", name);
			static const char sql[] =
			    "SELECT id::text, card_type, max_apps, app_token_hash, app_access "
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

/* ---- access changes ------------------------------------------------------- */

typedef struct {
	sp_app *app;
	char space_id[SP_ID_MAX];
} access_ctx;

static void access_read(const db_result *res, void *ud)
{
	access_ctx *a = ud;
	sp_app *app = a->app;
	sp_space *sp = app->closed ? NULL : sp__space_get(app, a->space_id, 0);
	base_list *pos, *tmp;

	if (!db_ok(res)) {
		BASE_LOGE("spaces", "reading the access of space %s failed: %s", a->space_id,
		          db_error(res));
		goto out;
	}
	if (!sp)
		goto out;
	int gone = db_ntuples(res) != 1;
	int open = !gone && strcmp(db_value(res, 0, 0), "open") == 0;
	const char *hash = gone || db_isnull(res, 0, 1) ? "" : db_value(res, 0, 1);
	base_list_foreach_safe(pos, tmp, &sp->apps)
	{
		sp_conn *c = BASE_CONTAINER_OF(pos, sp_conn, link);
		char reason[400];

		if (!c->s)
			continue;
		/* Its row is being written: checked again once it is (registered()). */
		if (c->registering) {
			c->recheck = 1;
			continue;
		}
		if (gone) {
			snprintf(reason, sizeof(reason), "space \"%s\" was deleted", sp->name);
		} else if (open || (c->token_hash[0] && strlen(hash) == strlen(c->token_hash) &&
		                    sodium_memcmp(hash, c->token_hash, strlen(hash)) == 0)) {
			continue; /* still admitted */
		} else if (c->token_hash[0]) {
			snprintf(reason, sizeof(reason),
			         "the app token of space \"%s\" was replaced: connect again with "
			         "the new token",
			         sp->name);
		} else {
			snprintf(reason, sizeof(reason),
			         "space \"%s\" now requires an app token: connect again with "
			         "?token=<token> on the server URL",
			         sp->name);
		}
		kick(c, reason);
	}
out:
	free(a);
}

void sp__access_check(sp_app *app, const char *space_id)
{
	static const char sql[] = "SELECT app_access, app_token_hash FROM spaces WHERE id = $1";
	access_ctx *a;

	/* Maybe deleted, with its requests: their final documents go. */
	sp__finals_drop(app, space_id);

	if (app->closed || !sp__space_get(app, space_id, 0) || !(a = calloc(1, sizeof(*a))))
		return;
	a->app = app;
	snprintf(a->space_id, sizeof(a->space_id), "%s", space_id);
	const char *params[1] = {a->space_id};
	if (db_query(app->db, sql, 1, params, access_read, a)) {
		BASE_LOGE("spaces", "cannot check the apps of space %s: database busy", space_id);
		free(a);
	}
}

void sp_space_access_changed(sp_app *app, const char *space_id)
{
	sp__access_check(app, space_id);
	sp__nodes_tell_access(app, space_id);
}

/* ---- inference_result / inference_progress -------------------------------- */

/* Both are taken in results.c: from the connection that holds the request only. */
static void on_result(const sio_event *ev, void *ud)
{
	sp_conn *c = sio_socket_data(ev->socket);
	json_t *args = event_args(ev);
	if (c)
		sp__result_take(c, json_array_get(args, 0));
	else
		BASE_LOGW("spaces",
		          "inference_result without a request_id or registration ignored");
	json_decref(args);
}

static void on_progress(const sio_event *ev, void *ud)
{
	sp_conn *c = sio_socket_data(ev->socket);
	json_t *args = event_args(ev);
	if (c)
		sp__progress_take(c, json_array_get(args, 0));
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
	base_list_init(&c->held);
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
	else if (strcmp(db_value(res, 0, 0), "0") != 0) {
		BASE_LOGI("spaces", "%s unanswered request(s) of a lost app queued again",
		          db_value(res, 0, 0));
		q->app->stats.requeued += (uint64_t)strtoull(db_value(res, 0, 0), NULL, 10);
	}
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
	sp__held_drop_conn(c);
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
			/* Those whose result it sent stay: their result is being written. */
			static const char sql[] =
			    "WITH r AS (UPDATE requests SET status = 'queued', connection_id = "
			    "NULL, notice = '" SP_NOTICE_REQUEUED "', "
			    "updated_at = now() WHERE connection_id = $1 AND status = 'processing' "
			    "AND NOT (id = ANY($3::text[])) "
			    "RETURNING 1), c AS (UPDATE app_connections SET disconnected_at = "
			    "now(), requests_served = requests_served + $2::int "
			    "WHERE id = $1 RETURNING 1) SELECT count(*) FROM r";
			char served[16];
			snprintf(served, sizeof(served), "%u", c->served);
			base_buf keep = BASE_BUF_INIT;
			sp__pending_ids(app, c, &keep);
			const char *params[3] = {c->id, served, keep.data};
			if (db_query(app->db, sql, 3, params, requeued, q))
				free(q);
			else
				c->served = 0;
			base_buf_free(&keep);
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
