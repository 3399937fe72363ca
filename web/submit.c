/*
 * submit.c: the JSON routes old clients call.
 *
 *   POST /websockets/submit/<space_id>  form or multipart: prompt, audio_url,
 *                                        audio_file, video_file, other_file
 *   GET  /websockets/status?request_id=
 *
 * Checks come in the order PROTOCOL.md fixes: login (401), space (404), an
 * app connected (503), then the inputs (400) and the rate limit (429, in
 * sp_submit). Files are stored only once the cheap checks passed, and
 * handed to the app as URLs under /uploads/ with an unguessable token.
 */
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

static const char *const file_fields[] = {"audio_file", "video_file", "other_file"};
#define N_FILE_FIELDS WEB_UPLOADS_MAX

typedef struct {
	web_ctx base;
	int enable[4]; /* prompt, audio, video, other file */
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
	json_t *body = json_pack("{s:b,s:s}", "success", 0, "error",
	                         r->error ? r->error : "The request was not accepted");
	char hdr[48] = "";
	if (r->status == 429) {
		json_object_set_new(body, "retry_after", json_integer(r->retry_after));
		snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", r->retry_after);
	}
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	base_buf h = BASE_BUF_INIT;
	base_buf_printf(&h, "Cache-Control: no-store\r\n%s", hdr);
	web_buf_cstr(&h);
	if (!text)
		web__json_error(w, 500, "Out of memory");
	else
		web__respond(w, r->status, "application/json", h.data, text, strlen(text));
	free(text);
	base_buf_free(&h);
}

