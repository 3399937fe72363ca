/*
 * session.c: sessions. The cookie holds a random token; the database holds
 * only its SHA-256 (sessions.token_hash), so a leaked table opens no
 * session. Each session has its own CSRF token for our forms.
 *
 * A session ends at its lifetime (session_ttl_s), or earlier when unused for
 * session_idle_s: idle_expires_at is pushed forward as the session is used,
 * at most once per a tenth of the idle timeout, so that most requests only
 * read. Logging out is a POST carrying the session's CSRF token (GET
 * /logout only shows the button); it closes the session's live sockets.
 */
#include <stdio.h>
#include <sodium.h>
#include <stdlib.h>

#include "web_internal.h"

#define TOKEN_BYTES 32 /* 43 base64url characters */

static void session_found(const db_result *res, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "looking up a session", res);
		return;
	}
	if (db_ntuples(res) == 1) {
		/* user id, username, is_admin, csrf_token */
		w->sess.ok = 1;
		snprintf(w->sess.user_id, sizeof(w->sess.user_id), "%s", db_value(res, 0, 0));
		snprintf(w->sess.username, sizeof(w->sess.username), "%s", db_value(res, 0, 1));
		w->sess.is_admin = strcmp(db_value(res, 0, 2), "t") == 0;
		snprintf(w->sess.csrf, sizeof(w->sess.csrf), "%s", db_value(res, 0, 3));
	}
	w->next(w);
}

void web__with_session(web_ctx *w, web_step next)
{
	char token[WEB_TOKEN_MAX];

	w->next = next;
	if (!web_session_token(http_header_get(w->req, "Cookie"), token, sizeof(token))) {
		next(w);
		return;
	}
	web_sha256_hex(token, strlen(token), w->sess.token_hash);
	sodium_memzero(token, sizeof(token));
	int rc = web__acct_session_find(w->site, w->sess.token_hash, session_found, w);
	if (rc) {
		BASE_LOGW("web", "session lookup not queued: %s", base_strerror(rc));
		web__busy(w);
	}
}

/* ---- creating a session (login) ------------------------------------------ */

typedef struct {
	web_ctx *w;
	char cookie[200];
	char location[256];
} create_ctx;

static void session_created(const db_result *res, void *ud)
{
	create_ctx *c = ud;
	web_ctx *w = c->w;

	if (web__gone(w)) {
		sodium_memzero(c, sizeof(*c));
		free(c);
		return;
	}
	if (!db_ok(res)) {
		sodium_memzero(c, sizeof(*c));
		free(c);
		web__server_error(w, "creating a session", res);
		return;
	}
	web__redirect(w, c->location, c->cookie);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

void web__session_create(web_ctx *w, const char *user_id, const char *location)
{
	create_ctx *c = calloc(1, sizeof(*c));
	char token[WEB_TOKEN_MAX], csrf[48], hash[65];
	base_buf line = BASE_BUF_INIT;

	if (!c) {
		web__server_error(w, "creating a session", NULL);
		return;
	}
	c->w = w;
	base_random_id(token, TOKEN_BYTES);
	base_random_id(csrf, 24);
	web_sha256_hex(token, strlen(token), hash);
	snprintf(c->location, sizeof(c->location), "%s", location);
	web_cookie_set_line(&line, WEB_SESSION_COOKIE, token, (long)w->site->opts.session_ttl_s,
	                    w->site->opts.secure_cookies);
	web_buf_cstr(&line);
	if (line.len >= sizeof(c->cookie)) {
		base_buf_free(&line);
		free(c);
		web__server_error(w, "creating a session", NULL);
		return;
	}
	memcpy(c->cookie, line.data, line.len + 1);
	sodium_memzero(line.data, line.len);
	base_buf_free(&line);
	sodium_memzero(token, sizeof(token));

	if (web__acct_session_add(w->site, hash, user_id, csrf, session_created, c)) {
		free(c);
		web__busy(w);
	}
}

/* ---- logout --------------------------------------------------------------- */

static void logged_out(const db_result *res, void *ud)
{
	web_ctx *w = ud;
	base_buf line = BASE_BUF_INIT;

	if (web__gone(w))
		return;
	if (res && !db_ok(res))
		BASE_LOGW("web", "deleting a session failed: %s", db_error(res));
	else if (res && db_ok(res) && w->sess.token_hash[0])
		/* Its live sockets (the space pages open in other tabs) go too. */
		sp_browser_disconnect_session(w->site->sp, w->sess.token_hash);
	if (w->sess.ok)
		BASE_LOGI("web", "user '%s' logged out from %s", w->sess.username,
		          w->req->remote_addr);
	web_cookie_set_line(&line, WEB_SESSION_COOKIE, "", 0, w->site->opts.secure_cookies);
	web__redirect(w, "/login", web_buf_cstr(&line));
	base_buf_free(&line);
}

static void logout_post_step(web_ctx *w)
{
	if (!web__csrf_ok(w, 0))
		return;
	if (!w->sess.token_hash[0]) {
		/* No cookie at all: nothing to forget, clear it anyway. */
		logged_out(NULL, w);
		return;
	}
	if (web__acct_session_end(w->site, w->sess.token_hash, logged_out, w))
		web__busy(w);
}

/* GET /logout changes nothing (a link or an image on another site could
 * follow it): it shows the button that POSTs, with the session's token. */
static void logout_get_step(web_ctx *w)
{
	base_buf b = BASE_BUF_INIT;

	if (!w->sess.ok) {
		web__redirect(w, "/login", NULL);
		return;
	}
	web_html(&b,
	         "<section class=\"panel narrow\">\n<h1>Log out</h1>\n"
	         "<p>Log out <strong>%s</strong> from this browser?</p>\n"
	         "<form method=\"post\" action=\"/logout\" class=\"stack\">\n",
	         w->sess.username);
	web__csrf_input(&b, w);
	web_html(&b, "<button type=\"submit\">Log out</button>\n</form>\n</section>\n");
	web__page(w, 200, "Log out", &b, NULL);
	base_buf_free(&b);
}

static void logout_get(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, logout_get_step);
}

static void logout_post(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, logout_post_step);
}

const web_route web__session_routes[] = {
    {HTTP_M_GET, "/logout", 0, logout_get},
    {HTTP_M_POST, "/logout", 0, logout_post},
    {0, NULL, 0, NULL},
};
