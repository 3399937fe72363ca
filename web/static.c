/*
 * static.c: files served as they are: the socket.io-client bundle at
 * /socket.io/ (as the Node server serves it) and the site's CSS and JS
 * under /static/.
 *
 * Every file is read once at start-up (STYLE.md: no file reads on request
 * paths), given a strong ETag from its contents, and, when it is text,
 * compressed once with gzip for clients that accept it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

#include "web_internal.h"

#define STATIC_MAX_FILE (8u << 20)

struct web_static_file {
	web_static_file *next;
	char url[160];
	const char *content_type;
	const char *cache_control;
	char etag[48];
	char *data;
	size_t len;
	char *gz; /* NULL when not worth it */
	size_t gz_len;
};

static const struct {
	const char *ext;
	const char *type;
	int text;
} types[] = {
    {".js", "application/javascript; charset=utf-8", 1},
    {".mjs", "application/javascript; charset=utf-8", 1},
    {".map", "application/json; charset=utf-8", 1},
    {".json", "application/json; charset=utf-8", 1},
    {".css", "text/css; charset=utf-8", 1},
    {".txt", "text/plain; charset=utf-8", 1},
    {".svg", "image/svg+xml", 1},
    {".png", "image/png", 0},
    {".jpg", "image/jpeg", 0},
    {".jpeg", "image/jpeg", 0},
    {".gif", "image/gif", 0},
    {".webp", "image/webp", 0},
    {".ico", "image/x-icon", 0},
    {".woff2", "font/woff2", 0},
};

static int type_of(const char *name, const char **type)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < BASE_ARRAY_SIZE(types); i++) {
		size_t e = strlen(types[i].ext);

		if (n > e && strcmp(name + n - e, types[i].ext) == 0) {
			*type = types[i].type;
			return types[i].text;
		}
	}
	*type = NULL;
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	struct stat st;

	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > STATIC_MAX_FILE)
		goto out;
	data = malloc((size_t)st.st_size + 1);
	if (!data)
		goto out;
	if (fread(data, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		free(data);
		data = NULL;
		goto out;
	}
	*len = (size_t)st.st_size;
out:
	fclose(f);
	return data;
}

static void gzip_file(web_static_file *f)
{
	z_stream z;
	uLong cap = compressBound((uLong)f->len) + 64;
	char *out = malloc(cap);

	if (!out)
		return;
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper rather than zlib's. */
	if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return;
	}
	z.next_in = (Bytef *)f->data;
	z.avail_in = (uInt)f->len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) == Z_STREAM_END && z.total_out + 256 < f->len) {
		f->gz = out;
		f->gz_len = z.total_out;
		out = NULL;
	}
	deflateEnd(&z);
	free(out);
}

static void serve(http_request *req, void *ud)
{
	const web_static_file *f = ud;
	const base_slice *inm = http_header_get(req, "If-None-Match");
	const base_slice *ae = http_header_get(req, "Accept-Encoding");
	base_buf h = BASE_BUF_INIT;
	int gz = 0;

	if (ae && f->gz) {
		for (size_t i = 0; i + 4 <= ae->len; i++) {
			if (base_slice_caseeq((base_slice){ae->base + i, 4}, "gzip")) {
				gz = 1;
				break;
			}
		}
	}
	base_buf_printf(&h,
	                "ETag: %s\r\nCache-Control: %s\r\n"
	                "Access-Control-Allow-Origin: *\r\n%s",
	                f->etag, f->cache_control, f->gz ? "Vary: Accept-Encoding\r\n" : "");
	web_buf_cstr(&h);
	if (inm && inm->len) {
		/* A list of tags, possibly weak ("W/"): any match is a hit. */
		const char *p = inm->base, *end = inm->base + inm->len;
		size_t tl = strlen(f->etag);

		for (; p + tl <= end; p++) {
			if (memcmp(p, f->etag, tl) == 0 || (p + 1 == end && *p == '*')) {
				http_respond(req, 304, NULL, h.data, NULL, 0);
				base_buf_free(&h);
				return;
			}
		}
	}
	if (gz)
		base_buf_append_str(&h, "Content-Encoding: gzip\r\n");
	web_buf_cstr(&h);
	http_respond(req, 200, f->content_type, h.data, gz ? f->gz : f->data,
	             gz ? f->gz_len : f->len);
	base_buf_free(&h);
}

