/*
 * http_internal.h: what the files of engineio/http share.
 *
 * Memory model, in one paragraph. The server owns one read buffer; every
 * read lands there and is parsed in place. Only bytes that cannot be
 * finished in this read (a request whose headers are incomplete, a
 * WebSocket frame whose payload has not all arrived, pipelined requests
 * behind a request the handler keeps) are copied into the connection's
 * own heap buffer `in`, which is freed as soon as it is consumed. A
 * request's header bytes are copied once into its arena when the headers
 * are complete; its body stays in place when it arrived whole and the
 * handler answers at once. Output is a queue of nodes: inline bytes (small
 * writes are appended to the tail node) or references to shared chunks.
 * Queued output is written by the connection itself after a read, or by
 * the server's prepare handle just before the loop polls, so all writes of
 * one loop turn leave in one gathered syscall per connection.
 */
#ifndef HTTP_INTERNAL_H
#define HTTP_INTERNAL_H

#include <llhttp.h>
#include <uv.h>

#include "base/timeq.h"
#include "http.h"
#include "ws_deflate.h"
#include "ws_frame.h"

/* The one read buffer of a server. */
#define HTTP_RBUF_SIZE (64 * 1024)
/* How long a closing connection waits for the peer after our last byte. */
#define HTTP_LINGER_MS 1000
/* Buffers handed to one uv_try_write or uv_write. */
#define HTTP_IOV_MAX 64

/* Timeouts: one base_timeq per kind (each kind has one duration). */
enum {
	HTTP_T_NONE = 0,
	HTTP_T_HEADER, /* waiting for a request's line and headers */
	HTTP_T_BODY,   /* waiting for the rest of its body */
	HTTP_T_IDLE,   /* keep-alive, between requests */
	HTTP_T_LINGER, /* closing: last bytes out, waiting for the peer's close */
	HTTP_T_COUNT
};

/* Connection flags. */
enum {
	HTTP_F_CLOSED = 1 << 0,     /* uv_close called; freed in its callback */
	HTTP_F_DRAINING = 1 << 1,   /* no more input is processed; close once output is out */
	HTTP_F_LINGER = 1 << 2,     /* when drained: shutdown and wait for the peer (else close) */
	HTTP_F_SHUT = 1 << 3,       /* uv_shutdown issued */
	HTTP_F_PROCESSING = 1 << 4, /* inside http__conn_input */
	HTTP_F_RESUME = 1 << 5,     /* buffered input waits for the prepare handle */
	HTTP_F_PROGRESS = 1 << 6,   /* bytes written since the timeout was armed */
	HTTP_F_READ_STOPPED = 1 << 7, /* reading paused: too much input behind a kept request */
};

enum { HTTP_MODE_HTTP = 0, HTTP_MODE_WS = 1 };
_Static_assert(HTTP_T_COUNT <= 8, "http_conn.tkind has 3 bits");

typedef struct http_conn http_conn;
typedef struct http_rx http_rx;
typedef struct http_fstream http_fstream;

/* One node of a connection's output queue. */
typedef struct http_out {
	struct http_out *next;
	base_chunk *chunk; /* shared bytes, or NULL when they are inline in data */
	char *pos;         /* first unwritten byte */
	size_t len;        /* unwritten bytes */
	size_t room;       /* inline nodes: free bytes after pos + len */
	char data[];
} http_out;

/* A uv_write in flight; allocated only when the socket pushes back. */
typedef struct {
	uv_write_t req;
	http_conn *conn;
	size_t nbytes;
} http_wreq;

struct http_conn {
	uv_tcp_t tcp;
	http_server *srv;
	base_list link;          /* in srv->conns */
	base_timeq_entry tentry; /* in srv->tq[tkind] */
	base_list plink;         /* in srv->pending */
	http_out *out_head, *out_tail;
	size_t out_bytes;
	http_wreq *wreq;
	char *in; /* leftover input, NULL when none */
	uint32_t in_len, in_cap;
	union {
		http_rx *rx; /* HTTP: the request being read or handled */
		http_ws *ws; /* WebSocket */
	} u;
	uint32_t held; /* input buffer bytes counted in srv->held (http__conn_account) */
	uint16_t flags;
	uint8_t mode : 1;    /* HTTP_MODE_* */
	uint8_t tkind : 3;   /* HTTP_T_* */
	uint8_t peer_family; /* AF_INET, AF_INET6 or 0 */
	uint8_t peer[16];
};

