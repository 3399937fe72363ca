/*
 * conformance-socketio: the Socket.IO server the official Socket.IO
 * protocol test suite expects: port 3000 (or --port), pingInterval 300,
 * pingTimeout 200, maxPayload 1000000, connectTimeout 1000, CORS "*", path
 * /socket.io/. On "/": emits "auth" with the handshake auth, answers
 * "message" with "message-back" and the same arguments, acks
 * "message-with-ack" with its arguments. On "/custom": emits "auth".
 *
 * Options for our own client tests: --parser msgpack, --recovery MS,
 * --allow-eio3 (Engine.IO 3 clients: socket.io-client 2.x).
 * --ping-interval MS and --ping-timeout MS replace the suite's 300 and 200
 * (for tests whose clients share a busy process with a browser driver).
 * --admin-ui USER:HASH attaches the admin UI (sio_admin_ui_attach) on
 * "/admin" with that login (bcrypt or argon2id hash), and then CORS answers
 * carry credentials (the dashboard's socket.io-client uses withCredentials);
 * --admin-ui-readonly and --admin-ui-mode production as Node's readonly and
 * mode options (tests/conformance/reference_socketio.js takes the same).
 *
 * EXTRA behaviour for our acceptance tests, the same as
 * tests/conformance/reference_socketio.js (see there for each contract):
 * on "/" the events join, leave, broadcast, request-ack, disconnect-me,
 * disconnect-reason and handshake; the namespace "/private" behind a
 * middleware wanting auth {"token":"secret"}; dynamic namespaces
 * "/dyn-<digits>". Their arguments are read with jansson: this is a test
 * program, not a hot path.
 *
 * OURS only (tests/e2e/socketio_extras.test.js; the C API beyond what the
 * reference suite sees): the namespace "/any" records what its catch-all
 * listeners see, in and out ("any-log" acks with both lists); dynamic
 * namespaces by pattern "/pat-*"; an adapter on "/" that records every
 * broadcast it would send to other nodes ("adapter-log" acks with the
 * packets) and "adapter-deliver"(room, packet) that feeds a packet in as if
 * another node had sent it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctype.h>
#include <jansson.h>

#include "server_main.h"
#include "sio_test_args.h"
#include "socketio.h"

static http_server *g_http;
static sio_server *g_sio;

static void emit_auth(sio_socket *s, void *ud)
{
	(void)ud;
	sio_emit(s, "auth", sio_handshake_auth(s), NULL, 0);
}

static void on_message(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_emit(ev->socket, "message-back", ev->args, ev->attachments, ev->n_attachments);
}

static void on_message_with_ack(const sio_event *ev, void *ud)
{
	(void)ud;
	if (ev->ack_id >= 0)
		sio_ack(ev->socket, ev->ack_id, ev->args, ev->attachments, ev->n_attachments);
}

/* ---- EXTRA ------------------------------------------------------------- */

static void ack_empty(const sio_event *ev)
{
	if (ev->ack_id >= 0)
		sio_ack(ev->socket, ev->ack_id, BASE_SLICE_LIT(""), NULL, 0);
}

static void on_join(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev), *rooms = json_array_get(a, 0), *r;
	size_t i;
	if (json_is_string(rooms))
		sio_join(ev->socket, json_string_value(rooms));
	json_array_foreach(rooms, i, r) if (json_is_string(r))
	    sio_join(ev->socket, json_string_value(r));
	json_decref(a);
	ack_empty(ev);
}

static void on_leave(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev);
	if (json_is_string(json_array_get(a, 0)))
		sio_leave(ev->socket, json_string_value(json_array_get(a, 0)));
	json_decref(a);
	ack_empty(ev);
}

static void add_rooms(sio_bcast *b, json_t *v, int except)
{
	size_t i;
	json_t *r;
	if (json_is_string(v))
		(except ? sio_bcast_except : sio_bcast_to)(b, json_string_value(v));
	json_array_foreach(v, i, r) if (json_is_string(r))(
	    except ? sio_bcast_except : sio_bcast_to)(b, json_string_value(r));
}

static void on_broadcast(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev), *opts = json_array_get(a, 0);
	const char *event = json_string_value(json_object_get(opts, "event"));
	if (event) {
		sio_bcast b;
		sio_bcast_init(&b, sio_socket_namespace(ev->socket));
		if (json_is_true(json_object_get(opts, "others")))
			sio_bcast_except(&b, sio_socket_id(ev->socket));
		add_rooms(&b, json_object_get(opts, "to"), 0);
		add_rooms(&b, json_object_get(opts, "except"), 1);
		b.is_volatile = json_is_true(json_object_get(opts, "volatile"));
		base_buf rest = BASE_BUF_INIT;
		args_text(a, 1, json_array_size(a), &rest);
		sio_bcast_emit(&b, event, (base_slice){rest.data ? rest.data : "", rest.len},
		               ev->attachments, ev->n_attachments);
		base_buf_free(&rest);
	}
	json_decref(a);
	ack_empty(ev);
}

