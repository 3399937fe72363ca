/*
 * auth.c: /login and /register.
 *
 * Passwords are hashed with argon2id (crypto_pwhash_str, interactive
 * limits): about a tenth of a second of CPU and 64 MiB each, so it runs on
 * the libuv threadpool, never on the loop, and one at a time per client
 * address (pwhash.c). A login for an unknown user still verifies against a
 * fixed hash, so that the answer takes as long as for a known one and does
 * not tell which names exist.
 *
 * Limits are taken before any hash is computed, on the loop, in one step
 * (ratelimit.c): failed logins per address (then 429 until the window
 * ends), failed logins per account (then the account is paced, one attempt
 * every few seconds, so that nobody can lock its owner out), and
 * registrations per address. A correct password gives its login attempts
 * back.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

#define LOGIN_FAILED "Invalid username or password"
#define FLASH_COOKIE "spaces_flash"
#define REGISTERED_NOTICE "Your account has been created. You can log in now."

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

static void login_page_ex(web_ctx *w, int status, const char *error, const char *username,
                          const char *next, const char *notice, const char *headers)
{
	base_buf b = BASE_BUF_INIT;

	web_html(&b, "<section class=\"panel narrow\">\n<h1>Log in</h1>\n");
	if (notice)
		web_html(&b, "<p class=\"notice\" role=\"status\">%s</p>\n", notice);
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
	web__page(w, status, "Log in", &b, headers);
	base_buf_free(&b);
}

static void login_page(web_ctx *w, int status, const char *error, const char *username,
                       const char *next)
{
	login_page_ex(w, status, error, username, next, NULL, NULL);
}

/* A page with one error in the login or register panel (429, 403). */
static void refusal_page(web_ctx *w, int status, const char *title, const char *msg,
                         unsigned retry_after)
{
	base_buf b = BASE_BUF_INIT;
	char hdr[64] = "";

	if (retry_after)
		snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", retry_after);
	web_html(&b,
	         "<section class=\"panel narrow\">\n<h1>%s</h1>\n"
	         "<p class=\"error\" role=\"alert\">%s</p>\n</section>\n",
	         title, msg);
	web__page(w, status, title, &b, hdr);
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
	const base_slice *cookie = http_header_get(w->req, "Cookie");
	base_buf clear = BASE_BUF_INIT;
	int registered = 0;

	if (base_query_get(w->req->query, "next", &v) && v.len < sizeof(next)) {
		ssize_t n = base_url_decode(v.base, v.len, next, 1);

		next[n > 0 ? n : 0] = 0;
	}
	/* Just registered (POST /register left a note): say so, once. */
	if (cookie && web_cookie_get(*cookie, FLASH_COOKIE, &v) &&
	    base_slice_caseeq(v, "registered")) {
		registered = 1;
		web_cookie_set_line(&clear, FLASH_COOKIE, "", 0, w->site->opts.secure_cookies);
	}
	login_page_ex(w, 200, NULL, NULL, next, registered ? REGISTERED_NOTICE : NULL,
	              registered ? web_buf_cstr(&clear) : NULL);
	base_buf_free(&clear);
}

static void login_get(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, login_get_step);
}

static void registration_closed_page(web_ctx *w, int status)
{
	refusal_page(w, status, "Register",
	             "Registration is closed on this site. Ask an administrator for an account.",
	             0);
}

static void register_state_loaded(const db_result *res, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	if (db_ok(res) && db_ntuples(res) == 1 && !db_isnull(res, 0, 0) &&
	    strcmp(db_value(res, 0, 0), "closed") == 0) {
		registration_closed_page(w, 200);
		return;
	}
	register_page(w, 200, NULL, NULL);
}

static void register_get_step(web_ctx *w)
{
	if (w->site->opts.registration_closed) {
		registration_closed_page(w, 200);
		return;
	}
	if (web__acct_registration_get(w->site, register_state_loaded, w))
		register_page(w, 200, NULL, NULL);
}

static void register_get(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, register_get_step);
}

/* ---- limits taken before hashing ------------------------------------------ */

/* "acct:<name in lowercase>": the key of an account in the account limiter. */
static void account_key(const char *user, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "acct:%s", user);

	for (size_t i = 5; i < n && i < cap; i++) {
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] + 32);
	}
}

/* ---- login ---------------------------------------------------------------- */

