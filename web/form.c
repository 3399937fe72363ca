/*
 * form.c: submitted forms, either application/x-www-form-urlencoded or
 * multipart/form-data, decoded into one list of fields (and files) whose
 * memory belongs to the request's arena.
 */
#include <stdlib.h>

#include "web_internal.h"

/* Grows the field array in the arena (it is small: forms have few fields). */
static int add_field(base_arena *a, web_form *f, const char *name, size_t nlen, const char *val,
                     size_t vlen)
{
	if (f->n_fields == WEB_FORM_MAX_FIELDS)
		return BASE_ELIMIT;
	if (f->n_fields == f->cap_fields) {
		size_t cap = f->cap_fields ? f->cap_fields * 2 : 8;
		web_field *nf = base_arena_alloc(a, cap * sizeof(*nf));

		if (!nf)
			return BASE_ENOMEM;
		if (f->n_fields)
			memcpy(nf, f->fields, f->n_fields * sizeof(*nf));
		f->fields = nf;
		f->cap_fields = cap;
	}
	web_field *fl = &f->fields[f->n_fields];
	fl->name = base_arena_strndup(a, name, nlen);
	fl->value = base_arena_strndup(a, val, vlen);
	fl->value_len = vlen;
	if (!fl->name || !fl->value)
		return BASE_ENOMEM;
	f->n_fields++;
	return 0;
}

int web_form_parse_urlencoded(base_arena *a, base_slice body, web_form *out)
{
	const char *p = body.base, *end = body.base + body.len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pend = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pend - p));
		const char *kend = eq ? eq : pend;
		const char *v = eq ? eq + 1 : pend;
		size_t klen = (size_t)(kend - p), vlen = (size_t)(pend - v);

		if (klen > 0) {
			/* Decode into the arena: escapes only ever shrink the text. */
			char *k = base_arena_alloc(a, klen + 1);
			char *val = base_arena_alloc(a, vlen + 1);
			ssize_t kn, vn;
			int rc;

			if (!k || !val)
				return BASE_ENOMEM;
			kn = base_url_decode(p, klen, k, 1);
			vn = base_url_decode(v, vlen, val, 1);
			if (kn < 0 || vn < 0)
				return BASE_EINVAL;
			rc = add_field(a, out, k, (size_t)kn, val, (size_t)vn);
			if (rc)
				return rc;
		}
		p = amp ? amp + 1 : end;
	}
	return 0;
}

int web_form_parse_multipart(base_arena *a, base_slice content_type, base_slice body, web_form *out)
{
	base_slice boundary;
	size_t pos = 0;
	web_part part;
	int rc;

	if (web_multipart_boundary(content_type, &boundary))
		return BASE_EINVAL;
	while ((rc = web_multipart_next(body, boundary, &pos, &part)) == 1) {
		if (!part.name.len)
			continue;
		if (!part.has_filename) {
			rc = add_field(a, out, part.name.base, part.name.len, part.data.base,
			               part.data.len);
			if (rc)
				return rc;
			continue;
		}
		/* A file input left empty arrives with an empty filename: skip it. */
		if (!part.filename.len && !part.data.len)
			continue;
		if (out->n_files == WEB_FORM_MAX_FILES)
			return BASE_ELIMIT;
		web_file *fl = &out->files[out->n_files];
		fl->name = base_arena_strndup(a, part.name.base, part.name.len);
		fl->filename = base_arena_strndup(a, part.filename.base, part.filename.len);
		fl->content_type =
		    base_arena_strndup(a, part.content_type.base, part.content_type.len);
		if (!fl->name || !fl->filename || !fl->content_type)
			return BASE_ENOMEM;
		fl->data = part.data; /* a slice of the body, which outlives the form */
		out->n_files++;
	}
	return rc == 0 ? 0 : BASE_EINVAL;
}

int web_form_parse(base_arena *a, const base_slice *content_type, base_slice body, web_form *out)
{
	memset(out, 0, sizeof(*out));
	if (content_type && web_media_type_is(*content_type, "multipart/form-data"))
		return web_form_parse_multipart(a, *content_type, body, out);
	/* Anything else is read as urlencoded, as browsers and scripts send it. */
	return web_form_parse_urlencoded(a, body, out);
}

const char *web_form_get(const web_form *f, const char *name)
{
	for (size_t i = 0; i < f->n_fields; i++) {
		if (strcmp(f->fields[i].name, name) == 0)
			return f->fields[i].value;
	}
	return NULL;
}

const web_file *web_form_file(const web_form *f, const char *name)
{
	for (size_t i = 0; i < f->n_files; i++) {
		if (strcmp(f->files[i].name, name) == 0)
			return &f->files[i];
	}
	return NULL;
}

int web_media_type_is(base_slice header, const char *type)
{
	size_t n = 0;

	while (n < header.len && header.base[n] != ';')
		n++;
	while (n > 0 && (header.base[n - 1] == ' ' || header.base[n - 1] == '\t'))
		n--;
	size_t start = 0;
	while (start < n && (header.base[start] == ' ' || header.base[start] == '\t'))
		start++;
	return base_slice_caseeq((base_slice){header.base + start, n - start}, type);
}
