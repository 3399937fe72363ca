/*
 * nodes.c: several spaces-server processes on one database (cluster mode,
 * sp_options.node_id).
 *
 * - Liveness: every sweep a node writes its row in `nodes`. A node not
 *   seen for node_timeout_s is dead: the first other node to notice deletes
 *   its row, marks its apps disconnected and returns the requests they held
 *   to the queue, and tells the nodes. A node that finds its own row gone
 *   was taken for dead (it lost the database for too long): it disconnects
 *   its apps, which register again, so nothing is held twice. Only a node
 *   that has itself been beating without a gap for a whole timeout judges
 *   the others, so the database being away for a while kills nobody.
 * - Presence: how many apps each space has on the other live nodes is read
 *   from app_connections after every change another node announces on the
 *   channel "spaces_changed" (payload: the space id), and every sweep.
 * - Dispatch: a node that has an app of the announced space drains its
 *   queue (SKIP LOCKED: two nodes never take the same request); requests
 *   queued for an app elsewhere are announced on "spaces_queued", which
 *   does not make anyone read the presence again.
 * - Access: a change of who may register for a space is announced on
 *   "spaces_access" (payload: the space id); each node reads the space
 *   again and disconnects its own apps that no longer qualify.
 * - Browsers: "/spaces" broadcasts go to the other nodes (cluster.c).
 */
#include <stdlib.h>

#include "cluster.h"
#include "spaces_internal.h"

const char *sp__node_id(const sp_app *app)
{
	return app->opts.node_id ? app->opts.node_id : "";
}

void sp__nodes_tell(sp_app *app, const char *space_id)
{
	if (app->opts.node_id && !app->closed)
		db_notify(app->db, SP_NODES_CHANNEL, space_id, NULL, NULL);
}

void sp__nodes_tell_access(sp_app *app, const char *space_id)
{
	if (app->opts.node_id && !app->closed)
		db_notify(app->db, SP_ACCESS_CHANNEL, space_id, NULL, NULL);
}

void sp__nodes_tell_queued(sp_app *app, const char *space_id)
{
	if (app->opts.node_id && !app->closed)
		db_notify(app->db, SP_QUEUE_CHANNEL, space_id, NULL, NULL);
}

void sp__nodes_tell_cancel(sp_app *app, const char *request_id)
{
	if (app->opts.node_id && !app->closed)
		db_notify(app->db, SP_CANCEL_CHANNEL, request_id, NULL, NULL);
}

/* A request was cancelled on another node: if an app here holds it, it is told. */
static void on_cancel(const char *channel, const char *payload, void *ud)
{
	sp_app *app = ud;

	(void)channel;
	if (!app->closed && payload != NULL)
		sp__held_cancel(app, payload);
}

/* ---- presence ---------------------------------------------------------------- */

static void presence_refresh(sp_app *app);

static void presence_read(const db_result *res, void *ud)
{
	sp_app *app = ud;

	app->presence_busy = 0;
	if (app->closed)
		return;
	if (!db_ok(res)) {
		BASE_LOGW("spaces", "reading the apps of the other nodes failed: %s",
		          db_error(res));
	} else {
		int n = db_ntuples(res);
		/* Spaces that no longer appear have no remote app left. */
		for (sp_space *sp = app->spaces; sp; sp = sp->next) {
			unsigned remote = 0;

			for (int i = 0; i < n; i++) {
				if (strcmp(db_value(res, i, 0), sp->id) == 0)
					remote = (unsigned)strtoul(db_value(res, i, 1), NULL, 10);
			}
			if (remote != sp->n_remote) {
				sp->n_remote = remote;
				sp__space_changed(app, sp->id);
			}
		}
		for (int i = 0; i < n; i++) {
			sp_space *sp = sp__space_get(app, db_value(res, i, 0), 0);

			if (sp == NULL &&
			    (sp = sp__space_get(app, db_value(res, i, 0), 1)) != NULL) {
				sp->n_remote = (unsigned)strtoul(db_value(res, i, 1), NULL, 10);
				sp__space_changed(app, sp->id);
			}
		}
	}
	if (app->presence_dirty) {
		app->presence_dirty = 0;
		presence_refresh(app);
	}
}

