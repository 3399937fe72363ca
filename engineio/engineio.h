/*
 * engineio.h: an Engine.IO v4 server (protocol 4) on the HTTP layer.
 *
 * Transports: HTTP long-polling and WebSocket, with the upgrade from one to
 * the other; heartbeat; the handshake and error answers of the reference
 * server (engine.io 6.x). The layer above (Socket.IO) sees sockets that
 * carry text and binary messages and close with a reason.
 *
 * Contracts, for every function below:
 *
 * - Threading: everything runs on the loop of the http_server given to
 *   eio_server_new. Nothing here may be called from another thread.
 * - Buffers in: eio_socket_send and eio_socket_sendv copy what they are
 *   given before returning; eio_msg_new copies its parts once; the caller
 *   keeps its buffers. eio_socket_send_msg takes a reference of its own:
 *   the caller still holds (and must drop) the one it had.
 * - Buffers out: data handed to on_message, and the request handed to
 *   on_connection and allow_request, are valid only during the call (they
 *   point into the connection's read buffer or the request's memory); copy
 *   what must be kept.
 * - When callbacks run: only from the loop (a request, a WebSocket frame,
 *   a timer, the end of a loop turn), never from inside a call the layer
 *   above makes into this one, except eio_server_close_all and
 *   eio_server_free, which run on_close for every open socket before
 *   returning. Callbacks of one socket never nest: on_close does not run
 *   inside that socket's on_connection or on_message.
 * - What is safe inside a callback: every eio_socket_* function, on the
 *   socket the callback is about or any other, including
 *   eio_socket_close (the close is finished at the end of the loop turn)
 *   and eio_msg_*. Not eio_server_free.
 * - Lifetime of an eio_socket: valid from on_connection until on_close
 *   returns; the pointer must not be used after that (the memory may stay
 *   a little longer, for a polling client to collect its close packet).
 */
#ifndef ENGINEIO_H
#define ENGINEIO_H

#include "http/http.h"
#include "packet.h"

typedef struct eio_server eio_server;
typedef struct eio_socket eio_socket;

/* Error codes of the handshake and request errors, as the reference server sends them. */
#define EIO_ERROR_MAP(X)                                   \
	X(UNKNOWN_TRANSPORT, 0, "Transport unknown")       \
	X(UNKNOWN_SID, 1, "Session ID unknown")            \
	X(BAD_HANDSHAKE_METHOD, 2, "Bad handshake method") \
	X(BAD_REQUEST, 3, "Bad request")                   \
	X(FORBIDDEN, 4, "Forbidden")                       \
	X(UNSUPPORTED_PROTOCOL_VERSION, 5, "Unsupported protocol version")

typedef enum {
#define EIO_ERR_ENUM(name, val, msg) EIO_ERR_##name = (val),
	EIO_ERROR_MAP(EIO_ERR_ENUM)
#undef EIO_ERR_ENUM
} eio_error_code;

/* Why a socket closed; the strings are the reference server's reasons. */
#define EIO_CLOSE_REASON_MAP(X)                    \
	X(SERVER_CLOSE, "forced close")            \
	X(CLIENT_CLOSE, "transport close")         \
	X(TRANSPORT_ERROR, "transport error")      \
	X(PING_TIMEOUT, "ping timeout")            \
	X(PARSE_ERROR, "parse error")              \
	X(SERVER_SHUTDOWN, "server shutting down") \
	X(FORCED_SERVER_CLOSE, "forced server close")

typedef enum {
#define EIO_CR_ENUM(name, str) EIO_CLOSE_##name,
	EIO_CLOSE_REASON_MAP(EIO_CR_ENUM)
#undef EIO_CR_ENUM
} eio_close_reason;

const char *eio_close_reason_str(eio_close_reason r);

