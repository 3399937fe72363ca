/*
 * account.c: a user's own account.
 *
 *   GET  /account                     the password form and the sessions
 *   POST /account/password            current_password, new_password,
 *                                     confirm_password: a new password; the
 *                                     user's other sessions end
 *   POST /account/logout-others       the user's other sessions end
 *
 * Ending sessions also closes their live sockets at once
 * (sp_browser_disconnect_user), here and on the other processes.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

static void account_page(web_ctx *w, int status, const char *error, const char *notice,
                         const char *sessions)
{
	base_buf b = BASE_BUF_INIT;

	web_html(&b, "<section class=\"panel narrow\">\n<h1>Your account</h1>\n");
	if (notice)
		web_html(&b, "<p class=\"notice\" role=\"status\">%s</p>\n", notice);
	if (error)
		web_html(&b, "<p class=\"error\" role=\"alert\">%s</p>\n", error);
	web_html(&b,
	         "<p>Signed in as <strong>%s</strong>.</p>\n<h2>Change the password</h2>\n"
	         "<form method=\"post\" action=\"/account/password\" class=\"stack\">\n",
	         w->sess.username);
	web__csrf_input(&b, w);
	web_html(&b, "<label>Current password <input type=\"password\" name=\"current_password\" "
	             "autocomplete=\"current-password\" required></label>\n"
	             "<label>New password <input type=\"password\" name=\"new_password\" "
	             "autocomplete=\"new-password\" required minlength=\"8\">"
	             "<small>At least 8 characters, not your user name, not a common "
	             "password.</small></label>\n"
	             "<label>Confirm the new password <input type=\"password\" "
	             "name=\"confirm_password\" autocomplete=\"new-password\" required></label>\n"
	             "<button type=\"submit\">Change the password</button>\n</form>\n"
	             "<h2>Sessions</h2>\n");
	if (sessions)
		web_html(&b, "<p>You are signed in in %s session(s), this one included.</p>\n",
		         sessions);
	web_html(&b, "<form method=\"post\" action=\"/account/logout-others\" class=\"inline\">\n");
	web__csrf_input(&b, w);
	web_html(&b, "<button type=\"submit\" class=\"secondary\">Log out my other sessions"
	             "</button>\n</form>\n</section>\n");
	web__page(w, status, "Your account", &b, NULL);
	base_buf_free(&b);
}

static void sessions_counted(const db_result *res, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	account_page(w, 200, NULL, NULL,
	             db_ok(res) && db_ntuples(res) == 1 ? db_value(res, 0, 0) : NULL);
}

static void account_get_step(web_ctx *w)
{
	if (!w->sess.ok) {
		web__redirect(w, "/login?next=/account", NULL);
		return;
	}
	if (web__acct_sessions_count(w->site, w->sess.user_id, sessions_counted, w))
		account_page(w, 200, NULL, NULL, NULL);
}

static void account_get(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, account_get_step);
}

/* ---- log out the other sessions ------------------------------------------------ */

static void others_deleted(const db_result *res, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "ending sessions", res);
		return;
	}
	sp_browser_disconnect_user(w->site->sp, w->sess.user_id, w->sess.token_hash);
	BASE_LOGI("web", "user '%s' ended %d other session(s)", w->sess.username, db_ntuples(res));
	account_page(w, 200, NULL, "Your other sessions have been logged out.", "1");
}

static void logout_others_step(web_ctx *w)
{
	if (!w->sess.ok) {
		web__redirect(w, "/login", NULL);
		return;
	}
	if (!web__csrf_ok(w, 0))
		return;
	if (web__acct_sessions_end_others(w->site, w->sess.user_id, w->sess.token_hash,
	                                  others_deleted, w))
		web__busy(w);
}

static void logout_others(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, logout_others_step);
}

/* ---- change the password ------------------------------------------------------- */

typedef struct {
	web_ctx base;
	web_hash_job job;
	char *current; /* wiped and freed in cleanup */
	char *fresh;
	char old_hash[crypto_pwhash_STRBYTES];
	char new_hash[crypto_pwhash_STRBYTES];
	int verified, hash_rc;
} passwd_ctx;

static void passwd_cleanup(web_ctx *w)
{
	passwd_ctx *p = (passwd_ctx *)w;

	for (char **s = &p->current; s <= &p->fresh; s++) {
		if (*s) {
			sodium_memzero(*s, strlen(*s));
			free(*s);
			*s = NULL;
		}
	}
	sodium_memzero(p->old_hash, sizeof(p->old_hash));
	sodium_memzero(p->new_hash, sizeof(p->new_hash));
}

