/*
 * admin_panel.c: GET /admin, the admin's overview: the spaces with their
 * live state, the apps connected, the request history (filtered by space,
 * status and user), and the users. One round trip: four read-only
 * statements in one transaction.
 */
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

static void panel_spaces(base_buf *b, const web_ctx *w, const db_result *r)
{
	web_html(b,
	         "<h2>Spaces</h2>\n<p><a class=\"button\" href=\"/admin/space/add\">New space</a>"
	         "</p>\n<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" "
	         "aria-label=\"Spaces\">\n"
	         "<table>\n<thead><tr><th>Name</th><th>Id</th><th>Type</th><th>App</th>"
	         "<th>Inputs</th><th>Open requests</th><th>Limits</th><th></th></tr></thead>\n"
	         "<tbody>\n");
	for (int i = 0; i < db_ntuples(r); i++) {
		/* id, name, card_type, 4 enables, rate, timeout, max_apps, open access,
		 * open requests */
		const char *id = db_value(r, i, 0);
		int open = strcmp(db_value(r, i, 10), "t") == 0;

		web_html(b,
		         "<tr%R><td><a href=\"/ai_project/%s\">%s</a></td><td><code>%s</code></td>"
		         "<td>%s</td><td>",
		         open ? " class=\"open-access\"" : "", id, db_value(r, i, 1), id,
		         db_value(r, i, 2));
		web__live_badge(b, w, id);
		/* An open space takes any app that knows its name: said, and undone in one click. */
		if (open) {
			web_html(
			    b,
			    " <span class=\"badge open\" data-access=\"open\" title=\"Any app that "
			    "knows the name may register\">Open to any app</span>"
			    "<form method=\"post\" action=\"/admin/space/token/%s\" "
			    "class=\"inline\">",
			    id);
			web__csrf_input(b, w);
			web_html(b, "<button name=\"action\" value=\"require\" type=\"submit\" "
			            "class=\"small\">Require a token</button></form>");
		}
		web_html(b, "</td><td>");
		for (int k = 0; k < 4; k++) {
			if (strcmp(db_value(r, i, 3 + k), "t") == 0)
				web_html(b, "<span class=\"tag\">%s</span> ", web__input_labels[k]);
		}
		web_html(b,
		         "</td><td>%s</td><td>%s s between requests, %s s timeout, %s app(s)%R</td>"
		         "<td><a href=\"/admin/space/edit/%s\">Edit</a></td></tr>\n",
		         db_value(r, i, 11), db_value(r, i, 7), db_value(r, i, 8),
		         db_value(r, i, 9), open ? "" : ", token", id);
	}
	web_html(b, "</tbody>\n</table></div>\n");
}

static void panel_apps(base_buf *b, const db_result *r)
{
	web_html(b, "<h2>Connected apps</h2>\n");
	if (db_ntuples(r) == 0) {
		web_html(b, "<p class=\"muted\">No app is connected.</p>\n");
		return;
	}
	web_html(b, "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" "
	            "aria-label=\"Connected apps\">\n");
	web_html(b, "<table>\n<thead><tr><th>Space</th><th>Connection</th><th>Address</th>"
	            "<th>Since</th><th>Requests served</th></tr></thead>\n<tbody>\n");
	for (int i = 0; i < db_ntuples(r); i++) {
		/* space id, space name, connection id, address, since, served */
		web_html(
		    b,
		    "<tr><td><a href=\"/admin/space/edit/%s\">%s</a></td><td><code>%s</code></td>"
		    "<td>%s</td><td>",
		    db_value(r, i, 0), db_value(r, i, 1), db_value(r, i, 2), db_value(r, i, 3));
		web__time(b, db_value(r, i, 4));
		web_html(b, "</td><td>%s</td></tr>\n", db_value(r, i, 5));
	}
	web_html(b, "</tbody>\n</table></div>\n");
}

