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
/* The form's fields as the parameters $1..$12 of the add and edit statements. */
#define SPACE_PARAMS 12
static void space_params(const space_fields *s, const char *params[SPACE_PARAMS])
{
	const char *const v[SPACE_PARAMS] = {s->name,
	                                     s->description,
	                                     s->cover,
	                                     s->cover_type,
	                                     s->card_type,
	                                     s->enable[0] ? "t" : "f",
	                                     s->enable[1] ? "t" : "f",
	                                     s->enable[2] ? "t" : "f",
	                                     s->enable[3] ? "t" : "f",
	                                     s->rate,
	                                     s->timeout,
	                                     s->max_apps};
	memcpy(params, v, sizeof(v));
}

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

static void form_page(web_ctx *w, int status, const char *title, const char *action,
                      const space_fields *s, const char *error, const char *notice)
{
	base_buf b = BASE_BUF_INIT;

	web_html(&b, "<section>\n<p><a href=\"/admin\">← Admin</a></p>\n<h1>%s</h1>\n", title);
	if (error)
		web_html(&b, "<p class=\"error\" role=\"alert\">%s</p>\n", error);
	if (notice)
		web_html(&b, "<p class=\"notice\">%s</p>\n", notice);
	space_form(&b, w, action, s, strcmp(title, "New space") == 0 ? "Create space" : "Save");
	web_html(&b, "</section>\n");
	web__page(w, status, title, &b, NULL);
	base_buf_free(&b);
}

/* ---- add ---------------------------------------------------------------------------- */

typedef struct {
	web_ctx base;
	char name[WEB_SPACE_NAME_MAX + 1];
} space_ctx;

static void add_get_step(web_ctx *w)
{
	space_fields s;

	if (!web__require_admin(w))
		return;
	memset(&s, 0, sizeof(s));
	s.description = s.cover = "";
	s.cover_type = "image";
	s.card_type = "websockets";
	s.enable[0] = 1;
	form_page(w, 200, "New space", "/admin/space/add", &s, NULL, NULL);
}

static void space_inserted(const db_result *res, void *ud)
{
	space_ctx *c = ud;
	web_ctx *w = &c->base;
	char loc[128];

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		space_fields s;
		const char *sqlstate = db_sqlstate(res);

		read_space_form(&w->form, &s);
		if (strcmp(sqlstate, "23505") == 0) {
			char msg[300];

			snprintf(msg, sizeof(msg),
			         "A space named \"%s\" already exists: choose another "
			         "name.",
			         c->name);
			form_page(w, 409, "New space", "/admin/space/add", &s, msg, NULL);
			return;
		}
		if (sqlstate[0] == '2' && sqlstate[1] == '3') {
			form_page(w, 400, "New space", "/admin/space/add", &s,
			          "These values are not allowed", NULL);
			return;
		}
		web__server_error(w, "creating a space", res);
		return;
	}
	BASE_LOGI("web", "space '%s' (%s) created by %s", c->name, db_value(res, 0, 0),
	          w->sess.username);
	snprintf(loc, sizeof(loc), "/admin/space/edit/%s", db_value(res, 0, 0));
	web__redirect(w, loc, NULL);
}

static void add_post_step(web_ctx *w)
{
	space_ctx *c = (space_ctx *)w;
	space_fields s;
	const char *err;

	if (!web__require_admin(w) || !web__csrf_ok(w, 0))
		return;
	err = w->form_rc ? "The form could not be read" : read_space_form(&w->form, &s);
	if (err) {
		if (w->form_rc)
			read_space_form(&w->form, &s);
		form_page(w, 400, "New space", "/admin/space/add", &s, err, NULL);
		return;
	}
	snprintf(c->name, sizeof(c->name), "%s", s.name);
	/* Token mode with a fresh token, unless the site runs for old clients. */
	static const char sql[] =
	    "INSERT INTO spaces (name, description, cover, cover_type, card_type, enable_prompt, "
	    "enable_audio, enable_video, enable_file_upload, rate_limit_seconds, timeout_seconds, "
	    "max_apps, app_access, app_token, app_token_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, "
	    "$8, $9, $10, $11, $12, $13, $14, $15) RETURNING id";
	const char *params[SPACE_PARAMS + 3];
	char token[64], hash[65];
	int open = w->site->opts.legacy_open_spaces;
	space_params(&s, params);
	if (!open) {
		base_random_id(token, 32);
		web_sha256_hex(token, strlen(token), hash);
	}
	params[SPACE_PARAMS] = open ? "open" : "token";
	params[SPACE_PARAMS + 1] = open ? NULL : token;
	params[SPACE_PARAMS + 2] = open ? NULL : hash;
	if (db_query(w->site->db, sql, SPACE_PARAMS + 3, params, space_inserted, c))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
	if (!open)
		sodium_memzero(token, sizeof(token));
}

