/*
 * socketio.h: a Socket.IO v5 server on the Engine.IO layer.
 *
 * The shape follows the Node.js server: a server holds namespaces; a client
 * (one Engine.IO connection) connects to namespaces, getting one socket per
 * namespace; sockets receive events, emit events, acknowledge and ask for
 * acknowledgements, and join rooms; broadcasts go to a namespace, to rooms,
 * except rooms.
 *
 * Arguments travel as JSON text: the elements of the event's array after
 * the event name, without the brackets (`1,{"a":2},"x"`). An incoming
 * event's arguments are the bytes that came, so an echo costs no parsing or
 * re-encoding. Binary arguments are attachments: the JSON holds
 * {"_placeholder":true,"num":N} and attachment N is the bytes.
 *
 * Contracts (as libuv and h2o state theirs):
 *
 * Threads and time. Everything runs on the loop of the HTTP server; no
 * function may be called from another thread. Callbacks run on the loop,
 * never from inside the call that registered them: events, acks and
 * CONNECTs as their packets are read; ack timeouts and the connect timeout
 * from timers; on_disconnect when the socket leaves its namespace, which
 * may be inside sio_disconnect, sio_disconnect_all, sio_bcast_disconnect
 * or sio_server_close_all called by the application (and then before that
 * call returns). Outgoing listeners (sio_on_any_outgoing) run inside the
 * emit or broadcast, before the packet is queued.
 *
 * Ownership. The server owns namespaces, sockets and clients; the
 * application owns none of them and frees none. A sio_socket pointer is
 * valid from on_connection (or from the middleware that received it) until
 * on_disconnect returns; a socket still in its middlewares stays valid,
 * even if its client went away, until sio_next or sio_refuse is called for
 * it. Keep one past that only as an id (sio_socket_id) to look up again.
 * A sio_namespace lives as long as the server. Pointers and slices handed
 * to callbacks (sio_event, its name, args and attachments, ack arguments,
 * the reason) are valid only during the call: copy what must outlive it.
 * Strings passed in (event names, room names, JSON args, attachments) are
 * copied before the call returns or encoded at once, except the room names
 * of a sio_bcast, which must outlive the calls that use it.
 *
 * What is safe inside a callback. Any callback may emit, ack, broadcast,
 * join and leave rooms, and disconnect or close any socket, its own
 * included (sio_disconnect, sio_disconnect_all, sio_bcast_disconnect): the
 * socket stays valid until its callback returns (calls on a disconnected
 * socket return SIO_ENOT_CONNECTED or do nothing), the Engine.IO connection
 * is torn down at the end of the loop turn, never inside the call, and a
 * broadcast's receivers are fixed before the first listener runs, so a
 * listener cannot change or free what it walks. Not safe inside a
 * callback: sio_server_free (call it after http_server_close completed),
 * and adding or removing namespaces from sio_server_each_namespace's fn.
 *
 * Errors: functions return 0 (or a count) or a negative code: BASE_*,
 * SIO_E* (both in base/errors.h, each layer in a range of its own) or a
 * lower layer's; base_strerror names any of them. Out of memory aborts
 * (base.h), so no call fails half done.
 */
#ifndef SOCKETIO_H
#define SOCKETIO_H

#include "engineio.h"
#include "packet.h"

typedef struct sio_server sio_server;
typedef struct sio_namespace sio_namespace;
typedef struct sio_socket sio_socket;

typedef enum {
#define SIO_ERR_ENUM(name, val, msg) SIO_E##name = (val),
	SIO_ERRNO_MAP(SIO_ERR_ENUM)
#undef SIO_ERR_ENUM
} sio_errno;

/* SIO_ERRNO_MAP is in base/errors.h, with every layer's codes; base_strerror
 * describes them. */

/* ---- server ------------------------------------------------------------ */

/*
 * The wire format of every client of a server, chosen once when it is
 * created (socket.io's `parser` option): the default parser (text packets,
 * binary attachments as separate messages) or socket.io-msgpack-parser (one
 * binary message per packet). The API is the same for both: arguments are
 * JSON text with placeholders, attachments beside them.
 */
typedef enum { SIO_PARSER_JSON = 0, SIO_PARSER_MSGPACK = 1 } sio_parser;

