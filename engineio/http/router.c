/*
 * router.c: routes (method and exact path or prefix, first match wins) and
 * header look-ups.
 */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

int http_route(http_server *s, http_method method, const char *path, int prefix, http_handler_fn fn,
               void *ud)
{
	http_route_entry *r = realloc(s->routes, (s->n_routes + 1) * sizeof(*r));
	size_t len = strlen(path);
	char *copy;

	if (r == NULL)
		return BASE_ENOMEM;
	s->routes = r;
	copy = malloc(len + 1);
	if (copy == NULL)
		return BASE_ENOMEM;
	memcpy(copy, path, len + 1);
	r[s->n_routes] = (http_route_entry){method, prefix, copy, len, fn, ud, {0}};
	s->n_routes++;
	return 0;
}

int http_body_limit(http_server *s, const char *path, int prefix, size_t max_bytes)
{
	size_t len = strlen(path);
	http_limit_entry *l;
	char *copy;

	for (size_t i = 0; i < s->n_limits; i++) {
		l = &s->limits[i];
		if (l->prefix == !!prefix && l->len == len && memcmp(l->path, path, len) == 0) {
			l->max = max_bytes;
			return 0;
		}
	}
	l = realloc(s->limits, (s->n_limits + 1) * sizeof(*l));
	if (l == NULL)
		return BASE_ENOMEM;
	s->limits = l;
	copy = malloc(len + 1);
	if (copy == NULL)
		return BASE_ENOMEM;
	memcpy(copy, path, len + 1);
	l[s->n_limits] = (http_limit_entry){!!prefix, copy, len, max_bytes};
	s->n_limits++;
	return 0;
}

size_t http_body_limit_for(const http_server *s, const char *path, size_t len)
{
	const http_limit_entry *best = NULL;

	/* An exact path is more specific than a prefix of the same length. */
	for (size_t i = 0; i < s->n_limits; i++) {
		const http_limit_entry *l = &s->limits[i];

		if (l->prefix ? len < l->len : len != l->len)
			continue;
		if (memcmp(path, l->path, l->len) != 0)
			continue;
		if (best == NULL || l->len > best->len || (l->len == best->len && !l->prefix))
			best = l;
	}
	return best != NULL ? best->max : s->lim.max_body_bytes;
}

static int method_matches(http_method route, http_method m)
{
	/* A GET route answers HEAD too; respond() leaves the body out. */
	return route == HTTP_M_OTHER || route == m || (route == HTTP_M_GET && m == HTTP_M_HEAD);
}

const http_route_entry *http__route_find(const http_server *s, const http_request *req)
{
	for (size_t i = 0; i < s->n_routes; i++) {
		const http_route_entry *r = &s->routes[i];

		if (!method_matches(r->method, req->method))
			continue;
		if (r->prefix ? req->path.len >= r->len : req->path.len == r->len) {
			if (r->len == 0 || memcmp(req->path.base, r->path, r->len) == 0)
				return r;
		}
	}
	return NULL;
}

const base_slice *http_header_get(const http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++) {
		if (base_slice_caseeq(req->headers[i].name, name))
			return &req->headers[i].value;
	}
	return NULL;
}

static int is_ows(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* 1 when a header called name (any of them) lists token, ignoring case. */
static int header_has_token(const http_request *req, const char *name, const char *token)
{
	for (size_t i = 0; i < req->n_headers; i++) {
		const char *p, *end;

		if (!base_slice_caseeq(req->headers[i].name, name))
			continue;
		p = req->headers[i].value.base;
		end = p + req->headers[i].value.len;
		while (p < end) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *e = comma != NULL ? comma : end;
			const char *b = p;

			while (b < e && is_ows(*b))
				b++;
			while (e > b && is_ows(e[-1]))
				e--;
			if (base_slice_caseeq((base_slice){b, (size_t)(e - b)}, token))
				return 1;
			p = comma != NULL ? comma + 1 : end;
		}
	}
	return 0;
}

int http_is_websocket(const http_request *req)
{
	return req->method == HTTP_M_GET && header_has_token(req, "Upgrade", "websocket") &&
	       header_has_token(req, "Connection", "upgrade");
}