/* Header positions while the header bytes may still move. */
typedef struct {
	uint32_t name_off, name_len, value_off, value_len;
} http_hdr_pos;

struct http_rx {
	http_request req; /* what the handler sees */
	llhttp_t parser;
	base_arena arena;
	http_conn *conn;
	http_rx *next_free;
	const char *start; /* first byte of the request in the buffer being parsed */
	http_hdr_pos *hpos;
	uint32_t n_hpos, cap_hpos;
	uint32_t url_off, url_len;
	uint32_t span_end; /* end of the last header byte, from start */
	uint64_t body_total;
	size_t max_body;   /* this request's body limit, from its path (http_body_limit) */
	const char *piece; /* the body, in place, while it is one piece */
	size_t piece_len;
	base_buf body;         /* the body, when it had to be copied */
	int err;               /* HTTP status chosen by a callback that failed */
	http_fstream *fstream; /* the body being sent from a file (file.c), or NULL */
	int route;             /* index in srv->routes of the route that took it, or -1 */
	uint8_t in_field, headers_done, complete, dispatched;
};

struct http_ws {
	http_conn *conn;
	http_ws_callbacks cb;
	void *ud;
	http_ws_seq seq;
	base_buf *frag; /* a fragmented message in progress; NULL between messages (ws_frag) */
	uint32_t utf8;
	uint16_t close_code; /* 0 until known */
	uint8_t binary;
	uint8_t deflate;             /* permessage-deflate negotiated */
	uint8_t compressed;          /* the message in progress has RSV1: inflated when complete */
	uint8_t path_off, agent_off; /* in str (below); the remote address is at 0 */
	char *close_reason;          /* heap, or NULL */
	uint64_t id, start_ms, bytes_in, bytes_out;
	/*
	 * The remote address, the path and the User-Agent (for the access log
	 * at the end), each NUL-terminated, one after the other in str; as long
	 * as they are (at most HTTP_WS_PATH_MAX and HTTP_WS_AGENT_MAX bytes of
	 * the last two), not in fixed arrays: an idle connection keeps them for
	 * its whole life.
	 */
	char str[];
};
#define HTTP_WS_PATH_MAX 63
#define HTTP_WS_AGENT_MAX 95

/* A trusted proxy: an address, or a CIDR prefix of one. */
typedef struct {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t bits;   /* prefix length */
	uint8_t addr[16];
} http_proxy_net;

#define HTTP_MAX_PROXIES 16

typedef struct {
	http_method method;
	int prefix;
	char *path;
	size_t len;
	http_handler_fn fn;
	void *ud;
	uint64_t by_class[6]; /* responses, by status / 100 */
} http_route_entry;

/* A body limit for a path or a prefix of paths (http_body_limit). */
typedef struct {
	int prefix;
	char *path;
	size_t len;
	size_t max;
} http_limit_entry;

struct http_server {
	uv_loop_t *loop;
	uv_poll_t listener; /* on listen_fd */
	int listen_fd;      /* -1 until http_server_listen */
	int reserve_fd;     /* kept open to be given up on EMFILE (server.c) */
	uv_prepare_t prepare;
	http_limits lim;
	base_timeq tq[HTTP_T_COUNT]; /* [0] unused; a duration of 0 turns a kind off */
	base_list conns;
	base_list pending; /* connections with output to flush or input to resume */
	http_route_entry *routes;
	size_t n_routes;
	http_limit_entry *limits;
	size_t n_limits;
	http_rx *rx_free;
	unsigned n_rx_free;
	unsigned n_conns;
	unsigned aux_open; /* timeq timers and the prepare handle not yet closed */
	int port;
	int closing; /* http_server_close called */
	int listener_open;
	int closed; /* every handle closed */
	void (*close_cb)(void *ud);
	void *close_ud;
	char *rbuf;
	size_t held; /* input held by all connections (lim.max_input_bytes) */
	/* Accept errors (EMFILE: out of file descriptors) are logged at most once a while. */
	uint64_t accept_err_logged; /* loop time of the last log line; 0 when none */
	unsigned accept_errs;       /* errors since that line */
	unsigned accept_dropped;    /* connections closed unserved since that line */
	int accept_paused;          /* accepting stopped a moment (no reserve descriptor) */
	http_proxy_net proxies[HTTP_MAX_PROXIES]; /* http_server_trust_proxies */
	size_t n_proxies;
	http_stats stats;
	http_observer obs;
	uint64_t next_id;
	char id_prefix[12];
	struct http_pmd
	    *pmd; /* permessage-deflate streams, shared (ws_deflate.c); NULL until used */
};
/* Counts a response to rx's request by route and status class. */
void http__count_status(http_rx *rx, int status);

