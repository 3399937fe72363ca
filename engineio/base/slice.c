/*
 * slice.c: comparisons of borrowed byte ranges against C strings.
 */
#include "base.h"

int base_slice_eq(base_slice a, const char *s)
{
	size_t n = strlen(s);

	return a.len == n && (n == 0 || memcmp(a.base, s, n) == 0);
}

static unsigned char ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

int base_slice_caseeq(base_slice a, const char *s)
{
	size_t n = strlen(s);

	if (a.len != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (ascii_lower((unsigned char)a.base[i]) != ascii_lower((unsigned char)s[i]))
			return 0;
	}
	return 1;
}
