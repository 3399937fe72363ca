/*
 * admin_panel.c: GET /admin, the admin's overview: the spaces with their
 * live state, the apps connected, the request history (filtered by space,
 * status and user), and the users: four questions asked at once (three to
 * the Spaces store, one to the accounts), each part rendered as it comes.
 */
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

static void panel_spaces(base_buf *b, const web_ctx *w, const sp_space_row *rows, unsigned n)
{
	web_html(b,
	         "<h2>Spaces</h2>\n<p><a class=\"button\" href=\"/admin/space/add\">New space</a>"
	         "</p>\n<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" "
	         "aria-label=\"Spaces\">\n"
	         "<table>\n<thead><tr><th>Name</th><th>Id</th><th>Type</th><th>App</th>"
	         "<th>Inputs</th><th>Open requests</th><th>Limits</th><th></th></tr></thead>\n"
	         "<tbody>\n");
	for (unsigned i = 0; i < n; i++) {
		const sp_space_row *r = &rows[i];
		const char *id = r->id;

		web_html(b,
		         "<tr%R><td><a href=\"/ai_project/%s\">%s</a></td><td><code>%s</code></td>"
		         "<td>%s</td><td>",
		         r->open ? " class=\"open-access\"" : "", id, r->name, id, r->card_type);
		web__live_badge(b, w, id);
		/* An open space takes any app that knows its name: said, and undone in one click. */
		if (r->open) {
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
		for (int k = 0; k < SP_INPUTS; k++) {
			if (r->enable[k])
				web_html(b, "<span class=\"tag\">%s</span> ", web__input_labels[k]);
		}
		web_html(b,
		         "</td><td>%u</td><td>%u s between requests, %u s timeout, %u app(s)%R</td>"
		         "<td><a href=\"/admin/space/edit/%s\">Edit</a></td></tr>\n",
		         r->open_requests, r->rate_limit_s, r->timeout_s, r->max_apps,
		         r->open ? "" : ", token", id);
	}
	web_html(b, "</tbody>\n</table></div>\n");
}

static void panel_apps(base_buf *b, const sp_conn_row *rows, unsigned n)
{
	web_html(b, "<h2>Connected apps</h2>\n");
	if (n == 0) {
		web_html(b, "<p class=\"muted\">No app is connected.</p>\n");
		return;
	}
	web_html(b, "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" "
	            "aria-label=\"Connected apps\">\n");
	web_html(b, "<table>\n<thead><tr><th>Space</th><th>Connection</th><th>Address</th>"
	            "<th>Since</th><th>Requests served</th></tr></thead>\n<tbody>\n");
	for (unsigned i = 0; i < n; i++) {
		const sp_conn_row *c = &rows[i];

		web_html(
		    b,
		    "<tr><td><a href=\"/admin/space/edit/%s\">%s</a></td><td><code>%s</code></td>"
		    "<td>%s</td><td>",
		    c->space_id, c->space_name, c->id, c->address);
		web__time(b, c->since);
		web_html(b, "</td><td>%s</td></tr>\n", c->served);
	}
	web_html(b, "</tbody>\n</table></div>\n");
}

static void panel_requests(base_buf *b, const sp_request_row *rows, unsigned n, const char *space,
                           const char *status, const char *user)
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
	if (n == 0) {
		web_html(b, "<p class=\"muted\">No requests.</p>\n");
		return;
	}
	web_html(
	    b,
	    "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-label=\"Requests\">\n");
	web_html(b, "<table>\n<thead><tr><th>Created</th><th>Space</th><th>User</th><th>Status"
	            "</th><th>Time</th><th>Request</th><th>Result</th></tr></thead>\n<tbody>\n");
	for (unsigned i = 0; i < n; i++) {
		const sp_request_row *r = &rows[i];
		base_buf d = BASE_BUF_INIT;

		if (r->seconds >= 0)
			web__format_duration(&d, r->seconds);
		base_buf_append(&d, "", 1);
		web_html(b, "<tr><td>");
		web__time(b, r->created_at);
		web_html(b,
		         "</td><td>%s</td><td>%s</td><td><span class=\"req-status s-%s\">%s"
		         "</span></td><td class=\"nowrap\">%s</td><td><code>%s</code></td><td "
		         "class=\"excerpt\">%s"
		         "</td></tr>\n",
		         r->space_name, r->username, r->status, r->status, d.data ? d.data : "",
		         r->id, r->excerpt);
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

/* The four parts are asked for at once and rendered as they come. */
enum { PART_SPACES, PART_APPS, PART_REQUESTS, PART_USERS, PARTS };

typedef struct {
	web_ctx base;
	char space[WEB_ID_MAX];
	char status[16];
	char user[WEB_USERNAME_MAX + 1];
	base_buf part[PARTS];
	int pending;
	int failed;         /* a part failed: the first failure answers */
	sp_store_status st; /* the first failure */
} panel_ctx;

static void panel_cleanup(web_ctx *w)
{
	panel_ctx *p = (panel_ctx *)w;

	for (int i = 0; i < PARTS; i++)
		base_buf_free(&p->part[i]);
}

/* One part came: when it is the last, the page (or the first failure) is sent. */
static void part_done(panel_ctx *p)
{
	web_ctx *w = &p->base;
	base_buf b = BASE_BUF_INIT;

	if (--p->pending > 0)
		return;
	if (web__gone(w))
		return;
	if (p->failed) {
		web__store_error(w, p->st);
		return;
	}
	web_html(&b, "<section class=\"admin\">\n<h1>Admin</h1>\n");
	for (int i = 0; i < PARTS; i++)
		base_buf_append(&b, p->part[i].data ? p->part[i].data : "", p->part[i].len);
	web_html(&b, "</section>\n<script src=\"/socket.io/socket.io.js\"></script>\n"
	             "<script src=\"/static/spaces.js\"></script>\n");
	web__page(w, 200, "Admin", &b, NULL);
	base_buf_free(&b);
}

static int part_failed(panel_ctx *p, sp_store_status st)
{
	if (st && !p->failed) {
		p->failed = 1;
		p->st = st;
	}
	return st != SP_STORE_OK || p->failed || !p->base.req;
}

static void spaces_come(sp_store_status st, const sp_space_row *rows, unsigned n, void *ud)
{
	panel_ctx *p = ud;

	if (!part_failed(p, st))
		panel_spaces(&p->part[PART_SPACES], &p->base, rows, n);
	part_done(p);
}

static void apps_come(sp_store_status st, const sp_conn_row *rows, unsigned n, void *ud)
{
	panel_ctx *p = ud;

	if (!part_failed(p, st))
		panel_apps(&p->part[PART_APPS], rows, n);
	part_done(p);
}

static void requests_come(sp_store_status st, const sp_request_row *rows, unsigned n, void *ud)
{
	panel_ctx *p = ud;

	if (!part_failed(p, st))
		panel_requests(&p->part[PART_REQUESTS], rows, n, p->space, p->status, p->user);
	part_done(p);
}

static void users_come(const db_result *res, void *ud)
{
	panel_ctx *p = ud;
	int ok = db_ok(res) && db_tx_count(res) == 2;

	if (!ok) {
		BASE_LOGE("web", "loading the users: %s", db_error(res));
		part_failed(p, db_status(res) == DB_ETIMEDOUT || db_status(res) == DB_EQUEUEFULL
		                   ? SP_STORE_BUSY
		                   : SP_STORE_FAILED);
	} else if (!p->failed && p->base.req)
		panel_users(&p->part[PART_USERS], &p->base, db_tx_result(res, 0),
		            db_tx_result(res, 1));
	part_done(p);
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

static void panel_step(web_ctx *w)
{
	panel_ctx *p = (panel_ctx *)w;
	web_site *site = w->site;

	w->cleanup = panel_cleanup;
	if (!web__require_admin(w))
		return;
	query_param(w->req, "space", p->space, sizeof(p->space));
	query_param(w->req, "status", p->status, sizeof(p->status));
	query_param(w->req, "user", p->user, sizeof(p->user));
	sp_request_filter f = {p->space, p->status, p->user};
	/* One more than the parts: the last part_done below sends, whatever came first. */
	p->pending = 1;
	p->pending += sp_store_spaces_list(site->sp, 1, spaces_come, p) == 0;
	p->pending += sp_store_conns_list(site->sp, apps_come, p) == 0;
	p->pending += sp_store_requests_list(site->sp, &f, requests_come, p) == 0;
	p->pending += web__acct_users_list(site, users_come, p) == 0;
	if (p->pending < 1 + PARTS && !p->failed) {
		p->failed = 1;
		p->st = SP_STORE_BUSY;
	}
	part_done(p);
}

static void panel_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(panel_ctx), NULL, 0, panel_step);
}

const web_route web__admin_panel_routes[] = {
    {HTTP_M_GET, "/admin", 0, panel_route},
    {HTTP_M_GET, "/admin/", 0, panel_route},
    {0, NULL, 0, NULL},
};
