/*
 * browser.c: the namespace "/spaces", where browsers follow spaces (is an
 * app connected?) and their own requests (status, progress, result) live.
 *
 * Who a browser is, the site says (sp_browser_auth_set: from the
 * handshake's cookie, which this layer never reads); an anonymous browser
 * may follow spaces but no requests. A page of
 * another origin cannot connect at all (sp_options.browser_origin_ok),
 * since the cookie would come along with it. A browser's sockets are in
 * the rooms of its user and of its session, so that logging out, a new
 * password or a disabled account closes them at once, on every node.
 *
 *   client → server: follow_space(space_id), follow_request(request_id)
 *                    (acknowledged with true when followed, false when
 *                    refused: no such space, not the user's request, too
 *                    many followed or looked up at once)
 *   server → client: space_state {space_id, connected, apps, queued?,
 *                                 processing?, eta_seconds?}
 *                    request_update {request_id, space_id, status, state,
 *                                    position?, ahead?, eta_seconds?, notice?,
 *                                    reason?, progress, message?, result,
 *                                    processing_time_seconds?, created_at,
 *                                    updated_at}: see live.c
 */
#include <stdlib.h>

#include "spaces_internal.h"

/* Payloads: "session <token hash>" or "user <id> [<token hash of a session kept>]". */
#define SP_CLOSE_CHANNEL SP_BROWSER_CLOSE_CHANNEL
/* Spaces and requests one socket may follow; a room each (docs/limits.md). */
#define SP_MAX_FOLLOWS 64
/* Follows of one socket being looked up in the database at once. */
#define SP_MAX_FOLLOW_LOOKUPS 4

typedef struct {
	char user_id[32]; /* empty when anonymous */
	char session[80]; /* "session:<token hash>" when signed in */
	int is_admin;
	int refs;
	unsigned follows; /* rooms joined by follow_space / follow_request */
	unsigned lookups; /* follows being looked up in the database */
	unsigned waiting; /* follows waiting for a lookup (in the list below) */
	base_list queue;  /* follow_ctx.link, oldest first */
	sio_socket *s;    /* NULL once disconnected */
} sp_browser;

static void browser_unref(sp_browser *b)
{
	if (--b->refs == 0)
		free(b);
}

/* The site's answer: who the browser is. */
static void identified(void *req, const sp_identity *id)
{
	sp_browser *b = req;
	sio_socket *s = b->s;
	if (id && id->user_id && strlen(id->user_id) < sizeof(b->user_id)) {
		snprintf(b->user_id, sizeof(b->user_id), "%s", id->user_id);
		b->is_admin = id->is_admin;
		if (id->session && strlen(id->session) <= 64)
			snprintf(b->session, sizeof(b->session), "session:%s", id->session);
	}
	if (!sio_socket_alive(s)) {
		/* Gone while we looked: no on_disconnect will come for it. */
		sio_socket_set_data(s, NULL);
		b->s = NULL;
		browser_unref(b);
	}
	sio_next(s);
	browser_unref(b);
}

static void authenticate(sio_socket *s, void *ud)
{
	sp_app *app = ud;
	if (app->opts.browser_origin_ok &&
	    !app->opts.browser_origin_ok(sio_handshake_header(s, "origin"),
	                                 sio_handshake_header(s, "sec-fetch-site"),
	                                 sio_handshake_header(s, "host"), app->opts.ud)) {
		const base_slice *o = sio_handshake_header(s, "origin");
		BASE_LOGW("spaces", "/spaces connection from %s refused: origin %.*s not allowed",
		          sio_handshake_address(s), o ? (int)BASE_MIN(o->len, 200) : 4,
		          o ? o->base : "none");
		sio_refuse(s, "Origin not allowed", NULL);
		return;
	}
	sp_browser *b = calloc(1, sizeof(*b));
	if (!b) {
		sio_refuse(s, "Server busy", NULL);
		return;
	}
	b->s = s;
	b->refs = 1;
	base_list_init(&b->queue);
	sio_socket_set_data(s, b);
	if (!app->browser_auth) {
		sio_next(s);
		return;
	}
	b->refs++;
	app->browser_auth(sio_handshake_header(s, "cookie"), identified, b, app->browser_auth_ud);
}

