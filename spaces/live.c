/*
 * live.c: what a request's card and a space's badge show, kept live.
 *
 * The state of a request, as the card shows it (docs/protocol.md):
 *   queued      in its space's queue in the database; position = its place
 *               in that queue (1-based; the first LIVE_QUEUE_BOUND only)
 *   waiting     sent to an app that holds others sent before it and not yet
 *               answered (ahead = how many): an app works through what it
 *               holds in order, so it has not started this one
 *   processing  the app reported progress on it, or it is the oldest the
 *               app holds (what an app working one at a time works on)
 *   completed, failed, timeout, cancelled   final
 *
 * Everything is read from the database, so that every node of a cluster
 * says the same. When anything of a space changes (a request submitted,
 * sent, answered, requeued, timed out, cancelled; an app came or went),
 * one query reads the states of all its open requests, and the requests
 * whose state, position, ahead or notice differ from what this process
 * pushed last get a request_update; space_state goes out when the counts
 * changed. Changes coming faster are coalesced: at most one query per space
 * every LIVE_MIN_INTERVAL_MS. The same query, filtered to one request or a
 * user's recent ones, answers /websockets/status and the page's list, so
 * a card reloaded shows what the live one showed.
 *
 * A final document (completed, failed by its app, cancelled) never changes
 * again, on any node: retry makes a new request. The last FINALS_MAX of
 * them this process wrote or read (with a result of at most
 * FINALS_RESULT_MAX bytes) are kept, by request id, and answer
 * /websockets/status without a query (polling clients read a finished
 * request several times). A request failed by its deadline is not kept: a
 * result taken before the deadline may still complete it. The only way a
 * final request changes is its space's deletion, which every node hears of
 * (sp__access_check, and every space after the listener reconnects); the
 * space's entries are dropped then.
 *
 * Estimated wait: T is the median service time of the space's last 20
 * completed requests (at least 3, else no estimate), where a request's
 * service time runs from when its app could start it (sent to it, or the
 * app's previous completion, whichever is later) to its completion. Then:
 *   processing   T - time since it started, when positive
 *   waiting      ahead * T + what remains of the app's current one (>= 0)
 *   queued       (held + position) * T / apps, with apps connected
 * (held: requests the apps of the space hold). It assumes an app works on
 * one request at a time, as the reference app does.
 */
#include <math.h>
#include <stdlib.h>

#include "spaces_internal.h"

#define LIVE_MIN_INTERVAL_MS 250
/* Queued requests that get a position; and requests held by apps considered. */
#define LIVE_QUEUE_BOUND "1000"
/* Counts stop here (space_state says at least this many). */
#define LIVE_COUNT_BOUND "100000"
/* Final documents kept (a power of two: a direct-mapped table), and the
 * longest result text of one kept: at most ~12 MB in all, ~2 MB typically. */
#define FINALS_MAX 2048u
#define FINALS_RESULT_MAX 4096

struct sp_final_doc {
	char id[40];
	char space_id[40];
	char *doc; /* its JSON text, as sent; NULL: a free slot */
	size_t len;
};

/* How a request document is serialised, for browsers and HTTP alike. */
#define DOC_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

typedef struct sp_live_entry {
	char id[40];
	int state;
	int position;
	int ahead;
	uint32_t notice;
} sp_live_entry;

enum { ST_QUEUED, ST_WAITING, ST_PROCESSING, ST_COMPLETED, ST_FAILED, ST_TIMEOUT, ST_CANCELLED };
static const char *const state_names[] = {"queued", "waiting", "processing", "completed",
                                          "failed", "timeout", "cancelled"};

