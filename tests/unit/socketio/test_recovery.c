/*
 * Tests socketio/recovery.c over real WebSocket connections, with each
 * parser: a client whose transport dies comes back with its pid and last
 * offset and gets its id, its rooms and the broadcasts it missed (one with
 * a binary attachment), encoded by the server's parser on replay; a client
 * with an unknown offset gets a fresh session.
 */
#include "sio_harness.h"

static struct {
	int parser;
	atomic_int transport_closes;
	int recovered;
	char rejoined_room;
} S;

/* ---- server ----------------------------------------------------------------- */

/* bc(args...): broadcasts "news" with the same arguments and attachments to room "r". */
static void on_bc(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_bcast b;
	sio_bcast_init(&b, sio_socket_namespace(ev->socket));
	sio_bcast_to(&b, "r");
	sio_bcast_emit(&b, "news", ev->args, ev->attachments, ev->n_attachments);
}

static void on_connection(sio_socket *s, void *ud)
{
	(void)ud;
	if (sio_socket_recovered(s)) {
		S.recovered++;
		S.rejoined_room = (char)sio_in_room(s, "r");
	}
	sio_join(s, "r");
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
	(void)s;
	(void)ud;
	if (strcmp(reason, "transport close") == 0)
		atomic_fetch_add(&S.transport_closes, 1);
}

/* ---- client ---------------------------------------------------------------- */

static void tx(cl_t *c, sio_packet_type t, const char *data, const base_slice *atts, size_t n)
{
	sio_tx(c, S.parser, t, data, atts, n);
}

static int rx(cl_t *c, rx_t *r)
{
	return sio_rx(c, S.parser, r);
}

/* Reads the CONNECT answer's sid and pid. */
static void read_ids(const rx_t *r, char *sid, char *pid)
{
	CK(r->type == SIO_CONNECT);
	const char *s = strstr(r->data, "\"sid\":\""), *p = strstr(r->data, "\"pid\":\"");
	CK(s && p);
	if (!s || !p)
		return;
	snprintf(sid, 21, "%.20s", s + 7);
	snprintf(pid, 21, "%.20s", p + 7);
}

static void wait_flag(atomic_int *f, int v)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	for (unsigned i = 0; i < test_ms(10000) / 5 && atomic_load(f) < v; i++)
		nanosleep(&ts, NULL);
	CK(atomic_load(f) >= v);
}

static void client(void)
{
	rx_t r;
	char sid[21], pid[21], sid2[21], pid2[21], auth[128];
	cl_t *a = ws_open(NULL), *b = ws_open(NULL);
	tx(a, SIO_CONNECT, "", NULL, 0);
	CK(rx(a, &r) == 0);
	read_ids(&r, sid, pid);
	tx(b, SIO_CONNECT, "", NULL, 0);
	CK(rx(b, &r) == 0);

	/* Both in "r": a sees the first broadcast and its offset "1". */
	tx(b, SIO_EVENT, "[\"bc\",\"one\"]", NULL, 0);
	CK(rx(a, &r) == 0 && strcmp(r.data, "[\"news\",\"one\",\"1\"]") == 0);
	CK(rx(b, &r) == 0 && strcmp(r.data, "[\"news\",\"one\",\"1\"]") == 0);

	/* a's transport dies; what b broadcasts meanwhile is kept for a. */
	cl_close(a);
	wait_flag(&S.transport_closes, 1);
	base_slice att = {"\x00\x01\x02", 3};
	tx(b, SIO_EVENT, "[\"bc\",{\"_placeholder\":true,\"num\":0}]", &att, 1);
	CK(rx(b, &r) == 0 && r.n_atts == 1);
	tx(b, SIO_EVENT, "[\"bc\",3]", NULL, 0);
	CK(rx(b, &r) == 0 && strcmp(r.data, "[\"news\",3,\"3\"]") == 0);

	/* a comes back with its pid and offset: same id, then the two it missed. */
	a = ws_open(NULL);
	snprintf(auth, sizeof(auth), "{\"pid\":\"%s\",\"offset\":\"1\"}", pid);
	tx(a, SIO_CONNECT, auth, NULL, 0);
	CK(rx(a, &r) == 0);
	read_ids(&r, sid2, pid2);
	CK(strcmp(sid, sid2) == 0 && strcmp(pid, pid2) == 0);
	CK(rx(a, &r) == 0 && r.type == SIO_EVENT);
	CK(strcmp(r.data, "[\"news\",{\"_placeholder\":true,\"num\":0},\"2\"]") == 0);
	CK(r.n_atts == 1 && r.att_len[0] == 3 && memcmp(r.att[0], "\x00\x01\x02", 3) == 0);
	CK(rx(a, &r) == 0 && strcmp(r.data, "[\"news\",3,\"3\"]") == 0);

	/* An offset the server does not know: a new session. */
	cl_t *d = ws_open(NULL);
	snprintf(auth, sizeof(auth), "{\"pid\":\"%s\",\"offset\":\"99\"}", pid);
	tx(d, SIO_CONNECT, auth, NULL, 0);
	CK(rx(d, &r) == 0);
	read_ids(&r, sid2, pid2);
	CK(strcmp(sid, sid2) != 0);
	cl_close(d);
	cl_close(a);
	cl_close(b);
}

static void run(int parser)
{
	memset(&S, 0, sizeof(S));
	S.parser = parser;
	sio_options o;
	sio_options_default(&o);
	o.parser = parser;
	o.recovery_ms = 60000;
	io_start(&o);
	sio_namespace *nsp = sio_of(g_io, "/");
	sio_on(nsp, "bc", on_bc, NULL);
	sio_on_connection(nsp, on_connection, NULL);
	sio_on_disconnect(nsp, on_disconnect, NULL);
	run_client(client);
	assert_int_equal(S.recovered, 1);
	assert_int_equal(S.rejoined_room, 1);
	io_stop();
}

static void test_recovery_default_parser(void **state)
{
	(void)state;
	run(SIO_PARSER_JSON);
}

static void test_recovery_msgpack_parser(void **state)
{
	(void)state;
	run(SIO_PARSER_MSGPACK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_recovery_default_parser),
	    cmocka_unit_test(test_recovery_msgpack_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
