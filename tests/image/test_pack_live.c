/* Packing a tree that changes under the walker, as a live move's first pass
 * packs a running container's rootfs: a thread keeps making directories of
 * files and removing the oldest, as a service's cache or spool does, while
 * the packer walks the tree again and again.
 *
 * The strict packer (image_tar_add_tree, for trees nothing uses) fails when
 * an entry goes from under it: that it does shows the churn reaches the
 * walker. The live one (image_tar_add_tree_changed, since NULL) must never
 * fail, over many passes.
 *
 * Then a live move's two passes over a tree with big files: the first
 * keeps their blocks' sums; after some blocks are rewritten, one file
 * grows and another is cut short (and an 80 MiB one, compared by two
 * threads, changes at both ends and in the middle), the frozen pass sends them as their
 * changed blocks, and the target's copy, updated from it, is the source's
 * byte for byte, with its new mode and times. A delta through a symlink
 * is refused, and what the link points to is left alone. */
#include <archive.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
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
	int ret = live ? image_tar_add_tree_changed(tar, top, 0, 0, NULL, NULL, NULL, NULL, &err)
		       : image_tar_add_tree(tar, top, 0, 0, &err);
	if (ret < 0) {
		snprintf(msg, msg_len, "%s", err->msg);
		error_free(&err);
	}
	archive_write_close(tar);
	archive_write_free(tar);
	return ret;
}

static void fill(const char *path, size_t len, unsigned seed)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		abort();
	srand(seed);
	for (size_t i = 0; i < len; i++)
		fputc(rand() & 0xff, f);
	fclose(f);
}

static void patch(const char *path, off_t off, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || pwrite(fd, data, len, off) != (ssize_t)len)
		abort();
	close(fd);
}

static bool same_file(const char *a, const char *b)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
	return system(cmd) == 0;
}

/* tar (uncompressed) of dir: the live first pass (since NULL) or the
 * frozen one. */
static int pack_to(const char *tarball, const char *dir, const struct timespec *since,
		   struct image_sent_sums *sums)
{
	struct archive *tar = archive_write_new();
	if (archive_write_set_format_pax_restricted(tar) != ARCHIVE_OK ||
	    archive_write_open_filename(tar, tarball) != ARCHIVE_OK)
		abort();
	struct ferry_error *err = NULL;
	int ret = image_tar_add_tree_changed(tar, dir, 0, 0, since, NULL, NULL, sums, &err);
	if (ret < 0) {
		fprintf(stderr, "pack %s: %s\n", dir, err->msg);
		error_free(&err);
	}
	archive_write_close(tar);
	archive_write_free(tar);
	return ret;
}

static int unpack(const char *tarball, const char *dest, bool update, char *msg, size_t msg_len)
{
	struct ferry_error *err = NULL;
	int ret = update ? image_unpack_update(tarball, dest, 0, 0, &err) : image_unpack_rootfs(tarball, dest, 0, 0, &err);
	if (ret < 0) {
		snprintf(msg, msg_len, "%s", err->msg);
		error_free(&err);
	}
	return ret;
}