/* Columns after SP_REQ_COLS in the live statements. */
enum {
	C_POS = SP_REQ_NCOLS, /* place in the queue */
	C_AHEAD,              /* requests its app holds that were sent before it */
	C_HEAD_ELAPSED,       /* seconds its app has worked on its current one */
	C_OWN_ELAPSED,        /* seconds since it could start */
	C_T,                  /* median service time, NULL with fewer than 3 */
	C_TN,                 /* samples */
	C_HELD,               /* requests held by the space's apps */
	C_QUEUED,             /* requests queued */
	C_NCOLS
};

/*
 * The statements share everything up to the filter of "o", the requests
 * whose rows come out; $1 is the space (NULL: the space of request $2 when
 * it is open, so a final one costs nothing more).
 */
#define LIVE_SQL_HEAD                                                                             \
	"WITH sp AS (SELECT coalesce($1::text, (SELECT space_id FROM requests WHERE id = $2 "     \
	"AND status IN ('queued', 'processing'))) AS id), "                                       \
	"q AS (SELECT id, row_number() OVER (ORDER BY created_at, id) AS pos FROM (SELECT id, "   \
	"created_at FROM requests WHERE space_id = (SELECT id FROM sp) AND status = 'queued' "    \
	"ORDER BY created_at, id LIMIT " LIVE_QUEUE_BOUND ") x), "                                \
	"qn AS (SELECT count(*) AS n FROM (SELECT 1 FROM requests WHERE space_id = (SELECT id "   \
	"FROM sp) AND status = 'queued' LIMIT " LIVE_COUNT_BOUND ") x), "                         \
	"h AS (SELECT id, connection_id, started_at, row_number() OVER (PARTITION BY "            \
	"connection_id ORDER BY started_at, created_at, id) - 1 AS ahead FROM (SELECT id, "       \
	"connection_id, started_at, created_at FROM requests WHERE space_id = (SELECT id FROM "   \
	"sp) AND status = 'processing' ORDER BY started_at, created_at, id "                      \
	"LIMIT " LIVE_QUEUE_BOUND ") x), "                                                        \
	"hn AS (SELECT count(*) AS n FROM (SELECT 1 FROM requests WHERE space_id = (SELECT id "   \
	"FROM sp) AND status = 'processing' LIMIT " LIVE_COUNT_BOUND ") x), "                     \
	"c AS (SELECT connection_id, started_at, finished_at FROM requests WHERE space_id = "     \
	"(SELECT id FROM sp) AND status = 'completed' AND finished_at IS NOT NULL AND "           \
	"started_at IS NOT NULL ORDER BY finished_at DESC LIMIT 21), "                            \
	"cs AS (SELECT EXTRACT(EPOCH FROM finished_at - GREATEST(started_at, lag(finished_at) "   \
	"OVER (PARTITION BY connection_id ORDER BY finished_at)))::float8 AS svc, row_number() "  \
	"OVER (ORDER BY finished_at DESC) AS rn FROM c), "                                        \
	"t AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY svc) AS median, count(*) AS n " \
	"FROM cs WHERE rn <= 20 AND svc > 0), "                                                   \
	"lf AS (SELECT connection_id, max(finished_at) AS at FROM c GROUP BY connection_id), "    \
	"hd AS (SELECT h.connection_id, EXTRACT(EPOCH FROM now() - GREATEST(h.started_at, "       \
	"lf.at))::float8 AS elapsed FROM h LEFT JOIN lf ON lf.connection_id = h.connection_id "   \
	"WHERE h.ahead = 0), "                                                                    \
	"o AS (SELECT " SP_REQ_COLS ", q.pos, h.ahead, hd.elapsed, EXTRACT(EPOCH FROM now() - "   \
	"GREATEST(r.started_at, lf.at))::float8 AS own FROM requests r LEFT JOIN q ON q.id = "    \
	"r.id LEFT JOIN h ON h.id = r.id LEFT JOIN hd ON hd.connection_id = h.connection_id "     \
	"LEFT JOIN lf ON lf.connection_id = h.connection_id WHERE "