typedef struct {
	eio_options eio;             /* path defaults to "/socket.io/" */
	unsigned connect_timeout_ms; /* an Engine.IO session must join a namespace within (45000) */
	sio_parser parser;           /* SIO_PARSER_JSON (default) or socket.io-msgpack-parser */
	/*
	 * Connection state recovery (socket.io 4.6+): 0 disables it (default).
	 * Otherwise a client that lost its connection may come back within this
	 * many ms with its pid and last offset and get its id, rooms and the
	 * packets it missed.
	 */
	unsigned recovery_ms;
	int recovery_skip_middlewares; /* 1 (default): a recovered socket skips middlewares */
	size_t max_pending_binary; /* bytes of attachments awaited for one packet (max_payload) */
	/*
	 * Event rate limit, a token bucket per socket (one client in one
	 * namespace; sio_namespace_event_limit sets it per namespace): each
	 * EVENT and BINARY_EVENT costs one token; the bucket holds event_burst
	 * tokens and refills at event_rate per second. An event that finds it
	 * empty is dropped (no handler runs, no ack is sent) and counted
	 * (sio_server_events_dropped). A socket that has dropped
	 * event_drop_limit events without once letting its bucket fill up again
	 * has its whole connection closed, with a warning in the log ("event
	 * flood"). The same limits, per connection, apply to its namespace
	 * CONNECT packets. event_rate 0 (the default) turns the limit off: the
	 * library does not throttle; spaces-server turns it on.
	 */
	unsigned event_rate;       /* events per second (0: no limit) */
	unsigned event_burst;      /* bucket size (0: event_rate) */
	unsigned event_drop_limit; /* drops before the close (0: never closed) */
} sio_options;

void sio_options_default(sio_options *o);

/** Creates a server on http (the namespace "/" exists from the start). NULL on ENOMEM. */
sio_server *sio_server_new(http_server *http, const sio_options *opts);
/** Disconnects every socket ("server shutting down") and closes every session. */
void sio_server_close_all(sio_server *srv);
/** Frees the server. Call after http_server_close completed. */
void sio_server_free(sio_server *srv);
eio_server *sio_server_engine(const sio_server *srv);
/** The loop everything runs on. */
uv_loop_t *sio_server_loop(const sio_server *srv);
/** Number of Engine.IO sessions (clients). */
size_t sio_server_clients(const sio_server *srv);
/** Packets dropped by the event rate limits since the start; connections they closed. */
uint64_t sio_server_events_dropped(const sio_server *srv);
uint64_t sio_server_flood_closes(const sio_server *srv);

/* Counters since the server was created (plain integers: one loop). */
typedef struct {
	uint64_t events_in;  /* EVENT and BINARY_EVENT packets received */
	uint64_t broadcasts; /* broadcasts sent from this node or delivered from another */
	uint64_t deliveries; /* sockets a broadcast was sent to */
} sio_stats;

void sio_server_get_stats(const sio_server *srv, sio_stats *st);
/**
 * Calls fn once per namespace with its name and connected sockets (for
 * metrics; fn must not add or remove namespaces).
 */
void sio_server_each_namespace(const sio_server *srv,
                               void (*fn)(const char *name, size_t sockets, void *ud), void *ud);

/* ---- namespaces -------------------------------------------------------- */

/** The namespace called name ("/", "/chat"), created when it does not exist yet. */
sio_namespace *sio_of(sio_server *srv, const char *name);
/** The namespace called name if it exists (static or already created dynamically), else NULL. */
sio_namespace *sio_find(sio_server *srv, const char *name, size_t len);
const char *sio_namespace_name(const sio_namespace *nsp);
sio_server *sio_namespace_server(const sio_namespace *nsp);
/** Number of connected sockets. */
size_t sio_namespace_size(const sio_namespace *nsp);
/**
 * The event rate limit of the namespace's sockets (see sio_options.event_rate,
 * whose values every namespace starts with); rate 0 turns it off. Sockets
 * already connected keep their bucket's content and follow the new values.
 */
void sio_namespace_event_limit(sio_namespace *nsp, unsigned rate, unsigned burst,
                               unsigned drop_limit);

/**
 * Dynamic namespaces: a CONNECT to an unknown namespace whose name matches
 * pattern (fnmatch(3) syntax, e.g. "/dyn-*"), or for which match returns 1
 * when pattern is NULL, creates it; setup(nsp, ud) then registers its
 * handlers before the socket connects. Returns 0 or BASE_ENOMEM.
 */
int sio_dynamic(sio_server *srv, const char *pattern, int (*match)(const char *name, void *ud),
                void (*setup)(sio_namespace *nsp, void *ud), void *ud);

