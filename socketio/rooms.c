/*
 * rooms.c: rooms, broadcasts and the adapter to other nodes.
 *
 * A room is a list of memberships; a socket also lists its own, so join,
 * leave and leaving everything are O(1) per room. A broadcast is encoded
 * once into shared Engine.IO messages, and each receiver's write queue
 * takes a reference to the same bytes. Receivers are picked with an epoch
 * mark on each socket, so a socket in several target rooms gets one copy
 * and the except rooms cost one pass; they are all picked, each with a
 * reference, before the first is sent to (see gather).
 */
#include <stdlib.h>

#include "server_internal.h"

sio_room *sio__room_find(sio_namespace *nsp, const char *name, size_t len)
{
	size_t h = base_table_hash(name, len);
	for (base_table_link *l = base_table_bucket(&nsp->rooms, h); l; l = l->next) {
		sio_room *r = BASE_CONTAINER_OF(l, sio_room, hlink);
		if (l->hash == h && r->name_len == len && memcmp(r->name, name, len) == 0)
			return r;
	}
	return NULL;
}

static void room_remove(sio_namespace *nsp, sio_room *room)
{
	base_table_remove(&nsp->rooms, &room->hlink);
	free(room);
}

int sio_join(sio_socket *s, const char *name)
{
	sio_namespace *nsp = s->nsp;
	size_t len = strlen(name);
	if (s->state == SIO_SOCK_DISCONNECTED)
		return SIO_ENOT_CONNECTED;
	sio_room *room = sio__room_find(nsp, name, len);
	if (room) {
		if (sio_in_room(s, name))
			return 0;
	} else {
		room = malloc(sizeof(*room) + len + 1);
		if (!room)
			return BASE_ENOMEM;
		memcpy(room->name, name, len + 1);
		room->name_len = len;
		room->n = 0;
		base_list_init(&room->members);
		base_table_insert(&nsp->rooms, &room->hlink, base_table_hash(name, len));
	}
	sio_membership *m = malloc(sizeof(*m));
	if (!m) {
		if (!room->n)
			room_remove(nsp, room);
		return BASE_ENOMEM;
	}
	m->room = room;
	m->s = s;
	base_list_insert_tail(&room->members, &m->room_link);
	base_list_insert_tail(&s->rooms, &m->sock_link);
	room->n++;
	if (nsp->srv->admin)
		sio__admin_room(s, room->name, room->name_len, 1);
	return 0;
}

static void membership_drop(sio_namespace *nsp, sio_membership *m)
{
	if (nsp->srv->admin)
		sio__admin_room(m->s, m->room->name, m->room->name_len, 0);
	base_list_remove(&m->room_link);
	base_list_remove(&m->sock_link);
	if (--m->room->n == 0)
		room_remove(nsp, m->room);
	free(m);
}

static sio_membership *membership_find(const sio_socket *s, const char *name, size_t len)
{
	const base_list *pos;
	for (pos = s->rooms.next; pos != &s->rooms; pos = pos->next) {
		sio_membership *m = BASE_CONTAINER_OF(pos, sio_membership, sock_link);
		if (m->room->name_len == len && memcmp(m->room->name, name, len) == 0)
			return m;
	}
	return NULL;
}

void sio_leave(sio_socket *s, const char *name)
{
	sio_membership *m = membership_find(s, name, strlen(name));
	if (m)
		membership_drop(s->nsp, m);
}

int sio_in_room(const sio_socket *s, const char *name)
{
	return membership_find(s, name, strlen(name)) != NULL;
}

void sio__leave_all(sio_socket *s)
{
	while (!base_list_empty(&s->rooms))
		membership_drop(s->nsp,
		                BASE_CONTAINER_OF(s->rooms.next, sio_membership, sock_link));
}

void sio__rooms_free(sio_namespace *nsp)
{
	/* Sockets are gone by now, and with them every membership and room. */
	base_table_free(&nsp->rooms);
	free(nsp->scratch);
	nsp->scratch = NULL;
	nsp->scratch_cap = 0;
}

/* ---- broadcast --------------------------------------------------------- */

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

