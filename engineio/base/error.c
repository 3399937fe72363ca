/*
 * error.c: names for the base error codes.
 */
#include "base.h"

const char *base_strerror(int err)
{
	switch (err) {
#define BASE_ERR_CASE(name, val, msg) \
	case (val):                   \
		return (msg);
		BASE_ERRNO_MAP(BASE_ERR_CASE)
#undef BASE_ERR_CASE
	default:
		return "unknown error";
	}
}
