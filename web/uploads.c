/*
 * uploads.c: files users submit with a request.
 *
 * Each file gets a directory named by a random token (24 bytes, base64url)
 * under the upload directory, and a row in the uploads table. The app that
 * handles the request downloads it from /uploads/<token>/<name>: the token is
 * the credential, since apps have no session. Files are written and read on
 * the libuv threadpool (uv_fs_*), never on the loop. A cleanup every few
 * minutes removes the files of requests that ended more than the retention
 * period ago, and of submissions that never became requests.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include "web_internal.h"

#define ORPHAN_GRACE_S (24 * 3600) /* uploads never attached to a request */

/* ---- removing files in the background ------------------------------------- */

typedef struct {
	uv_fs_t fs;
	char path[1024];
	char dir[1024];
} remove_job;

static void removed_dir(uv_fs_t *fs)
{
	remove_job *j = fs->data;

	uv_fs_req_cleanup(fs);
	free(j);
}

static void removed_file(uv_fs_t *fs)
{
	remove_job *j = fs->data;
	uv_loop_t *loop = fs->loop;

	if (fs->result < 0 && fs->result != UV_ENOENT)
		BASE_LOGW("web", "cannot remove %s: %s", j->path, uv_strerror((int)fs->result));
	uv_fs_req_cleanup(fs);
	if (!j->dir[0] || uv_fs_rmdir(loop, &j->fs, j->dir, removed_dir))
		free(j);
}

/* Removes path and then its directory (the token's), if it is empty. */
static void remove_upload(uv_loop_t *loop, const char *path)
{
	remove_job *j = calloc(1, sizeof(*j));

	if (!j)
		return;
	snprintf(j->path, sizeof(j->path), "%s", path);
	snprintf(j->dir, sizeof(j->dir), "%s", path);
	char *slash = strrchr(j->dir, '/');
	if (slash)
		*slash = 0;
	else
		j->dir[0] = 0;
	j->fs.data = j;
	if (uv_fs_unlink(loop, &j->fs, j->path, removed_file))
		free(j);
}

/* The tokens of the uploads that have one. */
static unsigned tokens_of(const web_upload *ups, size_t n, const char *tokens[WEB_UPLOADS_MAX])
{
	unsigned k = 0;

	for (size_t i = 0; i < n && k < WEB_UPLOADS_MAX; i++) {
		if (ups[i].token[0])
			tokens[k++] = ups[i].token;
	}
	return k;
}

void web__uploads_discard(web_site *site, const web_upload *ups, size_t n)
{
	const char *tokens[WEB_UPLOADS_MAX];
	unsigned k = tokens_of(ups, n, tokens);

	/* Files never recorded are removed directly; recorded ones with their rows. */
	for (size_t i = 0; i < n; i++) {
		if (ups[i].written)
			remove_upload(site->loop, ups[i].path);
	}
	if (k)
		sp_store_uploads_forget(site->sp, tokens, k, NULL, NULL);
}

void web__uploads_attach(web_site *site, const web_upload *ups, size_t n, const char *request_id)
{
	const char *tokens[WEB_UPLOADS_MAX];
	unsigned k = tokens_of(ups, n, tokens);

	if (k)
		sp_store_uploads_attach(site->sp, tokens, k, request_id, NULL, NULL);
}

/* ---- storing ----------------------------------------------------------------- */

typedef struct {
	web_ctx *w;
	web_upload *ups;
	size_t n, cur;
	void (*done)(web_ctx *w, int rc);
	uv_loop_t *loop;
	uv_fs_t fs;
	uv_file fd;
	char *copy; /* the bytes of the file being written */
	size_t off;
	char dir[768]; /* upload_dir (at most 700 bytes: web_site_new) and a token */
} store_job;

static void store_next(store_job *j);

/* Ends a store: on failure or abandon, removes what was written. */
static void store_end(store_job *j, int rc)
{
	web_ctx *w = j->w;
	void (*done)(web_ctx *, int) = j->done;

	free(j->copy);
	if (rc || !w->req) {
		for (size_t i = 0; i < j->n; i++) {
			if (j->ups[i].written) {
				remove_upload(w->site->loop, j->ups[i].path);
				j->ups[i].written = 0;
			}
		}
	}
	free(j);
	if (web__gone(w))
		return;
	done(w, rc);
}

