/*
 * admin.c: the admin panel.
 *
 *   GET  /admin                        the panel (admin_panel.c)
 *   GET  /admin/space/add              an empty space form
 *   POST /admin/space/add              creates; 302 /admin/space/edit/<id>
 *   GET  /admin/space/edit/<id>        the form filled in
 *   POST /admin/space/edit/<id>        saves; 302 back to the form
 *   POST /admin/space/token/<id>       app access: action=generate (a new token;
 *                                      apps with the old one are disconnected) |
 *                                      require (token mode, a token made if none) |
 *                                      open (any app) | clear (open, token removed);
 *                                      302 /admin/space/edit/<id>
 *   GET  /admin/space/delete/<id>      asks to confirm
 *   POST /admin/space/delete/<id>      deletes, disconnects its apps; 302 /admin
 *
 * A space's access mode is 'token' (only an app giving the space's token
 * may register) or 'open' (any app that knows the name, as the old site
 * allowed). New spaces are 'token' with a generated token, unless the
 * server runs with --legacy-open-spaces. Every change of access is handed
 * to the Spaces layer, which disconnects the apps no longer admitted.
 *
 * Everyone but admins is sent to /login (302) before anything is read or
 * changed.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

/* ---- the space form ---------------------------------------------------------- */

typedef struct {
	const char *name, *description, *cover, *cover_type, *card_type;
	int enable[4]; /* prompt, audio, video, file upload */
	char rate[16], timeout[16], max_apps[16];
	int has_token;
	int access_known;  /* the three below come from the database (not a form) */
	int open;          /* app access 'open' */
	const char *token; /* the token when it is known, else NULL */
} space_fields;

static const char *const enable_fields[4] = {"ws_enable_prompt", "ws_enable_audio",
                                             "ws_enable_video", "ws_enable_file_upload"};
const char *const web__input_labels[4] = {"Prompt", "Audio (URL or file)", "Video file",
                                          "File upload"};

static int checked(const char *v)
{
	return v && (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
	             strcmp(v, "yes") == 0);
}

/* A whole number in [lo, hi], or def when the field is missing or empty. */
static int read_uint(const char *v, unsigned lo, unsigned hi, unsigned def, char out[16])
{
	unsigned long n = def;

	if (v && *v) {
		char *end;

		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno || *end || v[0] == '-' || v[0] == '+' || n < lo || n > hi)
			return -1;
	}
	snprintf(out, 16, "%lu", n);
	return 0;
}

/* Reads and checks the form. Returns NULL, or the problem as a sentence. */
static const char *read_space_form(const web_form *f, space_fields *s)
{
	memset(s, 0, sizeof(*s));
	s->name = web_form_get(f, "name");
	s->description = web_form_get(f, "description");
	s->cover = web_form_get(f, "cover");
	s->cover_type = web_form_get(f, "cover_type");
	s->card_type = web_form_get(f, "card_type");
	if (!s->description)
		s->description = "";
	if (!s->cover)
		s->cover = "";
	if (!s->cover_type || !*s->cover_type)
		s->cover_type = "image";
	if (!s->card_type || !*s->card_type)
		s->card_type = "websockets";
	for (int i = 0; i < 4; i++)
		s->enable[i] = checked(web_form_get(f, enable_fields[i]));

	if (!s->name || !*s->name)
		return "The space needs a name";
	if (!web_text_ok(s->name, strlen(s->name), WEB_SPACE_NAME_MAX, 0))
		return "The name must be at most 200 characters, without control characters";
	if (!web_text_ok(s->description, strlen(s->description), 20000, 1))
		return "The description is too long (at most 20000 characters)";
	if (!web_text_ok(s->cover, strlen(s->cover), 2048, 0))
		return "The cover must be a URL of at most 2048 characters";
	if (!web_text_ok(s->cover_type, strlen(s->cover_type), 32, 0))
		return "The cover type is too long";
	for (const char *p = s->card_type; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '-') || p - s->card_type > 32)
			return "Unknown card type";
	}
	if (read_uint(web_form_get(f, "ws_rate_limit_seconds"), 0, 86400, 0, s->rate))
		return "The rate limit must be a whole number of seconds from 0 to 86400";
	if (read_uint(web_form_get(f, "ws_timeout_seconds"), 1, 86400, 120, s->timeout))
		return "The timeout must be a whole number of seconds from 1 to 86400";
	if (read_uint(web_form_get(f, "ws_max_apps"), 1, 1000, 1, s->max_apps))
		return "Max apps must be a whole number from 1 to 1000";
	return NULL;
}

