/*
 * db.h: PostgreSQL for the Spaces layer, on the libuv loop.
 *
 * This layer is the only code that talks to libpq. It offers:
 *
 *   - a pool of non-blocking connections driven by the loop (no call here
 *     ever blocks the loop, except db_migrate, which runs before it);
 *   - parameterised queries with text parameters and text results;
 *   - transactions: several statements that commit together or not at all;
 *   - LISTEN/NOTIFY on a dedicated connection, re-established after a loss;
 *   - the migrations runner used at start-up.
 *
 * Queries wait in a bounded queue while every connection is busy or
 * (re)connecting. Each connection runs in libpq pipeline mode: several
 * queued queries are written back to back and their results read in order,
 * so a burst of small queries costs one round trip, not one each.
 *
 * Delivery contract: every query accepted by db_query / db_query_tx (a 0
 * return) gets its callback called exactly once, later, from the loop, never
 * from inside the call that submitted it. A query whose connection dies
 * before its answer arrives is failed with DB_ECONNLOST (it may or may not
 * have run on the server: the answer was lost, not necessarily the work), and
 * it is never sent a second time unless it carries DB_RETRY.
 *
 * Everything here runs on the loop's thread. libpq types never appear in
 * this header; results are read through the db_result accessors.
 */
#ifndef SPACES_DB_H
#define SPACES_DB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/base.h"

/* ---- errors ------------------------------------------------------------ */

/*
 * Error codes of this layer (db_status, return values). SQLSTATE values
 * given with a result (db_sqlstate) are the server's, except where noted.
 */
typedef enum {
#define DB_ERR_ENUM(name, val, msg) DB_E##name = (val),
	DB_ERRNO_MAP(DB_ERR_ENUM)
#undef DB_ERR_ENUM
} db_errno;

/* DB_ERRNO_MAP is in base/errors.h, with every layer's codes; base_strerror
 * describes them. */

/* ---- results ------------------------------------------------------------ */

/*
 * The outcome of one query or one transaction, handed to its callback. It and
 * every string read from it are valid only during the callback: copy what
 * you keep.
 *
 * What an error looks like:
 *
 *   db_status       db_sqlstate                     when
 *   DB_ESERVER      the server's, e.g. "23505"      the statement failed (syntax,
 *                                                   constraint, ...); db_error is the
 *                                                   server's primary message
 *   DB_ECONNLOST    the server's ("57P01" when it   the connection died with the query
 *                   was shut down) or "08006"       in flight; it may have run
 *   DB_ETIMEDOUT    "08001" when no connection was  waited queue_timeout_ms in the queue
 *                   up, "" when all were busy       without being sent; it did not run
 *   DB_ECLOSED      ""                              the pool closed before sending it
 *   DB_ESKIPPED     ""                              (a transaction's statement only)
 */
typedef struct db_result db_result;

/** 1 when the query (or every statement of the transaction) succeeded. */
int db_ok(const db_result *res);
/** 0 on success, or a DB_E* code (see the table above). */
int db_status(const db_result *res);
/** The error message (the server's primary message for DB_ESERVER); NULL when ok. */
const char *db_error(const db_result *res);
/** The server's DETAIL line of an error, or NULL. */
const char *db_error_detail(const db_result *res);
/** The five-character SQLSTATE of an error, or "" (never NULL). */
const char *db_sqlstate(const db_result *res);

/** Rows returned (0 for commands and errors). */
int db_ntuples(const db_result *res);
/** Columns returned. */
int db_nfields(const db_result *res);
/** The column's index for its exact (case-sensitive) name, or -1. */
int db_field_index(const db_result *res, const char *name);
/** The column's name, or NULL when col is out of range. */
const char *db_field_name(const db_result *res, int col);
/**
 * The value in text form, NUL-terminated. "" for SQL NULL (tell them apart
 * with db_isnull); NULL when row or col is out of range.
 */
