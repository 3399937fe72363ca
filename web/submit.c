/*
 * submit.c: the JSON routes old clients call.
 *
 *   POST /websockets/submit/<space_id>  form or multipart: prompt, audio_url,
 *                                        audio_file, video_file, other_file
 *   GET  /websockets/status?request_id=
 *   POST /websockets/cancel/<request_id>, POST /websockets/retry/<request_id>
 *   GET  /api/requests?space_id=          the user's newest requests of a space
 *
 * The rules (login 401, space 404, an app connected 503, inputs 400, rate
 * limit 429, in that order) are sp_submit_judge's; this file reads the form
 * and the files for it. Files are stored only once the rules accepted the
 * submission, and handed to the app as URLs under /uploads/ with an
 * unguessable token.
 */
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

static const char *const file_fields[] = {"audio_file", "video_file", "other_file"};
#define N_FILE_FIELDS WEB_UPLOADS_MAX

typedef struct {
	web_ctx base;
	sp_inputs in; /* strings point into the form (the request's arena) */
	web_upload ups[N_FILE_FIELDS];
	size_t n_ups;
	uint64_t bytes; /* of the files */
	int stored;
} submit_ctx;

static void submit_cleanup(web_ctx *w)
{
	submit_ctx *s = (submit_ctx *)w;

	/* Refused or abandoned after the files were stored: remove them. */
	if (s->stored)
		web__uploads_discard(w->site, s->ups, s->n_ups);
}

/* A refusal: {success: false, error} with the status, and Retry-After with 429. */
static void refused(web_ctx *w, int status, const char *error, unsigned retry_after)
{
	json_t *body = json_pack("{s:b,s:s}", "success", 0, "error",
	                         error && *error ? error : "The request was not accepted");
	char hdr[80];

	if (status != 429) {
		web__json(w, status, body);
		return;
	}
	json_object_set_new(body, "retry_after", json_integer(retry_after));
	snprintf(hdr, sizeof(hdr), "Cache-Control: no-store\r\nRetry-After: %u\r\n", retry_after);
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		web__json_error(w, 500, "Out of memory");
	else
		web__respond(w, status, "application/json", hdr, text, strlen(text));
	free(text);
}

static void submitted(const sp_submit_result *r, void *ud)
{
	submit_ctx *s = ud;
	web_ctx *w = &s->base;

	if (r->status == 200 && s->stored) {
		web__uploads_attach(w->site, s->ups, s->n_ups, r->request_id);
		s->stored = 0;
	}
	if (web__gone(w))
		return; /* the request exists and runs; its owner can follow it on the page */
	if (r->status == 200) {
		BASE_LOGD("web", "request %s submitted by %s", r->request_id, w->sess.username);
		web__json(w, 200,
		          json_pack("{s:b,s:s}", "success", 1, "request_id", r->request_id));
		return;
	}
	refused(w, r->status, r->error, r->retry_after);
}

static void do_submit(submit_ctx *s)
{
	web_ctx *w = &s->base;
	json_t *payload = json_object();
	json_t *upload = NULL;
	base_buf base = BASE_BUF_INIT;

	json_object_set_new(payload, "prompt", json_string(s->in.prompt ? s->in.prompt : ""));
	if (s->in.audio_url && *s->in.audio_url)
		json_object_set_new(payload, "audio", json_string(s->in.audio_url));
	web__base_url(&base, w);
	base_buf_append(&base, "", 1);
	for (size_t i = 0; i < s->n_ups; i++) {
		const web_upload *u = &s->ups[i];
		char url[2048];

		snprintf(url, sizeof(url), "%s/uploads/%s/%s", base.data ? base.data : "", u->token,
		         u->name);
		if (!upload)
			upload = json_object();
		json_object_set_new(upload, u->field,
		                    json_pack("{s:s,s:s,s:s,s:I}", "url", url, "filename",
		                              u->filename, "content_type", u->content_type, "size",
		                              (json_int_t)u->data.len));
		/* An audio file is the audio input, as an audio URL would be. */
		if (strcmp(u->field, "audio_file") == 0)
			json_object_set_new(payload, "audio", json_string(url));
		else if (strcmp(u->field, "video_file") == 0)
			json_object_set_new(payload, "video", json_string(url));
		else
			json_object_set_new(payload, "file", json_string(url));
	}
	base_buf_free(&base);

	sp_submission sub = {w->id, w->sess.user_id, w->sess.username, &s->in, payload, upload};
	sp_submit(w->site->sp, &sub, submitted, s);
	json_decref(payload);
	json_decref(upload);
}