static void recorded(sp_store_status st, void *ud)
{
	store_job *j = ud;

	store_end(j, st ? -1 : 0);
}

static void record(store_job *j)
{
	sp_upload_row rows[WEB_UPLOADS_MAX];
	const char *user = j->w->sess.user_id[0] ? j->w->sess.user_id : NULL;

	for (size_t i = 0; i < j->n; i++) {
		const web_upload *u = &j->ups[i];

		rows[i] =
		    (sp_upload_row){u->token, u->filename, u->content_type, u->path, u->data.len};
	}
	if (sp_store_uploads_add(j->w->site->sp, rows, (unsigned)j->n, user, recorded, j))
		store_end(j, -1);
}

static void closed(uv_fs_t *fs)
{
	store_job *j = fs->data;
	int rc = (int)fs->result;

	uv_fs_req_cleanup(fs);
	if (rc < 0 || !j->w->req) {
		store_end(j, rc < 0 ? rc : -1);
		return;
	}
	j->cur++;
	store_next(j);
}

/* A write failed or the client left: close the file (quickly, a local
 * descriptor) and end the store, which removes what was written. */
static void write_failed(store_job *j, int err)
{
	uv_fs_t req;

	if (err != UV_ECANCELED)
		BASE_LOGE("web", "writing %s failed: %s", j->ups[j->cur].path, uv_strerror(err));
	uv_fs_close(j->loop, &req, j->fd, NULL);
	uv_fs_req_cleanup(&req);
	store_end(j, -1);
}

static void wrote(uv_fs_t *fs);

/* Writes the rest of the current file, or closes it when all is written. */
static void write_more(store_job *j)
{
	web_upload *u = &j->ups[j->cur];

	if (j->off < u->data.len) {
		uv_buf_t buf = uv_buf_init(j->copy + j->off, (unsigned)(u->data.len - j->off));

		if (uv_fs_write(j->loop, &j->fs, j->fd, &buf, 1, -1, wrote) == 0)
			return;
		write_failed(j, UV_EIO);
		return;
	}
	free(j->copy);
	j->copy = NULL;
	if (uv_fs_close(j->loop, &j->fs, j->fd, closed))
		store_end(j, -1);
}

static void wrote(uv_fs_t *fs)
{
	store_job *j = fs->data;
	ssize_t n = fs->result;

	uv_fs_req_cleanup(fs);
	if (n <= 0 || !j->w->req) {
		write_failed(j, n < 0 ? (int)n : UV_EIO);
		return;
	}
	j->off += (size_t)n;
	write_more(j);
}

static void opened(uv_fs_t *fs)
{
	store_job *j = fs->data;
	web_upload *u = &j->ups[j->cur];
	int rc = (int)fs->result;

	uv_fs_req_cleanup(fs);
	if (rc < 0) {
		BASE_LOGE("web", "cannot create %s: %s", u->path, uv_strerror(rc));
		store_end(j, rc);
		return;
	}
	j->fd = rc;
	u->written = 1;
	if (!j->w->req) {
		write_failed(j, UV_ECANCELED);
		return;
	}
	/* The request's body may be freed if the client goes away: write a copy. */
	j->copy = malloc(u->data.len ? u->data.len : 1);
	if (!j->copy) {
		write_failed(j, UV_ENOMEM);
		return;
	}
	if (u->data.len)
		memcpy(j->copy, u->data.base, u->data.len);
	j->off = 0;
	write_more(j);
}

static void made_dir(uv_fs_t *fs)
{
	store_job *j = fs->data;
	web_upload *u = &j->ups[j->cur];
	int rc = (int)fs->result;

	uv_fs_req_cleanup(fs);
	if (rc < 0) {
		BASE_LOGE("web", "cannot create %s: %s", j->dir, uv_strerror(rc));
		store_end(j, rc);
		return;
	}
	if (!j->w->req) {
		store_end(j, -1);
		return;
	}
	rc = uv_fs_open(j->loop, &j->fs, u->path, O_WRONLY | O_CREAT | O_EXCL, 0640, opened);
	if (rc)
		store_end(j, rc);
}

