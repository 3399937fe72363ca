/*
 * accounts.c: the web layer's tables (users, sessions, site_settings). Their
 * SQL is here and nowhere else; pages and routes call these functions, and
 * the Spaces layer learns who a browser is through web_browser_auth.
 *
 * Each function queues one statement or one transaction on the site's pool
 * and returns 0 (cb is then called once, later, from the loop) or the
 * pool's error (cb never called). The columns each answer holds are given
 * with the function in web_internal.h.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"

/* ---- sessions ------------------------------------------------------------------ */

/* A live session of an enabled user. */
#define SESSION_LIVE                                                                  \
	"FROM sessions s JOIN users u ON u.id = s.user_id "                           \
	"WHERE s.token_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL " \
	"AND (s.idle_expires_at IS NULL OR s.idle_expires_at > now())"

int web__acct_session_find(web_site *site, const char *token_hash, db_cb cb, void *ud)
{
	/* The idle timeout is pushed forward at most once per a tenth of it
	 * (at most 5 min), so that most requests only read. */
	static const char sql[] =
	    "WITH s AS (SELECT u.id::text AS uid, u.username, u.is_admin, "
	    "s.csrf_token " SESSION_LIVE "), t AS (UPDATE sessions SET idle_expires_at = "
	    "LEAST(expires_at, now() + make_interval(secs => $2::int)) "
	    "WHERE token_hash = $1 AND $2::int > 0 AND EXISTS (SELECT 1 FROM s) "
	    "AND (idle_expires_at IS NULL OR "
	    "idle_expires_at < now() + make_interval(secs => $2::int - $3::int))) "
	    "SELECT uid, username, is_admin, csrf_token FROM s";
	char idle[16], step[16];
	unsigned idle_s = site->opts.session_idle_s;

	snprintf(idle, sizeof(idle), "%u", idle_s);
	snprintf(step, sizeof(step), "%u",
	         idle_s / 10 < 1     ? 1
	         : idle_s / 10 > 300 ? 300
	                             : idle_s / 10);
	const char *params[3] = {token_hash, idle, step};
	return db_query_flags(site->db, DB_RETRY, sql, 3, params, cb, ud);
}

int web__acct_session_add(web_site *site, const char *token_hash, const char *user_id,
                          const char *csrf, db_cb cb, void *ud)
{
	static const char sql[] =
	    "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at, idle_expires_at) "
	    "VALUES ($1, $2, $3, now() + make_interval(secs => $4::int), "
	    "CASE WHEN $5::int > 0 THEN now() + make_interval(secs => LEAST($4::int, $5::int)) "
	    "END)";
	char ttl[16], idle[16];

	snprintf(ttl, sizeof(ttl), "%u", site->opts.session_ttl_s);
	snprintf(idle, sizeof(idle), "%u", site->opts.session_idle_s);
	const char *params[5] = {token_hash, user_id, csrf, ttl, idle};
	return db_query(site->db, sql, 5, params, cb, ud);
}

int web__acct_session_end(web_site *site, const char *token_hash, db_cb cb, void *ud)
{
	static const char sql[] = "DELETE FROM sessions WHERE token_hash = $1";
	const char *params[1] = {token_hash};

	return db_query(site->db, sql, 1, params, cb, ud);
}

int web__acct_sessions_count(web_site *site, const char *user_id, db_cb cb, void *ud)
{
	static const char sql[] =
	    "SELECT count(*) FROM sessions WHERE user_id = $1 AND expires_at > now()";
	const char *params[1] = {user_id};

	return db_query_flags(site->db, DB_RETRY, sql, 1, params, cb, ud);
}

int web__acct_sessions_end_others(web_site *site, const char *user_id, const char *keep_hash,
                                  db_cb cb, void *ud)
{
	static const char sql[] =
	    "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2 RETURNING 1";
	const char *params[2] = {user_id, keep_hash};

	return db_query(site->db, sql, 2, params, cb, ud);
}

