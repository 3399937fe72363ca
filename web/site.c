/*
 * site.c: the site object, the life of a request's context between its
 * asynchronous steps, the page layout and the common answers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <sys/stat.h>

#include "web_internal.h"

#define WEB_CLEANUP_INTERVAL_MS (10 * 60 * 1000)

/*
 * Scripts and styles come only from this site (no inline script at all),
 * which turns an escaping mistake into a harmless one. Socket.IO connects
 * back to the same origin; 'self' covers ws: and wss: to it.
 */
#define WEB_PAGE_HEADERS                                                                     \
	"Cache-Control: no-store\r\n"                                                        \
	"X-Frame-Options: DENY\r\n"                                                          \
	"Referrer-Policy: same-origin\r\n"                                                   \
	"Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data: https:; media-src 'self' https:; connect-src 'self'; "         \
	"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n"

void web_options_default(web_options *o)
{
	memset(o, 0, sizeof(*o));
	o->upload_dir = "uploads";
	o->max_file_bytes = 25u << 20;
	o->upload_retention_s = 7 * 24 * 3600;
	o->login_max_failures = 10;
	o->login_window_s = 300;
	o->login_account_max_failures = 10;
	o->login_account_pace_s = 10;
	o->register_max = 10;
	o->register_window_s = 3600;
	o->password_common_check = 1;
	o->session_ttl_s = 7 * 24 * 3600;
	o->session_idle_s = 24 * 3600;
	o->upload_quota_per_day = (uint64_t)1 << 30;
	o->upload_disk_budget = (uint64_t)20 << 30;
}

size_t web_max_body_bytes(const web_options *o)
{
	return 3 * o->max_file_bytes + (1u << 20);
}

/*
 * Request bodies, by route class, decided from the path before the body is
 * read (a larger Content-Length is answered 413 at once): login, register,
 * logout and every route without a class of its own take a small form; the
 * admin forms a space's description (20000 bytes, percent-encoded); a
 * submission its files. The Engine.IO paths have their own (maxPayload).
 */
static int body_limits(web_site *site)
{
	int rc = http_body_limit(site->http, "/", 1, WEB_FORM_MAX_BODY);

	if (!rc)
		rc = http_body_limit(site->http, "/admin/", 1, WEB_ADMIN_FORM_MAX_BODY);
	if (!rc)
		rc = http_body_limit(site->http, "/websockets/submit/", 1,
		                     web_max_body_bytes(&site->opts));
	return rc;
}

/* ---- contexts ------------------------------------------------------------- */

static void ctx_abort(http_request *req, void *ud)
{
	web_ctx *w = ud;

	(void)req;
	w->req = NULL;
}

web_ctx *web__ctx_new(web_site *site, http_request *req, size_t size)
{
	web_ctx *w = calloc(1, size);

	if (!w) {
		http_respond(req, 500, "text/plain; charset=utf-8", NULL, "Out of memory\n", 14);
		return NULL;
	}
	w->site = site;
	web__site_ref(site);
	w->req = req;
	req->on_abort = ctx_abort;
	req->abort_ud = w;
	return w;
}

void web__ctx_free(web_ctx *w)
{
	if (!w)
		return;
	if (w->cleanup)
		w->cleanup(w);
	if (w->req) {
		w->req->on_abort = NULL;
		w->req->abort_ud = NULL;
	}
	sodium_memzero(&w->sess, sizeof(w->sess));
	web_site *site = w->site;
	free(w);
	web__site_unref(site);
}

int web__gone(web_ctx *w)
{
	if (w->req)
		return 0;
	web__ctx_free(w);
	return 1;
}

static int is_id_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '_';
}

void web__start(web_site *site, http_request *req, size_t size, const char *id_prefix, int json,
                web_step next)
{
	web_ctx *w = web__ctx_new(site, req, size);

	if (!w)
		return;
	w->json = json;
	if (id_prefix) {
		size_t pl = strlen(id_prefix);
		base_slice rest = {req->path.base + pl, req->path.len - pl};

		if (rest.len && rest.base[rest.len - 1] == '/')
			rest.len--; /* "/edit/7/" as scripts may build it */
		size_t i = 0;
		while (i < rest.len && is_id_char(rest.base[i]))
			i++;
		if (i == rest.len && i > 0 && i < sizeof(w->id)) {
			memcpy(w->id, rest.base, i);
			w->id[i] = 0;
			if (!web_id_ok(w->id))
				w->id[0] = 0;
		}
	}
	if (req->method == HTTP_M_POST) {
		const base_slice *ct = http_header_get(req, "Content-Type");

		w->form_rc = web_form_parse(req->arena, ct, req->body, &w->form);
	}
	web__with_session(w, next);
}

