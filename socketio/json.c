/*
 * json.c: a validating JSON scanner and the few string helpers the packet
 * codecs need.
 *
 * Packets carry their data as the JSON text that arrived; the server only
 * needs to know that the text is well-formed, what kind of value it holds,
 * and where an event's name and arguments lie. So nothing here builds a
 * document: the scanner walks the bytes once, keeps its nesting in the bits
 * of one 64-bit word (so it needs no stack and no allocation), and answers
 * with positions in the caller's buffer.
 *
 * Bytes of 0x80 and above inside strings are passed through unchecked:
 * JSON.parse in Node sees text whose invalid UTF-8 was already replaced,
 * so it accepts such input too, and our transports validate UTF-8 where
 * the protocol requires it (WebSocket text frames).
 */
#include <stdlib.h>

#include "packet.h"
#include "socketio_internal.h"

const unsigned char sio__json_ws[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

/* Bytes that end a run of plain string bytes: the quote, the backslash and controls. */
static const unsigned char str_stop[256] = {[0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1};

static int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Reads four hex digits at p (which has at least four bytes); -1 when one is not hex. */
static int32_t hex4(const char *p)
{
	int a = hex_val((unsigned char)p[0]), b = hex_val((unsigned char)p[1]);
	int c = hex_val((unsigned char)p[2]), d = hex_val((unsigned char)p[3]);

	if ((a | b | c | d) < 0)
		return -1;
	return (a << 12) | (b << 8) | (c << 4) | d;
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Checks one escape sequence at p (a backslash); returns the position after it, or NULL. */
static const char *scan_escape(const char *p, const char *end)
{
	if (end - p < 2)
		return NULL;
	switch (p[1]) {
	case '"':
	case '\\':
	case '/':
	case 'b':
	case 'f':
	case 'n':
	case 'r':
	case 't':
		return p + 2;
	case 'u':
		if (end - p < 6 || hex4(p + 2) < 0)
			return NULL;
		return p + 6;
	default:
		return NULL;
	}
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/*
 * Nonzero when one of the eight bytes in v is a quote, a backslash or a
 * control character (the classic "has a zero byte" and "has a byte less
 * than n" tests, sharing the final mask since neither 0x22 nor 0x5c has
 * its high bit set). It may misreport which byte, never whether one is.
 */
static inline uint64_t swar_stop(uint64_t v)
{
	uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');

	return ((v - ONES * 0x20) | (q - ONES) | (b - ONES)) & ~v & HIGHS;
}

/*
 * Scans string contents from just after the opening quote. Returns the
 * position of the closing quote, or NULL when the string is invalid or
 * unterminated. Inlined: it is the innermost loop of every packet.
 */
static inline __attribute__((always_inline)) const char *scan_string(const char *p, const char *end,
                                                                     int *escaped)
{
	for (;;) {
		/* Plain runs are the common case: eight bytes per step while they last. */
		while (end - p >= 8) {
			uint64_t v, m;

			memcpy(&v, p, 8);
			m = swar_stop(v);
			if (m != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				/* The lowest flagged byte is always a true one: jump to it. */
				p += __builtin_ctzll(m) / 8;
#endif
				break;
			}
			p += 8;
		}
		while (p < end && !str_stop[(unsigned char)*p])
			p++;
		if (p == end)
			return NULL;
		if (*p == '"')
			return p;
		/* A backslash, or a raw control character, which scan_escape refuses. */
		*escaped = 1;
		p = *p == '\\' ? scan_escape(p, end) : NULL;
		if (p == NULL)
			return NULL;
	}
}

/* Scans a number (RFC 8259 grammar) starting at p; returns the position after it, or NULL. */
static const char *scan_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p == end)
		return NULL;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < end && is_digit(*p))
			p++;
	} else {
		return NULL;
	}
	if (p < end && *p == '.') {
		p++;
		if (p == end || !is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !is_digit(*p))
			return NULL;
		while (p < end && is_digit(*p))
			p++;
	}
	return p;
}

static const char *scan_literal(const char *p, const char *end, const char *lit, size_t n)
{
	if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
		return NULL;
	return p + n;
}

