/*
 * rooms.c: rooms, and who is in them (broadcasts are in broadcast.c).
 *
 * A room is a list of memberships; a socket also lists its own, so join,
 * leave and leaving everything are O(1) per room.
 */
#include <stddef.h>
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

/*
 * A room is allocated with a slot for one membership after its name: most
 * rooms are a socket's own, with one member for life, and so the two take
 * one allocation. The slot is free while its room pointer is NULL.
 */
static size_t room_slot_offset(size_t name_len)
{
	return (offsetof(sio_room, name) + name_len + 1 + 7) & ~(size_t)7;
}

static sio_membership *room_slot(sio_room *room)
{
	return (sio_membership *)(void *)((char *)room + room_slot_offset(room->name_len));
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
	if (len > UINT32_MAX)
		return BASE_EINVAL;
	sio_room *room = sio__room_find(nsp, name, len);
	if (room) {
		if (sio_in_room(s, name))
			return 0;
	} else {
		room = malloc(room_slot_offset(len) + sizeof(sio_membership));
		if (!room)
			return BASE_ENOMEM;
		memcpy(room->name, name, len + 1);
		room->name_len = (uint32_t)len;
		room_slot(room)->room = NULL;
		room->n = 0;
		base_list_init(&room->members);
		base_table_insert(&nsp->rooms, &room->hlink, base_table_hash(name, len));
	}
	sio_membership *m = room_slot(room);
	if (m->room != NULL)
		m = malloc(sizeof(*m));
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
	sio_room *room = m->room;
	int in_slot = m == room_slot(room);
	base_list_remove(&m->room_link);
	base_list_remove(&m->sock_link);
	if (in_slot)
		m->room = NULL; /* the slot is free again */
	else
		free(m);
	if (--room->n == 0)
		room_remove(nsp, room); /* the slot goes with it */
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
