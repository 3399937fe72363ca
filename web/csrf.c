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

/* 1 when origin is one of the comma-separated list's origins (scheme and authority). */
static int origin_listed(base_slice origin, const char *list)
{
	base_slice scheme, auth;

	if (!list || origin_authority(origin, &scheme, &auth))
		return 0;
	auth = strip_default_port(scheme, auth);
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		base_slice item = {p, n}, ls, la;

		while (item.len && (item.base[0] == ' ')) {
			item.base++;
			item.len--;
		}
		while (item.len && item.base[item.len - 1] == ' ')
			item.len--;
		if (origin_authority(item, &ls, &la) == 0 && slice_caseeq2(ls, scheme) &&
		    slice_caseeq2(strip_default_port(ls, la), auth))
			return 1;
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

int web_browser_origin_ok(const base_slice *origin, const base_slice *fetch_site,
                          const base_slice *host, void *ud)
{
	const web_options *o = ud;

	if (origin && o && origin_listed(*origin, o->allowed_origins))
		return 1;
	return web_csrf_origin_ok(origin, fetch_site, host, o ? o->public_url : NULL);
}

int web_origin_listed(const base_slice *origin, void *ud)
{
	const web_options *o = ud;

	return origin && o && origin_listed(*origin, o->allowed_origins);
}

int web_origins_check(const char *list)
{
	if (!list || !*list)
		return -1;
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		base_slice item = {p, n}, ls, la;

		if (origin_authority(item, &ls, &la) ||
		    !(base_slice_caseeq(ls, "http") || base_slice_caseeq(ls, "https")))
			return -1;
		for (size_t i = 0; i < la.len; i++) {
			unsigned char c = (unsigned char)la.base[i];

			if (c <= ' ' || c >= 0x7f || c == '/' || c == '@')
				return -1;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}
