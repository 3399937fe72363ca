/*
 * engineio_internal.h: what the files of the Engine.IO layer share.
 */
#ifndef ENGINEIO_INTERNAL_H
#define ENGINEIO_INTERNAL_H

#include "engineio.h"
#include "base/table.h"
#include "base/timeq.h"

#define EIO_SID_BYTES 15 /* 20 base64url characters, as the reference server */
#define EIO_SID_LEN 20

typedef enum {
	EIO_S_OPEN = 0,
	/* Closed for the layer above; a polling client may still collect the close packet. */
	EIO_S_CLOSING,
	EIO_S_CLOSED,
} eio_state;

typedef enum {
	EIO_UP_NONE = 0,
	EIO_UP_PROBING, /* WebSocket opened for the sid, waiting for "2probe" then "5" */
	EIO_UP_PROBED,  /* "3probe" sent, waiting for "5" */
	EIO_UP_DONE,
} eio_upgrade_state;

/*
 * A message is a base_chunk (one allocation, its refcount is the
 * message's): [WebSocket frame header][packet: type digit and data, or the
 * raw bytes of a binary message]. The chunk's flags hold whether it is
 * binary (bit 0) and the header's length (bits 8..15). The WebSocket
 * transport writes the chunk as it is; the polling transport reads the
 * packet after the header and encodes it into a payload (binary as 'b' and
 * base64) when a GET takes it.
 */
static inline base_chunk *eio__msg_chunk(eio_msg *m)
{
	return (base_chunk *)(void *)m;
}
static inline int eio__msg_binary(const eio_msg *m)
{
	return (int)(((const base_chunk *)(const void *)m)->flags & 1u);
}
/** The packet inside m: type digit and data (text), or the raw bytes (binary). */
static inline base_slice eio__msg_packet(const eio_msg *m)
{
	const base_chunk *c = (const base_chunk *)(const void *)m;
	size_t h = (c->flags >> 8) & 0xffu;
	return (base_slice){c->data + h, c->len - h};
}
/**
 * Builds a message for packet type with data made of parts (copied once);
 * binary: raw bytes (type must be EIO_MESSAGE). refs = 1. Never NULL.
 */
eio_msg *eio__msg_new(eio_packet_type type, int binary, const base_slice *parts, size_t n_parts);

/*
 * The outgoing queue of a session: messages in order, each holding one
 * reference. Transport-neutral: the polling transport drains it into the
 * answer of a GET (at most polling_max_packets at a time); the WebSocket
 * transport drains it entirely into its connection's write queue, sharing
 * the chunks. An upgrade hands the queue from one to the other as it is.
 */
typedef struct {
	eio_msg **slot; /* ring of cap entries (a power of two), NULL when cap is 0 */
	uint32_t head;  /* index of the oldest */
	uint32_t len;
	uint32_t cap;
	size_t bytes; /* packet bytes queued (eio__msg_packet lengths) */
} eio_queue;

/** Appends m, taking a new reference. */
void eio__queue_push(eio_queue *q, eio_msg *m);
/** The i-th oldest message (i < q->len); the queue keeps its reference. */
eio_msg *eio__queue_at(const eio_queue *q, size_t i);
/** Removes the oldest and returns it with the queue's reference (caller unrefs). NULL if empty. */
eio_msg *eio__queue_pop(eio_queue *q);
/** Unrefs every message and frees the ring. */
void eio__queue_clear(eio_queue *q);
/** Frees the ring if the queue is empty (an idle session keeps no memory). */
void eio__queue_trim(eio_queue *q);

/*
 * A transport: the one place that knows how packets reach the client. The
 * session (socket.c) only calls these; which transport it has is the
 * pointer s->t, swapped once by an upgrade.
 */