void sp_browser_auth_set(sp_app *app, sp_auth_fn fn, void *ud)
{
	app->browser_auth = fn;
	app->browser_auth_ud = ud;
}

static void on_connection(sio_socket *s, void *ud)
{
	(void)ud;
	sp_browser *b = sio_socket_data(s);
	if (b && b->user_id[0]) {
		char room[48];
		snprintf(room, sizeof(room), "user:%s", b->user_id);
		sio_join(s, room);
		if (b->session[0])
			sio_join(s, b->session);
	}
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
	(void)reason;
	(void)ud;
	sp_browser *b = sio_socket_data(s);
	if (!b)
		return;
	b->s = NULL;
	sio_socket_set_data(s, NULL);
	browser_unref(b);
}

/* The first argument as a short string, or NULL. */
static const char *first_string(const sio_event *ev, char *out, size_t cap)
{
	base_buf buf = BASE_BUF_INIT;
	base_buf_append(&buf, "[", 1);
	base_buf_append(&buf, ev->args.base, ev->args.len);
	base_buf_append(&buf, "]", 1);
	json_t *a = json_loadb(buf.data, buf.len, 0, NULL);
	base_buf_free(&buf);
	const char *v = json_string_value(json_array_get(a, 0));
	const char *r = NULL;
	if (v && strlen(v) < cap) {
		snprintf(out, cap, "%s", v);
		r = out;
	}
	json_decref(a);
	return r;
}

static void emit_space_state(sp_app *app, sio_socket *to, const char *space_id)
{
	char *text = sp__space_state_text(app, space_id);
	if (!text)
		return;
	base_slice args = {text, strlen(text)};
	if (to) {
		sio_emit(to, "space_state", args, NULL, 0);
	} else {
		char room[SP_ID_MAX + 8];
		snprintf(room, sizeof(room), "space:%s", space_id);
		sio_bcast b;
		sio_bcast_init(&b, app->browser_nsp);
		sio_bcast_to(&b, room);
		b.local = 1; /* every node tells its own browsers what it sees */
		sio_bcast_emit(&b, "space_state", args, NULL, 0);
	}
	free(text);
}

void sp__space_state(sp_app *app, const char *space_id)
{
	if (app->closed)
		return;
	emit_space_state(app, NULL, space_id);
}

/* The counts come from the database: every node's followers hear them from the node that read them. */
void sp__space_state_emit(sp_app *app, const char *space_id, const char *text)
{
	char room[SP_ID_MAX + 8];
	if (app->closed)
		return;
	snprintf(room, sizeof(room), "space:%s", space_id);
	sio_bcast b;
	sio_bcast_init(&b, app->browser_nsp);
	sio_bcast_to(&b, room);
	sio_bcast_emit(&b, "space_state", (base_slice){text, strlen(text)}, NULL, 0);
}

static void follow_answer(sio_socket *s, int64_t ack_id, int ok)
{
	if (ack_id >= 0)
		sio_ack(s, ack_id, ok ? BASE_SLICE_LIT("true") : BASE_SLICE_LIT("false"), NULL, 0);
}

/* Space ids are what the spaces table accepts: [A-Za-z0-9_-]{1,64}. */
static int space_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

typedef struct {
	base_list link; /* in sp_browser.queue while waiting */
	sp_app *app;
	sp_browser *b;
	int64_t ack_id;
	int is_space;
	char id[72]; /* a space id (at most 64) or a request id */
} follow_ctx;

static void follow_checked(const db_result *res, void *ud);

/* Starts the lookup of f; answers and frees it when it cannot start. */
static void follow_lookup(follow_ctx *f)
{
	static const char space_sql[] = "SELECT 1 FROM spaces WHERE id = $1";
	static const char request_sql[] = "SELECT user_id::text FROM requests WHERE id = $1";
	sp_browser *b = f->b;
	const char *params[1] = {f->id};
	if (db_query_owned(f->app->db, b, f->is_space ? space_sql : request_sql, 1, params,
	                   follow_checked, f)) {
		if (b->s)
			follow_answer(b->s, f->ack_id, 0);
		browser_unref(b);
		free(f);
		return;
	}
	b->lookups++;
}

