/*
 * mediatype.c: the media type of an uploaded file, read strictly.
 *
 * A browser decides how to show a file from its Content-Type: an upload
 * sent as "audio/mpeg, text/html" once went back out with that header,
 * and Chromium rendered it as HTML on the site's origin. So a type is
 * exactly one type/subtype of token characters, then parameters
 * (name=token or name="quoted"); anything else (a list, garbage) is
 * refused at upload. Only a short list of audio, video and image types is
 * ever served inline; everything else is a download.
 */
#include <stdio.h>

#include "web_internal.h"

/* RFC 9110 tchar. */
static int tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* Appends s[0..n) (lowercased when low) to out at *len; -1 when it does not fit. */
static int put(char *out, size_t cap, size_t *len, const char *s, size_t n, int low)
{
	if (*len + n + 1 > cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[(*len)++] = low ? lower(s[i]) : s[i];
	out[*len] = 0;
	return 0;
}

int web_media_type_parse(const char *s, char *out, size_t cap)
{
	const char *p = s;
	size_t len = 0, n;

	if (!s || !out || cap == 0)
		return -1;
	out[0] = 0;
	while (*p == ' ' || *p == '\t')
		p++;
	for (n = 0; tchar((unsigned char)p[n]); n++)
		;
	if (n == 0 || p[n] != '/' || put(out, cap, &len, p, n, 1) || put(out, cap, &len, "/", 1, 0))
		return -1;
	p += n + 1;
	for (n = 0; tchar((unsigned char)p[n]); n++)
		;
	if (n == 0 || put(out, cap, &len, p, n, 1))
		return -1;
	p += n;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == 0)
			return 0;
		if (*p != ';')
			return -1; /* a comma (a list), or anything else */
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == 0)
			return 0; /* a trailing ';' is tolerated */
		for (n = 0; tchar((unsigned char)p[n]); n++)
			;
		if (n == 0 || p[n] != '=' || put(out, cap, &len, ";", 1, 0) ||
		    put(out, cap, &len, p, n, 1) || put(out, cap, &len, "=", 1, 0))
			return -1;
		p += n + 1;
		if (*p == '"') {
			const char *q = p + 1;

			while (*q && *q != '"') {
				unsigned char c = (unsigned char)*q;

				/* No escapes and nothing unprintable: none is needed in practice. */
				if (c == '\\' || c < 0x20 || c == 0x7f)
					return -1;
				q++;
			}
			if (*q != '"' || put(out, cap, &len, p, (size_t)(q + 1 - p), 0))
				return -1;
			p = q + 1;
		} else {
			for (n = 0; tchar((unsigned char)p[n]); n++)
				;
			if (n == 0 || put(out, cap, &len, p, n, 0))
				return -1;
			p += n;
		}
	}
}

int web_media_type_inline(const char *type)
{
	static const char *const ok[] = {
	    "audio/mpeg", "audio/mp3",       "audio/wav",  "audio/x-wav",  "audio/wave",
	    "audio/ogg",  "audio/webm",      "audio/flac", "audio/x-flac", "audio/aac",
	    "audio/mp4",  "audio/x-m4a",     "audio/opus", "video/mp4",    "video/webm",
	    "video/ogg",  "video/quicktime", "image/png",  "image/jpeg",   "image/gif",
	    "image/webp", "image/avif",      "image/bmp",
	};
	size_t n = strcspn(type, ";");

	for (size_t i = 0; i < BASE_ARRAY_SIZE(ok); i++) {
		if (strlen(ok[i]) == n && memcmp(ok[i], type, n) == 0)
			return 1;
	}
	return 0;
}
