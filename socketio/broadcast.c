/*
 * broadcast.c: broadcasts, what they target, and the adapter to other nodes.
 *
 * A broadcast is encoded once, by the server's parser, into shared Engine.IO
 * messages (one per wire message: the packet, then each attachment with the
 * default parser), and each receiver's write queue takes a reference to the
 * same bytes: no per-receiver copy or encode. A broadcast another node hands
 * in (sio_adapter_deliver) is encoded the same way.
 *
 * Who a broadcast reaches is decided in one place (each_target), for sends
 * and for the join / leave / disconnect operations alike: b's rooms (or the
 * whole namespace) minus its except rooms. Receivers are picked with an epoch
 * mark on each socket, so a socket in several target rooms is picked once
 * and the except rooms cost one pass; they are all picked, each with a
 * reference, before the first is acted on.
 */
#include <stdlib.h>

#include "server_internal.h"
#include "socketio_internal.h"

void sio_bcast_init(sio_bcast *b, sio_namespace *nsp)
{
	memset(b, 0, sizeof(*b));
	b->nsp = nsp;
}

int sio_bcast_to(sio_bcast *b, const char *room)
{
	if (b->n_rooms >= SIO_BCAST_MAX_ROOMS)
		return BASE_ELIMIT;
	b->rooms[b->n_rooms++] = room;
	return 0;
}

int sio_bcast_except(sio_bcast *b, const char *room)
{
	if (b->n_except >= SIO_BCAST_MAX_ROOMS)
		return BASE_ELIMIT;
	b->except[b->n_except++] = room;
	return 0;
}

/* ---- targets ----------------------------------------------------------- */

/*
 * The picked sockets, each holding a reference. Picking ends before the
 * first is acted on: acting runs user code (outgoing listeners, disconnect
 * listeners) that may broadcast again, join, leave or disconnect, and none
 * of that may change who this broadcast reaches or free what it walks.
 */
typedef struct {
	sio_socket **v;
	size_t n, cap;
	int heap;       /* v was malloc'ed (else it is a caller's array) */
	int is_scratch; /* v is the namespace's scratch array */
} sio_targets;

static int targets_push(sio_targets *t, sio_socket *s)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		sio_socket **q =
		    t->heap ? realloc(t->v, ncap * sizeof(*q)) : malloc(ncap * sizeof(*q));
		if (!q)
			return BASE_ENOMEM;
		if (!t->heap && t->n)
			memcpy(q, t->v, t->n * sizeof(*q));
		t->v = q;
		t->cap = ncap;
		t->heap = 1;
	}
	s->refs++;
	t->v[t->n++] = s;
	return 0;
}

static void gather(const sio_bcast *b, sio_targets *t)
{
	sio_namespace *nsp = b->nsp;
	base_list *pos;
	nsp->bcast_epoch += 2;
	if (nsp->bcast_epoch == 0)
		nsp->bcast_epoch = 2;
	uint32_t excluded = nsp->bcast_epoch, taken = nsp->bcast_epoch + 1;
	for (unsigned i = 0; i < b->n_except; i++) {
		sio_room *r = sio__room_find(nsp, b->except[i], strlen(b->except[i]));
		for (pos = r ? r->members.next : NULL; r && pos != &r->members; pos = pos->next)
			BASE_CONTAINER_OF(pos, sio_membership, room_link)->s->bcast_mark = excluded;
	}
	for (unsigned i = 0; i < (b->n_rooms ? b->n_rooms : 1); i++) {
		base_list *head = &nsp->sockets;
		int by_room = b->n_rooms > 0;
		if (by_room) {
			sio_room *r = sio__room_find(nsp, b->rooms[i], strlen(b->rooms[i]));
			if (!r)
				continue;
			head = &r->members;
		}
		for (pos = head->next; pos != head; pos = pos->next) {
			sio_socket *s = by_room
			                    ? BASE_CONTAINER_OF(pos, sio_membership, room_link)->s
			                    : BASE_CONTAINER_OF(pos, sio_socket, nsp_link);
			if (s->bcast_mark == excluded || s->bcast_mark == taken ||
			    s->state != SIO_SOCK_CONNECTED)
				continue;
			s->bcast_mark = taken;
			if (targets_push(t, s))
				return;
		}
	}
}

/*
 * Picks the sockets b targets, then calls fn on each (in the order picked),
 * and drops the references. The namespace's scratch array holds the picks,
 * or, when a broadcast inside this one's callbacks holds it, a stack array
 * that grows to the heap. Returns the sum of what fn returned.
 */
