/*
 * base.h: the ground floor every layer uses.
 *
 * Growable buffers, slices, request arenas, refcounted shared chunks,
 * intrusive lists, error maps, logging, escaping, base64, SHA-1 and random ids.
 * Nothing here knows about HTTP, Engine.IO or anything above.
 *
 * Out of memory: the tree follows one policy, as h2o and redis do. An
 * allocation that fails logs one line and aborts the process (base_xmalloc
 * and friends); base's containers (base_buf, base_chunk, arenas without a
 * limit) use them and so never fail. Their functions return void, or a value
 * that means something else than "out of memory" (an arena's byte limit).
 * Callers never test for BASE_ENOMEM after a base call. Limits that a peer
 * can reach (payload sizes, queue lengths) are checked before allocating and
 * answered with a protocol error, never with an allocation failure.
 */
#ifndef BASE_H
#define BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define BASE_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define BASE_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define BASE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BASE_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- memory ------------------------------------------------------------ */

/*
 * malloc, calloc, realloc and strdup that never return NULL: on failure they
 * log "out of memory" with the size asked for and abort(). realloc and
 * malloc of 0 bytes return a valid pointer to free.
 */
void *base_xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *base_xcalloc(size_t count, size_t size) __attribute__((malloc, returns_nonnull));
void *base_xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *base_xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *base_xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
/** Logs "out of memory" (what, n bytes) and aborts. */
void base_oom(const char *what, size_t n) __attribute__((noreturn));

/* ---- errors ------------------------------------------------------------ */

#include "errors.h"

typedef enum {
#define BASE_ERR_ENUM(name, val, msg) BASE_E##name = (val),
	BASE_ERRNO_MAP(BASE_ERR_ENUM)
#undef BASE_ERR_ENUM
} base_errno;

/**
 * Returns a static description of any error code of the tree (errors.h):
 * 0 is "success", libuv's codes are uv_strerror's, a layer's its message;
 * "unknown error" otherwise.
 */
const char *base_strerror(int err);

/* ---- slices ------------------------------------------------------------ */

/** A view of bytes owned by someone else. Never NUL-terminated by contract. */
typedef struct {
	const char *base;
	size_t len;
} base_slice;

#define BASE_SLICE_LIT(s) ((base_slice){(s), sizeof(s) - 1})

/** 1 when the slice equals the NUL-terminated string s. */
int base_slice_eq(base_slice a, const char *s);
/** 1 when the slice equals s ignoring ASCII case. */
int base_slice_caseeq(base_slice a, const char *s);

/* ---- growable buffer --------------------------------------------------- */

/** A heap buffer that grows on append. Zero-initialise, or use BASE_BUF_INIT. */
typedef struct {
	char *data;
	size_t len;
	size_t cap;
} base_buf;

#define BASE_BUF_INIT      \
	{                  \
		NULL, 0, 0 \
	}

/*
 * A base_buf never fails: growing past memory aborts (see "Out of memory"
 * above), so none of these return anything.
 */
