/*
 * response.c: answering a request, status texts, error names.
 *
 * The head is built in a stack buffer and queued with the body in one
 * piece of output; a large body with an empty queue is written straight
 * from the caller's memory (see http__out_write).
 */
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>

const char *http_status_text(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 406:
		return "Not Acceptable";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 416:
		return "Range Not Satisfiable";
	case 422:
		return "Unprocessable Entity";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

static char *put_str(char *p, const char *s)
{
	return put(p, s, strlen(s));
}

/* On every answer: a browser must never guess a type other than the one given. */
#define NOSNIFF "X-Content-Type-Options: nosniff\r\n"

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/*
 * Builds the head and queues it with the body parts. The body's length is
 * theirs, or *declared when given (a body that follows later). On failure
 * the request is ended; on success it is not. *keep_out: whether the
 * connection may carry another request after this one.
 */
static int respond_begin(http_request *req, int status, const char *ctype, const char *extra,
                         const base_slice *parts, size_t n_parts, const uint64_t *declared,
                         int keep_alive, int *keep_out)
{
	http_rx *rx = BASE_CONTAINER_OF(req, http_rx, req);
	http_conn *c = rx->conn;
	const char *text;
	char stack[512], *head, *p;
	uint64_t body_len = 0;
	size_t cap;
	int has_len, no_body, rc;

	/* Already ended (or being aborted): nothing to answer. */
	if (c->mode != HTTP_MODE_HTTP || c->u.rx != rx)
		return BASE_ECLOSED;
	if (c->flags & (HTTP_F_CLOSED | HTTP_F_DRAINING)) {
		http__request_end(c, 0);
		return BASE_ECLOSED;
	}
	if (status < 100 || status > 999)
		status = 500;
	text = http_status_text(status);
	for (size_t i = 0; i < n_parts; i++)
		body_len += parts[i].len;
	if (declared != NULL)
		body_len = *declared;
	has_len = status >= 200 && status != 204 && status != 304;
	no_body = !has_len || req->method == HTTP_M_HEAD;
	keep_alive = keep_alive && !c->srv->closing;

	http__count_status(rx, status);
	if (c->srv->obs.on_response)
		c->srv->obs.on_response(req, status, no_body ? 0 : body_len, c->srv->obs.ud);
	cap = 9 + 3 + 1 + strlen(text) + 2 + (ctype ? 14 + strlen(ctype) + 2 : 0) + 16 + 20 + 2 +
	      24 + sizeof(NOSNIFF) + (extra ? strlen(extra) : 0) + 2 + 16 + 12 + 21 + 2;
	head = cap <= sizeof(stack) ? stack : malloc(cap);
	if (head == NULL) {
		http__request_end(c, 0);
		return BASE_ENOMEM;
	}
	p = put(head, "HTTP/1.1 ", 9);
	p = put_u64(p, (uint64_t)status);
	*p++ = ' ';
	p = put_str(p, text);
	p = put(p, "\r\n", 2);
	if (ctype != NULL) {
		p = put(p, "Content-Type: ", 14);
		p = put_str(p, ctype);
		p = put(p, "\r\n", 2);
	}
	if (has_len) {
		p = put(p, "Content-Length: ", 16);
		p = put_u64(p, body_len);
		p = put(p, "\r\n", 2);
	}
	p = keep_alive ? put(p, "Connection: keep-alive\r\n", 24)
	               : put(p, "Connection: close\r\n", 19);
	p = put(p, NOSNIFF, sizeof(NOSNIFF) - 1);
	if (c->srv->obs.send_request_id && req->id != 0) {
		p = put(p, "X-Request-Id: ", 14);
		p = put_str(p, c->srv->id_prefix);
		*p++ = '-';
		p = put_u64(p, req->id);
		p = put(p, "\r\n", 2);
	}
	if (extra != NULL)
		p = put_str(p, extra);
	p = put(p, "\r\n", 2);

	rc = http__out_write(c, head, (size_t)(p - head), no_body ? NULL : parts,
	                     no_body ? 0 : n_parts);
	if (head != stack)
		free(head);
	if (rc != 0)
		http__request_end(c, 0);
	*keep_out = keep_alive;
	return rc;
}

void http__count_status(http_rx *rx, int status)
{
	http_server *s = rx->conn->srv;
	unsigned k = (unsigned)status / 100;

	if (k > 5)
		k = 0;
	if (rx->route >= 0 && (size_t)rx->route < s->n_routes)
		s->routes[rx->route].by_class[k]++;
	else
		s->stats.unrouted[k]++;
}

static int respond(http_request *req, int status, const char *ctype, const char *extra,
                   const base_slice *parts, size_t n_parts, int keep_alive)
{
	http_conn *c = BASE_CONTAINER_OF(req, http_rx, req)->conn;
	int rc =
	    respond_begin(req, status, ctype, extra, parts, n_parts, NULL, keep_alive, &keep_alive);

	if (rc == 0)
		http__request_end(c, keep_alive);
	return rc;
}

int http__respond_head(http_request *req, int status, const char *ctype, const char *extra,
                       uint64_t body_len, int *keep_out)
{
	return respond_begin(req, status, ctype, extra, NULL, 0, &body_len, req->keep_alive,
	                     keep_out);
}

int http_respond_parts(http_request *req, int status, const char *content_type,
                       const char *extra_headers, const base_slice *parts, size_t n_parts)
{
	return respond(req, status, content_type, extra_headers, parts, n_parts, req->keep_alive);
}

int http_respond(http_request *req, int status, const char *content_type, const char *extra_headers,
                 const void *body, size_t len)
{
	base_slice part = {body, len};

	return respond(req, status, content_type, extra_headers, &part, len > 0 ? 1 : 0,
	               req->keep_alive);
}

void http_respond_and_close(http_request *req, int status, const char *content_type,
                            const void *body, size_t len)
{
	base_slice part = {body, len};

	respond(req, status, content_type, NULL, &part, len > 0 ? 1 : 0, 0);
}