static void panel_requests(base_buf *b, const db_result *r, const char *space, const char *status,
                           const char *user)
{
	static const char *const statuses[] = {"queued", "processing", "completed", "failed",
	                                       "cancelled"};

	web_html(b,
	         "<h2>Requests</h2>\n<form method=\"get\" action=\"/admin\" class=\"filters\">\n"
	         "<label>Space id <input name=\"space\" value=\"%s\"></label>\n"
	         "<label>Status <select name=\"status\"><option value=\"\">any</option>",
	         space);
	for (size_t i = 0; i < BASE_ARRAY_SIZE(statuses); i++)
		web_html(b, "<option%R>%s</option>",
		         strcmp(status, statuses[i]) == 0 ? " selected" : "", statuses[i]);
	web_html(b,
	         "</select></label>\n<label>User <input name=\"user\" value=\"%s\"></label>\n"
	         "<button type=\"submit\">Filter</button>\n</form>\n",
	         user);
	if (db_ntuples(r) == 0) {
		web_html(b, "<p class=\"muted\">No requests.</p>\n");
		return;
	}
	web_html(
	    b,
	    "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-label=\"Requests\">\n");
	web_html(b, "<table>\n<thead><tr><th>Created</th><th>Space</th><th>User</th><th>Status"
	            "</th><th>Time</th><th>Request</th><th>Result</th></tr></thead>\n<tbody>\n");
	for (int i = 0; i < db_ntuples(r); i++) {
		/* id, space name, username, status, created, seconds, result excerpt */
		base_buf d = BASE_BUF_INIT;

		if (!db_isnull(r, i, 5))
			web__format_duration(&d, atof(db_value(r, i, 5)));
		base_buf_append(&d, "", 1);
		web_html(b, "<tr><td>");
		web__time(b, db_value(r, i, 4));
		web_html(b,
		         "</td><td>%s</td><td>%s</td><td><span class=\"req-status s-%s\">%s"
		         "</span></td><td class=\"nowrap\">%s</td><td><code>%s</code></td><td "
		         "class=\"excerpt\">%s"
		         "</td></tr>\n",
		         db_value(r, i, 1), db_value(r, i, 2), db_value(r, i, 3), db_value(r, i, 3),
		         d.data ? d.data : "", db_value(r, i, 0), db_value(r, i, 6));
		base_buf_free(&d);
	}
	web_html(b, "</tbody>\n</table></div>\n");
}

/* The users, each with a button to disable (or enable) it, and the registration switch. */
static void panel_users(base_buf *b, const web_ctx *w, const db_result *r, const db_result *reg)
{
	int closed_by_flag = w->site->opts.registration_closed;
	int closed = closed_by_flag || (db_ntuples(reg) == 1 && !db_isnull(reg, 0, 0) &&
	                                strcmp(db_value(reg, 0, 0), "closed") == 0);

	web_html(b, "<h2 id=\"users\">Users</h2>\n<p>Registration is <strong>%s</strong>%s.</p>\n",
	         closed ? "closed" : "open",
	         closed_by_flag ? " (by the server's --registration closed)" : "");
	if (!closed_by_flag) {
		web_html(
		    b, "<form method=\"post\" action=\"/admin/registration\" class=\"inline\">\n");
		web__csrf_input(b, w);
		web_html(b,
		         "<input type=\"hidden\" name=\"state\" value=\"%s\">\n"
		         "<button type=\"submit\" class=\"secondary\">%s registration</button>\n"
		         "</form>\n",
		         closed ? "open" : "closed", closed ? "Open" : "Close");
	}
	web_html(
	    b, "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-label=\"Users\">\n");
	web_html(b, "<table>\n<thead><tr><th>Name</th><th>Role</th><th>Since</th><th>State</th>"
	            "<th></th></tr></thead>\n<tbody>\n");
	for (int i = 0; i < db_ntuples(r); i++) {
		/* username, is_admin, created, id, disabled */
		int disabled = strcmp(db_value(r, i, 4), "t") == 0;
		const char *id = db_value(r, i, 3);

		web_html(b, "<tr><td>%s</td><td>%s</td><td>", db_value(r, i, 0),
		         strcmp(db_value(r, i, 1), "t") == 0 ? "admin" : "user");
		web__time(b, db_value(r, i, 2));
		web_html(b, "</td><td>%s</td><td>", disabled ? "disabled" : "active");
		if (strcmp(id, w->sess.user_id) != 0) {
			web_html(
			    b,
			    "<form method=\"post\" action=\"/admin/user/%s/%s\" class=\"inline\">",
			    disabled ? "enable" : "disable", id);
			web__csrf_input(b, w);
			web_html(b, "<button type=\"submit\" class=\"%s\">%s</button></form>",
			         disabled ? "secondary" : "danger",
			         disabled ? "Enable" : "Disable");
		}
		web_html(b, "</td></tr>\n");
	}
	web_html(b, "</tbody>\n</table></div>\n");
}

typedef struct {
	web_ctx base;
	char space[WEB_ID_MAX];
	char status[16];
	char user[WEB_USERNAME_MAX + 1];
} panel_ctx;

