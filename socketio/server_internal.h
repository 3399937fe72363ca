/*
 * server_internal.h: what the files of the Socket.IO server share
 * (clients, namespaces, sockets, rooms, acks, recovery).
 */
#ifndef SIO_SERVER_INTERNAL_H
#define SIO_SERVER_INTERNAL_H

#include "socketio.h"
#include "parser.h"
#include "base/table.h"
#include "base/timeq.h"

#define SIO_ID_BYTES 15
#define SIO_ID_LEN 20

typedef struct sio_client sio_client;
typedef struct sio_admin sio_admin;

/* ---- the event rate limit (sio_options.event_rate) ----------------------- */

typedef struct {
	unsigned rate;       /* per second; 0: no limit */
	unsigned drop_limit; /* drops before a close; 0: never */
	uint64_t cap;        /* burst, in thousandths of a packet */
} sio_limit;

/* A token bucket, in thousandths of a packet: a refill is one multiplication. */
typedef struct {
	uint64_t tokens;
	uint32_t ms;      /* loop time of the last refill */
	uint32_t dropped; /* since the bucket was last full */
} sio_bucket;

static inline void sio__limit_set(sio_limit *l, unsigned rate, unsigned burst, unsigned drops)
{
	l->rate = rate;
	l->drop_limit = drops;
	l->cap = rate ? (uint64_t)(burst ? burst : rate) * 1000 : 0;
}

static inline void sio__bucket_init(sio_bucket *b, const sio_limit *l, uint64_t now)
{
	b->tokens = l->cap;
	b->ms = (uint32_t)now;
	b->dropped = 0;
}

/*
 * Takes one packet's token: 1 when it may go on, 0 when it is dropped, -1
 * when it is dropped and the drops reached the limit (close the connection).
 * A few integer operations; nothing allocated.
 */
static inline int sio__bucket_take(sio_bucket *b, const sio_limit *l, uint64_t now)
{
	if (!l->cap)
		return 1;
	uint64_t t = b->tokens + (uint64_t)(uint32_t)((uint32_t)now - b->ms) * l->rate;
	b->ms = (uint32_t)now;
	if (t >= l->cap) {
		t = l->cap;
		b->dropped = 0; /* it paused long enough: not a persistent flood */
	}
	if (t >= 1000) {
		b->tokens = t - 1000;
		return 1;
	}
	b->tokens = t;
	b->dropped++;
	return l->drop_limit && b->dropped >= l->drop_limit ? -1 : 0;
}

typedef struct {
	char *name; /* NULL for catch-all entries */
	size_t name_len;
	sio_event_fn fn;
	void *ud;
} sio_handler;

typedef struct {
	sio_middleware_fn fn;
	void *ud;
} sio_mw;

typedef struct sio_room {
	base_table_link hlink; /* in nsp->rooms, by name */
	base_list members;     /* sio_membership.room_link */
	uint32_t n;
	uint32_t name_len;
	char name[];
} sio_room;

typedef struct {
	base_list room_link;
	base_list sock_link;
	sio_room *room;
	sio_socket *s;
} sio_membership;

/* A handler of other nodes' serverSideEmit (cluster.c). */
typedef struct {
	char *name; /* NULL: the catch-all */
	sio_server_event_fn fn;
	void *ud;
} sio_srv_handler;

typedef struct {
	char *pattern;
	int (*match)(const char *name, void *ud);
	void (*setup)(sio_namespace *nsp, void *ud);
	void *ud;
} sio_dyn;

struct sio_namespace {
	sio_server *srv;
	base_list link; /* in srv->namespaces */
	char *name;
	size_t name_len;
	base_list sockets; /* connected sio_socket.nsp_link */
	size_t n_sockets;
	sio_handler *handlers;
	size_t n_handlers;
	sio_handler *any_in, *any_out;
	size_t n_any_in, n_any_out;
	sio_mw *mws;
	size_t n_mws;
	sio_socket_fn on_connection;
	void *on_connection_ud;
	sio_disconnect_fn on_disconnect;
	void *on_disconnect_ud;
	base_table rooms; /* sio_room.hlink; zeroed: empty */
	uint32_t bcast_epoch;
	sio_limit event_limit; /* its sockets' event rate limit */
	/* the targets of a broadcast, reused by the next (rooms.c) */
	sio_socket **scratch;
	size_t scratch_cap;
	int scratch_busy;
	sio_adapter adapter;
	sio_srv_handler *srv_events; /* other nodes' serverSideEmit */
	size_t n_srv_events;
	/* connection state recovery */
	base_list history;  /* sio_stored.link, oldest first */
	base_list sessions; /* sio_session.link, oldest first */
	uint64_t next_offset;
};