#define LIVE_SQL_TAIL                                                                             \
	") SELECT o.*, t.median, t.n, hn.n, qn.n FROM t CROSS JOIN hn CROSS JOIN qn LEFT JOIN o " \
	"ON true"

/* Every open request of space $1 (and one row of counts when there is none). */
static const char space_sql[] =
    LIVE_SQL_HEAD "r.id IN (SELECT id FROM q UNION ALL SELECT id FROM h)" LIVE_SQL_TAIL;
/* Request $2 (a row of NULLs when there is no such request). */
static const char one_sql[] = LIVE_SQL_HEAD "r.id = $2" LIVE_SQL_TAIL;
/* The 20 newest requests of user $3 in space $1. */
static const char list_sql[] = LIVE_SQL_HEAD
    "r.space_id = $1 AND r.user_id = $3::bigint ORDER BY r.created_at DESC LIMIT 20" LIVE_SQL_TAIL
    " ORDER BY o.created_at DESC";

/* ---- documents --------------------------------------------------------------- */

static json_t *json_text_or_null(const db_result *res, int row, int col)
{
	if (db_isnull(res, row, col))
		return json_null();
	json_t *v = json_loads(db_value(res, row, col), JSON_DECODE_ANY, NULL);
	return v ? v : json_null();
}

static int int_or(const db_result *res, int row, int col, int dflt)
{
	return db_isnull(res, row, col) ? dflt : atoi(db_value(res, row, col));
}

static double real_or(const db_result *res, int row, int col, double dflt)
{
	return db_isnull(res, row, col) ? dflt : atof(db_value(res, row, col));
}

static uint32_t text_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return s ? h | 1 : 0;
}

typedef struct {
	int state, position, ahead, eta;
} live_view;

/* The state of a request from its status and, when live, where it stands. */
static void view_of(sp_app *app, const db_result *res, int row, int live, live_view *v)
{
	const char *status = db_value(res, row, 3);
	v->position = v->ahead = v->eta = -1;
	if (strcmp(status, "queued") == 0) {
		v->state = ST_QUEUED;
		if (live)
			v->position = int_or(res, row, C_POS, -1);
	} else if (strcmp(status, "processing") == 0) {
		int progressed = strcmp(db_value(res, row, 11), "t") == 0;
		v->ahead = live ? int_or(res, row, C_AHEAD, -1) : -1;
		v->state = progressed || v->ahead == 0 ? ST_PROCESSING : ST_WAITING;
		if (v->state == ST_PROCESSING)
			v->ahead = -1;
	} else if (strcmp(status, "completed") == 0) {
		v->state = ST_COMPLETED;
	} else if (strcmp(status, "cancelled") == 0) {
		v->state = ST_CANCELLED;
	} else {
		json_t *r = json_text_or_null(res, row, 4);
		const char *reason = json_string_value(json_object_get(r, "reason"));
		v->state = reason && strcmp(reason, "timeout") == 0 ? ST_TIMEOUT : ST_FAILED;
		json_decref(r);
	}
	if (!live || db_isnull(res, row, C_T) || atoi(db_value(res, row, C_TN)) < 3)
		return;
	double t = atof(db_value(res, row, C_T)), eta = -1;
	if (v->state == ST_PROCESSING) {
		eta = t - real_or(res, row, C_OWN_ELAPSED, 0);
		if (eta <= 0)
			eta = -1; /* longer than usual: no honest guess */
	} else if (v->state == ST_WAITING && v->ahead >= 0) {
		double left = t - real_or(res, row, C_HEAD_ELAPSED, 0);
		eta = v->ahead * t + (left > 0 ? left : 0);
	} else if (v->state == ST_QUEUED && v->position > 0) {
		unsigned apps = sp_space_apps(app, db_value(res, row, 2));
		if (apps)
			eta = (atof(db_value(res, row, C_HELD)) + v->position) * t / apps;
	}
	if (eta >= 0)
		v->eta = (int)ceil(eta);
}

