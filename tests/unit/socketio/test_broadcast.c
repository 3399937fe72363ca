/*
 * Tests socketio/broadcast.c over real WebSocket connections: who a
 * broadcast reaches (rooms, except, a socket in several rooms once), the
 * same selection for join / leave / disconnect, the adapter (what it is
 * handed, what it delivers, with attachments, in each parser), and the
 * refusals. test_rooms.c covers user code running inside a broadcast.
 */
#include "sio_harness.h"

typedef struct {
	int calls;
	char data[256];
	size_t n_atts;
	unsigned n_rooms;
	int sockets_ops;
	sio_sockets_op last_op;
} adapter_log;

static struct {
	int parser;
	sio_namespace *nsp;
	sio_socket *socks[3];
	int n;
	adapter_log ad;
	int sent_a, sent_b, joined, left, kicked, deliver_rc, bad_rcs[6], outgoing;
} S;

static void ad_broadcast(sio_namespace *nsp, const sio_bcast *b, base_slice data,
                         const base_slice *atts, size_t n_atts, void *ud)
{
	(void)nsp;
	(void)atts;
	adapter_log *l = ud;
	l->calls++;
	snprintf(l->data, sizeof(l->data), "%.*s", (int)data.len, data.base);
	l->n_atts = n_atts;
	l->n_rooms = b->n_rooms;
}

static void ad_sockets(sio_namespace *nsp, const sio_bcast *b, sio_sockets_op op, const char *room,
                       void *ud)
{
	(void)nsp;
	(void)b;
	(void)room;
	adapter_log *l = ud;
	l->sockets_ops++;
	l->last_op = op;
}

static void on_connection(sio_socket *s, void *ud)
{
	(void)ud;
	/* socket 0 in a; 1 in a and b; 2 in b */
	int i = S.n++;
	S.socks[i] = s;
	if (i <= 1)
		sio_join(s, "a");
	if (i >= 1)
		sio_join(s, "b");
}

static void on_outgoing(const sio_event *ev, void *ud)
{
	(void)ev;
	(void)ud;
	S.outgoing++;
}

/* The client's "go" runs every step on the loop, in order. */
static void on_go(const sio_event *ev, void *ud)
{
	(void)ev;
	(void)ud;
	sio_bcast b;
	base_slice att = {"\x09\x08", 2};

	/* Rooms a and b: each socket once, socket 1 too; the adapter hears it once. */
	sio_bcast_init(&b, S.nsp);
	sio_bcast_to(&b, "a");
	sio_bcast_to(&b, "b");
	S.sent_a =
	    sio_bcast_emit(&b, "ab", BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0}"), &att, 1);

	/* Room b except a: socket 2 only; local: not for the adapter. */
	sio_bcast_init(&b, S.nsp);
	sio_bcast_to(&b, "b");
	sio_bcast_except(&b, "a");
	b.local = 1;
	S.sent_b = sio_bcast_emit(&b, "b-not-a", (base_slice){NULL, 0}, NULL, 0);

	/* From "another node", with an attachment: room a. */
	sio_bcast_init(&b, S.nsp);
	sio_bcast_to(&b, "a");
	S.deliver_rc = sio_adapter_deliver(
	    &b, BASE_SLICE_LIT("[\"re\\u006dote\",{\"_placeholder\":true,\"num\":0}]"), &att, 1);
	const char *bad[] = {
	    "{}", "[1]", "[]", "[\"connect\"]", "[\"x\",{\"_placeholder\":true,\"num\":1}]", ""};
	for (size_t i = 0; i < BASE_ARRAY_SIZE(bad); i++)
		S.bad_rcs[i] =
		    sio_adapter_deliver(&b, (base_slice){bad[i], strlen(bad[i])}, &att, 1);

	/* Sockets of room a join c; sockets of c except b leave a; then those of c are disconnected. */
	sio_bcast_init(&b, S.nsp);
	sio_bcast_to(&b, "a");
	S.joined = sio_bcast_join(&b, "c");
	sio_bcast_init(&b, S.nsp);
	sio_bcast_to(&b, "c");
	sio_bcast_except(&b, "b");
	S.left = sio_bcast_leave(&b, "a");
	sio_bcast_init(&b, S.nsp);
	sio_bcast_to(&b, "a");
	S.kicked = sio_bcast_disconnect(&b, 0); /* socket 1 only: 0 left a */
	sio_bcast_init(&b, S.nsp);
	sio_bcast_emit(&b, "done", (base_slice){NULL, 0}, NULL, 0);
}

