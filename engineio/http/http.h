/*
 * http.h: what Engine.IO stands on.
 *
 * A libuv TCP listener, HTTP/1.1 requests parsed by llhttp (keep-alive,
 * pipelining, chunked bodies), a small router, responses, and the RFC 6455
 * WebSocket handshake and connection. Knows nothing of Engine.IO.
 *
 * Contracts:
 *
 * - Threading: everything runs on the loop given to http_server_new;
 *   nothing here may be called from another thread.
 * - Buffers in: http_respond*, http_ws_send and http_ws_close copy what
 *   they are given (into the connection's write queue) before returning;
 *   http_ws_send_frames shares a chunk instead and takes a reference.
 *   extra_headers are copied too.
 * - Buffers out: a request's slices live until it is answered or aborted;
 *   the data of a WebSocket on_message only during the call.
 * - When callbacks run: only from the loop (a read, a timer, a write's
 *   completion, a handle's close), never from inside a call into this
 *   layer (http_ws_accept reads the frames that came with the handshake
 *   after it returns). A WebSocket's on_close runs once, from its
 *   connection's close, never inside http_ws_close. Observers
 *   (http_server_observe) are the exception: they run inside the call
 *   they observe (on_response inside http_respond*).
 * - What is safe inside a callback: answering or keeping the request in
 *   a handler; http_ws_send and http_ws_close (the connection is then
 *   drained and closed later) on the WebSocket being read or any other.
 *   Not http_server_free.
 */
#ifndef HTTP_H
#define HTTP_H

#include <uv.h>

#include "base/base.h"

typedef enum {
#define HTTP_ERR_ENUM(name, val, msg) HTTP_E##name = (val),
	HTTP_ERROR_MAP(HTTP_ERR_ENUM)
#undef HTTP_ERR_ENUM
} http_errno;

/* HTTP_ERROR_MAP is in base/errors.h, with every layer's codes; base_strerror
 * describes them. */

/* ---- limits ------------------------------------------------------------ */

typedef struct {
	size_t max_header_bytes; /* request line + headers; over it: 431 and close (16 KiB) */
	size_t
	    max_body_bytes; /* without a matching http_body_limit: over it, 413 and close (1 MiB) */
	unsigned header_timeout_ms; /* request line and headers must arrive within (10 s) */
	unsigned
	    body_timeout_ms; /* the body must arrive within, after the headers; else 408 (30 s) */
	unsigned idle_timeout_ms; /* keep-alive connection with no request in progress (60 s) */
	unsigned max_connections; /* accepted at once, HTTP and WebSocket together (100000) */
	size_t ws_max_message;    /* WebSocket message size; over it: close 1009 (1 MiB) */
	/*
	 * permessage-deflate (RFC 7692) offered by the client is accepted, with
	 * no context takeover either way (off). Messages out of at least
	 * ws_deflate_threshold bytes are compressed (1024); compressed messages
	 * in are inflated up to ws_max_message (over it: close 1009).
	 */
	int ws_deflate;
	size_t ws_deflate_threshold;
	size_t
	    max_output_bytes; /* queued, unwritten bytes per connection before it is dropped (16 MiB) */
	/*
	 * Input held in memory by all connections together: incomplete requests
	 * and frames, request bodies, fragmented messages. Only bytes that have
	 * arrived count: buffers grow with what the peer sends, never with what
	 * it announces (a Content-Length or a frame length). A connection whose
	 * buffers grow past it is refused: 503 and close, or WebSocket close
	 * 1013 "try again later" (256 MiB). Keeps many slow uploads from
	 * exhausting memory, whatever max_body_bytes allows each.
	 */
	size_t max_input_bytes;
} http_limits;

/** Fills l with the defaults listed above. */
void http_limits_default(http_limits *l);

/* ---- server ------------------------------------------------------------ */

typedef struct http_server http_server;
typedef struct http_request http_request;
typedef struct http_ws http_ws;

