/*
 * spaces.h: the Spaces application.
 *
 * Apps (remote inference programs) connect to the Socket.IO namespace "/"
 * and speak the protocol old clients expect (register, inference_request,
 * inference_result, inference_progress; see docs/protocol.md). Users'
 * requests are written to PostgreSQL first, then sent to the least busy app
 * of their space; results are written before anyone is told. Browsers
 * follow spaces and their own requests on the namespace "/spaces".
 *
 * Contracts of this header (and of store.h, which it includes):
 * - Everything runs on the loop of the Socket.IO server; no function may be
 *   called from another thread.
 * - Callbacks (sp_submit_cb, sp_verdict_cb, sp_json_cb, the store's) are
 *   called exactly once, on that loop; those documented "possibly before
 *   this returns" may run inside the call (an early refusal), the others
 *   always later. What a callback is handed (results, rows, JSON bodies,
 *   identities) belongs to this layer and is valid only during the call:
 *   copy what you keep.
 * - Inside a callback any sp_ function may be called (submit again, read a
 *   status, look up rows); sp_app_close may be, sp_app_free may not.
 * - Strings and structs given to a function are read during the call only
 *   (copied when kept), unless a field says "borrowed; must outlive".
 * - The domain tables (spaces, app_connections, requests, uploads) are this
 *   layer's: the layers above read and change them through store.h only.
 */
#ifndef SPACES_H
#define SPACES_H

#include <jansson.h>

#include "socketio.h"
#include "db/db.h"
#include "store.h"

typedef struct sp_app sp_app;

typedef struct {
	unsigned default_timeout_s; /* a space's timeout when it has none (120) */
	unsigned sweep_interval_ms; /* how often deadlines are checked in SQL (1000) */
	/*
	 * Cluster mode (NULL: one process): this process's name among the
	 * processes sharing the database, unique and the same across restarts
	 * (e.g. "host:port"). Apps connected anywhere count for every node,
	 * requests reach an app of any node, browsers get updates from every
	 * node, and a node not seen for node_timeout_s has its requests
	 * returned to the queue by the others. Borrowed; must outlive the app.
	 */
	const char *node_id;
	unsigned node_timeout_s; /* (10) */
	/*
	 * Where the results journal lives (results.journal, created with the
	 * directory): results not yet in PostgreSQL, kept across its outages
	 * and the server's crashes. One directory per process. ("var/data")
	 */
	const char *data_dir;
	/* Results not yet written may take this much of the journal; past it
	 * new results are refused, with an error logged (256 MiB). */
	uint64_t journal_max_bytes;
	/*
	 * How long a result waits for PostgreSQL to confirm it before it is
	 * appended to the journal (group commit): a result written within it
	 * never touches the disk. A crash of the server loses the results of
	 * the last journal_delay_ms not yet in PostgreSQL (their requests go
	 * back to the queue at the restart). Taken while PostgreSQL is away, or
	 * a write fails, it is appended at once. 0: every result at once. (50)
	 */
	unsigned journal_delay_ms;
	/*
	 * Registrations refused for a missing or wrong app token allowed per
	 * client address per minute; past it, that address's registrations are
	 * refused without looking at the token until the minute is over.
	 * 0: no limit. (10)
	 */
	unsigned register_max_failures;
	/* Called when a space's live state changed (apps connected, queue). */
	void (*on_space_changed)(const char *space_id, void *ud);
	void *ud;
	/*
	 * Whether a browser socket may connect to "/spaces", from the headers
	 * of its handshake (each NULL when absent): 0 refuses it (CONNECT_ERROR
	 * "Origin not allowed"). It carries the user's cookie, so a page of
	 * another origin must not connect. NULL: every origin. Called with ud.
	 */
	int (*browser_origin_ok)(const base_slice *origin, const base_slice *fetch_site,
	                         const base_slice *host, void *ud);
} sp_options;

void sp_options_default(sp_options *o);

/**
 * Creates the application on io (namespaces "/" and "/spaces") with its
 * state in db. The results journal of opts->data_dir is read and its
 * results written again; requests left "processing" by an earlier run
 * without one go back to "queued" (their apps are gone). Returns NULL on
 * ENOMEM or when the journal cannot be opened (logged).
 */
sp_app *sp_app_new(sio_server *io, db_pool *db, const sp_options *opts);
/**
 * Stops the timers; afterwards nothing more is sent to sockets. Call it
 * before the Socket.IO server is freed.
 */
void sp_app_close(sp_app *app);
/**
 * Frees the application once no database answer can come any more: after
 * the pool has closed (its close callback, or after the loop ended).
 */
void sp_app_free(sp_app *app);

/**
 * Cluster mode (opts.node_id): nsp's broadcasts, fetchSockets and
 * serverSideEmit go to the other nodes too, as /spaces' do (the admin UI's
 * namespace, for one). 0 without cluster mode; else 0, BASE_ELIMIT (too
 * many namespaces) or an error of the database's LISTEN.
 */
int sp_app_share_namespace(sp_app *app, sio_namespace *nsp);

