/* Packing a tree that changes under the walker, as a live move's first pass
 * packs a running container's rootfs: a thread keeps making directories of
 * files and removing the oldest, as a service's cache or spool does, while
 * the packer walks the tree again and again.
 *
 * The strict packer (image_tar_add_tree, for trees nothing uses) fails when
 * an entry goes from under it: that it does shows the churn reaches the
 * walker. The live one (image_tar_add_tree_changed, since NULL) must never
 * fail, over many passes. */
#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/util.h"
#include "image/image_internal.h"
#include "../tap.h"

#define KEPT_DIRS 40
#define FILES_PER_DIR 16
#define MAX_SECONDS 30
#define STRICT_FAILURES_WANTED 3
#define LIVE_PASSES_WANTED 100

static atomic_bool churn_stop;

static la_ssize_t discard(struct archive *a, void *arg, const void *buf, size_t n)
{
	(void)a, (void)arg, (void)buf;
	return (la_ssize_t)n;
}

static void make_dir(const char *top, unsigned long i)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/d%lu", top, i);
	if (mkdir(path, 0755) < 0)
		abort();
	char data[4096];
	memset(data, 'x', sizeof(data));
	for (int f = 0; f < FILES_PER_DIR; f++) {
		snprintf(path, sizeof(path), "%s/d%lu/f%d", top, i, f);
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, data, sizeof(data)) != (ssize_t)sizeof(data))
			abort();
		close(fd);
	}
}

static void remove_dir(const char *top, unsigned long i)
{
	char path[512];
	for (int f = 0; f < FILES_PER_DIR; f++) {
		snprintf(path, sizeof(path), "%s/d%lu/f%d", top, i, f);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/d%lu", top, i);
	rmdir(path);
}

static void *churn(void *top)
{
	unsigned long next = KEPT_DIRS;
	while (!atomic_load(&churn_stop)) {
		make_dir(top, next);
		remove_dir(top, next - KEPT_DIRS);
		next++;
	}
	return NULL;
}

/* One pass; 0 or -1, with the error's message in msg. */
static int pack_once(const char *top, bool live, char *msg, size_t msg_len)
{
	struct archive *tar = archive_write_new();
	if (archive_write_set_format_pax_restricted(tar) != ARCHIVE_OK ||
	    archive_write_open(tar, NULL, NULL, discard, NULL) != ARCHIVE_OK)
		abort();
	struct ferry_error *err = NULL;
	int ret = live ? image_tar_add_tree_changed(tar, top, 0, 0, NULL, NULL, NULL, &err)
		       : image_tar_add_tree(tar, top, 0, 0, &err);
	if (ret < 0) {
		snprintf(msg, msg_len, "%s", err->msg);
		error_free(&err);
	}
	archive_write_close(tar);
	archive_write_free(tar);
	return ret;
}

int main(void)
{
	char top[] = "/tmp/ferry-pack-live.XXXXXX";
	if (mkdtemp(top) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	for (unsigned long i = 0; i < KEPT_DIRS; i++)
		make_dir(top, i);
	pthread_t thread;
	if (pthread_create(&thread, NULL, churn, top) != 0)
		abort();

	int strict_passes = 0, strict_failures = 0, live_passes = 0, live_failures = 0;
	char strict_msg[1024] = "", live_msg[1024] = "";
	time_t end = time(NULL) + MAX_SECONDS;
	while (time(NULL) < end && (strict_failures < STRICT_FAILURES_WANTED || live_passes < LIVE_PASSES_WANTED)) {
		char msg[1024];
		if (strict_failures < STRICT_FAILURES_WANTED) {
			strict_passes++;
			if (pack_once(top, false, msg, sizeof(msg)) < 0) {
				strict_failures++;
				snprintf(strict_msg, sizeof(strict_msg), "%s", msg);
			}
		}
		live_passes++;
		if (pack_once(top, true, msg, sizeof(msg)) < 0) {
			live_failures++;
			snprintf(live_msg, sizeof(live_msg), "%s", msg);
		}
	}
	atomic_store(&churn_stop, true);
	pthread_join(thread, NULL);

	ok(strict_failures >= STRICT_FAILURES_WANTED,
	   "the churn removes entries under the walker: the strict packer failed %d of %d passes (%s)",
	   strict_failures, strict_passes, strict_msg);
	ok(live_failures == 0 && live_passes >= LIVE_PASSES_WANTED,
	   "the live packer never failed: %d failures in %d passes%s%s", live_failures, live_passes,
	   live_failures ? ", the last: " : "", live_msg);

	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", top);
	return tap_done();
}