typedef enum {
	SIO_SOCK_CONNECTING = 0, /* middlewares running */
	SIO_SOCK_CONNECTED,
	SIO_SOCK_DISCONNECTED,
} sio_sock_state;

typedef struct sio_pending_ack {
	base_list link;
	int64_t id;
	uv_timer_t *timer; /* NULL without a timeout */
	sio_socket *s;
	sio_ack_fn cb;
	void *ud;
} sio_pending_ack;

struct sio_socket {
	sio_client *client; /* NULL once detached from a closed client */
	sio_namespace *nsp;
	base_list nsp_link;    /* in nsp->sockets once connected */
	base_list client_link; /* in client->sockets */
	base_list rooms;       /* sio_membership.sock_link */
	base_list acks;        /* sio_pending_ack.link */
	int64_t next_ack;
	size_t auth_len; /* of the CONNECT payload in auth_buf ("{}" when none) */
	char *data_json; /* socket.data for fetchSockets; NULL: {} */
	size_t data_json_len;
	void *user;
	uint32_t bcast_mark;
	int refs;          /* held across middlewares and callbacks */
	sio_bucket bucket; /* its events (nsp->event_limit) */
	uint16_t mw_next;  /* index of the next middleware to run */
	uint8_t state;
	uint8_t recovered;
	uint8_t has_pid;         /* recovery on: a session id follows the auth (sio__pid) */
	uint64_t recover_offset; /* replay the history after this offset */
	char id[SIO_ID_LEN + 1];
	/*
	 * Allocated with the struct: the auth (auth_len + 1 bytes), then, with
	 * recovery on, the recovery session id (SIO_ID_LEN + 1 bytes, sio__pid).
	 */
	char auth_buf[];
};

/** The socket's recovery session id (SIO_ID_LEN + 1 bytes), NULL when recovery is off. */
static inline char *sio__pid(sio_socket *s)
{
	return s->has_pid ? s->auth_buf + s->auth_len + 1 : NULL;
}

struct sio_client {
	sio_server *srv;
	eio_socket *eio;
	base_list link;    /* in srv->clients */
	base_list sockets; /* sio_socket.client_link */
	base_timeq_entry connect_timer;
	sio_decoder dec; /* the parser's state between messages */
	/* handshake: headers and query point into headers[] (below) */
	base_slice query;
	uint64_t time_ms;
	sio_bucket connects; /* its CONNECT packets (srv->connect_limit) */
	uint32_t n_headers;
	int refs;
	uint8_t closed;
	/*
	 * Allocated with the struct: the n_headers kept, then their names and
	 * values, the query and the NUL-terminated address right after it
	 * (sio__client_address), as long as they are.
	 */
	http_header headers[];
};

static inline const char *sio__client_address(const sio_client *c)
{
	return c->query.base + c->query.len;
}

struct sio_server {
	sio_options opts;
	const sio_parser_ops *parser; /* chosen once, from opts.parser */
	eio_server *eio;
	http_server *http;
	base_list namespaces;
	base_list clients;
	sio_dyn *dyns;
	size_t n_dyns;
	base_timeq connect_q;
	uv_loop_t *loop;
	sio_limit connect_limit; /* namespace CONNECTs per client: the options' event limit */
	uint64_t events_dropped;
	uint64_t flood_closes;
	int closing;
	sio_stats stats;
	sio_admin *admin; /* the admin UI's instrumentation (admin_ui.c), or NULL */
};

