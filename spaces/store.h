/*
 * store.h: the Spaces layer's tables (spaces, app_connections, requests,
 * uploads) as the layers above see them. The SQL is in spaces/store*.c and
 * nowhere above this layer; the site asks for rows and changes through
 * these functions. Included by spaces.h.
 *
 * Contracts common to every function here:
 * - They run on the loop of the application and return 0 at once; the
 *   answer comes to cb on the same loop, later (never from inside the
 *   call), exactly once. A non-zero return (the database queue is full or
 *   closed, out of memory, bad arguments) means cb is never called: answer
 *   "busy" (503). Arguments are copied: they may go when the call returns.
 * - Rows handed to cb (and every string in them) belong to the store and
 *   are valid only during the call of cb: copy what you keep.
 * - Inside cb any store or sp_ function may be called; the application
 *   must not be freed there (sp_app_free waits for the pool to close).
 * - st (sp_store_status) says how it went: SP_STORE_OK, or why not.
 *   SP_STORE_BUSY is "try again in a moment" (503), SP_STORE_FAILED a
 *   server error (500, logged by the store with the database's words).
 */
#ifndef SPACES_STORE_H
#define SPACES_STORE_H

#include <stdint.h>

typedef struct sp_app sp_app;

typedef enum {
	SP_STORE_OK = 0,
	SP_STORE_NOTFOUND = -1, /* no such space, request or upload */
	SP_STORE_EXISTS = -2,   /* a space of that name exists (add, update) */
	SP_STORE_INVALID = -3,  /* the values break a rule of the table */
	SP_STORE_BUSY = -4,     /* the database queue is full or timed out */
	SP_STORE_FAILED = -5,   /* any other failure */
} sp_store_status;

/* The inputs a space may take, in the order of the form and of enable[]. */
enum { SP_INPUT_PROMPT, SP_INPUT_AUDIO, SP_INPUT_VIDEO, SP_INPUT_FILE, SP_INPUTS };

/* A space's row. Strings are never NULL except token. */
typedef struct {
	const char *id, *name, *description, *cover, *cover_type, *card_type;
	int enable[SP_INPUTS];
	unsigned rate_limit_s, timeout_s, max_apps;
	int open;          /* app_access 'open': any app knowing the name registers */
	int has_token;     /* a token is set (needed in 'token' mode) */
	const char *token; /* the token when kept (shown to admins), else NULL */
	/* Counts, only where a function says it fills them (else 0). */
	unsigned open_requests; /* queued or processing */
	unsigned requests;      /* all */
} sp_space_row;

/* What an admin sets on a space (add, update): every field required. */
typedef struct {
	const char *name, *description, *cover, *cover_type, *card_type;
	int enable[SP_INPUTS];
	unsigned rate_limit_s, timeout_s, max_apps;
} sp_space_fields;

/* A request's row as pages show it. Times are UTC text, formatted for display. */
typedef struct {
	const char *id, *space_id, *space_name, *username, *status;
	int progress;
	const char *prompt;      /* payload's prompt, "" when none */
	const char *result_json; /* NULL while there is none */
	const char *excerpt;     /* lists: the start of the result's text or error */
	const char *created_at;
	double seconds; /* created to finished; < 0 while not finished */
} sp_request_row;

/* An app connected now (on any node). */
typedef struct {
	const char *space_id, *space_name, *id, *address, *since;
	const char *served; /* requests_served, decimal */
} sp_conn_row;

/* ---- spaces --------------------------------------------------------------- */

typedef void (*sp_space_cb)(sp_store_status st, const sp_space_row *row, void *ud);
typedef void (*sp_spaces_cb)(sp_store_status st, const sp_space_row *rows, unsigned n, void *ud);

/** One space; row NULL with SP_STORE_NOTFOUND. Fills requests (all of them). */
int sp_store_space_get(sp_app *app, const char *id, sp_space_cb cb, void *ud);
/** Every space (at most 1000) by name; with_counts fills open_requests. */
int sp_store_spaces_list(sp_app *app, int with_counts, sp_spaces_cb cb, void *ud);

/**
 * Creates a space with access 'token' and the token given (its SHA-256 hex
 * in token_hash), or 'open' when token is NULL. cb gets the new row, or
 * SP_STORE_EXISTS (the name is taken) / SP_STORE_INVALID.
 */
int sp_store_space_add(sp_app *app, const sp_space_fields *f, const char *token,
                       const char *token_hash, sp_space_cb cb, void *ud);
/** Saves f over space id: the row as saved, or SP_STORE_NOTFOUND, SP_STORE_EXISTS (the name). */
int sp_store_space_update(sp_app *app, const char *id, const sp_space_fields *f, sp_space_cb cb,
                          void *ud);