static void add_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(space_ctx), NULL, 0,
	           req->method == HTTP_M_POST ? add_post_step : add_get_step);
}

/* ---- edit --------------------------------------------------------------------------- */

#define SPACE_COLUMNS                                                                        \
	"id, name, description, cover, cover_type, card_type, enable_prompt, enable_audio, " \
	"enable_video, enable_file_upload, rate_limit_seconds, timeout_seconds, max_apps, "  \
	"app_token_hash IS NOT NULL, app_access, app_token"

static void fields_from_row(const db_result *res, space_fields *s)
{
	memset(s, 0, sizeof(*s));
	s->name = db_value(res, 0, 1);
	s->description = db_value(res, 0, 2);
	s->cover = db_value(res, 0, 3);
	s->cover_type = db_value(res, 0, 4);
	s->card_type = db_value(res, 0, 5);
	for (int i = 0; i < 4; i++)
		s->enable[i] = strcmp(db_value(res, 0, 6 + i), "t") == 0;
	snprintf(s->rate, sizeof(s->rate), "%s", db_value(res, 0, 10));
	snprintf(s->timeout, sizeof(s->timeout), "%s", db_value(res, 0, 11));
	snprintf(s->max_apps, sizeof(s->max_apps), "%s", db_value(res, 0, 12));
	s->has_token = strcmp(db_value(res, 0, 13), "t") == 0;
	s->access_known = 1;
	s->open = strcmp(db_value(res, 0, 14), "open") == 0;
	s->token = db_isnull(res, 0, 15) ? NULL : db_value(res, 0, 15);
}

/* The edit page: the form, the app access, how to connect an app, delete. */
static void edit_page(web_ctx *w, int status, const char *id, const space_fields *s,
                      const char *error, const char *notice)
{
	base_buf b = BASE_BUF_INIT;
	char action[128];

	snprintf(action, sizeof(action), "/admin/space/edit/%s", id);
	web_html(&b,
	         "<section>\n<p><a href=\"/admin\">← Admin</a> · <a href=\"/ai_project/%s\">"
	         "Open the space page</a></p>\n<h1>Edit space</h1>\n<p>Space id <code>%s</code> · ",
	         id, id);
	web__live_badge(&b, w, id);
	web_html(&b, "</p>\n");
	if (error)
		web_html(&b, "<p class=\"error\" role=\"alert\">%s</p>\n", error);
	if (notice)
		web_html(&b, "<p class=\"notice\">%s</p>\n", notice);
	space_form(&b, w, action, s, "Save");

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
	web__page(w, status, "Edit space", &b, NULL);
	base_buf_free(&b);
}

static void edit_loaded(const db_result *res, void *ud)
{
	web_ctx *w = ud;
	space_fields s;
	base_slice saved;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "loading a space", res);
		return;
	}
	if (db_ntuples(res) != 1) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	fields_from_row(res, &s);
	int was_saved = base_query_get(w->req->query, "saved", &saved);
	edit_page(w, 200, db_value(res, 0, 0), &s, NULL, was_saved ? "Saved." : NULL);
}

