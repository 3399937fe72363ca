/*
 * cluster.c: broadcasts between server processes over PostgreSQL, in the
 * wire format of @socket.io/postgres-adapter (see cluster.h).
 */
#include "cluster_internal.h"

#include <stdlib.h>
#include <string.h>

/* Messages sent in one transaction. */
#define CL_BATCH 32
/* Bounds of what waits to go out, and of what waits to be delivered. */
#define CL_OUT_MAX_MSGS 10000
#define CL_OUT_MAX_BYTES (64u << 20)
#define CL_IN_MAX_MSGS 10000
/* Attachments older than this are deleted, as often (the Node default). */
#define CL_CLEANUP_MS 30000

void cl__unref(sp_cluster *c)
{
	if (--c->refs == 0)
		free(c);
}

cl_nsp *cl__find_nsp(sp_cluster *c, const char *name)
{
	for (unsigned i = 0; i < c->n_nsps; i++) {
		if (strcmp(sio_namespace_name(c->nsps[i].nsp), name) == 0)
			return &c->nsps[i];
	}
	return NULL;
}

/* ---- out ------------------------------------------------------------------- */

static void publish_next(sp_cluster *c);

static void published(const db_result *res, void *ud)
{
	sp_cluster *c = ud;
	unsigned n = db_tx_count(res);

	c->publishing = 0;
	if (!db_ok(res)) {
		BASE_LOGW("cluster", "publishing %u message(s) failed: %s", n, db_error(res));
		c->st.dropped += n;
	} else {
		c->st.published += n;
	}
	if (!c->closed)
		publish_next(c);
	cl__unref(c);
}

static void publish_next(sp_cluster *c)
{
	static const char notify_sql[] = "SELECT pg_notify($1, $2)";
	static const char attach_sql[] =
	    "WITH a AS (INSERT INTO " CL_TABLE " (payload) VALUES ($1::bytea) RETURNING id) "
	    "SELECT pg_notify($2, json_build_object('uid', $3::text, 'nsp', $4::text, 'type', "
	    "$5::int, 'attachmentId', a.id::text)::text) FROM a";
	db_stmt st[CL_BATCH];
	cl_out *batch[CL_BATCH];
	unsigned n = 0;

	if (c->publishing || c->out_head == NULL)
		return;
	while (n < CL_BATCH && c->out_head != NULL) {
		cl_out *o = c->out_head;

		c->out_head = o->next;
		c->out_n--;
		c->out_bytes -= o->size;
		batch[n] = o;
		st[n].sql = o->attach ? attach_sql : notify_sql;
		st[n].nparams = o->attach ? 5 : 2;
		st[n].params = o->p;
		n++;
	}
	if (c->out_head == NULL)
		c->out_tail = NULL;
	/* db_query_tx copies the statements: the batch can go at once. */
	if (db_query_tx(c->db, st, n, published, c) == 0) {
		c->publishing = 1;
		c->refs++;
	} else {
		BASE_LOGW("cluster",
		          "cannot publish %u message(s): the database queue refused them", n);
		c->st.dropped += n;
	}
	for (unsigned i = 0; i < n; i++)
		free(batch[i]);
}

static void enqueue(sp_cluster *c, cl_out *o)
{
	if (c->out_n >= CL_OUT_MAX_MSGS || c->out_bytes + o->size > CL_OUT_MAX_BYTES) {
		if (c->st.dropped++ % 1000 == 0)
			BASE_LOGW("cluster", "%zu messages wait to be published: dropping",
			          c->out_n);
		free(o);
		return;
	}
	o->next = NULL;
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_n++;
	c->out_bytes += o->size;
	publish_next(c);
}

/* A notification carrying the whole message. */
static void out_notify(sp_cluster *c, const char *channel, const char *json, size_t len)
{
	size_t cl = strlen(channel) + 1;
	cl_out *o = malloc(sizeof(*o) + cl + len + 1);

	if (o == NULL) {
		c->st.dropped++;
		return;
	}
	o->attach = 0;
	o->size = sizeof(*o) + cl + len + 1;
	memcpy(o->data, channel, cl);
	memcpy(o->data + cl, json, len);
	o->data[cl + len] = 0;
	o->p[0] = o->data;
	o->p[1] = o->data + cl;
	enqueue(c, o);
}

