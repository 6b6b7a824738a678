/* Shared by the checkpoint test's workloads: each runs inside a busybox
 * container, keeps state in one kind of kernel object, checks that state on
 * every tick, and reports into /tmp/wl/NAME.status (one line, rewritten in place):
 *
 *   OK 123 go=wait|done [details]      or      FAIL 123 reason
 *
 * 123 is the tick count: it grows only while the workload runs, so a test
 * sees that it continued after a restore. A failure sticks. /tmp/wl/go,
 * created by the test after the restore, triggers the checks that consume
 * state held in flight across the checkpoint (queued data, pending signals). */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WL_DIR "/tmp/wl"

static const char *wl_name;
static char wl_failure[512];
static unsigned long wl_ticks;

static void wl_init(const char *name)
{
	wl_name = name;
	mkdir(WL_DIR, 0755);
}

/* Record a failure: the first one, and each different one after it while
 * there is room (later ones are often consequences, sometimes clues). */
__attribute__((format(printf, 1, 2))) static void wl_fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strstr(wl_failure, msg) != NULL)
		return;
	size_t len = strlen(wl_failure);
	if (len + strlen(msg) + 3 < sizeof(wl_failure))
		snprintf(wl_failure + len, sizeof(wl_failure) - len, "%s%s", len > 0 ? "; " : "", msg);
}

static bool wl_go(void)
{
	return access(WL_DIR "/go", F_OK) == 0;
}

/* The status file stays open and is rewritten in place, one fixed-size
 * line: a file the workload had open at a snapshot must still be there when
 * the snapshot is restored (a temporary file renamed into place would not
 * be), and a reader sees one whole line either way. */
#define WL_STATUS_SIZE 1024
__attribute__((format(printf, 2, 3))) static void wl_report(bool go_done, const char *fmt, ...)
{
	static int fd = -1;
	char details[512] = "";
	if (fmt != NULL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(details, sizeof(details), fmt, ap);
		va_end(ap);
	}
	if (fd < 0) {
		char path[256];
		snprintf(path, sizeof(path), WL_DIR "/%s.status", wl_name);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return;
	}
	char line[WL_STATUS_SIZE];
	int n;
	if (wl_failure[0] != '\0')
		n = snprintf(line, sizeof(line), "FAIL %lu %s", wl_ticks, wl_failure);
	else
		n = snprintf(line, sizeof(line), "OK %lu go=%s %s", wl_ticks, go_done ? "done" : "wait", details);
	if (n < 0 || n > WL_STATUS_SIZE - 1)
		n = WL_STATUS_SIZE - 1;
	memset(line + n, ' ', WL_STATUS_SIZE - 1 - n);
	line[WL_STATUS_SIZE - 1] = '\n';
	ssize_t w = pwrite(fd, line, sizeof(line), 0);
	(void)w;
}

static void wl_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Write all of buf, or fail. */
static bool wl_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= w;
	}
	return true;
}