const char *db_value(const db_result *res, int row, int col);
/** The value's length in bytes (0 for NULL or out of range). */
size_t db_value_len(const db_result *res, int row, int col);
/** 1 when the value is SQL NULL or out of range. */
int db_isnull(const db_result *res, int row, int col);
/** Rows affected by INSERT/UPDATE/DELETE/SELECT... (the command tag's count), else 0. */
uint64_t db_affected(const db_result *res);

/*
 * A transaction's result is ok only when all its statements succeeded and it
 * committed; when it is not, nothing of it was committed. Its own rows are
 * empty: read each statement's result with db_tx_result. A statement's result
 * tells how that statement went (ok for those before the failing one, even
 * though they were rolled back; DB_ESKIPPED after it). For a plain query,
 * db_tx_count is 1 and db_tx_result(res, 0) is res itself.
 */
unsigned db_tx_count(const db_result *res);
/** The i-th statement's result (never NULL for i < db_tx_count). */
const db_result *db_tx_result(const db_result *res, unsigned i);
/**
 * The index of the statement that failed, or -1: ok, or the failure was not a
 * statement's (the commit itself, e.g. a deferred constraint; a lost connection).
 */
int db_tx_failed(const db_result *res);

/* ---- the pool ----------------------------------------------------------- */

typedef struct db_pool db_pool;

/** Called once per query or transaction; res is valid only during the call. */
typedef void (*db_cb)(const db_result *res, void *ud);
/** Called when db_pool_close has finished: every handle is closed. */
typedef void (*db_close_cb)(db_pool *pool, void *ud);

typedef struct {
	unsigned size;             /* connections (4) */
	unsigned pipeline_depth;   /* queries in flight per connection (32) */
	unsigned max_queued;       /* queries waiting to be sent; more get DB_EQUEUEFULL (10000) */
	unsigned queue_timeout_ms; /* a query waiting longer fails with DB_ETIMEDOUT (30000) */
	unsigned connect_timeout_ms; /* one connection attempt (10000) */
	unsigned backoff_min_ms;     /* first reconnect delay, doubling after each failure (100) */
	unsigned backoff_max_ms;     /* longest reconnect delay (5000) */
	/*
	 * Send single-statement queries with parameters as named prepared
	 * statements, once per connection (1). 0 for a pooler that does not
	 * keep them, such as PgBouncer in transaction mode before 1.21.
	 */
	int prepare;
	/*
	 * Fairness between owners (db_query_owned, db_pool_set_owner): queries
	 * of one owner in the queue or in flight at once (4); more wait in the
	 * owner's own list, at most owner_max_waiting (1000) each and max_queued
	 * for all owners together, beyond which DB_EQUEUEFULL. So a query of
	 * anyone else waits behind at most owner_max_active of each owner's.
	 */
	unsigned owner_max_active;
	unsigned owner_max_waiting;
} db_options;

/** Fills o with the defaults above. */
void db_options_init(db_options *o);

/**
 * Creates a pool on loop and starts connecting at once (queries may be
 * submitted right away; they wait until a connection is up). conninfo is a
 * libpq connection string or URL ("postgresql://user@host:port/db"); it is
 * copied. o may be NULL for the defaults.
 *
 * Returns NULL when conninfo cannot be parsed or memory runs out, with the
 * reason in err (when err is not NULL). A server that cannot be reached is
 * not an error here: the pool keeps retrying (see db_pool_last_error), and
 * queries fail after queue_timeout_ms with that error in their message.
 *
 * Connecting never blocks the loop, except to resolve a host name: libpq
 * does that synchronously, at every reconnect. Give an IP address (or
 * hostaddr=) or a Unix socket directory for a server the loop must never
 * wait for. Server settings go in the string, e.g.
 * "...?options=-c%20statement_timeout%3D5000".
 */
db_pool *db_pool_new_opts(uv_loop_t *loop, const char *conninfo, const db_options *o, char *err,
                          size_t errlen);

/** db_pool_new_opts with the defaults and size connections (0 = 4); errors are logged. */
db_pool *db_pool_new(uv_loop_t *loop, const char *conninfo, unsigned size);