/* One query at a time; asked again meanwhile, it runs once more after. */
static void presence_refresh(sp_app *app)
{
	static const char sql[] =
	    "SELECT c.space_id, count(*) FROM app_connections c JOIN nodes n ON n.id = c.node_id "
	    "WHERE c.disconnected_at IS NULL AND c.node_id <> $1 "
	    "AND n.seen_at > now() - make_interval(secs => $2::int) GROUP BY c.space_id";
	char timeout[16];
	const char *params[2] = {app->opts.node_id, timeout};

	if (app->closed)
		return;
	if (app->presence_busy) {
		app->presence_dirty = 1;
		return;
	}
	snprintf(timeout, sizeof(timeout), "%u", app->opts.node_timeout_s);
	if (db_query(app->db, sql, 2, params, presence_read, app) == 0)
		app->presence_busy = 1;
}

/*
 * Both channels: the node with an app of the space drains its queue; only
 * a change of apps needs the presence read again (queued requests, the
 * busy channel, do not).
 */
static void on_changed(const char *channel, const char *payload, void *ud)
{
	sp_app *app = ud;

	if (app->closed)
		return;
	if (payload == NULL || strcmp(channel, SP_NODES_CHANNEL) == 0)
		presence_refresh(app);
	if (payload == NULL) {
		/* Listening again: what was announced meanwhile is read afresh. */
		for (sp_space *sp = app->spaces; sp; sp = sp->next) {
			if (sp->n_apps)
				sp__drain(app, sp->id);
		}
	} else {
		sp_space *sp = sp__space_get(app, payload, 0);

		if (sp && sp->n_apps)
			sp__drain(app, sp->id);
	}
}

/*
 * A space's access changed on some node (maybe this one, which has checked
 * its apps already: checking again finds nothing more to do). Listening
 * again after a lost connection, every space with apps here is checked, in
 * case a change was announced meanwhile.
 */
static void on_access(const char *channel, const char *payload, void *ud)
{
	sp_app *app = ud;

	(void)channel;
	if (app->closed)
		return;
	if (payload != NULL) {
		sp__access_check(app, payload);
		return;
	}
	sp__finals_drop(app, NULL); /* a deletion may have gone unheard */
	for (sp_space *sp = app->spaces; sp; sp = sp->next) {
		if (sp->n_apps)
			sp__access_check(app, sp->id);
	}
}

/* ---- heartbeat and dead nodes ------------------------------------------------ */

static void beaten(const db_result *res, void *ud)
{
	sp_app *app = ud;

	app->beating = 0;
	if (app->closed)
		return;
	if (!db_ok(res)) {
		BASE_LOGW("spaces", "node heartbeat failed: %s", db_error(res));
		return;
	}
	/* inserted (our row was missing), the spaces whose requests came back, dead nodes */
	int inserted = strcmp(db_value(res, 0, 0), "t") == 0;
	if (inserted && app->beats > 0) {
		unsigned n = 0;

		for (sp_space *sp = app->spaces; sp; sp = sp->next) {
			base_list *pos, *tmp;

			base_list_foreach_safe(pos, tmp, &sp->apps)
			{
				sp_conn *c = BASE_CONTAINER_OF(pos, sp_conn, link);

				if (c->s) {
					sio_disconnect(c->s);
					n++;
				}
			}
		}
		BASE_LOGW("spaces",
		          "node %s was taken for dead by the others (no heartbeat for %u s): "
		          "its %u app(s) are disconnected to register again",
		          app->opts.node_id, app->opts.node_timeout_s, n);
	}
	/* Since our last heartbeat, another process wrote its own: it has our id. */
	if (app->beats > 0 && !inserted && !db_isnull(res, 0, 3) &&
	    strcmp(db_value(res, 0, 3), app->instance) != 0 && app->clashes++ % 30 == 0)
		BASE_LOGE("spaces",
		          "another process runs with --node-id %s: each process needs its own "
		          "(they would take each other's apps for dead and requeue their requests)",
		          app->opts.node_id);
	app->beats++;
	if (!db_isnull(res, 0, 2))
		BASE_LOGW("spaces", "node(s) %s not seen for %u s: their apps are gone",
		          db_value(res, 0, 2), app->opts.node_timeout_s);
	if (!db_isnull(res, 0, 1)) {
		char *list = strdup(db_value(res, 0, 1)), *save = NULL;

		for (char *id = list ? strtok_r(list, ",", &save) : NULL; id;
		     id = strtok_r(NULL, ",", &save)) {
			BASE_LOGI("spaces",
			          "requests of a dead node's apps queued again (space %s)", id);
			sp__nodes_tell(app, id);
			sp__space_changed(app, id);
			sp_space *sp = sp__space_get(app, id, 0);

			if (sp && sp->n_apps)
				sp__drain(app, id);
		}
		free(list);
	}
	presence_refresh(app);
}

