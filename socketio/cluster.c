/*
 * cluster.c: fetchSockets, serverSideEmit and broadcasts with
 * acknowledgements, on this node and, through the namespace's adapter, on
 * the others (socketio.h).
 *
 * A request collects answers from parts: this node's sockets, one part per
 * local socket asked for an ack, and one for the adapter, which finishes
 * once for all the other nodes. Each part finishes exactly once, so the
 * request is freed when the last one does, whatever order they come in;
 * answers are copied into the request, so nothing it holds points into a
 * caller's or a socket's memory.
 */
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "server_internal.h"
#include "socketio_internal.h"

#define DEFAULT_TIMEOUT_MS 5000

typedef struct {
	size_t off, len;
} span;

typedef struct {
	span a, b, c, d;     /* fetch: id, handshake, rooms, data; replies: a is the value */
	size_t att0, n_atts; /* replies: its attachments in r->atts */
	sio_socket *s;       /* fetch: a local socket, referenced */
} item;

struct sio_remote {
	int fetch;
	unsigned parts; /* not finished yet */
	int err;
	base_buf text; /* every text and attachment, back to back */
	item *items;
	size_t n_items, cap_items;
	span *atts;
	size_t n_atts, cap_atts;
	sio_fetch_fn fetch_cb;
	sio_replies_fn replies_cb;
	void *ud;
};

static span put(sio_remote *r, const char *p, size_t len)
{
	span s = {r->text.len, len};
	base_buf_append(&r->text, p, len);
	base_buf_append(&r->text, "", 1); /* a NUL after each: ids are used as strings */
	return s;
}

static item *item_new(sio_remote *r)
{
	if (r->n_items == r->cap_items) {
		size_t cap = r->cap_items ? r->cap_items * 2 : 8;
		item *v = realloc(r->items, cap * sizeof(*v));
		if (!v)
			return NULL;
		r->items = v;
		r->cap_items = cap;
	}
	item *it = &r->items[r->n_items++];
	memset(it, 0, sizeof(*it));
	return it;
}

/* Copies a reply (a JSON value; empty: null) and its attachments. */
static void add_reply(sio_remote *r, base_slice json, const base_slice *atts, size_t n_atts)
{
	if (r->n_atts + n_atts > r->cap_atts) {
		size_t cap = r->cap_atts ? r->cap_atts : 8;
		while (cap < r->n_atts + n_atts)
			cap *= 2;
		span *v = realloc(r->atts, cap * sizeof(*v));
		if (!v) {
			r->err = BASE_ENOMEM;
			return;
		}
		r->atts = v;
		r->cap_atts = cap;
	}
	item *it = item_new(r);
	if (!it) {
		r->err = BASE_ENOMEM;
		return;
	}
	it->a = json.len ? put(r, json.base, json.len) : put(r, "null", 4);
	it->att0 = r->n_atts;
	it->n_atts = n_atts;
	for (size_t i = 0; i < n_atts; i++)
		r->atts[r->n_atts++] = put(r, atts[i].base, atts[i].len);
}

static sio_remote *req_new(int fetch, unsigned parts)
{
	sio_remote *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->fetch = fetch;
	r->parts = parts;
	return r;
}

static base_slice at(const sio_remote *r, span s)
{
	return (base_slice){r->text.data + s.off, s.len};
}

static void finish(sio_remote *r)
{
	if (r->fetch) {
		sio_socket_desc *v = calloc(r->n_items ? r->n_items : 1, sizeof(*v));
		size_t n = 0;
		for (size_t i = 0; v && i < r->n_items; i++) {
			item *it = &r->items[i];
			v[n++] = (sio_socket_desc){
			    r->text.data + it->a.off, at(r, it->b), at(r, it->c), at(r, it->d),
			    it->s && it->s->state == SIO_SOCK_CONNECTED ? it->s : NULL};
		}
		r->fetch_cb(v ? r->err : BASE_ENOMEM, v, n, r->ud);
		free(v);
		for (size_t i = 0; i < r->n_items; i++)
			if (r->items[i].s)
				sio__socket_unref(r->items[i].s);
	} else {
		sio_value *v = calloc(r->n_items ? r->n_items : 1, sizeof(*v));
		base_slice *atts = calloc(r->n_atts ? r->n_atts : 1, sizeof(*atts));
		size_t n = 0;
		for (size_t i = 0; i < r->n_atts && atts; i++)
			atts[i] = at(r, r->atts[i]);
		for (size_t i = 0; v && atts && i < r->n_items; i++) {
			item *it = &r->items[i];
			v[n++] = (sio_value){at(r, it->a), atts + it->att0, it->n_atts};
		}
		if (r->replies_cb)
			r->replies_cb(v && atts ? r->err : BASE_ENOMEM, v, n, r->ud);
		free(v);
		free(atts);
	}
	base_buf_free(&r->text);
	free(r->items);
	free(r->atts);
	free(r);
}