/* The document of a request, as request_update, /websockets/status and the list give it. */
static json_t *doc_of(sp_app *app, const db_result *res, int row, int live, live_view *v)
{
	view_of(app, res, row, live, v);
	const char *status = db_value(res, row, 3);
	/* Polling scripts know queued|processing|completed|failed: the rest is a failure. */
	const char *compat = v->state == ST_CANCELLED ? "failed" : status;
	json_t *d = json_pack(
	    "{s:s,s:s,s:s,s:s,s:o,s:i,s:s,s:s}", "request_id", db_value(res, row, 0), "space_id",
	    db_value(res, row, 2), "status", compat, "state", state_names[v->state], "result",
	    json_text_or_null(res, row, 4), "progress", int_or(res, row, 5, 0), "created_at",
	    db_value(res, row, 7), "updated_at", db_value(res, row, 8));
	if (!d)
		return NULL;
	if (v->state == ST_TIMEOUT)
		json_object_set_new(d, "reason", json_string("timeout"));
	else if (v->state == ST_CANCELLED)
		json_object_set_new(d, "reason", json_string("cancelled"));
	if (!db_isnull(res, row, 6))
		json_object_set_new(d, "message", json_string(db_value(res, row, 6)));
	/* A notice says why the request is queued again, or that it timed out:
	 * once it has gone on (to an app, to its result) it would be stale. */
	if (!db_isnull(res, row, 9) && (v->state == ST_QUEUED || v->state == ST_TIMEOUT))
		json_object_set_new(d, "notice", json_string(db_value(res, row, 9)));
	if (!db_isnull(res, row, 10) && v->state >= ST_COMPLETED)
		json_object_set_new(d, "processing_time_seconds",
		                    json_real(atof(db_value(res, row, 10))));
	if (v->position > 0)
		json_object_set_new(d, "position", json_integer(v->position));
	if (v->ahead >= 0)
		json_object_set_new(d, "ahead", json_integer(v->ahead));
	if (v->eta >= 0)
		json_object_set_new(d, "eta_seconds", json_integer(v->eta));
	return d;
}

json_t *sp__request_doc(sp_app *app, const db_result *res, int row, int live)
{
	live_view v;
	return doc_of(app, res, row, live, &v);
}

/* ---- final documents -------------------------------------------------------------- */

static struct sp_final_doc *finals_slot(sp_app *app, const char *id)
{
	if (!app->finals) {
		app->finals = calloc(FINALS_MAX, sizeof(*app->finals));
		if (!app->finals)
			return NULL;
	}
	return &app->finals[text_hash(id) & (FINALS_MAX - 1)];
}

/* Keeps text, the document of row, when it is final for good. */
static void finals_keep(sp_app *app, const db_result *res, int row, const live_view *v,
                        const char *text)
{
	const char *id = db_value(res, row, 0), *space = db_value(res, row, 2);
	if (!text || app->closed ||
	    (v->state != ST_COMPLETED && v->state != ST_FAILED && v->state != ST_CANCELLED))
		return;
	if (strlen(id) >= sizeof(app->finals->id) ||
	    strlen(space) >= sizeof(app->finals->space_id) ||
	    (!db_isnull(res, row, 4) && strlen(db_value(res, row, 4)) > FINALS_RESULT_MAX))
		return;
	struct sp_final_doc *f = finals_slot(app, id);
	char *copy = f ? strdup(text) : NULL;
	if (!copy)
		return;
	free(f->doc);
	snprintf(f->id, sizeof(f->id), "%s", id);
	snprintf(f->space_id, sizeof(f->space_id), "%s", space);
	f->doc = copy;
	f->len = strlen(copy);
}

static const struct sp_final_doc *finals_find(sp_app *app, const char *id)
{
	struct sp_final_doc *f = app->finals ? finals_slot(app, id) : NULL;
	return f && f->doc && strcmp(f->id, id) == 0 ? f : NULL;
}

