/*
 * web_internal.h: what the files of the web layer share.
 */
#ifndef WEB_INTERNAL_H
#define WEB_INTERNAL_H

#include <stdarg.h>

#include "web.h"

#define WEB_SESSION_COOKIE "spaces_session"
#define WEB_TOKEN_MAX 128 /* a session token read from a cookie, with its NUL */
#define WEB_USERNAME_MAX 64
#define WEB_PASSWORD_MAX 1024
#define WEB_PASSWORD_MIN 8 /* characters */
#define WEB_SPACE_NAME_MAX 200
#define WEB_FORM_MAX_FIELDS 64
#define WEB_FORM_MAX_FILES 8
#define WEB_ID_MAX 64
#define WEB_UPLOADS_MAX 3 /* files per submission: audio, video, other */
/* Request bodies of forms (login, register, ...) and of the admin forms (site.c). */
#define WEB_FORM_MAX_BODY (16 * 1024)
#define WEB_ADMIN_FORM_MAX_BODY (256 * 1024)

/* ---- template.c: HTML that escapes by default --------------------------- */

/*
 * Appends printf-like output to out. Conversions:
 *   %s  a C string, HTML-escaped (NULL writes nothing)
 *   %S  a base_slice (by value), HTML-escaped
 *   %U  a C string, percent-encoded for a URL component
 *   %R  a C string written raw: only for HTML we built ourselves
 *   %d  int, %u unsigned, %% a percent sign
 * Returns 0, BASE_ENOMEM, or BASE_EINVAL for an unknown conversion.
 */
int web_html(base_buf *out, const char *fmt, ...);
int web_html_v(base_buf *out, const char *fmt, va_list ap);
/**
 * Makes b a C string: a NUL after its bytes, not counted in len (base_buf
 * does not keep one). Returns b->data, never NULL (out of memory aborts).
 */
const char *web_buf_cstr(base_buf *b) __attribute__((returns_nonnull));

/* ---- form.c, multipart.c: submitted forms ------------------------------- */

typedef struct {
	const char *name;  /* decoded, NUL-terminated */
	const char *value; /* decoded, NUL-terminated (may hold NULs: see value_len) */
	size_t value_len;
} web_field;

typedef struct {
	const char *name;         /* the form field */
	const char *filename;     /* as sent by the client: sanitise before use */
	const char *content_type; /* "" when not given */
	base_slice data;          /* a slice of the request body */
} web_file;

typedef struct {
	web_field *fields;
	size_t n_fields, cap_fields;
	web_file files[WEB_FORM_MAX_FILES];
	size_t n_files;
} web_form;

/**
 * Decodes a form body: multipart/form-data when content_type says so, else
 * application/x-www-form-urlencoded. Memory comes from a (the request's
 * arena); file data stays in body. Returns 0, BASE_EINVAL (malformed),
 * BASE_ELIMIT (too many fields or files) or BASE_ENOMEM.
 */
int web_form_parse(base_arena *a, const base_slice *content_type, base_slice body, web_form *out);
int web_form_parse_urlencoded(base_arena *a, base_slice body, web_form *out);
int web_form_parse_multipart(base_arena *a, base_slice content_type, base_slice body,
                             web_form *out);
/** The first value of a field, or NULL. */
const char *web_form_get(const web_form *f, const char *name);
/** The first file of a field, or NULL. */
const web_file *web_form_file(const web_form *f, const char *name);
/** 1 when a Content-Type header value's media type is type (case-insensitive). */
int web_media_type_is(base_slice header, const char *type);
/**
 * mediatype.c: parses a Content-Type value strictly: exactly one
 * type/subtype of token characters, then ";name=value" parameters (token
 * or quoted string). Writes it to out normalised (type, subtype and
 * parameter names lowercase, no spaces). Returns 0, or -1 for a list,
 * garbage, or when it does not fit in cap.
 */
int web_media_type_parse(const char *s, char *out, size_t cap);
/** 1 when a normalised media type may be shown inline (a few audio, video, image types). */
int web_media_type_inline(const char *type);

typedef struct {
	base_slice name;
	base_slice filename;
	int has_filename;
	base_slice content_type;
	base_slice data;
} web_part;

/** The boundary parameter of a multipart/form-data Content-Type. Returns 0 or -1. */
int web_multipart_boundary(base_slice content_type, base_slice *boundary);
/**
 * Decodes the part at *pos (start with *pos = 0). Returns 1 with *part
 * filled and *pos advanced, 0 at the closing delimiter, -1 when the body is
 * malformed or truncated. Never allocates; every slice points into body.
 */
