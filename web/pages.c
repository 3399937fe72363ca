/*
 * pages.c: the spaces list (/) and a space's page (/ai_project/<id>).
 *
 * The connected state is rendered on the server (the words `Connected` and
 * `Not connected`, which scripts look for) and then kept live by
 * /static/spaces.js over Socket.IO ("/spaces": follow_space, space_state).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

/* ---- shared pieces ---------------------------------------------------------- */

void web__live_badge(base_buf *b, const web_ctx *w, const char *space_id)
{
	unsigned n = sp_space_apps(w->site->sp, space_id);

	web_html(b, "<span class=\"badge %s\" data-live-space=\"%s\">%s</span>", n ? "on" : "off",
	         space_id, n ? "Connected" : "Not connected");
}

void web__format_duration(base_buf *b, double s)
{
	if (!isfinite(s) || s < 0)
		return;
	if (s < 10)
		base_buf_printf(b, "%.2f s", s);
	else if (s < 60)
		base_buf_printf(b, "%.1f s", s);
	else
		base_buf_printf(b, "%d min %d s", (int)(s / 60), (int)fmod(s, 60));
}

void web__time(base_buf *b, const char *utc)
{
	char iso[32], txt[32];
	size_t n = utc ? strlen(utc) : 0;

	if (n < 19 || n >= sizeof(iso) || utc[4] != '-' || utc[10] == 0) {
		web_html(b, "<time>%s</time>", utc ? utc : "");
		return;
	}
	/* "2026-12-06 22:51:29 UTC" or "2026-12-06T22:51:29.123Z" -> "2026-12-06T22:51:29Z" */
	memcpy(iso, utc, 19);
	iso[10] = 'T';
	iso[19] = 'Z';
	iso[20] = 0;
	memcpy(txt, iso, 19);
	txt[10] = ' ';
	txt[19] = 0;
	web_html(b, "<time datetime=\"%s\">%s UTC</time>", iso, txt);
}

static const char *status_label(const char *status)
{
	if (strcmp(status, "queued") == 0)
		return "In queue";
	if (strcmp(status, "processing") == 0)
		return "Processing";
	if (strcmp(status, "completed") == 0)
		return "Completed";
	if (strcmp(status, "failed") == 0)
		return "Failed";
	if (strcmp(status, "cancelled") == 0)
		return "Cancelled";
	return "Unknown";
}

/*
 * One request as a card. spaces.js renders every card again from the
 * request's status (the same fields as its live updates), so a card looks
 * the same live and after a reload; this markup is what shows before that,
 * and without scripts. result_json may be NULL.
 */
void web__request_card(base_buf *b, const char *id, const char *status, int progress,
                       const char *prompt, const char *result_json, const char *created_at)
{
	json_t *res = result_json ? json_loads(result_json, JSON_DECODE_ANY, NULL) : NULL;
	const char *text = json_string_value(json_object_get(res, "text_output"));
	const char *err = json_string_value(json_object_get(res, "error"));
	const char *reason = json_string_value(json_object_get(res, "reason"));
	const char *model = json_string_value(json_object_get(res, "model_used"));
	json_t *pt = json_object_get(res, "processing_time_seconds");
	json_t *tokens = json_object_get(res, "tokens_used");
	int final = strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0 ||
	            strcmp(status, "cancelled") == 0;
	int timeout = reason && strcmp(reason, "timeout") == 0;
	base_buf meta = BASE_BUF_INIT;

	web_html(b,
	         "<li class=\"req\" data-request-id=\"%s\" data-status=\"%s\">\n"
	         "<div class=\"req-head\"><span class=\"req-status s-%s\">%s</span> "
	         "<code title=\"%s\">%s</code> ",
	         id, status, timeout ? "timeout" : status,
	         timeout ? "Timed out" : status_label(status), id, id);
	web__time(b, created_at);
	web_html(b, "</div>\n");
	if (prompt && *prompt)
		web_html(b, "<p class=\"req-prompt\">%s</p>\n", prompt);
	if (!final)
		web_html(
		    b,
		    "<div class=\"req-progress\"><progress max=\"100\" value=\"%d\" "
		    "aria-label=\"Progress\"></progress> <span class=\"req-msg\"></span></div>\n",
		    progress);
	if (text)
		web_html(b, "<pre class=\"req-text\">%s</pre>\n", text);
	if (json_is_number(pt)) {
		base_buf_append_str(&meta, "Processing time: ");
		web__format_duration(&meta, json_number_value(pt));
	}
	if (model)
		web_html(&meta, "%R%s", meta.len ? " · Model: " : "Model: ", model);
	if (json_is_integer(tokens))
		base_buf_printf(&meta, "%s%lld tokens", meta.len ? " · " : "",
		                (long long)json_integer_value(tokens));
	if (meta.len)
		web_html(b, "<p class=\"req-meta\">%s</p>\n", web_buf_cstr(&meta));
	base_buf_free(&meta);
	if (err && strcmp(status, "cancelled") == 0)
		web_html(b, "<p class=\"req-note\">%s</p>\n", err);
	else if (err)
		web_html(b, "<p class=\"req-error\">%R%s</p>\n",
		         timeout ? "Timed out: " : "Error: ", err);
	else if (strcmp(status, "failed") == 0)
		web_html(b, "<p class=\"req-error\">The request failed.</p>\n");
	if (res && !text && !err && final) {
		char *raw =
		    json_dumps(res, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));

		if (raw)
			web_html(b, "<pre class=\"req-json\">%s</pre>\n", raw);
		free(raw);
	}
	web_html(b, "</li>\n");
	json_decref(res);
}

