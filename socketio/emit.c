/*
 * emit.c: events and acknowledgements to one socket.
 *
 * An event or ack is described as a sio_out (name, arguments as given,
 * attachments) and handed to the server's parser, which encodes it once
 * into the socket's write queue (parser.h). No JSON document is built.
 */
#include <stdlib.h>

#include "server_internal.h"

void sio__notify_outgoing(sio_socket *s, const char *event, base_slice args, const base_slice *atts,
                          size_t n_atts)
{
	sio_namespace *nsp = s->nsp;
	if (nsp->srv->admin)
		sio__admin_event(s, 1, (base_slice){event, strlen(event)}, args);
	if (!nsp->n_any_out)
		return;
	sio_event ev = {s, {event, strlen(event)}, args, atts, n_atts, -1};
	for (size_t i = 0; i < nsp->n_any_out; i++)
		nsp->any_out[i].fn(&ev, nsp->any_out[i].ud);
}

static int emit_id(sio_socket *s, const char *event, base_slice args, const base_slice *atts,
                   size_t n_atts, int64_t id)
{
	if (s->state != SIO_SOCK_CONNECTED || !s->client)
		return SIO_ENOT_CONNECTED;
	if (n_atts > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;
	sio__notify_outgoing(s, event, args, atts, n_atts);
	sio_out out = {.type = SIO_EVENT,
	               .nsp = {s->nsp->name, s->nsp->name_len},
	               .id = id,
	               .event = {event, strlen(event)},
	               .args = args,
	               .atts = atts,
	               .n_atts = n_atts};
	return sio__client_send(s->client, &out);
}

int sio_emit(sio_socket *s, const char *event, base_slice args, const base_slice *attachments,
             size_t n_attachments)
{
	if (s->nsp->srv->opts.recovery_ms)
		return sio__emit_recorded(s, event, args, attachments, n_attachments);
	return emit_id(s, event, args, attachments, n_attachments, -1);
}

int sio_emit_str(sio_socket *s, const char *event, const char *args_json)
{
	base_slice args = {args_json ? args_json : "", args_json ? strlen(args_json) : 0};
	return sio_emit(s, event, args, NULL, 0);
}

/* ---- acknowledgements asked of the client ------------------------------ */

static void pending_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void pending_free(sio_pending_ack *p)
{
	base_list_remove(&p->link);
	if (p->timer) {
		uv_timer_stop(p->timer);
		p->timer->data = p->timer;
		uv_close((uv_handle_t *)p->timer, pending_timer_closed);
	}
	free(p);
}

static void pending_expired(uv_timer_t *t)
{
	sio_pending_ack *p = t->data;
	sio_socket *s = p->s;
	sio_ack_fn cb = p->cb;
	void *ud = p->ud;
	pending_free(p);
	s->refs++;
	cb(s, 1, (base_slice){NULL, 0}, NULL, 0, ud);
	sio__socket_unref(s);
}

int sio_emit_ack(sio_socket *s, const char *event, base_slice args, const base_slice *attachments,
                 size_t n_attachments, unsigned timeout_ms, sio_ack_fn cb, void *ud)
{
	if (s->state != SIO_SOCK_CONNECTED || !s->client)
		return SIO_ENOT_CONNECTED;
	sio_pending_ack *p = calloc(1, sizeof(*p));
	if (!p)
		return BASE_ENOMEM;
	if (timeout_ms) {
		p->timer = malloc(sizeof(*p->timer));
		if (!p->timer) {
			free(p);
			return BASE_ENOMEM;
		}
		uv_timer_init(http_server_loop(s->nsp->srv->http), p->timer);
		p->timer->data = p;
		uv_timer_start(p->timer, pending_expired, timeout_ms, 0);
	}
	p->id = s->next_ack++;
	p->s = s;
	p->cb = cb;
	p->ud = ud;
	base_list_insert_tail(&s->acks, &p->link);
	int rc = emit_id(s, event, args, attachments, n_attachments, p->id);
	if (rc)
		pending_free(p);
	return rc;
}

void sio__ack_received(sio_socket *s, int64_t id, base_slice args, const base_slice *atts,
                       size_t n_atts)
{
	base_list *pos;
	for (pos = s->acks.next; pos != &s->acks; pos = pos->next) {
		sio_pending_ack *p = BASE_CONTAINER_OF(pos, sio_pending_ack, link);
		if (p->id != id)
			continue;
		sio_ack_fn cb = p->cb;
		void *ud = p->ud;
		pending_free(p);
		s->refs++;
		cb(s, 0, args, atts, n_atts, ud);
		sio__socket_unref(s);
		return;
	}
	BASE_LOGD("sio", "socket %s: ack %lld matches no emit", s->id, (long long)id);
}

void sio__acks_cancel(sio_socket *s)
{
	while (!base_list_empty(&s->acks)) {
		sio_pending_ack *p = BASE_CONTAINER_OF(s->acks.next, sio_pending_ack, link);
		sio_ack_fn cb = p->cb;
		void *ud = p->ud;
		pending_free(p);
		cb(s, 1, (base_slice){NULL, 0}, NULL, 0, ud);
	}
}

/* ---- acknowledgements the client asked for ---------------------------- */

int sio_ack(sio_socket *s, int64_t ack_id, base_slice args, const base_slice *attachments,
            size_t n_attachments)
{
	if (s->state != SIO_SOCK_CONNECTED || !s->client)
		return SIO_ENOT_CONNECTED;
	if (ack_id < 0)
		return BASE_EINVAL;
	if (n_attachments > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;
	sio_out out = {.type = SIO_ACK,
	               .nsp = {s->nsp->name, s->nsp->name_len},
	               .id = ack_id,
	               .args = args,
	               .atts = attachments,
	               .n_atts = n_attachments};
	return sio__client_send(s->client, &out);
}