/* ---- counters (metrics) ------------------------------------------------- */

/* Upper bounds (ms) of the latency histogram buckets; a last bucket holds the rest. */
#define SP_LAT_BOUNDS_MS                                                                 \
	{                                                                                \
		10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000 \
	}
#define SP_LAT_BUCKETS 14

typedef struct {
	uint64_t bucket[SP_LAT_BUCKETS]; /* not cumulative: each bucket counts its own range */
	uint64_t count;
	uint64_t sum_ms;
} sp_histogram;

/* Counters of this process since the application was created. */
typedef struct {
	uint64_t submitted;  /* requests written (sp_submit answered 200) */
	uint64_t rejected;   /* submissions refused (404, 400, 429, 503, 500) */
	uint64_t dispatched; /* inference_request sent to an app */
	uint64_t requeued;   /* requests sent back to the queue (their app left) */
	uint64_t completed;  /* results taken with status completed */
	uint64_t failed;     /* results taken with status failed */
	uint64_t timed_out;  /* requests the deadline sweep failed */
	uint64_t cancelled;  /* requests cancelled by their users (sp_cancel) */
	sp_histogram wait;   /* submit -> dispatch */
	sp_histogram run;    /* dispatch -> result */
} sp_stats;

void sp_app_get_stats(const sp_app *app, sp_stats *st);
/** Apps connected and registered to this process. */
unsigned sp_apps_connected(const sp_app *app);
/** Bytes of results waiting in the journal (not yet in PostgreSQL). */
uint64_t sp_journal_bytes(const sp_app *app);

/** Number of apps connected (and registered) for a space: in this process, or in cluster mode on every live node. */
unsigned sp_space_apps(const sp_app *app, const char *space_id);

/**
 * Who may register as a space's app changed (its access mode or token was
 * changed, or the space was deleted): the space is read again, and the apps
 * that no longer qualify are told why and disconnected (their requests go
 * back to the queue). In cluster mode every node does the same for its own
 * apps. Call it after the change is committed.
 */
void sp_space_access_changed(sp_app *app, const char *space_id);
/* ---- browsers ----------------------------------------------------------- */

/* Who a browser is, as the site knows it. */
typedef struct {
	const char *user_id; /* decimal users.id; NULL: anonymous */
	int is_admin;
	/* The session's key (sessions.token_hash, lowercase hex), NULL when none:
	 * sp_browser_disconnect_session closes the sockets of that key. */
	const char *session;
} sp_identity;

/* Gives the answer of an sp_auth_fn: id (and its strings) are read during the call only. */
typedef void (*sp_auth_done)(void *req, const sp_identity *id);
/*
 * Says who the browser of a "/spaces" handshake is, from its Cookie header
 * (NULL when absent): calls done(req, id) exactly once, now or later on
 * the loop (anonymous when it does not know, or on any failure). It must
 * not keep cookie after it returns. Called with the ud given to
 * sp_browser_auth_set.
 */
typedef void (*sp_auth_fn)(const base_slice *cookie, sp_auth_done done, void *req, void *ud);

/**
 * Sets how browsers are authenticated on "/spaces" (the site owns the
 * sessions; this layer never reads the cookie). NULL: every browser is
 * anonymous (it may follow spaces, not requests). Handshakes already asking
 * keep the function they started with.
 */
void sp_browser_auth_set(sp_app *app, sp_auth_fn fn, void *ud);

/**
 * Disconnects at once the "/spaces" sockets of a session (token_hash: the
 * lowercase hex SHA-256 of its cookie token, as in sessions.token_hash),
 * or of a user (decimal id) but those of the session keep_token_hash (may
 * be NULL), here and, through a notification on the database, in every
 * other process sharing it. Call it once the session rows are gone.
 */
void sp_browser_disconnect_session(sp_app *app, const char *token_hash);
void sp_browser_disconnect_user(sp_app *app, const char *user_id, const char *keep_token_hash);
/** The notification channel of those closes, for processes without an sp_app. */
#define SP_BROWSER_CLOSE_CHANNEL "spaces_browser_close"

/* ---- submitting requests ------------------------------------------------ */

#define SP_UPLOADS 3 /* files a submission may carry: audio, video, other */

/* A file given with a submission (the audio, video, other file inputs). */
typedef struct {
	int given;
	uint64_t size;
	int bad_type; /* its media type could not be read */
} sp_input_file;

/* What a user gave, as far as the rules look at it. Borrowed. */
typedef struct {
	const char *prompt;    /* NULL when absent */
	const char *audio_url; /* NULL or "" when absent */
	sp_input_file file[SP_UPLOADS];
	uint64_t max_file_bytes; /* the site's limit per file; 0: none */
	/* The caller could not read the form: refused as the first input error. */
	const char *form_error;
} sp_inputs;

/* Everything the submission rules look at. */
typedef struct {
	int logged_in;
	const sp_space_row *space; /* NULL: no such space */
	unsigned apps;             /* apps connected for it (sp_space_apps) */
	double since_last_s;       /* since the user's last request in it; < 0: none */
	const sp_inputs *in;       /* NULL: the inputs are not judged */
} sp_submit_facts;