/* ---- answers -------------------------------------------------------------- */

/* The request, detached from w: it is answered before w (which may hold the answer's bytes) is freed. */
static http_request *take_req(web_ctx *w)
{
	http_request *req = w->req;

	w->req = NULL;
	req->on_abort = NULL;
	req->abort_ud = NULL;
	return req;
}

void web__respond(web_ctx *w, int status, const char *content_type, const char *headers,
                  const void *body, size_t len)
{
	http_respond(take_req(w), status, content_type, headers, body, len);
	web__ctx_free(w);
}

void web__respond_file(web_ctx *w, int status, const char *content_type, const char *headers,
                       uv_file fd, uint64_t offset, uint64_t len)
{
	http_respond_file(take_req(w), status, content_type, headers, fd, offset, len);
	web__ctx_free(w);
}

void web__redirect(web_ctx *w, const char *location, const char *extra_headers)
{
	base_buf h = BASE_BUF_INIT;

	base_buf_printf(&h, "Location: %s\r\nCache-Control: no-store\r\n%s", location,
	                extra_headers ? extra_headers : "");
	web_buf_cstr(&h);
	web__respond(w, 302, "text/plain; charset=utf-8", h.data, NULL, 0);
	base_buf_free(&h);
}

void web__json(web_ctx *w, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;

	json_decref(body);
	if (!text) {
		static const char oom[] = "{\"success\":false,\"error\":\"Out of memory\"}";
		web__respond(w, 500, "application/json", "Cache-Control: no-store\r\n", oom,
		             sizeof(oom) - 1);
		return;
	}
	web__respond(w, status, "application/json", "Cache-Control: no-store\r\n", text,
	             strlen(text));
	free(text);
}

void web__json_error(web_ctx *w, int status, const char *error)
{
	web__json(w, status, json_pack("{s:b,s:s}", "success", 0, "error", error));
}

static void layout_head(base_buf *b, const web_ctx *w, const char *title)
{
	web_html(b,
	         "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	         "<title>%s · Spaces</title>\n"
	         "<link rel=\"stylesheet\" href=\"/static/spaces.css\">\n"
	         "</head>\n<body>\n<header class=\"top\">\n"
	         "<a class=\"brand\" href=\"/\">Spaces</a>\n<nav>\n",
	         title);
	if (w->sess.ok) {
		web_html(b, "<span class=\"who\">%s</span>\n", w->sess.username);
		web_html(b, "<a href=\"/account\">Account</a>\n");
		if (w->sess.is_admin)
			web_html(b, "<a href=\"/admin\">Admin</a>\n");
		/* Logging out changes state: a POST with the session's token. */
		web_html(b, "<form method=\"post\" action=\"/logout\" class=\"inline\">\n");
		web__csrf_input(b, w);
		web_html(b, "<button type=\"submit\" class=\"link\">Log out</button>\n</form>\n");
	} else {
		web_html(b, "<a href=\"/login\">Log in</a>\n<a href=\"/register\">Register</a>\n");
	}
	web_html(b, "</nav>\n</header>\n<main>\n");
}

void web__page(web_ctx *w, int status, const char *title, const base_buf *body,
               const char *extra_headers)
{
	base_buf b = BASE_BUF_INIT, h = BASE_BUF_INIT;

	layout_head(&b, w, title);
	base_buf_append(&b, body->data ? body->data : "", body->len);
	base_buf_append_str(&b, "</main>\n</body>\n</html>\n");
	base_buf_printf(&h, "%s%s", WEB_PAGE_HEADERS, extra_headers ? extra_headers : "");
	web_buf_cstr(&h);
	web__respond(w, status, "text/html; charset=utf-8", h.data, b.data, b.len);
	base_buf_free(&b);
	base_buf_free(&h);
}

void web__message_page(web_ctx *w, int status, const char *title, const char *message)
{
	base_buf b = BASE_BUF_INIT;

	web_html(&b,
	         "<section class=\"panel\">\n<h1>%s</h1>\n<p>%s</p>\n"
	         "<p><a href=\"/\">Back to the spaces</a></p>\n</section>\n",
	         title, message);
	web__page(w, status, title, &b, NULL);
	base_buf_free(&b);
}

void web__busy(web_ctx *w)
{
	if (w->json)
		web__json_error(w, 503, "Server busy, please retry");
	else
		web__message_page(w, 503, "Server busy", "Please try again in a moment.");
}

