/*
 * admin_ui.c: the server side of the @socket.io/admin-ui dashboard, what
 * instrument() does in Node: a namespace ("/admin") behind a login, where
 * the dashboard hears "config", "server_stats" every two seconds, and (in
 * development mode) "all_sockets" and one message per socket connected or
 * disconnected, room joined or left, event received or sent; and where it
 * may ask for "emit", "join", "leave" and "_disconnect" (not in read-only
 * mode).
 *
 * The rest of the layer calls the sio__admin_* hooks only when srv->admin
 * is set, so a server without the admin UI pays one pointer test per hook.
 * Messages are built as JSON text and broadcast to the admin namespace; with
 * nobody logged in, the hooks return at once.
 *
 * In a cluster (the namespace has an adapter), the dashboard sees every
 * node, as with Node's adapters: "all_sockets" is gathered with
 * fetchSockets from every node, and while some node has a dashboard logged
 * in (it says so to the others with a serverSideEmit every stats interval),
 * every node's messages, server_stats included, are broadcast through the
 * adapter rather than to this node's dashboards only. Sockets described to
 * other nodes carry data._admin {clientId, transport} in development mode,
 * as instrument() sets it, so that those nodes can show them.
 *
 * Passwords are checked on libuv's thread pool (bcrypt and argon2id cost
 * tens of milliseconds on purpose): the namespace middleware waits for the
 * answer, as sio_use allows, and the loop goes on meanwhile.
 */
#include <crypt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"
#include "socketio_internal.h"

#define ADMIN_SESSIONS 128
#define ADMIN_SESSION_TTL_MS (24ull * 3600 * 1000)
#define ADMIN_MAX_VERIFYING 2               /* password checks at once (argon2id: 64 MiB each) */
#define ADMIN_MAX_PASSWORD 1024             /* longer ones are refused unchecked */
#define ADMIN_BUCKETS 64                    /* aggregated events kept between two server_stats */
#define ADMIN_SESSION_ID_BYTES 8            /* as Node: 16 hex digits */
#define ADMIN_PEER_EVENT "_admin_listening" /* serverSideEmit: a dashboard is on that node */
#define ADMIN_PEER_TTL_MS 7000              /* how long one such message counts */
#define ADMIN_FETCH_TIMEOUT_MS 3000         /* all_sockets waits this long for the other nodes */

enum { HASH_NONE = 0, HASH_BCRYPT, HASH_ARGON2 };

typedef struct {
	char id[ADMIN_SESSION_ID_BYTES * 2 + 1];
	uint64_t expires; /* loop time, ms */
} admin_session;

typedef struct {
	uint64_t timestamp; /* ms since the epoch, whole seconds */
	const char *type;
	const char *sub_type; /* NULL: none */
	uint64_t count;
} admin_bucket;

struct sio_admin {
	sio_server *srv;
	sio_namespace *nsp;
	char *username, *hash, *server_id;
	int hash_kind;
	int no_auth, readonly, production;
	size_t max_listed;
	unsigned stats_every; /* ticks (seconds) between two server_stats */
	unsigned ticks;
	char hostname[256];
	uv_timer_t timer;
	uint64_t started; /* loop time at attach */
	eio_stats last;   /* the engine's counters at the last tick */
	admin_bucket buckets[ADMIN_BUCKETS];
	size_t n_buckets;
	admin_session sessions[ADMIN_SESSIONS];
	size_t next_session;
	unsigned verifying;
	unsigned gathering;   /* all_sockets being gathered from the nodes */
	uint64_t peers_until; /* loop time until which another node has a dashboard */
	int closing, timer_closed;
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A JSON date as Node's JSON.stringify(new Date()) writes it, with quotes. */
static void iso_date(char out[32], uint64_t ms)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t n = strftime(out, 32, "\"%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03uZ\"", (unsigned)(ms % 1000));
}

static void append_str(base_buf *b, const char *s, size_t len)
{
	sio_json_append_string(b, s, len);
}

static void append_cstr(base_buf *b, const char *s)
{
	sio_json_append_string(b, s, strlen(s));
}

/* Another node has a dashboard logged in (it said so lately). */
static int peers_listening(const sio_admin *a)
{
	return a->peers_until > uv_now(a->srv->loop);
}

/*
 * Sends an event with JSON arguments to every socket of the admin namespace:
 * of this node only, or of every node while another node has a dashboard.
 */
static void admin_send(sio_admin *a, const char *event, const base_buf *args)
{
	if (!args->data)
		return; /* out of memory while building it */
	sio_bcast b;
	sio_bcast_init(&b, a->nsp);
	b.local = !peers_listening(a);
	sio_bcast_emit(&b, event, (base_slice){args->data, args->len}, NULL, 0);
}