static void files_stored(web_ctx *w, int rc)
{
	submit_ctx *s = (submit_ctx *)w;

	if (rc) {
		web__json_error(w, 500, "The files could not be stored, please retry");
		return;
	}
	s->stored = 1;
	do_submit(s);
}

/* ---- room for the files: the user's daily quota, the disk budget ------------- */

static void room_checked(sp_store_status st, uint64_t user_day, uint64_t all, void *ud)
{
	submit_ctx *s = ud;
	web_ctx *w = &s->base;
	const web_options *o = &w->site->opts;
	char msg[200];

	if (web__gone(w))
		return;
	if (st) {
		web__store_error(w, st);
		return;
	}
	if (o->upload_quota_per_day && user_day + s->bytes > o->upload_quota_per_day) {
		BASE_LOGW("web",
		          "upload of %llu bytes by '%s' refused: daily quota (%llu of %llu bytes "
		          "used)",
		          (unsigned long long)s->bytes, w->sess.username,
		          (unsigned long long)user_day,
		          (unsigned long long)o->upload_quota_per_day);
		snprintf(msg, sizeof(msg),
		         "Upload quota exceeded: you may upload %llu MB per day and have used "
		         "%llu MB. Try again later.",
		         (unsigned long long)(o->upload_quota_per_day >> 20),
		         (unsigned long long)(user_day >> 20));
		web__json_error(w, 413, msg);
		return;
	}
	if (o->upload_disk_budget && all + s->bytes > o->upload_disk_budget) {
		BASE_LOGE("web",
		          "upload of %llu bytes by '%s' refused: the upload directory's budget "
		          "is used up (%llu of %llu bytes)",
		          (unsigned long long)s->bytes, w->sess.username, (unsigned long long)all,
		          (unsigned long long)o->upload_disk_budget);
		web__json_error(w, 507,
		                "The server has no room for more uploads right now. Please try "
		                "again later.");
		return;
	}
	web__uploads_store(w, s->ups, s->n_ups, files_stored);
}

/*
 * Accepted by the rules: before any byte is written, the files must fit in
 * the user's quota of the last 24 hours and in the disk budget of all
 * stored uploads. (Two submissions of one user at the same moment may each
 * pass: the overshoot is at most their files.)
 */
static void checked(const sp_verdict *v, void *ud)
{
	submit_ctx *s = ud;
	web_ctx *w = &s->base;
	const web_options *o = &w->site->opts;

	if (web__gone(w))
		return;
	if (v->status != 200) {
		refused(w, v->status, v->error, v->retry_after);
		return;
	}
	if (!o->upload_quota_per_day && !o->upload_disk_budget) {
		web__uploads_store(w, s->ups, s->n_ups, files_stored);
		return;
	}
	if (sp_store_upload_usage(w->site->sp, w->sess.user_id, o->upload_disk_budget != 0,
	                          room_checked, s))
		web__busy(w);
}

/* The inputs of the form as the rules see them, and the files to store. */
static void read_inputs(submit_ctx *s)
{
	web_ctx *w = &s->base;
	sp_inputs *in = &s->in;

	in->prompt = web_form_get(&w->form, "prompt");
	in->audio_url = web_form_get(&w->form, "audio_url");
	in->max_file_bytes = w->site->opts.max_file_bytes;
	if (w->form_rc)
		in->form_error = w->form_rc == BASE_ELIMIT ? "Too many form fields or files"
		                                           : "The form could not be read";
	for (size_t i = 0; i < N_FILE_FIELDS; i++) {
		const web_file *f = web_form_file(&w->form, file_fields[i]);
		web_upload *u = &s->ups[s->n_ups];

		if (!f)
			continue;
		in->file[i].given = 1;
		in->file[i].size = f->data.len;
		s->n_ups++;
		u->field = file_fields[i];
		snprintf(u->filename, sizeof(u->filename), "%s", f->filename);
		if (!web_text_ok(u->filename, strlen(u->filename), sizeof(u->filename), 0))
			snprintf(u->filename, sizeof(u->filename), "file");
		if (!f->content_type[0])
			snprintf(u->content_type, sizeof(u->content_type),
			         "application/octet-stream");
		else if (web_media_type_parse(f->content_type, u->content_type,
		                              sizeof(u->content_type)))
			in->file[i].bad_type = 1;
		u->data = f->data;
		s->bytes += f->data.len;
	}
}