/* 503 when the database was busy, else 500. */
static void server_error(web_ctx *w, int busy)
{
	if (w->json) {
		web__json_error(w, busy ? 503 : 500, "Server error, please retry");
		return;
	}
	web__message_page(w, busy ? 503 : 500, "Server error",
	                  "Something went wrong on our side. Please try again in a moment.");
}

void web__server_error(web_ctx *w, const char *what, const db_result *res)
{
	BASE_LOGE("web", "%s: %s", what, res ? db_error(res) : "failed");
	server_error(w, res && (db_status(res) == DB_ETIMEDOUT || db_status(res) == DB_EQUEUEFULL));
}

void web__store_error(web_ctx *w, sp_store_status st)
{
	/* The store logged the database's words. */
	server_error(w, st == SP_STORE_BUSY);
}

int web__space_answer_ok(web_ctx *w, sp_store_status st, const char *not_found)
{
	if (web__gone(w))
		return 0;
	if (st == SP_STORE_NOTFOUND)
		web__message_page(w, 404, "Space not found", not_found);
	else if (st)
		web__store_error(w, st);
	return st == SP_STORE_OK;
}

/* ---- guards --------------------------------------------------------------- */

int web__csrf_ok(web_ctx *w, int json)
{
	const base_slice *origin = http_header_get(w->req, "Origin");
	const base_slice *site = http_header_get(w->req, "Sec-Fetch-Site");
	const base_slice *host = http_header_get(w->req, "Host");
	const char *why = NULL;

	if (!web_csrf_origin_ok(origin, site, host, w->site->public_url)) {
		why = "Cross-site request refused";
	} else if (w->sess.ok && web_csrf_from_browser(origin, site)) {
		const char *given = web_form_get(&w->form, "csrf_token");
		const base_slice *hdr = http_header_get(w->req, "X-CSRF-Token");
		char buf[64];

		if (!given && hdr && hdr->len < sizeof(buf)) {
			memcpy(buf, hdr->base, hdr->len);
			buf[hdr->len] = 0;
			given = buf;
		}
		if (!web_csrf_token_ok(w->sess.csrf, given))
			why = "This form has expired. Please reload the page and try again";
	}
	if (!why)
		return 1;
	BASE_LOGW("web", "refused %.*s %.*s from %s: %s", (int)w->req->method_name.len,
	          w->req->method_name.base, (int)w->req->path.len, w->req->path.base,
	          w->req->remote_addr, why);
	if (json)
		web__json_error(w, 403, why);
	else
		web__message_page(w, 403, "Forbidden", why);
	return 0;
}

int web__csrf_input(base_buf *out, const web_ctx *w)
{
	if (!w->sess.ok)
		return 0;
	return web_html(out, "<input type=\"hidden\" name=\"csrf_token\" value=\"%s\">\n",
	                w->sess.csrf);
}

int web__require_admin(web_ctx *w)
{
	if (w->sess.ok && w->sess.is_admin)
		return 1;
	if (w->sess.ok) {
		/* Signed in, but not an admin: the login form would not help. */
		base_buf b = BASE_BUF_INIT;

		web_html(&b,
		         "<section class=\"panel\">\n<h1>Admins only</h1>\n<p>You are signed in "
		         "as <strong>%s</strong>, who is not an administrator, so this page "
		         "is not open to you (403).</p>\n<p><a href=\"/\">Back to the spaces</a>"
		         "</p>\n</section>\n",
		         w->sess.username);
		web__page(w, 403, "Forbidden", &b, NULL);
		base_buf_free(&b);
		return 0;
	}
	web__redirect(w, "/login", NULL);
	return 0;
}

base_slice web__host(const web_ctx *w)
{
	const base_slice *h = http_header_get(w->req, "Host");

	if (h && h->len && h->len < 256)
		return *h;
	return BASE_SLICE_LIT("localhost");
}

void web__base_url(base_buf *out, const web_ctx *w)
{
	const char *pub = w->site->public_url;

	if (pub && *pub) {
		size_t n = strlen(pub);

		while (n && pub[n - 1] == '/')
			n--;
		base_buf_append(out, pub, n);
		return;
	}
	base_slice h = web__host(w);
	base_buf_printf(out, "http://%.*s", (int)h.len, h.base);
}

