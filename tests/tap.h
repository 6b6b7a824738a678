/* TAP for the C unit tests: ok() prints "ok N - ..." or "not ok N - ...",
 * tap_done() the plan, and returns the test's exit status. One test
 * program per file: the counters are its own. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int tap_failures, tap_count;

static void ok(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s %d - ", cond ? "ok" : "not ok", ++tap_count);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
	if (!cond)
		tap_failures++;
}

static int tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failures > 0 ? 1 : 0;
}
