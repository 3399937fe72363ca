/*
 * spaces_internal.h: what the files of the Spaces layer share.
 */
#ifndef SPACES_INTERNAL_H
#define SPACES_INTERNAL_H

#include "spaces.h"

#define SP_ID_MAX 64

/* One app connection on namespace "/". Held by its socket and by pending queries. */
typedef struct sp_conn {
	base_list link; /* in its sp_space.apps once registered */
	sp_app *app;
	sio_socket *s;          /* NULL once disconnected */
	struct sp_space *space; /* NULL until registered */
	char id[37];            /* connection_id, a UUID */
	unsigned inflight;      /* requests sent and not answered */
	unsigned served;        /* results recorded, not yet added to requests_served */
	base_list held;         /* the sp_req it was sent and has not answered (results.c) */
	int registering;
	int recheck; /* its access changed while it was registering: check again once done */
	int refs;
	/* SHA-256 (hex) of the space's token it registered with; "" without one. */
	char token_hash[65];
} sp_conn;

/* A space with apps connected in this process (or, in cluster mode, on other nodes). */
typedef struct sp_space {
	struct sp_space *next;
	base_list apps; /* sp_conn.link */
	unsigned n_apps;
	unsigned n_remote; /* cluster mode: apps on the other live nodes */
	char id[SP_ID_MAX];
	char name[256];
	/* live.c: what its followers were last told (see there) */
	int live_dirty;             /* changed since the last recompute started */
	int live_busy;              /* a recompute query in flight */
	int live_force;             /* the next recompute tells space_state even if unchanged */
	uint64_t live_last;         /* loop time (ms) the last recompute started */
	struct sp_live_entry *seen; /* open requests as last pushed, sorted by id */
	size_t n_seen;
	int have_counts; /* queued, processing known */
	unsigned queued, processing;
	int eta; /* estimated wait of a new request (s), -1: none */
} sp_space;

struct sp_app {
	sio_server *io;
	db_pool *db;
	sp_options opts;
	sio_namespace *apps_nsp;    /* "/" */
	sio_namespace *browser_nsp; /* "/spaces" */
	sp_auth_fn browser_auth;    /* who a browser is (sp_browser_auth_set) */
	void *browser_auth_ud;
	sp_space *spaces;
	uv_timer_t sweep;
	int sweeping;
	int closed;
	/* cluster mode (opts.node_id set) */
	struct sp_cluster *cluster; /* broadcasts of "/spaces" to and from the other nodes */
	int beating;                /* a heartbeat query in flight */
	int beats;                  /* heartbeats done */
	int clashes;                /* heartbeats that found another process's instance */
	char instance[17];          /* this process start's random id, in nodes.instance */
	int presence_busy, presence_dirty;
	struct sp_results *results; /* requests held by apps here, results to write (results.c) */
	/* Failed registrations per client address (register_max_failures). */
	struct sp_fail_slot {
		char addr[64];
		uint64_t since; /* loop time (ms) of the first failure of its minute */
		unsigned n;
	} fails[256];
	sp_stats stats;
	uv_timer_t live_timer; /* live.c: recomputes that must wait their turn */
	int live_timer_on;
	struct sp_final_doc *finals; /* live.c: documents of final requests, by id */
	uint64_t finals_gen;         /* bumped when entries are dropped */
	uint64_t finals_hits;
};

/** Adds ms to a latency histogram. */
void sp__observe(sp_histogram *h, uint64_t ms);

