/* Reading a CRIU log for what went wrong: its lines look like
 * "(00.123456) Error (criu/tty.c:1012): tty: Unable to find a master for /0",
 * and the last of them is usually the cause. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checkpoint/checkpoint.h"
#include "common/util.h"

/* Lines of "Error" level that every run here logs and that mean nothing
 * (design.md: root lacks CAP_SYS_RESOURCE on these machines). */
static const char *const harmless[] = {
	"Can't setup RLIMIT_NOFILE for self",
};

static bool is_harmless(const char *line)
{
	for (size_t i = 0; i < sizeof(harmless) / sizeof(harmless[0]); i++)
		if (strstr(line, harmless[i]) != NULL)
			return true;
	return false;
}

/* The line without its "(00.123456) " timestamp. */
static const char *strip_timestamp(const char *line)
{
	if (line[0] == '(') {
		const char *close = strstr(line, ") ");
		if (close != NULL)
			return close + 2;
	}
	return line;
}

char *checkpoint_log_errors(const char *log_path, int max_lines)
{
	cleanup_fclose FILE *f = fopen(log_path, "re");
	if (f == NULL || max_lines <= 0)
		return NULL;
	char **ring = xcalloc(max_lines, sizeof(char *));
	size_t n = 0;
	cleanup_free char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) >= 0) {
		if (len > 0 && line[len - 1] == '\n')
			line[len - 1] = '\0';
		/* CRIU's own errors are "Error (file.c:line): ..."; tools it runs
		 * (ip, iptables) print "Error: ..." lines that it tolerates. */
		const char *text = strip_timestamp(line);
		if (strncmp(text, "Error (", 7) != 0 || is_harmless(text))
			continue;
		free(ring[n % max_lines]);
		ring[n % max_lines] = xstrdup(text);
		n++;
	}
	if (n == 0) {
		free(ring);
		return NULL;
	}
	size_t first = n > (size_t)max_lines ? n - max_lines : 0;
	size_t total = 1;
	for (size_t i = first; i < n; i++)
		total += strlen(ring[i % max_lines]) + 2;
	char *out = xcalloc(total, 1);
	for (size_t i = first; i < n; i++) {
		if (i > first)
			strcat(out, "; ");
		strcat(out, ring[i % max_lines]);
	}
	for (int i = 0; i < max_lines; i++)
		free(ring[i]);
	free(ring);
	return out;
}

char *checkpoint_log_path(const char *log_dir, const char *what, const char *action)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char stamp[32];
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	return xasprintf("%s/%s_%s_%s.%03ld.log", log_dir, what, action, stamp, ts.tv_nsec / 1000000);
}