static void space_form(base_buf *b, const web_ctx *w, const char *action, const space_fields *s,
                       const char *button)
{
	int ws = strcmp(s->card_type, "websockets") == 0;

	web_html(b, "<form method=\"post\" action=\"%s\" class=\"stack panel\">\n", action);
	web__csrf_input(b, w);
	web_html(b,
	         "<label>Name <input name=\"name\" required maxlength=\"200\" value=\"%s\">"
	         "<small>Apps register with this exact name.</small></label>\n"
	         "<label>Description <textarea name=\"description\" rows=\"3\">%s</textarea>"
	         "</label>\n"
	         "<label>Cover image URL <input name=\"cover\" value=\"%s\"></label>\n"
	         "<label>Cover type <input name=\"cover_type\" value=\"%s\"></label>\n"
	         "<label>Card type <select name=\"card_type\">"
	         "<option value=\"websockets\"%R>websockets (remote app)</option>",
	         s->name ? s->name : "", s->description, s->cover, s->cover_type,
	         ws ? " selected" : "");
	if (!ws)
		web_html(b, "<option value=\"%s\" selected>%s</option>", s->card_type,
		         s->card_type);
	web_html(b, "</select></label>\n<fieldset>\n<legend>Inputs</legend>\n");
	for (int i = 0; i < 4; i++)
		web_html(
		    b,
		    "<label class=\"check\"><input type=\"checkbox\" name=\"%s\"%R> %s</label>\n",
		    enable_fields[i], s->enable[i] ? " checked" : "", web__input_labels[i]);
	web_html(b,
	         "</fieldset>\n"
	         "<label>Rate limit (seconds between a user's requests) <input type=\"number\" "
	         "name=\"ws_rate_limit_seconds\" min=\"0\" max=\"86400\" value=\"%s\"></label>\n"
	         "<label>Timeout (seconds) <input type=\"number\" name=\"ws_timeout_seconds\" "
	         "min=\"1\" max=\"86400\" value=\"%s\"></label>\n"
	         "<label>Max apps connected at once <input type=\"number\" name=\"ws_max_apps\" "
	         "min=\"1\" max=\"1000\" value=\"%s\"></label>\n"
	         "<button type=\"submit\">%s</button>\n</form>\n",
	         s->rate[0] ? s->rate : "0", s->timeout[0] ? s->timeout : "120",
	         s->max_apps[0] ? s->max_apps : "1", button);
}

/* s in single quotes for a POSIX shell ('\'' for each quote). */
static void shell_quote(base_buf *b, const char *s)
{
	base_buf_append(b, "'", 1);
	for (; *s; s++) {
		if (*s == '\'')
			base_buf_append_str(b, "'\\''");
		else
			base_buf_append(b, s, 1);
	}
	base_buf_append(b, "'", 1);
}

