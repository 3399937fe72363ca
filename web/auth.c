/*
 * auth.c: /login and /register.
 *
 * Passwords are hashed with argon2id (crypto_pwhash_str, interactive
 * limits): about a tenth of a second of CPU and 64 MiB each, so it runs on
 * the libuv threadpool, never on the loop. A login for an unknown user
 * still verifies against a fixed hash, so that the answer takes as long as
 * for a known one and does not tell which names exist.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

#define LOGIN_FAILED "Invalid username or password"

/* ---- pages ---------------------------------------------------------------- */

/* 1 when next is a path on this site that a login may return to. */
static int safe_next(const char *next)
{
	if (!next || next[0] != '/' || next[1] == '/' || next[1] == '\\' || strlen(next) > 200)
		return 0;
	for (const char *p = next; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || c == '\\' || c == '"' || c == '<' || c == '>')
			return 0;
	}
	return 1;
}

static void login_page(web_ctx *w, int status, const char *error, const char *username,
                       const char *next)
{
	base_buf b = BASE_BUF_INIT;

	web_html(&b, "<section class=\"panel narrow\">\n<h1>Log in</h1>\n");
	if (error)
		web_html(&b, "<p class=\"error\" role=\"alert\">%s</p>\n", error);
	web_html(&b, "<form method=\"post\" action=\"/login\" class=\"stack\">\n");
	if (safe_next(next))
		web_html(&b, "<input type=\"hidden\" name=\"next\" value=\"%s\">\n", next);
	web_html(&b,
	         "<label>Username <input name=\"username\" autocomplete=\"username\" "
	         "required maxlength=\"64\" value=\"%s\" autofocus></label>\n"
	         "<label>Password <input type=\"password\" name=\"password\" "
	         "autocomplete=\"current-password\" required></label>\n"
	         "<button type=\"submit\">Log in</button>\n</form>\n"
	         "<p class=\"muted\">No account yet? <a href=\"/register\">Register</a></p>\n"
	         "</section>\n",
	         username ? username : "");
	web__page(w, status, "Log in", &b, NULL);
	base_buf_free(&b);
}

static void register_page(web_ctx *w, int status, const char *error, const char *username)
{
	base_buf b = BASE_BUF_INIT;

	web_html(&b, "<section class=\"panel narrow\">\n<h1>Register</h1>\n");
	if (error)
		web_html(&b, "<p class=\"error\" role=\"alert\">%s</p>\n", error);
	web_html(&b,
	         "<form method=\"post\" action=\"/register\" class=\"stack\">\n"
	         "<label>Username <input name=\"username\" autocomplete=\"username\" required "
	         "maxlength=\"64\" pattern=\"[A-Za-z0-9_]+\" value=\"%s\" autofocus>"
	         "<small>Letters, digits and underscores, up to 64.</small></label>\n"
	         "<label>Password <input type=\"password\" name=\"password\" "
	         "autocomplete=\"new-password\" required></label>\n"
	         "<label>Confirm password <input type=\"password\" name=\"confirm_password\" "
	         "autocomplete=\"new-password\" required></label>\n"
	         "<button type=\"submit\">Create account</button>\n</form>\n"
	         "<p class=\"muted\">Already registered? <a href=\"/login\">Log in</a></p>\n"
	         "</section>\n",
	         username ? username : "");
	web__page(w, status, "Register", &b, NULL);
	base_buf_free(&b);
}

static void login_get_step(web_ctx *w)
{
	base_slice v;
	char next[256] = "";

	if (base_query_get(w->req->query, "next", &v) && v.len < sizeof(next)) {
		ssize_t n = base_url_decode(v.base, v.len, next, 1);

		next[n > 0 ? n : 0] = 0;
	}
	login_page(w, 200, NULL, NULL, next);
}

static void login_get(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, login_get_step);
}

static void register_get_step(web_ctx *w)
{
	register_page(w, 200, NULL, NULL);
}

static void register_get(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, register_get_step);
}

/* ---- login ---------------------------------------------------------------- */

typedef struct {
	web_ctx base;
	uv_work_t work;
	char *password; /* wiped and freed in cleanup */
	char hash[crypto_pwhash_STRBYTES];
	int found;
	int verified;
	char user_id[24];
	char username[WEB_USERNAME_MAX + 1];
	char next[256];
} login_ctx;