/* The encoded broadcast: one shared message and one per attachment. */
typedef struct {
	eio_msg *msg;
	eio_msg *atts[SIO_MAX_ATTACHMENTS];
	size_t n_atts;
	/* for the outgoing listeners */
	const char *event;
	base_slice args;
	const base_slice *raw_atts;
} sio_encoded;

static int send_one(sio_socket *s, const sio_bcast *b, const sio_encoded *e)
{
	if (!s->client || s->client->closed || s->state != SIO_SOCK_CONNECTED)
		return 0;
	eio_socket *es = s->client->eio;
	if (b->is_volatile && !eio_socket_writable(es))
		return 0;
	if (e->event)
		sio__notify_outgoing(s, e->event, e->args, e->raw_atts, e->n_atts);
	if (eio_socket_send_msg(es, e->msg))
		return 0;
	for (size_t i = 0; i < e->n_atts; i++)
		eio_socket_send_msg(es, e->atts[i]);
	return 1;
}

/*
 * The sockets a broadcast targets: b's rooms (or the whole namespace) minus
 * its except rooms, each once and each with a reference. They are picked in
 * one pass before anything is sent: sending runs user code (outgoing
 * listeners) that may broadcast again, join, leave or disconnect, and none of
 * that may change who this broadcast reaches or free what it walks.
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

/* Starts a target list on the namespace's scratch array, or on local when a broadcast uses it. */
static void targets_begin(sio_namespace *nsp, sio_targets *t, sio_socket **local, size_t n)
{
	if (!nsp->scratch_busy) {
		nsp->scratch_busy = 1;
		*t = (sio_targets){nsp->scratch, 0, nsp->scratch_cap, nsp->scratch != NULL, 1};
	} else {
		*t = (sio_targets){local, 0, n, 0, 0};
	}
}

/* Drops the references; the scratch array (maybe grown) goes back to the namespace. */
static void targets_end(sio_namespace *nsp, sio_targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		sio__socket_unref(t->v[i]);
	if (t->is_scratch) {
		nsp->scratch = t->v;
		nsp->scratch_cap = t->cap;
		nsp->scratch_busy = 0;
	} else if (t->heap) {
		free(t->v);
	}
}

static int deliver_local(const sio_bcast *b, const sio_encoded *e)
{
	sio_namespace *nsp = b->nsp;
	sio_socket *local[32];
	sio_targets t;
	targets_begin(nsp, &t, local, BASE_ARRAY_SIZE(local));
	gather(b, &t);
	int count = 0;
	for (size_t i = 0; i < t.n; i++)
		count += send_one(t.v[i], b, e);
	targets_end(nsp, &t);
	nsp->srv->stats.broadcasts++;
	nsp->srv->stats.deliveries += (uint64_t)count;
	return count;
}

static void encoded_free(sio_encoded *e)
{
	eio_msg_unref(e->msg);
	for (size_t i = 0; i < e->n_atts; i++)
		eio_msg_unref(e->atts[i]);
}

/* Encodes the text packet (parts) and attachments into shared messages. */
static int encode_shared(sio_server *srv, const base_slice *parts, size_t n_parts,
                         const base_slice *atts, size_t n_atts, sio_encoded *e)
{
	if (srv->opts.parser == SIO_PARSER_MSGPACK) {
		base_buf text = BASE_BUF_INIT, out = BASE_BUF_INIT;
		int rc = 0;
		for (size_t i = 0; i < n_parts; i++)
			base_buf_append(&text, parts[i].base, parts[i].len);
		sio_packet p;
		const char *err;
		if (sio_packet_decode(text.data, text.len, &p, &err))
			rc = SIO_EBAD_ARGS;
		if (!rc)
			rc = sio_msgpack_encode(&out, p.type, p.nsp, p.id, p.data, atts, n_atts);
		if (!rc) {
			base_slice one = {out.data, out.len};
			e->msg = eio_msg_new(1, &one, 1);
			if (!e->msg)
				rc = BASE_ENOMEM;
		}
		base_buf_free(&text);
		base_buf_free(&out);
		return rc;
	}
	e->msg = eio_msg_new(0, parts, n_parts);
	if (!e->msg)
		return BASE_ENOMEM;
	for (size_t i = 0; i < n_atts; i++) {
		e->atts[i] = eio_msg_new(1, &atts[i], 1);
		if (!e->atts[i]) {
			encoded_free(e);
			return BASE_ENOMEM;
		}
		e->n_atts = i + 1;
	}
	return 0;
}