/** Creates a server on loop. lim may be NULL for defaults. Returns NULL on ENOMEM. */
http_server *http_server_new(uv_loop_t *loop, const http_limits *lim);
/**
 * Binds and listens on host:port (IPv4 or IPv6 literal; port 0 picks a free one).
 * Returns 0 or a negative libuv error.
 */
int http_server_listen(http_server *s, const char *host, int port);
/**
 * Trusted reverse proxies: comma-separated IPv4/IPv6 addresses or CIDR
 * prefixes ("127.0.0.1, 10.0.0.0/8, ::1"), at most 16. A request whose TCP
 * peer is one of them takes its remote_addr from X-Forwarded-For: the
 * rightmost address there that is not a trusted proxy itself. NULL or ""
 * trusts none (the default: X-Forwarded-For is ignored).
 * Returns 0, or BASE_EINVAL for a list that does not parse (nothing changes).
 */
int http_server_trust_proxies(http_server *s, const char *list);
/** The bound port, after a successful listen. */
int http_server_port(const http_server *s);
/** Current number of open connections (HTTP and WebSocket). */
unsigned http_server_connections(const http_server *s);
/**
 * Stops listening and closes every connection (WebSockets get close 1001).
 * cb(ud) runs once all handles are closed; then http_server_free may be called.
 */
void http_server_close(http_server *s, void (*cb)(void *ud), void *ud);
void http_server_free(http_server *s);
uv_loop_t *http_server_loop(const http_server *s);

/* ---- counters and observers (metrics, access log) ----------------------- */

/* Counters since the server was created (plain integers: one loop). */
typedef struct {
	uint64_t accepted;    /* connections accepted */
	uint64_t requests;    /* requests whose headers were read */
	uint64_t refused;     /* requests answered by the server itself (400, 408, 413, 431, ...) */
	uint64_t unrouted[6]; /* responses to requests no route matched, by status / 100 */
	uint64_t bytes_in;    /* bytes read from connections (HTTP and WebSocket) */
	uint64_t bytes_out;   /* bytes written */
	uint64_t ws_opened;   /* WebSocket handshakes completed */
	uint64_t ws_closed;   /* WebSockets closed */
} http_stats;

void http_server_get_stats(const http_server *s, http_stats *st);
/**
 * Calls fn for each route (in the order added) with its path, whether it is
 * a prefix, and its responses by status / 100 (101 of a WebSocket counts in [1]).
 */
void http_server_each_route(const http_server *s,
                            void (*fn)(const char *path, int prefix, const uint64_t by_class[6],
                                       void *ud),
                            void *ud);
/**
 * Random text that, with a request's id, names the request uniquely:
 * "PREFIX-ID" (the X-Request-Id of its response when ids are sent).
 */
const char *http_server_id_prefix(const http_server *s);

typedef struct {
	/* A response head was queued (the body may still be on its way). */
	void (*on_response)(const http_request *req, int status, uint64_t body_bytes, void *ud);
	/* A WebSocket ended; called just before its on_close. */
	void (*on_ws_end)(const http_ws *ws, int code, const char *reason, void *ud);
	void *ud;
	int send_request_id; /* add X-Request-Id: PREFIX-ID to every response */
} http_observer;

/** Sets (o copied) or clears (NULL) the observer. */
void http_server_observe(http_server *s, const http_observer *o);

/* ---- requests ---------------------------------------------------------- */

typedef enum {
	HTTP_M_OTHER = 0,
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_OPTIONS,
	HTTP_M_PATCH,
} http_method;

typedef struct {
	base_slice name;
	base_slice value;
} http_header;

/*
 * One request. All slices point into memory owned by the request (its arena)
 * and stay valid until the response has been sent or the request aborted.
 * The handler may answer at once or keep the request and answer later from
 * another callback (long-polling); the connection reads no further request
 * until then (HTTP/1.1 answers in order).
 */
