/*
 * Tests socketio/server.c over real WebSocket connections: the routing of
 * packets to namespaces (and the closes when a client loses track), the
 * reassembly of binary packets through the parser, the msgpack parser chosen
 * once for the server in both directions, the connect timeout, and the
 * counters.
 */
#include "sio_harness.h"

static struct {
	int events;
	char got_args[256];
	size_t got_att_len;
	char got_att[16];
	int stats_checked;
} S;

static void on_up(const sio_event *ev, void *ud)
{
	(void)ud;
	S.events++;
	snprintf(S.got_args, sizeof(S.got_args), "%.*s", (int)ev->args.len, ev->args.base);
	if (ev->n_attachments == 1 && ev->attachments[0].len <= sizeof(S.got_att)) {
		S.got_att_len = ev->attachments[0].len;
		memcpy(S.got_att, ev->attachments[0].base, S.got_att_len);
	}
	/* Back with the same attachment: the reply goes through the same parser. */
	sio_emit(ev->socket, "back", ev->args, ev->attachments, ev->n_attachments);
}

static void setup(const sio_options *o)
{
	memset(&S, 0, sizeof(S));
	io_start(o);
	sio_on(sio_of(g_io, "/"), "up", on_up, NULL);
	sio_of(g_io, "/chat");
}

/* ---- routing ------------------------------------------------------------- */

static void client_routing(void)
{
	char msg[4096];
	const char *r;

	/* An unknown namespace: CONNECT_ERROR, the connection stays. */
	cl_t *c = ws_open(NULL);
	ws_text(c, "0/nope,");
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "4/nope,{\"message\":\"Invalid namespace\"}") == 0);
	ws_text(c, "0/chat,");
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strncmp(r, "0/chat,{\"sid\":\"", 15) == 0);
	/* The same namespace twice: the client lost track; closed. */
	ws_text(c, "0/chat,");
	CK(ws_closed(c));
	cl_close(c);

	/* An event for a namespace not joined: closed. */
	c = sio_connect("0", NULL, 0);
	ws_text(c, "2/chat,[\"x\"]");
	CK(ws_closed(c));
	cl_close(c);

	/* A packet the parser refuses: closed. */
	c = sio_connect("0", NULL, 0);
	ws_text(c, "2[\"x\"");
	CK(ws_closed(c));
	cl_close(c);

	/* A binary message nobody announced: closed. */
	c = sio_connect("0", NULL, 0);
	ws_binary(c, "ab", 2);
	CK(ws_closed(c));
	cl_close(c);
}

static void test_routing(void **state)
{
	(void)state;
	setup(NULL);
	run_client(client_routing);
	assert_int_equal(S.events, 0);
	io_stop();
}

/* ---- binary packets, default parser --------------------------------------- */

static void client_binary(void)
{
	char msg[4096];
	int bin;
	cl_t *c = sio_connect("0", NULL, 0);
	ws_text(c, "51-[\"up\",{\"_placeholder\":true,\"num\":0}]");
	ws_binary(c, "\x01\x00\x02", 3);
	const char *r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "51-[\"back\",{\"_placeholder\":true,\"num\":0}]") == 0);
	CK(ws_recv(c, &bin, msg, sizeof(msg)) == 3 && bin && memcmp(msg, "\x01\x00\x02", 3) == 0);
	/* A placeholder naming an attachment that never comes: closed. */
	ws_text(c, "51-[\"up\",{\"_placeholder\":true,\"num\":1}]");
	ws_binary(c, "z", 1);
	CK(ws_closed(c));
	cl_close(c);
}

static void test_binary_default_parser(void **state)
{
	(void)state;
	setup(NULL);
	run_client(client_binary);
	assert_int_equal(S.events, 1);
	assert_string_equal(S.got_args, "{\"_placeholder\":true,\"num\":0}");
	assert_int_equal(S.got_att_len, 3);
	assert_memory_equal(S.got_att, "\x01\x00\x02", 3);
	io_stop();
}

/* ---- msgpack parser -------------------------------------------------------- */

static void client_msgpack(void)
{
	const int mp = SIO_PARSER_MSGPACK;
	rx_t r;
	cl_t *c = ws_open(NULL);
	sio_tx(c, mp, SIO_CONNECT, "", NULL, 0);
	CK(sio_rx(c, mp, &r) == 0 && r.type == SIO_CONNECT);
	base_slice a = {"\xff\xfe", 2};
	sio_tx(c, mp, SIO_EVENT, "[\"up\",{\"_placeholder\":true,\"num\":0},7]", &a, 1);
	CK(sio_rx(c, mp, &r) == 0);
	CK(r.type == SIO_EVENT && r.n_atts == 1 && strcmp(r.event, "back") == 0);
	CK(r.att_len[0] == 2 && memcmp(r.att[0], "\xff\xfe", 2) == 0);
	CK(strcmp(r.data, "[\"back\",{\"_placeholder\":true,\"num\":0},7]") == 0);
	/* A text message is not a msgpack packet: closed. */
	ws_text(c, "2[\"up\"]");
	CK(ws_closed(c));
	cl_close(c);
}

static void test_msgpack_parser(void **state)
{
	(void)state;
	sio_options o;
	sio_options_default(&o);
	o.parser = SIO_PARSER_MSGPACK;
	setup(&o);
	run_client(client_msgpack);
	assert_int_equal(S.events, 1);
	assert_string_equal(S.got_args, "{\"_placeholder\":true,\"num\":0},7");
	io_stop();
}

/* ---- connect timeout and counters ------------------------------------------ */

static void client_idle(void)
{
	cl_t *c = ws_open(NULL);
	/* Joins no namespace: the server closes it after connect_timeout_ms. */
	CK(ws_closed(c));
	cl_close(c);
}

static void test_connect_timeout(void **state)
{
	(void)state;
	sio_options o;
	sio_options_default(&o);
	o.connect_timeout_ms = 200;
	setup(&o);
	run_client(client_idle);
	io_stop();
}

static void count_nsp(const char *name, size_t sockets, void *ud)
{
	int *n = ud;
	(*n)++;
	if (strcmp(name, "/chat") == 0)
		assert_int_equal(sockets, 0);
}

static void client_two_events(void)
{
	char msg[512];
	cl_t *c = sio_connect("0", NULL, 0);
	ws_text(c, "2[\"up\",1]");
	CK(ws_next_text(c, msg, sizeof(msg)) != NULL);
	ws_text(c, "2[\"other\"]");
	ws_text(c, "2[\"up\",2]");
	CK(ws_next_text(c, msg, sizeof(msg)) != NULL);
	cl_close(c);
}

static void test_stats(void **state)
{
	(void)state;
	setup(NULL);
	run_client(client_two_events);
	sio_stats st;
	sio_server_get_stats(g_io, &st);
	assert_int_equal(st.events_in, 3);
	int n = 0;
	sio_server_each_namespace(g_io, count_nsp, &n);
	assert_int_equal(n, 2);
	assert_int_equal(sio_server_events_dropped(g_io), 0);
	io_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routing),        cmocka_unit_test(test_binary_default_parser),
	    cmocka_unit_test(test_msgpack_parser), cmocka_unit_test(test_connect_timeout),
	    cmocka_unit_test(test_stats),
	};
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