/* The message as msgpack in the attachments table, its id in the notification. */
static void out_attach(sp_cluster *c, const char *channel, const char *nsp, int type,
                       const base_buf *mp)
{
	static const char hex[] = "0123456789abcdef";
	size_t cl = strlen(channel) + 1, ul = strlen(c->uid) + 1, nl = strlen(nsp) + 1;
	size_t hl = 2 + 2 * mp->len + 1;
	cl_out *o = malloc(sizeof(*o) + hl + cl + ul + nl);
	char *p;

	if (o == NULL) {
		c->st.dropped++;
		return;
	}
	o->attach = 1;
	o->size = sizeof(*o) + hl + cl + ul + nl;
	p = o->data;
	o->p[0] = p;
	*p++ = '\\';
	*p++ = 'x';
	for (size_t i = 0; i < mp->len; i++) {
		*p++ = hex[(unsigned char)mp->data[i] >> 4];
		*p++ = hex[(unsigned char)mp->data[i] & 15];
	}
	*p++ = 0;
	o->p[1] = memcpy(p, channel, cl);
	o->p[2] = memcpy(p + cl, c->uid, ul);
	o->p[3] = memcpy(p + cl + ul, nsp, nl);
	snprintf(o->type, sizeof(o->type), "%d", type);
	o->p[4] = o->type;
	enqueue(c, o);
}

static json_t *rooms_array(const char *const *rooms, unsigned n)
{
	json_t *a = json_array();

	for (unsigned i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(rooms[i]));
	return a;
}

/* {rooms, except, flags} as the Node adapter encodes a broadcast's options. */
json_t *cl__opts_json(const sio_bcast *b, unsigned timeout_ms)
{
	json_t *flags = json_object();

	if (b->is_volatile)
		json_object_set_new(flags, "volatile", json_true());
	if (timeout_ms)
		json_object_set_new(flags, "timeout", json_integer(timeout_ms));
	return json_pack("{s:o,s:o,s:o}", "rooms", rooms_array(b->rooms, b->n_rooms), "except",
	                 rooms_array(b->except, b->n_except), "flags", flags);
}

/*
 * A message (JSON text with placeholders for atts) on cn's channel: in the
 * notification itself, or, with binary or from 8000 bytes on, as msgpack
 * in the table with its id in the notification (as the Node adapter does).
 */
void cl__publish(sp_cluster *c, cl_nsp *cn, int type, const char *json, size_t len,
                 const base_slice *atts, size_t n_atts)
{
	if (c->closed)
		return;
	cn->last_pub = uv_now(c->loop);
	if (n_atts == 0 && len < CL_NOTIFY_MAX) {
		out_notify(c, cn->channel, json, len);
		return;
	}
	base_buf mp = BASE_BUF_INIT;
	if (sio_msgpack_pack_json(&mp, (base_slice){json, len}, atts, n_atts) == 0)
		out_attach(c, cn->channel, sio_namespace_name(cn->nsp), type, &mp);
	else
		c->st.dropped++;
	base_buf_free(&mp);
}

/* sio_bcast_join / leave / disconnect: as socketsJoin, socketsLeave, disconnectSockets. */
static void on_sockets(sio_namespace *nsp, const sio_bcast *b, sio_sockets_op op, const char *room,
                       void *ud)
{
	sp_cluster *c = ud;
	const char *name = sio_namespace_name(nsp);
	cl_nsp *cn = cl__find_nsp(c, name);
	json_t *data, *msg;
	char *text;

	if (c->closed || cn == NULL)
		return;
	if (op == SIO_SOCKETS_JOIN || op == SIO_SOCKETS_LEAVE)
		data = json_pack("{s:o,s:[s]}", "opts", cl__opts_json(b, 0), "rooms", room);
	else
		data = json_pack("{s:o,s:b}", "opts", cl__opts_json(b, 0), "close",
		                 op == SIO_SOCKETS_CLOSE);
	msg = json_pack("{s:s,s:s,s:i,s:o}", "uid", c->uid, "nsp", name, "type",
	                op == SIO_SOCKETS_JOIN    ? CL_SOCKETS_JOIN
	                : op == SIO_SOCKETS_LEAVE ? CL_SOCKETS_LEAVE
	                                          : CL_DISCONNECT_SOCKETS,
	                "data", data);
	text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	if (text)
		cl__publish(c, cn, (int)json_integer_value(json_object_get(msg, "type")), text,
		            strlen(text), NULL, 0);
	else
		c->st.dropped++;
	free(text);
	json_decref(msg);
}

