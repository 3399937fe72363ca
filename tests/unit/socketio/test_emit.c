/*
 * Tests socketio/emit.c over real WebSocket connections: events to one
 * socket, acknowledgements asked of the client (answered, timed out,
 * cancelled by a disconnect), acknowledgements the client asked for (with
 * binary), the outgoing listeners, and the refusals.
 */
#include "sio_harness.h"

typedef struct {
	int calls, timed_out;
	char args[128];
	size_t n_atts;
} ack_seen;

static struct {
	ack_seen answered, expired, cancelled;
	int rc_disconnected, rc_too_many, rc_bad_id;
	int outgoing;
	atomic_int gone;
	char outgoing_last[64];
} S;

static void on_ack(sio_socket *s, int timed_out, base_slice args, const base_slice *atts,
                   size_t n_atts, void *ud)
{
	(void)atts;
	ack_seen *a = ud;
	a->calls++;
	a->timed_out = timed_out;
	a->n_atts = n_atts;
	snprintf(a->args, sizeof(a->args), "%.*s", (int)args.len, args.base);
	/* Tell the client, so that it waits for the timeout itself, not for a guess of it. */
	if (a == &S.expired && timed_out)
		sio_emit_str(s, "expired", NULL);
}

static void on_outgoing(const sio_event *ev, void *ud)
{
	(void)ud;
	S.outgoing++;
	snprintf(S.outgoing_last, sizeof(S.outgoing_last), "%.*s", (int)ev->name.len,
	         ev->name.base);
}

static void on_go(const sio_event *ev, void *ud)
{
	(void)ud;
	sio_socket *s = ev->socket;
	sio_emit_str(s, "hello", "1,\"two\"");
	sio_emit_str(s, "empty", NULL);
	sio_emit_ack(s, "ask", BASE_SLICE_LIT("1"), NULL, 0, 0, on_ack, &S.answered);
	sio_emit_ack(s, "ignored", (base_slice){NULL, 0}, NULL, 0, 100, on_ack, &S.expired);
	sio_emit_ack(s, "pending", (base_slice){NULL, 0}, NULL, 0, 0, on_ack, &S.cancelled);
	base_slice many[SIO_MAX_ATTACHMENTS + 1];
	for (size_t i = 0; i < BASE_ARRAY_SIZE(many); i++)
		many[i] = BASE_SLICE_LIT("x");
	S.rc_too_many = sio_emit(s, "many", (base_slice){NULL, 0}, many, BASE_ARRAY_SIZE(many));
}

/* The client asks: ack with the arguments, the second time with a binary one. */
static void on_question(const sio_event *ev, void *ud)
{
	(void)ud;
	base_slice att = {"\x07", 1};
	if (ev->args.len == 1 && ev->args.base[0] == '1')
		sio_ack(ev->socket, ev->ack_id, BASE_SLICE_LIT("\"one\""), NULL, 0);
	else
		sio_ack(ev->socket, ev->ack_id, BASE_SLICE_LIT("{\"_placeholder\":true,\"num\":0}"),
		        &att, 1);
	S.rc_bad_id = sio_ack(ev->socket, -1, (base_slice){NULL, 0}, NULL, 0);
}

static void on_disconnect(sio_socket *s, const char *reason, void *ud)
{
	(void)reason;
	(void)ud;
	S.rc_disconnected = sio_emit_str(s, "late", "1");
	atomic_store(&S.gone, 1);
}

static void client(void)
{
	char msg[4096];
	const char *r;
	int bin;
	cl_t *c = sio_connect("0/e,", NULL, 0);
	ws_text(c, "2/e,[\"go\"]");
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "2/e,[\"hello\",1,\"two\"]") == 0);
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "2/e,[\"empty\"]") == 0);
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "2/e,0[\"ask\",1]") == 0);
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "2/e,1[\"ignored\"]") == 0);
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "2/e,2[\"pending\"]") == 0);
	ws_text(c, "3/e,0[\"fine\",2]");

	ws_text(c, "2/e,5[\"question\",1]");
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "3/e,5[\"one\"]") == 0);
	ws_text(c, "2/e,6[\"question\",2]");
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "61-/e,6[{\"_placeholder\":true,\"num\":0}]") == 0);
	CK(ws_recv(c, &bin, msg, sizeof(msg)) == 1 && bin && msg[0] == 7);
	/* "ignored" times out (the server says so), then leave: "pending" is cancelled. */
	r = ws_next_text(c, msg, sizeof(msg));
	CK(r && strcmp(r, "2/e,[\"expired\"]") == 0);
	ws_text(c, "1/e,");
	cl_close(c);
}

static void test_emit_and_acks(void **state)
{
	(void)state;
	memset(&S, 0, sizeof(S));
	io_start(NULL);
	sio_namespace *nsp = sio_of(g_io, "/e");
	sio_on(nsp, "go", on_go, NULL);
	sio_on(nsp, "question", on_question, NULL);
	sio_on_disconnect(nsp, on_disconnect, NULL);
	sio_on_any_outgoing(nsp, on_outgoing, NULL);
	run_client(client);
	/* The DISCONNECT may reach the loop after the client thread is done. */
	assert_true(run_until(&S.gone, 5000));

	assert_int_equal(S.answered.calls, 1);
	assert_int_equal(S.answered.timed_out, 0);
	assert_string_equal(S.answered.args, "\"fine\",2");
	assert_int_equal(S.expired.calls, 1);
	assert_int_equal(S.expired.timed_out, 1);
	assert_int_equal(S.cancelled.calls, 1);
	assert_int_equal(S.cancelled.timed_out, 1);
	assert_int_equal(S.rc_too_many, SIO_ETOO_MANY_ATTACHMENTS);
	assert_int_equal(S.rc_bad_id, BASE_EINVAL);
	assert_int_equal(S.rc_disconnected, SIO_ENOT_CONNECTED);
	/* hello, empty, ask, ignored, pending, expired: the listener hears each emit once. */
	assert_int_equal(S.outgoing, 6);
	assert_string_equal(S.outgoing_last, "expired");
	io_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_emit_and_acks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
