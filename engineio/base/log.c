/*
 * log.c: one line per call to stderr, e.g.
 *
 *   2026-11-22T02:05:39.123Z INFO  [http] listening on 0.0.0.0:3000
 *
 * The line is built in a stack buffer and written with a single write(2), so
 * lines from several processes sharing stderr do not interleave. Control
 * characters in the message (which may come from a peer) are replaced so a
 * line stays one line.
 */
#include "base.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Longer lines are cut and end with "..." */
#define LOG_LINE_MAX 2048

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static base_log_level log_level = BASE_LOG_INFO;

static void log_init(void)
{
	const char *env = getenv("SPACES_LOG");
	int lvl;

	if (env == NULL)
		return;
	lvl = base_log_parse_level(env);
	if (lvl >= 0)
		log_level = (base_log_level)lvl;
}

void base_log_set_level(base_log_level lvl)
{
	/* Read the environment first so it can never override an explicit choice later. */
	pthread_once(&log_once, log_init);
	log_level = lvl;
}

base_log_level base_log_get_level(void)
{
	pthread_once(&log_once, log_init);
	return log_level;
}

int base_log_parse_level(const char *s)
{
	static const char *const names[] = {"debug", "info", "warn", "error", "off"};
	base_slice v = {s, strlen(s)};

	for (size_t i = 0; i < BASE_ARRAY_SIZE(names); i++) {
		if (base_slice_caseeq(v, names[i]))
			return (int)i;
	}
	return -1;
}

static const char *level_name(base_log_level lvl)
{
	switch (lvl) {
	case BASE_LOG_DEBUG:
		return "DEBUG";
	case BASE_LOG_INFO:
		return "INFO";
	case BASE_LOG_WARN:
		return "WARN";
	case BASE_LOG_ERROR:
		return "ERROR";
	default:
		return "?";
	}
}

void base_log(base_log_level lvl, const char *component, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n, start;
	int k;

	if (lvl >= BASE_LOG_OFF || lvl < base_log_get_level())
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	k = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             ts.tv_nsec / 1000000L, level_name(lvl), component != NULL ? component : "-");
	if (k < 0)
		return;
	/* Keep room for "...\n" at the end of a cut line. */
	n = (size_t)k < sizeof(line) - 5 ? (size_t)k : sizeof(line) - 5;
	start = n;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - 4 - n, fmt, ap);
	va_end(ap);
	if (k < 0)
		k = 0;
	if ((size_t)k >= sizeof(line) - 4 - n) {
		n = sizeof(line) - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	} else {
		n += (size_t)k;
	}
	for (size_t i = start; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	line[n++] = '\n';
	/* A failed or short write of a log line has nowhere better to be reported. */
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, line, n);

		if (w <= 0)
			break;
		memmove(line, line + w, n - (size_t)w);
		n -= (size_t)w;
	}
}