/* rules.c: the pure decisions (submission rules are sp_submit_judge, spaces.h) */
/* A request's status (requests.status). */
typedef enum {
	SP_QUEUED,
	SP_PROCESSING,
	SP_COMPLETED,
	SP_FAILED,
	SP_CANCELLED,
	SP_STATUSES
} sp_status;
/* What happens to a request. */
typedef enum {
	SP_EV_DISPATCH,  /* sent to an app */
	SP_EV_REQUEUE,   /* its app left without answering */
	SP_EV_COMPLETED, /* its app's result, status completed */
	SP_EV_FAILED,    /* its app's result, status failed */
	SP_EV_TIMEOUT,   /* its deadline passed */
	SP_EV_CANCEL,    /* its user cancelled it */
} sp_event;
const char *sp_status_name(sp_status s);
/** 0 and *out when name is a status, else -1. */
int sp_status_parse(const char *name, sp_status *out);
/**
 * The request state machine: 0 and *to (may be NULL) when ev may happen
 * to a request in status from, -1 when it may not (completed, failed and
 * cancelled are final; only a processing request is requeued or answered).
 */
int sp_request_next(sp_status from, sp_event ev, sp_status *to);
/**
 * The dispatch choice: the app of sp (its connected ones) with the fewest
 * requests in flight, the first registered on a tie; NULL when none.
 */
sp_conn *sp__pick_app(const sp_space *sp);

/* store.c: the tables' rows */
/* The columns sp__space_row reads, of the spaces table aliased t. */
#define SP__SPACE_COLUMNS(t)                                                                       \
	t ".id, " t ".name, " t ".description, " t ".cover, " t ".cover_type, " t ".card_type, " t \
	  ".enable_prompt, " t ".enable_audio, " t ".enable_video, " t ".enable_file_upload, " t   \
	  ".rate_limit_seconds, " t ".timeout_seconds, " t ".max_apps, " t                         \
	  ".app_access = 'open', " t ".app_token_hash IS NOT NULL, " t ".app_token"
/* The same without the long texts (name, description, cover, token read as ''). */
#define SP__SPACE_COLUMNS_SHORT(t)                                                            \
	t ".id, '', '', '', '', " t ".card_type, " t ".enable_prompt, " t ".enable_audio, " t \
	  ".enable_video, " t ".enable_file_upload, " t ".rate_limit_seconds, " t             \
	  ".timeout_seconds, " t ".max_apps, " t ".app_access = 'open', " t                   \
	  ".app_token_hash IS NOT NULL, NULL"
#define SP__SPACE_NCOLS 16
/** Reads the SP__SPACE_COLUMNS of a row, from column col on; strings point into res. */
void sp__space_row(const db_result *res, int row, int col, sp_space_row *out);

/* app.c */
sp_space *sp__space_get(sp_app *app, const char *id, int create);
void sp__space_changed(sp_app *app, const char *space_id);
/** The connected app of the space with the fewest requests in flight, or NULL. */
sp_conn *sp__least_busy(sp_app *app, const char *space_id);
void sp__conn_unref(sp_conn *c);
/**
 * Adds c's recorded results to app_connections.requests_served (one UPDATE;
 * nothing when none). Counting in memory keeps the connection's row from
 * being updated by every result, which serialised them all on its row lock.
 */
void sp__flush_served(sp_app *app, sp_conn *c);

/* app_protocol.c */
void sp__apps_init(sp_app *app);
/** Sends one inference_request built from a request row's JSON fields. */
int sp__send_request(sp_conn *c, const char *request_id, const char *username,
                     const char *payload_json);
/** Moves the queued requests of a space to its apps (after a register or a disconnect). */
void sp__drain(sp_app *app, const char *space_id);
/** Reads a space's access again and disconnects the apps of this process it no longer admits. */
void sp__access_check(sp_app *app, const char *space_id);

/* browser.c */
void sp__browser_init(sp_app *app);
/** Stops listening for other processes' requests to close sockets. */
void sp__browser_close(sp_app *app);
/** Tells this process's followers of a space its state (apps, and the counts last read). */
void sp__space_state(sp_app *app, const char *space_id);
/** Sends a request_update (text: its JSON) to the browsers of user_id and the followers of request_id. */
void sp__request_emit(sp_app *app, const char *user_id, const char *request_id, const char *text);
/** Sends space_state (text: its JSON) to the followers of a space on every node. */
void sp__space_state_emit(sp_app *app, const char *space_id, const char *text);

