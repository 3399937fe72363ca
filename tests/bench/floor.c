/*
 * bench-floor: what the kernel alone costs for a broadcast.
 *
 * A broadcast to N WebSocket clients is, at the bottom, N small send()s, one
 * per TCP socket. This program does exactly that and nothing else: no
 * framing, no event loop, no Socket.IO. A receiver process (pinned to
 * --receiver-cpu, one epoll over N loopback connections) reads every socket;
 * the sender (pinned to --sender-cpu) writes one --size byte frame to each of
 * the N sockets, then waits until the receiver reports that the last socket
 * has it, and starts the next round: the same back-to-back pattern as
 * `bench-loadgen --scenario broadcast`. The time from the first send to the
 * last arrival is the floor under any server's "last receiver" latency on
 * this machine, with the same two cores and the same pinning.
 *
 *   bench-floor [--conns N] [--rounds R] [--size B] [--threads K]
 *               [--uring] [--sender-cpu C] [--receiver-cpu C] [--tag T]
 *
 * --threads K shards the sockets over K sender threads (what one event loop
 * per core would do; with --sender-cpu they share that core, with
 * --sender-cpu -1 the kernel places them). --uring queues all sends of a
 * round on one io_uring and submits them with one system call (built when
 * liburing is present).
 *
 * Output: one line "RESULT tag=... scenario=floor server=floor conns=...
 * threads=... mode=write|uring rounds=... rate=... p50_us=... p90_us=... p99_us=...
 * max_us=... send_us=... per_send_ns=... status=ok", then a sentence.
 * Exit status 0, or 1 when a send or the receiver failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_LIBURING
#include <liburing.h>
#endif

typedef struct {
	int conns, rounds, size, threads, uring, sender_cpu, receiver_cpu;
	const char *tag;
} options;

static options g_opt = {1000, 300, 24, 1, 0, 0, 1, "floor"};
static int *g_fds;        /* the sender's N accepted sockets */
static char g_frame[128]; /* what every socket gets, each round */
static pthread_barrier_t g_start, g_end;
static volatile int g_stop; /* read by the helper threads after g_start */
static int g_failed;

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void pin(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		perror("bench-floor: sched_setaffinity");
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* ---- The receiver: one epoll, every socket read, one timestamp per round ---- */

static void receiver(const struct sockaddr_in *addr, uint64_t *arrived, int done_fd)
{
	pin(g_opt.receiver_cpu);
	int n = g_opt.conns;
	int *fds = calloc((size_t)n, sizeof *fds);
	uint32_t *got = calloc((size_t)n, sizeof *got);
	int ep = epoll_create1(0);
	if (!fds || !got || ep < 0)
		die("bench-floor: receiver setup");
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0 || connect(fds[i], (const struct sockaddr *)addr, sizeof *addr) != 0)
			die("bench-floor: connect");
		fcntl(fds[i], F_SETFL, O_NONBLOCK);
		struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e) != 0)
			die("bench-floor: epoll_ctl");
	}
	struct epoll_event ev[512];
	char buf[65536];
	for (int r = 0; r < g_opt.rounds; r++) {
		uint32_t want = (uint32_t)g_opt.size * (uint32_t)(r + 1);
		int complete = 0;
		while (complete < n) {
			int k = epoll_wait(ep, ev, 512, -1);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				die("bench-floor: epoll_wait");
			for (int j = 0; j < k; j++) {
				uint32_t i = ev[j].data.u32;
				ssize_t m = read(fds[i], buf, sizeof buf);
				if (m == 0) /* the sender is gone */
					_exit(1);
				if (m < 0)
					continue;
				int before = got[i] >= want;
				got[i] += (uint32_t)m;
				if (!before && got[i] >= want)
					complete++;
			}
		}
		arrived[r] = now_ns();
		char c = 1;
		if (write(done_fd, &c, 1) != 1)
			_exit(1);
	}
	_exit(0);
}

/* ---- The sender ---- */

static void send_shard(int shard)
{
	for (int i = shard; i < g_opt.conns; i += g_opt.threads)
		if (write(g_fds[i], g_frame, (size_t)g_opt.size) != g_opt.size)
			g_failed = 1;
}