static void login_cleanup(web_ctx *w)
{
	login_ctx *l = (login_ctx *)w;

	if (l->password) {
		sodium_memzero(l->password, strlen(l->password));
		free(l->password);
		l->password = NULL;
	}
	sodium_memzero(l->hash, sizeof(l->hash));
}

static uv_once_t dummy_once = UV_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];

static void make_dummy_hash(void)
{
	char pw[32];

	base_random_id(pw, 16);
	if (crypto_pwhash_str(dummy_hash, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE))
		dummy_hash[0] = 0;
}

/* On the threadpool: touches only the context's own fields. */
static void verify_work(uv_work_t *req)
{
	login_ctx *l = req->data;
	const char *hash = l->hash;

	if (!l->found) {
		uv_once(&dummy_once, make_dummy_hash);
		hash = dummy_hash;
	}
	l->verified =
	    hash[0] && crypto_pwhash_str_verify(hash, l->password, strlen(l->password)) == 0;
	if (!l->found)
		l->verified = 0;
}

static void login_failed(login_ctx *l)
{
	web_ctx *w = &l->base;

	web_limiter_fail(w->site->login_limiter, w->req->remote_addr, base_now_ms());
	BASE_LOGI("web", "failed login for '%s' from %s", l->username, w->req->remote_addr);
	login_page(w, 200, LOGIN_FAILED, l->username, l->next);
}

static void verify_done(uv_work_t *req, int status)
{
	login_ctx *l = req->data;
	web_ctx *w = &l->base;

	if (web__gone(w))
		return;
	login_cleanup(w);
	if (status || !l->verified) {
		login_failed(l);
		return;
	}
	BASE_LOGI("web", "user '%s' logged in from %s", l->username, w->req->remote_addr);
	web__session_create(w, l->user_id, safe_next(l->next) ? l->next : "/");
}

static void verify(login_ctx *l)
{
	int rc = uv_queue_work(l->base.site->loop, &l->work, verify_work, verify_done);

	if (rc) {
		login_cleanup(&l->base);
		web__message_page(&l->base, 503, "Server busy", "Please try again in a moment.");
	}
}

static void user_found(const db_result *res, void *ud)
{
	login_ctx *l = ud;

	if (web__gone(&l->base))
		return;
	if (!db_ok(res)) {
		web__server_error(&l->base, "looking up a user", res);
		return;
	}
	if (db_ntuples(res) == 1 && !db_isnull(res, 0, 1) &&
	    db_value_len(res, 0, 1) < sizeof(l->hash)) {
		l->found = 1;
		snprintf(l->user_id, sizeof(l->user_id), "%s", db_value(res, 0, 0));
		snprintf(l->hash, sizeof(l->hash), "%s", db_value(res, 0, 1));
	}
	verify(l);
}

static void login_post_step(web_ctx *w)
{
	login_ctx *l = (login_ctx *)w;
	const char *user = web_form_get(&w->form, "username");
	const char *pass = web_form_get(&w->form, "password");
	const char *next = web_form_get(&w->form, "next");
	unsigned wait;

	w->cleanup = login_cleanup;
	if (!web__csrf_ok(w, 0))
		return;
	snprintf(l->username, sizeof(l->username), "%s", user && strlen(user) <= 64 ? user : "");
	snprintf(l->next, sizeof(l->next), "%s", next && safe_next(next) ? next : "");
	if (web_limiter_blocked(w->site->login_limiter, w->req->remote_addr, base_now_ms(),
	                        &wait)) {
		char msg[160], hdr[64];

		snprintf(msg, sizeof(msg),
		         "Too many failed logins from your address. Try again in %u seconds.",
		         wait);
		snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", wait);
		base_buf b = BASE_BUF_INIT;
		web_html(&b,
		         "<section class=\"panel narrow\">\n<h1>Log in</h1>\n"
		         "<p class=\"error\" role=\"alert\">%s</p>\n</section>\n",
		         msg);
		web__page(w, 429, "Log in", &b, hdr);
		base_buf_free(&b);
		return;
	}
	if (w->form_rc || !user || !pass || !web_username_ok(user) || !*pass ||
	    strlen(pass) > WEB_PASSWORD_MAX) {
		login_failed(l);
		return;
	}
	l->password = strdup(pass);
	if (!l->password) {
		web__server_error(w, "login", NULL);
		return;
	}
	l->work.data = l;
	static const char sql[] = "SELECT id::text, password_hash FROM users WHERE username = $1";
	const char *params[1] = {user};
	if (db_query_flags(w->site->db, DB_RETRY, sql, 1, params, user_found, l)) {
		login_cleanup(w);
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
	}
}