/* ---- events ------------------------------------------------------------ */

typedef struct {
	sio_socket *socket;
	base_slice name; /* unescaped event name */
	base_slice args; /* JSON text of the arguments after the name, no brackets; may be empty */
	const base_slice *attachments;
	size_t n_attachments;
	int64_t ack_id; /* >= 0 when the client waits for an acknowledgement */
} sio_event;

typedef void (*sio_event_fn)(const sio_event *ev, void *ud);
typedef void (*sio_socket_fn)(sio_socket *s, void *ud);
typedef void (*sio_disconnect_fn)(sio_socket *s, const char *reason, void *ud);

/**
 * Calls fn for every incoming event called name on sockets of nsp, in the
 * order registered, after the catch-alls, while the socket stays connected
 * (a handler that disconnects it stops the rest). name is copied.
 * 0 or BASE_ENOMEM. Register before clients connect.
 */
int sio_on(sio_namespace *nsp, const char *name, sio_event_fn fn, void *ud);
/** Catch-all: fn sees every incoming event, before the named handlers. */
int sio_on_any(sio_namespace *nsp, sio_event_fn fn, void *ud);
/** Catch-all for outgoing events emitted to one socket (including broadcasts). */
int sio_on_any_outgoing(sio_namespace *nsp, sio_event_fn fn, void *ud);
/**
 * A socket connected (after the middlewares; the CONNECT reply, and with
 * recovery the missed packets, are queued). One callback per namespace.
 */
void sio_on_connection(sio_namespace *nsp, sio_socket_fn fn, void *ud);
/**
 * A socket disconnected; reason as in Node ("client namespace disconnect",
 * "server namespace disconnect", "transport close", "ping timeout", ...).
 * Runs once, before the socket leaves its rooms and after its pending acks
 * were called with timed_out = 1; the socket is no longer connected.
 */
void sio_on_disconnect(sio_namespace *nsp, sio_disconnect_fn fn, void *ud);

/*
 * Middlewares run in order for each CONNECT. A middleware must eventually
 * call sio_next (allow, go on) or sio_refuse (answer CONNECT_ERROR), now or
 * later (e.g. after a database lookup). If the client goes away meanwhile,
 * the call is still required and is harmless.
 */
typedef void (*sio_middleware_fn)(sio_socket *s, void *ud);
int sio_use(sio_namespace *nsp, sio_middleware_fn fn, void *ud);
void sio_next(sio_socket *s);
/** Refuses the connection: CONNECT_ERROR {"message": message, "data": data_json (if not NULL)}. */
void sio_refuse(sio_socket *s, const char *message, const char *data_json);

/* ---- sockets ----------------------------------------------------------- */

/** The socket's id (also the name of its own room). */
const char *sio_socket_id(const sio_socket *s);
sio_namespace *sio_socket_namespace(const sio_socket *s);
/** 1 when the socket is connected. */
int sio_socket_connected(const sio_socket *s);
/** 1 until the socket is disconnected (also while its middlewares run). */
int sio_socket_alive(const sio_socket *s);
/** 1 when this socket was restored by connection state recovery. */
int sio_socket_recovered(const sio_socket *s);
eio_socket *sio_socket_engine(const sio_socket *s);
void sio_socket_set_data(sio_socket *s, void *ud);
void *sio_socket_data(const sio_socket *s);

/* Handshake data: what the client's first request said. */
/**
 * A request header of the handshake (case-insensitive name), or NULL. The
 * headers that only served the WebSocket handshake (Upgrade, Connection,
 * Sec-WebSocket-*) are not kept.
 */
const base_slice *sio_handshake_header(const sio_socket *s, const char *name);
/** The raw query string of the handshake request (without '?'). */
base_slice sio_handshake_query(const sio_socket *s);
/** The CONNECT packet's auth object as JSON text ("{}" when none). */
base_slice sio_handshake_auth(const sio_socket *s);
const char *sio_handshake_address(const sio_socket *s);
/** When the Engine.IO session was opened (ms since the Unix epoch). */
uint64_t sio_handshake_time(const sio_socket *s);

