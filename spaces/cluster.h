/*
 * cluster.h: broadcasts between server processes over PostgreSQL.
 *
 * Several processes (ours, or Node.js servers using @socket.io/postgres-
 * adapter) that share one database carry each other's broadcasts: every
 * broadcast of an attached namespace is published with pg_notify on the
 * channel "socket.io#<namespace>" as the JSON message the Node adapter
 * sends ({uid, nsp, type: 3, data: {packet, opts: {rooms, except, flags}}}),
 * or, when it has binary attachments or is 8000 bytes or more, as msgpack
 * in the table socket_io_attachments with only {uid, nsp, type,
 * attachmentId} in the notification. Broadcasts the other nodes publish are
 * delivered to this process's sockets.
 *
 * Order: messages leave in the order they were broadcast (one transaction
 * at a time, queued ones batched into the next) and are delivered in the
 * order they arrived (one waiting for its attachment holds back the rest).
 *
 * Supported, both ways (this node asks and answers; the Node adapter's
 * message types, request ids and responses): broadcasts to everyone, to
 * rooms, except rooms, volatile; socketsJoin / socketsLeave /
 * disconnectSockets (sio_bcast_join, _leave, _disconnect); fetchSockets
 * (sio_fetch_sockets); serverSideEmit with and without acknowledgements
 * (sio_server_side_emit, sio_on_server_side_emit); broadcasts with
 * acknowledgements (sio_bcast_emit_ack). Heartbeats: a first one once the
 * LISTEN is in place, then one whenever this node has published nothing on
 * a namespace for 5 s, so Node nodes count this one (serverCount) and wait
 * for its answers; the other nodes are known by their messages (forgotten
 * after 10 s of silence or their ADAPTER_CLOSE, which this node sends when
 * freed) and a request waits for those known when it was made, at most its
 * timeout. Messages of @socket.io/postgres-emitter (uid "emitter", no
 * namespace: the channel's) are delivered like a node's.
 */
#ifndef SPACES_CLUSTER_H
#define SPACES_CLUSTER_H

#include "socketio.h"
#include "db/db.h"

typedef struct sp_cluster sp_cluster;

typedef struct {
	uint64_t published; /* messages notified (directly or with an attachment) */
	uint64_t delivered; /* messages from other nodes delivered to local sockets */
	uint64_t ignored;   /* messages from other nodes of a kind not supported */
	uint64_t dropped;   /* lost: queue full, database error, bad message */
	uint64_t requests;  /* requests of this node sent to the others (fetch, emit, acks) */
	uint64_t timeouts;  /* of those, finished by their timeout with answers missing */
	uint64_t answered;  /* the other nodes' requests this node answered */
} sp_cluster_stats;

/**
 * Creates the adapter on db (its table is created when missing). Returns
 * NULL on ENOMEM.
 */
sp_cluster *sp_cluster_new(db_pool *db, uv_loop_t *loop);
/** Carries nsp's broadcasts to and from the other nodes. 0, BASE_ENOMEM or BASE_ELIMIT. */
int sp_cluster_attach(sp_cluster *c, sio_namespace *nsp);
/** 1 once every attached namespace's LISTEN is in place (broadcasts from others arrive). */
int sp_cluster_ready(const sp_cluster *c);
/** This node's id in the messages (16 hex digits). */
const char *sp_cluster_uid(const sp_cluster *c);
void sp_cluster_stats_get(const sp_cluster *c, sp_cluster_stats *st);
/** The other nodes this one knows on namespace nsp (Node's serverCount() is this plus one). */
unsigned sp_cluster_nodes(sp_cluster *c, const char *nsp);
/**
 * Detaches from every namespace and stops; what is queued is dropped. The
 * memory goes once no database answer is pending. Call before the
 * Socket.IO server and the pool are freed.
 */
void sp_cluster_free(sp_cluster *c);

#endif
