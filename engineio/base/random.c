/*
 * random.c: random bytes from the kernel, ids and UUIDs.
 */
#include "base_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <unistd.h>

/*
 * Falls back to /dev/urandom only if getrandom(2) is missing (old kernels or
 * seccomp filters). Without any source of randomness session ids would be
 * guessable, so that is fatal rather than an error code.
 */
static void urandom_fill(unsigned char *p, size_t n)
{
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		goto fail;
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			goto fail;
		}
		p += r;
		n -= (size_t)r;
	}
	close(fd);
	return;
fail:
	fprintf(stderr, "base_random_bytes: no source of randomness\n");
	abort();
}

void base_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	/* getrandom may return fewer bytes than asked for large requests or on a signal. */
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			urandom_fill(p, n);
			return;
		}
		p += r;
		n -= (size_t)r;
	}
}

void base_random_id(char *out, size_t n_bytes)
{
	unsigned char tmp[48]; /* a multiple of 3, so the pieces join without padding */
	size_t o = 0;

	while (n_bytes > 0) {
		size_t k = n_bytes < sizeof(tmp) ? n_bytes : sizeof(tmp);

		base_random_bytes(tmp, k);
		o += base__base64url_encode(tmp, k, out + o);
		n_bytes -= k;
	}
	out[o] = '\0';
}

void base_uuid4(char out[37])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char u[16];
	size_t o = 0;

	base_random_bytes(u, sizeof(u));
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40); /* version 4 */
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80); /* variant 10xx */
	for (size_t i = 0; i < sizeof(u); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u[i] >> 4];
		out[o++] = hex[u[i] & 15];
	}
	out[o] = '\0';
}