static void on_broadcast(sio_namespace *nsp, const sio_bcast *b, base_slice pdata,
                         const base_slice *atts, size_t n_atts, void *ud)
{
	sp_cluster *c = ud;
	const char *name = sio_namespace_name(nsp);
	cl_nsp *cn = cl__find_nsp(c, name);
	json_t *msg = NULL;
	char *text = NULL;
	base_buf mp = BASE_BUF_INIT;

	if (c->closed || cn == NULL)
		return;
	/* The packet's data goes in as JSON text first; binary is handled below. */
	msg = json_pack("{s:s,s:s,s:i,s:{s:{s:i,s:n,s:s},s:o}}", "uid", c->uid, "nsp", name, "type",
	                CL_BROADCAST, "data", "packet", "type", 2, "data", "nsp", name, "opts",
	                cl__opts_json(b, 0));
	if (msg == NULL) {
		c->st.dropped++;
		return;
	}
	if (n_atts == 0) {
		json_t *data = json_loadb(pdata.base, pdata.len, JSON_DECODE_ANY, NULL);

		if (data == NULL ||
		    json_object_set_new(json_object_get(json_object_get(msg, "data"), "packet"),
		                        "data", data) != 0 ||
		    (text = json_dumps(msg, JSON_COMPACT)) == NULL) {
			c->st.dropped++;
			goto out;
		}
		if (strlen(text) < CL_NOTIFY_MAX) {
			cn->last_pub = uv_now(c->loop);
			out_notify(c, cn->channel, text, strlen(text));
			goto out;
		}
		free(text);
		text = NULL;
		json_object_set_new(json_object_get(json_object_get(msg, "data"), "packet"), "data",
		                    json_null());
	}
	/*
	 * msgpack: the message with "data" null, then the packet's data packed
	 * in its place with its attachments as bin values.
	 */
	text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL || sio_msgpack_pack_json(&mp, (base_slice){text, strlen(text)}, NULL, 0)) {
		c->st.dropped++;
		goto out;
	}
	{
		/* fixstr "data" (0xa4 'd' 'a' 't' 'a') then nil (0xc0), inside "packet". */
		static const char key[] = "\xa4"
		                          "data\xc0";
		char *at = NULL;

		/* The only nil of the envelope: strings are UTF-8, where 0xc0 never occurs. */
		for (size_t i = 0; i + 6 <= mp.len && at == NULL; i++) {
			if (memcmp(mp.data + i, key, 6) == 0)
				at = mp.data + i;
		}
		base_buf whole = BASE_BUF_INIT;
		size_t head = at ? (size_t)(at - mp.data) + 5 : 0;

		if (at != NULL)
			base_buf_append(&whole, mp.data, head);
		if (at == NULL || sio_msgpack_pack_json(&whole, pdata, atts, n_atts) != 0) {
			base_buf_free(&whole);
			c->st.dropped++;
			goto out;
		}
		base_buf_append(&whole, mp.data + head + 1, mp.len - head - 1);
		cn->last_pub = uv_now(c->loop);
		out_attach(c, cn->channel, name, CL_BROADCAST, &whole);
		base_buf_free(&whole);
	}
out:
	free(text);
	base_buf_free(&mp);
	json_decref(msg);
}

/* ---- in -------------------------------------------------------------------- */

int cl__bcast_from(sio_bcast *b, sio_namespace *nsp, json_t *opts)
{
	json_t *v;
	size_t i;

	sio_bcast_init(b, nsp);
	b->local = 1; /* what comes from another node goes no further */
	json_array_foreach(json_object_get(opts, "rooms"), i, v)
	{
		if (!json_is_string(v) || sio_bcast_to(b, json_string_value(v)) != 0)
			return -1;
	}
	json_array_foreach(json_object_get(opts, "except"), i, v)
	{
		if (!json_is_string(v) || sio_bcast_except(b, json_string_value(v)) != 0)
			return -1;
	}
	b->is_volatile = json_is_true(json_object_get(json_object_get(opts, "flags"), "volatile"));
	return 0;
}

