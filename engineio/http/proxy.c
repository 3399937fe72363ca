/*
 * Trusted reverse proxies and X-Forwarded-For.
 *
 * Behind nginx every TCP peer is nginx itself. When the peer is a proxy the
 * operator trusts, the client is the rightmost X-Forwarded-For address that
 * is not a trusted proxy too (each proxy appends the address it got the
 * request from, so everything left of the first untrusted hop is whatever
 * the client chose to send and means nothing).
 */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "http_internal.h"

/* One "address" or "address/bits" of the list into net. 0 or -1. */
static int parse_net(const char *s, size_t len, http_proxy_net *net)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *slash;
	long bits = -1;

	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	slash = strchr(text, '/');
	if (slash != NULL) {
		const char *d = slash + 1;

		if (*d == '\0')
			return -1;
		bits = 0;
		for (; *d != '\0'; d++) {
			if (*d < '0' || *d > '9' || bits > 128)
				return -1;
			bits = bits * 10 + (*d - '0');
		}
		text[slash - text] = '\0';
	}
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, text, net->addr) == 1) {
		net->family = AF_INET;
		if (bits > 32)
			return -1;
		net->bits = (uint8_t)(bits < 0 ? 32 : bits);
	} else if (inet_pton(AF_INET6, text, net->addr) == 1) {
		net->family = AF_INET6;
		if (bits > 128)
			return -1;
		net->bits = (uint8_t)(bits < 0 ? 128 : bits);
	} else {
		return -1;
	}
	return 0;
}

int http__proxy_parse(const char *list, http_proxy_net *nets, size_t max, size_t *n)
{
	const char *p = list;

	*n = 0;
	if (list == NULL)
		return 0;
	while (*p != '\0') {
		const char *end;
		size_t len;

		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		end = p;
		while (*end != '\0' && *end != ',' && *end != ' ')
			end++;
		len = (size_t)(end - p);
		if (*n == max || parse_net(p, len, &nets[*n]) != 0)
			return BASE_EINVAL;
		(*n)++;
		p = end;
	}
	return 0;
}

int http__proxy_match(const http_proxy_net *nets, size_t n, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < n; i++) {
		const http_proxy_net *net = &nets[i];
		unsigned full = net->bits / 8u, rest = net->bits % 8u;

		if (net->family != family)
			continue;
		if (memcmp(net->addr, addr, full) != 0)
			continue;
		if (rest != 0) {
			uint8_t mask = (uint8_t)(0xffu << (8u - rest));

			if ((net->addr[full] & mask) != (addr[full] & mask))
				continue;
		}
		return 1;
	}
	return 0;
}

/*
 * Parses one X-Forwarded-For entry (an address, maybe with spaces around it,
 * maybe "[v6]" or "v4:port" as some proxies write). 0 or -1.
 */
static int parse_hop(const char *s, size_t len, int *family, uint8_t addr[16])
{
	char text[INET6_ADDRSTRLEN + 1];
	const char *colon;

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len > 2 && s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (close == NULL)
			return -1;
		len = (size_t)(close - s - 1);
		s++;
	}
	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	if (inet_pton(AF_INET6, text, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	colon = strchr(text, ':');
	if (colon != NULL && strchr(colon + 1, ':') == NULL)
		text[colon - text] = '\0'; /* "1.2.3.4:5678" */
	if (inet_pton(AF_INET, text, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	return -1;
}

void http__forwarded_client(const http_proxy_net *nets, size_t n, const http_header *headers,
                            size_t n_headers, char *out, size_t out_size)
{
	/* Right to left over the headers, and over the entries within each. */
	for (size_t h = n_headers; h-- > 0;) {
		const char *v, *end;

		if (!base_slice_caseeq(headers[h].name, "X-Forwarded-For"))
			continue;
		v = headers[h].value.base;
		end = v + headers[h].value.len;
		while (end > v) {
			const char *start = end;
			uint8_t addr[16];
			int family;

			while (start > v && start[-1] != ',')
				start--;
			if (parse_hop(start, (size_t)(end - start), &family, addr) != 0)
				return; /* garbage: the nearest trusted hop stays the answer */
			inet_ntop(family, addr, out, (socklen_t)out_size);
			if (!http__proxy_match(nets, n, family, addr))
				return; /* the client */
			end = start > v ? start - 1 : v;
		}
	}
}

int http_server_trust_proxies(http_server *s, const char *list)
{
	http_proxy_net nets[HTTP_MAX_PROXIES];
	size_t n;

	if (http__proxy_parse(list, nets, HTTP_MAX_PROXIES, &n) != 0)
		return BASE_EINVAL;
	memcpy(s->proxies, nets, n * sizeof(nets[0]));
	s->n_proxies = n;
	return 0;
}