static void edit_get_step(web_ctx *w)
{
	static const char sql[] = "SELECT " SPACE_COLUMNS " FROM spaces WHERE id = $1";
	const char *params[1] = {w->id};

	if (!web__require_admin(w))
		return;
	if (!w->id[0]) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	if (db_query_flags(w->site->db, DB_RETRY, sql, 1, params, edit_loaded, w))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void space_updated(const db_result *res, void *ud)
{
	space_ctx *c = ud;
	web_ctx *w = &c->base;
	char loc[128];

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		space_fields s;

		read_space_form(&w->form, &s);
		if (strcmp(db_sqlstate(res), "23505") == 0) {
			char msg[300];

			snprintf(msg, sizeof(msg),
			         "A space named \"%s\" already exists: choose another "
			         "name.",
			         c->name);
			edit_page(w, 409, w->id, &s, msg, NULL);
			return;
		}
		web__server_error(w, "saving a space", res);
		return;
	}
	if (db_ntuples(res) != 1) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	BASE_LOGI("web", "space %s edited by %s", w->id, w->sess.username);
	snprintf(loc, sizeof(loc), "/admin/space/edit/%s?saved=1", w->id);
	web__redirect(w, loc, NULL);
}

static void edit_post_step(web_ctx *w)
{
	space_ctx *c = (space_ctx *)w;
	space_fields s;
	const char *err;

	if (!web__require_admin(w) || !web__csrf_ok(w, 0))
		return;
	if (!w->id[0]) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	err = w->form_rc ? "The form could not be read" : read_space_form(&w->form, &s);
	if (err) {
		if (w->form_rc)
			read_space_form(&w->form, &s);
		edit_page(w, 400, w->id, &s, err, NULL);
		return;
	}
	snprintf(c->name, sizeof(c->name), "%s", s.name);
	static const char sql[] =
	    "UPDATE spaces SET name = $1, description = $2, cover = $3, cover_type = $4, "
	    "card_type = $5, enable_prompt = $6, enable_audio = $7, enable_video = $8, "
	    "enable_file_upload = $9, rate_limit_seconds = $10, timeout_seconds = $11, "
	    "max_apps = $12 WHERE id = $13 RETURNING id";
	const char *params[SPACE_PARAMS + 1];
	space_params(&s, params);
	params[SPACE_PARAMS] = w->id;
	if (db_query(w->site->db, sql, SPACE_PARAMS + 1, params, space_updated, c))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void edit_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(space_ctx), "/admin/space/edit/", 0,
	           req->method == HTTP_M_POST ? edit_post_step : edit_get_step);
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

static void token_saved(const db_result *res, void *ud)
{
	token_ctx *t = ud;
	web_ctx *w = &t->base;
	char loc[128];

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "changing the app access of a space", res);
		return;
	}
	if (db_ntuples(res) != 1) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	BASE_LOGI("web", "app access of space %s: %s by %s (now %s)", w->id, t->action,
	          w->sess.username, db_value(res, 0, 0));
	/* The apps no longer admitted are disconnected, on every node. */
	sp_space_access_changed(w->site->sp, w->id);
	snprintf(loc, sizeof(loc), "/admin/space/edit/%s?saved=1", w->id);
	web__redirect(w, loc, NULL);
}

static void token_step(web_ctx *w)
{
	token_ctx *t = (token_ctx *)w;
	const char *action;
	char hash[65];

	w->cleanup = token_cleanup;
	if (!web__require_admin(w) || !web__csrf_ok(w, 0))
		return;
	if (!w->id[0]) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	action = web_form_get(&w->form, "action");
	if (!action || (strcmp(action, "generate") != 0 && strcmp(action, "require") != 0 &&
	                strcmp(action, "open") != 0 && strcmp(action, "clear") != 0)) {
		web__message_page(w, 400, "Bad request", "Unknown action.");
		return;
	}
	snprintf(t->action, sizeof(t->action), "%s", action);
	base_random_id(t->token, 32);
	web_sha256_hex(t->token, strlen(t->token), hash);
	/* $2, $3: a new token and its hash, used by generate, and by require
	 * when the space has no token yet. */
	static const char generate_sql[] =
	    "UPDATE spaces SET app_access = 'token', app_token = $2, app_token_hash = $3 "
	    "WHERE id = $1 RETURNING app_access";
	static const char require_sql[] =
	    "UPDATE spaces SET app_access = 'token', "
	    "app_token = CASE WHEN app_token_hash IS NULL THEN $2 ELSE app_token END, "
	    "app_token_hash = coalesce(app_token_hash, $3) WHERE id = $1 RETURNING app_access";
	static const char open_sql[] =
	    "UPDATE spaces SET app_access = 'open' WHERE id = $1 RETURNING app_access";
	static const char clear_sql[] =
	    "UPDATE spaces SET app_access = 'open', app_token = NULL, app_token_hash = NULL "
	    "WHERE id = $1 RETURNING app_access";
	const char *sql = strcmp(action, "generate") == 0  ? generate_sql
	                  : strcmp(action, "require") == 0 ? require_sql
	                  : strcmp(action, "open") == 0    ? open_sql
	                                                   : clear_sql;
	const char *params[3] = {w->id, t->token, hash};
	int n = sql == generate_sql || sql == require_sql ? 3 : 1;
	if (db_query(w->site->db, sql, n, params, token_saved, t))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
	sodium_memzero(hash, sizeof(hash));
}