/*
 * live.c: the state of each request as its card shows it (queued with its
 * position, waiting at its app behind others, processing, final), the
 * estimated wait, and the space's counts; recomputed from the database with
 * one query per change of a space, at most every LIVE_MIN_INTERVAL_MS.
 *
 * SP_REQ_COLS: the columns of a requests row (alias r) every request
 * document is built from; statements that change a request return them.
 */
#define SP_TIME_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* clang-format off */
#define SP_REQ_COLS                                                                        \
	"r.id::text AS id, r.user_id::text AS user_id, r.space_id::text AS space_id, "     \
	"r.status, r.result::text AS result, r.progress, r.progress_message, "             \
	SP_TIME_SQL("r.created_at") " AS created_at, "                                      \
	SP_TIME_SQL("r.updated_at") " AS updated_at, r.notice, "                            \
	"round(EXTRACT(EPOCH FROM r.finished_at - r.started_at), 3)::float8 AS run_s, "    \
	"r.progress_at IS NOT NULL AS progressed"
/* clang-format on */
#define SP_REQ_NCOLS 12
/* The notices of requests that went back to the queue (requests.notice). */
#define SP_NOTICE_REQUEUED "The app disconnected; back in the queue."
#define SP_NOTICE_RESTARTED "The server restarted; back in the queue."
/** Builds the request document of row (SP_REQ_COLS first; live: the state columns follow). */
json_t *sp__request_doc(sp_app *app, const db_result *res, int row, int live);
/** Tells the browsers of the request of row (SP_REQ_COLS) its new state. */
void sp__request_push(sp_app *app, const db_result *res, int row);
/**
 * A space changed: its followers are told, within LIVE_MIN_INTERVAL_MS.
 * follower: a browser started following it (space_state goes out once the
 * counts are known, even if unchanged).
 */
void sp__live_touch(sp_app *app, const char *space_id, int follower);
/** The space_state JSON of a space as this process knows it (free() it); NULL on ENOMEM. */
char *sp__space_state_text(sp_app *app, const char *space_id);
void sp__live_init(sp_app *app);
/**
 * Forgets the final documents kept of space_id's requests (all of them
 * when space_id is NULL): a deleted space takes its requests with it.
 */
void sp__finals_drop(sp_app *app, const char *space_id);
void sp__live_close(sp_app *app);
void sp__live_free_space(sp_space *sp);

/* requests.c */
void sp__sweep_start(sp_app *app);
/** A request written as held by connection_id, whose app was gone: back to the queue. */
void sp__requeue_orphan(sp_app *app, const char *request_id, const char *connection_id);

/* journal.c: results kept on disk until PostgreSQL has them (see the file). */
typedef struct sp_journal sp_journal;
typedef struct sp_jrec sp_jrec;
/** One record found at start-up: its JSON (json_len bytes, not NUL-terminated). */
typedef void (*sp_journal_replay_cb)(sp_jrec *rec, const char *json, size_t json_len, void *ud);
/**
 * Opens (creating) dir/results.journal, locked against other processes, and
 * hands every record in it to cb, in order, before it returns (at start-up:
 * this reads the file synchronously). The records stay in the journal until
 * released. Returns 0, or an error (logged: the directory cannot be made,
 * another process holds it, the file cannot be read).
 */
int sp_journal_open(uv_loop_t *loop, const char *dir, uint64_t max_bytes, sp_journal_replay_cb cb,
                    void *ud, sp_journal **out);
/**
 * Appends a record (one JSON object without newlines), flushed to the disk
 * off the loop with others. Returns 0 and the record, BASE_ELIMIT when the
 * records not yet released would pass max_bytes, BASE_ECLOSED after a
 * failed write, BASE_ENOMEM.
 */