/* ---- client ---------------------------------------------------------------------- */

typedef struct {
	char names[8][32];
	int n;
	int atts_ok;
	int disconnected;
} seen_t;

/* Reads one client's packets until "done" or a DISCONNECT, noting the event names. */
static void read_all(cl_t *c, seen_t *st)
{
	static char raw[4096];
	memset(st, 0, sizeof(*st));
	for (;;) {
		int bin = 0;
		ssize_t n = ws_recv(c, &bin, raw, sizeof(raw));
		if (n < 0)
			return;
		sio_packet p;
		const char *err;
		base_buf json = BASE_BUF_INIT;
		base_slice atts[SIO_MAX_ATTACHMENTS];
		int ok;
		if (S.parser == SIO_PARSER_MSGPACK) {
			ok = bin && sio_msgpack_decode(raw, (size_t)n, &json, &p, atts,
			                               SIO_MAX_ATTACHMENTS, &err) == 0;
			if (ok && p.attachments == 1 && atts[0].len == 2 &&
			    memcmp(atts[0].base, "\x09\x08", 2) == 0)
				st->atts_ok++;
		} else {
			if (bin) {
				if (n == 2 && memcmp(raw, "\x09\x08", 2) == 0)
					st->atts_ok++;
				continue;
			}
			ok = raw[0] == '4' &&
			     sio_packet_decode(raw + 1, (size_t)n - 1, &p, &err) == 0;
		}
		CK(ok);
		if (!ok) {
			base_buf_free(&json);
			return;
		}
		if (p.type == SIO_DISCONNECT) {
			st->disconnected = 1;
			base_buf_free(&json);
			return;
		}
		if ((p.type == SIO_EVENT || p.type == SIO_BINARY_EVENT) && st->n < 8) {
			char name[32];
			ssize_t m = sio_json_unescape(p.event.base,
			                              p.event.len < 31 ? p.event.len : 31, name);
			name[m < 0 ? 0 : m] = 0;
			snprintf(st->names[st->n++], 32, "%s", name);
			if (strcmp(name, "done") == 0) {
				base_buf_free(&json);
				return;
			}
		}
		base_buf_free(&json);
	}
}

static cl_t *connect_one(void)
{
	cl_t *c = ws_open(NULL);
	char raw[512];
	int bin;
	if (S.parser == SIO_PARSER_MSGPACK) {
		base_buf b = BASE_BUF_INIT;
		sio_msgpack_encode(&b, SIO_CONNECT, BASE_SLICE_LIT("/"), -1, (base_slice){NULL, 0},
		                   NULL, 0);
		ws_binary(c, b.data, b.len);
		base_buf_free(&b);
	} else {
		ws_text(c, "0");
	}
	CK(ws_recv(c, &bin, raw, sizeof(raw)) > 0);
	return c;
}

static void client(void)
{
	cl_t *c[3];
	seen_t st[3];
	for (int i = 0; i < 3; i++)
		c[i] = connect_one();
	if (S.parser == SIO_PARSER_MSGPACK) {
		base_buf b = BASE_BUF_INIT;
		sio_msgpack_encode(&b, SIO_EVENT, BASE_SLICE_LIT("/"), -1,
		                   BASE_SLICE_LIT("[\"go\"]"), NULL, 0);
		ws_binary(c[0], b.data, b.len);
		base_buf_free(&b);
	} else {
		ws_text(c[0], "2[\"go\"]");
	}
	for (int i = 0; i < 3; i++)
		read_all(c[i], &st[i]);
	/* 0: ab, remote, done */
	CK(st[0].n == 3 && strcmp(st[0].names[0], "ab") == 0 &&
	   strcmp(st[0].names[1], "remote") == 0 && strcmp(st[0].names[2], "done") == 0);
	CK(st[0].atts_ok == 2);
	/* 1: ab, remote, then disconnected (still in a) */
	CK(st[1].n == 2 && strcmp(st[1].names[0], "ab") == 0 &&
	   strcmp(st[1].names[1], "remote") == 0);
	CK(st[1].disconnected);
	/* 2: ab, b-not-a, done */
	CK(st[2].n == 3 && strcmp(st[2].names[0], "ab") == 0 &&
	   strcmp(st[2].names[1], "b-not-a") == 0 && strcmp(st[2].names[2], "done") == 0);
	CK(st[2].atts_ok == 1);
	for (int i = 0; i < 3; i++)
		cl_close(c[i]);
}