typedef struct {
	int64_t ack_id;
} request_ack_ctx;

static void on_client_ack(sio_socket *s, int timed_out, base_slice args, const base_slice *atts,
                          size_t n_atts, void *ud)
{
	request_ack_ctx *ctx = ud;
	base_buf b = BASE_BUF_INIT;
	if (timed_out)
		base_buf_append_str(&b, "{\"error\":\"operation has timed out\",\"responses\":[]}");
	else
		base_buf_printf(&b, "{\"error\":null,\"responses\":[%.*s]}", (int)args.len,
		                args.base ? args.base : "");
	sio_ack(s, ctx->ack_id, (base_slice){b.data, b.len}, atts, n_atts);
	base_buf_free(&b);
	free(ctx);
}

static void on_request_ack(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev), *opts = json_array_get(a, 0);
	const char *event = json_string_value(json_object_get(opts, "event"));
	request_ack_ctx *ctx = malloc(sizeof(*ctx));
	if (event && ev->ack_id >= 0 && ctx) {
		json_t *list = json_object_get(opts, "args");
		base_buf text = BASE_BUF_INIT;
		if (json_is_array(list))
			args_text(list, 0, json_array_size(list), &text);
		json_t *t = json_object_get(opts, "timeout");
		ctx->ack_id = ev->ack_id;
		if (sio_emit_ack(
		        ev->socket, event, (base_slice){text.data ? text.data : "", text.len},
		        ev->attachments, ev->n_attachments,
		        json_is_number(t) ? (unsigned)json_number_value(t) : 0, on_client_ack, ctx))
			free(ctx);
		base_buf_free(&text);
	} else {
		free(ctx);
	}
	json_decref(a);
}

static void on_disconnect_me(const sio_event *ev, void *ud)
{
	(void)ud;
	if (ev->args.len == 4 && memcmp(ev->args.base, "true", 4) == 0)
		sio_disconnect_all(ev->socket);
	else
		sio_disconnect(ev->socket);
}

#define MAX_REASONS 1000
static struct {
	char sid[32];
	char reason[48];
} g_reasons[MAX_REASONS];
static size_t g_reason_next;

static void remember_reason(sio_socket *s, const char *reason, void *ud)
{
	(void)ud;
	snprintf(g_reasons[g_reason_next].sid, sizeof(g_reasons[0].sid), "%s", sio_socket_id(s));
	snprintf(g_reasons[g_reason_next].reason, sizeof(g_reasons[0].reason), "%s", reason);
	g_reason_next = (g_reason_next + 1) % MAX_REASONS;
}

static void on_disconnect_reason(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev);
	const char *sid = json_string_value(json_array_get(a, 0));
	json_t *answer = json_null();
	for (size_t i = 0; sid && i < MAX_REASONS; i++)
		if (strcmp(g_reasons[i].sid, sid) == 0)
			answer = json_string(g_reasons[i].reason);
	ack_json(ev, answer);
	json_decref(answer);
	json_decref(a);
}

static json_t *query_object(base_slice q)
{
	json_t *o = json_object();
	const char *p = q.base, *end = q.base + q.len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));
		const char *kend = eq ? eq : stop;
		char *k = strndup(p, (size_t)(kend - p));
		char *v = eq ? strndup(eq + 1, (size_t)(stop - eq - 1)) : strdup("");
		ssize_t kl = base_url_decode(k, strlen(k), k, 1);
		ssize_t vl = base_url_decode(v, strlen(v), v, 1);
		if (kl >= 0 && vl >= 0 && kl > 0)
			json_object_setn_new_nocheck(o, k, (size_t)kl,
			                             json_stringn_nocheck(v, (size_t)vl));
		free(k);
		free(v);
		p = stop + 1;
	}
	return o;
}

static void on_handshake(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_socket *s = ev->socket;
	base_slice auth = sio_handshake_auth(s);
	json_t *o = json_object();
	json_object_set_new(o, "auth", json_loadb(auth.base, auth.len, 0, NULL));
	json_object_set_new(o, "query", query_object(sio_handshake_query(s)));
	json_t *headers = json_object();
	static const char *const names[] = {"host",   "x-test-header", "user-agent",
	                                    "origin", "cookie",        "connection"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const base_slice *v = sio_handshake_header(s, names[i]);
		if (v)
			json_object_set_new(headers, names[i], json_stringn(v->base, v->len));
	}
	json_object_set_new(o, "headers", headers);
	json_object_set_new(o, "address", json_string(sio_handshake_address(s)));
	ack_json(ev, o);
	json_decref(o);
}