int sio_bcast_emit(const sio_bcast *b, const char *event, base_slice args,
                   const base_slice *attachments, size_t n_attachments)
{
	sio_namespace *nsp = b->nsp;
	sio_server *srv = nsp->srv;
	if (n_attachments > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;

	/* With recovery on, the packet gets an offset and is kept for a while. */
	base_buf with_offset = BASE_BUF_INIT;
	uint64_t offset = 0;
	if (srv->opts.recovery_ms && !b->is_volatile) {
		char off[24];
		offset = sio__history_next(nsp, off);
		if (args.len)
			base_buf_append(&with_offset, args.base, args.len);
		base_buf_printf(&with_offset, "%s\"%s\"", args.len ? "," : "", off);
		args = (base_slice){with_offset.data, with_offset.len};
	}

	base_buf hdr = BASE_BUF_INIT;
	base_slice parts[4];
	size_t n_parts = sio__event_parts(&hdr, nsp, -1, (unsigned)n_attachments, event,
	                                  strlen(event), args, parts);
	base_buf text = BASE_BUF_INIT;
	if (offset || (!b->local && nsp->adapter.on_broadcast)) {
		for (size_t i = 0; i < n_parts; i++)
			base_buf_append(&text, parts[i].base, parts[i].len);
	}
	if (offset)
		sio__history_store(nsp, b, offset, (base_slice){text.data, text.len}, attachments,
		                   n_attachments);
	sio_encoded e = {0};
	int rc = hdr.data ? encode_shared(srv, parts, n_parts, attachments, n_attachments, &e)
	                  : BASE_ENOMEM;
	if (rc == 0) {
		e.event = event;
		e.args = args;
		e.raw_atts = attachments;
		rc = deliver_local(b, &e);
		encoded_free(&e);
		if (!b->local && nsp->adapter.on_broadcast)
			nsp->adapter.on_broadcast(nsp, b, (base_slice){text.data, text.len},
			                          attachments, n_attachments, nsp->adapter.ud);
	}
	base_buf_free(&text);
	base_buf_free(&hdr);
	base_buf_free(&with_offset);
	return rc;
}

/* ---- join, leave, disconnect what a broadcast targets ------------------- */

static int apply_local(const sio_bcast *b, sio_sockets_op op, const char *room)
{
	sio_namespace *nsp = b->nsp;
	sio_socket *local[32];
	sio_targets t;
	targets_begin(nsp, &t, local, BASE_ARRAY_SIZE(local));
	gather(b, &t);
	for (size_t i = 0; i < t.n; i++) {
		sio_socket *s = t.v[i];
		if (s->state != SIO_SOCK_CONNECTED)
			continue;
		if (op == SIO_SOCKETS_JOIN)
			sio_join(s, room);
		else if (op == SIO_SOCKETS_LEAVE)
			sio_leave(s, room);
		else if (op == SIO_SOCKETS_DISCONNECT)
			sio_disconnect(s);
		else
			sio_disconnect_all(s);
	}
	int n = (int)t.n;
	targets_end(nsp, &t);
	return n;
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

int sio_adapter_deliver(const sio_bcast *b, base_slice packet, const base_slice *attachments,
                        size_t n_attachments)
{
	if (n_attachments > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;
	sio_packet p;
	const char *err;
	if (sio_packet_decode(packet.base, packet.len, &p, &err) ||
	    (p.type != SIO_EVENT && p.type != SIO_BINARY_EVENT) || p.attachments != n_attachments)
		return SIO_EBAD_ARGS;
	sio_encoded e = {0};
	int rc = encode_shared(b->nsp->srv, &packet, 1, attachments, n_attachments, &e);
	if (rc)
		return rc;
	rc = deliver_local(b, &e);
	encoded_free(&e);
	return rc;
}