static void run(int parser)
{
	memset(&S, 0, sizeof(S));
	S.parser = parser;
	sio_options o;
	sio_options_default(&o);
	o.parser = parser;
	io_start(&o);
	S.nsp = sio_of(g_io, "/");
	sio_adapter ad = {ad_broadcast, &S.ad, ad_sockets};
	sio_set_adapter(S.nsp, &ad);
	sio_on_connection(S.nsp, on_connection, NULL);
	sio_on_any_outgoing(S.nsp, on_outgoing, NULL);
	sio_on(S.nsp, "go", on_go, NULL);
	run_client(client);

	assert_int_equal(S.sent_a, 3);
	assert_int_equal(S.sent_b, 1);
	assert_int_equal(S.deliver_rc, 2);
	for (size_t i = 0; i < BASE_ARRAY_SIZE(S.bad_rcs); i++)
		assert_int_equal(S.bad_rcs[i], SIO_EBAD_ARGS);
	assert_int_equal(S.joined, 2);
	assert_int_equal(S.left, 1);
	assert_int_equal(S.kicked, 1);
	/* The adapter: "ab" and "done" (not the local one, not the delivered one). */
	assert_int_equal(S.ad.calls, 2);
	assert_string_equal(S.ad.data, "[\"done\"]");
	assert_int_equal(S.ad.sockets_ops, 3);
	assert_int_equal(S.ad.last_op, SIO_SOCKETS_DISCONNECT);
	/* ab x3, b-not-a x1, done x2: a delivery from another node is not heard. */
	assert_int_equal(S.outgoing, 6);
	io_stop();
}

static void test_broadcast_default_parser(void **state)
{
	(void)state;
	run(SIO_PARSER_JSON);
}

static void test_broadcast_msgpack_parser(void **state)
{
	(void)state;
	run(SIO_PARSER_MSGPACK);
}

/* What the adapter is handed for a broadcast with attachments. */
static void test_adapter_data(void **state)
{
	(void)state;
	memset(&S, 0, sizeof(S));
	io_start(NULL);
	S.nsp = sio_of(g_io, "/");
	sio_adapter ad = {ad_broadcast, &S.ad, NULL};
	sio_set_adapter(S.nsp, &ad);
	sio_bcast b;
	sio_bcast_init(&b, S.nsp);
	sio_bcast_to(&b, "nobody");
	base_slice att = {"x", 1};
	assert_int_equal(sio_bcast_emit(&b, "q\"",
	                                BASE_SLICE_LIT("1,{\"_placeholder\":true,\"num\":0}"), &att,
	                                1),
	                 0);
	assert_int_equal(S.ad.calls, 1);
	assert_string_equal(S.ad.data, "[\"q\\\"\",1,{\"_placeholder\":true,\"num\":0}]");
	assert_int_equal(S.ad.n_atts, 1);
	assert_int_equal(S.ad.n_rooms, 1);
	/* No adapter for join etc.: nothing to call. */
	assert_int_equal(sio_bcast_join(&b, "x"), 0);
	assert_int_equal(sio_bcast_join(&b, NULL), BASE_EINVAL);
	assert_int_equal(sio_adapter_sockets(&b, (sio_sockets_op)99, NULL), BASE_EINVAL);
	base_slice many[SIO_MAX_ATTACHMENTS + 1];
	for (size_t i = 0; i < BASE_ARRAY_SIZE(many); i++)
		many[i] = att;
	assert_int_equal(
	    sio_bcast_emit(&b, "e", (base_slice){NULL, 0}, many, BASE_ARRAY_SIZE(many)),
	    SIO_ETOO_MANY_ATTACHMENTS);
	for (int i = 0; i < SIO_BCAST_MAX_ROOMS; i++)
		assert_int_equal(sio_bcast_except(&b, "r"), 0);
	assert_int_equal(sio_bcast_except(&b, "r"), BASE_ELIMIT);
	sio_set_adapter(S.nsp, NULL);
	io_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_broadcast_default_parser),
	    cmocka_unit_test(test_broadcast_msgpack_parser),
	    cmocka_unit_test(test_adapter_data),
	};
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