int web_multipart_next(base_slice body, base_slice boundary, size_t *pos, web_part *part);
/** A parameter (name="x" or name=x) of a header value like Content-Disposition. */
int web_header_param(base_slice value, const char *key, base_slice *out);

/* ---- cookie.c ------------------------------------------------------------ */

/** Finds cookie name in a Cookie header. Returns 1 with *value set, or 0. */
int web_cookie_get(base_slice header, const char *name, base_slice *value);
/**
 * The session token of a Cookie header (NULL: none): 1 with it copied
 * into out when the session cookie is there, 1..cap-1 characters of
 * [A-Za-z0-9_-] (what web__session_create makes), else 0. The one reader
 * of the session cookie: pages and the browser namespace both use it.
 */
int web_session_token(const base_slice *header, char *out, size_t cap);
/**
 * Appends a Set-Cookie header line (with CRLF): Path=/, HttpOnly,
 * SameSite=Lax, Max-Age when max_age >= 0 (0 also expires it), Secure.
 */
void web_cookie_set_line(base_buf *out, const char *name, const char *value, long max_age,
                         int secure);

/* ---- csrf.c -------------------------------------------------------------- */

/**
 * 1 when the Origin and Sec-Fetch-Site headers (each NULL when absent) do
 * not say that another site made the request: Sec-Fetch-Site must be
 * same-origin or none, Origin's host must be the Host header's or
 * public_origin's. 1 when both are absent.
 */
int web_csrf_origin_ok(const base_slice *origin, const base_slice *fetch_site,
                       const base_slice *host, const char *public_origin);
/** 1 when the request comes from a browser page (either header present). */
int web_csrf_from_browser(const base_slice *origin, const base_slice *fetch_site);
/** Constant-time comparison of a session's CSRF token with the one sent. */
int web_csrf_token_ok(const char *expected, const char *given);

/* ---- ratelimit.c --------------------------------------------------------- */

typedef struct web_limiter web_limiter;

#define WEB_LIMITER_KEY_MAX 80 /* longer keys are cut */

/** Allows max_failures per key per window (fixed windows). max 0 disables. */
web_limiter *web_limiter_new(unsigned max_failures, unsigned window_s);
/**
 * Over its budget, a key still gets one attempt every pace_s seconds
 * (web_limiter_take) instead of waiting for the window's end. 0: no pace.
 */
void web_limiter_set_pace(web_limiter *l, unsigned pace_s);
void web_limiter_free(web_limiter *l);
/**
 * Takes one attempt for key before the guarded work starts: 1 when it may
 * go (counted), 0 when refused, with *retry_after_s the wait (seconds).
 */
int web_limiter_take(web_limiter *l, const char *key, uint64_t now_ms, unsigned *retry_after_s);
/** Gives back an attempt taken that did not fail (a correct password). */
void web_limiter_refund(web_limiter *l, const char *key, uint64_t now_ms);
/** 1 when key has used up its failures; *retry_after_s gets the wait. */
int web_limiter_blocked(web_limiter *l, const char *key, uint64_t now_ms, unsigned *retry_after_s);
void web_limiter_fail(web_limiter *l, const char *key, uint64_t now_ms);

/* ---- password.c: the password policy ------------------------------------- */

/**
 * NULL when password may be a new password of username, else the reason as
 * a sentence: empty, too long, shorter than WEB_PASSWORD_MIN characters,
 * the user name (any letter case), or (check_common) a common password.
 */
const char *web_password_problem(const char *username, const char *password, int check_common);
/** 1 when password (any letter case) is in web/common-passwords.txt. */
int web_password_is_common(const char *password);

/* ---- validation (validate.c) --------------------------------------------- */

/** 1 when name is 1..64 characters of [A-Za-z0-9_]. */
int web_username_ok(const char *name);
/** 1 when s is 1..max bytes of UTF-8 with no control characters but \t \r \n. */
int web_text_ok(const char *s, size_t len, size_t max, int multiline);
/** 1 when s may be an id in a URL: 1..63 of [A-Za-z0-9_-] (spaces.id). */
int web_id_ok(const char *s);
/**
 * Writes a safe file name for an upload into out: the last path component
 * of filename, characters other than [A-Za-z0-9._-] replaced by '_', no
 * leading dot, at most cap-1 bytes; "file" when nothing is left.
 */
void web_safe_filename(const char *filename, char *out, size_t cap);
/** Lowercase hex SHA-256 of s (65 bytes with the NUL). */
void web_sha256_hex(const char *s, size_t len, char out[65]);

/* ---- the site (site.c) ---------------------------------------------------- */

