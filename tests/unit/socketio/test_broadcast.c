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
	char names[8][64];
	int n;
	int atts_ok;
	int disconnected;
} seen_t;

/* Reads one client's packets until "done" or a DISCONNECT, noting the event names. */
static void read_all(cl_t *c, seen_t *st)
{
	rx_t r;
	memset(st, 0, sizeof(*st));
	while (sio_rx(c, S.parser, &r) == 0) {
		if (r.type == SIO_DISCONNECT) {
			st->disconnected = 1;
			return;
		}
		if (r.type != SIO_EVENT || st->n == 8)
			continue;
		if (r.n_atts == 1 && r.att_len[0] == 2 && memcmp(r.att[0], "\x09\x08", 2) == 0)
			st->atts_ok++;
		snprintf(st->names[st->n++], sizeof(st->names[0]), "%s", r.event);
		if (strcmp(r.event, "done") == 0)
			return;
	}
}

static cl_t *connect_one(void)
{
	cl_t *c = ws_open(NULL);
	rx_t r;
	sio_tx(c, S.parser, SIO_CONNECT, "", NULL, 0);
	CK(sio_rx(c, S.parser, &r) == 0 && r.type == SIO_CONNECT);
	return c;
}

static void client(void)
{
	cl_t *c[3];
	seen_t st[3];
	for (int i = 0; i < 3; i++)
		c[i] = connect_one();
	sio_tx(c[0], S.parser, SIO_EVENT, "[\"go\"]", NULL, 0);
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
	sio_adapter ad = {.on_broadcast = ad_broadcast, .ud = &S.ad, .on_sockets = ad_sockets};
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
	sio_adapter ad = {.on_broadcast = ad_broadcast, .ud = &S.ad};
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
