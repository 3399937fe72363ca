/*
 * base_internal.h: helpers shared between files of engineio/base only.
 */
#ifndef BASE_INTERNAL_H
#define BASE_INTERNAL_H

#include "base.h"

/** base64url (RFC 4648 section 5) without padding. Returns the encoded length. */
size_t base__base64url_encode(const void *in, size_t len, char *out);

#endif