typedef struct web_static_file web_static_file;
typedef struct web_hash_gate web_hash_gate;

struct web_site {
	http_server *http;
	uv_loop_t *loop;
	sp_app *sp;
	db_pool *db;
	web_options opts; /* strings point into the copies below */
	char *client_dist_dir, *static_dir, *upload_dir, *public_url;
	web_static_file *static_files;
	web_limiter *login_limiter;   /* failed logins per address */
	web_limiter *account_limiter; /* failed logins per account, paced */
	web_limiter *register_limiter;
	web_hash_gate *hash_gate;
	uv_timer_t cleanup;
	int cleaning;
	int closed;
	/*
	 * Holders: the owner (until web_site_free), the cleanup timer (until
	 * its close callback), each request context and each cleanup query.
	 * The last one frees, so a query answered during shutdown never finds
	 * the site gone.
	 */
	unsigned refs;
};

void web__site_ref(web_site *site);
void web__site_unref(web_site *site);

/* The logged-in user of a request, when there is one. */
typedef struct {
	int ok;
	char user_id[24];
	char username[WEB_USERNAME_MAX + 1];
	int is_admin;
	char csrf[48];
	char token_hash[65];
} web_session;

typedef struct web_ctx web_ctx;
typedef void (*web_step)(web_ctx *w);

/*
 * The state of one request between asynchronous steps (queries, hashing,
 * file I/O). It is on the heap, not in the request's arena, because the
 * client may go away while a step is running: on_abort then clears req, and
 * the step's callback, finding req NULL, frees the context and stops. Only
 * one step runs at a time. Route files extend it by embedding it first.
 */
struct web_ctx {
	web_site *site;
	http_request *req; /* NULL once the client went away */
	web_session sess;
	web_form form;               /* parsed POST body (memory: the request's arena) */
	int form_rc;                 /* web_form_parse's return for a POST; 0 otherwise */
	int json;                    /* the route answers JSON, errors included */
	web_step next;               /* what runs after the session lookup */
	void (*cleanup)(web_ctx *w); /* frees what the extension owns; may be NULL */
	char id[WEB_ID_MAX];         /* the id in the route's path, when it has one */
};

/**
 * Allocates a context of size bytes (>= sizeof(web_ctx), zeroed) for req
 * and watches for the client going away. NULL (and a 500 sent) on ENOMEM.
 */
web_ctx *web__ctx_new(web_site *site, http_request *req, size_t size);
/** Frees a context (after its response, or once the client is gone). */
void web__ctx_free(web_ctx *w);
/** In a step's callback: 1 when the client went away (w is freed then). */
int web__gone(web_ctx *w);
/**
 * Looks up the session cookie, fills w->sess, then calls next(w), which
 * owns w from then on. Called directly when there is no cookie.
 */
void web__with_session(web_ctx *w, web_step next);
/**
 * Starts a route: makes a context of size bytes, copies the path's id after
 * id_prefix into w->id (left empty when it is not a valid id), parses a POST
 * body (w->form, w->form_rc), looks up the session and calls next. json: the
 * route answers JSON, server errors included.
 */
void web__start(web_site *site, http_request *req, size_t size, const char *id_prefix, int json,
                web_step next);

/* Responses: each one sends and frees w. */
void web__respond(web_ctx *w, int status, const char *content_type, const char *headers,
                  const void *body, size_t len);
/** Ends w with the file fd (taken) as the body: see http_respond_file. */
void web__respond_file(web_ctx *w, int status, const char *content_type, const char *headers,
                       uv_file fd, uint64_t offset, uint64_t len);
void web__redirect(web_ctx *w, const char *location, const char *extra_headers);
/** A JSON answer; takes the reference to body. */
void web__json(web_ctx *w, int status, json_t *body);
void web__json_error(web_ctx *w, int status, const char *error);
/** A page: body (HTML we built) inside the layout, with title escaped. */
void web__page(web_ctx *w, int status, const char *title, const base_buf *body,
               const char *extra_headers);
/** A page with one message (escaped), and a link home. */
void web__message_page(web_ctx *w, int status, const char *title, const char *message);
void web__server_error(web_ctx *w, const char *what, const db_result *res);
/** 503 "Server busy, please retry": JSON for a JSON route, else the page. */
void web__busy(web_ctx *w);
/** A store call that failed (st != SP_STORE_OK): 503 when busy, else 500. */
void web__store_error(web_ctx *w, sp_store_status st);
/**
 * In a store callback about a space: 1 when the answer may be used; else 0
 * and w is done with (freed when the client went, or answered: 404 "Space
 * not found" with the message not_found, or the store error).
 */
