/*
 * loadgen_stats.c: the latency histogram and what bench-loadgen reads about
 * processes (RSS, CPU time, descriptor limit).
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "loadgen.h"

void lg_hist_init(lg_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

/*
 * Values below 2 * SUB land in their own bucket. Above, a value whose top bit
 * is bit m keeps its 7 top bits: bucket (m - 6) * SUB + (v >> (m - 6)), where
 * v >> (m - 6) lies in [SUB, 2 * SUB).
 */
static unsigned hist_index(uint64_t v)
{
	if (v < 2 * LG_HIST_SUB)
		return (unsigned)v;
	unsigned m = 63u - (unsigned)__builtin_clzll(v);
	unsigned s = m - 6;
	unsigned i = s * LG_HIST_SUB + (unsigned)(v >> s);
	return i < LG_HIST_BUCKETS ? i : LG_HIST_BUCKETS - 1;
}

/* The largest value that falls in bucket i. */
static uint64_t hist_upper(unsigned i)
{
	if (i < 2 * LG_HIST_SUB)
		return i;
	unsigned s = i / LG_HIST_SUB - 1;
	uint64_t mant = i % LG_HIST_SUB + LG_HIST_SUB;
	return ((mant + 1) << s) - 1;
}

void lg_hist_record(lg_hist *h, uint64_t v)
{
	h->n[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

uint64_t lg_hist_quantile(const lg_hist *h, double q)
{
	if (h->count == 0)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
	if (rank < 1)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	uint64_t seen = 0;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= rank) {
			uint64_t u = hist_upper(i);
			return u > h->max ? h->max : u;
		}
	}
	return h->max;
}

int lg_hist_dump(const lg_hist *h, const char *path, const char *label)
{
	FILE *f = fopen(path, "a");
	if (!f)
		return -1;
	fprintf(f, "# %s\n# percentile inverse_tail latency_us\n", label);
	uint64_t seen = 0;
	for (unsigned i = 0; i < LG_HIST_BUCKETS && h->count; i++) {
		if (!h->n[i])
			continue;
		seen += h->n[i];
		double p = (double)seen / (double)h->count;
		uint64_t u = hist_upper(i);
		if (u > h->max)
			u = h->max;
		/* The last point would be at infinity on the inverse-tail axis. */
		double inv = p < 1.0 ? 1.0 / (1.0 - p) : (double)h->count;
		fprintf(f, "%.7f %.3f %.3f\n", p * 100.0, inv, (double)u / 1000.0);
	}
	fprintf(f, "\n\n");
	return fclose(f) == 0 ? 0 : -1;
}

long lg_proc_rss_kb(int pid)
{
	char path[64], line[256];
	long kb = -1;
	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "VmRSS:", 6) == 0) {
			if (sscanf(line + 6, "%ld", &kb) != 1)
				kb = -1;
			break;
		}
	}
	fclose(f);
	return kb;
}

double lg_cpu_seconds(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

uint64_t lg_raise_nofile(uint64_t want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur >= want)
		return rl.rlim_cur;
	if (rl.rlim_max < want) {
		/* Only root may raise the hard limit; nr_open caps it. */
		unsigned long nr_open = 1048576;
		FILE *f = fopen("/proc/sys/fs/nr_open", "r");
		if (f) {
			if (fscanf(f, "%lu", &nr_open) != 1)
				nr_open = 1048576;
			fclose(f);
		}
		struct rlimit hard = {want, want};
		if (want > nr_open)
			hard.rlim_cur = hard.rlim_max = nr_open;
		if (setrlimit(RLIMIT_NOFILE, &hard) == 0)
			return hard.rlim_cur;
	}
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur;
}

double lg_proc_cpu_seconds(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The command name may hold spaces: fields count from its closing ')'. */
	char *p = strrchr(buf, ')');
	unsigned long utime, stime;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
	                 &stime) != 2)
		return -1;
	return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}