/* On the threadpool: checks the current password, then hashes the new one. */
static void passwd_work(web_hash_job *j)
{
	passwd_ctx *p = BASE_CONTAINER_OF(j, passwd_ctx, job);

	p->verified = p->old_hash[0] &&
	              crypto_pwhash_str_verify(p->old_hash, p->current, strlen(p->current)) == 0;
	if (p->verified)
		p->hash_rc = crypto_pwhash_str(p->new_hash, p->fresh, strlen(p->fresh),
		                               crypto_pwhash_OPSLIMIT_INTERACTIVE,
		                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

static void passwd_saved(const db_result *res, void *ud)
{
	passwd_ctx *p = ud;
	web_ctx *w = &p->base;

	if (web__gone(w))
		return;
	if (!db_ok(res) || db_tx_count(res) != 2) {
		web__server_error(w, "changing a password", res);
		return;
	}
	/* Whoever else was signed in with the old password is out, sockets included. */
	sp_browser_disconnect_user(w->site->sp, w->sess.user_id, w->sess.token_hash);
	BASE_LOGI("web", "user '%s' changed their password from %s", w->sess.username,
	          w->req->remote_addr);
	account_page(w, 200, NULL,
	             "Your password has been changed. Your other sessions have been "
	             "logged out.",
	             "1");
}

static void passwd_done(web_hash_job *j, int status)
{
	passwd_ctx *p = BASE_CONTAINER_OF(j, passwd_ctx, job);
	web_ctx *w = &p->base;

	if (web__gone(w))
		return;
	if (status || (p->verified && p->hash_rc)) {
		passwd_cleanup(w);
		web__server_error(w, "hashing a password", NULL);
		return;
	}
	if (!p->verified) {
		passwd_cleanup(w);
		web_limiter_fail(w->site->login_limiter, w->req->remote_addr, base_now_ms());
		BASE_LOGI("web", "password change of '%s' from %s: wrong current password",
		          w->sess.username, w->req->remote_addr);
		account_page(w, 200, "The current password is not right.", NULL, NULL);
		return;
	}
	int rc = web__acct_password_set(w->site, w->sess.user_id, p->new_hash, w->sess.token_hash,
	                                passwd_saved, p);
	passwd_cleanup(w);
	if (rc)
		web__busy(w);
}

static void old_hash_loaded(const db_result *res, void *ud)
{
	passwd_ctx *p = ud;
	web_ctx *w = &p->base;

	if (web__gone(w))
		return;
	if (!db_ok(res) || db_ntuples(res) != 1) {
		passwd_cleanup(w);
		web__server_error(w, "loading a password", res);
		return;
	}
	snprintf(p->old_hash, sizeof(p->old_hash), "%s", db_value(res, 0, 0));
	p->job.work = passwd_work;
	p->job.done = passwd_done;
	int rc = web__hash_run(w->site, &p->job, w->req->remote_addr);
	if (rc == 0)
		return;
	passwd_cleanup(w);
	if (rc == BASE_ELIMIT)
		account_page(w, 429, "Too many password checks at once. Try again in a moment.",
		             NULL, NULL);
	else
		web__busy(w);
}

static void passwd_step(web_ctx *w)
{
	passwd_ctx *p = (passwd_ctx *)w;
	const char *current = web_form_get(&w->form, "current_password");
	const char *fresh = web_form_get(&w->form, "new_password");
	const char *confirm = web_form_get(&w->form, "confirm_password");
	const char *error = NULL;
	unsigned wait;

	w->cleanup = passwd_cleanup;
	if (!w->sess.ok) {
		web__redirect(w, "/login", NULL);
		return;
	}
	if (!web__csrf_ok(w, 0))
		return;
	if (w->form_rc || !current || !*current || strlen(current) > WEB_PASSWORD_MAX)
		error = "Please give your current password.";
	else if (confirm && fresh && strcmp(confirm, fresh) != 0)
		error = "The two new passwords do not match.";
	else
		error = web_password_problem(w->sess.username, fresh,
		                             w->site->opts.password_common_check);
	if (error) {
		account_page(w, 200, error, NULL, NULL);
		return;
	}
	/* Guessing the current password here is a login attempt like any other. */
	if (web_limiter_blocked(w->site->login_limiter, w->req->remote_addr, base_now_ms(),
	                        &wait)) {
		char msg[128];

		snprintf(msg, sizeof(msg), "Too many wrong passwords. Try again in %u seconds.",
		         wait);
		account_page(w, 429, msg, NULL, NULL);
		return;
	}
	p->current = strdup(current);
	p->fresh = strdup(fresh);
	if (!p->current || !p->fresh) {
		web__server_error(w, "changing a password", NULL);
		return;
	}
	if (web__acct_password_get(w->site, w->sess.user_id, old_hash_loaded, p))
		web__busy(w);
}

static void passwd_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(passwd_ctx), NULL, 0, passwd_step);
}

const web_route web__account_routes[] = {
    {HTTP_M_GET, "/account", 0, account_get},
    {HTTP_M_POST, "/account/password", 0, passwd_route},
    {HTTP_M_POST, "/account/logout-others", 0, logout_others},
    {0, NULL, 0, NULL},
};