void web__connect_command(base_buf *b, const web_ctx *w, const char *name, int open, int has_token,
                          const char *token)
{
	base_buf url = BASE_BUF_INIT, cmd = BASE_BUF_INIT;
	int need = !open || has_token;

	/* python-engineio keeps the query string of the URL on its handshake. */
	web__base_url(&url, w);
	if (need) {
		base_buf_append_str(&url, "/?token=");
		base_buf_append_str(&url, token && *token ? token : "TOKEN");
	}
	base_buf_append(&url, "", 1);
	base_buf_append_str(&cmd, "python3 mock_app.py --host ");
	shell_quote(&cmd, url.data ? url.data : "");
	base_buf_append_str(&cmd, " --spaces ");
	shell_quote(&cmd, name);
	base_buf_append(&cmd, "", 1);
	web_html(b,
	         "<h2>Connect an app</h2>\n<div class=\"panel connect\">\n"
	         "<pre id=\"connect-cmd\" class=\"cmd\">%s</pre>\n"
	         "<button type=\"button\" class=\"copy secondary\" data-copy=\"connect-cmd\">"
	         "Copy</button> <span class=\"copy-note muted\" role=\"status\"></span>\n",
	         cmd.data ? cmd.data : "");
	if (need && !(token && *token))
		web_html(b, "<p class=\"muted\">The token was set before it could be shown here: "
		            "generate a new one to see the full command line (apps using the "
		            "current one are then disconnected).</p>\n");
	else if (need)
		web_html(b, "<p class=\"muted\">Keep the token secret: whoever has it can serve "
		            "this space's requests.</p>\n");
	web_html(b, "</div>\n");
	base_buf_free(&url);
	base_buf_free(&cmd);
}

/* The fields as the store takes them (after read_space_form accepted them). */
static void store_fields(const space_fields *s, sp_space_fields *f)
{
	f->name = s->name;
	f->description = s->description;
	f->cover = s->cover;
	f->cover_type = s->cover_type;
	f->card_type = s->card_type;
	memcpy(f->enable, s->enable, sizeof(f->enable));
	f->rate_limit_s = (unsigned)strtoul(s->rate, NULL, 10);
	f->timeout_s = (unsigned)strtoul(s->timeout, NULL, 10);
	f->max_apps = (unsigned)strtoul(s->max_apps, NULL, 10);
}

static void fields_from_row(const sp_space_row *r, space_fields *s)
{
	memset(s, 0, sizeof(*s));
	s->name = r->name;
	s->description = r->description;
	s->cover = r->cover;
	s->cover_type = r->cover_type;
	s->card_type = r->card_type;
	memcpy(s->enable, r->enable, sizeof(s->enable));
	snprintf(s->rate, sizeof(s->rate), "%u", r->rate_limit_s);
	snprintf(s->timeout, sizeof(s->timeout), "%u", r->timeout_s);
	snprintf(s->max_apps, sizeof(s->max_apps), "%u", r->max_apps);
	s->has_token = r->has_token;
	s->access_known = 1;
	s->open = r->open;
	s->token = r->token;
}

/*
 * The page of the space form: a new space (id NULL), or an existing one
 * with its live state, its app access, how to connect an app, and delete.
 */
