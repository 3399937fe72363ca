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
#define CLEANUP_BATCH "500"

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

static void rows_deleted(const db_result *res, void *ud)
{
	web_site *site = ud;

	if (!db_ok(res)) {
		BASE_LOGW("web", "removing uploads failed: %s", db_error(res));
		return;
	}
	for (int i = 0; i < db_ntuples(res); i++)
		remove_upload(site->loop, db_value(res, i, 0));
}

/* The tokens as a PostgreSQL array literal: tokens are base64url, no quoting needed. */
static void token_array(base_buf *b, const web_upload *ups, size_t n)
{
	base_buf_append(b, "{", 1);
	for (size_t i = 0; i < n; i++) {
		if (ups[i].token[0])
			base_buf_printf(b, "%s%s", b->len > 1 ? "," : "", ups[i].token);
	}
	base_buf_append(b, "}", 2); /* with the NUL */
}

void web__uploads_discard(web_site *site, const web_upload *ups, size_t n)
{
	base_buf arr = BASE_BUF_INIT;

	/* Files never recorded are removed directly; recorded ones with their rows. */
	for (size_t i = 0; i < n; i++) {
		if (ups[i].written)
			remove_upload(site->loop, ups[i].path);
	}
	static const char del[] = "DELETE FROM uploads WHERE token = ANY($1::text[])";
	token_array(&arr, ups, n);
	db_query(site->db, del, 1, (const char *[]){arr.data}, NULL, NULL);
	base_buf_free(&arr);
}

void web__uploads_attach(web_site *site, const web_upload *ups, size_t n, const char *request_id)
{
	base_buf arr = BASE_BUF_INIT;

	static const char upd[] =
	    "UPDATE uploads SET request_id = $1 WHERE token = ANY($2::text[])";
	token_array(&arr, ups, n);
	db_query(site->db, upd, 2, (const char *[]){request_id, arr.data}, NULL, NULL);
	base_buf_free(&arr);
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

static void recorded(const db_result *res, void *ud)
{
	store_job *j = ud;

	if (!db_ok(res)) {
		BASE_LOGE("web", "recording uploads failed: %s", db_error(res));
		store_end(j, -1);
		return;
	}
	store_end(j, 0);
}

static void record(store_job *j)
{
	web_site *site = j->w->site;
	db_stmt st[WEB_UPLOADS_MAX];
	const char *params[WEB_UPLOADS_MAX][6];
	char sizes[WEB_UPLOADS_MAX][24];
	const char *user = j->w->sess.user_id[0] ? j->w->sess.user_id : NULL;
	static const char sql[] =
	    "INSERT INTO uploads (token, filename, content_type, size, path, user_id) "
	    "VALUES ($1, $2, $3, $4, $5, $6)";

	for (size_t i = 0; i < j->n; i++) {
		snprintf(sizes[i], sizeof(sizes[i]), "%zu", j->ups[i].data.len);
		params[i][0] = j->ups[i].token;
		params[i][1] = j->ups[i].filename;
		params[i][2] = j->ups[i].content_type;
		params[i][3] = sizes[i];
		params[i][4] = j->ups[i].path;
		params[i][5] = user;
		st[i] = (db_stmt){sql, 6, params[i]};
	}
	if (db_query_tx(site->db, st, (unsigned)j->n, recorded, j))
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
static void upload_found(const db_result *res, void *ud)
{
	serve_ctx *s = ud;
	web_ctx *w = &s->base;
	base_buf *h = &s->headers;
	char etag[80];
	int inline_ok, r;

	if (web__gone(w))
		return;
	if (!db_ok(res)) {
		web__server_error(w, "looking up an upload", res);
		return;
	}
	/* path, content_type, size */
	const char *path = db_ntuples(res) == 1 ? db_value(res, 0, 0) : NULL;
	const char *base = path ? strrchr(path, '/') : NULL;
	unsigned long long size = path ? strtoull(db_value(res, 0, 2), NULL, 10) : 0;
	if (!path || strcmp(base ? base + 1 : path, s->name) != 0 || size > (1ull << 40) ||
	    strlen(path) >= sizeof(s->path)) {
		web__respond(w, 404, "text/plain; charset=utf-8", NULL, "Not Found\n", 10);
		return;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	snprintf(s->content_type, sizeof(s->content_type), "%s", db_value(res, 0, 1));
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
	static const char sql[] = "SELECT path, content_type, size FROM uploads WHERE token = $1";
	const char *params[1] = {s->token};
	if (db_query_flags(site->db, DB_RETRY, sql, 1, params, upload_found, s))
		web__respond(&s->base, 503, "text/plain; charset=utf-8", NULL, "Server busy\n", 12);
}

/* ---- cleanup -------------------------------------------------------------------- */

static void cleaned(const db_result *res, void *ud)
{
	web_site *site = ud;

	site->cleaning = 0;
	if (!db_ok(res)) {
		BASE_LOGW("web", "cleanup failed: %s", db_error(res));
	} else {
		const db_result *up = db_tx_result(res, 0);

		if (db_ntuples(up))
			BASE_LOGI("web", "removing %d expired upload(s)", db_ntuples(up));
		rows_deleted(up, site);
	}
	web__site_unref(site);
}

void web__cleanup_tick(web_site *site)
{
	char retention[16], grace[16];

	if (site->cleaning || site->closed)
		return;
	snprintf(retention, sizeof(retention), "%u", site->opts.upload_retention_s);
	snprintf(grace, sizeof(grace), "%u", ORPHAN_GRACE_S);
	static const char uploads_sql[] =
	    "DELETE FROM uploads WHERE id IN (SELECT u.id FROM uploads u "
	    "LEFT JOIN requests r ON r.id = u.request_id "
	    "WHERE (u.request_id IS NULL AND u.created_at < now() - make_interval(secs => "
	    "$2::int)) "
	    "OR r.finished_at < now() - make_interval(secs => $1::int) "
	    "LIMIT " CLEANUP_BATCH ") RETURNING path";
	static const char sessions_sql[] = "DELETE FROM sessions WHERE expires_at < now()";
	const char *p1[2] = {retention, grace};
	db_stmt st[2] = {{uploads_sql, 2, p1}, {sessions_sql, 0, NULL}};
	if (db_query_tx(site->db, st, 2, cleaned, site) == 0) {
		site->cleaning = 1;
		web__site_ref(site);
	}
}

void web__upload_routes(web_site *site)
{
	http_route(site->http, HTTP_M_GET, "/uploads/", 1, upload_route, site);
	http_route(site->http, HTTP_M_HEAD, "/uploads/", 1, upload_route, site);
}