void sp__finals_drop(sp_app *app, const char *space_id)
{
	if (!app->finals)
		return;
	app->finals_gen++;
	for (unsigned i = 0; i < FINALS_MAX; i++) {
		struct sp_final_doc *f = &app->finals[i];
		if (f->doc && (!space_id || strcmp(f->space_id, space_id) == 0)) {
			free(f->doc);
			f->doc = NULL;
		}
	}
}

/* Sends the document to its browsers; returns its text (the caller frees it). */
static char *push_doc(sp_app *app, const db_result *res, int row, json_t *d)
{
	char *text = d ? json_dumps(d, DOC_JSON_FLAGS) : NULL;
	if (text)
		sp__request_emit(app, db_isnull(res, row, 1) ? NULL : db_value(res, row, 1),
		                 db_value(res, row, 0), text);
	return text;
}

void sp__request_push(sp_app *app, const db_result *res, int row)
{
	if (app->closed)
		return;
	live_view v;
	json_t *d = doc_of(app, res, row, 0, &v);
	char *text = push_doc(app, res, row, d);
	finals_keep(app, res, row, &v, text);
	free(text);
	json_decref(d);
}

/* ---- space_state --------------------------------------------------------------- */

char *sp__space_state_text(sp_app *app, const char *space_id)
{
	sp_space *sp = sp__space_get(app, space_id, 0);
	unsigned n = sp_space_apps(app, space_id);
	json_t *st =
	    json_pack("{s:s,s:b,s:i}", "space_id", space_id, "connected", n > 0, "apps", (int)n);
	if (st && sp && sp->have_counts) {
		json_object_set_new(st, "queued", json_integer(sp->queued));
		json_object_set_new(st, "processing", json_integer(sp->processing));
		if (sp->eta >= 0 && n > 0)
			json_object_set_new(st, "eta_seconds", json_integer(sp->eta));
	}
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	json_decref(st);
	return text;
}

/* ---- recomputing a space -------------------------------------------------------- */

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const sp_live_entry *)a)->id, ((const sp_live_entry *)b)->id);
}

static void live_run(sp_app *app, sp_space *sp);
static void live_arm(sp_app *app);

typedef struct {
	sp_app *app;
	sp_space *sp;
} live_ctx;

static void live_read(const db_result *res, void *ud)
{
	live_ctx *l = ud;
	sp_app *app = l->app;
	sp_space *sp = l->sp;
	free(l);
	sp->live_busy = 0;
	if (app->closed)
		return;
	if (!db_ok(res)) {
		BASE_LOGW("spaces", "reading the state of space %s failed: %s", sp->id,
		          db_error(res));
		sp->live_dirty = 1; /* tried again at the next change */
		return;
	}
	int n = db_ntuples(res);
	sp_live_entry *now = n ? calloc((size_t)n, sizeof(*now)) : NULL;
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		if (db_isnull(res, i, 0) || strlen(db_value(res, i, 0)) >= sizeof(now[0].id))
			continue;
		live_view v;
		json_t *d = doc_of(app, res, i, 1, &v);
		if (!d)
			continue;
		sp_live_entry e = {{0},
		                   v.state,
		                   v.position,
		                   v.ahead,
		                   text_hash(db_isnull(res, i, 9) ? NULL : db_value(res, i, 9))};
		snprintf(e.id, sizeof(e.id), "%s", db_value(res, i, 0));
		const sp_live_entry *was =
		    sp->seen ? bsearch(&e, sp->seen, sp->n_seen, sizeof(e), entry_cmp) : NULL;
		if (!was || was->state != e.state || was->position != e.position ||
		    was->ahead != e.ahead || was->notice != e.notice)
			free(push_doc(app, res, i, d));
		json_decref(d);
		if (now)
			now[k++] = e;
	}
	if (now)
		qsort(now, k, sizeof(*now), entry_cmp);
	free(sp->seen);
	sp->seen = now;
	sp->n_seen = now ? k : 0;

	/* The counts and the wait of a new request. */
	unsigned queued = n ? (unsigned)strtoul(db_value(res, 0, C_QUEUED), NULL, 10) : 0;
	unsigned held = n ? (unsigned)strtoul(db_value(res, 0, C_HELD), NULL, 10) : 0;
	int eta = -1;
	unsigned apps = sp_space_apps(app, sp->id);
	if (n && !db_isnull(res, 0, C_T) && atoi(db_value(res, 0, C_TN)) >= 3 && apps)
		eta = (int)ceil((held + queued + 1) * atof(db_value(res, 0, C_T)) / apps);
	int changed = !sp->have_counts || sp->queued != queued || sp->processing != held;
	sp->have_counts = 1;
	sp->queued = queued;
	sp->processing = held;
	sp->eta = eta;
	if (changed || sp->live_force) {
		sp->live_force = 0;
		char *text = sp__space_state_text(app, sp->id);
		if (text)
			sp__space_state_emit(app, sp->id, text);
		free(text);
	}
	if (sp->live_dirty)
		live_arm(app);
}

