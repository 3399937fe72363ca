/*
 * multipart.c: a decoder of multipart/form-data bodies (RFC 7578), in the
 * shape of every decoder here: no allocation, no copy, slices into the body.
 *
 * The body is already complete in memory (the HTTP layer bounds it), so the
 * decoder walks it part by part with a cursor instead of keeping state
 * between reads.
 */
#include "web_internal.h"

#define MP_MAX_HEADER_LINES 16
#define MP_MAX_HEADER_LINE 4096

static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
	if (nlen == 0 || hlen < nlen)
		return NULL;
	const char *end = hay + hlen - nlen + 1;
	const char *p = hay;

	while (p < end) {
		p = memchr(p, needle[0], (size_t)(end - p));
		if (!p)
			return NULL;
		if (memcmp(p, needle, nlen) == 0)
			return p;
		p++;
	}
	return NULL;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static base_slice trim(const char *b, const char *e)
{
	while (b < e && is_ws(*b))
		b++;
	while (e > b && is_ws(e[-1]))
		e--;
	return (base_slice){b, (size_t)(e - b)};
}

/*
 * Finds the parameter key in a header value such as
 * `form-data; name="a"; filename="b.txt"`. A quoted value ends at the next
 * quote: browsers percent-encode quotes in names and leave backslashes as
 * they are, so a backslash is not an escape here. Returns 1 when found.
 */
int web_header_param(base_slice value, const char *key, base_slice *out)
{
	const char *p = value.base, *end = value.base + value.len;
	size_t klen = strlen(key);

	/* Skip the leading token (the media type or disposition). */
	while (p < end && *p != ';')
		p++;
	while (p < end) {
		p++; /* the ';' */
		while (p < end && is_ws(*p))
			p++;
		const char *k = p;
		while (p < end && *p != '=' && *p != ';')
			p++;
		base_slice name = trim(k, p);
		base_slice val = {p, 0};
		if (p < end && *p == '=') {
			p++;
			while (p < end && is_ws(*p))
				p++;
			if (p < end && *p == '"') {
				const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));

				if (!q)
					return 0;
				val = (base_slice){p + 1, (size_t)(q - p - 1)};
				p = q + 1;
				while (p < end && *p != ';')
					p++;
			} else {
				const char *v = p;

				while (p < end && *p != ';')
					p++;
				val = trim(v, p);
			}
		}
		if (name.len == klen && base_slice_caseeq(name, key)) {
			*out = val;
			return 1;
		}
	}
	return 0;
}

int web_multipart_boundary(base_slice content_type, base_slice *boundary)
{
	base_slice b;

	if (!web_media_type_is(content_type, "multipart/form-data"))
		return -1;
	if (!web_header_param(content_type, "boundary", &b) || b.len == 0 || b.len > 70)
		return -1;
	*boundary = b;
	return 0;
}

/* Reads the part's header lines starting at p; returns the start of its data or NULL. */
static const char *part_headers(const char *p, const char *end, web_part *part)
{
	for (int lines = 0;; lines++) {
		const char *eol = find(p, (size_t)(end - p), "\r\n", 2);

		if (!eol || lines > MP_MAX_HEADER_LINES || eol - p > MP_MAX_HEADER_LINE)
			return NULL;
		if (eol == p)
			return p + 2; /* the empty line: data follows */
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon)
			return NULL;
		base_slice name = trim(p, colon);
		base_slice value = trim(colon + 1, eol);
		if (base_slice_caseeq(name, "Content-Disposition")) {
			if (!web_media_type_is(value, "form-data"))
				return NULL;
			web_header_param(value, "name", &part->name);
			part->has_filename = web_header_param(value, "filename", &part->filename);
		} else if (base_slice_caseeq(name, "Content-Type")) {
			part->content_type = value;
		}
		p = eol + 2;
	}
}

int web_multipart_next(base_slice body, base_slice boundary, size_t *pos, web_part *part)
{
	const char *b = body.base, *end = body.base + body.len;
	const char *p;
	char delim[76];
	size_t dlen;

	if (boundary.len == 0 || boundary.len > 70 || *pos > body.len)
		return -1;
	/* The delimiter is CRLF "--" boundary; the first one may lack the CRLF. */
	delim[0] = '\r';
	delim[1] = '\n';
	delim[2] = '-';
	delim[3] = '-';
	memcpy(delim + 4, boundary.base, boundary.len);
	dlen = 4 + boundary.len;

	if (*pos == 0 && body.len >= dlen - 2 && memcmp(b, delim + 2, dlen - 2) == 0) {
		p = b + dlen - 2;
	} else {
		const char *d = find(b + *pos, body.len - *pos, delim, dlen);

		/* Only a preamble may come before the first delimiter. */
		if (!d || (*pos != 0 && d != b + *pos))
			return -1;
		p = d + dlen;
	}
	if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
		*pos = body.len; /* the close delimiter; an epilogue is ignored */
		return 0;
	}
	while (p < end && is_ws(*p))
		p++;
	if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
		return -1;
	p += 2;

	memset(part, 0, sizeof(*part));
	const char *data = part_headers(p, end, part);
	if (!data)
		return -1;
	const char *next = find(data, (size_t)(end - data), delim, dlen);
	if (!next)
		return -1;
	part->data = (base_slice){data, (size_t)(next - data)};
	*pos = (size_t)(next - b);
	return 1;
}
