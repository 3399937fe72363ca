/*
 * web.h: the Spaces website.
 *
 * Pages (spaces list, space page, admin), accounts and sessions, the JSON
 * routes old clients call (submit, status), uploaded files, and the static
 * files: the socket.io.js client bundle and the site's own CSS and JS.
 * Every route and answer follows docs/protocol.md (PROTOCOL.md).
 *
 * Contracts: everything runs on the loop of the HTTP server (the Spaces
 * application's loop); password hashing runs on the libuv threadpool and
 * touches only its own job. Options are copied by the functions that take
 * them. The site owns the users, sessions and site_settings tables (their
 * SQL is in web/accounts.c only) and reaches the Spaces tables only through
 * spaces/store.h; it tells the Spaces layer who a browser is through the
 * callback it sets (sp_browser_auth_set), so the session cookie is read in
 * one place (web_session_token). The site and the metrics live until their
 * _free, and their memory until the last request, query or file job in
 * progress has ended.
 */
#ifndef WEB_H
#define WEB_H

#include "http/http.h"
#include "socketio.h"
#include "spaces.h"

typedef struct web_site web_site;

typedef struct {
	/* Directory of the socket.io-client bundle (the files of the npm
	 * package's dist/: socket.io.js and friends), read once at start-up.
	 * Required: web_site_new fails when socket.io.js cannot be read. (NULL) */
	const char *client_dist_dir;
	/* Directory of the site's own files (spaces.css, spaces.js), served
	 * under /static/, read once at start-up; web_site_new fails when it
	 * cannot be opened. NULL: none. (NULL) */
	const char *static_dir;
	/* Adds Secure to the session cookie (the site is served over HTTPS). (0) */
	int secure_cookies;
	/* Where uploaded files are stored, one directory per upload token;
	 * created when missing. ("uploads") */
	const char *upload_dir;
	/* Largest uploaded file; over it the submit answers 400. (25 MiB) */
	size_t max_file_bytes;
	/* Uploaded files are deleted this long after their request ended. (7 days) */
	unsigned upload_retention_s;
	/* Public base URL of the site ("https://spaces.example.com"), used in the
	 * upload links given to apps and accepted as an Origin. NULL: taken from
	 * the Host header of the submitting request. */
	const char *public_url;
	/* Failed logins allowed per client address per window; 0 disables. (10) */
	unsigned login_max_failures;
	unsigned login_window_s; /* (300) */
	/*
	 * Failed logins allowed per account (user name) per login window; over
	 * it the account is paced, not locked: one more attempt every
	 * login_account_pace_s seconds. 0 disables. (10, 10 s)
	 */
	unsigned login_account_max_failures;
	unsigned login_account_pace_s;
	/* Registrations per client address per window; 0 disables. (10 per hour) */
	unsigned register_max;
	unsigned register_window_s;
	/* Registration closed by configuration (admins may also close it). (0) */
	int registration_closed;
	/* The password policy refuses the most common passwords. (1) */
	int password_common_check;
	/* Lifetime of a session. (7 days) */
	unsigned session_ttl_s;
	/* New spaces are 'open' (any app that knows the name may register)
	 * instead of 'token' with a generated token: a compatibility switch for
	 * development and the old test plan. (0) */
	int legacy_open_spaces;
	/* A session unused this long ends; 0: no idle timeout. (24 hours) */
	unsigned session_idle_s;
	/* Bytes a user may upload per day (24 hours); 0: no quota. (1 GiB) */
	uint64_t upload_quota_per_day;
	/* Bytes all stored uploads may take together; 0: no budget. (20 GiB) */
	uint64_t upload_disk_budget;
	/* Other origins whose pages may open the browser namespace "/spaces",
	 * comma-separated ("https://a.example,http://b.example:8080"); the
	 * site's own (the Host, public_url) always may. (NULL) */
	const char *allowed_origins;
} web_options;

/** Fills o with the defaults given above. */
void web_options_default(web_options *o);

/**
 * The Origin check of the browser namespace (sp_options.browser_origin_ok),
 * with ud the web_options (its public_url and allowed_origins): 1 when the
 * handshake has no Origin (not a browser page), or an Origin that is the
 * site's own (Host or public_url, and Sec-Fetch-Site not cross-site) or
 * one of allowed_origins.
 */