static void part_done(sio_remote *r)
{
	if (--r->parts == 0)
		finish(r);
}

/* ---- socket descriptions ---------------------------------------------- */

int sio_socket_set_data_json(sio_socket *s, base_slice json)
{
	sio__json_split_t sp;
	if (sio__json_split(json.base, json.len, &sp) < 0)
		return BASE_EINVAL;
	char *copy = malloc(json.len + 1);
	if (!copy)
		return BASE_ENOMEM;
	memcpy(copy, json.base, json.len);
	copy[json.len] = 0;
	free(s->data_json);
	s->data_json = copy;
	s->data_json_len = json.len;
	return 0;
}

static void json_str(base_buf *out, const char *p, size_t len)
{
	sio_json_append_string(out, p, len);
}

/* A query string as an object of its decoded keys and values. */
static void query_json(base_buf *out, base_slice q)
{
	const char *p = q.base, *end = q.base + q.len;
	size_t start = out->len;
	char *tmp = malloc(q.len + 1);
	base_buf_append(out, "{", 1);
	while (tmp && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		const char *ke = eq ? eq : e;
		ssize_t kl = base_url_decode(p, (size_t)(ke - p), tmp, 1);
		if (kl > 0) {
			if (out->len > start + 1)
				base_buf_append(out, ",", 1);
			json_str(out, tmp, (size_t)kl);
			base_buf_append(out, ":", 1);
			ssize_t vl = eq ? base_url_decode(eq + 1, (size_t)(e - eq - 1), tmp, 1) : 0;
			json_str(out, tmp, vl > 0 ? (size_t)vl : 0);
		}
		p = amp ? amp + 1 : end;
	}
	base_buf_append(out, "}", 1);
	free(tmp);
}