typedef struct {
	/**
	 * Called for a new socket during its handshake request, once the open
	 * packet is queued; what it sends follows the open packet (over
	 * WebSocket, once the 101 answer is out). handshake is valid only
	 * during the call.
	 */
	void (*on_connection)(eio_socket *s, const http_request *handshake, void *ud);
	/** A message from the client. data is valid only during the call. */
	void (*on_message)(eio_socket *s, int binary, const char *data, size_t len, void *ud);
	/**
	 * The socket closed (exactly once per socket that had on_connection):
	 * from then on it sends nothing. s must not be used after this returns.
	 */
	void (*on_close)(eio_socket *s, eio_close_reason reason, void *ud);
	/** Optional: the socket moved from polling to WebSocket. */
	void (*on_upgrade)(eio_socket *s, void *ud);
	/**
	 * Optional: decide whether a handshake or request may proceed. Return 0
	 * to allow, or nonzero to refuse with 403 {"code":4,"message":"Forbidden"}.
	 * Runs before any answer; must not keep req.
	 */
	int (*allow_request)(const http_request *req, void *ud);
	void *ud;
} eio_callbacks;

typedef struct {
	unsigned ping_interval_ms;   /* 25000 */
	unsigned ping_timeout_ms;    /* 20000 */
	size_t max_payload;          /* 1000000 bytes: a polling POST body or WebSocket message */
	const char *path;            /* "/engine.io/" */
	int allow_polling;           /* 1 */
	int allow_websocket;         /* 1 */
	int allow_upgrades;          /* 1 */
	unsigned upgrade_timeout_ms; /* 10000: a probe must complete within */
	const char *
	    cors_origin; /* NULL: no CORS headers; "*": reflect any Origin; else that exact origin */
	int cors_credentials;    /* 1: Access-Control-Allow-Credentials: true */
	const char *cookie_name; /* NULL: no cookie; else e.g. "io", set on the handshake */
	size_t max_buffered;     /* bytes queued for one socket before it is dropped (16 MiB) */
	/*
	 * Admission of new sessions. A handshake refused by either answers
	 * 403 {"code":4,"message":"Too many sessions"} (or "Too many
	 * handshakes"), the reference server's answer to a handshake its
	 * allowRequest refuses; clients retry later.
	 */
	size_t max_sessions;      /* sessions open at once; 0: no limit (0) */
	unsigned handshake_rate;  /* handshakes per second per client address; 0: no limit (0) */
	unsigned handshake_burst; /* ... of which this many at once (0: handshake_rate) */
	/*
	 * Polling answers of at least compression_threshold bytes are gzip- or
	 * deflate-compressed when the request's Accept-Encoding allows it, as
	 * the reference server's httpCompression does.
	 */
	int http_compression;         /* 1 */
	size_t compression_threshold; /* 1024 bytes */
	/* Packets in one polling answer; the rest waits for the next poll.
	 * python-engineio 4.x refuses a payload of more than 16. */
	unsigned polling_max_packets; /* 16; 0: no limit */
	/*
	 * Engine.IO protocol 3 (socket.io-client 2.x), as the reference
	 * server's allowEIO3: the v3 payload encoding and heartbeat (the client
	 * pings). 0: a request with EIO=3 is refused with 400 (0).
	 */
	int allow_eio3;
	/*
	 * Optional: CORS for listed origins only. When set (and cors_origin is
	 * NULL), a request whose Origin it accepts (returns 1) is answered with
	 * Access-Control-Allow-Origin: that origin and
	 * Access-Control-Allow-Credentials: true, and its preflight OPTIONS with
	 * 204; any other request gets no CORS headers.
	 */
	int (*cors_origin_ok)(const base_slice *origin, void *ud);
	void *cors_ud;
} eio_options;

/** Fills o with the defaults above. */
void eio_options_default(eio_options *o);

/**
 * Creates an Engine.IO server handling every request under opts->path on
 * http. Returns NULL on ENOMEM. opts->path and cors_origin must outlive it.
 */
eio_server *eio_server_new(http_server *http, const eio_options *opts, const eio_callbacks *cb);
/** Closes every socket (reason SERVER_SHUTDOWN): on_close runs for each before this returns. */
void eio_server_close_all(eio_server *srv);
/**
 * Closes every socket (as eio_server_close_all), answers waiting polls,
 * and frees the server once its handles have closed (a loop turn later).
 * Not from inside a callback. Call before http_server_free.
 */
