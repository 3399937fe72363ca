/*
 * recovery.c: connection state recovery, as socket.io 4.6+ does it.
 *
 * With recovery on, every event that is not volatile and asks for no ack
 * carries an offset as its last argument and is kept for recovery_ms. A
 * socket that drops (not by a namespace disconnect) leaves a session: its
 * id, pid and rooms. A client coming back within recovery_ms sends the pid
 * and the last offset it saw in its CONNECT auth; it gets the same id, its
 * rooms, and the kept packets after that offset that were meant for it.
 */
#include <jansson.h>
#include <stdlib.h>

#include "server_internal.h"

typedef struct {
	base_list link;
	uint64_t time;
	uint64_t offset;
	base_slice event, args; /* the event's name (raw) and its arguments, offset last */
	base_slice atts[SIO_MAX_ATTACHMENTS];
	size_t n_atts;
	char **rooms, **except;
	unsigned n_rooms, n_except;
} sio_stored;

typedef struct {
	base_list link;
	uint64_t time;
	char sid[SIO_ID_LEN + 1];
	char pid[SIO_ID_LEN + 1];
	char **rooms;
	size_t n_rooms;
} sio_session;

static void expire(sio_namespace *nsp)
{
	uint64_t now = base_now_ms(), keep = nsp->srv->opts.recovery_ms;
	while (!base_list_empty(&nsp->history)) {
		sio_stored *p = BASE_CONTAINER_OF(nsp->history.next, sio_stored, link);
		if (p->time + keep > now)
			break;
		base_list_remove(&p->link);
		free(p);
	}
	while (!base_list_empty(&nsp->sessions)) {
		sio_session *se = BASE_CONTAINER_OF(nsp->sessions.next, sio_session, link);
		if (se->time + keep > now)
			break;
		base_list_remove(&se->link);
		free(se);
	}
}

uint64_t sio__history_next(sio_namespace *nsp, char off[24])
{
	uint64_t o = ++nsp->next_offset;
	snprintf(off, 24, "%llu", (unsigned long long)o);
	return o;
}

/* Copies an array of strings into the block at *w; returns the new array. */
static char **copy_names(const char *const *names, size_t n, char **w)
{
	char **arr = (char **)*w;
	*w += n * sizeof(char *);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(names[i]) + 1;
		memcpy(*w, names[i], len);
		arr[i] = *w;
		*w += len;
	}
	return arr;
}

static size_t names_size(const char *const *names, size_t n)
{
	size_t total = n * sizeof(char *);
	for (size_t i = 0; i < n; i++)
		total += strlen(names[i]) + 1;
	return total;
}

int sio__history_store(sio_namespace *nsp, const sio_bcast *b, uint64_t offset, const sio_out *out)
{
	expire(nsp);
	size_t total = sizeof(sio_stored) + out->event.len + out->args.len +
	               names_size(b->rooms, b->n_rooms) + names_size(b->except, b->n_except);
	for (size_t i = 0; i < out->n_atts; i++)
		total += out->atts[i].len;
	sio_stored *p = malloc(total);
	if (!p)
		return BASE_ENOMEM;
	char *w = (char *)(p + 1);
	p->time = base_now_ms();
	p->offset = offset;
	p->rooms = copy_names(b->rooms, b->n_rooms, &w);
	p->n_rooms = b->n_rooms;
	p->except = copy_names(b->except, b->n_except, &w);
	p->n_except = b->n_except;
	p->event = (base_slice){w, out->event.len};
	memcpy(w, out->event.base, out->event.len);
	w += out->event.len;
	p->args = (base_slice){w, out->args.len};
	if (out->args.len)
		memcpy(w, out->args.base, out->args.len);
	w += out->args.len;
	for (size_t i = 0; i < out->n_atts; i++) {
		memcpy(w, out->atts[i].base, out->atts[i].len);
		p->atts[i] = (base_slice){w, out->atts[i].len};
		w += out->atts[i].len;
	}
	p->n_atts = out->n_atts;
	base_list_insert_tail(&nsp->history, &p->link);
	return 0;
}