/* Node's socket.handshake: headers (lower-case names), time, address, ... */
static void handshake_json(base_buf *out, const sio_socket *s)
{
	const sio_client *c = s->client;
	const sio_server *srv = s->nsp->srv;
	int xdomain = 0;
	base_buf_append(out, "{\"headers\":{", 12);
	for (size_t i = 0; c && i < c->n_headers; i++) {
		const http_header *h = &c->headers[i];
		char name[128];
		size_t nl = BASE_MIN(h->name.len, sizeof(name));
		int dup = 0;
		for (size_t j = 0; j < i && !dup; j++)
			dup = c->headers[j].name.len == h->name.len &&
			      strncasecmp(c->headers[j].name.base, h->name.base, h->name.len) == 0;
		if (dup || nl != h->name.len)
			continue;
		for (size_t k = 0; k < nl; k++) {
			char ch = h->name.base[k];
			name[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
		}
		if (nl == 6 && memcmp(name, "origin", 6) == 0)
			xdomain = 1;
		if (out->data[out->len - 1] != '{')
			base_buf_append(out, ",", 1);
		json_str(out, name, nl);
		base_buf_append(out, ":", 1);
		json_str(out, h->value.base, h->value.len);
	}
	/* Date.prototype.toString() in UTC, as a Node server in UTC writes it. */
	char when[80] = "";
	uint64_t ms = c ? c->time_ms : 0;
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (gmtime_r(&secs, &tm))
		strftime(when, sizeof(when),
		         "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)", &tm);
	base_buf_append(out, "},\"time\":", 9);
	json_str(out, when, strlen(when));
	base_buf_append(out, ",\"address\":", 11);
	const char *addr = c ? sio__client_address(c) : "";
	json_str(out, addr, strlen(addr));
	base_buf_printf(out, ",\"xdomain\":%s,\"secure\":false,\"issued\":%llu,\"url\":",
	                xdomain ? "true" : "false", (unsigned long long)ms);
	base_buf url = BASE_BUF_INIT;
	const char *path = srv->opts.eio.path ? srv->opts.eio.path : "/socket.io/";
	base_buf_append(&url, path, strlen(path));
	if (c && c->query.len) {
		base_buf_append(&url, "?", 1);
		base_buf_append(&url, c->query.base, c->query.len);
	}
	json_str(out, url.data ? url.data : "", url.len);
	base_buf_free(&url);
	base_buf_append(out, ",\"query\":", 9);
	query_json(out, c ? c->query : (base_slice){"", 0});
	base_buf_append(out, ",\"auth\":", 8);
	if (s->auth_len)
		base_buf_append(out, s->auth_buf, s->auth_len);
	else
		base_buf_append(out, "{}", 2);
	base_buf_append(out, "}", 1);
}

static void rooms_json(base_buf *out, const sio_socket *s)
{
	const base_list *pos;
	int own = sio_in_room(s, s->id);
	base_buf_append(out, "[", 1);
	if (!own)
		json_str(out, s->id, strlen(s->id));
	for (pos = s->rooms.next; pos != &s->rooms; pos = pos->next) {
		const sio_membership *m = BASE_CONTAINER_OF(pos, sio_membership, sock_link);
		if (out->data[out->len - 1] != '[')
			base_buf_append(out, ",", 1);
		json_str(out, m->room->name, m->room->name_len);
	}
	base_buf_append(out, "]", 1);
}

static void describe(sio_socket *s, void *ud)
{
	sio_remote *r = ud;
	item *it = item_new(r);
	if (!it) {
		r->err = BASE_ENOMEM;
		return;
	}
	base_buf tmp = BASE_BUF_INIT;
	it->a = put(r, s->id, strlen(s->id));
	handshake_json(&tmp, s);
	it->b = put(r, tmp.data ? tmp.data : "", tmp.len);
	tmp.len = 0;
	rooms_json(&tmp, s);
	it->c = put(r, tmp.data ? tmp.data : "", tmp.len);
	tmp.len = 0;
	if (s->nsp->srv->admin && sio__admin_data(s, &tmp))
		it->d = put(r, tmp.data ? tmp.data : "", tmp.len);
	else
		it->d = s->data_json ? put(r, s->data_json, s->data_json_len) : put(r, "{}", 2);
	base_buf_free(&tmp);
	s->refs++;
	it->s = s;
}

/* ---- fetchSockets ------------------------------------------------------- */

int sio_fetch_sockets(const sio_bcast *b, unsigned timeout_ms, sio_fetch_fn cb, void *ud)
{
	sio_namespace *nsp = b->nsp;
	sio_remote *r = req_new(1, 1);
	if (!r)
		return BASE_ENOMEM;
	r->fetch_cb = cb;
	r->ud = ud;
	sio__bcast_each(b, describe, r);
	if (!b->local && nsp->adapter.fetch) {
		r->parts++;
		nsp->adapter.fetch(nsp, b, timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS, r,
		                   nsp->adapter.ud);
	}
	part_done(r);
	return 0;
}

void sio_remote_add_sockets(sio_remote *r, const sio_socket_desc *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		item *it = item_new(r);
		if (!it) {
			r->err = BASE_ENOMEM;
			break;
		}
		it->a = put(r, v[i].id, strlen(v[i].id));
		it->b = put(r, v[i].handshake.base, v[i].handshake.len);
		it->c = put(r, v[i].rooms.base, v[i].rooms.len);
		it->d = put(r, v[i].data.base, v[i].data.len);
	}
}

void sio_remote_add_replies(sio_remote *r, const sio_value *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		add_reply(r, v[i].json, v[i].attachments, v[i].n_attachments);
}

void sio_remote_done(sio_remote *r, int err)
{
	if (err && !r->err)
		r->err = err;
	part_done(r);
}

/* ---- broadcasts with acknowledgements ----------------------------------- */

/* The first argument of an ack's arguments ("" when none). */
static base_slice first_arg(base_slice args)
{
	const char *end = args.base + args.len;
	const char *p = sio__json_skip_ws(args.base, end);
	int kind, esc = 0;
	const char *q = p < end ? sio__json_scan(p, end, SIO__JSON_MAX_DEPTH, &kind, &esc) : NULL;
	return q ? (base_slice){p, (size_t)(q - p)} : (base_slice){"", 0};
}

/* The event name and the arguments of a JSON array [event, ...args]. */
typedef struct {
	char name[256];
	size_t name_len;
	base_slice args;
} split_packet;

static int split(base_slice packet, split_packet *out)
{
	sio__json_split_t sp;
	if (sio__json_split(packet.base, packet.len, &sp) != SIO__JSON_ARRAY ||
	    sp.first_kind != SIO__JSON_STRING || sp.first.len >= sizeof(out->name))
		return SIO_EBAD_ARGS;
	if (sp.escaped) {
		ssize_t n = sio_json_unescape(sp.first.base, sp.first.len, out->name);
		if (n < 0 || memchr(out->name, 0, (size_t)n))
			return SIO_EBAD_ARGS;
		out->name_len = (size_t)n;
	} else {
		memcpy(out->name, sp.first.base, sp.first.len);
		out->name_len = sp.first.len;
	}
	out->name[out->name_len] = 0;
	out->args = sp.rest;
	return 0;
}

