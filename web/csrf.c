/*
 * csrf.c: cross-site request forgery checks.
 *
 * Two layers. Browsers say where a request comes from (Origin on every POST,
 * Sec-Fetch-Site in current ones): a state-changing request that another
 * site made is refused outright. And our own forms carry a per-session
 * token that a page on another site cannot read. A request with neither
 * header did not come from a browser page (curl, scripts with
 * python-requests): it cannot be a forgery riding on a victim's cookies, so
 * it is let through, as the old clients need.
 */
#include <sodium.h>

#include "web_internal.h"

/* The authority (host[:port]) of an origin "scheme://authority", lowercase-compared later. */
static int origin_authority(base_slice origin, base_slice *scheme, base_slice *auth)
{
	const char *p = origin.base, *end = origin.base + origin.len;
	const char *sep = NULL;

	for (const char *q = p; q + 2 < end; q++) {
		if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
			sep = q;
			break;
		}
	}
	if (!sep || sep == p)
		return -1;
	*scheme = (base_slice){p, (size_t)(sep - p)};
	const char *a = sep + 3;
	const char *ae = a;
	while (ae < end && *ae != '/')
		ae++;
	/* An origin has no path; tolerate a trailing '/' from configuration only. */
	if (ae < end && !(ae + 1 == end))
		return -1;
	if (ae == a)
		return -1;
	*auth = (base_slice){a, (size_t)(ae - a)};
	return 0;
}

/* Drops ":80" for http and ":443" for https, the ports a browser leaves out. */
static base_slice strip_default_port(base_slice scheme, base_slice auth)
{
	if (base_slice_caseeq(scheme, "http") && auth.len > 3 &&
	    memcmp(auth.base + auth.len - 3, ":80", 3) == 0)
		auth.len -= 3;
	else if (base_slice_caseeq(scheme, "https") && auth.len > 4 &&
	         memcmp(auth.base + auth.len - 4, ":443", 4) == 0)
		auth.len -= 4;
	return auth;
}

static int slice_caseeq2(base_slice a, base_slice b)
{
	if (a.len != b.len)
		return 0;
	for (size_t i = 0; i < a.len; i++) {
		unsigned char x = (unsigned char)a.base[i], y = (unsigned char)b.base[i];

		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 32);
		if (x != y)
			return 0;
	}
	return 1;
}

int web_csrf_origin_ok(const base_slice *origin, const base_slice *fetch_site,
                       const base_slice *host, const char *public_origin)
{
	if (fetch_site && !base_slice_caseeq(*fetch_site, "same-origin") &&
	    !base_slice_caseeq(*fetch_site, "none"))
		return 0;
	if (!origin)
		return 1;

	base_slice scheme, auth;
	if (origin_authority(*origin, &scheme, &auth))
		return 0; /* "null" (sandboxed or privacy-sensitive contexts), or garbage */
	auth = strip_default_port(scheme, auth);
	if (host) {
		/* Host carries no scheme: compare with the default port of the origin's. */
		base_slice h = strip_default_port(scheme, *host);

		if (slice_caseeq2(auth, h))
			return 1;
	}
	if (public_origin && *public_origin) {
		base_slice ps, pa;
		base_slice po = {public_origin, strlen(public_origin)};

		if (origin_authority(po, &ps, &pa) == 0 && slice_caseeq2(ps, scheme) &&
		    slice_caseeq2(strip_default_port(ps, pa), auth))
			return 1;
	}
	return 0;
}

int web_csrf_from_browser(const base_slice *origin, const base_slice *fetch_site)
{
	return origin != NULL || fetch_site != NULL;
}

int web_csrf_token_ok(const char *expected, const char *given)
{
	size_t n;

	if (!expected || !given || !*expected)
		return 0;
	n = strlen(expected);
	if (strlen(given) != n)
		return 0;
	return sodium_memcmp(expected, given, n) == 0;
}