static void *helper(void *arg)
{
	int shard = (int)(intptr_t)arg;
	for (;;) {
		pthread_barrier_wait(&g_start);
		if (g_stop)
			return NULL;
		send_shard(shard);
		pthread_barrier_wait(&g_end);
	}
}

#ifdef HAVE_LIBURING
static struct io_uring g_ring;

static void send_uring(void)
{
	for (int i = 0; i < g_opt.conns; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&g_ring);
		if (!sqe) {
			io_uring_submit(&g_ring);
			sqe = io_uring_get_sqe(&g_ring);
		}
		io_uring_prep_send(sqe, g_fds[i], g_frame, (size_t)g_opt.size, 0);
	}
	io_uring_submit(&g_ring);
	for (int i = 0; i < g_opt.conns; i++) {
		struct io_uring_cqe *cqe;
		if (io_uring_wait_cqe(&g_ring, &cqe) != 0 || cqe->res != g_opt.size)
			g_failed = 1;
		io_uring_cqe_seen(&g_ring, cqe);
	}
}
#endif

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: bench-floor [--conns N] [--rounds R] [--size B] [--threads K] [--uring]\n"
	        "                   [--sender-cpu C] [--receiver-cpu C] [--tag T]\n"
	        "The kernel's own cost of a broadcast: N sends over loopback TCP, one per\n"
	        "socket, until the last receiver has its frame (see the source's header).\n");
}

static int int_arg(int argc, char **argv, int *i, int lo, int hi)
{
	if (*i + 1 >= argc) {
		usage(stderr);
		exit(2);
	}
	char *end;
	long v = strtol(argv[++*i], &end, 10);
	if (*end || v < lo || v > hi) {
		fprintf(stderr, "bench-floor: %s wants a number from %d to %d\n", argv[*i - 1], lo,
		        hi);
		exit(2);
	}
	return (int)v;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--conns"))
			g_opt.conns = int_arg(argc, argv, &i, 1, 1000000);
		else if (!strcmp(a, "--rounds"))
			g_opt.rounds = int_arg(argc, argv, &i, 1, 1000000);
		else if (!strcmp(a, "--size"))
			g_opt.size = int_arg(argc, argv, &i, 2, 125);
		else if (!strcmp(a, "--threads"))
			g_opt.threads = int_arg(argc, argv, &i, 1, 64);
		else if (!strcmp(a, "--sender-cpu"))
			g_opt.sender_cpu = int_arg(argc, argv, &i, -1, 1023);
		else if (!strcmp(a, "--receiver-cpu"))
			g_opt.receiver_cpu = int_arg(argc, argv, &i, -1, 1023);
		else if (!strcmp(a, "--uring"))
			g_opt.uring = 1;
		else if (!strcmp(a, "--tag") && i + 1 < argc)
			g_opt.tag = argv[++i];
		else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "bench-floor: unknown argument %s\n", a);
			usage(stderr);
			return 2;
		}
	}
#ifndef HAVE_LIBURING
	if (g_opt.uring) {
		fprintf(stderr, "bench-floor: built without liburing; --uring is not available\n");
		return 2;
	}
