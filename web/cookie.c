/*
 * cookie.c: reading one cookie from a Cookie header, and writing the
 * Set-Cookie line of the session cookie.
 */
#include <stdio.h>

#include "web_internal.h"

int web_cookie_get(base_slice header, const char *name, base_slice *value)
{
	const char *p = header.base, *end = header.base + header.len;
	size_t nlen = strlen(name);

	while (p < end) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *stop = semi ? semi : end;
		const char *eq = memchr(p, '=', (size_t)(stop - p));

		if (eq) {
			const char *ne = eq;

			while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
				ne--;
			if ((size_t)(ne - p) == nlen && memcmp(p, name, nlen) == 0) {
				const char *v = eq + 1, *ve = stop;

				while (v < ve && (*v == ' ' || *v == '\t'))
					v++;
				while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
					ve--;
				/* RFC 6265 allows the value in double quotes. */
				if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
					v++;
					ve--;
				}
				*value = (base_slice){v, (size_t)(ve - v)};
				return 1;
			}
		}
		p = stop;
	}
	return 0;
}

int web_session_token(const base_slice *header, char *out, size_t cap)
{
	base_slice v;

	if (!header || !web_cookie_get(*header, WEB_SESSION_COOKIE, &v) || v.len == 0 ||
	    v.len >= cap)
		return 0;
	for (size_t i = 0; i < v.len; i++) {
		char c = v.base[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	memcpy(out, v.base, v.len);
	out[v.len] = 0;
	return 1;
}

void web_cookie_set_line(base_buf *out, const char *name, const char *value, long max_age,
                         int secure)
{
	base_buf_printf(out, "Set-Cookie: %s=%s; Path=/; HttpOnly; SameSite=Lax", name, value);
	if (max_age >= 0)
		base_buf_printf(out, "; Max-Age=%ld", max_age);
	if (max_age == 0)
		base_buf_append_str(out, "; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
	if (secure)
		base_buf_append_str(out, "; Secure");
	base_buf_append_str(out, "\r\n");
}