static void private_middleware(sio_socket *s, void *ud)
{
	(void)ud;
	base_slice auth = sio_handshake_auth(s);
	json_t *a = json_loadb(auth.base, auth.len, 0, NULL);
	const char *token = json_string_value(json_object_get(a, "token"));
	if (token && strcmp(token, "secret") == 0)
		sio_next(s);
	else
		sio_refuse(s, "not authorized", "{\"code\":403}");
	json_decref(a);
}

static int match_dyn(const char *name, void *ud)
{
	(void)ud;
	if (strncmp(name, "/dyn-", 5) != 0 || !name[5])
		return 0;
	for (const char *p = name + 5; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	return 1;
}

static void setup_dyn(sio_namespace *nsp, void *ud)
{
	(void)ud;
	sio_on_connection(nsp, emit_auth, NULL);
}

/* ---- OURS ---------------------------------------------------------------- */

static json_t *g_any_in, *g_any_out, *g_adapter_log;

static void record_any(const sio_event *ev, void *ud)
{
	json_t *list = ud;
	json_array_append_new(list, json_stringn(ev->name.base, ev->name.len));
}

static void on_any_log(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *o = json_pack("{s:O,s:O}", "in", g_any_in, "out", g_any_out);
	ack_json(ev, o);
	json_decref(o);
}

static void on_any_echo(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_emit(ev->socket, "echoed", ev->args, ev->attachments, ev->n_attachments);
}

static void any_connected(sio_socket *s, void *ud)
{
	(void)ud;
	sio_emit_str(s, "hello-any", "1");
}

static void adapter_broadcast(sio_namespace *nsp, const sio_bcast *b, base_slice data,
                              const base_slice *atts, size_t n_atts, void *ud)
{
	(void)nsp;
	(void)atts;
	(void)ud;
	json_t *rooms = json_array();
	for (unsigned i = 0; i < b->n_rooms; i++)
		json_array_append_new(rooms, json_string(b->rooms[i]));
	json_array_append_new(g_adapter_log,
	                      json_pack("{s:s%,s:o,s:i}", "data", data.base, data.len, "rooms",
	                                rooms, "attachments", (int)n_atts));
}

static void on_adapter_log(const sio_event *ev, void *ud)
{
	(void)ud;
	ack_json(ev, g_adapter_log);
}

static void on_adapter_deliver(const sio_event *ev, void *ud)
{
	(void)ud;
	json_t *a = args_array(ev);
	const char *room = json_string_value(json_array_get(a, 0));
	const char *data = json_string_value(json_array_get(a, 1));
	int n = -1;
	if (room && data) {
		sio_bcast b;
		sio_bcast_init(&b, sio_socket_namespace(ev->socket));
		sio_bcast_to(&b, room);
		n = sio_adapter_deliver(&b, (base_slice){data, strlen(data)}, NULL, 0);
	}
	json_t *r = json_integer(n);
	ack_json(ev, r);
	json_decref(r);
	json_decref(a);
}

static void setup_ours(void)
{
	g_any_in = json_array();
	g_any_out = json_array();
	g_adapter_log = json_array();
	sio_namespace *any = sio_of(g_sio, "/any");
	sio_on_any(any, record_any, g_any_in);
	sio_on_any_outgoing(any, record_any, g_any_out);
	sio_on(any, "any-log", on_any_log, NULL);
	sio_on(any, "echo", on_any_echo, NULL);
	sio_on_connection(any, any_connected, NULL);
	sio_dynamic(g_sio, "/pat-*", NULL, setup_dyn, NULL);
	sio_namespace *root = sio_of(g_sio, "/");
	sio_adapter ad = {.on_broadcast = adapter_broadcast};
	sio_set_adapter(root, &ad);
	sio_on(root, "adapter-log", on_adapter_log, NULL);
	sio_on(root, "adapter-deliver", on_adapter_deliver, NULL);
}

static void stop(void *ud)
{
	(void)ud;
	sio_server_close_all(g_sio);
}

static void free_app(void *ud)
{
	(void)ud;
	sio_server_free(g_sio);
	json_decref(g_any_in);
	json_decref(g_any_out);
	json_decref(g_adapter_log);
}

static int usage(void)
{
	fprintf(stderr, "usage: conformance-socketio [--port PORT] [--parser json|msgpack] "
	                "[--recovery MS] [--allow-eio3] [--ws-deflate] [--ping-interval MS] "
	                "[--ping-timeout MS] "
	                "[--admin-ui USER:HASH [--admin-ui-readonly] "
	                "[--admin-ui-mode production]]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int port = 3000;
	sio_admin_options admin;
	sio_admin_options_default(&admin);
	char *admin_login = NULL;
	sio_options o;
	int ws_deflate = 0;
	sio_options_default(&o);
	o.eio.ping_interval_ms = 300;
	o.eio.ping_timeout_ms = 200;
	o.eio.max_payload = 1000000;
	o.eio.cors_origin = "*";
	o.connect_timeout_ms = 1000;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--parser") == 0 && i + 1 < argc) {
			const char *p = argv[++i];
			if (strcmp(p, "msgpack") == 0)
				o.parser = SIO_PARSER_MSGPACK;
			else if (strcmp(p, "json") != 0)
				return usage();
		} else if (strcmp(argv[i], "--allow-eio3") == 0) {
			o.eio.allow_eio3 = 1;
		} else if (strcmp(argv[i], "--recovery") == 0 && i + 1 < argc) {
			o.recovery_ms = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--ping-interval") == 0 && i + 1 < argc) {
			o.eio.ping_interval_ms = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--ping-timeout") == 0 && i + 1 < argc) {
			o.eio.ping_timeout_ms = (unsigned)atoi(argv[++i]);
		} else if (strcmp(argv[i], "--admin-ui") == 0 && i + 1 < argc) {
			admin_login = argv[++i];
		} else if (strcmp(argv[i], "--admin-ui-readonly") == 0) {
			admin.readonly = 1;
		} else if (strcmp(argv[i], "--admin-ui-mode") == 0 && i + 1 < argc) {
			admin.production = strcmp(argv[++i], "production") == 0;
		} else if (strcmp(argv[i], "--ws-deflate") == 0) {
			ws_deflate = 1;
		} else {
			return usage();
		}
	}
	char *colon = admin_login ? strchr(admin_login, ':') : NULL;
	if (admin_login && !colon)
		return usage();
	if (admin_login) {
		*colon = 0;
		admin.username = admin_login;
		admin.password_hash = colon + 1;
		o.eio.cors_credentials = 1;
	}
	uv_loop_t *loop = uv_default_loop();
	http_limits lim;
	http_limits_default(&lim);
	lim.ws_max_message = o.eio.max_payload;
	lim.max_body_bytes = o.eio.max_payload;
	lim.ws_deflate = ws_deflate;
	g_http = http_server_new(loop, &lim);
	if (!g_http)
		return 1;
	g_sio = sio_server_new(g_http, &o);
	if (!g_sio)
		return 1;

	sio_namespace *root = sio_of(g_sio, "/");
	sio_on_connection(root, emit_auth, NULL);
	sio_on(root, "message", on_message, NULL);
	sio_on(root, "message-with-ack", on_message_with_ack, NULL);
	sio_on_connection(sio_of(g_sio, "/custom"), emit_auth, NULL);

	/* EXTRA */
	sio_on(root, "join", on_join, NULL);
	sio_on(root, "leave", on_leave, NULL);
	sio_on(root, "broadcast", on_broadcast, NULL);
	sio_on(root, "request-ack", on_request_ack, NULL);
	sio_on(root, "disconnect-me", on_disconnect_me, NULL);
	sio_on(root, "disconnect-reason", on_disconnect_reason, NULL);
	sio_on(root, "handshake", on_handshake, NULL);
	sio_on_disconnect(root, remember_reason, NULL);
	sio_namespace *priv = sio_of(g_sio, "/private");
	sio_use(priv, private_middleware, NULL);
	sio_on_connection(priv, emit_auth, NULL);
	sio_dynamic(g_sio, NULL, match_dyn, setup_dyn, NULL);
	setup_ours();
	if (admin_login && sio_admin_ui_attach(g_sio, &admin)) {
		fprintf(stderr,
		        "conformance-socketio: --admin-ui: not a bcrypt or argon2id hash\n");
		return 2;
	}

	int rc = http_server_listen(g_http, "127.0.0.1", port);
	if (rc) {
		fprintf(stderr, "conformance-socketio: cannot listen on port %d: %s\n", port,
		        uv_strerror(rc));
		return 1;
	}
	fprintf(stderr, "conformance-socketio listening on 127.0.0.1:%d\n",
	        http_server_port(g_http));
	return tsm_run(g_http, stop, free_app, NULL);
}