struct http_request {
	http_server *server;
	http_method method;
	base_slice method_name;
	base_slice target; /* as sent: path and query */
	base_slice path;   /* raw, undecoded, without the query */
	base_slice query;  /* after '?', without it; empty when absent */
	const http_header *headers;
	size_t n_headers;
	base_slice body;   /* de-chunked */
	base_arena *arena; /* freed when the request ends */
	int keep_alive;    /* the connection may carry another request */
	/*
	 * The client's IP as text: the TCP peer's, or, when the peer is a
	 * trusted proxy (http_server_trust_proxies), the one X-Forwarded-For
	 * names. peer_addr is always the TCP peer's.
	 */
	char remote_addr[48];
	char peer_addr[48];
	/*
	 * Set by a handler that keeps the request: called once if the connection
	 * goes away before the response is sent. The request is freed after it
	 * returns and must not be answered.
	 */
	void (*on_abort)(http_request *req, void *ud);
	void *abort_ud;
	/* Per-server request number (see http_server_id_prefix) and loop time (ms) of its headers. */
	uint64_t id;
	uint64_t start_ms;
};

/** The first header with this name (ASCII case-insensitive), or NULL. */
const base_slice *http_header_get(const http_request *req, const char *name);

typedef void (*http_handler_fn)(http_request *req, void *ud);

/**
 * Routes requests whose path equals path (or starts with it when prefix is 1)
 * to fn. method HTTP_M_OTHER matches every method. Routes are tried in the
 * order added; the first match wins. Unmatched requests get 404.
 * Returns 0 or BASE_ENOMEM.
 */
int http_route(http_server *s, http_method method, const char *path, int prefix, http_handler_fn fn,
               void *ud);

/**
 * Requests whose path equals path (or starts with it when prefix is 1) may
 * carry at most max_bytes of body, whatever their method; the longest
 * matching path wins, so the order of calls does not matter, and requests
 * matching none get lim.max_body_bytes. The limit is decided from the
 * request line and headers: a Content-Length over it is answered 413 (and
 * the connection closed) before any of the body is read; a chunked body is
 * refused as soon as it passes it. The same path given again replaces its
 * limit. Returns 0 or BASE_ENOMEM.
 */
int http_body_limit(http_server *s, const char *path, int prefix, size_t max_bytes);
/** The body limit of requests to path (the rule http_body_limit chose, or the default). */
size_t http_body_limit_for(const http_server *s, const char *path, size_t len);

/**
 * Sends a complete response and ends the request (req is invalid afterwards).
 * extra_headers is NULL or raw header lines, each ending in "\r\n".
 * Content-Length, Date-less minimal headers and Connection are added here.
 * For HEAD requests the body is not sent. Returns 0 or a negative error
 * (the request is ended either way).
 */
int http_respond(http_request *req, int status, const char *content_type, const char *extra_headers,
                 const void *body, size_t len);
/** http_respond with a body made of several pieces, gathered into one write. */
int http_respond_parts(http_request *req, int status, const char *content_type,
                       const char *extra_headers, const base_slice *parts, size_t n_parts);
/** Ends the request with a response and closes the connection after it is written. */
void http_respond_and_close(http_request *req, int status, const char *content_type,
                            const void *body, size_t len);
/**
 * Answers with len bytes of the open file fd from offset as the body:
 * Content-Length is len; status is 200, or 206 with a Content-Range line in
 * extra_headers (see http_parse_range). The file is read on libuv's
 * threadpool a piece at a time and sent without copies, never more than a
 * small window ahead of the socket: memory stays bounded whatever the
 * file's size or the reader's speed, and max_output_bytes does not apply.
 * A reader that takes nothing for idle_timeout_ms is dropped. HEAD gets the
 * head only. Takes fd: it is closed when the body is sent or the request
 * ends otherwise. If the file turns out shorter than promised, the
 * connection is closed. Returns 0 or a negative error (the request ended).
 */
