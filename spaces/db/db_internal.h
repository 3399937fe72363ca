/*
 * db_internal.h: what the files of spaces/db/ share. libpq stays in here and
 * in the .c files.
 */
#ifndef SPACES_DB_INTERNAL_H
#define SPACES_DB_INTERNAL_H

#include <libpq-fe.h>

#include "base/table.h"
#include "base/timeq.h"
#include "db.h"

#define DB_LOG "db"
#define DB_MAX_TX_STMTS 64
#define DB_ERRBUF 512

/* ---- jobs: one query or one transaction, from submission to callback ---- */

typedef struct db_job_stmt {
	const char *sql;
	int nparams;
	const char *const *params;
} db_job_stmt;

typedef enum {
	DB_JOB_USER = 0, /* a db_query / db_query_tx: the user's callback gets the result */
	DB_JOB_LISTEN,   /* the listener's LISTEN "channel" */
	DB_JOB_UNLISTEN, /* the listener's UNLISTEN "channel" */
} db_job_kind;

typedef struct db_job {
	base_list link;         /* in a queue, or in a connection's in-flight list */
	base_timeq_entry timer; /* the queue timeout, armed while queued */
	db_job_kind kind;
	unsigned flags;   /* DB_RETRY */
	unsigned retried; /* re-sent once already */
	uint64_t min_up;  /* send only on a connection whose up_seq is at least this */
	int is_tx;
	unsigned nstmts;
	db_job_stmt *stmts; /* in the same allocation as the job */
	PGresult **res;     /* one slot per statement, filled as results come */
	unsigned nres;
	PGresult *extra; /* an error after the last statement (at the commit) */
	/* A Parse was sent before the statement: its result comes first. */
	int prep_pending;
	int prep_slot; /* the connection's prepared statement it uses, or -1 */
	db_cb cb;
	void *ud;
	char *channel;          /* LISTEN / UNLISTEN jobs: the channel (owned) */
	struct db_owner *owner; /* who it is counted against (db_query_owned), or NULL */
	uint64_t queued_ms;     /* loop time it was first queued (latency histogram) */
} db_job;

/*
 * An owner of queries (db_query_owned): at most opt.owner_max_active of its
 * jobs are in the pool's queue or in flight; the others wait in its own list
 * and go to the tail of the queue one by one as those finish. Created at its
 * first query, freed when it has none left.
 */
typedef struct db_owner {
	base_table_link hlink; /* in pool->owners, by key (the pointer) */
	const void *key;
	unsigned active;   /* jobs in pool->queue or in flight */
	unsigned nwaiting; /* jobs in waiting */
	base_list waiting; /* db_job.link, oldest first */
} db_owner;

/** Copies the statements into one allocation. Returns NULL when out of memory. */
db_job *db__job_new(const db_job_stmt *stmts, unsigned n, int is_tx, db_cb cb, void *ud);
/** Frees the job and any results it holds. */
void db__job_free(db_job *job);
/** Drops the results gathered so far (before a job is sent again). */
void db__job_clear_results(db_job *job);

/* ---- connections -------------------------------------------------------- */

typedef enum {
	DB_CONN_WAIT = 0,   /* down; the timer will start the next attempt */
	DB_CONN_CONNECTING, /* PQconnectPoll in progress */
	DB_CONN_UP,         /* ready, in pipeline mode */
	DB_CONN_CLOSED,     /* the pool is closing: never again */
} db_conn_state;

typedef struct db_conn db_conn;

/*
 * A uv_poll_t lives on the heap apart from its connection: libpq may replace
 * the socket while connecting, and a handle can only be reused after its
 * close callback, so each socket gets a fresh one.
 */
typedef struct db_poll {
	uv_poll_t handle;
	db_conn *conn; /* NULL once detached and closing */
	db_pool *pool;
} db_poll;

/*
 * A statement prepared on one connection: single-statement jobs with
 * parameters are sent as a named Parse once, then Bind/Execute only, which
 * saves the server the parse and plan of every hot query (half its CPU on
 * the short lookups of the Spaces layer).
 */
#define DB_STMT_CACHE 64

typedef struct {
	char *sql;     /* the statement's text (owned); NULL when the slot is free */
	uint64_t hash; /* of sql */
	int nparams;
	char name[16]; /* "s<n>": never reused within a session */
} db_prepared;

struct db_conn {
	db_pool *pool;
	db_prepared stmts[DB_STMT_CACHE];
	unsigned nstmts;   /* slots in use */
	unsigned stmt_seq; /* statements prepared in this session */
	unsigned id;       /* 1..size for the pool, 0 for the listener (logs) */
	int is_listener;
	db_conn_state state;
	PGconn *pg;
	db_poll *poll;
	int poll_events;    /* UV_READABLE | UV_WRITABLE currently watched */
	uv_timer_t timer;   /* reconnect backoff, connect timeout */
	base_list inflight; /* jobs sent, in order */
	unsigned ninflight;
	unsigned backoff_ms; /* delay before the next attempt */
	unsigned failures;   /* failed attempts since the connection was last up */
	int was_up;          /* has been up at least once (a later up is a reconnect) */
	uint64_t up_seq;     /* pool->up_seq when it last came up */
	uint64_t down_since; /* base_now_ms() when it went down */
	int want_write;      /* PQflush left data behind */
	int sent;            /* jobs written since the last flush */
	char fatal_msg[256]; /* the server's reason for ending the session (57P01...) */
	char fatal_state[6];
	char host[128]; /* host:port, for logs */
};

