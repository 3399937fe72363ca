/*
 * Tests spaces/rules.c: the submission rules (their order is PROTOCOL.md's),
 * the request state machine, and the dispatch choice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "spaces_internal.h"

/* A WebSocket space with a prompt, a 10 s rate limit, audio enabled. */
static sp_space_row space(void)
{
	sp_space_row r;

	memset(&r, 0, sizeof(r));
	r.id = "abc";
	r.name = "demo";
	r.card_type = "websockets";
	r.enable[SP_INPUT_PROMPT] = 1;
	r.enable[SP_INPUT_AUDIO] = 1;
	r.rate_limit_s = 10;
	r.timeout_s = 120;
	return r;
}

/* Facts that pass every rule: logged in, an app, a prompt, no earlier request. */
static sp_submit_facts facts(const sp_space_row *sp, const sp_inputs *in)
{
	sp_submit_facts f = {1, sp, 1, -1, in};
	return f;
}

static sp_verdict judge(const sp_submit_facts *f)
{
	sp_verdict v;

	sp_submit_judge(f, &v);
	return v;
}

static void test_accepts(void **state)
{
	(void)state;
	sp_space_row sp = space();
	sp_inputs in = {.prompt = "hello"};
	sp_submit_facts f = facts(&sp, &in);
	sp_verdict v = judge(&f);

	assert_int_equal(v.status, 200);
	assert_string_equal(v.error, "");
	/* The last request long enough ago. */
	f.since_last_s = 10.0;
	assert_int_equal(judge(&f).status, 200);
	/* Inputs not judged (NULL): the other rules still apply. */
	f.in = NULL;
	assert_int_equal(judge(&f).status, 200);
}

/* Each failure hides the ones after it: 401, 404, 503, 400, 429. */
static void test_order(void **state)
{
	(void)state;
	sp_space_row sp = space();
	sp_inputs in = {.prompt = ""}; /* 400: prompt required */
	sp_submit_facts f = {0, NULL, 0, 1.0, &in};

	assert_int_equal(judge(&f).status, 401);
	assert_string_equal(judge(&f).error, "Login required");
	f.logged_in = 1;
	assert_int_equal(judge(&f).status, 404);
	f.space = &sp;
	assert_int_equal(judge(&f).status, 503);
	assert_string_equal(judge(&f).error, "Remote app not connected");
	f.apps = 2;
	assert_int_equal(judge(&f).status, 400);
	assert_string_equal(judge(&f).error, "Prompt is required");
	in.prompt = "ok";
	sp_verdict v = judge(&f);
	assert_int_equal(v.status, 429);
	assert_int_equal(v.retry_after, 9);
}

/* test_websockets.py posts only a prompt to a space with audio enabled and
 * no app: the missing optional input must not hide the 503. */
static void test_missing_optional_input_keeps_503(void **state)
{
	(void)state;
	sp_space_row sp = space();
	sp_inputs in = {.prompt = "only a prompt"};
	sp_submit_facts f = facts(&sp, &in);

	f.apps = 0;
	assert_int_equal(judge(&f).status, 503);
}

static void test_not_websockets_is_404(void **state)
{
	(void)state;
	sp_space_row sp = space();
	sp_submit_facts f = facts(&sp, NULL);

	sp.card_type = "gradio";
	assert_int_equal(judge(&f).status, 404);
	assert_string_equal(judge(&f).error, "Space not found");
}

static void test_inputs(void **state)
{
	(void)state;
	sp_space_row sp = space();
	sp_inputs in = {.prompt = "p", .max_file_bytes = 1 << 20};
	sp_submit_facts f = facts(&sp, &in);

	in.form_error = "The form could not be read";
	assert_int_equal(judge(&f).status, 400);
	assert_string_equal(judge(&f).error, "The form could not be read");
	in.form_error = NULL;

	in.prompt = "bad \x01 control";
	assert_string_equal(judge(&f).error, "The prompt is too long or holds invalid characters");
	in.prompt = "bad \xff utf-8";
	assert_int_equal(judge(&f).status, 400);
	in.prompt = "multi\nline\ttext é";
	assert_int_equal(judge(&f).status, 200);

	/* A prompt is optional when the space does not ask for one. */
	sp.enable[SP_INPUT_PROMPT] = 0;
	in.prompt = NULL;
	assert_int_equal(judge(&f).status, 200);

	in.audio_url = "ftp://x/y.wav";
	assert_string_equal(judge(&f).error, "The audio URL must be an http:// or https:// URL");
	in.audio_url = "https://example.com/a b.wav";
	assert_int_equal(judge(&f).status, 400);
	in.audio_url = "https://example.com/a.wav";
	assert_int_equal(judge(&f).status, 200);
	sp.enable[SP_INPUT_AUDIO] = 0;
	assert_string_equal(judge(&f).error, "This space does not take audio");
	in.audio_url = "";
	assert_int_equal(judge(&f).status, 200);

	in.file[1].given = 1; /* a video, not enabled */
	in.file[1].size = 10;
	assert_string_equal(judge(&f).error, "This space does not take video files");
	sp.enable[SP_INPUT_VIDEO] = 1;
	assert_int_equal(judge(&f).status, 200);
	in.file[1].size = (1 << 20) + 1;
	assert_string_equal(judge(&f).error, "The file video_file is too large (at most 1 MB)");
	in.file[1].size = 10;
	in.file[1].bad_type = 1;
	assert_int_equal(judge(&f).status, 400);
	assert_non_null(strstr(judge(&f).error, "invalid media type"));
}