#endif
	if (g_opt.uring && g_opt.threads != 1) {
		fprintf(stderr, "bench-floor: --uring sends from one thread\n");
		return 2;
	}
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if ((rlim_t)g_opt.conns + 64 > rl.rlim_cur) {
		fprintf(stderr,
		        "bench-floor: %d connections need more descriptors than the limit %llu\n",
		        g_opt.conns, (unsigned long long)rl.rlim_cur);
		return 2;
	}
	memset(g_frame, 'x', sizeof g_frame);
	g_frame[0] = (char)0x81; /* a WebSocket text frame header, for the look of it */
	g_frame[1] = (char)(g_opt.size - 2);

	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof addr;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
	    listen(lfd, 4096) != 0 || getsockname(lfd, (struct sockaddr *)&addr, &alen) != 0)
		die("bench-floor: listen");
	uint64_t *arrived = mmap(NULL, sizeof(uint64_t) * (size_t)g_opt.rounds,
	                         PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	int done[2];
	if (arrived == MAP_FAILED || pipe(done) != 0)
		die("bench-floor: setup");
	pid_t child = fork();
	if (child < 0)
		die("bench-floor: fork");
	if (child == 0) {
		close(lfd);
		close(done[0]);
		receiver(&addr, arrived, done[1]);
	}
	close(done[1]);
	pin(g_opt.sender_cpu);
	signal(SIGPIPE, SIG_IGN);
	g_fds = calloc((size_t)g_opt.conns, sizeof *g_fds);
	uint64_t *start = calloc((size_t)g_opt.rounds, sizeof *start);
	uint64_t *lat = calloc((size_t)g_opt.rounds, sizeof *lat);
	if (!g_fds || !start || !lat)
		die("bench-floor: calloc");
	for (int i = 0; i < g_opt.conns; i++) {
		int one = 1;
		g_fds[i] = accept(lfd, NULL, NULL);
		if (g_fds[i] < 0)
			die("bench-floor: accept");
		setsockopt(g_fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
#ifdef HAVE_LIBURING
	if (g_opt.uring && io_uring_queue_init(4096, &g_ring, 0) != 0)
		die("bench-floor: io_uring_queue_init");
#endif
	pthread_t *th = calloc((size_t)g_opt.threads, sizeof *th);
	pthread_barrier_init(&g_start, NULL, (unsigned)g_opt.threads);
	pthread_barrier_init(&g_end, NULL, (unsigned)g_opt.threads);
	for (int t = 1; t < g_opt.threads; t++)
		pthread_create(&th[t], NULL, helper, (void *)(intptr_t)t);
	/* Rest between rounds like a server between broadcasts would not: back
	 * to back, the next as soon as the receiver has the last one. */
	uint64_t send_total = 0, t_begin = now_ns();
	for (int r = 0; r < g_opt.rounds && !g_failed; r++) {
		start[r] = now_ns();
#ifdef HAVE_LIBURING
		if (g_opt.uring)
			send_uring();
		else
#endif
		    if (g_opt.threads == 1)
			send_shard(0);
		else {
			pthread_barrier_wait(&g_start);
			send_shard(0);
			pthread_barrier_wait(&g_end);
		}
		send_total += now_ns() - start[r];
		char c;
		if (read(done[0], &c, 1) != 1) {
			g_failed = 1;
			break;
		}
	}
	if (g_opt.threads > 1) {
		g_stop = 1;
		pthread_barrier_wait(&g_start);
		for (int t = 1; t < g_opt.threads; t++)
			pthread_join(th[t], NULL);
	}
	int status = 0;
	for (int i = 0; i < g_opt.conns; i++)
		close(g_fds[i]);
	waitpid(child, &status, 0);
	free(g_fds);
	free(th);
	if (g_failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("RESULT tag=%s scenario=floor server=floor conns=%d status=fail\n",
		       g_opt.tag, g_opt.conns);
		fprintf(stderr, "bench-floor: a send or the receiver failed\n");
		free(start);
		free(lat);
		return 1;
	}
	int n = g_opt.rounds;
	for (int r = 0; r < n; r++)
		lat[r] = arrived[r] - start[r];
	qsort(lat, (size_t)n, sizeof *lat, cmp_u64);
	double mean_send_us = (double)send_total / n / 1000.0;
	printf("RESULT tag=%s scenario=floor server=floor conns=%d threads=%d mode=%s size=%d "
	       "rounds=%d "
	       "rate=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f send_us=%.1f "
	       "per_send_ns=%.0f status=ok\n",
	       g_opt.tag, g_opt.conns, g_opt.threads, g_opt.uring ? "uring" : "write", g_opt.size,
	       n, n / ((double)(now_ns() - t_begin) / 1e9), lat[n / 2] / 1e3, lat[n * 9 / 10] / 1e3,
	       lat[n * 99 / 100] / 1e3, lat[n - 1] / 1e3, mean_send_us,
	       mean_send_us * 1000.0 / g_opt.conns);
	printf(
	    "%d sends of %d B on loopback TCP (%s, %d thread%s): the last receiver has its frame "
	    "after %.2f ms (p50), %.2f ms (p99); %.2f us per send\n",
	    g_opt.conns, g_opt.size, g_opt.uring ? "io_uring" : "write()", g_opt.threads,
	    g_opt.threads > 1 ? "s" : "", lat[n / 2] / 1e6, lat[n * 99 / 100] / 1e6,
	    mean_send_us / g_opt.conns);
	free(start);
	free(lat);
	return 0;
}