/**
 * Emits an event to one socket. args: JSON text of the arguments (no
 * brackets), may be empty. Attachments are referenced from args by
 * placeholders. Everything is encoded (copied) before the call returns.
 * The default parser sends args as given; the msgpack parser has to read
 * them, and returns SIO_EBAD_ARGS when they are not JSON. Returns 0,
 * SIO_ENOT_CONNECTED, SIO_ETOO_MANY_ATTACHMENTS (more than
 * SIO_MAX_ATTACHMENTS), SIO_EBAD_ARGS, or a lower layer's error (a full
 * output queue closes the connection, see eio_socket_close).
 */
int sio_emit(sio_socket *s, const char *event, base_slice args, const base_slice *attachments,
             size_t n_attachments);
/** sio_emit with NUL-terminated JSON args and no attachments. */
int sio_emit_str(sio_socket *s, const char *event, const char *args_json);

/**
 * Called exactly once with the client's acknowledgement, or with
 * timed_out = 1 (and empty args) when none came within the timeout or the
 * socket disconnected first (then from inside the disconnect, before
 * on_disconnect). The socket is valid during the call.
 */
typedef void (*sio_ack_fn)(sio_socket *s, int timed_out, base_slice args,
                           const base_slice *attachments, size_t n_attachments, void *ud);
/**
 * Emits an event that asks for an acknowledgement within timeout_ms (0: no
 * timeout: cb runs when the ack comes or the socket disconnects). On an
 * error return cb is never called.
 */
int sio_emit_ack(sio_socket *s, const char *event, base_slice args, const base_slice *attachments,
                 size_t n_attachments, unsigned timeout_ms, sio_ack_fn cb, void *ud);
/**
 * Answers an incoming event's acknowledgement (ev->ack_id >= 0) with args.
 * May be called later than the event handler: pass the socket and ack id.
 */
int sio_ack(sio_socket *s, int64_t ack_id, base_slice args, const base_slice *attachments,
            size_t n_attachments);

/**
 * Disconnects the socket from its namespace ("server namespace disconnect"):
 * DISCONNECT is queued, on_disconnect runs before this returns. The
 * connection and its other namespaces stay. Harmless on a socket already
 * disconnected (or still in its middlewares: refuse it instead).
 */
void sio_disconnect(sio_socket *s);
/**
 * Closes the whole Engine.IO connection with every namespace on it: each
 * namespace socket hears DISCONNECT and its on_disconnect runs before this
 * returns; the connection itself closes at the end of the loop turn.
 */
void sio_disconnect_all(sio_socket *s);

/* ---- rooms and broadcast ----------------------------------------------- */

/**
 * Joins a room (name copied). 0, SIO_ENOT_CONNECTED, or BASE_ENOMEM.
 * Joining twice is harmless. A socket leaves every room when it
 * disconnects; an empty room is freed.
 */
int sio_join(sio_socket *s, const char *room);
void sio_leave(sio_socket *s, const char *room);
/** 1 when the socket is in the room. */
int sio_in_room(const sio_socket *s, const char *room);

#define SIO_BCAST_MAX_ROOMS 16

/*
 * A broadcast, built on the stack:
 *   sio_bcast b; sio_bcast_init(&b, nsp); sio_bcast_to(&b, "room");
 *   sio_bcast_except(&b, sio_socket_id(sender)); sio_bcast_emit(&b, "ev", args, NULL, 0);
 * No room: every socket of the namespace. Room names must outlive the call.
 */
typedef struct {
	sio_namespace *nsp;
	const char *rooms[SIO_BCAST_MAX_ROOMS];
	const char *except[SIO_BCAST_MAX_ROOMS];
	unsigned n_rooms, n_except;
	int is_volatile; /* skip sockets that cannot take it now */
	int local;       /* do not forward to other nodes through the adapter */
} sio_bcast;

void sio_bcast_init(sio_bcast *b, sio_namespace *nsp);
/** Adds a target room; returns BASE_ELIMIT past SIO_BCAST_MAX_ROOMS. */
int sio_bcast_to(sio_bcast *b, const char *room);
int sio_bcast_except(sio_bcast *b, const char *room);
/**
 * Encodes the event once, with the server's parser, and queues the same
 * bytes (one shared chunk per message) for every receiver. The receivers
 * are picked before the first outgoing listener runs. Unless b->local, the
 * adapter's on_broadcast is then called once. With recovery on (and not
 * volatile) the event gets an offset and is kept. Returns the number of
 * local receivers, or a negative error (as sio_emit).
 */
int sio_bcast_emit(const sio_bcast *b, const char *event, base_slice args,
                   const base_slice *attachments, size_t n_attachments);