typedef struct eio_transport_ops {
	const char *name; /* "polling" or "websocket", as in the query string */
	unsigned index;   /* slot in eio_stats.opened / open: 0 polling, 1 websocket */
	/**
	 * Sends a message (parts copied) or queues it in s->q when the wire
	 * cannot take it now. Returns 0, BASE_ELIMIT or HTTP_EQUEUE_FULL (the
	 * session is then being closed), BASE_ENOMEM, BASE_ECLOSED.
	 */
	int (*send)(eio_socket *s, int binary, const base_slice *parts, size_t n);
	/** The same for a shared message: takes its own reference if it keeps it. */
	int (*send_msg)(eio_socket *s, eio_msg *m);
	/** Moves what it can of s->q to the wire. */
	void (*flush)(eio_socket *s);
	/** 1 when a message sent now leaves at once (eio_socket_writable). */
	int (*writable)(const eio_socket *s);
	/** Bytes accepted by the wire and not yet written (beyond s->q). */
	size_t (*buffered)(const eio_socket *s);
	/**
	 * The session closed for the layer above (on_close has run): says
	 * goodbye the transport's way and finalizes the socket, now or, for a
	 * polling client that should still collect its close packet, later.
	 */
	void (*closing)(eio_socket *s, eio_close_reason reason);
	/**
	 * Lets go of the transport's connection: closes it (detach 0, when the
	 * session is finalized), or forgets it at once (detach 1, at server
	 * shutdown: a waiting GET is answered 503, a WebSocket unhooked).
	 */
	void (*release)(eio_socket *s, int detach);
	/** 1 while a connection of the transport still points at s (not to be freed). */
	int (*attached)(const eio_socket *s);
} eio_transport_ops;

extern const eio_transport_ops eio__polling_ops;
extern const eio_transport_ops eio__websocket_ops;

struct eio_socket {
	eio_server *srv;
	base_table_link hlink;      /* in srv->sids, by sid */
	base_timeq_entry hb;        /* in ping_q (waiting to ping) or pong_q (waiting for pong) */
	base_timeq_entry up;        /* in upgrade_q while probing */
	const eio_transport_ops *t; /* the current transport */
	http_request *poll_req;     /* the pending long-polling GET */
	http_ws *ws;                /* the WebSocket transport, once it is the transport */
	http_ws *probe;             /* a WebSocket being probed for the upgrade */
	eio_queue q;                /* packets the transport has not taken yet */
	void *user;
	uint8_t state;         /* eio_state */
	uint8_t upgrade;       /* eio_upgrade_state */
	uint8_t in_callback;   /* >0 while a user callback runs */
	uint8_t close_pending; /* in srv->pending_close: closed at the end of the loop turn */
	uint8_t eio3;          /* protocol 3 (allow_eio3): v3 payloads and heartbeat */
	uint8_t eio3_b64;      /* protocol 3 with b64=1: binary as base64 text only */
	uint8_t reason;        /* eio_close_reason */
	uint8_t pending_reason;
	base_list close_link; /* in srv->pending_close while close_pending */
	char sid[EIO_SID_LEN + 1];
	char remote[]; /* the client's address, as long as it is: allocated with the struct */
};

typedef struct eio_rate_slot eio_rate_slot;

struct eio_server {
	http_server *http;
	eio_options opts;
	eio_callbacks cb;
	base_table sids;      /* the sessions by sid (hlink); sids.n counts them */
	base_timeq ping_q;    /* duration ping_interval */
	base_timeq pong_q;    /* duration ping_timeout */
	base_timeq upgrade_q; /* duration upgrade_timeout */
	base_timeq linger_q;  /* a closed polling socket waits here to hand over its close packet */
	base_timeq eio3_q;    /* duration ping_interval + ping_timeout: a v3 client's next ping */
	eio_rate_slot *rate;  /* handshake buckets per address (admission.c), NULL until used */
	size_t refused;       /* handshakes refused since the last log line */
	uint64_t refused_logged;
	/*
	 * Closes asked for inside a send or a callback (eio_socket_close, a full
	 * output queue) are finished here at the end of the loop turn: a check
	 * handle runs them, an idle handle keeps the loop from blocking first.
	 */
	base_list pending_close; /* eio_socket.close_link */
	uv_check_t close_check;
	uv_idle_t close_idle;
	int closing;            /* handles still closing in eio_server_free */
	char open_tail[2][160]; /* open packet JSON after the sid, by eio_transport_ops.index */
	eio_stats stats;
	eio_msg *ctl[EIO_NOOP + 1]; /* the data-less packets ("1", "2", "6"), shared by all */
	base_buf payload;           /* a polling answer being encoded, kept for the next one */
	void *zs[2];                /* z_stream for gzip and deflate answers, made on first use */
	base_buf zout;              /* their output, kept for the next answer */
};

/* server.c */
/** Frees the compressors of transport_polling.c. */
void eio__compress_free(eio_server *srv);
eio_socket *eio__find(eio_server *srv, const char *sid, size_t len);
void eio__unlink(eio_server *srv, eio_socket *s);
/** Answers an error the way the reference server does: 400/403 {"code","message"}. */
void eio__respond_error(eio_server *srv, http_request *req, eio_error_code code);
/** Appends the CORS headers for req (if enabled) to b. */
void eio__cors_headers(eio_server *srv, const http_request *req, base_buf *b);
/**
 * Starts a session: a new sid, the open packet queued, the heartbeat
 * armed, on_connection called. Returns NULL after answering 503 when out
 * of memory.
 */