static void deliver(sp_cluster *c, cl_nsp *from, json_t *msg, const base_slice *atts, size_t n_atts)
{
	json_t *data = json_object_get(msg, "data"), *v;
	json_t *packet = json_object_get(data, "packet");
	json_t *pdata = json_object_get(packet, "data");
	const char *name = json_string_value(json_object_get(msg, "nsp"));
	/* The emitter (@socket.io/postgres-emitter) names no namespace: its channel's. */
	cl_nsp *cn = name ? cl__find_nsp(c, name) : from;
	const char *uid = json_string_value(json_object_get(msg, "uid"));
	json_int_t type = json_integer_value(json_object_get(msg, "type"));
	json_int_t ptype = json_integer_value(json_object_get(packet, "type"));
	sio_bcast b;
	size_t i;
	char *text = NULL;

	if (cn == NULL)
		return; /* a namespace this node does not serve */
	name = sio_namespace_name(cn->nsp);
	if (uid != NULL)
		cl__node_seen(c, cn, uid);
	if (cl__request_msg(c, cn, msg, atts, n_atts)) {
		c->st.delivered++;
		return;
	}
	if (type == CL_SOCKETS_JOIN || type == CL_SOCKETS_LEAVE) {
		if (cl__bcast_from(&b, cn->nsp, json_object_get(data, "opts")) != 0)
			goto bad;
		json_array_foreach(json_object_get(data, "rooms"), i, v)
		{
			if (json_is_string(v))
				sio_adapter_sockets(&b,
				                    type == CL_SOCKETS_JOIN ? SIO_SOCKETS_JOIN
				                                            : SIO_SOCKETS_LEAVE,
				                    json_string_value(v));
		}
		c->st.delivered++;
		return;
	}
	if (type == CL_DISCONNECT_SOCKETS) {
		if (cl__bcast_from(&b, cn->nsp, json_object_get(data, "opts")) != 0)
			goto bad;
		sio_adapter_sockets(&b,
		                    json_is_true(json_object_get(data, "close"))
		                        ? SIO_SOCKETS_CLOSE
		                        : SIO_SOCKETS_DISCONNECT,
		                    NULL);
		c->st.delivered++;
		return;
	}
	if (type != CL_BROADCAST || (ptype != 2 && ptype != 5) || !json_is_array(pdata)) {
		c->st.ignored++;
		if (!c->warned_kind++)
			BASE_LOGI("cluster",
			          "ignoring messages of type %lld from other nodes (unknown)",
			          (long long)type);
		return;
	}
	if (cl__bcast_from(&b, cn->nsp, json_object_get(data, "opts")) != 0)
		goto bad;
	text = json_dumps(pdata, JSON_COMPACT);
	if (text == NULL ||
	    sio_adapter_deliver(&b, (base_slice){text, strlen(text)}, atts, n_atts) < 0)
		goto bad;
	c->st.delivered++;
	goto out;
bad:
	c->st.dropped++;
	BASE_LOGW("cluster", "dropped a message from another node that could not be applied "
	                     "(too many rooms, or a malformed packet)");
out:
	free(text);
}

/* Delivers, in order, every message at the head that is ready. */
static void drain_in(sp_cluster *c)
{
	while (c->in_head != NULL && c->in_head->ready) {
		cl_in *e = c->in_head;

		c->in_head = e->next;
		if (c->in_head == NULL)
			c->in_tail = NULL;
		c->in_n--;
		if (e->msg != NULL && !c->closed)
			deliver(c, e->cn, e->msg, e->atts, e->n_atts);
		json_decref(e->msg);
		free(e->bytes);
		free(e);
	}
}