static void test_deltas(void)
{
	char top[] = "/tmp/ferry-pack-delta.XXXXXX";
	if (mkdtemp(top) == NULL)
		abort();
	char src[100], dst[100], db[200], big[200], small[200], first[200], second[200], path[900], msg[1024] = "";
	snprintf(src, sizeof(src), "%s/src", top);
	snprintf(dst, sizeof(dst), "%s/dst", top);
	snprintf(db, sizeof(db), "%s/db", src);
	snprintf(big, sizeof(big), "%s/d/big", src);
	snprintf(small, sizeof(small), "%s/small", src);
	snprintf(first, sizeof(first), "%s/first.tar", top);
	snprintf(second, sizeof(second), "%s/second.tar", top);
	snprintf(path, sizeof(path), "%s/d", src);
	if (mkdir(src, 0755) < 0 || mkdir(path, 0755) < 0)
		abort();
	/* Not a whole number of blocks, and a second file in a subdirectory. */
	fill(db, 3 * 1024 * 1024 + 1000, 1);
	fill(big, 2 * 1024 * 1024, 2);
	fill(small, 5000, 3);
	/* Big enough for two threads to compare it, each half (sparse). */
	char huge[200];
	snprintf(huge, sizeof(huge), "%s/huge", src);
	int hfd = open(huge, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (hfd < 0 || ftruncate(hfd, 80 * 1024 * 1024) < 0)
		abort();
	close(hfd);

	struct image_sent_sums *sums = image_sent_sums_new();
	ok(pack_to(first, src, NULL, sums) == 0, "the first pass packs the tree");
	struct image_delta_stats st = image_sent_sums_stats(sums);
	ok(st.summed_files == 3 && st.summed_bytes == 85 * 1024 * 1024 + 1000,
	   "... summing its three big files (%zu files, %llu bytes)", st.summed_files, st.summed_bytes);
	ok(unpack(first, dst, false, msg, sizeof(msg)) == 0, "the target unpacks it (%s)", msg);

	/* Changes after the first pass: stamps at or after since (the kernel's
	 * stamps may lag the clock by a tick: 50 ms either side). */
	struct timespec since, tick = { .tv_nsec = 50 * 1000000L };
	nanosleep(&tick, NULL);
	clock_gettime(CLOCK_REALTIME, &since);
	nanosleep(&tick, NULL);
	char page[4096];
	memset(page, 'a', sizeof(page));
	patch(db, 100000, page, sizeof(page));
	patch(db, 2 * 1024 * 1024 + 5, "0123456789", 10);
	patch(db, 3 * 1024 * 1024 + 1000, page, sizeof(page)); /* grows */
	if (truncate(big, 1536 * 1024 - 3) < 0 || chmod(db, 0600) < 0)
		abort();
	patch(small, 10, "x", 1);
	/* huge: its first block, the first of its second half, its last. */
	patch(huge, 0, "first", 5);
	patch(huge, 40 * 1024 * 1024 + 7, "second half", 11);
	patch(huge, 80 * 1024 * 1024 - 4, "last", 4);
	struct timeval tv[2] = { { .tv_sec = 1000000000 }, { .tv_sec = 1000000000, .tv_usec = 5 } };
	if (utimes(big, tv) < 0)
		abort();
	ok(pack_to(second, src, &since, sums) == 0, "the frozen pass packs what changed");
	st = image_sent_sums_stats(sums);
	ok(st.delta_files == 3, "... the three big files as their changes (%zu)", st.delta_files);
	/* db: blocks 1, 32 and 48 (its old end, now 4 KiB longer); big: its
	 * new last block; huge: three blocks. */
	ok(st.delta_changed ==
		   5 * IMAGE_DELTA_BLOCK + (4096 + 1000) + (1536 * 1024 - 3) % IMAGE_DELTA_BLOCK,
	   "... only the blocks that changed (%llu of %llu bytes)", st.delta_changed, st.delta_bytes);
	ok(unpack(second, dst, true, msg, sizeof(msg)) == 0, "the target applies them (%s)", msg);
	snprintf(path, sizeof(path), "%s/db", dst);
	struct stat a = { 0 }, b = { 0 };
	ok(same_file(db, path), "db is the source's, byte for byte");
	/* The tar (pax where needed, as every rootfs pass) keeps whole seconds. */
	bool stats = stat(db, &a) == 0 && stat(path, &b) == 0;
	ok(stats && (b.st_mode & 07777) == 0600 && b.st_mtim.tv_sec == a.st_mtim.tv_sec,
	   "... with its new mode (%o) and mtime", b.st_mode & 07777);
	snprintf(path, sizeof(path), "%s/d/big", dst);
	ok(same_file(big, path), "d/big, cut short, is the source's too");
	ok(stat(path, &b) == 0 && b.st_mtim.tv_sec == 1000000000, "... with the mtime it was given");
	snprintf(path, sizeof(path), "%s/small", dst);
	ok(same_file(small, path), "a small file changed went whole");
	snprintf(path, sizeof(path), "%s/huge", dst);
	ok(same_file(huge, path), "huge, compared by two threads, is the source's too");

	/* The target's d now a symlink to a directory outside: refused. */
	char outside[200], link[200];
	snprintf(outside, sizeof(outside), "%s/outside", top);
	snprintf(link, sizeof(link), "%s/d", dst);
	snprintf(path, sizeof(path), "rm -rf '%s' && mkdir '%s' && cp '%s' '%s/big'", link, outside, big, outside);
	if (system(path) != 0 || symlink(outside, link) < 0)
		abort();
	patch(big, 0, page, sizeof(page));
	ok(pack_to(second, src, &since, sums) == 0, "the frozen pass again");
	msg[0] = '\0';
	ok(unpack(second, dst, true, msg, sizeof(msg)) < 0 && strstr(msg, "d/big") != NULL,
	   "a delta through a symlink is refused (%s)", msg);
	snprintf(path, sizeof(path), "%s/big", outside);
	char cmd[2000];
	snprintf(cmd, sizeof(cmd), "cmp -s -n 4096 '%s' '%s'", big, path);
	ok(system(cmd) != 0, "... and the file it points to is untouched");

	image_sent_sums_free(sums);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", top);
}

int main(void)
{
	test_deltas();

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