const char *sio__json_scan(const char *p, const char *end, unsigned max_depth, int *kind,
                           int *escaped)
{
	/*
	 * Bit d of objs tells whether the open container at depth d + 1 is an
	 * object; 64 levels fit in one word, which is why the depth is capped.
	 */
	uint64_t objs = 0;
	unsigned depth = 0;
	int top = SIO__JSON_NONE, k, esc = 0, in_obj;

	if (max_depth > SIO__JSON_MAX_DEPTH)
		max_depth = SIO__JSON_MAX_DEPTH;

value:
	if (p == end)
		return NULL;
	switch (*p) {
	case '"':
		p = scan_string(p + 1, end, &esc);
		if (p == NULL)
			return NULL;
		p++;
		if (depth == 0) {
			*kind = SIO__JSON_STRING;
			if (esc)
				*escaped = 1;
			return p;
		}
		break;
	case '{':
	case '[':
		if (depth == max_depth)
			return NULL;
		in_obj = *p == '{';
		if (in_obj)
			objs |= (uint64_t)1 << depth;
		else
			objs &= ~((uint64_t)1 << depth);
		if (depth == 0)
			top = in_obj ? SIO__JSON_OBJECT : SIO__JSON_ARRAY;
		depth++;
		p = sio__json_skip_ws(p + 1, end);
		if (p == end)
			return NULL;
		if (*p == (in_obj ? '}' : ']')) {
			p++;
			depth--;
			goto next;
		}
		if (in_obj)
			goto key;
		goto value;
	case 't':
		p = scan_literal(p, end, "true", 4);
		k = SIO__JSON_TRUE;
		break;
	case 'f':
		p = scan_literal(p, end, "false", 5);
		k = SIO__JSON_FALSE;
		break;
	case 'n':
		p = scan_literal(p, end, "null", 4);
		k = SIO__JSON_NULL;
		break;
	default:
		p = scan_number(p, end);
		k = SIO__JSON_NUMBER;
		break;
	}
	if (p == NULL)
		return NULL;
	if (depth == 0)
		top = k;

next:
	/* A value just ended: close containers or move to the next member. */
	for (;;) {
		if (depth == 0) {
			*kind = top;
			return p;
		}
		p = sio__json_skip_ws(p, end);
		if (p == end)
			return NULL;
		in_obj = (int)((objs >> (depth - 1)) & 1);
		if (*p == ',') {
			p = sio__json_skip_ws(p + 1, end);
			if (in_obj)
				goto key;
			goto value;
		}
		if (*p != (in_obj ? '}' : ']'))
			return NULL;
		p++;
		depth--;
	}

key:
	if (p == end || *p != '"')
		return NULL;
	p = scan_string(p + 1, end, &esc);
	if (p == NULL)
		return NULL;
	p = sio__json_skip_ws(p + 1, end);
	if (p == end || *p != ':')
		return NULL;
	p = sio__json_skip_ws(p + 1, end);
	goto value;
}

/* One element of a top-level array; strings, the usual case, without a call. */
static inline const char *scan_element(const char *p, const char *end, int *kind, int *escaped)
{
	if (p < end && *p == '"') {
		p = scan_string(p + 1, end, escaped);
		*kind = SIO__JSON_STRING;
		return p ? p + 1 : NULL;
	}
	return sio__json_scan(p, end, SIO__JSON_MAX_DEPTH - 1, kind, escaped);
}