/*
 * Joins the room of a space or request once the database said the socket may
 * follow it, then starts the next waiting lookup. The checks before the lookup
 * are made again: the socket may have followed other things, or gone.
 */
static void follow_checked(const db_result *res, void *ud)
{
	follow_ctx *f = ud;
	sp_browser *b = f->b;
	int ok = 0;
	b->lookups--;
	if (b->s && db_ok(res) && db_ntuples(res) == 1 &&
	    (f->is_space || b->is_admin || strcmp(db_value(res, 0, 0), b->user_id) == 0)) {
		char room[80];
		snprintf(room, sizeof(room), "%s:%s", f->is_space ? "space" : "req", f->id);
		if (sio_in_room(b->s, room)) {
			ok = 1;
		} else if (b->follows < SP_MAX_FOLLOWS && sio_join(b->s, room) == 0) {
			b->follows++;
			ok = 1;
		}
		if (ok && f->is_space) {
			emit_space_state(f->app, b->s, f->id);
			/* The counts come from the database: read them (again, in a
			 * cluster another node may have changed them). */
			sp__live_touch(f->app, f->id, 1);
		}
	}
	if (b->s)
		follow_answer(b->s, f->ack_id, ok);
	free(f);
	/* The next one (each holds its own reference to b). */
	while (!base_list_empty(&b->queue) && b->lookups < SP_MAX_FOLLOW_LOOKUPS) {
		follow_ctx *next = BASE_CONTAINER_OF(b->queue.next, follow_ctx, link);
		base_list_remove(&next->link);
		b->waiting--;
		if (b->s) {
			follow_lookup(next);
		} else {
			browser_unref(b);
			free(next);
		}
	}
	browser_unref(b);
}

static void follow(const sio_event *ev, sp_app *app, int is_space)
{
	sp_browser *b = sio_socket_data(ev->socket);
	follow_ctx *f = NULL;
	char id[sizeof(f->id)], room[80];
	if (!b || (!is_space && !b->user_id[0]) || !first_string(ev, id, sizeof(id)) ||
	    (is_space && !space_id_valid(id)))
		goto refuse;
	snprintf(room, sizeof(room), "%s:%s", is_space ? "space" : "req", id);
	if (sio_in_room(ev->socket, room)) {
		if (is_space)
			emit_space_state(app, ev->socket, id);
		follow_answer(ev->socket, ev->ack_id, 1);
		return;
	}
	/*
	 * Bounded: rooms per socket (those followed and those on their way), and
	 * database lookups per socket at once; the others wait their turn here.
	 */
	if (b->follows + b->lookups + b->waiting >= SP_MAX_FOLLOWS || !(f = calloc(1, sizeof(*f))))
		goto refuse;
	f->app = app;
	f->b = b;
	f->ack_id = ev->ack_id;
	f->is_space = is_space;
	snprintf(f->id, sizeof(f->id), "%s", id);
	b->refs++;
	if (b->lookups < SP_MAX_FOLLOW_LOOKUPS) {
		follow_lookup(f);
	} else {
		base_list_insert_tail(&b->queue, &f->link);
		b->waiting++;
	}
	return;
refuse:
	follow_answer(ev->socket, ev->ack_id, 0);
}

static void on_follow_space(const sio_event *ev, void *ud)
{
	follow(ev, ud, 1);
}

static void on_follow_request(const sio_event *ev, void *ud)
{
	follow(ev, ud, 0);
}

void sp__request_emit(sp_app *app, const char *user_id, const char *request_id, const char *text)
{
	char user_room[48], req_room[80];
	if (app->closed)
		return;
	snprintf(user_room, sizeof(user_room), "user:%s", user_id ? user_id : "");
	snprintf(req_room, sizeof(req_room), "req:%s", request_id);
	sio_bcast b;
	sio_bcast_init(&b, app->browser_nsp);
	if (user_id)
		sio_bcast_to(&b, user_room);
	sio_bcast_to(&b, req_room);
	sio_bcast_emit(&b, "request_update", (base_slice){text, strlen(text)}, NULL, 0);
}