int web__acct_sessions_expire(web_site *site)
{
	static const char sql[] = "DELETE FROM sessions WHERE expires_at < now()";

	return db_query(site->db, sql, 0, NULL, NULL, NULL);
}

/* ---- the browser namespace's question: who is this? ------------------------------ */

typedef struct {
	web_site *site;
	sp_auth_done done;
	void *req;
	char hash[65];
} auth_ctx;

static void auth_found(const db_result *res, void *ud)
{
	auth_ctx *a = ud;
	sp_identity id = {NULL, 0, NULL};

	if (db_ok(res) && db_ntuples(res) == 1) {
		id.user_id = db_value(res, 0, 0);
		id.is_admin = strcmp(db_value(res, 0, 1), "t") == 0;
		id.session = a->hash;
	}
	a->done(a->req, &id);
	web__site_unref(a->site);
	free(a);
}

void web__browser_auth(const base_slice *cookie, sp_auth_done done, void *req, void *ud)
{
	web_site *site = ud;
	static const char sql[] = "SELECT u.id::text, u.is_admin " SESSION_LIVE;
	sp_identity anonymous = {NULL, 0, NULL};
	char token[WEB_TOKEN_MAX];
	auth_ctx *a;

	if (site->closed || !web_session_token(cookie, token, sizeof(token)) ||
	    !(a = calloc(1, sizeof(*a)))) {
		done(req, &anonymous);
		return;
	}
	a->site = site;
	a->done = done;
	a->req = req;
	web_sha256_hex(token, strlen(token), a->hash);
	sodium_memzero(token, sizeof(token));
	const char *params[1] = {a->hash};
	web__site_ref(site);
	if (db_query(site->db, sql, 1, params, auth_found, a)) {
		web__site_unref(site);
		free(a);
		done(req, &anonymous);
	}
}

/* ---- users ------------------------------------------------------------------------ */

int web__acct_user_find(web_site *site, const char *username, db_cb cb, void *ud)
{
	static const char sql[] = "SELECT id::text, password_hash, disabled_at IS NOT NULL "
	                          "FROM users WHERE username = $1";
	const char *params[1] = {username};

	return db_query_flags(site->db, DB_RETRY, sql, 1, params, cb, ud);
}

int web__acct_register_check(web_site *site, const char *username, db_cb cb, void *ud)
{
	/* Names differing only in case would confuse people: refused too. */
	static const char sql[] =
	    "SELECT (SELECT value FROM site_settings WHERE name = 'registration'), "
	    "EXISTS (SELECT 1 FROM users WHERE lower(username) = lower($1))";
	const char *params[1] = {username};

	return db_query(site->db, sql, 1, params, cb, ud);
}

int web__acct_user_add(web_site *site, const char *username, const char *hash, db_cb cb, void *ud)
{
	static const char sql[] = "INSERT INTO users (username, password_hash) VALUES ($1, $2)";
	const char *params[2] = {username, hash};

	return db_query(site->db, sql, 2, params, cb, ud);
}

int web__acct_password_get(web_site *site, const char *user_id, db_cb cb, void *ud)
{
	static const char sql[] = "SELECT password_hash FROM users WHERE id = $1";
	const char *params[1] = {user_id};

	return db_query_flags(site->db, DB_RETRY, sql, 1, params, cb, ud);
}

int web__acct_password_set(web_site *site, const char *user_id, const char *hash,
                           const char *keep_hash, db_cb cb, void *ud)
{
	static const char upd[] = "UPDATE users SET password_hash = $2 WHERE id = $1";
	static const char del[] = "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2";
	const char *p1[2] = {user_id, hash};
	const char *p2[2] = {user_id, keep_hash};
	db_stmt st[2] = {{upd, 2, p1}, {del, 2, p2}};

	return db_query_tx(site->db, st, 2, cb, ud);
}