/*
 * The sockets a broadcast would reach (b's rooms, minus its except rooms)
 * join a room, leave it, or are disconnected, as io.in(...).socketsJoin(),
 * socketsLeave() and disconnectSockets() do in Node: here, and, unless
 * b->local, on the other nodes through the adapter. Return the number of
 * local sockets, or a negative error.
 */
int sio_bcast_join(const sio_bcast *b, const char *room);
int sio_bcast_leave(const sio_bcast *b, const char *room);
/** close: their whole connection goes (every namespace), not just this namespace. */
int sio_bcast_disconnect(const sio_bcast *b, int close);

/* ---- across nodes: fetchSockets, serverSideEmit, broadcasts with acks --- */

/*
 * These work on this node alone, or across every node of a cluster when
 * the namespace has an adapter that implements them (spaces/cluster.h: the
 * @socket.io/postgres-adapter protocol, shared with Node.js servers).
 */

/** One JSON value with the binary attachments its placeholders refer to. */
typedef struct {
	base_slice json;
	const base_slice *attachments;
	size_t n_attachments;
} sio_value;

/** A socket as fetchSockets describes it (Node's RemoteSocket). */
typedef struct {
	const char *id;       /* NUL-terminated */
	base_slice handshake; /* JSON object: headers, time, address, xdomain, secure, issued,
	                         url, query, auth (as Node's socket.handshake) */
	base_slice rooms;     /* JSON array of the rooms it is in (its own id among them) */
	base_slice data;      /* JSON value: sio_socket_set_data_json, {} by default */
	sio_socket *socket; /* the socket when it is on this node and still connected, else NULL */
} sio_socket_desc;

/**
 * socket.data as Node has it: any JSON value (copied), which fetchSockets
 * reports on every node. 0, BASE_EINVAL (not valid JSON) or BASE_ENOMEM.
 */
int sio_socket_set_data_json(sio_socket *s, base_slice json);

/**
 * Called once with every socket found (pointers valid during the call);
 * err is 0, or SIO_ETIMEDOUT when some node did not answer in time (the
 * sockets of those that did are there).
 */
typedef void (*sio_fetch_fn)(int err, const sio_socket_desc *sockets, size_t n, void *ud);
/**
 * fetchSockets: the sockets b targets (rooms, except) on this node and the
 * others, waiting at most timeout_ms (0: 5000) for the other nodes. cb runs
 * before this returns when only this node is asked (b->local, no adapter,
 * or no other node known). Returns 0 or BASE_ENOMEM (cb not called).
 */
int sio_fetch_sockets(const sio_bcast *b, unsigned timeout_ms, sio_fetch_fn cb, void *ud);

/**
 * Called once with the answers collected (pointers valid during the call);
 * err 0, or SIO_ETIMEDOUT when some did not answer in time.
 */
typedef void (*sio_replies_fn)(int err, const sio_value *replies, size_t n, void *ud);
/**
 * A broadcast that asks every receiver for an acknowledgement (Node's
 * io.timeout(t).emit(ev, ..., cb)): cb gets one reply per client that
 * answered, on every node (each the first argument of the client's ack),
 * once all answered or after timeout_ms (required, > 0). Returns 0,
 * BASE_EINVAL or BASE_ENOMEM (cb not called).
 */
int sio_bcast_emit_ack(const sio_bcast *b, const char *event, base_slice args,
                       const base_slice *attachments, size_t n_attachments, unsigned timeout_ms,
                       sio_replies_fn cb, void *ud);

/**
 * serverSideEmit: the event goes to the other nodes' handlers
 * (sio_on_server_side_emit), not to this node's. With cb, one reply per
 * other node is collected (timeout_ms, 0: 5000); cb runs before this
 * returns when there is no other node. Returns 0 or BASE_ENOMEM.
 */
int sio_server_side_emit(sio_namespace *nsp, const char *event, base_slice args,
                         const base_slice *attachments, size_t n_attachments, unsigned timeout_ms,
                         sio_replies_fn cb, void *ud);

typedef struct sio_server_ack sio_server_ack;

/** A serverSideEmit from another node. */
typedef struct {
	sio_namespace *nsp;
	base_slice name; /* unescaped */
	base_slice args; /* JSON text of the arguments after the name, no brackets; may be empty */
	const base_slice *attachments;
	size_t n_attachments;
	sio_server_ack *ack; /* not NULL when the sender waits for an answer */
} sio_server_event;