/* Flags of db_query_flags. */
enum {
	/*
	 * The query is read-only or idempotent: if its connection dies before
	 * the answer comes, it is queued again (ahead of newer queries) and
	 * sent once more, on a connection opened after the loss, instead of
	 * failing with DB_ECONNLOST. It is re-sent at most once.
	 */
	DB_RETRY = 1u << 0,
};

/**
 * Queues one statement. sql may hold one statement only, with $1..$n
 * placeholders; params[i] is the text of $(i+1), or NULL for SQL NULL.
 * sql and params are copied: they may be freed when this returns.
 *
 * Returns 0 and calls cb(res, ud) exactly once, later, from the loop (cb
 * may be NULL: the result is dropped, and a failure is logged). Returns
 * DB_EQUEUEFULL, DB_ECLOSED or BASE_ENOMEM (BASE_EINVAL for bad arguments)
 * without ever calling cb.
 *
 * The statement runs in a transaction of its own.
 */
int db_query(db_pool *pool, const char *sql, int nparams, const char *const *params, db_cb cb,
             void *ud);
/**
 * db_query counted against owner, any pointer naming who asked (a socket, a
 * connection: only compared, never read). At most opt.owner_max_active
 * queries of one owner are queued or running at once; the next wait in the
 * owner's own list, in order, without a queue timeout of their own, so one
 * owner flooding the pool delays the others by at most that many queries.
 * Same returns and callback contract as db_query (DB_EQUEUEFULL also when
 * the owner's list is full). owner NULL: db_query.
 */
int db_query_owned(db_pool *pool, const void *owner, const char *sql, int nparams,
                   const char *const *params, db_cb cb, void *ud);
/**
 * Until the next call, queries submitted without an owner (db_query,
 * db_query_flags, db_query_tx) are counted against owner; NULL stops it. For
 * code that makes its queries inside a caller's callback (an event handler):
 * the caller sets the owner around the call.
 */
void db_pool_set_owner(db_pool *pool, const void *owner);
/** db_query with flags (DB_RETRY). */
int db_query_flags(db_pool *pool, unsigned flags, const char *sql, int nparams,
                   const char *const *params, db_cb cb, void *ud);

/** One statement of a transaction: its sql and text parameters (NULL = SQL NULL). */
typedef struct {
	const char *sql;
	int nparams;
	const char *const *params;
} db_stmt;

/**
 * Runs n statements (1 <= n <= 64) on one connection as one transaction:
 * either all of them take effect and commit, or none does. They are sent
 * together in one pipeline segment, which PostgreSQL runs as a single
 * implicit transaction ended by the segment's Sync: committed there when
 * every statement succeeded, rolled back entirely when one fails (the
 * statements after it are skipped, DB_ESKIPPED). This is BEGIN ... COMMIT
 * with ROLLBACK on error, in one round trip, and it never leaves the
 * session inside an aborted transaction. Do not put BEGIN, COMMIT or
 * ROLLBACK in the statements.
 *
 * `SELECT pg_notify($1, $2)` as a statement makes a notification that is
 * delivered if and only if the transaction commits: this is how to
 * "write, then tell" other nodes.
 *
 * Copies everything; returns and calls cb like db_query. A transaction is
 * never re-sent after a lost connection (DB_ECONNLOST: it may have
 * committed; read back to know).
 */
int db_query_tx(db_pool *pool, const db_stmt *stmts, unsigned n, db_cb cb, void *ud);

/* ---- LISTEN / NOTIFY ------------------------------------------------------ */

/**
 * A notification: payload is the text given to NOTIFY / pg_notify ("" when
 * none). payload == NULL is not a notification but a notice that the
 * channel's LISTEN has just been (re-)established, after the first connect
 * or after a reconnect: notifications sent before this moment (while the
 * listening connection was down) may have been missed, so re-read whatever
 * state they would have announced.
 */
typedef void (*db_notify_cb)(const char *channel, const char *payload, void *ud);