void eio_server_free(eio_server *srv);
/** Number of open sockets. */
size_t eio_server_clients(const eio_server *srv);

#define EIO_CLOSE_REASONS 7
/* Counters since the server was created (plain integers: one loop). */
typedef struct {
	uint64_t opened[2]; /* sessions opened, by first transport: [0] polling, [1] websocket */
	uint64_t open[2];   /* sessions open now, by current transport */
	uint64_t upgrades;  /* polling sessions upgraded to WebSocket */
	uint64_t closed[EIO_CLOSE_REASONS]; /* sessions closed, by eio_close_reason */
	uint64_t msgs_in;                   /* message packets received */
	uint64_t msgs_out;                  /* message packets queued to clients */
	uint64_t bytes_in;                  /* their data bytes (message packets only) */
	uint64_t bytes_out;
} eio_stats;

/** Copies the counters. */
void eio_server_get_stats(const eio_server *srv, eio_stats *st);

/**
 * Sends a message (copied), or queues it until the transport can take it
 * (a polling GET, the WebSocket's accept or the end of an upgrade). Returns
 * 0, BASE_ECLOSED (the socket is closed or closing: nothing sent),
 * BASE_ELIMIT or HTTP_EQUEUE_FULL (too much waiting for a client that does
 * not read: the socket is closed at the end of the loop turn).
 * Never runs a callback.
 */
int eio_socket_send(eio_socket *s, int binary, const char *data, size_t len);
/**
 * Queues a message built of parts (concatenated), copying once.
 * Same returns as eio_socket_send.
 */
int eio_socket_sendv(eio_socket *s, int binary, const base_slice *parts, size_t n_parts);

/*
 * A message encoded once and shared by many sockets (broadcast): one
 * refcounted chunk holding the WebSocket frame ready to write. A WebSocket
 * socket's write queue shares it; a polling socket's queue holds a
 * reference until a GET takes it, and encodes it into that answer.
 */
typedef struct eio_msg eio_msg;
/** Builds a shared message from parts (copied once). refs = 1. Never NULL (out of memory aborts). */
eio_msg *eio_msg_new(int binary, const base_slice *parts, size_t n_parts);
eio_msg *eio_msg_ref(eio_msg *m);
void eio_msg_unref(eio_msg *m);
/** Sends or queues a shared message; takes its own reference. Returns as eio_socket_send. */
int eio_socket_send_msg(eio_socket *s, eio_msg *m);

/**
 * Closes the socket (reason SERVER_CLOSE): from now on it takes no packet
 * and sends nothing; the close packet, the transport's teardown and on_close
 * follow at the end of the loop turn, never inside this call (so it is safe
 * from inside any callback or send). A socket whose peer does not read (its
 * output queue full) is closed the same way.
 */
void eio_socket_close(eio_socket *s);
/** 1 until the socket closed (or is closing, or a close was asked for). */
int eio_socket_is_open(const eio_socket *s);
/**
 * 1 when a message sent now would leave at once: a GET is waiting (polling),
 * or nothing is queued (WebSocket). Volatile messages are dropped otherwise.
 */
int eio_socket_writable(const eio_socket *s);
/** Bytes queued for the socket and not yet written. */
size_t eio_socket_buffered(const eio_socket *s);
/** The Engine.IO protocol revision of s: 4, or 3 for a client let in by allow_eio3 (4 for NULL). */
int eio_socket_protocol(const eio_socket *s);
const char *eio_socket_id(const eio_socket *s);
/** "polling" or "websocket": the current transport. */
const char *eio_socket_transport(const eio_socket *s);
const char *eio_socket_remote_addr(const eio_socket *s);
void eio_socket_set_data(eio_socket *s, void *ud);
void *eio_socket_data(const eio_socket *s);
eio_server *eio_socket_server(const eio_socket *s);

#endif