typedef void (*sio_server_event_fn)(const sio_server_event *ev, void *ud);
/**
 * Handles the other nodes' serverSideEmit of name (NULL: every name without
 * a handler of its own). One handler per name; a second replaces the first.
 * 0 or BASE_ENOMEM.
 */
int sio_on_server_side_emit(sio_namespace *nsp, const char *name, sio_server_event_fn fn, void *ud);
/**
 * Answers a serverSideEmit that waits for one (ev->ack), now or later, and
 * exactly once: value is one JSON value (empty: null). sio_server_ack_drop
 * gives no answer (the sender's wait runs out).
 */
void sio_server_ack_send(sio_server_ack *ack, base_slice value, const base_slice *attachments,
                         size_t n_attachments);
void sio_server_ack_drop(sio_server_ack *ack);

/* ---- adapter: other nodes ---------------------------------------------- */

/*
 * An adapter carries broadcasts between server processes. What travels is
 * an event's data, as the Node adapters carry a packet's "data": the JSON
 * array of the event name and its arguments (["news","hi",2]), binary
 * values as placeholders with the attachments beside it. No wire format of
 * a parser is involved: each node encodes for its own clients.
 *
 * on_broadcast is called after every broadcast that is not local (once,
 * after the local sockets have been sent to), with that data, to send to
 * the other nodes; what the other nodes send is fed back with
 * sio_adapter_deliver. The slices are valid during the call only.
 */
typedef enum {
	SIO_SOCKETS_JOIN = 1,
	SIO_SOCKETS_LEAVE,
	SIO_SOCKETS_DISCONNECT, /* this namespace only */
	SIO_SOCKETS_CLOSE,      /* the whole connection */
} sio_sockets_op;

typedef struct sio_remote sio_remote;

typedef struct {
	void (*on_broadcast)(sio_namespace *nsp, const sio_bcast *b, base_slice data,
	                     const base_slice *attachments, size_t n_attachments, void *ud);
	void *ud;
	/* sio_bcast_join / leave / disconnect to pass on (room: NULL for disconnects); may be NULL. */
	void (*on_sockets)(sio_namespace *nsp, const sio_bcast *b, sio_sockets_op op,
	                   const char *room, void *ud);
	/*
	 * Requests to the other nodes (each may be NULL: then only this node
	 * answers). The adapter adds what the nodes it knows answer within
	 * timeout_ms (sio_remote_add_sockets for fetch, sio_remote_add_replies
	 * for the others) and finishes each req exactly once, now or later, with
	 * sio_remote_done: err 0, or SIO_ETIMEDOUT when some did not answer.
	 *
	 * fetch: sio_fetch_sockets; the sockets b targets on the other nodes.
	 * server_emit: sio_server_side_emit; packet is the JSON array [event,
	 * ...args]; req is NULL when no answer is wanted (nothing to finish),
	 * else one reply per node is collected.
	 * bcast_ack: sio_bcast_emit_ack; packet as above; one reply per client
	 * of the other nodes.
	 */
	void (*fetch)(sio_namespace *nsp, const sio_bcast *b, unsigned timeout_ms, sio_remote *req,
	              void *ud);
	void (*server_emit)(sio_namespace *nsp, base_slice packet, const base_slice *attachments,
	                    size_t n_attachments, unsigned timeout_ms, sio_remote *req, void *ud);
	void (*bcast_ack)(sio_namespace *nsp, const sio_bcast *b, base_slice packet,
	                  const base_slice *attachments, size_t n_attachments, unsigned timeout_ms,
	                  sio_remote *req, void *ud);
} sio_adapter;

void sio_set_adapter(sio_namespace *nsp, const sio_adapter *adapter);
/**
 * Delivers a broadcast from another node to the local sockets of b->nsp
 * only (rooms, except and volatile as in b; b->local is not looked at: it
 * goes to no adapter). data is the event's JSON array as on_broadcast gives
 * it, checked as an incoming event is (a name first, not a reserved one;
 * placeholders naming attachments). It is encoded once by this server's
 * parser, as a broadcast of its own. The outgoing listeners do not hear it.
 * Returns the number of receivers, SIO_EBAD_ARGS, or another negative error.
 */
int sio_adapter_deliver(const sio_bcast *b, base_slice data, const base_slice *attachments,
                        size_t n_attachments);