/**
 * Calls cb for every notification on channel (exact, case-sensitive name,
 * as given to pg_notify). Listening uses one extra connection of the pool,
 * opened at the first db_listen and re-LISTENed on every reconnect. Several
 * registrations may share a channel. Returns 0, BASE_ENOMEM, BASE_EINVAL or
 * DB_ECLOSED.
 */
int db_listen(db_pool *pool, const char *channel, db_notify_cb cb, void *ud);
/** Removes the registration (channel, cb, ud); safe inside a notification callback. */
int db_unlisten(db_pool *pool, const char *channel, db_notify_cb cb, void *ud);
/**
 * Sends a notification through the pool: `SELECT pg_notify(channel, payload)`.
 * cb may be NULL. Inside a transaction, prefer a pg_notify statement of the
 * transaction itself (db_query_tx). PostgreSQL refuses payloads of 8000
 * bytes and more (SQLSTATE 22023): send an id and let listeners read the rest.
 */
int db_notify(db_pool *pool, const char *channel, const char *payload, db_cb cb, void *ud);

/* ---- state and shutdown --------------------------------------------------- */

/* Upper bounds (ms) of the query latency buckets; a last bucket holds the rest. */
#define DB_LAT_BOUNDS_MS                                             \
	{                                                            \
		1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000 \
	}
#define DB_LAT_BUCKETS 13

typedef struct {
	unsigned size;       /* connections of the pool (without the listener) */
	unsigned connected;  /* connections up */
	unsigned queued;     /* queries waiting to be sent */
	unsigned in_flight;  /* queries sent, answers not yet read */
	unsigned waiting;    /* queries waiting in their owners' lists */
	uint64_t completed;  /* callbacks called with success */
	uint64_t failed;     /* callbacks called with an error */
	uint64_t reconnects; /* connections re-established after a loss */
	/* Queries (queued to answered, loop time), by latency; not cumulative. */
	uint64_t lat_bucket[DB_LAT_BUCKETS];
	uint64_t lat_sum_ms;
} db_pool_stats;

void db_pool_get_stats(const db_pool *pool, db_pool_stats *st);
/** The last connection error seen (for health pages and logs), or "". */
const char *db_pool_last_error(const db_pool *pool);

/**
 * Starts a clean shutdown: new queries are refused (DB_ECLOSED); queries
 * already accepted are still run on the connections that are up, and fail
 * with DB_ECLOSED when none is; connecting and listening connections are
 * dropped. Answers in flight are waited for (a statement that never ends
 * holds the shutdown: set statement_timeout). When every connection and
 * handle is closed, cb(pool, ud) runs (cb may be NULL). Safe to call from a
 * callback of the pool. Returns 0, or DB_ECLOSED when already closing.
 */
int db_pool_close(db_pool *pool, db_close_cb cb, void *ud);

/**
 * Frees the pool. Only once db_pool_close has finished (in its callback or
 * later); NULL is allowed.
 */
void db_pool_free(db_pool *pool);

/* ---- migrations ------------------------------------------------------------ */

/**
 * Applies the migrations of dir to the database, BLOCKING: call it at
 * start-up, before the loop runs (or from a command such as
 * `spaces-server migrate`), never from the loop.
 *
 * Files named NNNN_description.sql (NNNN: four or more digits) are applied
 * in order of their number, each at most once, each in its own transaction
 * together with its row in schema_migrations(version, applied_at), where
 * version is the number ("0001"). Other files are ignored. Two files with
 * the same number are an error. A migration must not contain BEGIN, COMMIT
 * or anything that cannot run in a transaction (CREATE INDEX CONCURRENTLY).
 * A session advisory lock serialises processes starting together: the
 * second one waits, then finds nothing left to do.
 *
 * Returns the number of migrations applied (0 when the database was up to
 * date), or DB_ECONNINFO, DB_ECONNECT, DB_EMIGRATE (with the file, line
 * and the server's message in err; that file's changes are rolled back and
 * the ones before it stay), BASE_EINVAL (dir unreadable) or BASE_ENOMEM.
 */
int db_migrate(const char *conninfo, const char *dir, char *err, size_t errlen);

#endif
