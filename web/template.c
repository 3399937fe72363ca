/*
 * template.c: HTML output that escapes by default.
 *
 * Pages are written with web_html, a printf-like function whose only way to
 * insert a string is escaped (%s, %S) unless the caller says in so many
 * letters that the string is already HTML (%R). That keeps the safe case
 * the short one to type: a forgotten escape cannot happen by accident.
 */
#include <stdio.h>

#include "web_internal.h"

static void url_escape(base_buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			base_buf_append(out, s + i, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			base_buf_append(out, e, 3);
		}
	}
}

const char *web_buf_cstr(base_buf *b)
{
	base_buf_reserve(b, 1);
	b->data[b->len] = 0;
	return b->data;
}

int web_html_v(base_buf *out, const char *fmt, va_list ap)
{
	const char *run = fmt;
	const char *p = fmt;
	int rc = 0;

	while (*p && rc == 0) {
		if (*p != '%') {
			p++;
			continue;
		}
		base_buf_append(out, run, (size_t)(p - run));
		p++;
		switch (*p) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			if (s)
				base_html_escape(out, s, strlen(s));
			break;
		}
		case 'S': {
			base_slice sl = va_arg(ap, base_slice);

			if (sl.len)
				base_html_escape(out, sl.base, sl.len);
			break;
		}
		case 'R': {
			const char *s = va_arg(ap, const char *);

			if (s)
				base_buf_append_str(out, s);
			break;
		}
		case 'U': {
			const char *s = va_arg(ap, const char *);

			if (s)
				url_escape(out, s, strlen(s));
			break;
		}
		case 'd':
			base_buf_printf(out, "%d", va_arg(ap, int));
			break;
		case 'u':
			base_buf_printf(out, "%u", va_arg(ap, unsigned));
			break;
		case '%':
			base_buf_append(out, "%", 1);
			break;
		default:
			/* A format we do not know is our own bug; write nothing more. */
			rc = BASE_EINVAL;
			break;
		}
		if (*p)
			p++;
		run = p;
	}
	if (rc == 0)
		base_buf_append(out, run, (size_t)(p - run));
	return rc;
}

int web_html(base_buf *out, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = web_html_v(out, fmt, ap);
	va_end(ap);
	return rc;
}