int web__space_answer_ok(web_ctx *w, sp_store_status st, const char *not_found);

/**
 * CSRF guard of a state-changing route (POST). Refuses with 403 and frees
 * w when the request comes from another site, or when it comes from a
 * browser with a session but without the session's token (field
 * csrf_token or header X-CSRF-Token). Returns 1 when w may go on.
 */
int web__csrf_ok(web_ctx *w, int json);
/** The hidden csrf_token input of our forms (empty without a session). */
int web__csrf_input(base_buf *out, const web_ctx *w);
/** Anonymous users are sent to /login (302), signed-in non-admins get a 403 page. Returns 1 when w is an admin's. */
int web__require_admin(web_ctx *w);
/** The request's Host, or "localhost". Valid while the request is. */
base_slice web__host(const web_ctx *w);
/** The base URL of the site ("http://host"), no trailing slash, appended to out. */
void web__base_url(base_buf *out, const web_ctx *w);
/**
 * admin.c: the "Connect an app" section of a space (admins only: it shows
 * the token): the exact command line that starts mock_app.py for it, with
 * ?token= on its --host URL unless the space is open without a token, and
 * a copy button (spaces.js). token NULL: not known (a placeholder).
 */
void web__connect_command(base_buf *b, const web_ctx *w, const char *name, int open, int has_token,
                          const char *token);

/* ---- accounts.c: users, sessions, site settings (their only SQL) ---------- */

/*
 * Each queues its statement(s) on the site's pool: 0, and cb(res, ud) once
 * from the loop later; or the pool's error and cb is never called. The
 * columns of res are given for each.
 */
/** A live session of an enabled user by token hash (and its idle timeout
 * pushed forward): uid, username, is_admin, csrf_token; no row when none. */
int web__acct_session_find(web_site *site, const char *token_hash, db_cb cb, void *ud);
int web__acct_session_add(web_site *site, const char *token_hash, const char *user_id,
                          const char *csrf, db_cb cb, void *ud);
int web__acct_session_end(web_site *site, const char *token_hash, db_cb cb, void *ud);
/** count of the user's live sessions. */
int web__acct_sessions_count(web_site *site, const char *user_id, db_cb cb, void *ud);
/** Ends the user's sessions but keep_hash's: one row per session ended. */
int web__acct_sessions_end_others(web_site *site, const char *user_id, const char *keep_hash,
                                  db_cb cb, void *ud);
/** Deletes the expired sessions (in the background, failures logged). */
int web__acct_sessions_expire(web_site *site);
/** id, password_hash, disabled of a user by exact name; no row when none. */
int web__acct_user_find(web_site *site, const char *username, db_cb cb, void *ud);
/** registration setting (NULL when unset), whether the name is taken in any case. */
int web__acct_register_check(web_site *site, const char *username, db_cb cb, void *ud);
/** Creates a user (SQLSTATE 23505 when the name is taken). */
int web__acct_user_add(web_site *site, const char *username, const char *hash, db_cb cb, void *ud);
/** password_hash of a user by id. */
int web__acct_password_get(web_site *site, const char *user_id, db_cb cb, void *ud);
/** A transaction of 2: the new hash, the user's other sessions (but keep_hash's) ended. */
int web__acct_password_set(web_site *site, const char *user_id, const char *hash,
                           const char *keep_hash, db_cb cb, void *ud);
/** A transaction of 2: the first gives username (no row: no such user); disabling
 * also ends the user's sessions. */
int web__acct_user_disable(web_site *site, const char *user_id, int disable, db_cb cb, void *ud);
/** A transaction of 2: users (username, is_admin, created, id, disabled), and the
 * registration setting (value; no row when unset). */
int web__acct_users_list(web_site *site, db_cb cb, void *ud);
/** value of the registration setting; no row when unset. */
int web__acct_registration_get(web_site *site, db_cb cb, void *ud);
int web__acct_registration_set(web_site *site, const char *state, db_cb cb, void *ud);

typedef enum { WEB_CLI_ADD, WEB_CLI_PASSWD, WEB_CLI_DISABLE, WEB_CLI_ENABLE } web_cli_cmd;
/**
 * The statements of `spaces-server user CMD name` as one transaction in
 * out (returns how many; params is their storage): the first returns the
 * user's id (no row: no such user); passwd and disable also end the
 * user's sessions and notify the running servers to close its sockets.
 */
unsigned web__acct_cli_statements(web_cli_cmd cmd, const char *name, const char *hash, int admin,
                                  const char *params[3][3], db_stmt out[3]);