static int each_target(const sio_bcast *b, int (*fn)(sio_socket *s, void *ctx), void *ctx)
{
	sio_namespace *nsp = b->nsp;
	sio_socket *local[32];
	sio_targets t;
	if (!nsp->scratch_busy) {
		nsp->scratch_busy = 1;
		t = (sio_targets){nsp->scratch, 0, nsp->scratch_cap, nsp->scratch != NULL, 1};
	} else {
		t = (sio_targets){local, 0, BASE_ARRAY_SIZE(local), 0, 0};
	}
	gather(b, &t);
	int sum = 0;
	for (size_t i = 0; i < t.n; i++)
		sum += fn(t.v[i], ctx);
	for (size_t i = 0; i < t.n; i++)
		sio__socket_unref(t.v[i]);
	if (t.is_scratch) {
		/* Back to the namespace, maybe grown. */
		nsp->scratch = t.v;
		nsp->scratch_cap = t.cap;
		nsp->scratch_busy = 0;
	} else if (t.heap) {
		free(t.v);
	}
	return sum;
}

/* sio__bcast_each: fn on each connected target (socketio/cluster.c). */
typedef struct {
	void (*fn)(sio_socket *s, void *ud);
	void *ud;
} sio_each_ctx;

static int each_connected(sio_socket *s, void *ctx)
{
	const sio_each_ctx *e = ctx;
	if (s->state != SIO_SOCK_CONNECTED)
		return 0;
	e->fn(s, e->ud);
	return 1;
}

size_t sio__bcast_each(const sio_bcast *b, void (*fn)(sio_socket *s, void *ud), void *ud)
{
	sio_each_ctx e = {fn, ud};
	return (size_t)each_target(b, each_connected, &e);
}

/* ---- sending ----------------------------------------------------------- */

/* A broadcast encoded once: one shared message per wire message. */
typedef struct {
	const sio_bcast *b;
	const sio_out *out;
	int notify; /* an event of this node: the outgoing listeners hear it */
	eio_msg *msgs[1 + SIO_MAX_ATTACHMENTS];
	size_t n_msgs;
} sio_shared;

static void shared_free(sio_shared *e)
{
	for (size_t i = 0; i < e->n_msgs; i++)
		eio_msg_unref(e->msgs[i]);
	e->n_msgs = 0;
}

static int shared_encode(sio_server *srv, sio_shared *e)
{
	sio_wire w;
	int rc = sio__encode(srv->parser, e->out, &w);
	for (size_t i = 0; i < w.n_msgs && !rc; i++) {
		e->msgs[i] = eio_msg_new(w.msgs[i].binary, w.msgs[i].parts, w.msgs[i].n_parts);
		if (!e->msgs[i])
			rc = BASE_ENOMEM;
		else
			e->n_msgs = i + 1;
	}
	sio__wire_free(&w);
	if (rc)
		shared_free(e);
	return rc;
}

static int send_one(sio_socket *s, void *ctx)
{
	const sio_shared *e = ctx;
	if (!s->client || s->client->closed || s->state != SIO_SOCK_CONNECTED)
		return 0;
	eio_socket *es = s->client->eio;
	if (e->b->is_volatile && !eio_socket_writable(es))
		return 0;
	if (e->notify) {
		const sio_out *o = e->out;
		sio__notify_outgoing(s, o->event.base, o->args, o->atts, o->n_atts);
	}
	if (eio_socket_send_msg(es, e->msgs[0]))
		return 0;
	for (size_t i = 1; i < e->n_msgs; i++)
		eio_socket_send_msg(es, e->msgs[i]);
	return 1;
}

/* Encodes out once and sends it to the local sockets b targets; the count, or an error. */
static int deliver_local(const sio_bcast *b, const sio_out *out, int notify)
{
	sio_server *srv = b->nsp->srv;
	sio_shared e = {b, out, notify, {0}, 0};
	int rc = shared_encode(srv, &e);
	if (rc)
		return rc;
	int count = each_target(b, send_one, &e);
	shared_free(&e);
	srv->stats.broadcasts++;
	srv->stats.deliveries += (uint64_t)count;
	return count;
}

