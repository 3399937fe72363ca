/* Tests engineio/base/log.c by capturing stderr into a temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/base.h"

static int saved_stderr = -1;
static FILE *capture;

static void capture_start(void)
{
	capture = tmpfile();
	assert_non_null(capture);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);
}

/* Stops capturing and returns what was written (static storage). */
static const char *capture_end(void)
{
	static char out[8192];
	size_t n;

	assert_true(dup2(saved_stderr, STDERR_FILENO) >= 0);
	close(saved_stderr);
	rewind(capture);
	n = fread(out, 1, sizeof(out) - 1, capture);
	out[n] = '\0';
	fclose(capture);
	return out;
}

/* Runs first: the level comes from SPACES_LOG, read once at first use. */
static void test_env_level(void **state)
{
	assert_int_equal(base_log_get_level(), BASE_LOG_WARN);
}

static void test_parse_level(void **state)
{
	assert_int_equal(base_log_parse_level("debug"), BASE_LOG_DEBUG);
	assert_int_equal(base_log_parse_level("info"), BASE_LOG_INFO);
	assert_int_equal(base_log_parse_level("warn"), BASE_LOG_WARN);
	assert_int_equal(base_log_parse_level("error"), BASE_LOG_ERROR);
	assert_int_equal(base_log_parse_level("off"), BASE_LOG_OFF);
	assert_int_equal(base_log_parse_level("ERROR"), BASE_LOG_ERROR);
	assert_int_equal(base_log_parse_level(""), -1);
	assert_int_equal(base_log_parse_level("warning"), -1);
	assert_int_equal(base_log_parse_level("inf"), -1);
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void test_line_format(void **state)
{
	const char *out;

	base_log_set_level(BASE_LOG_INFO);
	capture_start();
	base_log(BASE_LOG_INFO, "http", "listening on %s:%d", "0.0.0.0", 3000);
	out = capture_end();
	/* 2026-11-22T02:05:39.123Z INFO  [http] listening on 0.0.0.0:3000\n */
	const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ ";
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd')
			assert_true(is_digit(out[i]));
		else
			assert_int_equal(out[i], pat[i]);
	}
	assert_string_equal(out + strlen(pat), "INFO  [http] listening on 0.0.0.0:3000\n");
}

static void test_levels_and_filter(void **state)
{
	const char *out;

	base_log_set_level(BASE_LOG_WARN);
	assert_int_equal(base_log_get_level(), BASE_LOG_WARN);
	capture_start();
	BASE_LOGD("x", "debug %d", 1);
	BASE_LOGI("x", "info %d", 2);
	BASE_LOGW("x", "warn %d", 3);
	BASE_LOGE("y", "error %d", 4);
	out = capture_end();
	assert_null(strstr(out, "debug 1"));
	assert_null(strstr(out, "info 2"));
	assert_non_null(strstr(out, "Z WARN  [x] warn 3\n"));
	assert_non_null(strstr(out, "Z ERROR [y] error 4\n"));

	base_log_set_level(BASE_LOG_DEBUG);
	capture_start();
	BASE_LOGD("z", "dbg");
	out = capture_end();
	assert_non_null(strstr(out, "Z DEBUG [z] dbg\n"));

	base_log_set_level(BASE_LOG_OFF);
	capture_start();
	BASE_LOGE("z", "silent");
	base_log(BASE_LOG_OFF, "z", "never");
	out = capture_end();
	assert_string_equal(out, "");
	base_log_set_level(BASE_LOG_INFO);
}

static void test_one_line_always(void **state)
{
	const char *out;
	char big[5000];

	base_log_set_level(BASE_LOG_INFO);
	capture_start();
	base_log(BASE_LOG_INFO, "peer", "bad\nline\r\x1b[31m");
	out = capture_end();
	assert_non_null(strstr(out, "[peer] bad?line??[31m\n"));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));

	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_start();
	base_log(BASE_LOG_INFO, "big", "%s", big);
	out = capture_end();
	assert_true(strlen(out) < sizeof(big));
	assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
	assert_non_null(strstr(out, "qqq...\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_env_level),       cmocka_unit_test(test_parse_level),
	    cmocka_unit_test(test_line_format),     cmocka_unit_test(test_levels_and_filter),
	    cmocka_unit_test(test_one_line_always),
	};

	setenv("SPACES_LOG", "warn", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
