/*
 * escape.c: HTML escaping for templates, URL decoding and query lookup for
 * request targets.
 */
#include "base.h"

void base_html_escape(base_buf *out, const char *s, size_t len)
{
	size_t run = 0; /* start of the pending run of bytes that need no escape */

	for (size_t i = 0; i < len; i++) {
		const char *rep;

		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			continue;
		}
		base_buf_append(out, s + run, i - run);
		base_buf_append_str(out, rep);
		run = i + 1;
	}
	base_buf_append(out, s + run, len - run);
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

ssize_t base_url_decode(const char *in, size_t len, char *out, int plus_is_space)
{
	size_t o = 0;

	/* o never passes i, so decoding in place (out == in) is safe. */
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return -1;
			hi = hex_value((unsigned char)in[i + 1]);
			lo = hex_value((unsigned char)in[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		}
		out[o++] = c;
	}
	return (ssize_t)o;
}

int base_query_get(base_slice query, const char *key, base_slice *value)
{
	size_t klen = strlen(key);
	const char *p = query.base;
	const char *end = query.base + query.len;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *pair_end = amp != NULL ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(pair_end - p));
		const char *key_end = eq != NULL ? eq : pair_end;

		if ((size_t)(key_end - p) == klen && memcmp(p, key, klen) == 0) {
			if (eq != NULL) {
				value->base = eq + 1;
				value->len = (size_t)(pair_end - eq - 1);
			} else {
				value->base = pair_end;
				value->len = 0;
			}
			return 1;
		}
		if (amp == NULL)
			break;
		p = amp + 1;
	}
	return 0;
}