void sio__session_save(sio_socket *s)
{
	sio_namespace *nsp = s->nsp;
	expire(nsp);
	size_t n = 0, names = 0;
	base_list *pos;
	for (pos = s->rooms.next; pos != &s->rooms; pos = pos->next) {
		sio_membership *m = BASE_CONTAINER_OF(pos, sio_membership, sock_link);
		names += m->room->name_len + 1;
		n++;
	}
	sio_session *se = malloc(sizeof(*se) + n * sizeof(char *) + names);
	if (!se)
		return;
	se->time = base_now_ms();
	memcpy(se->sid, s->id, sizeof(se->sid));
	memcpy(se->pid, sio__pid(s), sizeof(se->pid));
	se->rooms = (char **)(se + 1);
	se->n_rooms = n;
	char *w = (char *)(se->rooms + n);
	size_t i = 0;
	for (pos = s->rooms.next; pos != &s->rooms; pos = pos->next, i++) {
		sio_membership *m = BASE_CONTAINER_OF(pos, sio_membership, sock_link);
		memcpy(w, m->room->name, m->room->name_len + 1);
		se->rooms[i] = w;
		w += m->room->name_len + 1;
	}
	base_list_insert_tail(&nsp->sessions, &se->link);
}

static int offset_known(sio_namespace *nsp, uint64_t offset)
{
	base_list *pos;
	for (pos = nsp->history.next; pos != &nsp->history; pos = pos->next)
		if (BASE_CONTAINER_OF(pos, sio_stored, link)->offset == offset)
			return 1;
	return 0;
}

int sio__session_restore(sio_socket *s)
{
	sio_namespace *nsp = s->nsp;
	expire(nsp);
	json_t *auth = json_loadb(s->auth_buf, s->auth_len, 0, NULL);
	const char *pid = json_string_value(json_object_get(auth, "pid"));
	const char *off = json_string_value(json_object_get(auth, "offset"));
	int restored = 0;
	char *end = NULL;
	unsigned long long offset = off ? strtoull(off, &end, 10) : 0;
	if (!pid || !off || !end || *end || !offset_known(nsp, offset))
		goto out;
	base_list *pos;
	for (pos = nsp->sessions.next; pos != &nsp->sessions; pos = pos->next) {
		sio_session *se = BASE_CONTAINER_OF(pos, sio_session, link);
		if (strcmp(se->pid, pid) != 0)
			continue;
		memcpy(s->id, se->sid, sizeof(s->id));
		memcpy(sio__pid(s), se->pid, SIO_ID_LEN + 1);
		s->recovered = 1;
		s->recover_offset = offset;
		for (size_t i = 0; i < se->n_rooms; i++)
			sio_join(s, se->rooms[i]);
		base_list_remove(&se->link);
		free(se);
		restored = 1;
		break;
	}
out:
	json_decref(auth);
	return restored;
}

static int meant_for(const sio_stored *p, const sio_socket *s)
{
	for (unsigned i = 0; i < p->n_except; i++)
		if (sio_in_room(s, p->except[i]))
			return 0;
	if (!p->n_rooms)
		return 1;
	for (unsigned i = 0; i < p->n_rooms; i++)
		if (sio_in_room(s, p->rooms[i]))
			return 1;
	return 0;
}

void sio__session_replay(sio_socket *s)
{
	base_list *pos;
	for (pos = s->nsp->history.next; pos != &s->nsp->history; pos = pos->next) {
		sio_stored *p = BASE_CONTAINER_OF(pos, sio_stored, link);
		if (p->offset <= s->recover_offset || !meant_for(p, s))
			continue;
		sio_out out = {.type = SIO_EVENT,
		               .nsp = {s->nsp->name, s->nsp->name_len},
		               .id = -1,
		               .event = p->event,
		               .args = p->args,
		               .atts = p->atts,
		               .n_atts = p->n_atts};
		if (sio__client_send(s->client, &out))
			return;
	}
}

void sio__recovery_free(sio_namespace *nsp)
{
	while (!base_list_empty(&nsp->history)) {
		base_list *l = nsp->history.next;
		base_list_remove(l);
		free(BASE_CONTAINER_OF(l, sio_stored, link));
	}
	while (!base_list_empty(&nsp->sessions)) {
		base_list *l = nsp->sessions.next;
		base_list_remove(l);
		free(BASE_CONTAINER_OF(l, sio_session, link));
	}
}

int sio__emit_recorded(sio_socket *s, const char *event, base_slice args, const base_slice *atts,
                       size_t n_atts)
{
	if (s->state != SIO_SOCK_CONNECTED || !s->client)
		return SIO_ENOT_CONNECTED;
	sio_bcast b;
	sio_bcast_init(&b, s->nsp);
	sio_bcast_to(&b, s->id);
	b.local = 1;
	int rc = sio_bcast_emit(&b, event, args, atts, n_atts);
	return rc < 0 ? rc : 0;
}