/** Applies another node's join / leave / disconnect to the local sockets of b->nsp only. */
int sio_adapter_sockets(const sio_bcast *b, sio_sockets_op op, const char *room);

/** Adds other nodes' sockets to an adapter's fetch (copied; the socket fields ignored). */
void sio_remote_add_sockets(sio_remote *req, const sio_socket_desc *sockets, size_t n);
/** Adds replies to an adapter's server_emit or bcast_ack (copied). */
void sio_remote_add_replies(sio_remote *req, const sio_value *replies, size_t n);
/** Finishes req (then it is gone): err 0, SIO_ETIMEDOUT, or another error. */
void sio_remote_done(sio_remote *req, int err);

/**
 * Another node's serverSideEmit: packet is the JSON array [event, ...args].
 * Runs the handler nsp has for the event (sio_on_server_side_emit). When
 * reply is not NULL the sender waits for an answer: reply(rctx, v) is
 * called exactly once, with the handler's answer, or with v NULL when there
 * is no handler or it gave none. Returns 0 or SIO_EBAD_ARGS.
 */
int sio_adapter_server_event(sio_namespace *nsp, base_slice packet, const base_slice *attachments,
                             size_t n_attachments, void (*reply)(void *rctx, const sio_value *v),
                             void *rctx);
/**
 * Another node's broadcast with acknowledgements: emits packet (the JSON
 * array [event, ...args]) to the local sockets b targets (b->local should
 * be set), each asked for an acknowledgement within timeout_ms. count(rctx,
 * n) runs once before this returns with the number of sockets asked; then
 * ack(rctx, v) once per answer (v: the first argument of the client's ack),
 * and ack(rctx, NULL) once when every socket answered or timed out. Returns
 * 0, or SIO_EBAD_ARGS (and then neither callback runs).
 */
int sio_adapter_bcast_ack(const sio_bcast *b, base_slice packet, const base_slice *attachments,
                          size_t n_attachments, unsigned timeout_ms,
                          void (*count)(void *rctx, size_t n),
                          void (*ack)(void *rctx, const sio_value *v), void *rctx);

/* ---- the admin UI (@socket.io/admin-ui) --------------------------------- */

/*
 * The server side of the @socket.io/admin-ui dashboard, as instrument() in
 * Node: a namespace (opts.nsp) where a logged-in dashboard gets "config",
 * "server_stats" every stats_interval_ms, and unless production, every
 * socket ("all_sockets" on login) and each socket connected, updated,
 * disconnected, room joined or left, event received or sent; and where it
 * may, unless readonly, make sockets emit, join, leave and disconnect.
 * The dashboard logs in with a user name and a password checked against
 * password_hash: bcrypt ("$2a$", "$2b$", "$2y$", as Node's admin UI takes)
 * or argon2id ("$argon2id$", libsodium's crypto_pwhash_str), on the thread
 * pool; a login gives a session id (24 h, the last 128 kept) that the
 * dashboard may reconnect with. When opts.nsp has an adapter (a cluster:
 * attach it as the other namespaces), every node is shown: "all_sockets"
 * is gathered from every node (fetchSockets), and the nodes' messages go
 * through the adapter while a dashboard is logged in on some node; give
 * each node its own server_id.
 */
typedef struct {
	const char *nsp;            /* "/admin" */
	const char *username;       /* required unless no_auth */
	const char *password_hash;  /* bcrypt or argon2id; required unless no_auth */
	int no_auth;                /* 1: anyone may connect (Node's auth: false); 0 */
	int readonly;               /* 1: no commands (emit, join, leave, _disconnect); 0 */
	int production;             /* 1: Node's mode "production": only server_stats; 0 */
	const char *server_id;      /* NULL: the host name (one per node in a cluster) */
	unsigned stats_interval_ms; /* 2000; whole seconds */
	size_t max_sockets_listed;  /* sockets in "all_sockets" at most (10000) */
} sio_admin_options;

void sio_admin_options_default(sio_admin_options *o);
/** 1 when hash is a bcrypt or argon2id hash that sio_admin_ui_attach takes, else 0. */
int sio_admin_hash_valid(const char *hash);
/**
 * Instruments srv for the admin UI (once; strings are copied). Returns 0,
 * BASE_EINVAL (no name or hash, a hash of another kind, or already
 * attached) or BASE_ENOMEM. It lives until sio_server_free.
 */
int sio_admin_ui_attach(sio_server *srv, const sio_admin_options *opts);

#endif