static void test_rate_limit(void **state)
{
	(void)state;
	sp_space_row sp = space();
	sp_submit_facts f = facts(&sp, NULL);

	f.since_last_s = 9.5;
	sp_verdict v = judge(&f);
	assert_int_equal(v.status, 429);
	assert_int_equal(v.retry_after, 1);
	f.since_last_s = 0;
	assert_int_equal(judge(&f).retry_after, 10);
	sp.rate_limit_s = 0; /* no limit */
	assert_int_equal(judge(&f).status, 200);
}

/* ---- the state machine ---------------------------------------------------- */

static void test_transitions(void **state)
{
	(void)state;
	sp_status to;

	assert_int_equal(sp_request_next(SP_QUEUED, SP_EV_DISPATCH, &to), 0);
	assert_int_equal(to, SP_PROCESSING);
	assert_int_equal(sp_request_next(SP_PROCESSING, SP_EV_REQUEUE, &to), 0);
	assert_int_equal(to, SP_QUEUED);
	assert_int_equal(sp_request_next(SP_PROCESSING, SP_EV_COMPLETED, &to), 0);
	assert_int_equal(to, SP_COMPLETED);
	assert_int_equal(sp_request_next(SP_PROCESSING, SP_EV_FAILED, &to), 0);
	assert_int_equal(to, SP_FAILED);
	assert_int_equal(sp_request_next(SP_QUEUED, SP_EV_TIMEOUT, &to), 0);
	assert_int_equal(to, SP_FAILED);
	assert_int_equal(sp_request_next(SP_PROCESSING, SP_EV_TIMEOUT, &to), 0);
	assert_int_equal(to, SP_FAILED);
	assert_int_equal(sp_request_next(SP_QUEUED, SP_EV_CANCEL, &to), 0);
	assert_int_equal(to, SP_CANCELLED);
	assert_int_equal(sp_request_next(SP_PROCESSING, SP_EV_CANCEL, &to), 0);
	assert_int_equal(to, SP_CANCELLED);

	/* Refused: results only from processing, nothing after the end. */
	assert_int_equal(sp_request_next(SP_QUEUED, SP_EV_COMPLETED, NULL), -1);
	assert_int_equal(sp_request_next(SP_QUEUED, SP_EV_REQUEUE, NULL), -1);
	assert_int_equal(sp_request_next(SP_PROCESSING, SP_EV_DISPATCH, NULL), -1);
	for (int ev = SP_EV_DISPATCH; ev <= SP_EV_CANCEL; ev++) {
		assert_int_equal(sp_request_next(SP_COMPLETED, (sp_event)ev, NULL), -1);
		assert_int_equal(sp_request_next(SP_FAILED, (sp_event)ev, NULL), -1);
		assert_int_equal(sp_request_next(SP_CANCELLED, (sp_event)ev, NULL), -1);
	}
	assert_int_equal(sp_request_next(SP_QUEUED, (sp_event)99, NULL), -1);
}

static void test_status_names(void **state)
{
	(void)state;
	sp_status s;

	for (int i = 0; i < SP_STATUSES; i++) {
		assert_int_equal(sp_status_parse(sp_status_name((sp_status)i), &s), 0);
		assert_int_equal(s, i);
	}
	assert_int_equal(sp_status_parse("cancelled?", &s), -1);
	assert_int_equal(sp_status_parse(NULL, &s), -1);
	assert_string_equal(sp_status_name(SP_PROCESSING), "processing");
}

/* ---- dispatch --------------------------------------------------------------- */

static void test_pick_app(void **state)
{
	(void)state;
	sp_space sp;
	sp_conn c[3];
	int alive; /* any non-NULL pointer stands for a connected socket */

	memset(&sp, 0, sizeof(sp));
	memset(c, 0, sizeof(c));
	base_list_init(&sp.apps);
	assert_null(sp__pick_app(&sp));
	assert_null(sp__pick_app(NULL));
	for (int i = 0; i < 3; i++) {
		c[i].s = (sio_socket *)&alive;
		base_list_insert_tail(&sp.apps, &c[i].link);
	}
	/* A tie goes to the first registered. */
	assert_ptr_equal(sp__pick_app(&sp), &c[0]);
	c[0].inflight = 2;
	c[1].inflight = 1;
	c[2].inflight = 1;
	assert_ptr_equal(sp__pick_app(&sp), &c[1]);
	c[2].inflight = 0;
	assert_ptr_equal(sp__pick_app(&sp), &c[2]);
	/* A disconnected app gets nothing, however idle. */
	c[2].s = NULL;
	assert_ptr_equal(sp__pick_app(&sp), &c[1]);
	c[0].s = c[1].s = NULL;
	assert_null(sp__pick_app(&sp));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_accepts),
	    cmocka_unit_test(test_order),
	    cmocka_unit_test(test_missing_optional_input_keeps_503),
	    cmocka_unit_test(test_not_websockets_is_404),
	    cmocka_unit_test(test_inputs),
	    cmocka_unit_test(test_rate_limit),
	    cmocka_unit_test(test_transitions),
	    cmocka_unit_test(test_status_names),
	    cmocka_unit_test(test_pick_app),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
