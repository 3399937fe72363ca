/*
 * rules.c: the decisions of the Spaces layer that need no I/O, written
 * once and tested on their own (tests/unit/spaces/test_rules.c):
 *
 * - whether a submission is accepted, and if not the HTTP answer
 *   (sp_submit_judge): every path that submits comes through it;
 * - the request state machine (sp_request_next): which status an event
 *   moves a request to, and which events a status refuses;
 * - the dispatch choice (sp__pick_app): which app of a space gets a request.
 */
#include <math.h>
#include <stdio.h>

#include "spaces_internal.h"

#define PROMPT_MAX 100000
#define URL_MAX 2048

/* Text a user typed: UTF-8 without control characters but \t \r \n. */
static int text_ok(const char *s, size_t max)
{
	size_t len = strlen(s);
	uint32_t st = 0;

	if (len > max)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0x7f || (c < 0x20 && c != '\n' && c != '\r' && c != '\t'))
			return 0;
	}
	return base_utf8_validate(&st, (const unsigned char *)s, len) == 0 && st == 0;
}

/* An absolute http(s) URL without spaces, quotes or angle brackets. */
static int url_ok(const char *u)
{
	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		return 0;
	if (strlen(u) > URL_MAX)
		return 0;
	for (const char *p = u; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\')
			return 0;
	}
	return 1;
}

static void refuse(sp_verdict *v, int status, const char *msg)
{
	v->status = status;
	snprintf(v->error, sizeof(v->error), "%s", msg);
}

static const char *const file_names[SP_UPLOADS] = {"audio_file", "video_file", "other_file"};
static const char *const file_kinds[SP_UPLOADS] = {"audio files", "video files", "file uploads"};

/* The inputs (400): the first problem found, in the order of the form. */
static int judge_inputs(const sp_space_row *sp, const sp_inputs *in, sp_verdict *v)
{
	if (in->form_error) {
		refuse(v, 400, in->form_error);
		return -1;
	}
	if (sp->enable[SP_INPUT_PROMPT] && (!in->prompt || !*in->prompt)) {
		refuse(v, 400, "Prompt is required");
		return -1;
	}
	if (in->prompt && !text_ok(in->prompt, PROMPT_MAX)) {
		refuse(v, 400, "The prompt is too long or holds invalid characters");
		return -1;
	}
	if (in->audio_url && *in->audio_url &&
	    (!sp->enable[SP_INPUT_AUDIO] || !url_ok(in->audio_url))) {
		refuse(v, 400,
		       sp->enable[SP_INPUT_AUDIO]
		           ? "The audio URL must be an http:// or https:// URL"
		           : "This space does not take audio");
		return -1;
	}
	for (int i = 0; i < SP_UPLOADS; i++) {
		const sp_input_file *f = &in->file[i];

		if (!f->given)
			continue;
		if (!sp->enable[SP_INPUT_AUDIO + i]) {
			v->status = 400;
			snprintf(v->error, sizeof(v->error), "This space does not take %s",
			         file_kinds[i]);
			return -1;
		}
		if (in->max_file_bytes && f->size > in->max_file_bytes) {
			v->status = 400;
			snprintf(v->error, sizeof(v->error),
			         "The file %s is too large (at most %llu MB)", file_names[i],
			         (unsigned long long)(in->max_file_bytes >> 20));
			return -1;
		}
		if (f->bad_type) {
			v->status = 400;
			snprintf(v->error, sizeof(v->error),
			         "The file %s has an invalid media type (Content-Type): give one "
			         "type, like audio/mpeg",
			         file_names[i]);
			return -1;
		}
	}
	return 0;
}

void sp_submit_judge(const sp_submit_facts *f, sp_verdict *v)
{
	const sp_space_row *sp = f->space;

	memset(v, 0, sizeof(*v));
	v->status = 200;
	if (!f->logged_in) {
		refuse(v, 401, "Login required");
		return;
	}
	if (!sp || strcmp(sp->card_type, "websockets") != 0) {
		refuse(v, 404, "Space not found");
		return;
	}
	if (f->apps == 0) {
		refuse(v, 503, "Remote app not connected");
		return;
	}
	if (f->in && judge_inputs(sp, f->in, v))
		return;
	if (sp->rate_limit_s > 0 && f->since_last_s >= 0 && f->since_last_s < sp->rate_limit_s) {
		double wait = ceil((double)sp->rate_limit_s - f->since_last_s);

		refuse(v, 429, "Rate limit: please wait before submitting again");
		v->retry_after = wait >= 1 ? (unsigned)wait : 1;
	}
}

/* ---- the request state machine -------------------------------------------- */

static const char *const status_names[SP_STATUSES] = {"queued", "processing", "completed", "failed",
                                                      "cancelled"};

const char *sp_status_name(sp_status s)
{
	return (unsigned)s < SP_STATUSES ? status_names[s] : "unknown";
}

int sp_status_parse(const char *name, sp_status *out)
{
	for (int i = 0; name && i < SP_STATUSES; i++) {
		if (strcmp(name, status_names[i]) == 0) {
			*out = (sp_status)i;
			return 0;
		}
	}
	return -1;
}

int sp_request_next(sp_status from, sp_event ev, sp_status *to)
{
	sp_status next;

	switch (ev) {
	case SP_EV_DISPATCH: /* sent to an app */
		if (from != SP_QUEUED)
			return -1;
		next = SP_PROCESSING;
		break;
	case SP_EV_REQUEUE: /* its app left without answering */
		if (from != SP_PROCESSING)
			return -1;
		next = SP_QUEUED;
		break;
	case SP_EV_COMPLETED: /* the holding app's result */
	case SP_EV_FAILED:
		if (from != SP_PROCESSING)
			return -1;
		next = ev == SP_EV_COMPLETED ? SP_COMPLETED : SP_FAILED;
		break;
	case SP_EV_TIMEOUT: /* the deadline passed, wherever it was */
		if (from != SP_QUEUED && from != SP_PROCESSING)
			return -1;
		next = SP_FAILED;
		break;
	case SP_EV_CANCEL: /* its user, while it is open (control.c) */
		if (from != SP_QUEUED && from != SP_PROCESSING)
			return -1;
		next = SP_CANCELLED;
		break;
	default:
		return -1;
	}
	if (to)
		*to = next;
	return 0;
}

/* ---- dispatch --------------------------------------------------------------- */

sp_conn *sp__pick_app(const sp_space *sp)
{
	sp_conn *best = NULL;

	if (!sp)
		return NULL;
	/* The fewest requests in flight; on a tie the one registered first (the
	 * list's order), so one app is not starved of the next request. */
	for (base_list *pos = sp->apps.next; pos != &sp->apps; pos = pos->next) {
		sp_conn *c = BASE_CONTAINER_OF(pos, sp_conn, link);

		if (c->s && (!best || c->inflight < best->inflight))
			best = c;
	}
	return best;
}