/* ---- / ------------------------------------------------------------------------ */

static void spaces_listed(sp_store_status st, const sp_space_row *rows, unsigned n, void *ud)
{
	web_ctx *w = ud;
	base_buf b = BASE_BUF_INIT;

	if (web__gone(w))
		return;
	if (st) {
		web__store_error(w, st);
		return;
	}
	web_html(&b, "<section>\n<h1>Spaces</h1>\n");
	if (n == 0) {
		web_html(&b, "<p class=\"muted\">No spaces yet.%R</p>\n",
		         w->sess.is_admin ? " <a href=\"/admin\">Create one</a>." : "");
	}
	web_html(&b, "<ul class=\"cards\">\n");
	for (unsigned i = 0; i < n; i++) {
		const sp_space_row *r = &rows[i];

		web_html(&b,
		         "<li class=\"card\">\n<h2><a href=\"/ai_project/%s\">%s</a></h2>\n"
		         "<p class=\"desc\">%s</p>\n<p>",
		         r->id, r->name, r->description);
		if (strcmp(r->card_type, "websockets") == 0)
			web__live_badge(&b, w, r->id);
		web_html(&b, "</p>\n</li>\n");
	}
	web_html(&b, "</ul>\n</section>\n"
	             "<script src=\"/socket.io/socket.io.js\"></script>\n"
	             "<script src=\"/static/spaces.js\"></script>\n");
	web__page(w, 200, "Spaces", &b, NULL);
	base_buf_free(&b);
}

static void index_step(web_ctx *w)
{
	if (sp_store_spaces_list(w->site->sp, 0, spaces_listed, w))
		web__busy(w);
}

static void index_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, index_step);
}

/* ---- /ai_project/<id> ------------------------------------------------------------ */

static void input_fields(base_buf *b, const sp_space_row *sp)
{
	if (sp->enable[SP_INPUT_PROMPT])
		web_html(b,
		         "<label>Prompt <textarea name=\"prompt\" rows=\"4\" maxlength=\"100000\">"
		         "</textarea></label>\n");
	if (sp->enable[SP_INPUT_AUDIO])
		web_html(
		    b, "<label>Audio URL <input type=\"url\" name=\"audio_url\" "
		       "placeholder=\"https://example.com/sound.wav\" maxlength=\"2048\"></label>\n"
		       "<label>or an audio file <input type=\"file\" name=\"audio_file\" "
		       "accept=\"audio/*\"></label>\n");
	if (sp->enable[SP_INPUT_VIDEO])
		web_html(b, "<label>Video file <input type=\"file\" name=\"video_file\" "
		            "accept=\"video/*\"></label>\n");
	if (sp->enable[SP_INPUT_FILE])
		web_html(b, "<label>File <input type=\"file\" name=\"other_file\"></label>\n");
}