static int unhex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static void attachment_read(const db_result *res, void *ud)
{
	cl_in *e = ud;
	sp_cluster *c = e->c;
	const char *hexv = db_ok(res) && db_ntuples(res) == 1 ? db_value(res, 0, 0) : NULL;
	size_t hl = hexv ? db_value_len(res, 0, 0) : 0, n = 0;
	base_buf json = BASE_BUF_INIT;
	const char *err = NULL;

	e->ready = 1;
	if (hexv == NULL || hl < 2 || hexv[0] != '\\' || hexv[1] != 'x' || hl % 2 != 0 ||
	    (e->bytes = malloc(hl / 2)) == NULL) {
		err = db_ok(res) ? "no such attachment" : db_error(res);
		goto fail;
	}
	for (size_t i = 2; i < hl; i += 2) {
		int hi = unhex(hexv[i]), lo = unhex(hexv[i + 1]);

		if (hi < 0 || lo < 0) {
			err = "bad bytea text";
			goto fail;
		}
		e->bytes[n++] = (char)(hi << 4 | lo);
	}
	if (sio_msgpack_to_json(e->bytes, n, &json, e->atts, SIO_MAX_ATTACHMENTS, &e->n_atts,
	                        &err) != 0)
		goto fail;
	e->msg = json_loadb(json.data, json.len, 0, NULL);
	if (e->msg == NULL)
		err = "not a JSON object";
fail:
	if (e->msg == NULL) {
		c->st.dropped++;
		BASE_LOGW("cluster", "dropped a message from another node: %s",
		          err ? err : "unreadable");
	}
	base_buf_free(&json);
	drain_in(c);
	cl__unref(c);
}

static void on_notify(const char *channel, const char *payload, void *ud)
{
	sp_cluster *c = ud;
	json_t *msg, *att;
	cl_in *e;
	cl_nsp *from = NULL;

	if (c->closed)
		return;
	if (payload == NULL) {
		/* (Re-)listening: nothing to re-read, broadcasts are not kept. */
		for (unsigned i = 0; i < c->n_nsps; i++) {
			if (strcmp(c->nsps[i].channel, channel) == 0) {
				c->nsps[i].listening = 1;
				cl__greet(c, &c->nsps[i]);
			}
		}
		return;
	}
	for (unsigned i = 0; i < c->n_nsps && from == NULL; i++) {
		if (strcmp(c->nsps[i].channel, channel) == 0)
			from = &c->nsps[i];
	}
	msg = json_loads(payload, 0, NULL);
	if (!json_is_object(msg)) {
		json_decref(msg);
		c->st.dropped++;
		return;
	}
	const char *uid = json_string_value(json_object_get(msg, "uid"));
	if (uid != NULL && strcmp(uid, c->uid) == 0) {
		json_decref(msg); /* our own */
		return;
	}
	if (c->in_n >= CL_IN_MAX_MSGS || (e = calloc(1, sizeof(*e))) == NULL) {
		json_decref(msg);
		c->st.dropped++;
		return;
	}
	e->c = c;
	e->cn = from;
	att = json_object_get(msg, "attachmentId");
	if (att == NULL) {
		e->ready = 1;
		e->msg = msg;
	} else {
		char id[32];
		const char *params[1] = {id};

		if (json_is_string(att))
			snprintf(id, sizeof(id), "%s", json_string_value(att));
		else
			snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(att));
		json_decref(msg);
		if (db_query(c->db, "SELECT payload FROM " CL_TABLE " WHERE id = $1::bigint", 1,
		             params, attachment_read, e) != 0) {
			free(e);
			c->st.dropped++;
			return;
		}
		c->refs++;
	}
	e->next = NULL;
	if (c->in_tail)
		c->in_tail->next = e;
	else
		c->in_head = e;
	c->in_tail = e;
	c->in_n++;
	drain_in(c);
}

/* ---- life ------------------------------------------------------------------ */

static void query_done(const db_result *res, void *ud)
{
	sp_cluster *c = ud;

	if (!db_ok(res) && !c->closed)
		BASE_LOGW("cluster", "%s", db_error(res));
	cl__unref(c);
}

static void table_done(const db_result *res, void *ud)
{
	sp_cluster *c = ud;
	const char *state = db_sqlstate(res);

	/* Another node created it at the same moment: unique_violation, duplicate_table. */
	if (!db_ok(res) && strcmp(state, "23505") != 0 && strcmp(state, "42P07") != 0)
		BASE_LOGW("cluster", "creating " CL_TABLE ": %s", db_error(res));
	cl__unref(c);
}

static void cleanup_tick(uv_timer_t *t)
{
	sp_cluster *c = t->data;
	static const char sql[] =
	    "DELETE FROM " CL_TABLE " WHERE created_at < now() - make_interval(secs => 30)";

	if (db_query(c->db, sql, 0, NULL, query_done, c) == 0)
		c->refs++;
}