/* Loads one file and routes url to it. Returns 0, or -1 when the file cannot be read. */
static int add_file(web_site *site, const char *path, const char *url, const char *cache_control)
{
	web_static_file *f = calloc(1, sizeof(*f));
	const char *name = strrchr(path, '/');
	int text;

	if (!f || strlen(url) >= sizeof(f->url))
		goto fail;
	text = type_of(name ? name + 1 : path, &f->content_type);
	if (!f->content_type)
		f->content_type = "application/octet-stream";
	f->data = read_file(path, &f->len);
	if (!f->data)
		goto fail;
	snprintf(f->url, sizeof(f->url), "%s", url);
	f->cache_control = cache_control;

	char hex[65];
	web_sha256_hex(f->data, f->len, hex);
	snprintf(f->etag, sizeof(f->etag), "\"%.32s\"", hex);
	if (text)
		gzip_file(f);
	if (http_route(site->http, HTTP_M_GET, f->url, 0, serve, f))
		goto fail;
	f->next = site->static_files;
	site->static_files = f;
	return 0;
fail:
	if (f) {
		free(f->data);
		free(f->gz);
	}
	free(f);
	return -1;
}

int web__static_init(web_site *site)
{
	static const char *client_files[] = {
	    "socket.io.js",         "socket.io.js.map",         "socket.io.min.js",
	    "socket.io.min.js.map", "socket.io.msgpack.min.js", "socket.io.msgpack.min.js.map",
	    "socket.io.esm.min.js", "socket.io.esm.min.js.map",
	};
	char path[4096], url[160];
	int loaded = 0;

	for (size_t i = 0; i < BASE_ARRAY_SIZE(client_files); i++) {
		snprintf(path, sizeof(path), "%s/%s", site->opts.client_dist_dir, client_files[i]);
		snprintf(url, sizeof(url), "/socket.io/%s", client_files[i]);
		/* Revalidated each time (cheap with the ETag), as the Node server does. */
		if (add_file(site, path, url, "public, max-age=0, must-revalidate") == 0) {
			loaded++;
		} else if (i == 0) {
			/* Live pages would silently stop being live. */
			BASE_LOGE("web", "cannot read %s: no socket.io-client bundle", path);
			return -1;
		}
	}
	BASE_LOGD("web", "%d socket.io-client file(s) from %s", loaded, site->opts.client_dist_dir);

	/* The site's own files: flat directory, names without dots in front. */
	if (!site->opts.static_dir)
		return 0;
	DIR *d = opendir(site->opts.static_dir);
	if (!d) {
		BASE_LOGE("web", "cannot open the static directory %s: %s", site->opts.static_dir,
		          strerror(errno));
		return -1;
	}
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *type;

		if (e->d_name[0] == '.')
			continue;
		type_of(e->d_name, &type);
		if (!type)
			continue;
		snprintf(path, sizeof(path), "%s/%s", site->opts.static_dir, e->d_name);
		if (strlen(e->d_name) > 100)
			continue;
		snprintf(url, sizeof(url), "/static/%.100s", e->d_name);
		if (add_file(site, path, url, "public, max-age=0, must-revalidate"))
			BASE_LOGW("web", "cannot read %s", path);
	}
	closedir(d);
	return 0;
}

void web__static_free(web_site *site)
{
	web_static_file *f = site->static_files, *next;

	for (; f; f = next) {
		next = f->next;
		free(f->data);
		free(f->gz);
		free(f);
	}
	site->static_files = NULL;
}