static void space_loaded(sp_store_status st, const sp_space_row *sp, const sp_request_row *rq,
                         unsigned n, void *ud)
{
	web_ctx *w = ud;
	base_buf b = BASE_BUF_INIT;

	if (!web__space_answer_ok(w, st, "There is no space at this address."))
		return;
	const char *id = sp->id;
	int ws = strcmp(sp->card_type, "websockets") == 0;
	unsigned apps = sp_space_apps(w->site->sp, id);
	const char *cover = sp->cover;

	web_html(&b, "<section class=\"space\" id=\"space\" data-space-id=\"%s\">\n", id);
	if (strncmp(cover, "https://", 8) == 0 || (cover[0] == '/' && cover[1] != '/'))
		web_html(&b, "<img class=\"cover\" src=\"%s\" alt=\"\">\n", cover);
	web_html(&b, "<h1>%s</h1>\n<p class=\"desc\">%s</p>\n", sp->name, sp->description);
	if (!ws) {
		web_html(&b, "<p class=\"muted\">This space does not take requests here.</p>\n"
		             "</section>\n");
		web__page(w, 200, sp->name, &b, NULL);
		base_buf_free(&b);
		return;
	}
	web_html(&b, "<p class=\"status\">App status: ");
	web__live_badge(&b, w, id);
	web_html(&b, "</p>\n");

	web_html(&b, "<p class=\"muted\">Requests time out after %u seconds", sp->timeout_s);
	if (sp->rate_limit_s)
		web_html(&b, "; one request every %u seconds", sp->rate_limit_s);
	web_html(&b, ".</p>\n");

	if (!w->sess.ok) {
		web_html(&b,
		         "<p class=\"panel\"><a href=\"/login?next=/ai_project/%U\">Log in</a> "
		         "to submit requests.</p>\n",
		         id);
	} else {
		web_html(&b,
		         "<form id=\"submit-form\" class=\"stack panel\" method=\"post\" "
		         "action=\"/websockets/submit/%s\" enctype=\"multipart/form-data\">\n",
		         id);
		web__csrf_input(&b, w);
		web_html(&b, "<fieldset id=\"submit-fields\"%R>\n", apps ? "" : " disabled");
		input_fields(&b, sp);
		web_html(&b,
		         "<button type=\"submit\">Submit</button>\n</fieldset>\n"
		         "<p id=\"form-note\" class=\"muted\">%s</p>\n"
		         "<p id=\"form-error\" class=\"error\" role=\"alert\" hidden></p>\n"
		         "</form>\n",
		         apps ? ""
		              : "The app of this space is offline: the form opens when it is "
		                "back.");
	}

	if (w->sess.is_admin)
		web__connect_command(&b, w, sp->name, sp->open, sp->has_token, sp->token);
	web_html(&b, "<h2>Your requests</h2>\n<ul id=\"requests\" class=\"reqs\">\n");
	for (unsigned i = 0; i < n; i++)
		web__request_card(&b, rq[i].id, rq[i].status, rq[i].progress, rq[i].prompt,
		                  rq[i].result_json, rq[i].created_at);
	web_html(&b, "</ul>\n</section>\n"
	             "<script src=\"/socket.io/socket.io.js\"></script>\n"
	             "<script src=\"/static/spaces.js\"></script>\n");
	web__page(w, 200, sp->name, &b, NULL);
	base_buf_free(&b);
}

static void space_step(web_ctx *w)
{
	if (!w->id[0]) {
		web__message_page(w, 404, "Space not found", "There is no space at this address.");
		return;
	}
	if (sp_store_space_page(w->site->sp, w->id, w->sess.ok ? w->sess.user_id : NULL,
	                        space_loaded, w))
		web__busy(w);
}

static void space_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), "/ai_project/", 0, space_step);
}

const web_route web__page_routes[] = {
    {HTTP_M_GET, "/", 0, index_route},
    {HTTP_M_GET, "/ai_project/", 1, space_route},
    {0, NULL, 0, NULL},
};