static void live_run(sp_app *app, sp_space *sp)
{
	live_ctx *l = calloc(1, sizeof(*l));
	if (!l)
		return;
	l->app = app;
	l->sp = sp;
	sp->live_dirty = 0;
	sp->live_last = uv_now(sio_server_loop(app->io));
	const char *params[3] = {sp->id, NULL, NULL};
	if (db_query(app->db, space_sql, 2, params, live_read, l)) {
		free(l);
		sp->live_dirty = 1;
		return;
	}
	sp->live_busy = 1;
}

/* Runs the recomputes that are due; arms the timer for the others. */
static void live_tick(uv_timer_t *t)
{
	sp_app *app = t->data;
	app->live_timer_on = 0;
	if (app->closed)
		return;
	uint64_t now = uv_now(sio_server_loop(app->io));
	for (sp_space *sp = app->spaces; sp; sp = sp->next) {
		if (sp->live_dirty && !sp->live_busy && now >= sp->live_last + LIVE_MIN_INTERVAL_MS)
			live_run(app, sp);
	}
	live_arm(app);
}

static void live_arm(sp_app *app)
{
	if (app->closed || app->live_timer_on)
		return;
	uint64_t now = uv_now(sio_server_loop(app->io)), due = UINT64_MAX;
	for (sp_space *sp = app->spaces; sp; sp = sp->next) {
		if (!sp->live_dirty || sp->live_busy)
			continue;
		uint64_t at = sp->live_last + LIVE_MIN_INTERVAL_MS;
		if (at < due)
			due = at;
	}
	if (due == UINT64_MAX)
		return;
	uv_timer_start(&app->live_timer, live_tick, due > now ? due - now : 0, 0);
	app->live_timer_on = 1;
}

void sp__live_touch(sp_app *app, const char *space_id, int follower)
{
	if (app->closed)
		return;
	sp_space *sp = sp__space_get(app, space_id, 1);
	if (!sp)
		return;
	/*
	 * A new follower was told the counts last read. With one process they
	 * are current (every change here reads them again); in a cluster another
	 * node may have changed them since.
	 */
	if (follower && sp->have_counts && !app->opts.node_id)
		return;
	sp->live_dirty = 1;
	if (follower && !sp->have_counts)
		sp->live_force = 1; /* it was told no counts yet */
	uint64_t now = uv_now(sio_server_loop(app->io));
	/* The first change is told at once; those after it wait their turn. */
	if (!sp->live_busy && now >= sp->live_last + LIVE_MIN_INTERVAL_MS)
		live_run(app, sp);
	else
		live_arm(app);
}

void sp__live_init(sp_app *app)
{
	uv_timer_init(sio_server_loop(app->io), &app->live_timer);
	app->live_timer.data = app;
}