static int listening(const sio_admin *a)
{
	return a && !a->closing && (a->nsp->n_sockets > 0 || peers_listening(a));
}

/* Tells the other nodes (if any) that a dashboard is logged in here. */
static void announce(sio_admin *a)
{
	if (a->nsp->n_sockets > 0) /* without an adapter this sends nothing */
		sio_server_side_emit(a->nsp, ADMIN_PEER_EVENT, (base_slice){"", 0}, NULL, 0, 0,
		                     NULL, NULL);
}

static void on_peer(const sio_server_event *ev, void *ud)
{
	(void)ev;
	sio_admin *a = ud;
	a->peers_until = uv_now(a->srv->loop) + ADMIN_PEER_TTL_MS;
}

/* ---- passwords and sessions --------------------------------------------- */

static int hash_kind(const char *hash)
{
	if (strncmp(hash, "$argon2id$", 10) == 0 || strncmp(hash, "$argon2i$", 9) == 0)
		return crypto_pwhash_str_needs_rehash(hash, crypto_pwhash_OPSLIMIT_MIN,
		                                      crypto_pwhash_MEMLIMIT_MIN) < 0
		           ? HASH_NONE
		           : HASH_ARGON2;
	if ((strncmp(hash, "$2a$", 4) == 0 || strncmp(hash, "$2b$", 4) == 0 ||
	     strncmp(hash, "$2y$", 4) == 0) &&
	    strlen(hash) == 60) {
		/* Only a hash this libcrypt can compute is accepted. */
		struct crypt_data *cd = base_xcalloc(1, sizeof(*cd));
		const char *r = crypt_r("", hash, cd);
		int ok = r && strncmp(r, hash, 29) == 0;
		free(cd);
		return ok ? HASH_BCRYPT : HASH_NONE;
	}
	return HASH_NONE;
}

int sio_admin_hash_valid(const char *hash)
{
	return hash && sodium_init() >= 0 && hash_kind(hash) != HASH_NONE;
}

