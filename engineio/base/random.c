/*
 * random.c: random bytes from the kernel, ids and UUIDs.
 *
 * Ids and UUIDs are made often (one per request submitted, per session,
 * per connection): their bytes come from a pool of kernel bytes, refilled
 * with one getrandom(2) call per POOL_BYTES instead of one per id. Bytes
 * handed out are wiped from the pool. The pool lives in a page the kernel
 * wipes in a forked child (MADV_WIPEONFORK), so a child never hands out
 * the parent's next ids; without that (kernels before 4.14) every id asks
 * the kernel.
 */
#include "base_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
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

#define POOL_PAGE 4096
#define POOL_BYTES (POOL_PAGE - 64)

typedef struct {
	size_t left; /* 0 in a fresh page, and in a child's wiped copy */
	unsigned char bytes[POOL_BYTES];
} rnd_pool;

static rnd_pool *pool;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static void pool_init(void)
{
#ifdef MADV_WIPEONFORK
	void *p = mmap(NULL, POOL_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	if (madvise(p, POOL_PAGE, MADV_WIPEONFORK) != 0) {
		munmap(p, POOL_PAGE);
		return;
	}
	pool = p;
#endif
}

/* n random bytes for an id (n <= 64), from the pool when there is one. */
static void id_bytes(unsigned char *out, size_t n)
{
	pthread_once(&pool_once, pool_init);
	if (pool == NULL || n > 64) {
		base_random_bytes(out, n);
		return;
	}
	pthread_mutex_lock(&pool_lock);
	if (pool->left < n) {
		base_random_bytes(pool->bytes, POOL_BYTES);
		pool->left = POOL_BYTES;
	}
	unsigned char *src = pool->bytes + (POOL_BYTES - pool->left);
	memcpy(out, src, n);
	explicit_bzero(src, n);
	pool->left -= n;
	pthread_mutex_unlock(&pool_lock);
}

void base_random_id(char *out, size_t n_bytes)
{
	unsigned char tmp[48]; /* a multiple of 3, so the pieces join without padding */
	size_t o = 0;

	while (n_bytes > 0) {
		size_t k = n_bytes < sizeof(tmp) ? n_bytes : sizeof(tmp);

		id_bytes(tmp, k);
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

	id_bytes(u, sizeof(u));
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
