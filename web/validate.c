/*
 * validate.c: what user input may look like (names, texts, ids, file names)
 * and the hash under which secrets (session and app tokens) are stored.
 */
#include <sodium.h>

#include "web_internal.h"

int web_username_ok(const char *name)
{
	size_t n = 0;

	if (!name)
		return 0;
	for (; name[n]; n++) {
		char c = name[n];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return 0;
	}
	return n >= 1 && n <= WEB_USERNAME_MAX;
}

int web_text_ok(const char *s, size_t len, size_t max, int multiline)
{
	uint32_t st = 0;

	if (!s || len > max)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == 0x7f ||
		    (c < 0x20 && !(multiline && (c == '\n' || c == '\r' || c == '\t'))))
			return 0;
	}
	return base_utf8_validate(&st, (const unsigned char *)s, len) == 0 && st == 0;
}

int web_id_ok(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	/* Space ids are short base64url strings (0001_init.sql): letters, digits,
	 * '-' and '_' only, so an id never needs escaping in a URL. */
	for (; s[n]; n++) {
		char c = s[n];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return n >= 1 && n < WEB_ID_MAX;
}

void web_safe_filename(const char *filename, char *out, size_t cap)
{
	const char *base = filename ? filename : "";
	size_t o = 0;

	/* Browsers send a bare name, old ones a whole path (either separator). */
	for (const char *p = base; *p; p++) {
		if (*p == '/' || *p == '\\')
			base = p + 1;
	}
	while (*base == '.')
		base++;
	for (const char *p = base; *p && o + 1 < cap; p++) {
		char c = *p;

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_'))
			c = '_';
		out[o++] = c;
	}
	if (o == 0 && cap > 4) {
		memcpy(out, "file", 4);
		o = 4;
	}
	if (cap)
		out[o] = 0;
}

void web_sha256_hex(const char *s, size_t len, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)s, len);
	sodium_bin2hex(out, 65, h, sizeof(h));
}