typedef enum {
	SP_ACCESS_GENERATE, /* token mode with the token given (the old one replaced) */
	SP_ACCESS_REQUIRE,  /* token mode; the token given only when there is none */
	SP_ACCESS_OPEN,     /* any app, the token kept */
	SP_ACCESS_CLEAR,    /* any app, the token removed */
} sp_access_action;

/**
 * Changes who may register as the space's app; once written, the apps no
 * longer admitted are disconnected (sp_space_access_changed). cb gets the
 * row as changed. BASE_EINVAL without a call for an unknown action, or
 * GENERATE / REQUIRE without a token.
 */
int sp_store_space_access(sp_app *app, const char *id, sp_access_action action, const char *token,
                          const char *token_hash, sp_space_cb cb, void *ud);
/** Deletes a space and its requests; its apps are disconnected. cb gets the row as it was. */
int sp_store_space_delete(sp_app *app, const char *id, sp_space_cb cb, void *ud);

/* ---- requests and apps ---------------------------------------------------- */

typedef void (*sp_requests_cb)(sp_store_status st, const sp_request_row *rows, unsigned n,
                               void *ud);
typedef void (*sp_space_page_cb)(sp_store_status st, const sp_space_row *space,
                                 const sp_request_row *rows, unsigned n, void *ud);
typedef void (*sp_conns_cb)(sp_store_status st, const sp_conn_row *rows, unsigned n, void *ud);

/**
 * A space and, when user_id is not NULL, that user's last 10 requests in
 * it, newest first, in one round trip. space NULL: SP_STORE_NOTFOUND.
 */
int sp_store_space_page(sp_app *app, const char *id, const char *user_id, sp_space_page_cb cb,
                        void *ud);

/* Filters of sp_store_requests_list; "" or NULL matches all. */
typedef struct {
	const char *space_id, *status, *username;
} sp_request_filter;

/** The last 100 requests matching f, newest first (excerpt and seconds filled). */
int sp_store_requests_list(sp_app *app, const sp_request_filter *f, sp_requests_cb cb, void *ud);
/** The apps connected now, newest first (at most 500). */
int sp_store_conns_list(sp_app *app, sp_conns_cb cb, void *ud);

/* A count by key: requests by status, or queued requests by space id. */
typedef struct {
	const char *key;
	const char *count; /* decimal */
} sp_count_row;
typedef void (*sp_counts_cb)(sp_store_status st, const sp_count_row *by_status, unsigned n_status,
                             const sp_count_row *queued_by_space, unsigned n_queued, void *ud);
/**
 * The requests by status (the statuses that have some) and the queued
 * requests per space (the 500 deepest queues), for the metrics.
 */
int sp_store_request_counts(sp_app *app, sp_counts_cb cb, void *ud);

/* ---- uploads' metadata ---------------------------------------------------- */

/* One stored file of a submission. */
typedef struct {
	const char *token, *filename, *content_type, *path;
	uint64_t size;
} sp_upload_row;

typedef void (*sp_done_cb)(sp_store_status st, void *ud);
typedef void (*sp_upload_cb)(sp_store_status st, const sp_upload_row *row, void *ud);
typedef void (*sp_usage_cb)(sp_store_status st, uint64_t user_day, uint64_t total, void *ud);
typedef void (*sp_paths_cb)(sp_store_status st, const char *const *paths, unsigned n, void *ud);

/** Records n files of user_id (NULL: nobody), not yet of a request, in one transaction. */
int sp_store_uploads_add(sp_app *app, const sp_upload_row *rows, unsigned n, const char *user_id,
                         sp_done_cb cb, void *ud);
/** The files' rows (by token) now belong to request_id. cb may be NULL. */
int sp_store_uploads_attach(sp_app *app, const char *const *tokens, unsigned n,
                            const char *request_id, sp_done_cb cb, void *ud);
/** Forgets the files' rows (by token). cb may be NULL. */
int sp_store_uploads_forget(sp_app *app, const char *const *tokens, unsigned n, sp_done_cb cb,
                            void *ud);
/** The row of an upload by its token; NULL with SP_STORE_NOTFOUND. */
int sp_store_upload_get(sp_app *app, const char *token, sp_upload_cb cb, void *ud);
/**
 * Bytes uploaded by user_id in the last 24 hours and, when want_total,
 * by everyone (else 0).
 */
int sp_store_upload_usage(sp_app *app, const char *user_id, int want_total, sp_usage_cb cb,
                          void *ud);
/**
 * Forgets up to 500 uploads whose request ended retention_s ago, or that
 * no request took within grace_s; cb gets their paths to remove.
 */
int sp_store_uploads_expire(sp_app *app, unsigned retention_s, unsigned grace_s, sp_paths_cb cb,
                            void *ud);

#endif
