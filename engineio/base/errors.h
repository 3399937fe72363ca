/*
 * errors.h: the error codes of every layer, in one place.
 *
 * Every function that can fail returns 0 (or a count) or a negative code.
 * Each layer owns one range of codes, all outside libuv's (its codes are
 * -errno on Unix, -3000..-3014 for getaddrinfo, -4000..-4095 elsewhere), so
 * a code passed up through several layers keeps its meaning, and one
 * function, base_strerror, describes them all:
 *
 *   libuv        -1 .. -4095   UV_* (uv.h)
 *   base         -4101 ..      BASE_E*   (base.h)
 *   http         -4201 ..      HTTP_E*   (engineio/http/http.h)
 *   engineio     -4301 ..      reserved: its errors are wire codes (EIO_ERR_*)
 *   socketio     -4401 ..      SIO_E*    (socketio/socketio.h)
 *   db           -4501 ..      DB_E*     (spaces/db/db.h)
 *   spaces       -4601 ..      reserved
 *   web          -4701 ..      reserved
 *
 * The maps are here, not in each layer's header, so that base_strerror can
 * describe every code without knowing the layers (it knows their messages
 * only) and two layers cannot pick the same number. Each layer's header
 * makes its enum of names from its map. A new layer code: a row in its map.
 */
#ifndef BASE_ERRORS_H
#define BASE_ERRORS_H

#define BASE_ERR_RANGE 100 /* codes per layer: first - 1 .. first - 99 */
#define BASE_ERR_BASE (-4100)
#define BASE_ERR_HTTP (-4200)
#define BASE_ERR_EIO (-4300)
#define BASE_ERR_SIO (-4400)
#define BASE_ERR_DB (-4500)
#define BASE_ERR_SPACES (-4600)
#define BASE_ERR_WEB (-4700)

#define BASE_ERRNO_MAP(X)                   \
	X(NOMEM, -4101, "out of memory")    \
	X(INVAL, -4102, "invalid argument") \
	X(LIMIT, -4103, "limit exceeded")   \
	X(CLOSED, -4104, "closed")          \
	X(PARTIAL, -4105, "incomplete input")

#define HTTP_ERROR_MAP(X)                                          \
	X(HEADER_TOO_LARGE, -4201, "request header too large")     \
	X(BODY_TOO_LARGE, -4202, "request body too large")         \
	X(BAD_REQUEST, -4203, "malformed request")                 \
	X(NOT_WEBSOCKET, -4204, "not a WebSocket upgrade request") \
	X(QUEUE_FULL, -4205, "output queue full")

#define SIO_ERRNO_MAP(X)                                       \
	X(NOT_CONNECTED, -4401, "socket is not connected")     \
	X(BAD_ARGS, -4402, "arguments are not valid JSON")     \
	X(TOO_MANY_ATTACHMENTS, -4403, "too many attachments") \
	X(TIMEDOUT, -4404, "not every node or client answered in time")

#define DB_ERRNO_MAP(X)                                                              \
	X(SERVER, -4501, "the server reported an error")                             \
	X(CONNLOST, -4502, "the connection was lost before the answer came")         \
	X(TIMEDOUT, -4503, "no connection could take the query in time")             \
	X(QUEUEFULL, -4504, "too many queries are waiting for a connection")         \
	X(CLOSED, -4505, "the pool is closed")                                       \
	X(SKIPPED, -4506, "not run: an earlier statement of its transaction failed") \
	X(CONNINFO, -4507, "invalid connection string")                              \
	X(CONNECT, -4508, "cannot connect to the database server")                   \
	X(MIGRATE, -4509, "a migration failed")                                      \
	X(PROTOCOL, -4510, "unexpected reply from the database server")

#endif