/* Runs on the thread pool. */
static int password_ok(int kind, const char *hash, const char *password, size_t len)
{
	if (kind == HASH_ARGON2)
		return crypto_pwhash_str_verify(hash, password, len) == 0;
	if (kind != HASH_BCRYPT)
		return 0;
	struct crypt_data *cd = base_xcalloc(1, sizeof(*cd));
	const char *r = crypt_r(password, hash, cd);
	size_t hl = strlen(hash);
	int ok = r && strlen(r) == hl && sodium_memcmp(r, hash, hl) == 0;
	sodium_memzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static int session_valid(sio_admin *a, const char *id)
{
	uint64_t now = uv_now(a->srv->loop);
	size_t len = strlen(id);
	if (len != ADMIN_SESSION_ID_BYTES * 2)
		return 0;
	for (size_t i = 0; i < ADMIN_SESSIONS; i++)
		if (a->sessions[i].expires > now && sodium_memcmp(a->sessions[i].id, id, len) == 0)
			return 1;
	return 0;
}

static const char *session_new(sio_admin *a)
{
	/* The oldest is forgotten: at most ADMIN_SESSIONS dashboards stay logged in. */
	admin_session *s = &a->sessions[a->next_session++ % ADMIN_SESSIONS];
	unsigned char raw[ADMIN_SESSION_ID_BYTES];
	base_random_bytes(raw, sizeof(raw));
	sodium_bin2hex(s->id, sizeof(s->id), raw, sizeof(raw));
	s->expires = uv_now(a->srv->loop) + ADMIN_SESSION_TTL_MS;
	return s->id;
}

typedef struct {
	uv_work_t req;
	sio_admin *a;
	sio_socket *s;
	char *password;
	size_t password_len;
	int user_ok, ok;
	const char *session; /* set for on_connection while sio_next runs */
} admin_login;

static void admin_maybe_free(sio_admin *a);

static void login_work(uv_work_t *req)
{
	admin_login *l = req->data;
	int ok = password_ok(l->a->hash_kind, l->a->hash, l->password, l->password_len);
	l->ok = ok && l->user_ok;
}

static void login_done(uv_work_t *req, int status)
{
	admin_login *l = req->data;
	sio_admin *a = l->a;
	a->verifying--;
	sodium_memzero(l->password, l->password_len);
	free(l->password);
	if (status == 0 && l->ok && !a->closing && sio_socket_alive(l->s)) {
		l->session = session_new(a);
		sio_socket_set_data(l->s, l);
		sio_next(l->s); /* on_connection takes l->session; s may be freed after this */
	} else {
		if (!a->closing && sio_socket_alive(l->s))
			BASE_LOGW("sio", "admin UI: login refused for %s",
			          sio_handshake_address(l->s));
		sio_refuse(l->s, "invalid credentials", NULL);
	}
	free(l);
	admin_maybe_free(a);
}

static void admin_auth(sio_socket *s, void *ud)
{
	sio_admin *a = ud;
	sio_socket_set_data(s, NULL);
	if (a->no_auth) {
		sio_next(s);
		return;
	}
	base_slice auth = sio_handshake_auth(s);
	json_t *j = json_loadb(auth.base, auth.len, 0, NULL);
	json_t *sid = json_object_get(j, "sessionId");
	json_t *user = json_object_get(j, "username");
	json_t *pass = json_object_get(j, "password");
	admin_login *l = NULL;
	if (json_is_string(sid) && session_valid(a, json_string_value(sid))) {
		json_decref(j);
		sio_next(s);
		return;
	}
	if (!json_is_string(user) || !json_is_string(pass) ||
	    json_string_length(pass) > ADMIN_MAX_PASSWORD ||
	    strlen(json_string_value(pass)) != json_string_length(pass)) {
		sio_refuse(s, "invalid credentials", NULL);
		goto out;
	}
	if (a->verifying >= ADMIN_MAX_VERIFYING) {
		BASE_LOGW("sio", "admin UI: too many logins at once; refusing %s",
		          sio_handshake_address(s));
		sio_refuse(s, "invalid credentials", NULL);
		goto out;
	}
	l = base_xcalloc(1, sizeof(*l));
	l->password = base_xmalloc(json_string_length(pass) + 1);
	l->password_len = json_string_length(pass);
	memcpy(l->password, json_string_value(pass), l->password_len + 1);
	size_t ulen = json_string_length(user);
	/* The hash is checked whatever the name, so that a wrong name takes as long. */
	l->user_ok = ulen == strlen(a->username) &&
	             sodium_memcmp(json_string_value(user), a->username, ulen) == 0;
	l->a = a;
	l->s = s;
	l->req.data = l;
	if (uv_queue_work(a->srv->loop, &l->req, login_work, login_done)) {
		free(l->password);
		free(l);
		sio_refuse(s, "Server busy", NULL);
		goto out;
	}
	a->verifying++;
out:
	json_decref(j);
}

/* ---- what a socket looks like to the dashboard -------------------------- */

static json_t *query_object(base_slice q)
{
	json_t *o = json_object();
	const char *p = q.base, *end = q.base + q.len;
	while (p && p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *kend = eq ? eq : stop;
		size_t kl = (size_t)(kend - p), vl = eq ? (size_t)(stop - eq - 1) : 0;
		char *k = base_xmalloc(kl + 1), *v = base_xmalloc(vl + 1);
		ssize_t kn = base_url_decode(p, kl, k, 1);
		ssize_t vn = base_url_decode(eq ? eq + 1 : "", vl, v, 1);
		if (kn > 0 && vn >= 0) {
			json_t *val = json_stringn(v, (size_t)vn); /* NULL when not UTF-8 */
			char *kz = base_xstrndup(k, (size_t)kn);
			if (val)
				json_object_set_new(o, kz, val);
			free(kz);
		}
		free(k);
		free(v);
		p = stop + 1;
	}
	return o;
}

static json_t *headers_object(const sio_socket *s)
{
	json_t *o = json_object();
	const sio_client *c = s->client;
	for (size_t i = 0; c && i < c->n_headers; i++) {
		base_slice n = c->headers[i].name, v = c->headers[i].value;
		char *name = base_xmalloc(n.len + 1);
		for (size_t k = 0; k < n.len; k++)
			name[k] = (char)((n.base[k] >= 'A' && n.base[k] <= 'Z') ? n.base[k] + 32
			                                                        : n.base[k]);
		name[n.len] = 0;
		json_t *val = json_stringn(v.base, v.len); /* NULL when not UTF-8: left out */
		if (val && strlen(name) == n.len)
			json_object_set_new(o, name, val);
		else
			json_decref(val);
		free(name);
	}
	return o;
}

/* The handshake's time as Node's Date.prototype.toString writes it (UTC). */
static json_t *date_string(uint64_t ms)
{
	char out[80];
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	strftime(out, sizeof(out), "%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)",
	         &tm);
	return json_string(out);
}

/* socket.data without the "_admin" key, as Node's dashboard shows it ({} when not an object). */
static json_t *user_data(base_slice json)
{
	json_t *v = json.len ? json_loadb(json.base, json.len, JSON_DECODE_ANY, NULL) : NULL;
	if (!json_is_object(v)) {
		json_decref(v);
		return json_object();
	}
	json_object_del(v, "_admin");
	return v;
}

static json_t *serialize(sio_admin *a, sio_socket *s)
{
	eio_socket *es = sio_socket_engine(s);
	const char *eid = es ? eio_socket_id(es) : "";
	base_slice q = sio_handshake_query(s);
	base_buf url = BASE_BUF_INIT;
	base_buf_append_str(&url, a->srv->opts.eio.path ? a->srv->opts.eio.path : "/socket.io/");
	base_buf_append(&url, "?", 1);
	base_buf_append(&url, q.base ? q.base : "", q.len);
	json_t *hs =
	    json_pack("{s:s, s:o, s:o, s:I, s:b, s:o, s:s%, s:b}", "address",
	              sio_handshake_address(s), "headers", headers_object(s), "query",
	              query_object(q), "issued", (json_int_t)sio_handshake_time(s), "secure", 0,
	              "time", date_string(sio_handshake_time(s)), "url", url.data ? url.data : "",
	              url.data ? url.len : 0, "xdomain", sio_handshake_header(s, "origin") != NULL);
	base_buf_free(&url);
	json_t *rooms = json_array();
	for (const base_list *pos = s->rooms.next; pos != &s->rooms; pos = pos->next) {
		const sio_membership *m = BASE_CONTAINER_OF(pos, sio_membership, sock_link);
		json_array_append_new(rooms, json_stringn(m->room->name, m->room->name_len));
	}
	return json_pack("{s:s, s:s%, s:s, s:s, s:o, s:o, s:o}", "id", s->id, "clientId", eid,
	                 strlen(eid) < 12 ? strlen(eid) : (size_t)12, "transport",
	                 es ? eio_socket_transport(es) : "websocket", "nsp", s->nsp->name, "data",
	                 user_data((base_slice){s->data_json, s->data_json_len}), "handshake", hs,
	                 "rooms", rooms);
}

/* A socket of another node as the dashboard shows it, from what fetchSockets gave. */
static json_t *serialize_remote(const sio_socket_desc *d, const char *nsp)
{
	json_t *hs =
	    json_loadb(d->handshake.base ? d->handshake.base : "", d->handshake.len, 0, NULL);
	json_t *rooms = json_loadb(d->rooms.base ? d->rooms.base : "", d->rooms.len, 0, NULL);
	json_t *data =
	    json_loadb(d->data.base ? d->data.base : "", d->data.len, JSON_DECODE_ANY, NULL);
	json_t *mine = json_object_get(data, "_admin"); /* NULL unless data is an object */
	if (!json_is_object(hs)) {
		json_decref(hs);
		hs = json_object();
	}
	if (!json_is_array(rooms)) {
		json_decref(rooms);
		rooms = json_array();
	}
	/* Never shown (as Node's dashboard). The address is the one its node
	 * found (--trust-proxy applied there), as for this node's sockets. */
	json_object_del(hs, "auth");
	const char *client = json_string_value(json_object_get(mine, "clientId"));
	const char *transport = json_string_value(json_object_get(mine, "transport"));
	json_t *o = json_pack("{s:s%, s:s, s:s, s:s, s:o, s:o, s:o}", "id", d->id, strlen(d->id),
	                      "clientId", client ? client : "", "transport",
	                      transport ? transport : "websocket", "nsp", nsp, "data",
	                      user_data(d->data), "handshake", hs, "rooms", rooms);
	json_decref(data);
	return o;
}

static void append_json(base_buf *b, json_t *v)
{
	char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	if (text)
		base_buf_append_str(b, text);
	else
		base_buf_append_str(b, "null");
	free(text);
}

/* ---- hooks from the rest of the layer ------------------------------------ */

int sio__admin_data(const sio_socket *s, base_buf *out)
{
	const sio_admin *a = s->nsp->srv->admin;
	const char *end = s->data_json + s->data_json_len;
	const char *p = s->data_json ? sio__json_skip_ws(s->data_json, end) : NULL;
	if (a->production || a->closing || (p && p < end && *p != '{'))
		return 0; /* not an object: left as it is */
	eio_socket *es = sio_socket_engine(s);
	const char *eid = es ? eio_socket_id(es) : "";
	base_buf_append_str(out, "{\"_admin\":{\"clientId\":");
	append_str(out, eid, strlen(eid) < 12 ? strlen(eid) : 12);
	base_buf_append_str(out, ",\"transport\":");
	append_cstr(out, es ? eio_socket_transport(es) : "websocket");
	base_buf_append(out, "}", 1);
	if (p && p < end) {
		const char *q = sio__json_skip_ws(p + 1, end); /* after the object's '{' */
		if (q < end && *q != '}')
			base_buf_append(out, ",", 1);
		base_buf_append(out, q, (size_t)(end - q));
	} else {
		base_buf_append(out, "}", 1);
	}
	return 1;
}

void sio__admin_connected(sio_socket *s)
{
	sio_admin *a = s->nsp->srv->admin;
	if (a->production || !listening(a))
		return;
	char date[32];
	iso_date(date, wall_ms());
	json_t *v = serialize(a, s);
	base_buf b = BASE_BUF_INIT;
	append_json(&b, v);
	base_buf_append(&b, ",", 1);
	base_buf_append_str(&b, date);
	json_decref(v);
	admin_send(a, "socket_connected", &b);
	base_buf_free(&b);
}

/* An event whose arguments are the namespace, two strings and the date. */
static void notify_nsp2(sio_admin *a, const char *event, const sio_socket *s, const char *x,
                        size_t xlen, const char *y, size_t ylen)
{
	char date[32];
	iso_date(date, wall_ms());
	base_buf b = BASE_BUF_INIT;
	append_str(&b, s->nsp->name, s->nsp->name_len);
	base_buf_append(&b, ",", 1);
	append_str(&b, x, xlen);
	base_buf_append(&b, ",", 1);
	append_str(&b, y, ylen);
	base_buf_append(&b, ",", 1);
	base_buf_append_str(&b, date);
	admin_send(a, event, &b);
	base_buf_free(&b);
}

void sio__admin_disconnected(sio_socket *s, const char *reason)
{
	sio_admin *a = s->nsp->srv->admin;
	if (a->production || !listening(a))
		return;
	notify_nsp2(a, "socket_disconnected", s, s->id, strlen(s->id), reason, strlen(reason));
}

void sio__admin_updated(sio_socket *s)
{
	sio_admin *a = s->nsp->srv->admin;
	eio_socket *es = sio_socket_engine(s);
	if (a->production || !listening(a) || !es)
		return;
	base_buf b = BASE_BUF_INIT;
	base_buf_append_str(&b, "{\"id\":");
	append_cstr(&b, s->id);
	base_buf_append_str(&b, ",\"nsp\":");
	append_str(&b, s->nsp->name, s->nsp->name_len);
	base_buf_append_str(&b, ",\"transport\":");
	append_cstr(&b, eio_socket_transport(es));
	base_buf_append(&b, "}", 1);
	admin_send(a, "socket_updated", &b);
	base_buf_free(&b);
}

void sio__admin_room(sio_socket *s, const char *room, size_t len, int joined)
{
	sio_admin *a = s->nsp->srv->admin;
	if (a->production || !listening(a))
		return;
	notify_nsp2(a, joined ? "room_joined" : "room_left", s, room, len, s->id, strlen(s->id));
}

void sio__admin_event(sio_socket *s, int outgoing, base_slice name, base_slice args)
{
	sio_admin *a = s->nsp->srv->admin;
	/* The dashboard's own traffic is not reported to it (as in Node). */
	if (a->production || s->nsp == a->nsp || !listening(a))
		return;
	char date[32];
	iso_date(date, wall_ms());
	base_buf b = BASE_BUF_INIT;
	append_str(&b, s->nsp->name, s->nsp->name_len);
	base_buf_append(&b, ",", 1);
	append_cstr(&b, s->id);
	base_buf_append(&b, ",[", 2);
	append_str(&b, name.base, name.len);
	if (args.len) {
		base_buf_append(&b, ",", 1);
		base_buf_append(&b, args.base, args.len);
	}
	base_buf_append(&b, "],", 2);
	base_buf_append_str(&b, date);
	admin_send(a, outgoing ? "event_sent" : "event_received", &b);
	base_buf_free(&b);
}

/* ---- the dashboard connects ---------------------------------------------- */

static void append_features(sio_admin *a, base_buf *b)
{
	static const char *const writes[] = {"EMIT",  "JOIN",   "LEAVE",      "DISCONNECT",
	                                     "MJOIN", "MLEAVE", "MDISCONNECT"};
	int n = 0;
	base_buf_append_str(b, "{\"supportedFeatures\":[");
	for (size_t i = 0; !a->readonly && i < BASE_ARRAY_SIZE(writes); i++)
		base_buf_printf(b, "%s\"%s\"", n++ ? "," : "", writes[i]);
	base_buf_printf(b, "%s\"AGGREGATED_EVENTS\"", n++ ? "," : "");
	if (!a->production)
		base_buf_append_str(b, ",\"ALL_EVENTS\"");
	base_buf_append_str(b, "]}");
}

/*
 * "all_sockets": every namespace's sockets on every node (fetchSockets, as
 * Node's dashboard has them), at most max_listed; sent to the dashboard's
 * socket by its id once every namespace has answered (it may have left by
 * then: the message then goes nowhere).
 */
typedef struct {
	sio_admin *a;
	char to[SIO_ID_LEN + 1];
	json_t *list;
	size_t total;
	unsigned pending;
} admin_gather;

typedef struct {
	admin_gather *g;
	char nsp[];
} admin_gather_part;

static void gather_done(admin_gather *g)
{
	sio_admin *a = g->a;
	if (g->total > json_array_size(g->list))
		BASE_LOGW("sio", "admin UI: all_sockets lists %zu of %zu sockets",
		          json_array_size(g->list), g->total);
	if (!a->closing) {
		base_buf b = BASE_BUF_INIT;
		append_json(&b, g->list);
		sio_bcast bc;
		sio_bcast_init(&bc, a->nsp);
		bc.local = 1;
		sio_bcast_to(&bc, g->to);
		if (b.data)
			sio_bcast_emit(&bc, "all_sockets", (base_slice){b.data, b.len}, NULL, 0);
		base_buf_free(&b);
	}
	json_decref(g->list);
	free(g);
	a->gathering--;
	admin_maybe_free(a);
}

static void gathered(int err, const sio_socket_desc *v, size_t n, void *ud)
{
	admin_gather_part *p = ud;
	admin_gather *g = p->g;
	if (err == SIO_ETIMEDOUT)
		BASE_LOGW("sio", "admin UI: all_sockets: a node did not answer for %s in time",
		          p->nsp);
	for (size_t i = 0; i < n && !g->a->closing; i++) {
		g->total++;
		if (json_array_size(g->list) >= g->a->max_listed)
			continue;
		json_t *o =
		    v[i].socket ? serialize(g->a, v[i].socket) : serialize_remote(&v[i], p->nsp);
		if (o)
			json_array_append_new(g->list, o);
	}
	free(p);
	if (--g->pending == 0)
		gather_done(g);
}

static void send_all_sockets(sio_admin *a, sio_socket *to)
{
	admin_gather *g = base_xcalloc(1, sizeof(*g));
	g->a = a;
	snprintf(g->to, sizeof(g->to), "%s", to->id);
	g->list = json_array();
	g->pending = 1; /* this function's own part: the message waits for the loop below */
	a->gathering++;
	for (base_list *p = a->srv->namespaces.next; p != &a->srv->namespaces; p = p->next) {
		sio_namespace *nsp = BASE_CONTAINER_OF(p, sio_namespace, link);
		admin_gather_part *part = base_xmalloc(sizeof(*part) + nsp->name_len + 1);
		part->g = g;
		memcpy(part->nsp, nsp->name, nsp->name_len);
		part->nsp[nsp->name_len] = 0;
		sio_bcast b;
		sio_bcast_init(&b, nsp);
		g->pending++;
		if (sio_fetch_sockets(&b, ADMIN_FETCH_TIMEOUT_MS, gathered, part) != 0) {
			free(part);
			g->pending--;
		}
	}
	if (--g->pending == 0)
		gather_done(g);
}

static void admin_connected(sio_socket *s, void *ud)
{
	sio_admin *a = ud;
	admin_login *l = sio_socket_data(s);
	sio_socket_set_data(s, NULL);
	if (l && l->session) {
		base_buf b = BASE_BUF_INIT;
		append_cstr(&b, l->session);
		if (b.data)
			sio_emit(s, "session", (base_slice){b.data, b.len}, NULL, 0);
		base_buf_free(&b);
	}
	base_buf b = BASE_BUF_INIT;
	append_features(a, &b);
	if (b.data)
		sio_emit(s, "config", (base_slice){b.data, b.len}, NULL, 0);
	base_buf_free(&b);
	if (!a->production && sio_socket_connected(s))
		send_all_sockets(a, s);
	announce(a);
}

/* ---- the dashboard's commands -------------------------------------------- */

/* The arguments as a JSON array (NULL when not one). */
static json_t *args_array(const sio_event *ev)
{
	base_buf b = BASE_BUF_INIT;
	base_buf_append(&b, "[", 1);
	base_buf_append(&b, ev->args.base ? ev->args.base : "", ev->args.len);
	base_buf_append(&b, "]", 1);
	json_t *v = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
	base_buf_free(&b);
	if (v && !json_is_array(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/*
 * The sockets a command is about: those of namespace args[0] (only one that
 * exists: a command does not create namespaces), in room args[filter_at] when
 * that is a string (the dashboard gives a socket id, whose own room it is).
 */
static int command_target(sio_admin *a, json_t *args, size_t filter_at, sio_bcast *b)
{
	const char *name = json_string_value(json_array_get(args, 0));
	sio_namespace *nsp = name ? sio_find(a->srv, name, strlen(name)) : NULL;
	if (!nsp)
		return -1;
	sio_bcast_init(b, nsp);
	const char *filter = json_string_value(json_array_get(args, filter_at));
	if (filter && *filter)
		sio_bcast_to(b, filter);
	return 0;
}

static void cmd_emit(const sio_event *ev, void *ud)
{
	sio_admin *a = ud;
	json_t *args = args_array(ev);
	const char *event = json_string_value(json_array_get(args, 2));
	static const char *const reserved[] = {"connect",       "connect_error", "disconnect",
	                                       "disconnecting", "newListener",   "removeListener"};
	sio_bcast b;
	if (!event || command_target(a, args, 1, &b))
		goto out;
	for (size_t i = 0; i < BASE_ARRAY_SIZE(reserved); i++)
		if (strcmp(event, reserved[i]) == 0)
			goto out;
	base_buf rest = BASE_BUF_INIT;
	for (size_t i = 3; i < json_array_size(args); i++) {
		if (i > 3)
			base_buf_append(&rest, ",", 1);
		append_json(&rest, json_array_get(args, i));
	}
	sio_bcast_emit(&b, event, (base_slice){rest.data ? rest.data : "", rest.len},
	               ev->attachments, ev->n_attachments);
	base_buf_free(&rest);
out:
	json_decref(args);
}

static void cmd_rooms(sio_admin *a, const sio_event *ev, int join)
{
	json_t *args = args_array(ev);
	const char *room = json_string_value(json_array_get(args, 1));
	sio_bcast b;
	if (room && *room && command_target(a, args, 2, &b) == 0)
		(join ? sio_bcast_join : sio_bcast_leave)(&b, room);
	json_decref(args);
}

static void cmd_join(const sio_event *ev, void *ud)
{
	cmd_rooms(ud, ev, 1);
}

static void cmd_leave(const sio_event *ev, void *ud)
{
	cmd_rooms(ud, ev, 0);
}

static void cmd_disconnect(const sio_event *ev, void *ud)
{
	sio_admin *a = ud;
	json_t *args = args_array(ev);
	sio_bcast b;
	if (args && command_target(a, args, 2, &b) == 0)
		sio_bcast_disconnect(&b, json_is_true(json_array_get(args, 1)));
	json_decref(args);
}

/* ---- server_stats --------------------------------------------------------- */

static void bucket_add(sio_admin *a, uint64_t ts, const char *type, const char *sub, uint64_t count)
{
	if (!count)
		return;
	for (size_t i = 0; i < a->n_buckets; i++) {
		admin_bucket *k = &a->buckets[i];
		if (k->timestamp == ts && k->type == type && k->sub_type == sub) {
			k->count += count;
			return;
		}
	}
	if (a->n_buckets < ADMIN_BUCKETS)
		a->buckets[a->n_buckets++] = (admin_bucket){ts, type, sub, count};
}

/* What the engine counted since the last tick, as Node's per-second aggregated events. */
static void sample(sio_admin *a)
{
	eio_stats st;
	eio_server_get_stats(a->srv->eio, &st);
	uint64_t ts = wall_ms() / 1000 * 1000;
	bucket_add(a, ts, "rawConnection", NULL,
	           st.opened[0] + st.opened[1] - a->last.opened[0] - a->last.opened[1]);
	for (int r = 0; r < EIO_CLOSE_REASONS; r++)
		bucket_add(a, ts, "rawDisconnection", eio_close_reason_str((eio_close_reason)r),
		           st.closed[r] - a->last.closed[r]);
	bucket_add(a, ts, "packetsIn", NULL, st.msgs_in - a->last.msgs_in);
	bucket_add(a, ts, "packetsOut", NULL, st.msgs_out - a->last.msgs_out);
	bucket_add(a, ts, "bytesIn", NULL, st.bytes_in - a->last.bytes_in);
	bucket_add(a, ts, "bytesOut", NULL, st.bytes_out - a->last.bytes_out);
	a->last = st;
}

static void send_stats(sio_admin *a)
{
	eio_stats st;
	eio_server_get_stats(a->srv->eio, &st);
	base_buf b = BASE_BUF_INIT;
	base_buf_append_str(&b, "{\"serverId\":");
	append_cstr(&b, a->server_id);
	base_buf_append_str(&b, ",\"hostname\":");
	append_cstr(&b, a->hostname);
	uint64_t up = uv_now(a->srv->loop) - a->started;
	base_buf_printf(&b,
	                ",\"pid\":%ld,\"uptime\":%llu.%03u,\"clientsCount\":%zu,"
	                "\"pollingClientsCount\":%llu,\"aggregatedEvents\":[",
	                (long)getpid(), (unsigned long long)(up / 1000), (unsigned)(up % 1000),
	                eio_server_clients(a->srv->eio), (unsigned long long)st.open[0]);
	for (size_t i = 0; i < a->n_buckets; i++) {
		const admin_bucket *k = &a->buckets[i];
		base_buf_printf(&b, "%s{\"timestamp\":%llu,\"type\":\"%s\"", i ? "," : "",
		                (unsigned long long)k->timestamp, k->type);
		if (k->sub_type) {
			base_buf_append_str(&b, ",\"subType\":");
			append_cstr(&b, k->sub_type);
		}
		base_buf_printf(&b, ",\"count\":%llu}", (unsigned long long)k->count);
	}
	base_buf_append_str(&b, "],\"namespaces\":[");
	int first = 1;
	for (base_list *p = a->srv->namespaces.next; p != &a->srv->namespaces; p = p->next) {
		sio_namespace *nsp = BASE_CONTAINER_OF(p, sio_namespace, link);
		base_buf_append_str(&b, first ? "{\"name\":" : ",{\"name\":");
		append_str(&b, nsp->name, nsp->name_len);
		base_buf_printf(&b, ",\"socketsCount\":%zu}", nsp->n_sockets);
		first = 0;
	}
	base_buf_append_str(&b, "]}");
	admin_send(a, "server_stats", &b);
	base_buf_free(&b);
}

static void on_tick(uv_timer_t *t)
{
	sio_admin *a = t->data;
	sample(a);
	if (++a->ticks % a->stats_every)
		return;
	announce(a);
	if (listening(a))
		send_stats(a);
	a->n_buckets = 0;
}

/* ---- attach and free ------------------------------------------------------ */

void sio_admin_options_default(sio_admin_options *o)
{
	memset(o, 0, sizeof(*o));
	o->nsp = "/admin";
	o->stats_interval_ms = 2000;
	o->max_sockets_listed = 10000;
}

static void admin_maybe_free(sio_admin *a)
{
	if (!a->closing || !a->timer_closed || a->verifying || a->gathering)
		return;
	free(a->username);
	if (a->hash)
		sodium_memzero(a->hash, strlen(a->hash));
	free(a->hash);
	free(a->server_id);
	free(a);
}

static void timer_closed(uv_handle_t *h)
{
	sio_admin *a = h->data;
	a->timer_closed = 1;
	admin_maybe_free(a);
}

int sio_admin_ui_attach(sio_server *srv, const sio_admin_options *o)
{
	if (srv->admin || !o || !o->nsp || o->nsp[0] != '/' ||
	    (!o->no_auth && (!o->username || !o->password_hash)))
		return BASE_EINVAL;
	if (sodium_init() < 0)
		return BASE_ENOMEM;
	int kind = o->no_auth ? HASH_NONE : hash_kind(o->password_hash);
	if (!o->no_auth && kind == HASH_NONE)
		return BASE_EINVAL;
	sio_admin *a = base_xcalloc(1, sizeof(*a));
	a->srv = srv;
	a->hash_kind = kind;
	a->no_auth = o->no_auth;
	a->readonly = o->readonly;
	a->production = o->production;
	a->max_listed = o->max_sockets_listed;
	a->stats_every = o->stats_interval_ms >= 2000 ? o->stats_interval_ms / 1000 : 2;
	if (gethostname(a->hostname, sizeof(a->hostname) - 1))
		snprintf(a->hostname, sizeof(a->hostname), "localhost");
	a->username = o->username ? base_xstrdup(o->username) : NULL;
	a->hash = o->password_hash ? base_xstrdup(o->password_hash) : NULL;
	a->server_id = base_xstrdup(o->server_id ? o->server_id : a->hostname);
	a->nsp = sio_of(srv, o->nsp);
	if (!a->nsp || sio_use(a->nsp, admin_auth, a)) {
		a->closing = a->timer_closed = 1;
		admin_maybe_free(a);
		return BASE_ENOMEM;
	}
	sio_on_connection(a->nsp, admin_connected, a);
	sio_on_server_side_emit(a->nsp, ADMIN_PEER_EVENT, on_peer, a);
	if (!a->readonly) {
		sio_on(a->nsp, "emit", cmd_emit, a);
		sio_on(a->nsp, "join", cmd_join, a);
		sio_on(a->nsp, "leave", cmd_leave, a);
		sio_on(a->nsp, "_disconnect", cmd_disconnect, a);
	}
	a->started = uv_now(srv->loop);
	eio_server_get_stats(srv->eio, &a->last);
	uv_timer_init(srv->loop, &a->timer);
	a->timer.data = a;
	uv_timer_start(&a->timer, on_tick, 1000, 1000);
	uv_unref((uv_handle_t *)&a->timer); /* the timer alone does not keep the loop running */
	srv->admin = a;
	BASE_LOGI("sio", "admin UI on namespace %s (%s%s)", o->nsp,
	          o->no_auth ? "no authentication"
	                     : (kind == HASH_BCRYPT ? "bcrypt password" : "argon2 password"),
	          o->readonly ? ", read-only" : "");
	return 0;
}

void sio__admin_free(sio_server *srv)
{
	sio_admin *a = srv->admin;
	if (!a)
		return;
	srv->admin = NULL;
	a->closing = 1;
	uv_close((uv_handle_t *)&a->timer, timer_closed);
}
