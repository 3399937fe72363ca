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
	int registering;
	int refs;
} sp_conn;

/* A space with apps connected in this process (or, in cluster mode, on other nodes). */
typedef struct sp_space {
	struct sp_space *next;
	base_list apps; /* sp_conn.link */
	unsigned n_apps;
	unsigned n_remote; /* cluster mode: apps on the other live nodes */
	char id[SP_ID_MAX];
	char name[256];
} sp_space;

struct sp_app {
	sio_server *io;
	db_pool *db;
	sp_options opts;
	sio_namespace *apps_nsp;    /* "/" */
	sio_namespace *browser_nsp; /* "/spaces" */
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
};

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

/* browser.c */
void sp__browser_init(sp_app *app);
/** Stops listening for other processes' requests to close sockets. */
void sp__browser_close(sp_app *app);
/** Tells the browsers of a user (and followers of the request) its new state. */
void sp__request_update(sp_app *app, const char *user_id, const char *request_id,
                        const char *status, const char *progress, const char *message,
                        const char *result_json, const char *updated_at);
void sp__space_state(sp_app *app, const char *space_id);

/* requests.c */
void sp__sweep_start(sp_app *app);
/** A request written as held by connection_id, whose app was gone: back to the queue. */
void sp__requeue_orphan(sp_app *app, const char *request_id, const char *connection_id);

/* nodes.c (cluster mode; each does nothing with one process) */
/* A space's apps changed (presence, and maybe requeued requests); payload: its id. */
#define SP_NODES_CHANNEL "spaces_changed"
/* A space has new queued requests, for whichever node has an app of it. */
#define SP_QUEUE_CHANNEL "spaces_queued"
/** Listens to the other nodes and starts the heartbeat. 0 or an error. */
int sp__nodes_start(sp_app *app);
void sp__nodes_stop(sp_app *app);
/** Tells the other nodes that a space's apps or queue changed (after the change is written). */
void sp__nodes_tell(sp_app *app, const char *space_id);
/** Tells the other nodes that a space has queued requests (only its queue changed). */
void sp__nodes_tell_queued(sp_app *app, const char *space_id);
/** Every sweep: heartbeat, dead nodes' requests back to the queue, remote apps counted. */
void sp__nodes_tick(sp_app *app);
/** app_connections.node_id of this process ("" with one process). */
const char *sp__node_id(const sp_app *app);

#endif
