/*
 * cluster_requests.c: heartbeats, the other nodes known, and requests
 * across nodes (fetchSockets, serverSideEmit with and without acks,
 * broadcasts with acks) in the wire format of socket.io-adapter's
 * ClusterAdapterWithHeartbeat, which @socket.io/postgres-adapter uses: both
 * the requests this node makes and its answers to the others'.
 *
 * Nodes: every message from another node (its uid; the emitter's "emitter"
 * is no node) on a namespace's channel marks that node alive there; one
 * silent for 10 s, or that said ADAPTER_CLOSE, is forgotten. A request
 * expects an answer from each node known when it was made, and finishes
 * when all answered, when the missing ones are forgotten, or at its
 * timeout. Node's adapters do the same with our heartbeats, which go out
 * when this node has published nothing on a namespace for 5 s.
 */
#include <stdlib.h>
#include <string.h>

#include "cluster_internal.h"

#define CL_DEFAULT_TIMEOUT_MS 5000

/* ---- message text ---------------------------------------------------------- */

/* {"uid":"<ours>","nsp":<name>,"type":<type> and, when data, ,"data":{ (left open). */
static void head(base_buf *b, sp_cluster *c, cl_nsp *cn, int type, int data)
{
	const char *name = sio_namespace_name(cn->nsp);

	base_buf_printf(b, "{\"uid\":\"%s\",\"nsp\":", c->uid);
	sio_json_append_string(b, name, strlen(name));
	base_buf_printf(b, ",\"type\":%d%s", type, data ? ",\"data\":{" : "");
}

static void send_text(sp_cluster *c, cl_nsp *cn, int type, base_buf *b, const base_slice *atts,
                      size_t n_atts)
{
	if (b->data == NULL) {
		c->st.dropped++;
		return;
	}
	cl__publish(c, cn, type, b->data, b->len, atts, n_atts);
}

static void heartbeat(sp_cluster *c, cl_nsp *cn, int type)
{
	base_buf b = BASE_BUF_INIT;

	head(&b, c, cn, type, 0);
	base_buf_append(&b, "}", 1);
	send_text(c, cn, type, &b, NULL, 0);
	base_buf_free(&b);
}

/* A JSON value as compact text (NULL: null). The caller frees it. */
static char *dump(const json_t *v)
{
	return json_dumps(v ? v : json_null(), JSON_COMPACT | JSON_ENCODE_ANY);
}

/* ---- nodes ----------------------------------------------------------------- */

static void req_node_gone(cl_req *r, const char *uid);

static void node_remove(sp_cluster *c, cl_nsp *cn, unsigned i)
{
	char uid[CL_UID_MAX];

	memcpy(uid, cn->nodes[i].uid, sizeof(uid));
	cn->nodes[i] = cn->nodes[--cn->n_nodes];
	/* Requests waiting for it stop waiting; a finished one leaves the list. */
	for (cl_req *r = c->reqs, *next; r != NULL; r = next) {
		next = r->next;
		if (r->cn == cn)
			req_node_gone(r, uid);
	}
}

static void prune(sp_cluster *c, cl_nsp *cn)
{
	uint64_t now = uv_now(c->loop);

	for (unsigned i = cn->n_nodes; i-- > 0;) {
		if (i < cn->n_nodes && now - cn->nodes[i].seen > CL_NODE_TIMEOUT_MS)
			node_remove(c, cn, i);
	}
}

void cl__node_seen(sp_cluster *c, cl_nsp *cn, const char *uid)
{
	size_t len = strlen(uid);

	if (len == 0 || len >= CL_UID_MAX || strcmp(uid, c->uid) == 0 ||
	    strcmp(uid, CL_EMITTER_UID) == 0)
		return;
	for (unsigned i = 0; i < cn->n_nodes; i++) {
		if (strcmp(cn->nodes[i].uid, uid) == 0) {
			cn->nodes[i].seen = uv_now(c->loop);
			return;
		}
	}
	if (cn->n_nodes == CL_MAX_NODES)
		return;
	memcpy(cn->nodes[cn->n_nodes].uid, uid, len + 1);
	cn->nodes[cn->n_nodes].seen = uv_now(c->loop);
	cn->n_nodes++;
}