/* server.c */
void sio__client_unref(sio_client *c);
/**
 * Counts one packet against bucket b (limit l) of client c: 1 when it may go
 * on; 0 when it is dropped, and then c may have been flagged for closing
 * as a flooder (logged, what says which limit).
 */
int sio__rate_ok(sio_client *c, sio_bucket *b, const sio_limit *l, const char *what);
/**
 * Encodes p with the server's parser and queues it on client c. Returns 0,
 * SIO_ENOT_CONNECTED (c is NULL or closed), or an encode or send error.
 */
int sio__client_send(sio_client *c, const sio_out *p);

/* namespace.c */
sio_namespace *sio__namespace_for_connect(sio_server *srv, base_slice name);
void sio__namespace_free(sio_namespace *nsp);
/** Handles CONNECT: creates the socket, runs middlewares, then connects. */
void sio__socket_connect(sio_client *c, sio_namespace *nsp, base_slice auth);
/** Dispatches an incoming EVENT to the catch-alls and handlers. */
void sio__dispatch_event(sio_socket *s, const sio_event *ev);
/** Disconnects with a reason (does not send anything to the client). */
void sio__socket_closed(sio_socket *s, const char *reason);
void sio__socket_unref(sio_socket *s);
sio_socket *sio__client_socket(sio_client *c, base_slice nsp);

/* emit.c */
void sio__ack_received(sio_socket *s, int64_t id, base_slice args, const base_slice *atts,
                       size_t n_atts);
/** Calls every pending ack with timed_out = 1 and frees them. */
void sio__acks_cancel(sio_socket *s);
void sio__notify_outgoing(sio_socket *s, const char *event, base_slice args, const base_slice *atts,
                          size_t n_atts);

/* rooms.c */
void sio__leave_all(sio_socket *s);
void sio__rooms_free(sio_namespace *nsp);
sio_room *sio__room_find(sio_namespace *nsp, const char *name, size_t len);

/* broadcast.c */
/**
 * Calls fn for each connected socket b targets (picked first, each held by
 * a reference during the calls, as a broadcast does). Returns how many.
 */
size_t sio__bcast_each(const sio_bcast *b, void (*fn)(sio_socket *s, void *ud), void *ud);

/* cluster.c */
void sio__cluster_free(sio_namespace *nsp);

/* admin_ui.c: what the admin UI hears; called only when srv->admin is set */
void sio__admin_connected(sio_socket *s);
void sio__admin_disconnected(sio_socket *s, const char *reason);
/** The socket's transport changed (an upgrade): socket_updated. */
void sio__admin_updated(sio_socket *s);
void sio__admin_room(sio_socket *s, const char *room, size_t len, int joined);
void sio__admin_event(sio_socket *s, int outgoing, base_slice name, base_slice args);
void sio__admin_free(sio_server *srv);
/*
 * socket.data as fetchSockets describes it to the other nodes while the
 * admin UI runs in development mode: with "_admin": {clientId, transport}
 * first, as Node's instrument() sets it. Appends it to out and returns 1, or
 * returns 0 (production mode, or data that is not an object: as it is).
 */
int sio__admin_data(const sio_socket *s, base_buf *out);

/* recovery.c */
/** Takes the next recovery offset of nsp, as decimal text in off. */
uint64_t sio__history_next(sio_namespace *nsp, char off[24]);
/** Keeps a broadcast event (its args ending with the offset) for recovery. */
int sio__history_store(sio_namespace *nsp, const sio_bcast *b, uint64_t offset, const sio_out *p);
/** Keeps a disconnected socket's session for recovery. */
void sio__session_save(sio_socket *s);
/**
 * Looks for a session matching the auth's pid and offset; on success fills
 * s->id, s->pid, rejoins its rooms, sets recovered, and returns 1.
 */
int sio__session_restore(sio_socket *s);
/** Sends the packets missed since the restored offset. */
void sio__session_replay(sio_socket *s);
void sio__recovery_free(sio_namespace *nsp);
/** Emits to one socket through the history (recovery on): the offset is appended. */
int sio__emit_recorded(sio_socket *s, const char *event, base_slice args, const base_slice *atts,
                       size_t n_atts);

#endif