/* ---- the site ------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void site_destroy(web_site *site)
{
	web__static_free(site);
	web_limiter_free(site->login_limiter);
	web_limiter_free(site->account_limiter);
	web_limiter_free(site->register_limiter);
	web__hash_gate_free(site->hash_gate);
	free(site->client_dist_dir);
	free(site->static_dir);
	free(site->upload_dir);
	free(site->public_url);
	free(site);
}

/* The route tables of the parts of the site. */
static const web_route *const route_tables[] = {
    web__session_routes, web__auth_routes,        web__page_routes,
    web__admin_routes,   web__admin_panel_routes, web__admin_users_routes,
    web__account_routes, web__submit_routes,      web__upload_routes,
};

static int add_routes(web_site *site)
{
	for (size_t t = 0; t < BASE_ARRAY_SIZE(route_tables); t++) {
		for (const web_route *r = route_tables[t]; r->path; r++) {
			if (http_route(site->http, r->method, r->path, r->prefix, r->fn, site))
				return BASE_ENOMEM;
		}
	}
	return 0;
}

static void cleanup_tick(uv_timer_t *t)
{
	web__cleanup_tick(t->data);
}

web_site *web_site_new(http_server *http, sp_app *sp, db_pool *db, const web_options *o)
{
	web_options defaults;
	web_site *site = calloc(1, sizeof(*site));

	if (!o) {
		web_options_default(&defaults);
		o = &defaults;
	}
	if (!site)
		return NULL;
	site->http = http;
	site->loop = http_server_loop(http);
	site->sp = sp;
	site->db = db;
	site->opts = *o;
	if (!o->client_dist_dir) {
		BASE_LOGE("web", "no directory for the socket.io-client bundle (client_dist_dir)");
		free(site);
		return NULL;
	}
	site->client_dist_dir = dup_or_null(o->client_dist_dir);
	site->static_dir = dup_or_null(o->static_dir);
	site->upload_dir = dup_or_null(o->upload_dir ? o->upload_dir : "uploads");
	site->public_url = dup_or_null(o->public_url);
	site->opts.client_dist_dir = site->client_dist_dir;
	site->opts.static_dir = site->static_dir;
	site->opts.upload_dir = site->upload_dir;
	site->opts.public_url = site->public_url;
	site->login_limiter = web_limiter_new(o->login_max_failures, o->login_window_s);
	site->account_limiter = web_limiter_new(o->login_account_max_failures, o->login_window_s);
	web_limiter_set_pace(site->account_limiter, o->login_account_pace_s);
	site->register_limiter = web_limiter_new(o->register_max, o->register_window_s);
	site->hash_gate = web__hash_gate_new();
	if (!site->client_dist_dir || !site->upload_dir || !site->login_limiter ||
	    !site->account_limiter || !site->register_limiter || !site->hash_gate ||
	    (o->static_dir && !site->static_dir) || (o->public_url && !site->public_url))
		goto fail;
	if (strlen(site->upload_dir) > 700) {
		BASE_LOGE("web", "the upload directory's path is too long (700 bytes at most)");
		goto fail;
	}
	if (base_mkdirs(site->upload_dir, 0750)) {
		BASE_LOGE("web", "cannot create the upload directory %s: %s", site->upload_dir,
		          strerror(errno));
		goto fail;
	}
	if (body_limits(site))
		goto fail;
	if (web__static_init(site))
		goto fail;
	if (add_routes(site))
		goto fail;

	sp_browser_auth_set(sp, web__browser_auth, site);
	site->refs = 2; /* the owner and the timer */
	uv_timer_init(site->loop, &site->cleanup);
	site->cleanup.data = site;
	uv_timer_start(&site->cleanup, cleanup_tick, 5000, WEB_CLEANUP_INTERVAL_MS);
	uv_unref((uv_handle_t *)&site->cleanup);
	return site;
fail:
	/* Routes to the static files may be left in http: the caller gives up. */
	site_destroy(site);
	return NULL;
}

void web__site_ref(web_site *site)
{
	site->refs++;
}

void web__site_unref(web_site *site)
{
	if (--site->refs == 0)
		site_destroy(site);
}

static void timer_closed(uv_handle_t *h)
{
	web__site_unref(h->data);
}

void web_site_close(web_site *site)
{
	if (!site || site->closed)
		return;
	site->closed = 1;
	sp_browser_auth_set(site->sp, NULL, NULL);
	uv_timer_stop(&site->cleanup);
	uv_close((uv_handle_t *)&site->cleanup, timer_closed);
}

void web_site_free(web_site *site)
{
	if (!site)
		return;
	web_site_close(site);
	web__site_unref(site);
}
