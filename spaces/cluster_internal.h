/*
 * cluster_internal.h: what cluster.c (the messages' way over PostgreSQL,
 * broadcasts and socketsJoin/Leave/disconnectSockets) and
 * cluster_requests.c (heartbeats, the nodes known, requests and their
 * responses) share.
 */
#ifndef SPACES_CLUSTER_INTERNAL_H
#define SPACES_CLUSTER_INTERNAL_H

#include <jansson.h>

#include "cluster.h"

#define CL_CHANNEL_PREFIX "socket.io#"
#define CL_TABLE "socket_io_attachments"
/* PostgreSQL refuses notification payloads from 8000 bytes on. */
#define CL_NOTIFY_MAX 8000
#define CL_MAX_NSPS 16
/* Other nodes tracked per namespace; more are served but not waited for. */
#define CL_MAX_NODES 64
#define CL_UID_MAX 40
/* Requests of this node waiting for answers. */
#define CL_MAX_REQUESTS 1024
/* The Node adapter's defaults: a heartbeat after 5 s without publishing; a node silent for 10 s is gone. */
#define CL_HEARTBEAT_MS 5000
#define CL_NODE_TIMEOUT_MS 10000
/* What a process that only publishes (@socket.io/postgres-emitter) calls itself. */
#define CL_EMITTER_UID "emitter"

/* Message types of socket.io-adapter's ClusterAdapter. */
enum {
	CL_HEARTBEAT_FIRST = 1,
	CL_HEARTBEAT = 2,
	CL_BROADCAST = 3,
	CL_SOCKETS_JOIN = 4,
	CL_SOCKETS_LEAVE = 5,
	CL_DISCONNECT_SOCKETS = 6,
	CL_FETCH_SOCKETS = 7,
	CL_FETCH_SOCKETS_RESPONSE = 8,
	CL_SERVER_SIDE_EMIT = 9,
	CL_SERVER_SIDE_EMIT_RESPONSE = 10,
	CL_BROADCAST_CLIENT_COUNT = 11,
	CL_BROADCAST_ACK = 12,
	CL_ADAPTER_CLOSE = 13
};

typedef struct cl_out {
	struct cl_out *next;
	int attach;       /* params: 0 {channel, json}; 1 {payload, channel, uid, nsp, type} */
	const char *p[5]; /* into data */
	char type[4];     /* attach: the message's type, for its notification */
	size_t size;
	char data[];
} cl_out;

typedef struct cl_nsp cl_nsp;

typedef struct cl_in {
	struct cl_in *next;
	sp_cluster *c;
	cl_nsp *cn;  /* the channel it came on */
	int ready;   /* msg is set (NULL: the message was lost) */
	json_t *msg; /* the whole message */
	char *bytes; /* the attachment's msgpack; attachments slice into it */
	base_slice atts[SIO_MAX_ATTACHMENTS];
	size_t n_atts;
} cl_in;

typedef struct {
	char uid[CL_UID_MAX];
	uint64_t seen; /* loop time of its last message */
} cl_node;

struct cl_nsp {
	sio_namespace *nsp;
	char channel[128];
	int listening;     /* the LISTEN is in place */
	int greeted;       /* our first heartbeat went out */
	uint64_t last_pub; /* loop time of our last message on it */
	cl_node nodes[CL_MAX_NODES];
	unsigned n_nodes;
};

/* A request of this node waiting for the other nodes' responses. */
typedef struct cl_req {
	struct cl_req *next;
	sp_cluster *c;
	cl_nsp *cn;
	int type; /* CL_FETCH_SOCKETS, CL_SERVER_SIDE_EMIT or CL_BROADCAST */
	char id[17];
	sio_remote *req;
	uv_timer_t timer;
	char (*missing)[CL_UID_MAX]; /* the nodes that have not answered (broadcast: not counted) */
	unsigned n_missing;
	long long acks_left; /* broadcast: client acks announced and not yet received */
} cl_req;

struct sp_cluster {
	db_pool *db;
	uv_loop_t *loop;
	uv_timer_t cleanup;
	uv_timer_t beat;
	char uid[17];
	cl_nsp nsps[CL_MAX_NSPS];
	unsigned n_nsps;
	cl_out *out_head, *out_tail;
	size_t out_n, out_bytes;
	int publishing;
	cl_in *in_head, *in_tail;
	size_t in_n;
	cl_req *reqs;
	size_t n_reqs;
	unsigned refs; /* 1 for the owner, 1 per timer handle, 1 per pending query or answer */
	int closed;
	int warned_kind;
	sp_cluster_stats st;
};

/* cluster.c */
void cl__unref(sp_cluster *c);
cl_nsp *cl__find_nsp(sp_cluster *c, const char *name);
/** Publishes a message (JSON text, placeholders for atts) on cn: notified, or through the table. */
void cl__publish(sp_cluster *c, cl_nsp *cn, int type, const char *json, size_t len,
                 const base_slice *atts, size_t n_atts);
/** {rooms, except, flags} of b, flags.timeout set when timeout_ms is not 0. */
json_t *cl__opts_json(const sio_bcast *b, unsigned timeout_ms);
/** b from a message's {rooms, except, flags}, local; -1 when it has too many rooms. */
int cl__bcast_from(sio_bcast *b, sio_namespace *nsp, json_t *opts);

/* cluster_requests.c */
/** Counts a message from uid on cn as a sign of life (INITIAL_HEARTBEAT is answered). */
void cl__node_seen(sp_cluster *c, cl_nsp *cn, const char *uid);
/**
 * Handles a message about heartbeats, requests and responses; returns 0
 * when msg is none of those.
 */
int cl__request_msg(sp_cluster *c, cl_nsp *cn, json_t *msg, const base_slice *atts, size_t n_atts);
/** Our first heartbeat on cn, once its LISTEN is in place. */
void cl__greet(sp_cluster *c, cl_nsp *cn);
void cl__beat_tick(uv_timer_t *t);
/** Finishes every pending request (the cluster is closing). */
void cl__requests_close(sp_cluster *c);
void cl__fetch(sio_namespace *nsp, const sio_bcast *b, unsigned timeout_ms, sio_remote *req,
               void *ud);
void cl__server_emit(sio_namespace *nsp, base_slice packet, const base_slice *atts, size_t n_atts,
                     unsigned timeout_ms, sio_remote *req, void *ud);
void cl__bcast_ack(sio_namespace *nsp, const sio_bcast *b, base_slice packet,
                   const base_slice *atts, size_t n_atts, unsigned timeout_ms, sio_remote *req,
                   void *ud);

#endif