/**
 * The browser namespace's authentication (sp_auth_fn, ud the site): the
 * session cookie read by web_session_token, the session looked up as for
 * pages (without touching its idle timeout).
 */
void web__browser_auth(const base_slice *cookie, sp_auth_done done, void *req, void *ud);

/* ---- pwhash.c: password hashing, one at a time per client address -------- */

typedef struct web_hash_job web_hash_job;
struct web_hash_job {
	/* Set by the caller: work runs on the threadpool and may touch only
	 * the job's own data; done runs on the loop (status: 0, or a libuv
	 * error when the work did not run). */
	void (*work)(web_hash_job *j);
	void (*done)(web_hash_job *j, int status);
	/* Private. */
	web_site *site;
	uv_work_t uv;
	base_list link;
	char addr[48];
};

web_hash_gate *web__hash_gate_new(void);
void web__hash_gate_free(web_hash_gate *g);
/**
 * Runs j's work on the threadpool now, or after the hash of the same
 * address (addr) in flight. Returns 0 (done will be called), BASE_ELIMIT
 * when the address has too many hashes waiting (answer 429), BASE_ENOMEM
 * when the server is too busy (503). j must stay put until done.
 */
int web__hash_run(web_site *site, web_hash_job *j, const char *addr);

/* ---- the parts of the site and their routes ------------------------------ */

/*
 * One route of a part of the site: its handler is called with the site as
 * ud. Each part has one table, ended by a row with a NULL path; site.c
 * adds them all (web_site_new).
 */
typedef struct {
	http_method method;
	const char *path;
	int prefix; /* path is a prefix (http_route) */
	http_handler_fn fn;
} web_route;

/* static.c */
int web__static_init(web_site *site);
void web__static_free(web_site *site);
/* session.c */
/** Creates a session for user_id and answers a 302 to location with its cookie. */
void web__session_create(web_ctx *w, const char *user_id, const char *location);
extern const web_route web__session_routes[];
/* auth.c */
extern const web_route web__auth_routes[];
/* pages.c */
extern const web_route web__page_routes[];
/** The live Connected / Not connected badge of a space (updated by spaces.js). */
void web__live_badge(base_buf *b, const web_ctx *w, const char *space_id);
/** Seconds, readably: "1.23 s", "12.5 s", "2 min 5 s". */
void web__format_duration(base_buf *b, double s);
/** A UTC time "YYYY-MM-DD HH:MM:SS" (or ISO 8601 with T and Z) as <time datetime="ISO">,
 * which spaces.js shows in the viewer's local time; its text is the UTC time. */
void web__time(base_buf *b, const char *utc);
/** A request as a card of the space page (spaces.js keeps it live). */
void web__request_card(base_buf *b, const char *id, const char *status, int progress,
                       const char *prompt, const char *result_json, const char *created_at);
/* admin.c, admin_panel.c, admin_users.c */
extern const web_route web__admin_routes[];
extern const web_route web__admin_panel_routes[];
extern const web_route web__admin_users_routes[];
/* account.c */
extern const web_route web__account_routes[];
/** Labels of the four inputs a space may enable: prompt, audio, video, file. */
extern const char *const web__input_labels[4];
/* submit.c */
extern const web_route web__submit_routes[];
/* uploads.c */
extern const web_route web__upload_routes[];

/* One uploaded file on its way to the upload directory. */
typedef struct {
	const char *field;      /* the form field (static string) */
	char filename[256];     /* as the user named it, for display */
	char content_type[128]; /* as sent, or application/octet-stream */
	base_slice data;        /* in the request body: valid while the request is */
	char token[48];         /* the unguessable directory name */
	char name[128];         /* the safe file name */
	char path[1024];        /* upload_dir/token/name */
	int written;            /* the file exists on disk */
} web_upload;

/**
 * Stores ups[0..n) (copying each file's bytes before writing it, so the
 * request may end meanwhile) and records them in the uploads table without a
 * request. Then calls done(w, 0), or done(w, <0) after removing whatever
 * was written; when the client goes away meanwhile, cleans up and frees w
 * without calling done.
 */
void web__uploads_store(web_ctx *w, web_upload *ups, size_t n, void (*done)(web_ctx *w, int rc));
/** In the background: deletes the files and rows of ups (a submission refused later). */
void web__uploads_discard(web_site *site, const web_upload *ups, size_t n);
/** In the background: attaches the stored uploads to their request. */
void web__uploads_attach(web_site *site, const web_upload *ups, size_t n, const char *request_id);
/** Deletes uploads whose request ended long ago (and expired sessions). */
void web__cleanup_tick(web_site *site);

#endif