void sp__live_close(sp_app *app)
{
	uv_close((uv_handle_t *)&app->live_timer, NULL);
	sp__finals_drop(app, NULL);
	free(app->finals);
	app->finals = NULL;
}

void sp__live_free_space(sp_space *sp)
{
	free(sp->seen);
	sp->seen = NULL;
	sp->n_seen = 0;
}

/* ---- answering one request, or a user's list --------------------------------------- */

typedef struct {
	sp_app *app;
	sp_json_cb cb;
	void *ud;
	int list;
	uint64_t finals_gen; /* at the start: a space deleted meanwhile keeps nothing */
} read_ctx;

static void read_done(const db_result *res, void *ud)
{
	read_ctx *r = ud;
	json_t *body = NULL;
	int code = 200;
	if (!db_ok(res)) {
		BASE_LOGE("spaces", "reading requests failed: %s", db_error(res));
		code = 500;
		body = json_pack("{s:s}", "error", "Server error");
	} else if (r->list) {
		json_t *arr = json_array();
		for (int i = 0; i < db_ntuples(res); i++)
			if (!db_isnull(res, i, 0))
				json_array_append_new(arr, sp__request_doc(r->app, res, i, 1));
		body = json_pack("{s:o}", "requests", arr);
	} else if (db_ntuples(res) != 1 || db_isnull(res, 0, 0)) {
		code = 404;
		body = json_pack("{s:s}", "error", "Request not found");
	} else {
		live_view v;
		body = doc_of(r->app, res, 0, 1, &v);
		if (body && r->finals_gen == r->app->finals_gen) {
			char *text = json_dumps(body, DOC_JSON_FLAGS);
			finals_keep(r->app, res, 0, &v, text);
			free(text);
		}
	}
	if (!body) {
		code = 500;
		body = json_pack("{s:s}", "error", "Out of memory");
	}
	r->cb(code, body, r->ud);
	json_decref(body);
	free(r);
}

/* one_sql takes $1 and $2; list_sql also $3, the user. */
static void read_start(sp_app *app, const char *sql, const char *const params[3], int list,
                       sp_json_cb cb, void *ud)
{
	read_ctx *r = calloc(1, sizeof(*r));
	if (r) {
		r->app = app;
		r->cb = cb;
		r->ud = ud;
		r->list = list;
		r->finals_gen = app->finals_gen;
		if (db_query(app->db, sql, list ? 3 : 2, params, read_done, r) == 0)
			return;
	}
	free(r);
	json_t *body = json_pack("{s:s}", "error", "Server busy");
	cb(503, body, ud);
	json_decref(body);
}

void sp_request_status_text(sp_app *app, const char *request_id, sp_text_cb text, sp_json_cb cb,
                            void *ud)
{
	if (strlen(request_id) >= 64) {
		json_t *body = json_pack("{s:s}", "error", "Request not found");
		cb(404, body, ud);
		json_decref(body);
		return;
	}
	const struct sp_final_doc *f = finals_find(app, request_id);
	if (f) {
		app->finals_hits++;
		if (text) {
			text(f->doc, f->len, ud);
			return;
		}
		json_t *doc = json_loadb(f->doc, f->len, 0, NULL);
		if (doc) {
			cb(200, doc, ud);
			json_decref(doc);
			return;
		}
	}
	const char *params[3] = {NULL, request_id, NULL};
	read_start(app, one_sql, params, 0, cb, ud);
}

void sp_request_status(sp_app *app, const char *request_id, sp_json_cb cb, void *ud)
{
	sp_request_status_text(app, request_id, NULL, cb, ud);
}

void sp_request_list(sp_app *app, const char *space_id, const char *user_id, sp_json_cb cb,
                     void *ud)
{
	const char *params[3] = {space_id, NULL, user_id};
	read_start(app, list_sql, params, 1, cb, ud);
}