int http_respond_file(http_request *req, int status, const char *content_type,
                      const char *extra_headers, uv_file fd, uint64_t offset, uint64_t len);
/**
 * Reads a Range header value against a body of size bytes: 1 and the one
 * range to send (*start, *len) for "bytes=a-b", "bytes=a-" or "bytes=-n";
 * -1 when the range starts at or past the end (answer 416 and name the
 * size in Content-Range); 0 when the whole body should be sent
 * instead (no header, another unit, several ranges, or a malformed value).
 */
int http_parse_range(const base_slice *value, uint64_t size, uint64_t *start, uint64_t *len);
/** The standard reason phrase of a status code ("OK", "Not Found", ...). */
const char *http_status_text(int status);

/* ---- WebSocket (RFC 6455, version 13) ---------------------------------- */

/** 1 when req is a GET with Upgrade: websocket and Connection: upgrade. */
int http_is_websocket(const http_request *req);

typedef struct {
	/** A complete message (defragmented; text already validated as UTF-8). */
	void (*on_message)(http_ws *ws, int binary, const char *data, size_t len, void *ud);
	/**
	 * The connection is gone: closed by the peer (code from its close frame,
	 * 1005 when none, 1006 when the TCP connection dropped), by a protocol
	 * error (1002, 1007, 1009), or by http_ws_close. Called exactly once;
	 * ws is freed right after it returns.
	 */
	void (*on_close)(http_ws *ws, int code, const char *reason, void *ud);
} http_ws_callbacks;

/**
 * Completes the handshake (101 Switching Protocols) and turns the request's
 * connection into a WebSocket. The request ends here. On a bad handshake it
 * answers 400 itself and returns NULL. extra_headers: NULL or raw lines
 * ending in "\r\n" (e.g. Set-Cookie). With limits.ws_deflate, a
 * permessage-deflate offer is accepted (Sec-WebSocket-Extensions in the
 * answer) when its parameters allow no context takeover either way.
 */
http_ws *http_ws_accept(http_request *req, const http_ws_callbacks *cb, void *ud,
                        const char *extra_headers);

/**
 * Queues one message built from n parts (concatenated; e.g. "4" and a
 * payload) as a single frame, compressed when permessage-deflate is
 * agreed and it is ws_deflate_threshold bytes or more. Returns 0,
 * HTTP_EQUEUE_FULL (the peer does not read: the connection is being
 * closed), or BASE_ECLOSED.
 */
int http_ws_send(http_ws *ws, int binary, const base_slice *parts, size_t n_parts);
/**
 * Queues bytes that already form one or more complete server frames
 * (see http_ws_frame_header), sharing chunk instead of copying it:
 * takes a reference. Used for broadcasts encoded once. With
 * permessage-deflate agreed, whole-message frames of ws_deflate_threshold
 * bytes or more are sent compressed instead, from a compressed copy of the
 * chunk that the next connection sent the same chunk shares.
 */
int http_ws_send_frames(http_ws *ws, base_chunk *chunk, size_t offset, size_t len);
/** Bytes queued and not yet written to the socket. */
size_t http_ws_buffered(const http_ws *ws);
/**
 * Sends a close frame with code and reason and closes once it is written
 * (without waiting for the peer's echo longer than a short grace period).
 * on_close follows. Safe to call from inside on_message, and more than once.
 */
void http_ws_close(http_ws *ws, uint16_t code, const char *reason);
void http_ws_set_data(http_ws *ws, void *ud);
void *http_ws_data(const http_ws *ws);
const char *http_ws_remote_addr(const http_ws *ws);

typedef struct {
	uint64_t id;       /* the id of the request that opened it */
	uint64_t start_ms; /* loop time of that request */
	uint64_t bytes_in, bytes_out;
	const char *path;       /* its path, without the query (may be truncated) */
	const char *user_agent; /* may be truncated; "" when none */
} http_ws_info;

void http_ws_get_info(const http_ws *ws, http_ws_info *info);

#endif