static void do_submit(submit_ctx *s)
{
	web_ctx *w = &s->base;
	const char *prompt = web_form_get(&w->form, "prompt");
	const char *audio_url = web_form_get(&w->form, "audio_url");
	json_t *payload = json_object();
	json_t *upload = NULL;
	base_buf base = BASE_BUF_INIT;

	json_object_set_new(payload, "prompt", json_string(prompt ? prompt : ""));
	if (audio_url && *audio_url)
		json_object_set_new(payload, "audio", json_string(audio_url));
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

	sp_submission sub = {w->id, w->sess.user_id, w->sess.username, payload, upload};
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

static void room_checked(const db_result *res, void *ud)
{
	submit_ctx *s = ud;
	web_ctx *w = &s->base;
	const web_options *o = &w->site->opts;
	char msg[200];

	if (web__gone(w))
		return;
	if (!db_ok(res) || db_ntuples(res) != 1) {
		web__server_error(w, "checking the upload quota", res);
		return;
	}
	uint64_t user_day = strtoull(db_value(res, 0, 0), NULL, 10);
	uint64_t all = strtoull(db_value(res, 0, 1), NULL, 10);
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
 * Before any byte is written: the files must fit in the user's quota of
 * the last 24 hours and in the disk budget of all stored uploads. (Two
 * submissions of one user at the same moment may each pass: the overshoot
 * is at most their files.)
 */
static void check_room(submit_ctx *s)
{
	web_ctx *w = &s->base;
	const web_options *o = &w->site->opts;

	if (!o->upload_quota_per_day && !o->upload_disk_budget) {
		web__uploads_store(w, s->ups, s->n_ups, files_stored);
		return;
	}
	static const char sql[] =
	    "SELECT (SELECT coalesce(sum(size), 0) FROM uploads WHERE user_id = $1 "
	    "AND created_at > now() - interval '1 day')::text, "
	    "(CASE WHEN $2 THEN (SELECT coalesce(sum(size), 0) FROM uploads) ELSE 0 END)::text";
	const char *params[2] = {w->sess.user_id, o->upload_disk_budget ? "t" : "f"};
	if (db_query_flags(w->site->db, DB_RETRY, sql, 2, params, room_checked, s))
		web__json_error(w, 503, "Server busy, please retry");
}

/* 1 when an audio URL is an absolute http(s) URL without spaces or quotes. */
static int url_ok(const char *u)
{
	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		return 0;
	if (strlen(u) > 2048)
		return 0;
	for (const char *p = u; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\')
			return 0;
	}
	return 1;
}

static void space_checked(const db_result *res, void *ud)
{
	submit_ctx *s = ud;
	web_ctx *w = &s->base;
	char msg[160];

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "checking a space", res);
		return;
	}
	/* card_type, enable_prompt, enable_audio, enable_video, enable_file_upload */
	if (db_ntuples(res) != 1 || strcmp(db_value(res, 0, 0), "websockets") != 0) {
		web__json_error(w, 404, "Space not found");
		return;
	}
	if (sp_space_apps(w->site->sp, w->id) == 0) {
		web__json_error(w, 503, "Remote app not connected");
		return;
	}
	for (int i = 0; i < 4; i++)
		s->enable[i] = strcmp(db_value(res, 0, 1 + i), "t") == 0;
	if (w->form_rc) {
		web__json_error(w, 400,
		                w->form_rc == BASE_ELIMIT ? "Too many form fields or files"
		                                          : "The form could not be read");
		return;
	}
	const char *prompt = web_form_get(&w->form, "prompt");
	if (s->enable[0] && (!prompt || !*prompt)) {
		web__json_error(w, 400, "Prompt is required");
		return;
	}
	if (prompt && !web_text_ok(prompt, strlen(prompt), 100000, 1)) {
		web__json_error(w, 400, "The prompt is too long or holds invalid characters");
		return;
	}
	const char *audio_url = web_form_get(&w->form, "audio_url");
	if (audio_url && *audio_url && (!s->enable[1] || !url_ok(audio_url))) {
		web__json_error(w, 400,
		                s->enable[1] ? "The audio URL must be an http:// or https:// URL"
		                             : "This space does not take audio");
		return;
	}
	for (size_t i = 0; i < N_FILE_FIELDS; i++) {
		const web_file *f = web_form_file(&w->form, file_fields[i]);

		if (!f)
			continue;
		if (!s->enable[1 + i]) {
			snprintf(msg, sizeof(msg), "This space does not take %s",
			         i == 0   ? "audio files"
			         : i == 1 ? "video files"
			                  : "file uploads");
			web__json_error(w, 400, msg);
			return;
		}
		if (f->data.len > w->site->opts.max_file_bytes) {
			snprintf(msg, sizeof(msg), "The file %s is too large (at most %zu MB)",
			         file_fields[i], w->site->opts.max_file_bytes >> 20);
			web__json_error(w, 400, msg);
			return;
		}
		web_upload *u = &s->ups[s->n_ups++];
		u->field = file_fields[i];
		snprintf(u->filename, sizeof(u->filename), "%s", f->filename);
		if (!web_text_ok(u->filename, strlen(u->filename), sizeof(u->filename), 0))
			snprintf(u->filename, sizeof(u->filename), "file");
		if (!f->content_type[0]) {
			snprintf(u->content_type, sizeof(u->content_type),
			         "application/octet-stream");
		} else if (web_media_type_parse(f->content_type, u->content_type,
		                                sizeof(u->content_type))) {
			snprintf(msg, sizeof(msg),
			         "The file %s has an invalid media type (Content-Type): give one "
			         "type, like audio/mpeg",
			         file_fields[i]);
			web__json_error(w, 400, msg);
			return;
		}
		u->data = f->data;
		s->bytes += f->data.len;
	}
	/* The rate limit is checked again by sp_submit; checking it here too
	 * would cost a query for the rare refused request. Files first, then. */
	if (s->n_ups) {
		check_room(s);
		return;
	}
	do_submit(s);
}

static void submit_step(web_ctx *w)
{
	w->cleanup = submit_cleanup;
	if (!w->sess.ok) {
		web__json_error(w, 401, "Login required");
		return;
	}
	if (!web__csrf_ok(w, 1))
		return;
	if (!w->id[0]) {
		web__json_error(w, 404, "Space not found");
		return;
	}
	static const char sql[] =
	    "SELECT card_type, enable_prompt, enable_audio, enable_video, enable_file_upload "
	    "FROM spaces WHERE id = $1";
	const char *params[1] = {w->id};
	if (db_query_flags(w->site->db, DB_RETRY, sql, 1, params, space_checked, w))
		web__json_error(w, 503, "Server busy, please retry");
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
	sp_request_status(site->sp, id, status_found, w);
}

void web__submit_routes(web_site *site)
{
	http_route(site->http, HTTP_M_POST, "/websockets/submit/", 1, submit_route, site);
	http_route(site->http, HTTP_M_GET, "/websockets/status", 0, status_route, site);
}