static void submit_step(web_ctx *w)
{
	submit_ctx *s = (submit_ctx *)w;

	w->cleanup = submit_cleanup;
	if (!w->sess.ok) {
		sp_submit_check(w->site->sp, w->id, NULL, NULL, checked, s); /* 401 */
		return;
	}
	if (!web__csrf_ok(w, 1))
		return;
	read_inputs(s);
	/* Files are stored only once the rules accept them; without files the
	 * submission is judged and written in one go. */
	if (s->n_ups)
		sp_submit_check(w->site->sp, w->id, w->sess.user_id, &s->in, checked, s);
	else
		do_submit(s);
}

static void submit_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(submit_ctx), "/websockets/submit/", 1, submit_step);
}

/* ---- status --------------------------------------------------------------- */

static void status_found(int status, json_t *body, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	web__json(w, status, json_incref(body));
}

/* A document kept in memory, already serialised: as web__json would send it. */
static void status_text(const char *json, size_t len, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	web__respond(w, 200, "application/json", "Cache-Control: no-store\r\n", json, len);
}

static void status_route(http_request *req, void *ud)
{
	web_site *site = ud;
	base_slice v;
	char id[64];

	/* No session needed: request ids are unguessable UUIDs, as the old server had it. */
	web_ctx *w = web__ctx_new(site, req, sizeof(web_ctx));
	if (!w)
		return;
	w->json = 1;
	if (!base_query_get(req->query, "request_id", &v) || v.len == 0) {
		web__json(w, 400, json_pack("{s:s}", "error", "Missing request_id"));
		return;
	}
	ssize_t n = v.len < sizeof(id) ? base_url_decode(v.base, v.len, id, 1) : -1;
	if (n <= 0) {
		web__json(w, n == 0 ? 400 : 404,
		          json_pack("{s:s}", "error",
		                    n == 0 ? "Missing request_id" : "Request not found"));
		return;
	}
	id[n] = 0;
	sp_request_status_text(site->sp, id, status_text, status_found, w);
}

/* ---- cancel, retry, the user's requests of a space ---------------------------- */

static void json_answered(int status, json_t *body, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	web__json(w, status, json_incref(body));
}

/* Session and CSRF as for a submission; the request's id from the path. */
static int control_ok(web_ctx *w)
{
	if (!w->sess.ok) {
		web__json_error(w, 401, "Login required");
		return 0;
	}
	if (!web__csrf_ok(w, 1))
		return 0;
	if (!w->id[0]) {
		web__json_error(w, 404, "Request not found");
		return 0;
	}
	return 1;
}

static void cancel_step(web_ctx *w)
{
	if (control_ok(w))
		sp_cancel(w->site->sp, w->id, w->sess.user_id, json_answered, w);
}

static void cancel_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), "/websockets/cancel/", 1, cancel_step);
}

static void retried(const sp_submit_result *r, void *ud)
{
	web_ctx *w = ud;

	if (web__gone(w))
		return;
	if (r->status == 200)
		web__json(w, 200,
		          json_pack("{s:b,s:s}", "success", 1, "request_id", r->request_id));
	else
		refused(w, r->status, r->error, r->retry_after);
}

static void retry_step(web_ctx *w)
{
	if (control_ok(w))
		sp_retry(w->site->sp, w->id, w->sess.user_id, w->sess.username, retried, w);
}

static void retry_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), "/websockets/retry/", 1, retry_step);
}

/* GET /api/requests?space_id=ID: the user's newest requests there, as request_update has them. */
static void list_step(web_ctx *w)
{
	base_slice v;
	char id[WEB_ID_MAX];

	if (!w->sess.ok) {
		web__json_error(w, 401, "Login required");
		return;
	}
	ssize_t n = base_query_get(w->req->query, "space_id", &v) && v.len < sizeof(id)
	                ? base_url_decode(v.base, v.len, id, 1)
	                : -1;
	if (n <= 0 || (id[n] = 0, !web_id_ok(id))) {
		web__json_error(w, 400, "space_id is required");
		return;
	}
	sp_request_list(w->site->sp, id, w->sess.user_id, json_answered, w);
}

static void list_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 1, list_step);
}

const web_route web__submit_routes[] = {
    {HTTP_M_POST, "/websockets/submit/", 1, submit_route},
    {HTTP_M_GET, "/websockets/status", 0, status_route},
    {HTTP_M_POST, "/websockets/cancel/", 1, cancel_route},
    {HTTP_M_POST, "/websockets/retry/", 1, retry_route},
    {HTTP_M_GET, "/api/requests", 0, list_route},
    {0, NULL, 0, NULL},
};