/** Makes room for at least extra more bytes. */
void base_buf_reserve(base_buf *b, size_t extra);
/** Appends len bytes. */
void base_buf_append(base_buf *b, const void *data, size_t len);
/** Appends a NUL-terminated string (without its NUL). */
void base_buf_append_str(base_buf *b, const char *s);
/** Appends printf-formatted text. */
void base_buf_printf(base_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Drops the first n bytes, keeping the rest. */
void base_buf_consume(base_buf *b, size_t n);
/** Frees the storage and resets to empty. */
void base_buf_free(base_buf *b);

/* ---- arenas ------------------------------------------------------------ */

/*
 * A bump allocator for memory that lives exactly as long as one request.
 * Allocations are never freed one by one; base_arena_reset releases all.
 */
typedef struct base_arena_block base_arena_block;
typedef struct {
	base_arena_block *head;
	size_t used;  /* bytes used in head */
	size_t total; /* bytes allocated over all blocks */
	size_t limit; /* 0 = unlimited; allocations past it fail */
} base_arena;

void base_arena_init(base_arena *a, size_t limit);
/** Returns 16-byte aligned memory, or NULL when past the limit (only then). */
void *base_arena_alloc(base_arena *a, size_t n);
/** Copies len bytes into the arena and NUL-terminates them; NULL past the limit. */
char *base_arena_strndup(base_arena *a, const char *s, size_t len);
/** Frees every block. The arena can be used again afterwards. */
void base_arena_reset(base_arena *a);

/* ---- refcounted shared chunks ------------------------------------------ */

/*
 * An immutable byte chunk shared by several owners, such as one encoded
 * broadcast sitting in many write queues. Created with one reference.
 */
typedef struct base_chunk {
	uint32_t refs;
	uint32_t flags; /* free for the creator's use */
	size_t len;
	char data[];
} base_chunk;

/** Allocates a chunk of len bytes (contents uninitialised), refs = 1. Never NULL. */
base_chunk *base_chunk_new(size_t len) __attribute__((returns_nonnull));
/** Allocates a chunk holding a copy of data. Never NULL. */
base_chunk *base_chunk_from(const void *data, size_t len) __attribute__((returns_nonnull));
static inline base_chunk *base_chunk_ref(base_chunk *c)
{
	c->refs++;
	return c;
}
/** Drops one reference; the last one frees the chunk. NULL is allowed. */
void base_chunk_unref(base_chunk *c);

/* ---- intrusive doubly linked list (circular, with a head node) -------- */

typedef struct base_list {
	struct base_list *prev, *next;
} base_list;

static inline void base_list_init(base_list *h)
{
	h->prev = h->next = h;
}
static inline int base_list_empty(const base_list *h)
{
	return h->next == h;
}
static inline void base_list_insert_tail(base_list *h, base_list *n)
{
	n->next = h;
	n->prev = h->prev;
	h->prev->next = n;
	h->prev = n;
}
static inline void base_list_remove(base_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
#define base_list_foreach_safe(pos, tmp, head)                           \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
	     (pos) = (tmp), (tmp) = (pos)->next)

/* ---- logging ----------------------------------------------------------- */

typedef enum {
	BASE_LOG_DEBUG = 0,
	BASE_LOG_INFO,
	BASE_LOG_WARN,
	BASE_LOG_ERROR,
	BASE_LOG_OFF
} base_log_level;

/** Sets the lowest level written (default INFO; SPACES_LOG=debug|info|warn|error|off). */
void base_log_set_level(base_log_level lvl);
base_log_level base_log_get_level(void);
/** Parses "debug", "info", "warn", "error", "off"; returns -1 when unknown. */
int base_log_parse_level(const char *s);
/** Writes one line to stderr: time, level, component, message. */
void base_log(base_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define BASE_LOGD(comp, ...)                                         \
	do {                                                         \
		if (base_log_get_level() <= BASE_LOG_DEBUG)          \
			base_log(BASE_LOG_DEBUG, comp, __VA_ARGS__); \
	} while (0)
#define BASE_LOGI(comp, ...) base_log(BASE_LOG_INFO, comp, __VA_ARGS__)
#define BASE_LOGW(comp, ...) base_log(BASE_LOG_WARN, comp, __VA_ARGS__)
#define BASE_LOGE(comp, ...) base_log(BASE_LOG_ERROR, comp, __VA_ARGS__)

/* ---- escaping and encodings ------------------------------------------- */

/** Appends s with & < > " ' escaped for HTML text and attributes. */
void base_html_escape(base_buf *out, const char *s, size_t len);
/**
 * Decodes %XX and '+' (as space when plus_is_space) from a URL component.
 * Writes at most len bytes into out (which may equal in). Returns the decoded
 * length, or -1 on a malformed escape.
 */
ssize_t base_url_decode(const char *in, size_t len, char *out, int plus_is_space);
/**
 * Finds key in a query string "a=1&b=2" and returns its raw (undecoded) value.
 * Returns 1 when found (value may be empty), 0 when absent.
 */
int base_query_get(base_slice query, const char *key, base_slice *value);

/** Standard base64 (with padding). Returns the encoded length. */
size_t base_base64_encoded_len(size_t len);
size_t base_base64_encode(const void *in, size_t len, char *out);
/** Decodes standard base64. Returns the decoded length, or -1 when invalid. */
ssize_t base_base64_decode(const char *in, size_t len, void *out);

#define BASE_SHA1_LEN 20
/** SHA-1 of len bytes (FIPS 180-4): the WebSocket handshake's accept key, nothing secret. */
void base_sha1(const void *data, size_t len, uint8_t out[BASE_SHA1_LEN]);

/** Fills buf with n cryptographically random bytes (getrandom). */
void base_random_bytes(void *buf, size_t n);
/**
 * Writes a random id of n_bytes random bytes as base64url without padding
 * into out (which needs base_base64_encoded_len(n_bytes) + 1 bytes), NUL-terminated.
 */
void base_random_id(char *out, size_t n_bytes);
/** Writes a random RFC 4122 version 4 UUID (36 chars + NUL). */
void base_uuid4(char out[37]);

/* ---- UTF-8 ------------------------------------------------------------- */

/**
 * Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 * Start with *state = 0. Returns 0 while valid, -1 once invalid. After the last
 * piece, *state == 0 means the text ended on a character boundary.
 */
int base_utf8_validate(uint32_t *state, const unsigned char *s, size_t len);

/* ---- time -------------------------------------------------------------- */

/** Milliseconds from a monotonic clock. */
uint64_t base_now_ms(void);

/** mkdir -p: creates path and its missing parents with mode (existing ones are
 * fine). Returns 0, or -1 with errno set. Blocking: for start-up. */
int base_mkdirs(const char *path, unsigned mode);

#endif