/* [event,args] as a JSON array. */
static void packet_json(base_buf *out, const char *event, base_slice args)
{
	base_buf_append(out, "[", 1);
	json_str(out, event, strlen(event));
	if (args.len) {
		base_buf_append(out, ",", 1);
		base_buf_append(out, args.base, args.len);
	}
	base_buf_append(out, "]", 1);
}

static void local_ack(sio_socket *s, int timed_out, base_slice args, const base_slice *atts,
                      size_t n_atts, void *ud)
{
	sio_remote *r = ud;
	(void)s;
	if (timed_out)
		r->err = SIO_ETIMEDOUT;
	else
		add_reply(r, first_arg(args), atts, n_atts);
	part_done(r);
}

typedef struct {
	sio_remote *r;
	const char *event;
	base_slice args;
	const base_slice *atts;
	size_t n_atts;
	unsigned timeout_ms;
} emit_ctx;

static void emit_one(sio_socket *s, void *ud)
{
	emit_ctx *e = ud;
	e->r->parts++;
	if (sio_emit_ack(s, e->event, e->args, e->atts, e->n_atts, e->timeout_ms, local_ack, e->r))
		e->r->parts--;
}

int sio_bcast_emit_ack(const sio_bcast *b, const char *event, base_slice args,
                       const base_slice *attachments, size_t n_attachments, unsigned timeout_ms,
                       sio_replies_fn cb, void *ud)
{
	sio_namespace *nsp = b->nsp;
	if (!timeout_ms || !cb)
		return BASE_EINVAL;
	if (n_attachments > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;
	sio_remote *r = req_new(0, 1);
	if (!r)
		return BASE_ENOMEM;
	r->replies_cb = cb;
	r->ud = ud;
	/* The other nodes first: their part must be counted before a local ack can finish r. */
	if (!b->local && nsp->adapter.bcast_ack) {
		base_buf pk = BASE_BUF_INIT;
		packet_json(&pk, event, args);
		r->parts++;
		nsp->adapter.bcast_ack(nsp, b, (base_slice){pk.data, pk.len}, attachments,
		                       n_attachments, timeout_ms, r, nsp->adapter.ud);
		base_buf_free(&pk);
	}
	emit_ctx e = {r, event, args, attachments, n_attachments, timeout_ms};
	sio__bcast_each(b, emit_one, &e);
	part_done(r);
	return 0;
}

/* ---- serverSideEmit ------------------------------------------------------ */

int sio_server_side_emit(sio_namespace *nsp, const char *event, base_slice args,
                         const base_slice *attachments, size_t n_attachments, unsigned timeout_ms,
                         sio_replies_fn cb, void *ud)
{
	if (n_attachments > SIO_MAX_ATTACHMENTS)
		return SIO_ETOO_MANY_ATTACHMENTS;
	sio_remote *r = NULL;
	if (cb) {
		r = req_new(0, 1);
		if (!r)
			return BASE_ENOMEM;
		r->replies_cb = cb;
		r->ud = ud;
	}
	if (nsp->adapter.server_emit) {
		base_buf pk = BASE_BUF_INIT;
		packet_json(&pk, event, args);
		if (r)
			r->parts++;
		nsp->adapter.server_emit(
		    nsp, (base_slice){pk.data, pk.len}, attachments, n_attachments,
		    timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS, r, nsp->adapter.ud);
		base_buf_free(&pk);
	}
	if (r)
		part_done(r);
	return 0;
}

struct sio_server_ack {
	void (*reply)(void *rctx, const sio_value *v);
	void *rctx;
};

int sio_on_server_side_emit(sio_namespace *nsp, const char *name, sio_server_event_fn fn, void *ud)
{
	for (size_t i = 0; i < nsp->n_srv_events; i++) {
		sio_srv_handler *h = &nsp->srv_events[i];
		if ((!h->name && !name) || (h->name && name && strcmp(h->name, name) == 0)) {
			h->fn = fn;
			h->ud = ud;
			return 0;
		}
	}
	sio_srv_handler *v = realloc(nsp->srv_events, (nsp->n_srv_events + 1) * sizeof(*v));
	if (!v)
		return BASE_ENOMEM;
	nsp->srv_events = v;
	v += nsp->n_srv_events;
	v->name = name ? strdup(name) : NULL;
	if (name && !v->name)
		return BASE_ENOMEM;
	v->fn = fn;
	v->ud = ud;
	nsp->n_srv_events++;
	return 0;
}

void sio__cluster_free(sio_namespace *nsp)
{
	for (size_t i = 0; i < nsp->n_srv_events; i++)
		free(nsp->srv_events[i].name);
	free(nsp->srv_events);
	nsp->srv_events = NULL;
	nsp->n_srv_events = 0;
}

int sio_adapter_server_event(sio_namespace *nsp, base_slice packet, const base_slice *attachments,
                             size_t n_attachments, void (*reply)(void *rctx, const sio_value *v),
                             void *rctx)
{
	split_packet sp;
	if (split(packet, &sp))
		return SIO_EBAD_ARGS;
	sio_srv_handler *h = NULL, *any = NULL;
	for (size_t i = 0; i < nsp->n_srv_events && !h; i++) {
		sio_srv_handler *x = &nsp->srv_events[i];
		if (!x->name)
			any = x;
		else if (strlen(x->name) == sp.name_len &&
		         memcmp(x->name, sp.name, sp.name_len) == 0)
			h = x;
	}
	if (!h)
		h = any;
	sio_server_ack *ack = NULL;
	if (h && reply && !(ack = malloc(sizeof(*ack))))
		h = NULL;
	if (!h) {
		if (reply)
			reply(rctx, NULL);
		return 0;
	}
	if (ack)
		*ack = (sio_server_ack){reply, rctx};
	sio_server_event ev = {nsp,         {sp.name, sp.name_len}, sp.args,
	                       attachments, n_attachments,          ack};
	h->fn(&ev, h->ud);
	return 0;
}

void sio_server_ack_send(sio_server_ack *ack, base_slice value, const base_slice *attachments,
                         size_t n_attachments)
{
	sio_value v = {value.len ? value : BASE_SLICE_LIT("null"), attachments, n_attachments};
	ack->reply(ack->rctx, &v);
	free(ack);
}

void sio_server_ack_drop(sio_server_ack *ack)
{
	ack->reply(ack->rctx, NULL);
	free(ack);
}

/* ---- another node's broadcast with acknowledgements ---------------------- */

typedef struct {
	void (*ack)(void *rctx, const sio_value *v);
	void *rctx;
	unsigned parts;
} in_bcast;

static void in_part_done(in_bcast *ib)
{
	if (--ib->parts == 0) {
		ib->ack(ib->rctx, NULL);
		free(ib);
	}
}

static void in_ack(sio_socket *s, int timed_out, base_slice args, const base_slice *atts,
                   size_t n_atts, void *ud)
{
	in_bcast *ib = ud;
	(void)s;
	if (!timed_out) {
		base_slice first = first_arg(args);
		sio_value v = {first.len ? first : BASE_SLICE_LIT("null"), atts, n_atts};
		ib->ack(ib->rctx, &v);
	}
	in_part_done(ib);
}

typedef struct {
	in_bcast *ib;
	split_packet *sp;
	const base_slice *atts;
	size_t n_atts;
	unsigned timeout_ms;
	size_t asked;
} in_ctx;

static void in_emit_one(sio_socket *s, void *ud)
{
	in_ctx *c = ud;
	c->ib->parts++;
	if (sio_emit_ack(s, c->sp->name, c->sp->args, c->atts, c->n_atts, c->timeout_ms, in_ack,
	                 c->ib) == 0)
		c->asked++;
	else
		c->ib->parts--;
}

int sio_adapter_bcast_ack(const sio_bcast *b, base_slice packet, const base_slice *attachments,
                          size_t n_attachments, unsigned timeout_ms,
                          void (*count)(void *rctx, size_t n),
                          void (*ack)(void *rctx, const sio_value *v), void *rctx)
{
	split_packet sp;
	if (n_attachments > SIO_MAX_ATTACHMENTS || split(packet, &sp))
		return SIO_EBAD_ARGS;
	in_bcast *ib = malloc(sizeof(*ib));
	if (!ib)
		return BASE_ENOMEM;
	*ib = (in_bcast){ack, rctx, 1};
	in_ctx c = {
	    ib, &sp, attachments, n_attachments, timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS, 0};
	sio__bcast_each(b, in_emit_one, &c);
	count(rctx, c.asked);
	in_part_done(ib);
	return 0;
}