int web_browser_origin_ok(const base_slice *origin, const base_slice *fetch_site,
                          const base_slice *host, void *ud);
/**
 * 1 when origin is one of the web_options' (ud) allowed_origins: the CORS
 * check of the site's Socket.IO endpoint (eio_options.cors_origin_ok).
 */
int web_origin_listed(const base_slice *origin, void *ud);
/** 0 when list is a valid --allowed-origins value (scheme://host[:port], comma-separated). */
int web_origins_check(const char *list);

/**
 * The request body size the site needs (three files of max_file_bytes and
 * the form around them). The HTTP server's max_body_bytes must be at least
 * this, or large uploads are refused by the HTTP layer with a bare 413.
 */
size_t web_max_body_bytes(const web_options *o);

/**
 * Adds the site's routes to http (before or after Engine.IO's: the paths do
 * not overlap) and becomes the browser namespace's authentication
 * (sp_browser_auth_set) until web_site_close. The site reads and changes
 * the Spaces tables only through sp's store (spaces/store.h); db is the
 * pool of its own tables (users, sessions, settings) and must outlive the
 * site. The socket.io-client files and extra static files are read here,
 * once. o may be NULL for the defaults; its strings are copied. Returns
 * NULL on ENOMEM, when the upload directory cannot be created, or when
 * the static files cannot be read (logged); http must then not serve
 * (routes to freed files may be left in it).
 */
web_site *web_site_new(http_server *http, sp_app *sp, db_pool *db, const web_options *o);

/**
 * Stops the site's timer (cleanup of expired uploads and sessions). Call it
 * when shutting down, while the loop still runs; requests in progress still
 * finish.
 */
void web_site_close(web_site *site);

/**
 * Releases the site (closing it first if needed). The memory goes once the
 * last request in progress, file job or query of the site has ended, so this
 * may be called from a close callback while queries are still pending (the
 * database pool must outlive them). NULL is allowed.
 */
void web_site_free(web_site *site);

/**
 * `spaces-server user add NAME [--admin] --database-url URL [--migrations DIR]`:
 * argv[0] is "user". database_url and migrations_dir are the defaults of the
 * two options (from the program's configuration; database_url may be NULL). Creates a user (an admin with --admin), applying the
 * migrations first. The password is the first line of standard input when
 * that is not a terminal, else it is asked twice without echo (a weak one
 * is accepted with a warning). Prints what it did; returns the process
 * exit status: 0 created, 1 failed, 2 bad usage, 3 a user of that name (in
 * any letter case) exists already.
 *
 * Also `user passwd NAME` (a new password, read the same way; every session
 * of the user ends), `user disable NAME` and `user enable NAME` (a disabled
 * user cannot log in; their sessions end). Running servers close the
 * user's live sockets at once (a notification on the database). Exit
 * status 4: no such user.
 */
int web_cli_user(int argc, char **argv, const char *database_url, const char *migrations_dir);

/* ---- metrics and access log (metrics.c) --------------------------------- */

typedef struct web_metrics web_metrics;

typedef enum { WEB_ACCESS_OFF = 0, WEB_ACCESS_TEXT, WEB_ACCESS_JSON } web_access_format;

typedef struct {
	/* GET /metrics on http behind "Authorization: Bearer TOKEN" (NULL or "": not there). */
	const char *token;
	/* A listener of its own serving only /metrics, without a token (NULL: none). */
	const char *listen_host;
	int listen_port;
	/* One line per HTTP request and per WebSocket end on stderr, and X-Request-Id. */
	web_access_format access_log;
} web_metrics_options;

/**
 * Sets up /metrics (Prometheus text format 0.0.4) and the access log on
 * http, reading the counters of every layer at each scrape; the requests
 * by status and queue depths are counted in SQL then. Returns NULL on
 * ENOMEM or when the metrics listener cannot listen (logged).
 */
web_metrics *web_metrics_new(http_server *http, sio_server *io, db_pool *db, sp_app *sp,
                             const web_metrics_options *o);
/** The metrics listener's port (after web_metrics_new), or 0 without one. */
int web_metrics_port(const web_metrics *m);
/** Stops the metrics listener; cb(ud) once it is closed (at once without one). */
void web_metrics_close(web_metrics *m, void (*cb)(void *ud), void *ud);
void web_metrics_free(web_metrics *m);

#endif