static void token_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(token_ctx), "/admin/space/token/", 0, token_step);
}

/* ---- delete ------------------------------------------------------------------------------ */

static void delete_loaded(const db_result *res, void *ud)
{
	web_ctx *w = ud;
	base_buf b = BASE_BUF_INIT;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "loading a space", res);
		return;
	}
	if (db_ntuples(res) != 1) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	web_html(
	    &b,
	    "<section class=\"panel narrow\">\n<h1>Delete space</h1>\n"
	    "<p>Delete the space <strong>%s</strong> and its %s request(s)? Its connected apps "
	    "are disconnected; this cannot be undone.</p>\n"
	    "<form method=\"post\" action=\"/admin/space/delete/%s\" class=\"inline\">\n",
	    db_value(res, 0, 0), db_value(res, 0, 1), w->id);
	web__csrf_input(&b, w);
	web_html(&b,
	         "<button type=\"submit\" class=\"danger\">Delete</button>\n"
	         "<a href=\"/admin/space/edit/%s\">Cancel</a>\n</form>\n</section>\n",
	         w->id);
	web__page(w, 200, "Delete space", &b, NULL);
	base_buf_free(&b);
}

static void deleted(const db_result *res, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "deleting a space", res);
		return;
	}
	if (db_ntuples(res) != 1) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	BASE_LOGI("web", "space '%s' (%s) deleted by %s", db_value(res, 0, 0), w->id,
	          w->sess.username);
	sp_space_access_changed(w->site->sp, w->id); /* its apps are disconnected */
	web__redirect(w, "/admin", NULL);
}

static void delete_step(web_ctx *w)
{
	const char *params[1] = {w->id};

	if (!web__require_admin(w))
		return;
	if (!w->id[0]) {
		web__message_page(w, 404, "Space not found", "There is no such space.");
		return;
	}
	if (w->req->method != HTTP_M_POST) {
		static const char sql[] =
		    "SELECT name, (SELECT count(*) FROM requests r WHERE r.space_id = s.id) "
		    "FROM spaces s WHERE id = $1";
		if (db_query_flags(w->site->db, DB_RETRY, sql, 1, params, delete_loaded, w))
			web__message_page(w, 503, "Server busy", "Please try again in a moment.");
		return;
	}
	if (!web__csrf_ok(w, 0))
		return;
	static const char sql[] = "DELETE FROM spaces WHERE id = $1 RETURNING name";
	if (db_query(w->site->db, sql, 1, params, deleted, w))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void delete_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), "/admin/space/delete/", 0, delete_step);
}

void web__admin_routes(web_site *site)
{
	http_route(site->http, HTTP_M_GET, "/admin/space/add", 0, add_route, site);
	http_route(site->http, HTTP_M_POST, "/admin/space/add", 0, add_route, site);
	http_route(site->http, HTTP_M_GET, "/admin/space/edit/", 1, edit_route, site);
	http_route(site->http, HTTP_M_POST, "/admin/space/edit/", 1, edit_route, site);
	http_route(site->http, HTTP_M_POST, "/admin/space/token/", 1, token_route, site);
	http_route(site->http, HTTP_M_GET, "/admin/space/delete/", 1, delete_route, site);
	http_route(site->http, HTTP_M_POST, "/admin/space/delete/", 1, delete_route, site);
}
