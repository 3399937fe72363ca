/*
 * rooms.c: rooms, and who is in them (broadcasts are in broadcast.c).
 *
 * A room is a list of memberships; a socket also lists its own, so join,
 * leave and leaving everything are O(1) per room.
 */
#include <stdlib.h>

#include "server_internal.h"

static size_t room_hash(const char *name, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

sio_room *sio__room_find(sio_namespace *nsp, const char *name, size_t len)
{
	if (!nsp->rooms_size)
		return NULL;
	sio_room *r = nsp->rooms[room_hash(name, len) & (nsp->rooms_size - 1)];
	for (; r; r = r->hnext)
		if (r->name_len == len && memcmp(r->name, name, len) == 0)
			return r;
	return NULL;
}

static int rooms_grow(sio_namespace *nsp)
{
	size_t nsize = nsp->rooms_size ? nsp->rooms_size * 2 : 64;
	sio_room **nt = calloc(nsize, sizeof(*nt));
	if (!nt)
		return BASE_ENOMEM;
	for (size_t i = 0; i < nsp->rooms_size; i++) {
		sio_room *r = nsp->rooms[i], *next;
		for (; r; r = next) {
			next = r->hnext;
			size_t b = room_hash(r->name, r->name_len) & (nsize - 1);
			r->hnext = nt[b];
			nt[b] = r;
		}
	}
	free(nsp->rooms);
	nsp->rooms = nt;
	nsp->rooms_size = nsize;
	return 0;
}

static void room_remove(sio_namespace *nsp, sio_room *room)
{
	sio_room **pp = &nsp->rooms[room_hash(room->name, room->name_len) & (nsp->rooms_size - 1)];
	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == room) {
			*pp = room->hnext;
			nsp->n_rooms--;
			free(room);
			return;
		}
	}
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
		if (nsp->n_rooms >= nsp->rooms_size && rooms_grow(nsp))
			return BASE_ENOMEM;
		room = malloc(sizeof(*room) + len + 1);
		if (!room)
			return BASE_ENOMEM;
		memcpy(room->name, name, len + 1);
		room->name_len = len;
		room->n = 0;
		base_list_init(&room->members);
		size_t b = room_hash(name, len) & (nsp->rooms_size - 1);
		room->hnext = nsp->rooms[b];
		nsp->rooms[b] = room;
		nsp->n_rooms++;
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
	return 0;
}

static void membership_drop(sio_namespace *nsp, sio_membership *m)
{
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
	free(nsp->rooms);
	nsp->rooms = NULL;
	nsp->rooms_size = nsp->n_rooms = 0;
	free(nsp->scratch);
	nsp->scratch = NULL;
	nsp->scratch_cap = 0;
}