static void login_post(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(login_ctx), NULL, 0, login_post_step);
}

/* ---- register ------------------------------------------------------------- */

typedef struct {
	web_ctx base;
	uv_work_t work;
	char *password;
	char hash[crypto_pwhash_STRBYTES];
	int hash_rc;
	char username[WEB_USERNAME_MAX + 1];
} register_ctx;

static void register_cleanup(web_ctx *w)
{
	register_ctx *r = (register_ctx *)w;

	if (r->password) {
		sodium_memzero(r->password, strlen(r->password));
		free(r->password);
		r->password = NULL;
	}
}

static void hash_work(uv_work_t *req)
{
	register_ctx *r = req->data;

	r->hash_rc = crypto_pwhash_str(r->hash, r->password, strlen(r->password),
	                               crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

static void user_inserted(const db_result *res, void *ud)
{
	register_ctx *r = ud;
	web_ctx *w = &r->base;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		if (strcmp(db_sqlstate(res), "23505") == 0) {
			register_page(w, 200, "That username is already taken", r->username);
			return;
		}
		web__server_error(w, "creating a user", res);
		return;
	}
	BASE_LOGI("web", "user '%s' registered from %s", r->username, w->req->remote_addr);
	web__redirect(w, "/login", NULL);
}

static void hash_done(uv_work_t *req, int status)
{
	register_ctx *r = req->data;
	web_ctx *w = &r->base;

	if (web__gone(w))
		return;
	register_cleanup(w);
	if (status || r->hash_rc) {
		web__server_error(w, "hashing a password", NULL);
		return;
	}
	static const char sql[] = "INSERT INTO users (username, password_hash) VALUES ($1, $2)";
	const char *params[2] = {r->username, r->hash};
	if (db_query(w->site->db, sql, 2, params, user_inserted, r))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void name_checked(const db_result *res, void *ud)
{
	register_ctx *r = ud;
	web_ctx *w = &r->base;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "checking a username", res);
		return;
	}
	if (db_ntuples(res) > 0) {
		register_page(w, 200, "That username is already taken", r->username);
		return;
	}
	r->work.data = r;
	if (uv_queue_work(w->site->loop, &r->work, hash_work, hash_done))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void register_post_step(web_ctx *w)
{
	register_ctx *r = (register_ctx *)w;
	const char *user = web_form_get(&w->form, "username");
	const char *pass = web_form_get(&w->form, "password");
	const char *confirm = web_form_get(&w->form, "confirm_password");
	const char *error = NULL;

	w->cleanup = register_cleanup;
	if (!web__csrf_ok(w, 0))
		return;
	if (w->form_rc)
		error = "The form could not be read. Please try again";
	else if (!user || !*user)
		error = "Please choose a username";
	else if (!web_username_ok(user))
		error = "Usernames may only contain letters, digits and underscores (at most 64)";
	else if (!pass || !*pass)
		error = "Please choose a password";
	else if (strlen(pass) > WEB_PASSWORD_MAX)
		error = "That password is too long (at most 1024 characters)";
	else if (confirm && strcmp(confirm, pass) != 0)
		error = "The two passwords do not match";
	if (error) {
		register_page(w, 200, error, user && strlen(user) <= 64 ? user : NULL);
		return;
	}
	snprintf(r->username, sizeof(r->username), "%s", user);
	r->password = strdup(pass);
	if (!r->password) {
		web__server_error(w, "register", NULL);
		return;
	}
	/* Names differing only in case would confuse people: refuse them too. */
	static const char sql[] = "SELECT 1 FROM users WHERE lower(username) = lower($1)";
	const char *params[1] = {user};
	if (db_query(w->site->db, sql, 1, params, name_checked, r))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void register_post(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(register_ctx), NULL, 0, register_post_step);
}

void web__auth_routes(web_site *site)
{
	http_route(site->http, HTTP_M_GET, "/login", 0, login_get, site);
	http_route(site->http, HTTP_M_POST, "/login", 0, login_post, site);
	http_route(site->http, HTTP_M_GET, "/register", 0, register_get, site);
	http_route(site->http, HTTP_M_POST, "/register", 0, register_post, site);
}