static void node_closed(sp_cluster *c, cl_nsp *cn, const char *uid)
{
	for (unsigned i = 0; uid && i < cn->n_nodes; i++) {
		if (strcmp(cn->nodes[i].uid, uid) == 0) {
			node_remove(c, cn, i);
			return;
		}
	}
}

void cl__greet(sp_cluster *c, cl_nsp *cn)
{
	if (cn->greeted || c->closed)
		return;
	cn->greeted = 1;
	heartbeat(c, cn, CL_HEARTBEAT_FIRST);
}

void cl__beat_tick(uv_timer_t *t)
{
	sp_cluster *c = t->data;
	uint64_t now = uv_now(c->loop);

	if (c->closed)
		return;
	for (unsigned i = 0; i < c->n_nsps; i++) {
		cl_nsp *cn = &c->nsps[i];

		prune(c, cn);
		if (cn->greeted && now - cn->last_pub >= CL_HEARTBEAT_MS)
			heartbeat(c, cn, CL_HEARTBEAT);
	}
}

unsigned sp_cluster_nodes(sp_cluster *c, const char *nsp)
{
	cl_nsp *cn = cl__find_nsp(c, nsp);

	if (cn == NULL)
		return 0;
	prune(c, cn);
	return cn->n_nodes;
}

/* ---- this node's requests -------------------------------------------------- */

static void req_closed(uv_handle_t *h)
{
	cl_req *r = h->data;
	sp_cluster *c = r->c;

	free(r->missing);
	free(r);
	cl__unref(c);
}

static void req_finish(cl_req *r, int err)
{
	sp_cluster *c = r->c;
	sio_remote *q = r->req;

	for (cl_req **pp = &c->reqs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	c->n_reqs--;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, req_closed);
	sio_remote_done(q, err);
}

static void req_check(cl_req *r)
{
	if (r->n_missing == 0 && (r->type != CL_BROADCAST || r->acks_left <= 0))
		req_finish(r, 0);
}

/* 1 when uid was still to answer r (it is not any more). */
static int missing_take(cl_req *r, const char *uid)
{
	for (unsigned i = 0; uid && i < r->n_missing; i++) {
		if (strcmp(r->missing[i], uid) == 0) {
			memcpy(r->missing[i], r->missing[--r->n_missing], CL_UID_MAX);
			return 1;
		}
	}
	return 0;
}

static void req_node_gone(cl_req *r, const char *uid)
{
	if (missing_take(r, uid))
		req_check(r);
}

static void req_timeout(uv_timer_t *t)
{
	cl_req *r = t->data;

	r->c->st.timeouts++;
	req_finish(r, SIO_ETIMEDOUT);
}

static cl_req *req_find(sp_cluster *c, const char *id)
{
	for (cl_req *r = c->reqs; id && r != NULL; r = r->next) {
		if (strcmp(r->id, id) == 0)
			return r;
	}
	return NULL;
}