int sio_bcast_emit(const sio_bcast *b, const char *event, base_slice args,
                   const base_slice *attachments, size_t n_attachments)
{
	sio_namespace *nsp = b->nsp;
	if (n_attachments > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;

	/* With recovery on, the event gets an offset and is kept for a while. */
	base_buf with_offset = BASE_BUF_INIT;
	uint64_t offset = 0;
	if (nsp->srv->opts.recovery_ms && !b->is_volatile) {
		char off[24];
		offset = sio__history_next(nsp, off);
		if (args.len)
			base_buf_append(&with_offset, args.base, args.len);
		base_buf_printf(&with_offset, "%s\"%s\"", args.len ? "," : "", off);
		args = (base_slice){with_offset.data, with_offset.len};
	}
	sio_out out = {.type = SIO_EVENT,
	               .nsp = {nsp->name, nsp->name_len},
	               .id = -1,
	               .event = {event, strlen(event)},
	               .args = args,
	               .atts = attachments,
	               .n_atts = n_attachments};
	if (offset)
		sio__history_store(nsp, b, offset, &out);
	int rc = deliver_local(b, &out, 1);
	if (rc >= 0 && !b->local && nsp->adapter.on_broadcast) {
		base_buf data = BASE_BUF_INIT;
		sio__out_data(&data, &out);
		nsp->adapter.on_broadcast(nsp, b, (base_slice){data.data, data.len}, attachments,
		                          n_attachments, nsp->adapter.ud);
		base_buf_free(&data);
	}
	base_buf_free(&with_offset);
	return rc;
}

/* ---- join, leave, disconnect what a broadcast targets ------------------- */

typedef struct {
	sio_sockets_op op;
	const char *room;
} sio_sockets_req;

static int apply_one(sio_socket *s, void *ctx)
{
	const sio_sockets_req *r = ctx;
	if (s->state == SIO_SOCK_CONNECTED) {
		if (r->op == SIO_SOCKETS_JOIN)
			sio_join(s, r->room);
		else if (r->op == SIO_SOCKETS_LEAVE)
			sio_leave(s, r->room);
		else if (r->op == SIO_SOCKETS_DISCONNECT)
			sio_disconnect(s);
		else
			sio_disconnect_all(s);
	}
	return 1; /* counted when picked, even if gone by its turn */
}

static int apply_local(const sio_bcast *b, sio_sockets_op op, const char *room)
{
	sio_sockets_req r = {op, room};
	return each_target(b, apply_one, &r);
}

static int sockets_op(const sio_bcast *b, sio_sockets_op op, const char *room)
{
	sio_namespace *nsp = b->nsp;
	/* The other nodes first: b's rooms may be ours to change below. */
	if (!b->local && nsp->adapter.on_sockets)
		nsp->adapter.on_sockets(nsp, b, op, room, nsp->adapter.ud);
	return apply_local(b, op, room);
}

int sio_bcast_join(const sio_bcast *b, const char *room)
{
	return room ? sockets_op(b, SIO_SOCKETS_JOIN, room) : BASE_EINVAL;
}

int sio_bcast_leave(const sio_bcast *b, const char *room)
{
	return room ? sockets_op(b, SIO_SOCKETS_LEAVE, room) : BASE_EINVAL;
}

int sio_bcast_disconnect(const sio_bcast *b, int close)
{
	return sockets_op(b, close ? SIO_SOCKETS_CLOSE : SIO_SOCKETS_DISCONNECT, NULL);
}

int sio_adapter_sockets(const sio_bcast *b, sio_sockets_op op, const char *room)
{
	if ((op == SIO_SOCKETS_JOIN || op == SIO_SOCKETS_LEAVE) && !room)
		return BASE_EINVAL;
	if (op < SIO_SOCKETS_JOIN || op > SIO_SOCKETS_CLOSE)
		return BASE_EINVAL;
	return apply_local(b, op, room);
}

/* ---- adapter ----------------------------------------------------------- */

void sio_set_adapter(sio_namespace *nsp, const sio_adapter *adapter)
{
	if (adapter)
		nsp->adapter = *adapter;
	else
		memset(&nsp->adapter, 0, sizeof(nsp->adapter));
}

int sio_adapter_deliver(const sio_bcast *b, base_slice data, const base_slice *attachments,
                        size_t n_attachments)
{
	if (n_attachments > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;
	/* The same checks as an event from a client: an array starting with a name. */
	sio_packet p = {.type = SIO_EVENT, .nsp = {b->nsp->name, b->nsp->name_len}, .data = data};
	const char *err;
	if (!data.len || sio__packet_check_data(&p, &err) ||
	    (n_attachments && !sio__placeholders_valid(data, n_attachments)))
		return SIO_EBAD_ARGS;
	sio_out out = {.type = SIO_EVENT,
	               .nsp = p.nsp,
	               .id = -1,
	               .event = p.event,
	               .event_escaped = p.event_escaped,
	               .args = p.args,
	               .atts = attachments,
	               .n_atts = n_attachments};
	return deliver_local(b, &out, 0);
}