typedef struct {
	int status;           /* 200, or 401, 404, 503, 400, 429 */
	char error[200];      /* "" with 200; a sentence for the user otherwise */
	unsigned retry_after; /* seconds, with 429 */
} sp_verdict;

/**
 * The submission rules, written once (pure: no I/O, no allocation). The
 * checks come in the order PROTOCOL.md fixes: logged in (401), the space
 * exists and is a WebSocket space (404), an app is connected (503), the
 * inputs (400: the form could be read, a prompt when the prompt is
 * enabled, text and URL shapes, files only for enabled inputs, within
 * max_file_bytes, with a readable media type), the space's rate limit for
 * this user (429, with retry_after).
 */
void sp_submit_judge(const sp_submit_facts *f, sp_verdict *v);

typedef void (*sp_verdict_cb)(const sp_verdict *v, void *ud);

/**
 * Judges a submission against the space's row and the user's last request
 * (one query) without writing anything: for a caller with work to do
 * before sp_submit (files to store). user_id NULL: not logged in (401,
 * without a query). cb is called once, possibly before this returns; v is
 * valid during the call. in is read only during this call.
 */
void sp_submit_check(sp_app *app, const char *space_id, const char *user_id, const sp_inputs *in,
                     sp_verdict_cb cb, void *ud);

typedef struct {
	const char *space_id;
	const char *user_id; /* decimal id of the submitting user */
	const char *username;
	const sp_inputs *in; /* what the rules judge (sp_submit_judge) */
	/* The space's inputs: "prompt", "audio" (URL), and any other keys; borrowed. */
	json_t *payload;
	json_t *upload; /* optional description of uploaded files; borrowed; may be NULL */
} sp_submission;

typedef struct {
	int status;        /* HTTP status: 200, 400, 401, 404, 429, 500, 503 */
	const char *error; /* NULL on success; a sentence for the user otherwise */
	char request_id[37];
	unsigned retry_after; /* seconds, with 429 */
} sp_submit_result;

typedef void (*sp_submit_cb)(const sp_submit_result *r, void *ud);

/**
 * Submits a request: the space's row and the user's last request are read
 * (one query) and judged by sp_submit_judge; when accepted the request is
 * written (one statement: queued, or processing with the least busy app of
 * this process) and then sent to the app, and cb learns the request id.
 * cb is called once, possibly before this returns; r is valid during the
 * call. sub and everything it points to are read only during this call.
 */
void sp_submit(sp_app *app, const sp_submission *sub, sp_submit_cb cb, void *ud);

/* ---- reading requests --------------------------------------------------- */

typedef void (*sp_json_cb)(int status, json_t *body, void *ud);

/**
 * The document of a request, the same as its live request_update: 200
 * {request_id, space_id, status (queued|processing|completed|failed),
 * state (queued|waiting|processing|completed|failed|timeout|cancelled),
 * reason? (timeout|cancelled), position?, ahead?, eta_seconds?, notice?,
 * progress, message?, result, processing_time_seconds?, created_at,
 * updated_at}; 404 {error: "Request not found"}. body is owned by the
 * caller of cb only during the call.
 */
void sp_request_status(sp_app *app, const char *request_id, sp_json_cb cb, void *ud);
/** The document as JSON text (len bytes, valid during the call only). */
typedef void (*sp_text_cb)(const char *json, size_t len, void *ud);
/**
 * sp_request_status, except that a document this process keeps in memory
 * (a final one: docs/design.md) goes to text, already serialised as
 * JSON_COMPACT | JSON_REAL_PRECISION(15); cb gets the others.
 */
void sp_request_status_text(sp_app *app, const char *request_id, sp_text_cb text, sp_json_cb cb,
                            void *ud);
/** The 20 newest requests of a user (decimal id) in a space: 200 {requests: [document, ...]}. */
void sp_request_list(sp_app *app, const char *space_id, const char *user_id, sp_json_cb cb,
                     void *ud);

/**
 * Cancels a queued or running request of user_id: it ends as cancelled (its
 * document says status "failed", reason "cancelled"), the app holding it
 * is sent cancel_request {request_id} (on whichever node), and a result
 * coming later is ignored. cb: 200 {success: true}; 404 not the user's (or
 * no such request); 409 {success: false, error} already ended.
 */
void sp_cancel(sp_app *app, const char *request_id, const char *user_id, sp_json_cb cb, void *ud);
/**
 * Submits again a failed, timed-out or cancelled request of the user, with
 * the same inputs (its uploads move to the new request), through sp_submit
 * (404, 503, 400, 429 as there). Answers 404 when it is not the user's,
 * 409 while it is still open or when it completed, 410 when its files are
 * no longer kept. cb gets the new request id with 200.
 */
void sp_retry(sp_app *app, const char *request_id, const char *user_id, const char *username,
              sp_submit_cb cb, void *ud);

#endif