static void space_page(web_ctx *w, int status, const char *id, const space_fields *s,
                       const char *error, const char *notice)
{
	base_buf b = BASE_BUF_INIT;
	char action[128];
	const char *title = id ? "Edit space" : "New space";

	if (id) {
		snprintf(action, sizeof(action), "/admin/space/edit/%s", id);
		web_html(
		    &b,
		    "<section>\n<p><a href=\"/admin\">← Admin</a> · <a href=\"/ai_project/%s\">"
		    "Open the space page</a></p>\n<h1>%s</h1>\n<p>Space id <code>%s</code> · ",
		    id, title, id);
		web__live_badge(&b, w, id);
		web_html(&b, "</p>\n");
	} else {
		snprintf(action, sizeof(action), "/admin/space/add");
		web_html(&b, "<section>\n<p><a href=\"/admin\">← Admin</a></p>\n<h1>%s</h1>\n",
		         title);
	}
	if (error)
		web_html(&b, "<p class=\"error\" role=\"alert\">%s</p>\n", error);
	if (notice)
		web_html(&b, "<p class=\"notice\">%s</p>\n", notice);
	space_form(&b, w, action, s, id ? "Save" : "Create space");
	if (!id) {
		web_html(&b, "</section>\n");
		goto out;
	}
	if (!s->access_known)
		goto danger;
	web_html(&b, "<h2>App access</h2>\n<div class=\"panel\">\n");
	if (s->open)
		web_html(&b,
		         "<p><span class=\"badge open\" data-access=\"open\">Open</span> Any app "
		         "that knows the name may register, receive the users' requests and "
		         "answer them.</p>\n");
	else
		web_html(&b, "<p><span class=\"badge on\" data-access=\"token\">Token</span> Only "
		             "an app that gives this space's token may register.</p>\n");
	web_html(&b, "<form method=\"post\" action=\"/admin/space/token/%s\" class=\"inline\">\n",
	         id);
	web__csrf_input(&b, w);
	if (s->open)
		web_html(&b, "<button name=\"action\" value=\"require\" type=\"submit\">Require a "
		             "token</button>\n");
	web_html(&b,
	         "<button name=\"action\" value=\"generate\" type=\"submit\"%R>Generate a new "
	         "token</button>\n",
	         s->open ? " class=\"secondary\"" : "");
	if (!s->open)
		web_html(&b, "<button name=\"action\" value=\"open\" type=\"submit\" "
		             "class=\"secondary\">Let any app register</button>\n");
	web_html(&b, "</form>\n<p class=\"muted\">A new token disconnects the apps that use the "
	             "old one; requiring a token disconnects the apps that registered without "
	             "it. Their requests go back to the queue.</p>\n</div>\n");
	web__connect_command(&b, w, s->name, s->open, s->has_token, s->token);
danger:
	web_html(&b,
	         "<h2>Danger zone</h2>\n<p><a class=\"danger\" href=\"/admin/space/delete/%s\">"
	         "Delete this space…</a></p>\n</section>\n"
	         "<script src=\"/socket.io/socket.io.js\"></script>\n"
	         "<script src=\"/static/spaces.js\"></script>\n",
	         id);
out:
	web__page(w, status, title, &b, NULL);
	base_buf_free(&b);
}

#define NO_SUCH_SPACE "There is no such space."

static void no_such_space(web_ctx *w)
{
	web__message_page(w, 404, "Space not found", NO_SUCH_SPACE);
}

/* ---- add and edit ---------------------------------------------------------------------- */

typedef struct {
	web_ctx base;
	char name[WEB_SPACE_NAME_MAX + 1];
} space_ctx;

static int is_add(const http_request *req)
{
	return req->path.len >= 16 && memcmp(req->path.base, "/admin/space/add", 16) == 0;
}

/* The id of the space the form is for: NULL for a new one. */
static const char *form_id(const web_ctx *w)
{
	return is_add(w->req) ? NULL : w->id;
}

/* The form saved (added or edited): back to it, or the form again with why not. */
static void space_saved(sp_store_status st, const sp_space_row *row, void *ud)
{
	space_ctx *c = ud;
	web_ctx *w = &c->base;
	const char *id = form_id(w);
	space_fields s;
	char loc[128], msg[300];

	if (web__gone(w))
		return;
	if (st == SP_STORE_OK) {
		BASE_LOGI("web", "space '%s' (%s) %s by %s", c->name, row->id,
		          id ? "edited" : "created", w->sess.username);
		snprintf(loc, sizeof(loc), "/admin/space/edit/%s%s", row->id, id ? "?saved=1" : "");
		web__redirect(w, loc, NULL);
		return;
	}
	if (st == SP_STORE_NOTFOUND) {
		no_such_space(w);
		return;
	}
	if (st != SP_STORE_EXISTS && st != SP_STORE_INVALID) {
		web__store_error(w, st);
		return;
	}
	read_space_form(&w->form, &s);
	if (st == SP_STORE_EXISTS)
		snprintf(msg, sizeof(msg),
		         "A space named \"%s\" already exists: choose another name.", c->name);
	space_page(w, st == SP_STORE_EXISTS ? 409 : 400, id, &s,
	           st == SP_STORE_EXISTS ? msg : "These values are not allowed", NULL);
}