/* ---- closing a session's or a user's sockets ---------------------------- */

/* Disconnects this process's sockets of the room, except those of the room except. */
static void close_local(sp_app *app, const char *room, const char *except)
{
	sio_bcast b;
	sio_bcast_init(&b, app->browser_nsp);
	sio_bcast_to(&b, room);
	if (except && *except)
		sio_bcast_except(&b, except);
	b.local = 1; /* every node hears the notification below and closes its own */
	int n = sio_bcast_disconnect(&b, 0);
	if (n > 0)
		BASE_LOGI("spaces", "closed %d browser socket(s) of %s", n, room);
}

static void close_everywhere(sp_app *app, const char *room, const char *except, const char *payload)
{
	if (app->closed)
		return;
	close_local(app, room, except);
	db_notify(app->db, SP_CLOSE_CHANNEL, payload, NULL, NULL);
}

/* A token hash or a user id: what may go into a room name and a payload. */
static int close_arg_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return 0;
	}
	return 1;
}

void sp_browser_disconnect_session(sp_app *app, const char *token_hash)
{
	char room[80], payload[96];
	if (!close_arg_ok(token_hash, 64))
		return;
	snprintf(room, sizeof(room), "session:%s", token_hash);
	snprintf(payload, sizeof(payload), "session %s", token_hash);
	close_everywhere(app, room, NULL, payload);
}

void sp_browser_disconnect_user(sp_app *app, const char *user_id, const char *keep_token_hash)
{
	char room[48], except[80] = "", payload[128];
	if (!close_arg_ok(user_id, 20))
		return;
	if (keep_token_hash && !close_arg_ok(keep_token_hash, 64))
		keep_token_hash = NULL;
	snprintf(room, sizeof(room), "user:%s", user_id);
	if (keep_token_hash)
		snprintf(except, sizeof(except), "session:%s", keep_token_hash);
	snprintf(payload, sizeof(payload), "user %s %s", user_id,
	         keep_token_hash ? keep_token_hash : "");
	close_everywhere(app, room, except, payload);
}

/* Another process (a node, or `spaces-server user ...`) asks: close ours too. */
static void on_close_notify(const char *channel, const char *payload, void *ud)
{
	sp_app *app = ud;
	char kind[16] = "", a[80] = "", b[80] = "", room[96], except[96] = "";
	(void)channel;
	if (app->closed || !payload || sscanf(payload, "%15s %79s %79s", kind, a, b) < 2)
		return;
	if (strcmp(kind, "session") == 0 && close_arg_ok(a, 64)) {
		snprintf(room, sizeof(room), "session:%s", a);
	} else if (strcmp(kind, "user") == 0 && close_arg_ok(a, 20)) {
		snprintf(room, sizeof(room), "user:%s", a);
		if (close_arg_ok(b, 64))
			snprintf(except, sizeof(except), "session:%s", b);
	} else {
		return;
	}
	close_local(app, room, except);
}

void sp__browser_close(sp_app *app)
{
	db_unlisten(app->db, SP_CLOSE_CHANNEL, on_close_notify, app);
}

void sp__browser_init(sp_app *app)
{
	if (db_listen(app->db, SP_CLOSE_CHANNEL, on_close_notify, app) != 0)
		BASE_LOGE("spaces",
		          "cannot listen to %s: sessions ended by other processes "
		          "keep their sockets",
		          SP_CLOSE_CHANNEL);
	app->browser_nsp = sio_of(app->io, "/spaces");
	sio_use(app->browser_nsp, authenticate, app);
	sio_on_connection(app->browser_nsp, on_connection, app);
	sio_on_disconnect(app->browser_nsp, on_disconnect, app);
	sio_on(app->browser_nsp, "follow_space", on_follow_space, app);
	sio_on(app->browser_nsp, "follow_request", on_follow_request, app);
}
