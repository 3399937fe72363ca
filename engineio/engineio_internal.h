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
	EIO_T_POLLING = 0,
	EIO_T_WEBSOCKET = 1,
} eio_transport;

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

struct eio_msg {
	uint32_t refs;
	uint8_t binary;
	uint8_t frame_hdr_len; /* bytes of WebSocket header before the payload */
	base_chunk *chunk;     /* [WebSocket header][payload: "4..." or raw bytes] */
};

struct eio_socket {
	eio_server *srv;
	base_table_link hlink;  /* in srv->sids, by sid */
	base_timeq_entry hb;    /* in ping_q (waiting to ping) or pong_q (waiting for pong) */
	base_timeq_entry up;    /* in upgrade_q while probing */
	http_request *poll_req; /* the pending long-polling GET */
	http_ws *ws;            /* the WebSocket transport, once it is the transport */
	http_ws *probe;         /* a WebSocket being probed for the upgrade */
	base_buf out;           /* packets waiting for a GET, as an encoded polling payload */
	void *user;
	uint8_t transport;     /* eio_transport */
	uint8_t state;         /* eio_state */
	uint8_t upgrade;       /* eio_upgrade_state */
	uint8_t in_callback;   /* >0 while a user callback runs */
	uint8_t close_pending; /* in srv->pending_close: closed at the end of the loop turn */
	eio_close_reason reason;
	eio_close_reason pending_reason;
	base_list close_link; /* in srv->pending_close while close_pending */
	char sid[EIO_SID_LEN + 1];
	char remote[48];
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
	int closing;                 /* handles still closing in eio_server_free */
	char open_tail_polling[160]; /* open packet JSON after the sid, for each transport */
	char open_tail_ws[160];
	eio_stats stats;
	void *zs[2];   /* z_stream for gzip and deflate answers, made on first use */
	base_buf zout; /* their output, kept for the next answer */
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
eio_socket *eio__handshake(eio_server *srv, eio_transport t, http_request *req);

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
/** Detaches every transport and frees s at once (server shutdown). */
void eio__socket_destroy(eio_socket *s);
/** Frees s if nothing refers to it any more. */
void eio__socket_maybe_free(eio_socket *s);
/** Sends every queued packet over the WebSocket transport. */
void eio__flush_to_ws(eio_socket *s);
/** Starts the heartbeat (schedules the first ping). */
void eio__heartbeat_start(eio_socket *s);
void eio__ping_expired(base_timeq *q, base_timeq_entry *e);
void eio__pong_expired(base_timeq *q, base_timeq_entry *e);
void eio__linger_expired(base_timeq *q, base_timeq_entry *e);

/* transport_polling.c */
void eio__polling_get(eio_socket *s, http_request *req);
void eio__polling_post(eio_socket *s, http_request *req);
/** Answers the pending GET (if any) with the queued packets. */
void eio__polling_flush(eio_socket *s);

/* transport_websocket.c */
/** A WebSocket request without sid: a new session on the WebSocket transport. */
void eio__ws_handshake(eio_server *srv, http_request *req);
/** A WebSocket request for an existing polling sid: the upgrade probe. */
void eio__ws_upgrade(eio_socket *s, http_request *req);
void eio__upgrade_expired(base_timeq *q, base_timeq_entry *e);
/** Queues a message over the WebSocket transport. */
int eio__ws_send(eio_socket *s, int binary, const base_slice *parts, size_t n);

#endif