eio_socket *eio__handshake(eio_server *srv, const eio_transport_ops *t, http_request *req);

/** Answers an error with a message of its own instead of the standard one. */
void eio__respond_error_msg(eio_server *srv, http_request *req, eio_error_code code,
                            const char *message);

/* admission.c */
/**
 * Whether a handshake may open a session (max_sessions, handshake_rate):
 * NULL when it may (a token is taken), else why not (logged, rate limited).
 */
const char *eio__admit(eio_server *srv, const http_request *req);
void eio__admission_free(eio_server *srv);

/* socket.c */
/** Handles one decoded packet from the client (any transport). */
void eio__on_packet(eio_socket *s, const eio_packet *p);
/** Closes for the layer above (on_close), then tears the transports down. */
void eio__socket_on_close(eio_socket *s, eio_close_reason reason);
/**
 * Flags s to be closed with reason at the end of the loop turn (redis's
 * close-asap): from then on it takes no packet and sends nothing, and the
 * layer above hears on_close from the loop, never from inside the call that
 * asked for the close. Does nothing when s is closed or already flagged.
 */
void eio__socket_close_soon(eio_socket *s, eio_close_reason reason);
/** Runs the closes flagged by eio__socket_close_soon (also at server shutdown). */
void eio__close_pending(eio_server *srv);
/** Forgets the sid and closes the WebSockets: later requests for it get "Session ID unknown". */
void eio__socket_finalize(eio_socket *s);
/**
 * Queues a data-less packet (ping, noop, close) of type on s, past any
 * output cap, and lets the transport flush it.
 */
void eio__socket_push_ctl(eio_socket *s, eio_packet_type type);
/**
 * Queues m in s->q unless that would pass opts.max_buffered, in which case
 * the session is closed at the end of the turn and BASE_ELIMIT returned.
 */
int eio__socket_enqueue(eio_socket *s, eio_msg *m);
/** Detaches every transport and frees s at once (server shutdown). */
void eio__socket_destroy(eio_socket *s);
/** Frees s if nothing refers to it any more. */
void eio__socket_maybe_free(eio_socket *s);
/** Starts the heartbeat (schedules the first ping). */
void eio__heartbeat_start(eio_socket *s);
void eio__ping_expired(base_timeq *q, base_timeq_entry *e);
void eio__pong_expired(base_timeq *q, base_timeq_entry *e);
void eio__linger_expired(base_timeq *q, base_timeq_entry *e);

/* eio3.c: Engine.IO protocol 3 (allow_eio3) */
/**
 * Encodes the first n messages of s->q into out as a v3 payload: text
 * ("<len>:<packet>", len in UTF-16 code units, binary as "b4" + base64)
 * unless a binary message is among them and the client takes binary, then
 * the binary payload format. Returns 1 for a binary payload, else 0.
 */
int eio3__encode_payload(const eio_socket *s, size_t n, base_buf *out);
/**
 * Sends binary message data over s->ws as v3 does: a binary frame with the
 * type byte 4 first, or for a b64 client a text frame "b4" + base64.
 */
int eio3__ws_send_binary(eio_socket *s, const base_slice *parts, size_t n);
/** A v3 text frame "b4" + base64 (a client forcing base64): a binary message. */
void eio3__ws_on_base64(eio_socket *s, const char *data, size_t len);
/** A v3 client's ping: answered with a pong, its timeout rearmed. */
void eio3__on_ping(eio_socket *s, const eio_packet *p);

/* transport_polling.c */
void eio__polling_get(eio_socket *s, http_request *req);
void eio__polling_post(eio_socket *s, http_request *req);

/* transport_websocket.c */
/** A WebSocket request without sid: a new session on the WebSocket transport. */
void eio__ws_handshake(eio_server *srv, http_request *req);
/** A WebSocket request for an existing polling sid: the upgrade probe. */
void eio__ws_upgrade(eio_socket *s, http_request *req);
void eio__upgrade_expired(base_timeq *q, base_timeq_entry *e);
/** The probe of an upgrade in progress, if any: closed (detach 0) or forgotten (detach 1). */
void eio__upgrade_release(eio_socket *s, int detach);

#endif