/* server.c */
void http__tq_set(http_conn *c, unsigned kind);
void http__tq_rearm(http_conn *c);
void http__schedule(http_conn *c, unsigned flag);
/** A connection was freed: finishes a closing server when it was the last. */
void http__server_conn_gone(http_server *s);

/* conn.c */
int http__conn_read_start(http_conn *c);
void http__conn_input_shared(http_conn *c, char *buf, size_t len);
void http__conn_input_owned(http_conn *c, size_t from);
void http__conn_resume(http_conn *c);
/**
 * Queues head and then the parts as output. Returns 0, or HTTP_EQUEUE_FULL /
 * BASE_ENOMEM after dropping the connection, or BASE_ECLOSED.
 */
int http__out_write(http_conn *c, const char *head, size_t hlen, const base_slice *parts,
                    size_t n_parts);
int http__out_chunk(http_conn *c, base_chunk *chunk, size_t offset, size_t len);
void http__conn_flush(http_conn *c);
/** Stops input, writes what is queued, then closes (lingering: shutdown, wait for the peer). */
void http__conn_drain(http_conn *c, int linger);
void http__conn_close(http_conn *c);
void http__conn_eof(http_conn *c, ssize_t err);
void http__conn_update_timeout(http_conn *c);
/**
 * Brings srv->held up to date with c's input buffers. Returns 1 when they
 * grew and the server is now over lim.max_input_bytes.
 */
int http__conn_account(http_conn *c);

/* request.c */
/** Parses one request step from buf at *off; see the return values in request.c. */
int http__rx_input(http_conn *c, char *buf, size_t len, size_t *off);
void http__rx_free(http_server *s, http_rx *rx);
/** Ends the request: frees it and moves the connection on (next request, idle, or close). */
void http__request_end(http_conn *c, int keep_alive);
/** Answers status with a short text body and closes the connection (a request in progress is dropped). */
void http__send_error(http_conn *c, int status);

enum { HTTP_RX_NEXT = 0, HTTP_RX_STOP = 1 };

/* response.c */
/**
 * Queues the head of a response whose body (body_len bytes) follows later;
 * the request stays open. On failure it is ended. *keep_out: whether the
 * connection may carry another request after this one.
 */
int http__respond_head(http_request *req, int status, const char *ctype, const char *extra,
                       uint64_t body_len, int *keep_out);

/* file.c */
/** 1 while c's request is sending its body from a file. */
int http__fstream_active(const http_conn *c);
/** c's queue has shrunk: read the next piece of the file when the window has room. */
void http__fstream_writable(http_conn *c);
/** The peer has half-closed: the body is still sent, then the connection closes. */
void http__fstream_peer_done(http_conn *c);
/** The request is freed before its body was sent: the stream frees itself. */
void http__fstream_detach(http_fstream *f);

/* router.c */
const http_route_entry *http__route_find(const http_server *s, const http_request *req);

/* proxy.c */
/** Parses "addr[/bits], ..." into nets (at most max). 0 or BASE_EINVAL. */
int http__proxy_parse(const char *list, http_proxy_net *nets, size_t max, size_t *n);
/** 1 when addr (4 or 16 bytes, by family) is in one of nets. */
int http__proxy_match(const http_proxy_net *nets, size_t n, int family, const uint8_t *addr);
/**
 * Walks the X-Forwarded-For headers right to left and writes into out the
 * first address that is not in nets (the client); out is left at the last
 * trusted hop when every entry is trusted or an entry is not an address.
 */
void http__forwarded_client(const http_proxy_net *nets, size_t n, const http_header *headers,
                            size_t n_headers, char *out, size_t out_size);

/* ws.c */
size_t http__ws_input(http_conn *c, char *buf, size_t len, size_t off, size_t *want);
/** The connection is closed: calls on_close and frees ws. */
void http__ws_closed(http_ws *ws);

#endif