typedef struct {
	web_ctx base;
	web_hash_job job;
	char *password; /* wiped and freed in cleanup */
	char hash[crypto_pwhash_STRBYTES];
	int found;
	int disabled;
	int verified;
	int took; /* attempts taken from the address and account limiters */
	char user_id[24];
	char username[WEB_USERNAME_MAX + 1];
	char account[WEB_LIMITER_KEY_MAX];
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

/* The login did not fail (a correct password, or it never reached the hash). */
static void login_refund(login_ctx *l)
{
	web_site *site = l->base.site;
	uint64_t now = base_now_ms();

	if (!l->took)
		return;
	l->took = 0;
	web_limiter_refund(site->login_limiter, l->base.req->remote_addr, now);
	web_limiter_refund(site->account_limiter, l->account, now);
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
static void verify_work(web_hash_job *j)
{
	login_ctx *l = BASE_CONTAINER_OF(j, login_ctx, job);
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

	BASE_LOGI("web", "failed login for '%s' from %s", l->username, w->req->remote_addr);
	login_page(w, 200, LOGIN_FAILED, l->username, l->next);
}

static void verify_done(web_hash_job *j, int status)
{
	login_ctx *l = BASE_CONTAINER_OF(j, login_ctx, job);
	web_ctx *w = &l->base;

	if (web__gone(w))
		return;
	login_cleanup(w);
	if (status || !l->verified) {
		login_failed(l);
		return;
	}
	login_refund(l);
	if (l->disabled) {
		BASE_LOGI("web", "login of disabled user '%s' refused from %s", l->username,
		          w->req->remote_addr);
		login_page(w, 403, "This account has been disabled by an administrator.",
		           l->username, l->next);
		return;
	}
	BASE_LOGI("web", "user '%s' logged in from %s", l->username, w->req->remote_addr);
	web__session_create(w, l->user_id, safe_next(l->next) ? l->next : "/");
}

static void verify(login_ctx *l)
{
	web_ctx *w = &l->base;

	l->job.work = verify_work;
	l->job.done = verify_done;
	int rc = web__hash_run(w->site, &l->job, w->req->remote_addr);
	if (rc == 0)
		return;
	login_refund(l);
	login_cleanup(w);
	if (rc == BASE_ELIMIT)
		refusal_page(w, 429, "Log in",
		             "Too many logins at once from your address. Try again in a moment.",
		             1);
	else
		web__busy(w);
}

static void user_found(const db_result *res, void *ud)
{
	login_ctx *l = ud;

	if (web__gone(&l->base))
		return;
	if (!db_ok(res)) {
		login_refund(l);
		web__server_error(&l->base, "looking up a user", res);
		return;
	}
	if (db_ntuples(res) == 1 && !db_isnull(res, 0, 1) &&
	    db_value_len(res, 0, 1) < sizeof(l->hash)) {
		l->found = 1;
		snprintf(l->user_id, sizeof(l->user_id), "%s", db_value(res, 0, 0));
		snprintf(l->hash, sizeof(l->hash), "%s", db_value(res, 0, 1));
		l->disabled = strcmp(db_value(res, 0, 2), "t") == 0;
	}
	verify(l);
}

static void login_post_step(web_ctx *w)
{
	login_ctx *l = (login_ctx *)w;
	const char *user = web_form_get(&w->form, "username");
	const char *pass = web_form_get(&w->form, "password");
	const char *next = web_form_get(&w->form, "next");
	const char *addr = w->req->remote_addr;
	uint64_t now = base_now_ms();
	unsigned wait;
	char msg[160];

	w->cleanup = login_cleanup;
	if (!web__csrf_ok(w, 0))
		return;
	snprintf(l->username, sizeof(l->username), "%s", user && strlen(user) <= 64 ? user : "");
	snprintf(l->next, sizeof(l->next), "%s", next && safe_next(next) ? next : "");
	/* Counted now, before anything else can run: parallel attempts cannot
	 * all pass a check that none of them has been counted in yet. */
	if (!web_limiter_take(w->site->login_limiter, addr, now, &wait)) {
		BASE_LOGI("web",
		          "login for '%s' from %s refused: too many failures from the address",
		          l->username, addr);
		snprintf(msg, sizeof(msg),
		         "Too many failed logins from your address. Try again in %u seconds.",
		         wait);
		refusal_page(w, 429, "Log in", msg, wait);
		return;
	}
	if (w->form_rc || !user || !pass || !web_username_ok(user) || !*pass ||
	    strlen(pass) > WEB_PASSWORD_MAX) {
		login_failed(l);
		return;
	}
	account_key(user, l->account, sizeof(l->account));
	if (!web_limiter_take(w->site->account_limiter, l->account, now, &wait)) {
		web_limiter_refund(w->site->login_limiter, addr, now);
		BASE_LOGI("web",
		          "login for '%s' from %s delayed: too many failures for the account",
		          l->username, addr);
		snprintf(msg, sizeof(msg),
		         "Too many failed logins for this account: it is slowed down for a "
		         "while. Try again in %u seconds.",
		         wait);
		refusal_page(w, 429, "Log in", msg, wait);
		return;
	}
	l->took = 1;
	l->password = strdup(pass);
	if (!l->password) {
		login_refund(l);
		web__server_error(w, "login", NULL);
		return;
	}
	if (web__acct_user_find(w->site, user, user_found, l)) {
		login_refund(l);
		login_cleanup(w);
		web__busy(w);
	}
}

static void login_post(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(login_ctx), NULL, 0, login_post_step);
}

/* ---- register ------------------------------------------------------------- */

typedef struct {
	web_ctx base;
	web_hash_job job;
	char *password;
	char hash[crypto_pwhash_STRBYTES];
	int hash_rc;
	int took; /* a registration taken from the address's budget */
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
	sodium_memzero(r->hash, sizeof(r->hash));
}

static void register_refund(register_ctx *r)
{
	if (r->took)
		web_limiter_refund(r->base.site->register_limiter, r->base.req->remote_addr,
		                   base_now_ms());
	r->took = 0;
}

static void hash_work(web_hash_job *j)
{
	register_ctx *r = BASE_CONTAINER_OF(j, register_ctx, job);

	r->hash_rc = crypto_pwhash_str(r->hash, r->password, strlen(r->password),
	                               crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

static void user_inserted(const db_result *res, void *ud)
{
	register_ctx *r = ud;
	web_ctx *w = &r->base;
	base_buf flash = BASE_BUF_INIT;

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
	/* The login page says the account was made (the 302 stays the one to /login). */
	web_cookie_set_line(&flash, FLASH_COOKIE, "registered", 300, w->site->opts.secure_cookies);
	web__redirect(w, "/login", web_buf_cstr(&flash));
	base_buf_free(&flash);
}

static void hash_done(web_hash_job *j, int status)
{
	register_ctx *r = BASE_CONTAINER_OF(j, register_ctx, job);
	web_ctx *w = &r->base;

	if (web__gone(w))
		return;
	if (r->password) {
		sodium_memzero(r->password, strlen(r->password));
		free(r->password);
		r->password = NULL;
	}
	if (status || r->hash_rc) {
		web__server_error(w, "hashing a password", NULL);
		return;
	}
	if (web__acct_user_add(w->site, r->username, r->hash, user_inserted, r))
		web__busy(w);
}

static void name_checked(const db_result *res, void *ud)
{
	register_ctx *r = ud;
	web_ctx *w = &r->base;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		register_refund(r);
		web__server_error(w, "checking a username", res);
		return;
	}
	/* registration setting, name taken */
	if (!db_isnull(res, 0, 0) && strcmp(db_value(res, 0, 0), "closed") == 0) {
		register_refund(r);
		registration_closed_page(w, 403);
		return;
	}
	if (strcmp(db_value(res, 0, 1), "t") == 0) {
		register_refund(r);
		register_page(w, 200, "That username is already taken", r->username);
		return;
	}
	r->job.work = hash_work;
	r->job.done = hash_done;
	int rc = web__hash_run(w->site, &r->job, w->req->remote_addr);
	if (rc == 0)
		return;
	register_refund(r);
	if (rc == BASE_ELIMIT)
		refusal_page(w, 429, "Register",
		             "Too many registrations at once from your address. Try again in a "
		             "moment.",
		             1);
	else
		web__busy(w);
}

static void register_post_step(web_ctx *w)
{
	register_ctx *r = (register_ctx *)w;
	const char *user = web_form_get(&w->form, "username");
	const char *pass = web_form_get(&w->form, "password");
	const char *confirm = web_form_get(&w->form, "confirm_password");
	const char *error = NULL;
	unsigned wait;

	w->cleanup = register_cleanup;
	if (!web__csrf_ok(w, 0))
		return;
	if (w->site->opts.registration_closed) {
		registration_closed_page(w, 403);
		return;
	}
	if (w->form_rc)
		error = "The form could not be read. Please try again";
	else if (!user || !*user)
		error = "Please choose a username";
	else if (!web_username_ok(user))
		error = "Usernames may only contain letters, digits and underscores (at most 64)";
	else if (confirm && pass && strcmp(confirm, pass) != 0)
		error = "The two passwords do not match";
	else
		error = web_password_problem(user, pass, w->site->opts.password_common_check);
	if (error) {
		register_page(w, 200, error, user && strlen(user) <= 64 ? user : NULL);
		return;
	}
	if (!web_limiter_take(w->site->register_limiter, w->req->remote_addr, base_now_ms(),
	                      &wait)) {
		char msg[160];

		BASE_LOGW("web", "registration of '%s' from %s refused: too many from the address",
		          user, w->req->remote_addr);
		snprintf(msg, sizeof(msg),
		         "Too many registrations from your address. Try again in %u seconds.",
		         wait);
		refusal_page(w, 429, "Register", msg, wait);
		return;
	}
	r->took = 1;
	snprintf(r->username, sizeof(r->username), "%s", user);
	r->password = strdup(pass);
	if (!r->password) {
		register_refund(r);
		web__server_error(w, "register", NULL);
		return;
	}
	if (web__acct_register_check(w->site, user, name_checked, r)) {
		register_refund(r);
		web__busy(w);
	}
}

static void register_post(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(register_ctx), NULL, 0, register_post_step);
}

const web_route web__auth_routes[] = {
    {HTTP_M_GET, "/login", 0, login_get},
    {HTTP_M_POST, "/login", 0, login_post},
    {HTTP_M_GET, "/register", 0, register_get},
    {HTTP_M_POST, "/register", 0, register_post},
    {0, NULL, 0, NULL},
};