int web__acct_user_disable(web_site *site, const char *user_id, int disable, db_cb cb, void *ud)
{
	static const char disable_sql[] =
	    "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1::bigint "
	    "RETURNING username";
	static const char enable_sql[] =
	    "UPDATE users SET disabled_at = NULL WHERE id = $1::bigint RETURNING username";
	static const char end_sessions[] = "DELETE FROM sessions WHERE user_id = $1::bigint";
	static const char nothing[] = "SELECT 1";
	const char *params[1] = {user_id};
	db_stmt st[2] = {
	    {disable ? disable_sql : enable_sql, 1, params},
	    {disable ? end_sessions : nothing, disable ? 1 : 0, disable ? params : NULL}};

	return db_query_tx(site->db, st, 2, cb, ud);
}

int web__acct_users_list(web_site *site, db_cb cb, void *ud)
{
	static const char users_sql[] = "SELECT username, is_admin, " TS(
	    "created_at") ", id::text, disabled_at IS NOT NULL FROM users ORDER BY id LIMIT 1000";
	static const char registration_sql[] =
	    "SELECT value FROM site_settings WHERE name = 'registration'";
	db_stmt st[2] = {{users_sql, 0, NULL}, {registration_sql, 0, NULL}};

	return db_query_tx(site->db, st, 2, cb, ud);
}

/* ---- site settings ------------------------------------------------------------------ */

int web__acct_registration_get(web_site *site, db_cb cb, void *ud)
{
	static const char sql[] = "SELECT value FROM site_settings WHERE name = 'registration'";

	return db_query_flags(site->db, DB_RETRY, sql, 0, NULL, cb, ud);
}

int web__acct_registration_set(web_site *site, const char *state, db_cb cb, void *ud)
{
	static const char sql[] =
	    "INSERT INTO site_settings (name, value) VALUES ('registration', $1) "
	    "ON CONFLICT (name) DO UPDATE SET value = $1, updated_at = now()";
	const char *params[1] = {state};

	return db_query(site->db, sql, 1, params, cb, ud);
}

/* ---- `spaces-server user ...` -------------------------------------------------------- */

unsigned web__acct_cli_statements(web_cli_cmd cmd, const char *name, const char *hash, int admin,
                                  const char *params[3][3], db_stmt out[3])
{
	static const char add_sql[] = "INSERT INTO users (username, password_hash, is_admin) "
	                              "VALUES ($1, $2, $3) RETURNING id::text";
	static const char passwd_sql[] = "UPDATE users SET password_hash = $2 "
	                                 "WHERE lower(username) = lower($1) RETURNING id::text";
	static const char disable_sql[] =
	    "UPDATE users SET disabled_at = coalesce(disabled_at, now()) "
	    "WHERE lower(username) = lower($1) RETURNING id::text";
	static const char enable_sql[] = "UPDATE users SET disabled_at = NULL "
	                                 "WHERE lower(username) = lower($1) RETURNING id::text";
	static const char end_sessions[] =
	    "DELETE FROM sessions WHERE user_id = "
	    "(SELECT id FROM users WHERE lower(username) = lower($1))";
	/* Sent at commit: every running server closes the user's live sockets. */
	static const char notify[] = "SELECT pg_notify($2, 'user ' || id::text) FROM users "
	                             "WHERE lower(username) = lower($1)";

	params[0][0] = params[1][0] = params[2][0] = name;
	params[0][1] = hash;
	params[0][2] = admin ? "t" : "f";
	params[2][1] = SP_BROWSER_CLOSE_CHANNEL;
	switch (cmd) {
	case WEB_CLI_ADD:
		out[0] = (db_stmt){add_sql, 3, params[0]};
		return 1;
	case WEB_CLI_ENABLE:
		out[0] = (db_stmt){enable_sql, 1, params[0]};
		return 1;
	case WEB_CLI_PASSWD:
		out[0] = (db_stmt){passwd_sql, 2, params[0]};
		break;
	default:
		out[0] = (db_stmt){disable_sql, 1, params[0]};
		break;
	}
	out[1] = (db_stmt){end_sessions, 1, params[1]};
	out[2] = (db_stmt){notify, 2, params[2]};
	return 3;
}