static void store_next(store_job *j)
{
	web_site *site = j->w->site;

	if (j->cur == j->n) {
		record(j);
		return;
	}
	web_upload *u = &j->ups[j->cur];
	base_random_id(u->token, 24);
	web_safe_filename(u->filename, u->name, sizeof(u->name));
	snprintf(j->dir, sizeof(j->dir), "%s/%s", site->upload_dir, u->token);
	snprintf(u->path, sizeof(u->path), "%s/%s", j->dir, u->name);
	j->fs.data = j;
	if (uv_fs_mkdir(j->loop, &j->fs, j->dir, 0750, made_dir))
		store_end(j, -1);
}

void web__uploads_store(web_ctx *w, web_upload *ups, size_t n, void (*done)(web_ctx *w, int rc))
{
	store_job *j = calloc(1, sizeof(*j));

	if (!j || n > WEB_UPLOADS_MAX) {
		free(j);
		done(w, BASE_ENOMEM);
		return;
	}
	j->w = w;
	j->loop = w->site->loop;
	j->ups = ups;
	j->n = n;
	j->done = done;
	store_next(j);
}

/* ---- serving ------------------------------------------------------------------- */

typedef struct {
	web_ctx base;
	uv_fs_t fs;
	uint64_t size;
	/* What is sent once the file is open: status, range and header lines. */
	int status;
	uint64_t start, len;
	const char *ctype;
	base_buf headers;
	char path[1024];
	char content_type[128];
	char name[128];
	char token[64];
} serve_ctx;

static void serve_cleanup(web_ctx *w)
{
	base_buf_free(&((serve_ctx *)w)->headers);
}

/*
 * Types a browser may show inline without running anything; the others
 * are downloads. The stored type is read again strictly: rows written
 * before uploads were checked may hold anything.
 */
static const char *safe_type(serve_ctx *s, int *inline_ok)
{
	char norm[128];

	if (web_media_type_parse(s->content_type, norm, sizeof(norm)) == 0 &&
	    web_media_type_inline(norm)) {
		snprintf(s->content_type, sizeof(s->content_type), "%s", norm);
		*inline_ok = 1;
		return s->content_type;
	}
	*inline_ok = 0;
	return "application/octet-stream";
}

/* 1 when an If-None-Match or If-Range value names etag. */
static int etag_matches(const base_slice *v, const char *etag)
{
	size_t n = strlen(etag);

	return v != NULL && ((v->len == n && memcmp(v->base, etag, n) == 0) ||
	                     (v->len == 1 && v->base[0] == '*'));
}

static void file_opened(uv_fs_t *fs)
{
	serve_ctx *s = fs->data;
	web_ctx *w = &s->base;
	int fd = (int)fs->result;

	uv_fs_req_cleanup(fs);
	if (web__gone(w)) {
		if (fd >= 0) {
			uv_fs_t req;

			uv_fs_close(NULL, &req, fd, NULL);
			uv_fs_req_cleanup(&req);
		}
		return;
	}
	if (fd < 0) {
		web__respond(w, 404, "text/plain; charset=utf-8", NULL, "Not Found\n", 10);
		return;
	}
	/* The HTTP layer streams it from disk: memory stays bounded whatever its size. */
	web__respond_file(w, s->status, s->ctype, s->headers.data, fd, s->start, s->len);
}

/*
 * Answers from the upload's row what needs no file (304, 416), and opens
 * the file for the rest: the whole file, or the one byte range asked for
 * (media players seek with ranges). Uploads never change, so their token
 * is their ETag.
 */
