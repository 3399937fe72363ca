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
