/*
 * admin_users.c: what admins do to accounts.
 *
 *   POST /admin/user/disable/<id>   the user cannot log in any more; their
 *                                   sessions end and their live sockets close
 *   POST /admin/user/enable/<id>    they can again
 *   POST /admin/registration        state=open|closed: whether anyone may
 *                                   register (--registration closed wins)
 *
 * Each goes back to /admin (302). Everyone but admins is refused first.
 */
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

typedef struct {
	web_ctx base;
	int disable;
} user_ctx;

static void user_changed(const db_result *res, void *ud)
{
	user_ctx *u = ud;
	web_ctx *w = &u->base;

	if (web__gone(w))
		return;
	if (!db_ok(res) || db_tx_count(res) != 2) {
		web__server_error(w, "changing a user", res);
		return;
	}
	const db_result *r = db_tx_result(res, 0);
	if (db_ntuples(r) != 1) {
		web__message_page(w, 404, "Not found", "There is no such user.");
		return;
	}
	BASE_LOGI("web", "admin '%s' %s user '%s'", w->sess.username,
	          u->disable ? "disabled" : "enabled", db_value(r, 0, 0));
	if (u->disable)
		sp_browser_disconnect_user(w->site->sp, w->id, NULL);
	web__redirect(w, "/admin#users", NULL);
}

static void user_step(web_ctx *w)
{
	user_ctx *u = (user_ctx *)w;

	if (!web__require_admin(w) || !web__csrf_ok(w, 0))
		return;
	if (!w->id[0] || strspn(w->id, "0123456789") != strlen(w->id) || strlen(w->id) > 18) {
		web__message_page(w, 404, "Not found", "There is no such user.");
		return;
	}
	if (u->disable && strcmp(w->id, w->sess.user_id) == 0) {
		web__message_page(w, 400, "Not allowed",
		                  "You cannot disable your own account: ask another admin.");
		return;
	}
	if (web__acct_user_disable(w->site, w->id, u->disable, user_changed, u))
		web__busy(w);
}

static void enable_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(user_ctx), "/admin/user/enable/", 0, user_step);
}

/* web__start zeroes the context: disabling is told apart by the step. */
static void disable_step(web_ctx *w)
{
	((user_ctx *)w)->disable = 1;
	user_step(w);
}

static void disable_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(user_ctx), "/admin/user/disable/", 0, disable_step);
}

/* ---- registration open or closed ------------------------------------------------ */

static void registration_saved(const db_result *res, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "saving a setting", res);
		return;
	}
	web__redirect(w, "/admin#users", NULL);
}

static void registration_step(web_ctx *w)
{
	const char *state = web_form_get(&w->form, "state");

	if (!web__require_admin(w) || !web__csrf_ok(w, 0))
		return;
	if (!state || (strcmp(state, "open") != 0 && strcmp(state, "closed") != 0)) {
		web__message_page(w, 400, "Bad request", "state must be open or closed.");
		return;
	}
	BASE_LOGI("web", "admin '%s' set registration %s", w->sess.username, state);
	if (web__acct_registration_set(w->site, state, registration_saved, w))
		web__busy(w);
}

static void registration_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, registration_step);
}

const web_route web__admin_users_routes[] = {
    {HTTP_M_POST, "/admin/user/disable/", 1, disable_route},
    {HTTP_M_POST, "/admin/user/enable/", 1, enable_route},
    {HTTP_M_POST, "/admin/registration", 0, registration_route},
    {0, NULL, 0, NULL},
};