int sio__json_split(const char *buf, size_t len, sio__json_split_t *s)
{
	const char *end = buf + len, *p, *q, *last, *rest;
	int kind = SIO__JSON_NONE, esc = 0;

	s->kind = SIO__JSON_NONE;
	s->first_kind = SIO__JSON_NONE;
	s->escaped = 0;
	/* Separate stores: a chained struct assignment reads each one back. */
	s->first = (base_slice){buf, 0};
	s->rest = (base_slice){buf, 0};
	s->inside = (base_slice){buf, 0};
	p = sio__json_skip_ws(buf, end);
	if (p == end)
		return -1;
	if (*p != '[') {
		q = sio__json_scan(p, end, SIO__JSON_MAX_DEPTH, &kind, &esc);
		if (q == NULL || sio__json_skip_ws(q, end) != end)
			return -1;
		if (kind == SIO__JSON_STRING) {
			s->first = (base_slice){p + 1, (size_t)(q - p) - 2};
			s->escaped = esc;
		}
		s->kind = kind;
		return kind;
	}

	/*
	 * The top-level array is walked here rather than in sio__json_scan so
	 * that the first element and the rest are found in the same pass that
	 * validates them.
	 */
	p = sio__json_skip_ws(p + 1, end);
	if (p == end)
		return -1;
	s->inside.base = s->rest.base = p;
	if (*p == ']') {
		last = p;
		goto close;
	}
	q = scan_element(p, end, &kind, &esc);
	if (q == NULL)
		return -1;
	s->first_kind = kind;
	if (kind == SIO__JSON_STRING) {
		s->first = (base_slice){p + 1, (size_t)(q - p) - 2};
		s->escaped = esc;
	} else {
		s->first = (base_slice){p, (size_t)(q - p)};
	}
	last = q;
	rest = q;
	p = sio__json_skip_ws(q, end);
	if (p < end && *p == ',') {
		rest = p = sio__json_skip_ws(p + 1, end);
		for (;;) {
			q = scan_element(p, end, &kind, &esc);
			if (q == NULL)
				return -1;
			last = q;
			p = sio__json_skip_ws(q, end);
			if (p == end || *p != ',')
				break;
			p = sio__json_skip_ws(p + 1, end);
		}
	}
	if (p == end || *p != ']')
		return -1;
	s->rest = (base_slice){rest, (size_t)(last - rest)};
close:
	s->inside.len = (size_t)(last - s->inside.base);
	if (sio__json_skip_ws(p + 1, end) != end)
		return -1;
	s->kind = SIO__JSON_ARRAY;
	return SIO__JSON_ARRAY;
}

int sio_json_validate(const char *buf, size_t len)
{
	const char *end = buf + len, *p;
	int kind, esc = 0;

	p = sio__json_skip_ws(buf, end);
	p = sio__json_scan(p, end, SIO__JSON_MAX_DEPTH, &kind, &esc);
	if (p == NULL || sio__json_skip_ws(p, end) != end)
		return -1;
	return 0;
}

static char *put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | (cp >> 18));
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

ssize_t sio_json_unescape(const char *in, size_t len, char *out)
{
	const char *p = in, *end = in + len, *run;
	char *o = out;
	int32_t cu, lo;
	uint32_t cp;

	while (p < end) {
		run = p;
		while (p < end && !str_stop[(unsigned char)*p])
			p++;
		if (p > run) {
			memmove(o, run, (size_t)(p - run));
			o += p - run;
		}
		if (p == end)
			break;
		if (*p != '\\' || end - p < 2)
			return -1; /* a raw quote or control character, or a lone backslash */
		switch (p[1]) {
		case '"':
		case '\\':
		case '/':
			*o++ = p[1];
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u':
			if (end - p < 6 || (cu = hex4(p + 2)) < 0)
				return -1;
			p += 6;
			cp = (uint32_t)cu;
			if (cu >= 0xd800 && cu <= 0xdbff && end - p >= 6 && p[0] == '\\' &&
			    p[1] == 'u' && (lo = hex4(p + 2)) >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + (((uint32_t)cu - 0xd800) << 10) +
				     ((uint32_t)lo - 0xdc00);
				p += 6;
			} else if (cu >= 0xd800 && cu <= 0xdfff) {
				/* A lone surrogate has no UTF-8 form: U+FFFD, as Node's Buffer writes it. */
				cp = 0xfffd;
			}
			o = put_utf8(o, cp);
			continue;
		default:
			return -1;
		}
		p += 2;
	}
	return o - out;
}

/* The escape of each byte that needs one: 0 for none, 'u' for \u00XX, else the letter. */
static const char esc_letter[256] = {
    [0x00 ... 0x07] = 'u', ['\b'] = 'b', ['\t'] = 't',          ['\n'] = 'n', [0x0b] = 'u',
    ['\f'] = 'f',          ['\r'] = 'r', [0x0e ... 0x1f] = 'u', ['"'] = '"',  ['\\'] = '\\'};