int sp_journal_add(sp_journal *j, const char *json, size_t len, sp_jrec **rec);
/** The record is in PostgreSQL (or given up): it leaves the journal. NULL is allowed. */
void sp_journal_release(sp_journal *j, sp_jrec *rec);
/**
 * A record added from now on is appended only once it has waited ms
 * without being released (0, the default: at once). Records released
 * within the delay never touch the disk.
 */
void sp_journal_set_delay(sp_journal *j, unsigned ms);
/** The records waiting for their delay are appended now. */
void sp_journal_flush(sp_journal *j);
/** Bytes of the records not released. */
uint64_t sp_journal_held_bytes(const sp_journal *j);
/** Closes the journal, first appending what is queued; safe with an operation running. */
void sp_journal_free(sp_journal *j);

/* results.c: what apps of this process hold, their results and progress. */
/** Opens the journal (opts.data_dir) and takes back its results. 0 or an error (logged). */
int sp__results_open(sp_app *app);
void sp__results_free(sp_app *app);
/** c was sent request_id. 0 or BASE_ENOMEM. */
int sp__held_add(sp_conn *c, const char *request_id);
/** c is gone: it holds nothing any more. */
void sp__held_drop_conn(sp_conn *c);
/**
 * The deadline sweep failed request_id: whoever held it does no longer.
 * Returns 1 when a result of it waits to be written (the sweep raced it:
 * the write puts it right, so nobody is told of the timeout).
 */
int sp__held_expired(sp_app *app, const char *request_id);
/**
 * The ids of the requests whose result waits to be written (of connection
 * only, or all when NULL) as a PostgreSQL array literal, NUL-terminated.
 */
void sp__pending_ids(sp_app *app, const sp_conn *only, base_buf *out);
/**
 * request_id was cancelled: when an app of this process holds it, the app
 * is sent cancel_request and lets go of it (a result it sends later is
 * ignored). Returns 1 when it was held here.
 */
int sp__held_cancel(sp_app *app, const char *request_id);
/** inference_result / inference_progress from c (the event's first argument). */
void sp__result_take(sp_conn *c, json_t *obj);
void sp__progress_take(sp_conn *c, json_t *obj);
/** Every sweep: results and progress that could not be written are tried again. */
void sp__results_tick(sp_app *app);
/** 1 while the pool has a connection up. */
int sp__db_up(const sp_app *app);

/* nodes.c (cluster mode; each does nothing with one process) */
/* A space's apps changed (presence, and maybe requeued requests); payload: its id. */
#define SP_NODES_CHANNEL "spaces_changed"
/* A space has new queued requests, for whichever node has an app of it. */
#define SP_QUEUE_CHANNEL "spaces_queued"
/* Who may register for a space changed; payload: its id (sp_space_access_changed). */
#define SP_ACCESS_CHANNEL "spaces_access"
/** Listens to the other nodes and starts the heartbeat. 0 or an error. */
int sp__nodes_start(sp_app *app);
void sp__nodes_stop(sp_app *app);
/** Tells the other nodes that a space's apps or queue changed (after the change is written). */
void sp__nodes_tell(sp_app *app, const char *space_id);
/** Tells the other nodes that a space's access changed. */
void sp__nodes_tell_access(sp_app *app, const char *space_id);
/** Tells the other nodes that a space has queued requests (only its queue changed). */
void sp__nodes_tell_queued(sp_app *app, const char *space_id);
/* A request was cancelled, for the node whose app holds it; payload: its id. */
#define SP_CANCEL_CHANNEL "spaces_cancel"
/** Tells the other nodes that a request held by an app of theirs was cancelled. */
void sp__nodes_tell_cancel(sp_app *app, const char *request_id);
/** Every sweep: heartbeat, dead nodes' requests back to the queue, remote apps counted. */
void sp__nodes_tick(sp_app *app);
/** app_connections.node_id of this process ("" with one process). */
const char *sp__node_id(const sp_app *app);

#endif