static void form_post_step(web_ctx *w)
{
	space_ctx *c = (space_ctx *)w;
	const char *id = form_id(w);
	space_fields s;
	sp_space_fields f;
	const char *err;
	int rc;

	if (!web__require_admin(w) || !web__csrf_ok(w, 0))
		return;
	if (id && !id[0]) {
		no_such_space(w);
		return;
	}
	err = w->form_rc ? "The form could not be read" : read_space_form(&w->form, &s);
	if (err) {
		if (w->form_rc)
			read_space_form(&w->form, &s);
		space_page(w, 400, id, &s, err, NULL);
		return;
	}
	snprintf(c->name, sizeof(c->name), "%s", s.name);
	store_fields(&s, &f);
	if (id) {
		rc = sp_store_space_update(w->site->sp, id, &f, space_saved, c);
	} else if (w->site->opts.legacy_open_spaces) {
		rc = sp_store_space_add(w->site->sp, &f, NULL, NULL, space_saved, c);
	} else {
		/* Token mode with a fresh token, unless the site runs for old clients. */
		char token[64], hash[65];

		base_random_id(token, 32);
		web_sha256_hex(token, strlen(token), hash);
		rc = sp_store_space_add(w->site->sp, &f, token, hash, space_saved, c);
		sodium_memzero(token, sizeof(token));
	}
	if (rc)
		web__busy(w);
}

static void edit_loaded(sp_store_status st, const sp_space_row *row, void *ud)
{
	web_ctx *w = ud;
	space_fields s;
	base_slice saved;

	if (!web__space_answer_ok(w, st, NO_SUCH_SPACE))
		return;
	fields_from_row(row, &s);
	int was_saved = base_query_get(w->req->query, "saved", &saved);
	space_page(w, 200, row->id, &s, NULL, was_saved ? "Saved." : NULL);
}

static void form_get_step(web_ctx *w)
{
	const char *id = form_id(w);
	space_fields s;

	if (!web__require_admin(w))
		return;
	if (!id) {
		memset(&s, 0, sizeof(s));
		s.description = s.cover = "";
		s.cover_type = "image";
		s.card_type = "websockets";
		s.enable[0] = 1;
		space_page(w, 200, NULL, &s, NULL, NULL);
		return;
	}
	if (!id[0]) {
		no_such_space(w);
		return;
	}
	if (sp_store_space_get(w->site->sp, id, edit_loaded, w))
		web__busy(w);
}

static void form_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(space_ctx), is_add(req) ? NULL : "/admin/space/edit/", 0,
	           req->method == HTTP_M_POST ? form_post_step : form_get_step);
}

/* ---- app access ------------------------------------------------------------------------ */

typedef struct {
	web_ctx base;
	char token[64];
	char action[16];
} token_ctx;

static void token_cleanup(web_ctx *w)
{
	token_ctx *t = (token_ctx *)w;

	sodium_memzero(t->token, sizeof(t->token));
}

static void token_saved(sp_store_status st, const sp_space_row *row, void *ud)
{
	token_ctx *t = ud;
	web_ctx *w = &t->base;
	char loc[128];

	if (!web__space_answer_ok(w, st, NO_SUCH_SPACE))
		return;
	/* The store has the apps no longer admitted disconnected, on every node. */
	BASE_LOGI("web", "app access of space %s: %s by %s (now %s)", w->id, t->action,
	          w->sess.username, row->open ? "open" : "token");
	snprintf(loc, sizeof(loc), "/admin/space/edit/%s?saved=1", w->id);
	web__redirect(w, loc, NULL);
}

