/*
 * socketio_internal.h: declarations shared between files of the Socket.IO
 * layer only. Nothing above socketio/ includes this file.
 */
#ifndef SOCKETIO_INTERNAL_H
#define SOCKETIO_INTERNAL_H

#include "packet.h"

/* ==== json/packet codec internals (json.c, packet.c, msgpack.c) ======== */

/** Deepest nesting of arrays and objects accepted in a JSON text. */
#define SIO__JSON_MAX_DEPTH 64

/** The kind of a JSON value; 0 stands for "no value". */
typedef enum {
	SIO__JSON_NONE = 0,
	SIO__JSON_OBJECT,
	SIO__JSON_ARRAY,
	SIO__JSON_STRING,
	SIO__JSON_NUMBER,
	SIO__JSON_TRUE,
	SIO__JSON_FALSE,
	SIO__JSON_NULL
} sio__json_kind;

/** 1 for the four bytes JSON counts as whitespace. */
extern const unsigned char sio__json_ws[256];

static inline const char *sio__json_skip_ws(const char *p, const char *end)
{
	/* Most positions hold no whitespace; anything above a space is not. */
	if (p < end && (unsigned char)*p > ' ')
		return p;
	while (p < end && sio__json_ws[(unsigned char)*p])
		p++;
	return p;
}

/**
 * Validates one JSON value that starts exactly at p (no leading
 * whitespace), nested at most max_depth deep (capped at 64). Returns the
 * position just past the value, or NULL when invalid. *kind gets the
 * value's kind; *escaped is set to 1 when the value is a string holding a
 * backslash (left alone otherwise).
 */
const char *sio__json_scan(const char *p, const char *end, unsigned max_depth, int *kind,
                           int *escaped);

/** The result of sio__json_split. Slices point into the scanned text. */
typedef struct {
	int kind;          /* kind of the top value */
	int first_kind;    /* arrays: kind of the first element, NONE when empty */
	int escaped;       /* a top-level string or first element string holds a backslash */
	base_slice first;  /* arrays: first element text (strings: contents, without quotes);
	                      a top-level string: its contents */
	base_slice rest;   /* arrays: the elements after the first, from the first byte of the
	                      second element to the last byte of the last; empty when none */
	base_slice inside; /* arrays: all elements, trimmed the same way; empty when none */
} sio__json_split_t;

/**
 * Validates a complete JSON text (whitespace around the value allowed,
 * nesting at most 64) in one pass, and when it is an array, finds its first
 * element and the rest on the way. Returns the kind of the top value, or -1
 * when the text is not valid JSON.
 */
int sio__json_split(const char *buf, size_t len, sio__json_split_t *s);

/** The length of s once escaped for a JSON string (without the quotes). */
size_t sio__json_escaped_len(const char *s, size_t len);

/**
 * Writes s escaped for a JSON string (without quotes) at w, which has room
 * for sio__json_escaped_len(s, len) bytes. Returns the position after it.
 */
char *sio__json_put_escaped(char *w, const char *s, size_t len);

/**
 * Checks that p->data has the shape p->type requires (see
 * sio_packet_decode) and fills p->event, p->event_escaped and p->args.
 * Returns 0, or -1 with *err set to a static description.
 */
int sio__packet_check_data(sio_packet *p, const char **err);

/**
 * Tells whether the JSON object starting at p (a '{', already validated
 * as part of a text ending at end) is a binary placeholder: an object whose
 * last "_placeholder" member is true. Returns 1 with *num set when it is one
 * with an integral, non-negative "num" below 2^53; 0 when it is not a
 * placeholder; -1 when it is one with a missing or bad "num". *after gets
 * the position just past the object.
 */
int sio__json_placeholder(const char *p, const char *end, const char **after, int64_t *num);

#endif