void sp__nodes_tick(sp_app *app)
{
	static const char sql[] =
	    "WITH prev AS (SELECT instance, seen_at, up_since FROM nodes WHERE id = $1), "
	    "hb AS (INSERT INTO nodes (id, seen_at, instance, up_since) VALUES ($1, now(), $3, "
	    "now()) "
	    "ON CONFLICT (id) DO UPDATE SET seen_at = now(), instance = $3, "
	    "up_since = CASE WHEN nodes.seen_at > now() - interval '2500 ms' "
	    "THEN nodes.up_since ELSE now() END "
	    "RETURNING (xmax = 0) AS inserted), "
	    "dead AS (DELETE FROM nodes WHERE id <> $1 "
	    "AND seen_at < now() - make_interval(secs => $2::int) "
	    "AND EXISTS (SELECT 1 FROM prev WHERE seen_at > now() - interval '2500 ms' "
	    "AND up_since < now() - make_interval(secs => $2::int)) "
	    "RETURNING id), "
	    "c AS (UPDATE app_connections SET disconnected_at = now() "
	    "WHERE disconnected_at IS NULL AND node_id IN (SELECT id FROM dead) RETURNING id), "
	    "r AS (UPDATE requests SET status = 'queued', connection_id = NULL, updated_at = "
	    "now(), "
	    "notice = '" SP_NOTICE_REQUEUED "' "
	    "WHERE status = 'processing' AND connection_id IN (SELECT id FROM c) "
	    "RETURNING space_id) "
	    "SELECT (SELECT inserted FROM hb), (SELECT string_agg(DISTINCT space_id, ',') FROM r), "
	    "(SELECT string_agg(id, ',') FROM dead), (SELECT instance FROM prev)";
	/*
	 * Others are judged only by a node that has itself been beating without
	 * a gap for a whole node timeout, as the database sees it when the
	 * statement runs (it may have waited in the queue while the database was
	 * away): silence is only seen by a node that was there to see it. After
	 * an outage every row is old, and the others get a full timeout to come
	 * back before anyone takes them for dead.
	 */
	char timeout[16];
	const char *params[3] = {app->opts.node_id, timeout, app->instance};

	if (!app->opts.node_id || app->closed || app->beating)
		return;
	snprintf(timeout, sizeof(timeout), "%u", app->opts.node_timeout_s);
	if (db_query(app->db, sql, 3, params, beaten, app) == 0)
		app->beating = 1;
}

/* ---- life -------------------------------------------------------------------- */

int sp__nodes_start(sp_app *app)
{
	int rc;

	if (!app->opts.node_id)
		return 0;
	if (app->opts.node_timeout_s == 0)
		app->opts.node_timeout_s = 10;
	unsigned char r[8];
	base_random_bytes(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(app->instance + 2 * i, 3, "%02x", r[i]);
	app->cluster = sp_cluster_new(app->db, sio_server_loop(app->io));
	if (app->cluster == NULL)
		return BASE_ENOMEM;
	rc = sp_cluster_attach(app->cluster, app->browser_nsp);
	if (rc == 0)
		rc = db_listen(app->db, SP_NODES_CHANNEL, on_changed, app);
	if (rc == 0)
		rc = db_listen(app->db, SP_QUEUE_CHANNEL, on_changed, app);
	if (rc == 0)
		rc = db_listen(app->db, SP_ACCESS_CHANNEL, on_access, app);
	if (rc == 0)
		rc = db_listen(app->db, SP_CANCEL_CHANNEL, on_cancel, app);
	if (rc == 0)
		sp__nodes_tick(app);
	return rc;
}

int sp_app_share_namespace(sp_app *app, sio_namespace *nsp)
{
	return app->cluster ? sp_cluster_attach(app->cluster, nsp) : 0;
}

void sp__nodes_stop(sp_app *app)
{
	if (!app->opts.node_id)
		return;
	db_unlisten(app->db, SP_NODES_CHANNEL, on_changed, app);
	db_unlisten(app->db, SP_QUEUE_CHANNEL, on_changed, app);
	db_unlisten(app->db, SP_ACCESS_CHANNEL, on_access, app);
	db_unlisten(app->db, SP_CANCEL_CHANNEL, on_cancel, app);
	sp_cluster_free(app->cluster);
	app->cluster = NULL;
}