/** Starts (or restarts) a connection attempt now. */
void db__conn_connect(db_conn *c);
/** Sends job on c (which must be up). Returns 0, or -1 when the connection broke (job not sent). */
int db__conn_send(db_conn *c, db_job *job);
/** Flushes what sends left in libpq's buffer and watches for writability when needed. */
void db__conn_flush(db_conn *c);
/**
 * Tears c down after a failure: in-flight jobs are failed with DB_ECONNLOST
 * (or queued again when DB_RETRY), then a reconnect is scheduled unless the
 * pool is closing.
 */
void db__conn_lost(db_conn *c, const char *why);
/** Closes c for good (pool closing): poll, libpq connection; the timer handle stays for db__conn_close_handles. */
void db__conn_shutdown(db_conn *c);
/** Initialises c's handles. Returns 0 or a libuv error. */
int db__conn_init(db_pool *pool, db_conn *c, unsigned id, int is_listener);
/** Closes the timer handle (counted in pool->handles). */
void db__conn_close_handles(db_conn *c);

/* ---- listener registrations -------------------------------------------- */

typedef struct db_listen_reg {
	base_list link;
	db_notify_cb cb;
	void *ud;
	int armed; /* its LISTEN has completed on the current connection */
	int dead;  /* removed; freed when no callback runs */
	char channel[];
} db_listen_reg;

/* ---- the pool ----------------------------------------------------------- */

struct db_pool {
	uv_loop_t *loop;
	char *conninfo;
	db_options opt;
	db_conn *conns; /* opt.size of them */
	db_conn *listener;
	base_list queue; /* user jobs waiting to be sent */
	unsigned nqueued;
	base_table owners;         /* the owners with jobs (db_owner.hlink); zeroed: empty */
	unsigned nwaiting;         /* jobs waiting in their owners' lists */
	const void *current_owner; /* db_pool_set_owner */
	base_list lqueue;          /* the listener's LISTEN / UNLISTEN jobs */
	base_list regs;            /* db_listen_reg */
	int in_notify;             /* notification callbacks running: regs are not freed */
	base_timeq qtimeout;
	uv_timer_t kick; /* runs db__pool_dispatch on the next loop turn */
	int closing;
	int closed;  /* every handle closed, close_cb called */
	int handles; /* open libuv handles, including detached polls */
	db_close_cb close_cb;
	void *close_ud;
	uint64_t completed, failed, reconnects;
	uint64_t lat_bucket[DB_LAT_BUCKETS], lat_sum_ms;
	uint64_t up_seq; /* counts connections coming up */
	char last_error[DB_ERRBUF];
};

/** Makes db__pool_dispatch run soon, from the loop (never re-entrantly). */
void db__pool_kick(db_pool *pool);
/** Queues job at the tail (or the head, for a retried job) and arms its timeout. */
void db__pool_enqueue(db_pool *pool, base_list *queue, db_job *job, int at_head);
/** A handle of the pool finished closing. */
void db__pool_handle_closed(db_pool *pool);
/** Records the last connection error (for messages and db_pool_last_error). */
void db__pool_set_error(db_pool *pool, const char *msg);
/** Called when a connection comes up, for the listener's re-LISTENs. */
void db__listen_on_up(db_conn *c);
/** Delivers pending notifications of the listener connection. */
void db__listen_deliver(db_conn *c);
/** Completion of a LISTEN / UNLISTEN job. */
void db__listen_job_done(db_pool *pool, db_job *job, const db_result *res);
/** The listener went down: registrations wait for their next LISTEN. */
void db__listen_on_down(db_pool *pool);
/** Frees all registrations (pool free). */
void db__listen_free_all(db_pool *pool);

/* ---- delivering results -------------------------------------------------- */

/** The job is done (just before its callback): its owner may send its next one. */
void db__owner_job_done(db_pool *pool, db_job *job);
/** Completes a job whose results (and Sync) have all arrived, and frees it. */
void db__job_complete(db_pool *pool, db_job *job);
/** Fails a job that never got (all) its results, and frees it. sqlstate may be "". */
void db__job_fail(db_pool *pool, db_job *job, int status, const char *sqlstate, const char *msg);

/** Copies a libpq message into buf on one line, without the trailing newline. */
void db__oneline(char *buf, size_t len, const char *msg);
/** 1 when an error SQLSTATE means the server is ending the session (57P0x, 08xxx). */
int db__sqlstate_fatal(const char *sqlstate);

#endif