size_t sio__json_escaped_len(const char *s, size_t len)
{
	size_t n = len;

	for (size_t i = 0; i < len; i++) {
		char e = esc_letter[(unsigned char)s[i]];

		if (e != 0)
			n += e == 'u' ? 5 : 1;
	}
	return n;
}

char *sio__json_put_escaped(char *w, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const char *p = s, *end = s + len, *run;

	for (;;) {
		run = p;
		while (p < end && esc_letter[(unsigned char)*p] == 0)
			p++;
		memcpy(w, run, (size_t)(p - run));
		w += p - run;
		if (p == end)
			return w;
		*w++ = '\\';
		*w = esc_letter[(unsigned char)*p];
		if (*w++ == 'u') {
			*w++ = '0';
			*w++ = '0';
			*w++ = hex[(unsigned char)*p >> 4];
			*w++ = hex[*p & 0xf];
		}
		p++;
	}
}

void sio_json_append_string(base_buf *out, const char *s, size_t len)
{
	size_t n;
	char *w;

	/* Six bytes per input byte at most: past that the size would overflow. */
	if (len > (SIZE_MAX - 2) / 6)
		base_oom("sio_json_append_string", SIZE_MAX);
	n = sio__json_escaped_len(s, len);
	base_buf_reserve(out, n + 2);
	w = out->data + out->len;
	*w++ = '"';
	w = sio__json_put_escaped(w, s, len);
	*w = '"';
	out->len += n + 2;
}

/* 1 when the string contents key (escaped or not) spell the NUL-terminated name. */
static int key_is(const char *key, size_t len, int escaped, const char *name)
{
	char tmp[96]; /* room for any escaped spelling of a short name */
	size_t n = strlen(name);
	ssize_t m;

	if (!escaped)
		return len == n && memcmp(key, name, n) == 0;
	if (len > sizeof(tmp) || len < n)
		return 0;
	m = sio_json_unescape(key, len, tmp);
	return m == (ssize_t)n && memcmp(tmp, name, n) == 0;
}

/*
 * Reads a JSON number that must be integral (like the JavaScript value it
 * would parse to: 1, 1.0 and 1e0 all qualify), non-negative and below
 * 2^53. Returns it, or -1.
 */
static int64_t json_index(const char *p, size_t len)
{
	char tmp[64];
	double d;
	char *e;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	d = strtod(tmp, &e);
	if (e != tmp + len || !(d >= 0) || d >= 9007199254740992.0 || d != (double)(int64_t)d)
		return -1;
	return (int64_t)d;
}

int sio__json_placeholder(const char *p, const char *end, const char **after, int64_t *num)
{
	const char *k, *v, *q;
	int is_ph = 0, kind, esc, vesc = 0;
	size_t klen;

	*num = -1;
	p = sio__json_skip_ws(p + 1, end);
	if (p < end && *p == '}') {
		*after = p + 1;
		return 0;
	}
	/* The text was validated: every step below succeeds. */
	for (;;) {
		k = p + 1;
		esc = 0;
		q = scan_string(k, end, &esc);
		klen = (size_t)(q - k);
		v = sio__json_skip_ws(sio__json_skip_ws(q + 1, end) + 1, end);
		p = sio__json_scan(v, end, SIO__JSON_MAX_DEPTH, &kind, &vesc);
		if (p == NULL)
			return -1;
		/* Duplicate keys: the last one wins, as with JSON.parse. */
		if (key_is(k, klen, esc, "_placeholder"))
			is_ph = kind == SIO__JSON_TRUE;
		else if (key_is(k, klen, esc, "num"))
			*num = kind == SIO__JSON_NUMBER ? json_index(v, (size_t)(p - v)) : -1;
		p = sio__json_skip_ws(p, end);
		if (p == end)
			return -1;
		if (*p == '}')
			break;
		p = sio__json_skip_ws(p + 1, end);
	}
	*after = p + 1;
	if (!is_ph)
		return 0;
	return *num >= 0 ? 1 : -1;
}