static void token_step(web_ctx *w)
{
	static const char *const actions[] = {"generate", "require", "open", "clear"};
	token_ctx *t = (token_ctx *)w;
	const char *action;
	char hash[65];
	int a = 0;

	w->cleanup = token_cleanup;
	if (!web__require_admin(w) || !web__csrf_ok(w, 0))
		return;
	if (!w->id[0]) {
		no_such_space(w);
		return;
	}
	action = web_form_get(&w->form, "action");
	while (action && a < 4 && strcmp(action, actions[a]) != 0)
		a++;
	if (!action || a == 4) {
		web__message_page(w, 400, "Bad request", "Unknown action.");
		return;
	}
	snprintf(t->action, sizeof(t->action), "%s", action);
	/* A new token and its hash, used by generate, and by require when the
	 * space has no token yet. */
	base_random_id(t->token, 32);
	web_sha256_hex(t->token, strlen(t->token), hash);
	if (sp_store_space_access(w->site->sp, w->id, (sp_access_action)a, t->token, hash,
	                          token_saved, t))
		web__busy(w);
	sodium_memzero(hash, sizeof(hash));
}

static void token_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(token_ctx), "/admin/space/token/", 0, token_step);
}

/* ---- delete ------------------------------------------------------------------------------ */

static void delete_loaded(sp_store_status st, const sp_space_row *row, void *ud)
{
	web_ctx *w = ud;
	base_buf b = BASE_BUF_INIT;

	if (!web__space_answer_ok(w, st, NO_SUCH_SPACE))
		return;
	web_html(
	    &b,
	    "<section class=\"panel narrow\">\n<h1>Delete space</h1>\n"
	    "<p>Delete the space <strong>%s</strong> and its %u request(s)? Its connected apps "
	    "are disconnected; this cannot be undone.</p>\n"
	    "<form method=\"post\" action=\"/admin/space/delete/%s\" class=\"inline\">\n",
	    row->name, row->requests, w->id);
	web__csrf_input(&b, w);
	web_html(&b,
	         "<button type=\"submit\" class=\"danger\">Delete</button>\n"
	         "<a href=\"/admin/space/edit/%s\">Cancel</a>\n</form>\n</section>\n",
	         w->id);
	web__page(w, 200, "Delete space", &b, NULL);
	base_buf_free(&b);
}

static void deleted(sp_store_status st, const sp_space_row *row, void *ud)
{
	web_ctx *w = ud;

	if (!web__space_answer_ok(w, st, NO_SUCH_SPACE))
		return;
	/* Its apps are disconnected by the store. */
	BASE_LOGI("web", "space '%s' (%s) deleted by %s", row->name, w->id, w->sess.username);
	web__redirect(w, "/admin", NULL);
}

static void delete_step(web_ctx *w)
{
	int rc;

	if (!web__require_admin(w))
		return;
	if (!w->id[0]) {
		no_such_space(w);
		return;
	}
	if (w->req->method != HTTP_M_POST)
		rc = sp_store_space_get(w->site->sp, w->id, delete_loaded, w);
	else if (web__csrf_ok(w, 0))
		rc = sp_store_space_delete(w->site->sp, w->id, deleted, w);
	else
		return;
	if (rc)
		web__busy(w);
}

static void delete_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), "/admin/space/delete/", 0, delete_step);
}

const web_route web__admin_routes[] = {
    {HTTP_M_GET, "/admin/space/add", 0, form_route},
    {HTTP_M_POST, "/admin/space/add", 0, form_route},
    {HTTP_M_GET, "/admin/space/edit/", 1, form_route},
    {HTTP_M_POST, "/admin/space/edit/", 1, form_route},
    {HTTP_M_POST, "/admin/space/token/", 1, token_route},
    {HTTP_M_GET, "/admin/space/delete/", 1, delete_route},
    {HTTP_M_POST, "/admin/space/delete/", 1, delete_route},
    {0, NULL, 0, NULL},
};