/* A request expecting an answer from every node known on cn now; NULL past the bound. */
static cl_req *req_new(sp_cluster *c, cl_nsp *cn, int type, sio_remote *q, unsigned timeout_ms)
{
	unsigned char rnd[8];
	cl_req *r;

	if (c->n_reqs >= CL_MAX_REQUESTS || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if (cn->n_nodes > 0 && (r->missing = malloc(cn->n_nodes * sizeof(*r->missing))) == NULL) {
		free(r);
		return NULL;
	}
	for (unsigned i = 0; i < cn->n_nodes; i++)
		memcpy(r->missing[i], cn->nodes[i].uid, CL_UID_MAX);
	r->n_missing = cn->n_nodes;
	r->c = c;
	r->cn = cn;
	r->type = type;
	r->req = q;
	base_random_bytes(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(r->id + 2 * i, 3, "%02x", rnd[i]);
	uv_timer_init(c->loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, req_timeout, timeout_ms ? timeout_ms : CL_DEFAULT_TIMEOUT_MS, 0);
	c->refs++;
	r->next = c->reqs;
	c->reqs = r;
	c->n_reqs++;
	c->st.requests++;
	return r;
}

void cl__requests_close(sp_cluster *c)
{
	while (c->reqs != NULL)
		req_finish(c->reqs, BASE_ECLOSED);
}

/* The namespace's cluster state, or NULL (then q is finished: nobody else to ask). */
static cl_nsp *usable(sp_cluster *c, sio_namespace *nsp, sio_remote *q)
{
	cl_nsp *cn = c->closed ? NULL : cl__find_nsp(c, sio_namespace_name(nsp));

	if (cn == NULL && q != NULL)
		sio_remote_done(q, 0);
	return cn;
}

/*
 * A request that other nodes answer: none (q is answered at once with an
 * empty list, as Node does), or a new request, or NULL when too many are
 * pending (q is answered with BASE_ELIMIT).
 */
static cl_req *req_begin(sp_cluster *c, cl_nsp *cn, int kind, sio_remote *q, unsigned timeout_ms)
{
	cl_req *r;

	prune(c, cn);
	if (cn->n_nodes == 0) {
		sio_remote_done(q, 0);
		return NULL;
	}
	if ((r = req_new(c, cn, kind, q, timeout_ms)) == NULL)
		sio_remote_done(q, BASE_ELIMIT);
	return r;
}

void cl__fetch(sio_namespace *nsp, const sio_bcast *b, unsigned timeout_ms, sio_remote *q, void *ud)
{
	sp_cluster *c = ud;
	cl_nsp *cn = usable(c, nsp, q);
	base_buf t = BASE_BUF_INIT;
	json_t *opts;
	char *text;
	cl_req *r;

	if (cn == NULL || (r = req_begin(c, cn, CL_FETCH_SOCKETS, q, timeout_ms)) == NULL)
		return;
	opts = cl__opts_json(b, timeout_ms);
	text = dump(opts);
	head(&t, c, cn, CL_FETCH_SOCKETS, 1);
	base_buf_printf(&t, "\"opts\":%s,\"requestId\":\"%s\"}}", text ? text : "{}", r->id);
	send_text(c, cn, CL_FETCH_SOCKETS, &t, NULL, 0);
	base_buf_free(&t);
	free(text);
	json_decref(opts);
}

void cl__server_emit(sio_namespace *nsp, base_slice packet, const base_slice *atts, size_t n_atts,
                     unsigned timeout_ms, sio_remote *q, void *ud)
{
	sp_cluster *c = ud;
	cl_nsp *cn = usable(c, nsp, q);
	base_buf t = BASE_BUF_INIT;
	cl_req *r = NULL;

	if (cn == NULL)
		return;
	if (q != NULL && (r = req_begin(c, cn, CL_SERVER_SIDE_EMIT, q, timeout_ms)) == NULL)
		return;
	head(&t, c, cn, CL_SERVER_SIDE_EMIT, 1);
	if (r != NULL)
		base_buf_printf(&t, "\"requestId\":\"%s\",", r->id);
	base_buf_append(&t, "\"packet\":", 9);
	base_buf_append(&t, packet.base, packet.len);
	base_buf_append(&t, "}}", 2);
	send_text(c, cn, CL_SERVER_SIDE_EMIT, &t, atts, n_atts);
	base_buf_free(&t);
}

void cl__bcast_ack(sio_namespace *nsp, const sio_bcast *b, base_slice packet,
                   const base_slice *atts, size_t n_atts, unsigned timeout_ms, sio_remote *q,
                   void *ud)
{
	sp_cluster *c = ud;
	cl_nsp *cn = usable(c, nsp, q);
	const char *name = sio_namespace_name(nsp);
	base_buf t = BASE_BUF_INIT;
	json_t *opts;
	char *text;
	cl_req *r;

	if (cn == NULL)
		return;
	prune(c, cn);
	if ((r = req_new(c, cn, CL_BROADCAST, q, timeout_ms)) == NULL) {
		sio_remote_done(q, BASE_ELIMIT);
		return;
	}
	/* Published even when no node is known: one may be there already and deliver it. */
	opts = cl__opts_json(b, timeout_ms);
	text = dump(opts);
	head(&t, c, cn, CL_BROADCAST, 1);
	base_buf_append(&t, "\"packet\":{\"type\":2,\"data\":", 26);
	base_buf_append(&t, packet.base, packet.len);
	base_buf_append(&t, ",\"nsp\":", 7);
	sio_json_append_string(&t, name, strlen(name));
	base_buf_printf(&t, "},\"requestId\":\"%s\",\"opts\":%s}}", r->id, text ? text : "{}");
	send_text(c, cn, CL_BROADCAST, &t, atts, n_atts);
	base_buf_free(&t);
	free(text);
	json_decref(opts);
	req_check(r);
}

/* ---- answers to the other nodes' requests ----------------------------------- */

/* Where an answer goes: the namespace and the request's id (as JSON text). */
typedef struct {
	sp_cluster *c;
	cl_nsp *cn;
	char *rid;
} cl_answer;

static cl_answer *answer_new(sp_cluster *c, cl_nsp *cn, json_t *rid)
{
	cl_answer *a = malloc(sizeof(*a));

	if (a == NULL || (a->rid = dump(rid)) == NULL) {
		free(a);
		return NULL;
	}
	a->c = c;
	a->cn = cn;
	c->refs++;
	return a;
}

static void answer_free(cl_answer *a)
{
	sp_cluster *c = a->c;

	free(a->rid);
	free(a);
	cl__unref(c);
}

/* {"requestId":<rid>, then the rest of data; "packet":<value> for a value. */
static void answer_value(cl_answer *a, int type, const sio_value *v)
{
	base_buf t = BASE_BUF_INIT;

	if (a->c->closed)
		return;
	head(&t, a->c, a->cn, type, 1);
	base_buf_printf(&t, "\"requestId\":%s,\"packet\":", a->rid);
	base_buf_append(&t, v->json.base, v->json.len);
	base_buf_append(&t, "}}", 2);
	send_text(a->c, a->cn, type, &t, v->attachments, v->n_attachments);
	base_buf_free(&t);
}

static void fetch_answered(int err, const sio_socket_desc *v, size_t n, void *ud)
{
	cl_answer *a = ud;
	base_buf t = BASE_BUF_INIT;

	(void)err;
	head(&t, a->c, a->cn, CL_FETCH_SOCKETS_RESPONSE, 1);
	base_buf_printf(&t, "\"requestId\":%s,\"sockets\":[", a->rid);
	for (size_t i = 0; i < n; i++) {
		base_buf_append(&t, i ? ",{\"id\":" : "{\"id\":", i ? 7 : 6);
		sio_json_append_string(&t, v[i].id, strlen(v[i].id));
		base_buf_append(&t, ",\"handshake\":", 13);
		base_buf_append(&t, v[i].handshake.base, v[i].handshake.len);
		base_buf_append(&t, ",\"rooms\":", 9);
		base_buf_append(&t, v[i].rooms.base, v[i].rooms.len);
		base_buf_append(&t, ",\"data\":", 8);
		base_buf_append(&t, v[i].data.base, v[i].data.len);
		base_buf_append(&t, "}", 1);
	}
	base_buf_append(&t, "]}}", 3);
	a->c->st.answered++;
	send_text(a->c, a->cn, CL_FETCH_SOCKETS_RESPONSE, &t, NULL, 0);
	base_buf_free(&t);
}

static void answer_fetch(sp_cluster *c, cl_nsp *cn, json_t *data)
{
	cl_answer a = {c, cn, dump(json_object_get(data, "requestId"))};
	sio_bcast b;

	/* Too many rooms: nothing matches here, but the requester still hears from us. */
	if (a.rid != NULL) {
		if (cl__bcast_from(&b, cn->nsp, json_object_get(data, "opts")) != 0)
			fetch_answered(0, NULL, 0, &a);
		else if (sio_fetch_sockets(&b, 0, fetch_answered, &a) != 0)
			c->st.dropped++;
	}
	free(a.rid);
}

static void server_event_reply(void *rctx, const sio_value *v)
{
	cl_answer *a = rctx;

	if (v != NULL) {
		a->c->st.answered++;
		answer_value(a, CL_SERVER_SIDE_EMIT_RESPONSE, v);
	}
	answer_free(a);
}

static void answer_server_emit(sp_cluster *c, cl_nsp *cn, json_t *data, const base_slice *atts,
                               size_t n_atts)
{
	json_t *rid = json_object_get(data, "requestId");
	char *packet = dump(json_object_get(data, "packet"));
	cl_answer *a = NULL;

	if (packet == NULL || (rid != NULL && (a = answer_new(c, cn, rid)) == NULL)) {
		c->st.dropped++;
		free(packet);
		return;
	}
	if (sio_adapter_server_event(cn->nsp, (base_slice){packet, strlen(packet)}, atts, n_atts,
	                             a ? server_event_reply : NULL, a) != 0) {
		c->st.dropped++;
		if (a != NULL)
			answer_free(a);
	}
	free(packet);
}

static void bcast_counted(void *rctx, size_t n)
{
	cl_answer *a = rctx;
	base_buf t = BASE_BUF_INIT;

	if (a->c->closed)
		return;
	a->c->st.answered++;
	head(&t, a->c, a->cn, CL_BROADCAST_CLIENT_COUNT, 1);
	base_buf_printf(&t, "\"requestId\":%s,\"clientCount\":%zu}}", a->rid, n);
	send_text(a->c, a->cn, CL_BROADCAST_CLIENT_COUNT, &t, NULL, 0);
	base_buf_free(&t);
}

static void bcast_acked(void *rctx, const sio_value *v)
{
	cl_answer *a = rctx;

	if (v == NULL)
		answer_free(a);
	else
		answer_value(a, CL_BROADCAST_ACK, v);
}

static void answer_bcast_ack(sp_cluster *c, cl_nsp *cn, json_t *data, const base_slice *atts,
                             size_t n_atts)
{
	json_t *opts = json_object_get(data, "opts");
	json_t *timeout = json_object_get(json_object_get(opts, "flags"), "timeout");
	char *packet = dump(json_object_get(json_object_get(data, "packet"), "data"));
	cl_answer *a = answer_new(c, cn, json_object_get(data, "requestId"));
	unsigned ms = json_is_integer(timeout) && json_integer_value(timeout) > 0 &&
	                      json_integer_value(timeout) < 86400000
	                  ? (unsigned)json_integer_value(timeout)
	                  : CL_DEFAULT_TIMEOUT_MS;
	sio_bcast b;

	if (a == NULL || packet == NULL) {
		c->st.dropped++;
		goto out;
	}
	if (cl__bcast_from(&b, cn->nsp, opts) != 0 ||
	    sio_adapter_bcast_ack(&b, (base_slice){packet, strlen(packet)}, atts, n_atts, ms,
	                          bcast_counted, bcast_acked, a) != 0) {
		/* Nothing sent here: say so, or the requester waits for its timeout. */
		bcast_counted(a, 0);
		c->st.dropped++;
		answer_free(a);
	}
	a = NULL;
out:
	if (a != NULL)
		answer_free(a);
	free(packet);
}

/* ---- responses to this node's requests ---------------------------------------- */

static void on_response(sp_cluster *c, cl_nsp *cn, int type, const char *uid, json_t *data,
                        const base_slice *atts, size_t n_atts)
{
	cl_req *r = req_find(c, json_string_value(json_object_get(data, "requestId")));
	json_t *v;
	size_t i;

	if (r == NULL || r->cn != cn)
		return; /* another node's, or one that finished */
	if (type == CL_FETCH_SOCKETS_RESPONSE && r->type == CL_FETCH_SOCKETS) {
		if (!missing_take(r, uid))
			return;
		json_array_foreach(json_object_get(data, "sockets"), i, v)
		{
			const char *id = json_string_value(json_object_get(v, "id"));
			char *hs = dump(json_object_get(v, "handshake"));
			char *rooms = dump(json_object_get(v, "rooms"));
			char *sdata = dump(json_object_get(v, "data"));

			if (id && hs && rooms && sdata) {
				sio_socket_desc d = {id,
				                     {hs, strlen(hs)},
				                     {rooms, strlen(rooms)},
				                     {sdata, strlen(sdata)},
				                     NULL};

				sio_remote_add_sockets(r->req, &d, 1);
			}
			free(hs);
			free(rooms);
			free(sdata);
		}
	} else if (type == CL_SERVER_SIDE_EMIT_RESPONSE && r->type == CL_SERVER_SIDE_EMIT) {
		char *value = dump(json_object_get(data, "packet"));

		if (!missing_take(r, uid) || value == NULL) {
			free(value);
			return;
		}
		sio_value sv = {{value, strlen(value)}, atts, n_atts};
		sio_remote_add_replies(r->req, &sv, 1);
		free(value);
	} else if (type == CL_BROADCAST_CLIENT_COUNT && r->type == CL_BROADCAST) {
		json_t *n = json_object_get(data, "clientCount");

		if (!missing_take(r, uid))
			return;
		r->acks_left += json_is_integer(n) ? (long long)json_integer_value(n) : 0;
	} else if (type == CL_BROADCAST_ACK && r->type == CL_BROADCAST) {
		char *value = dump(json_object_get(data, "packet"));

		if (value == NULL)
			return;
		sio_value sv = {{value, strlen(value)}, atts, n_atts};
		sio_remote_add_replies(r->req, &sv, 1);
		free(value);
		r->acks_left--;
	} else {
		return;
	}
	req_check(r);
}

int cl__request_msg(sp_cluster *c, cl_nsp *cn, json_t *msg, const base_slice *atts, size_t n_atts)
{
	json_t *data = json_object_get(msg, "data");
	const char *uid = json_string_value(json_object_get(msg, "uid"));
	int type = (int)json_integer_value(json_object_get(msg, "type"));

	switch (type) {
	case CL_HEARTBEAT_FIRST:
		/* A node that just started: it learns of us at once. */
		heartbeat(c, cn, CL_HEARTBEAT);
		return 1;
	case CL_HEARTBEAT:
		return 1;
	case CL_ADAPTER_CLOSE:
		node_closed(c, cn, uid);
		return 1;
	case CL_BROADCAST:
		if (json_object_get(data, "requestId") == NULL)
			return 0; /* a plain broadcast */
		answer_bcast_ack(c, cn, data, atts, n_atts);
		return 1;
	case CL_FETCH_SOCKETS:
		answer_fetch(c, cn, data);
		return 1;
	case CL_SERVER_SIDE_EMIT:
		answer_server_emit(c, cn, data, atts, n_atts);
		return 1;
	case CL_FETCH_SOCKETS_RESPONSE:
	case CL_SERVER_SIDE_EMIT_RESPONSE:
	case CL_BROADCAST_CLIENT_COUNT:
	case CL_BROADCAST_ACK:
		on_response(c, cn, type, uid, data, atts, n_atts);
		return 1;
	default:
		return 0;
	}
}