static void upload_found(sp_store_status st, const sp_upload_row *row, void *ud)
{
	serve_ctx *s = ud;
	web_ctx *w = &s->base;
	base_buf *h = &s->headers;
	char etag[80];
	int inline_ok, r;

	if (web__gone(w))
		return;
	if (st && st != SP_STORE_NOTFOUND) {
		web__store_error(w, st);
		return;
	}
	const char *path = row ? row->path : NULL;
	const char *base = path ? strrchr(path, '/') : NULL;
	unsigned long long size = row ? row->size : 0;
	if (!path || strcmp(base ? base + 1 : path, s->name) != 0 || size > (1ull << 40) ||
	    strlen(path) >= sizeof(s->path)) {
		web__respond(w, 404, "text/plain; charset=utf-8", NULL, "Not Found\n", 10);
		return;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->content_type, sizeof(s->content_type), "%s", row->content_type);
	s->size = size;
	s->status = 200;
	s->start = 0;
	s->len = size;
	s->ctype = safe_type(s, &inline_ok);
	snprintf(etag, sizeof(etag), "\"%s\"", s->token);
	base_buf_printf(h,
	                "Cache-Control: private, max-age=3600\r\n"
	                "ETag: %s\r\n"
	                "Accept-Ranges: bytes\r\n"
	                "Content-Security-Policy: default-src 'none'; sandbox\r\n"
	                "Content-Disposition: %s; filename=\"%s\"\r\n",
	                etag, inline_ok ? "inline" : "attachment", s->name);
	const base_slice *range = http_header_get(w->req, "Range");
	const base_slice *if_range = http_header_get(w->req, "If-Range");
	if (etag_matches(http_header_get(w->req, "If-None-Match"), etag)) {
		r = 304;
	} else if (range && (!if_range || etag_matches(if_range, etag))) {
		r = http_parse_range(range, size, &s->start, &s->len);
		if (r < 0)
			base_buf_printf(h, "Content-Range: bytes */%llu\r\n", size);
		else if (r > 0)
			base_buf_printf(h, "Content-Range: bytes %llu-%llu/%llu\r\n",
			                (unsigned long long)s->start,
			                (unsigned long long)(s->start + s->len - 1), size);
		r = r < 0 ? 416 : r > 0 ? 206 : 200;
	} else {
		r = 200;
	}
	web_buf_cstr(h);
	if (r == 304) {
		web__respond(w, 304, NULL, h->data, NULL, 0);
		return;
	}
	if (r == 416) {
		web__respond(w, 416, "text/plain; charset=utf-8", h->data,
		             "Range Not Satisfiable\n", 22);
		return;
	}
	s->status = r;
	s->fs.data = s;
	if (uv_fs_open(w->site->loop, &s->fs, s->path, O_RDONLY, 0, file_opened))
		web__respond(w, 404, "text/plain; charset=utf-8", NULL, "Not Found\n", 10);
}

static int token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static void upload_route(http_request *req, void *ud)
{
	web_site *site = ud;
	base_slice rest = {req->path.base + 9, req->path.len - 9}; /* after "/uploads/" */
	const char *slash = memchr(rest.base, '/', rest.len);
	serve_ctx *s = (serve_ctx *)web__ctx_new(site, req, sizeof(serve_ctx));
	if (!s)
		return;
	s->base.cleanup = serve_cleanup;
	size_t tl = slash ? (size_t)(slash - rest.base) : 0;
	size_t nl = slash ? rest.len - tl - 1 : 0;
	int ok = tl >= 16 && tl < sizeof(s->token) && nl > 0 && nl < sizeof(s->name);
	for (size_t i = 0; ok && i < tl; i++)
		ok = token_char(rest.base[i]);
	for (size_t i = 0; ok && i < nl; i++) {
		char c = slash[1 + i];

		/* Stored names are already safe (web_safe_filename): nothing to decode. */
		ok = token_char(c) || c == '.';
	}
	if (!ok) {
		web__respond(&s->base, 404, "text/plain; charset=utf-8", NULL, "Not Found\n", 10);
		return;
	}
	memcpy(s->token, rest.base, tl);
	s->token[tl] = 0;
	memcpy(s->name, slash + 1, nl);
	s->name[nl] = 0;
	if (sp_store_upload_get(site->sp, s->token, upload_found, s))
		web__respond(&s->base, 503, "text/plain; charset=utf-8", NULL, "Server busy\n", 12);
}

/* ---- cleanup -------------------------------------------------------------------- */

static void expired(sp_store_status st, const char *const *paths, unsigned n, void *ud)
{
	web_site *site = ud;

	site->cleaning = 0;
	if (st == SP_STORE_OK && n)
		BASE_LOGI("web", "removing %u expired upload(s)", n);
	for (unsigned i = 0; i < n; i++)
		remove_upload(site->loop, paths[i]);
	web__site_unref(site);
}

void web__cleanup_tick(web_site *site)
{
	if (site->cleaning || site->closed)
		return;
	web__acct_sessions_expire(site);
	if (sp_store_uploads_expire(site->sp, site->opts.upload_retention_s, ORPHAN_GRACE_S,
	                            expired, site) == 0) {
		site->cleaning = 1;
		web__site_ref(site);
	}
}

const web_route web__upload_routes[] = {
    {HTTP_M_GET, "/uploads/", 1, upload_route},
    {HTTP_M_HEAD, "/uploads/", 1, upload_route},
    {0, NULL, 0, NULL},
};
