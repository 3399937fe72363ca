/*
 * error.c: one strerror for every layer's error codes (errors.h).
 */
#include "base.h"

#include <uv.h>

typedef struct {
	int code;
	const char *msg;
} err_msg;

#define ERR_ROW(name, val, msg) {(val), (msg)},
static const err_msg base_msgs[] = {BASE_ERRNO_MAP(ERR_ROW)};
static const err_msg http_msgs[] = {HTTP_ERROR_MAP(ERR_ROW)};
static const err_msg sio_msgs[] = {SIO_ERRNO_MAP(ERR_ROW)};
static const err_msg db_msgs[] = {DB_ERRNO_MAP(ERR_ROW)};
#undef ERR_ROW

/* The layers' tables by range: (BASE_ERR_BASE - first) / BASE_ERR_RANGE. */
static const struct {
	const err_msg *msgs;
	size_t n;
} tables[] = {
    {base_msgs, BASE_ARRAY_SIZE(base_msgs)}, /* BASE_ERR_BASE */
    {http_msgs, BASE_ARRAY_SIZE(http_msgs)}, /* BASE_ERR_HTTP */
    {NULL, 0},                               /* BASE_ERR_EIO */
    {sio_msgs, BASE_ARRAY_SIZE(sio_msgs)},   /* BASE_ERR_SIO */
    {db_msgs, BASE_ARRAY_SIZE(db_msgs)},     /* BASE_ERR_DB */
};

const char *base_strerror(int err)
{
	size_t slot;

	if (err == 0)
		return "success";
	if (err < 0 && err >= UV_EOF) /* libuv's codes end at UV__EOF, -4095 */
		return uv_strerror(err);
	if (err >= BASE_ERR_BASE)
		return "unknown error";
	slot = (size_t)(BASE_ERR_BASE - err) / BASE_ERR_RANGE;
	for (size_t i = 0; slot < BASE_ARRAY_SIZE(tables) && i < tables[slot].n; i++)
		if (tables[slot].msgs[i].code == err)
			return tables[slot].msgs[i].msg;
	return "unknown error";
}
