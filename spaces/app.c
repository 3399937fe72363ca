/*
 * app.c: the Spaces application object, its registry of spaces with apps
 * connected in this process, and start-up recovery.
 */
#include <stdlib.h>

#include "spaces_internal.h"

void sp_options_default(sp_options *o)
{
	memset(o, 0, sizeof(*o));
	o->default_timeout_s = 120;
	o->sweep_interval_ms = 1000;
	o->node_timeout_s = 10;
	o->data_dir = "var/data";
	o->journal_max_bytes = 256ull << 20;
	o->journal_delay_ms = 50;
	o->register_max_failures = 10;
}

sp_space *sp__space_get(sp_app *app, const char *id, int create)
{
	sp_space *sp;
	for (sp = app->spaces; sp; sp = sp->next)
		if (strcmp(sp->id, id) == 0)
			return sp;
	if (!create || strlen(id) >= SP_ID_MAX)
		return NULL;
	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	snprintf(sp->id, sizeof(sp->id), "%s", id);
	base_list_init(&sp->apps);
	sp->next = app->spaces;
	app->spaces = sp;
	return sp;
}

unsigned sp_space_apps(const sp_app *app, const char *space_id)
{
	const sp_space *sp;
	for (sp = app->spaces; sp; sp = sp->next)
		if (strcmp(sp->id, space_id) == 0)
			return sp->n_apps + sp->n_remote;
	return 0;
}

sp_conn *sp__least_busy(sp_app *app, const char *space_id)
{
	return sp__pick_app(sp__space_get(app, space_id, 0));
}

void sp__conn_unref(sp_conn *c)
{
	if (--c->refs == 0)
		free(c);
}

void sp__space_changed(sp_app *app, const char *space_id)
{
	sp__space_state(app, space_id);
	sp__live_touch(app, space_id, 0);
	if (app->opts.on_space_changed)
		app->opts.on_space_changed(space_id, app->opts.ud);
}

static void startup_done(const db_result *res, void *ud)
{
	sp_app *app = ud;
	if (!db_ok(res))
		BASE_LOGE("spaces", "start-up recovery failed: %s", db_error(res));
	else if (db_ntuples(res) > 0)
		BASE_LOGI("spaces",
		          "%s request(s) left in progress by an earlier run are queued again",
		          db_value(res, 0, 0));
	/* Cluster mode: the apps of those spaces may be on other nodes. */
	if (db_ok(res) && db_nfields(res) > 1 && !db_isnull(res, 0, 1)) {
		char *list = strdup(db_value(res, 0, 1)), *save = NULL;
		for (char *id = list ? strtok_r(list, ",", &save) : NULL; id;
		     id = strtok_r(NULL, ",", &save))
			sp__nodes_tell_queued(app, id);
		free(list);
	}
}

sp_app *sp_app_new(sio_server *io, db_pool *db, const sp_options *opts)
{
	sp_app *app = calloc(1, sizeof(*app));
	if (!app)
		return NULL;
	app->io = io;
	app->db = db;
	if (opts)
		app->opts = *opts;
	else
		sp_options_default(&app->opts);
	/* Results the earlier run took and could not write are taken back first. */
	if (sp__results_open(app)) {
		sp__results_free(app);
		free(app);
		return NULL;
	}
	base_buf answered = BASE_BUF_INIT;
	sp__pending_ids(app, NULL, &answered);
	/*
	 * The apps of an earlier run are gone: what they held goes back to the
	 * queue, except the requests whose result the journal has.
	 */
	static const char recover[] =
	    "WITH r AS (UPDATE requests SET status = 'queued', connection_id = NULL, "
	    "notice = '" SP_NOTICE_RESTARTED "', "
	    "updated_at = now() WHERE status = 'processing' AND NOT (id = ANY($1::text[])) "
	    "RETURNING 1), "
	    "c AS (UPDATE app_connections SET disconnected_at = now() "
	    "WHERE disconnected_at IS NULL RETURNING 1) "
	    "SELECT count(*) FROM r";
	/* In a cluster, only this node's earlier run: the others' apps are alive. */
	static const char recover_node[] =
	    "WITH c AS (UPDATE app_connections SET disconnected_at = now() "
	    "WHERE disconnected_at IS NULL AND node_id = $1 RETURNING id), "
	    "r AS (UPDATE requests SET status = 'queued', connection_id = NULL, updated_at = "
	    "now(), "
	    "notice = '" SP_NOTICE_RESTARTED "' "
	    "WHERE status = 'processing' AND connection_id IN (SELECT id FROM c) "
	    "AND NOT (id = ANY($2::text[])) RETURNING space_id) "
	    "SELECT count(*), string_agg(DISTINCT space_id, ',') FROM r";
	if (app->opts.node_id) {
		const char *params[2] = {app->opts.node_id, answered.data};
		db_query(db, recover_node, 2, params, startup_done, app);
	} else {
		const char *params[1] = {answered.data};
		db_query(db, recover, 1, params, startup_done, app);
	}
	base_buf_free(&answered);
	sp__live_init(app);
	sp__apps_init(app);
	sp__browser_init(app);
	sp__sweep_start(app);
	if (sp__nodes_start(app) != 0)
		BASE_LOGE("spaces", "cannot listen to the other nodes: they will see this one, "
		                    "not it them");
	return app;
}

void sp_app_close(sp_app *app)
{
	if (app->closed)
		return;
	/* From now on nothing is sent to sockets: the Socket.IO server is going
	 * away, while answers of queries already made may still arrive. */
	sp__nodes_stop(app);
	sp__browser_close(app);
	app->closed = 1;
	uv_close((uv_handle_t *)&app->sweep, NULL);
	sp__live_close(app);
}

void sp_app_free(sp_app *app)
{
	if (!app)
		return;
	sp_app_close(app);
	while (app->spaces) {
		sp_space *sp = app->spaces;
		app->spaces = sp->next;
		while (!base_list_empty(&sp->apps)) {
			sp_conn *c = BASE_CONTAINER_OF(sp->apps.next, sp_conn, link);
			base_list_remove(&c->link);
			c->space = NULL;
		}
		sp__live_free_space(sp);
		free(sp);
	}
	sp__results_free(app);
	free(app);
}

unsigned sp_apps_connected(const sp_app *app)
{
	unsigned n = 0;

	for (const sp_space *sp = app->spaces; sp; sp = sp->next)
		n += sp->n_apps;
	return n;
}