sp_cluster *sp_cluster_new(db_pool *db, uv_loop_t *loop)
{
	static const char table[] = "CREATE TABLE IF NOT EXISTS " CL_TABLE
	                            " (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), "
	                            "payload bytea)";
	unsigned char r[8];
	sp_cluster *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->db = db;
	c->loop = loop;
	base_random_bytes(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(c->uid + 2 * i, 3, "%02x", r[i]);
	c->refs = 3; /* the owner and the timers */
	uv_timer_init(loop, &c->cleanup);
	c->cleanup.data = c;
	uv_timer_start(&c->cleanup, cleanup_tick, CL_CLEANUP_MS, CL_CLEANUP_MS);
	/* Heartbeats out, silent nodes forgotten: checked every second. */
	uv_timer_init(loop, &c->beat);
	c->beat.data = c;
	uv_timer_start(&c->beat, cl__beat_tick, 1000, 1000);
	if (db_query(db, table, 0, NULL, table_done, c) == 0)
		c->refs++;
	return c;
}

int sp_cluster_attach(sp_cluster *c, sio_namespace *nsp)
{
	cl_nsp *cn;
	sio_adapter ad = {on_broadcast, c, on_sockets, cl__fetch, cl__server_emit, cl__bcast_ack};

	if (c->n_nsps == CL_MAX_NSPS)
		return BASE_ELIMIT;
	cn = &c->nsps[c->n_nsps];
	cn->nsp = nsp;
	if ((size_t)snprintf(cn->channel, sizeof(cn->channel), CL_CHANNEL_PREFIX "%s",
	                     sio_namespace_name(nsp)) >= sizeof(cn->channel))
		return BASE_ELIMIT;
	int rc = db_listen(c->db, cn->channel, on_notify, c);
	if (rc != 0)
		return rc;
	c->n_nsps++;
	sio_set_adapter(nsp, &ad);
	return 0;
}

int sp_cluster_ready(const sp_cluster *c)
{
	for (unsigned i = 0; i < c->n_nsps; i++) {
		if (!c->nsps[i].listening)
			return 0;
	}
	return 1;
}

const char *sp_cluster_uid(const sp_cluster *c)
{
	return c->uid;
}

void sp_cluster_stats_get(const sp_cluster *c, sp_cluster_stats *st)
{
	*st = c->st;
}

static void timer_closed(uv_handle_t *h)
{
	cl__unref(h->data);
}

void sp_cluster_free(sp_cluster *c)
{
	if (c == NULL || c->closed)
		return;
	/* The Node adapters stop waiting for this node at once (ADAPTER_CLOSE). */
	for (unsigned i = 0; i < c->n_nsps; i++) {
		char msg[300];
		cl_nsp *cn = &c->nsps[i];
		json_t *nsp = json_string(sio_namespace_name(cn->nsp));
		char *name = nsp ? json_dumps(nsp, JSON_ENCODE_ANY) : NULL;

		if (cn->greeted && name &&
		    (size_t)snprintf(msg, sizeof(msg), "{\"uid\":\"%s\",\"nsp\":%s,\"type\":%d}",
		                     c->uid, name, CL_ADAPTER_CLOSE) < sizeof(msg) &&
		    db_notify(c->db, cn->channel, msg, query_done, c) == 0)
			c->refs++;
		free(name);
		json_decref(nsp);
	}
	c->closed = 1;
	cl__requests_close(c);
	for (unsigned i = 0; i < c->n_nsps; i++) {
		db_unlisten(c->db, c->nsps[i].channel, on_notify, c);
		sio_set_adapter(c->nsps[i].nsp, NULL);
	}
	while (c->out_head != NULL) {
		cl_out *o = c->out_head;

		c->out_head = o->next;
		free(o);
	}
	c->out_tail = NULL;
	/* Messages waiting for their attachment are freed as their answers come. */
	for (cl_in *e = c->in_head; e != NULL && e->ready;) {
		cl_in *next = e->next;

		json_decref(e->msg);
		free(e->bytes);
		free(e);
		c->in_n--;
		e = next;
		c->in_head = e;
	}
	if (c->in_head == NULL)
		c->in_tail = NULL;
	uv_close((uv_handle_t *)&c->cleanup, timer_closed);
	uv_close((uv_handle_t *)&c->beat, timer_closed);
	cl__unref(c);
}