static void panel_loaded(const db_result *res, void *ud)
{
	panel_ctx *p = ud;
	web_ctx *w = &p->base;
	base_buf b = BASE_BUF_INIT;

	if (web__gone(w))
		return;
	if (!db_ok(res) || db_tx_count(res) != 5) {
		web__server_error(w, "loading the admin panel", res);
		return;
	}
	web_html(&b, "<section class=\"admin\">\n<h1>Admin</h1>\n");
	panel_spaces(&b, w, db_tx_result(res, 0));
	panel_apps(&b, db_tx_result(res, 1));
	panel_requests(&b, db_tx_result(res, 2), p->space, p->status, p->user);
	panel_users(&b, w, db_tx_result(res, 3), db_tx_result(res, 4));
	web_html(&b, "</section>\n<script src=\"/socket.io/socket.io.js\"></script>\n"
	             "<script src=\"/static/spaces.js\"></script>\n");
	web__page(w, 200, "Admin", &b, NULL);
	base_buf_free(&b);
}

/* A filter from the query string, decoded, or "" when absent or malformed. */
static void query_param(const http_request *req, const char *key, char *out, size_t cap)
{
	base_slice v;
	ssize_t n;

	out[0] = 0;
	if (!base_query_get(req->query, key, &v) || v.len >= cap)
		return;
	n = base_url_decode(v.base, v.len, out, 1);
	out[n > 0 ? n : 0] = 0;
	if (!web_text_ok(out, strlen(out), cap, 0))
		out[0] = 0;
}

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"

static void panel_step(web_ctx *w)
{
	panel_ctx *p = (panel_ctx *)w;

	if (!web__require_admin(w))
		return;
	query_param(w->req, "space", p->space, sizeof(p->space));
	query_param(w->req, "status", p->status, sizeof(p->status));
	query_param(w->req, "user", p->user, sizeof(p->user));

	static const char spaces_sql[] =
	    "SELECT s.id, s.name, s.card_type, s.enable_prompt, s.enable_audio, s.enable_video, "
	    "s.enable_file_upload, s.rate_limit_seconds, s.timeout_seconds, s.max_apps, "
	    "s.app_access = 'open', (SELECT count(*) FROM requests r WHERE r.space_id = "
	    "s.id AND r.status IN ('queued', 'processing')) FROM spaces s ORDER BY lower(s.name)";
	/* The address, and in cluster mode the process holding the app. */
	static const char apps_sql[] =
	    "SELECT s.id, s.name, c.id, coalesce(c.address, '') || "
	    "CASE WHEN c.node_id <> '' THEN ' on ' || c.node_id "
	    "ELSE '' END, " TS("c.connected_at") ", "
	                                         "c.requests_served FROM app_connections c JOIN "
	                                         "spaces s ON s.id = "
	                                         "c.space_id "
	                                         "WHERE c.disconnected_at IS NULL ORDER BY "
	                                         "c.connected_at DESC LIMIT "
	                                         "500";
	static const char requests_sql[] = "SELECT r.id, s.name, r.username, r.status, " TS(
	    "r.created_at") ", "
	                    "EXTRACT(EPOCH FROM r.finished_at - r.created_at), "
	                    "left(coalesce(r.result->>'text_output', r.result->>'error', "
	                    "r.result::text, ''), 160) "
	                    "FROM requests r JOIN spaces s ON s.id = r.space_id "
	                    "WHERE ($1 = '' OR r.space_id = $1) AND ($2 = '' OR r.status = $2) "
	                    "AND ($3 = '' OR r.username = $3) ORDER BY r.created_at DESC LIMIT 100";
	static const char users_sql[] = "SELECT username, is_admin, " TS(
	    "created_at") ", id::text, disabled_at IS NOT NULL FROM users ORDER BY id LIMIT 1000";
	static const char registration_sql[] =
	    "SELECT value FROM site_settings WHERE name = 'registration'";
	const char *rp[3] = {p->space, p->status, p->user};
	db_stmt st[5] = {{spaces_sql, 0, NULL},
	                 {apps_sql, 0, NULL},
	                 {requests_sql, 3, rp},
	                 {users_sql, 0, NULL},
	                 {registration_sql, 0, NULL}};
	if (db_query_tx(w->site->db, st, 5, panel_loaded, p))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void panel_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(panel_ctx), NULL, 0, panel_step);
}

void web__admin_panel_routes(web_site *site)
{
	http_route(site->http, HTTP_M_GET, "/admin", 0, panel_route, site);
	http_route(site->http, HTTP_M_GET, "/admin/", 0, panel_route, site);
}
