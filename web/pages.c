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

static void spaces_listed(const db_result *res, void *ud)
{
	web_ctx *w = ud;
	base_buf b = BASE_BUF_INIT;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "listing spaces", res);
		return;
	}
	int n = db_ntuples(res);
	web_html(&b, "<section>\n<h1>Spaces</h1>\n");
	if (n == 0) {
		web_html(&b, "<p class=\"muted\">No spaces yet.%R</p>\n",
		         w->sess.is_admin ? " <a href=\"/admin\">Create one</a>." : "");
	}
	web_html(&b, "<ul class=\"cards\">\n");
	for (int i = 0; i < n; i++) {
		/* id, name, description, card_type */
		const char *id = db_value(res, i, 0);

		web_html(&b,
		         "<li class=\"card\">\n<h2><a href=\"/ai_project/%s\">%s</a></h2>\n"
		         "<p class=\"desc\">%s</p>\n<p>",
		         id, db_value(res, i, 1), db_value(res, i, 2));
		if (strcmp(db_value(res, i, 3), "websockets") == 0)
			web__live_badge(&b, w, id);
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
	static const char sql[] = "SELECT id, name, description, card_type FROM spaces "
	                          "ORDER BY lower(name) LIMIT 1000";

	if (db_query_flags(w->site->db, DB_RETRY, sql, 0, NULL, spaces_listed, w))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void index_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), NULL, 0, index_step);
}

/* ---- /ai_project/<id> ------------------------------------------------------------ */

static void input_fields(base_buf *b, const db_result *res)
{
	/* columns 5..8: enable_prompt, enable_audio, enable_video, enable_file_upload */
	if (strcmp(db_value(res, 0, 5), "t") == 0)
		web_html(b,
		         "<label>Prompt <textarea name=\"prompt\" rows=\"4\" maxlength=\"100000\">"
		         "</textarea></label>\n");
	if (strcmp(db_value(res, 0, 6), "t") == 0)
		web_html(
		    b, "<label>Audio URL <input type=\"url\" name=\"audio_url\" "
		       "placeholder=\"https://example.com/sound.wav\" maxlength=\"2048\"></label>\n"
		       "<label>or an audio file <input type=\"file\" name=\"audio_file\" "
		       "accept=\"audio/*\"></label>\n");
	if (strcmp(db_value(res, 0, 7), "t") == 0)
		web_html(b, "<label>Video file <input type=\"file\" name=\"video_file\" "
		            "accept=\"video/*\"></label>\n");
	if (strcmp(db_value(res, 0, 8), "t") == 0)
		web_html(b, "<label>File <input type=\"file\" name=\"other_file\"></label>\n");
}

static void space_loaded(const db_result *res, void *ud)
{
	web_ctx *w = ud;
	base_buf b = BASE_BUF_INIT;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "loading a space", res);
		return;
	}
	const db_result *sp = db_tx_result(res, 0);
	if (db_ntuples(sp) != 1) {
		web__message_page(w, 404, "Space not found", "There is no space at this address.");
		return;
	}
	/* id, name, description, cover, card_type, enable_prompt, enable_audio,
	 * enable_video, enable_file_upload, rate_limit_seconds, timeout_seconds,
	 * app_access, has a token, app_token (shown to admins only) */
	const char *id = db_value(sp, 0, 0);
	int ws = strcmp(db_value(sp, 0, 4), "websockets") == 0;
	unsigned apps = sp_space_apps(w->site->sp, id);
	const char *cover = db_value(sp, 0, 3);

	web_html(&b, "<section class=\"space\" id=\"space\" data-space-id=\"%s\">\n", id);
	if (strncmp(cover, "https://", 8) == 0 || (cover[0] == '/' && cover[1] != '/'))
		web_html(&b, "<img class=\"cover\" src=\"%s\" alt=\"\">\n", cover);
	web_html(&b, "<h1>%s</h1>\n<p class=\"desc\">%s</p>\n", db_value(sp, 0, 1),
	         db_value(sp, 0, 2));
	if (!ws) {
		web_html(&b, "<p class=\"muted\">This space does not take requests here.</p>\n"
		             "</section>\n");
		web__page(w, 200, db_value(sp, 0, 1), &b, NULL);
		base_buf_free(&b);
		return;
	}
	web_html(&b, "<p class=\"status\">App status: ");
	web__live_badge(&b, w, id);
	web_html(&b, "</p>\n");

	unsigned rate = (unsigned)strtoul(db_value(sp, 0, 9), NULL, 10);
	unsigned timeout = (unsigned)strtoul(db_value(sp, 0, 10), NULL, 10);
	web_html(&b, "<p class=\"muted\">Requests time out after %u seconds", timeout);
	if (rate)
		web_html(&b, "; one request every %u seconds", rate);
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
		web__connect_command(&b, w, db_value(sp, 0, 1),
		                     strcmp(db_value(sp, 0, 11), "open") == 0,
		                     strcmp(db_value(sp, 0, 12), "t") == 0,
		                     db_isnull(sp, 0, 13) ? NULL : db_value(sp, 0, 13));
	web_html(&b, "<h2>Your requests</h2>\n<ul id=\"requests\" class=\"reqs\">\n");
	if (db_tx_count(res) > 1) {
		const db_result *rq = db_tx_result(res, 1);

		for (int i = 0; i < db_ntuples(rq); i++) {
			/* id, status, progress, prompt, result, created_at */
			web__request_card(&b, db_value(rq, i, 0), db_value(rq, i, 1),
			                  atoi(db_value(rq, i, 2)), db_value(rq, i, 3),
			                  db_isnull(rq, i, 4) ? NULL : db_value(rq, i, 4),
			                  db_value(rq, i, 5));
		}
	}
	web_html(&b, "</ul>\n</section>\n"
	             "<script src=\"/socket.io/socket.io.js\"></script>\n"
	             "<script src=\"/static/spaces.js\"></script>\n");
	web__page(w, 200, db_value(sp, 0, 1), &b, NULL);
	base_buf_free(&b);
}

static void space_step(web_ctx *w)
{
	static const char space_sql[] =
	    "SELECT id, name, description, cover, card_type, enable_prompt, enable_audio, "
	    "enable_video, enable_file_upload, rate_limit_seconds, timeout_seconds, "
	    "app_access, app_token_hash IS NOT NULL, app_token "
	    "FROM spaces WHERE id = $1";
	static const char reqs_sql[] =
	    "SELECT id, status, progress, payload->>'prompt', result::text, "
	    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"') "
	    "FROM requests WHERE space_id = $1 AND user_id = $2::bigint "
	    "ORDER BY created_at DESC LIMIT 10";
	const char *p1[1] = {w->id};
	const char *p2[2] = {w->id, w->sess.user_id};
	db_stmt st[2] = {{space_sql, 1, p1}, {reqs_sql, 2, p2}};

	if (!w->id[0]) {
		web__message_page(w, 404, "Space not found", "There is no space at this address.");
		return;
	}
	if (db_query_tx(w->site->db, st, w->sess.ok ? 2 : 1, space_loaded, w))
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

static void space_route(http_request *req, void *ud)
{
	web__start(ud, req, sizeof(web_ctx), "/ai_project/", 0, space_step);
}

void web__page_routes(web_site *site)
{
	http_route(site->http, HTTP_M_GET, "/", 0, index_route, site);
	http_route(site->http, HTTP_M_GET, "/ai_project/", 1, space_route, site);
}
