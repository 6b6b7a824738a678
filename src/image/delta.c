/* A live move's big files, sent again as only the blocks that changed.
 *
 * The first pass over a running instance's rootfs keeps, for each regular
 * file of IMAGE_DELTA_MIN bytes or more, a checksum (XXH3, 128 bits) of
 * each IMAGE_DELTA_BLOCK of what it sent. A service that writes into a big
 * file all the time (a database's tables, a log) changes it after that
 * pass, and the pass while the instance is frozen would send it whole
 * again: the stop grew with the file (a 300 MiB file written 4 KiB at a
 * time: 0.6 s). That pass now reads the file, checksums it again, and
 * sends "delta/PATH": the file's new size and the blocks that differ from
 * what went before. Reading from the page cache and checksumming go at
 * ~11 GB/s here, several times what sending the file took.
 *
 * The blob is little-endian: the file's size (u64), then runs of changed
 * bytes, each its offset (u64), its length (u64) and the bytes. The target
 * writes them into the file it got from the first pass (the same path),
 * cuts it to the size, and sets owner, mode and times from the entry. */
#include <archive.h>
#include <archive_entry.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__x86_64__)
/* The library's AVX2/AVX-512 code where the CPU has it: 1.5x here. */
#include <xxh_x86dispatch.h>
#endif

#include "common/log.h"
#include "common/util.h"
#include "image/image_internal.h"

/* What went of one file: its path below the tree's top, how many bytes,
 * and a checksum of each block of them (the last may be short). */
struct image_file_sums {
	char *rel;
	unsigned long long len;
	size_t n, cap;
	XXH128_hash_t *sums;
	XXH3_state_t *block; /* the block being read */
	size_t in_block;     /* its bytes so far */
};

struct image_sent_sums {
	void *root; /* tsearch tree of struct image_file_sums, by rel */
	struct image_delta_stats stats;
};

struct image_sent_sums *image_sent_sums_new(void)
{
	return xcalloc(1, sizeof(struct image_sent_sums));
}

static void file_sums_free(void *p)
{
	struct image_file_sums *f = p;
	if (f == NULL)
		return;
	XXH3_freeState(f->block);
	free(f->sums);
	free(f->rel);
	free(f);
}

void image_sent_sums_free(struct image_sent_sums *sums)
{
	if (sums == NULL)
		return;
	tdestroy(sums->root, file_sums_free);
	free(sums);
}

static int by_rel(const void *a, const void *b)
{
	return strcmp(((const struct image_file_sums *)a)->rel, ((const struct image_file_sums *)b)->rel);
}

static struct image_file_sums *sums_find(const struct image_sent_sums *sums, const char *rel)
{
	struct image_file_sums key = { .rel = (char *)rel };
	void *const *node = tfind(&key, &sums->root, by_rel);
	return node ? *node : NULL;
}

static XXH3_state_t *new_block_state(void)
{
	XXH3_state_t *s = XXH3_createState();
	if (s == NULL)
		abort();
	XXH3_128bits_reset(s);
	return s;
}

struct image_file_sums *image_sums_begin(const char *rel)
{
	struct image_file_sums *f = xcalloc(1, sizeof(*f));
	f->rel = xstrdup(rel);
	f->block = new_block_state();
	return f;
}

static void close_block(struct image_file_sums *f)
{
	if (f->n == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 64;
		f->sums = realloc(f->sums, f->cap * sizeof(*f->sums));
		if (f->sums == NULL)
			abort();
	}
	f->sums[f->n++] = XXH3_128bits_digest(f->block);
	XXH3_128bits_reset(f->block);
	f->in_block = 0;
}

void image_sums_feed(struct image_file_sums *f, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		size_t take = IMAGE_DELTA_BLOCK - f->in_block;
		if (take > len)
			take = len;
		XXH3_128bits_update(f->block, p, take);
		f->in_block += take;
		f->len += take;
		p += take;
		len -= take;
		if (f->in_block == IMAGE_DELTA_BLOCK)
			close_block(f);
	}
}

void image_sums_end(struct image_sent_sums *sums, struct image_file_sums *f)
{
	if (f->in_block > 0)
		close_block(f);
	XXH3_freeState(f->block);
	f->block = NULL;
	/* A path seen again (it can't be, in one walk) keeps its first sums. */
	void *const *node = tsearch(f, &sums->root, by_rel);
	if (node == NULL)
		abort();
	if (*node != f) {
		file_sums_free(f);
		return;
	}
	sums->stats.summed_files++;
	sums->stats.summed_bytes += f->len;
}

struct image_delta_stats image_sent_sums_stats(const struct image_sent_sums *sums)
{
	return sums->stats;
}

static void put_u64(unsigned char *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* A run of changed blocks, in bytes (the last may end short of a block). */
struct run {
	unsigned long long off, len;
};

#define READ_CHUNK (16 * IMAGE_DELTA_BLOCK)

/* Blocks [first, end) of fd (size bytes): which differ from f's sums. */
struct compare_job {
	int fd;
	unsigned long long size;
	const struct image_file_sums *f;
	size_t first, end;
	bool *changed;
	int err; /* errno of a failed read, or 0 */
};

static void compare_blocks(struct compare_job *j)
{
	cleanup_free char *buf = xcalloc(1, READ_CHUNK);
	const struct image_file_sums *f = j->f;
	for (size_t i = j->first; i < j->end;) {
		unsigned long long off = (unsigned long long)i * IMAGE_DELTA_BLOCK;
		unsigned long long stop = (unsigned long long)j->end * IMAGE_DELTA_BLOCK;
		if (stop > j->size)
			stop = j->size;
		size_t want = stop - off < READ_CHUNK ? stop - off : READ_CHUNK;
		ssize_t got = pread(j->fd, buf, want, (off_t)off);
		if (got < 0) {
			j->err = errno;
			return;
		}
		/* Frozen, the file can't shrink; if it did, what is missing
		 * reads as zeros, as the tar writer pads. */
		if ((size_t)got < want)
			memset(buf + got, 0, want - got);
		for (size_t at = 0; at < want; at += IMAGE_DELTA_BLOCK, i++) {
			size_t len = want - at < IMAGE_DELTA_BLOCK ? want - at : IMAGE_DELTA_BLOCK;
			unsigned long long sent_len =
				i < f->n ? (i + 1 < f->n ? IMAGE_DELTA_BLOCK : f->len - (unsigned long long)i * IMAGE_DELTA_BLOCK)
					 : 0;
			j->changed[i] = !(i < f->n && sent_len == len &&
					  XXH128_isEqual(XXH3_128bits(buf + at, len), f->sums[i]));
		}
	}
}

static void *compare_thread(void *arg)
{
	compare_blocks(arg);
	return NULL;
}

/* A file this big is compared by two threads, each half its blocks:
 * the instance is frozen, the CPUs are the move's (1 GiB: ~95 -> ~50 ms). */
#define TWO_THREADS_FROM (64ULL * 1024 * 1024)

/* The runs of blocks of fd (size bytes) whose checksum is not f's. */
static int changed_runs(int fd, const char *path, unsigned long long size, const struct image_file_sums *f,
			struct run **out, size_t *n_out, struct ferry_error **err)
{
	size_t blocks = (size + IMAGE_DELTA_BLOCK - 1) / IMAGE_DELTA_BLOCK;
	cleanup_free bool *changed = xcalloc(blocks ? blocks : 1, sizeof(bool));
	struct compare_job jobs[2] = {
		{ .fd = fd, .size = size, .f = f, .first = 0, .end = blocks, .changed = changed },
		{ .fd = fd, .size = size, .f = f, .first = blocks, .end = blocks, .changed = changed },
	};
	pthread_t helper;
	bool helped = false;
	if (size >= TWO_THREADS_FROM) {
		jobs[0].end = jobs[1].first = blocks / 2;
		helped = pthread_create(&helper, NULL, compare_thread, &jobs[1]) == 0;
		if (!helped)
			jobs[0].end = blocks;
	}
	compare_blocks(&jobs[0]);
	if (helped)
		pthread_join(helper, NULL);
	int e = jobs[0].err ? jobs[0].err : jobs[1].err;
	if (e != 0)
		return error_sys(err, e, "read %s", path);

	struct run *runs = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < blocks; i++) {
		if (!changed[i])
			continue;
		unsigned long long off = (unsigned long long)i * IMAGE_DELTA_BLOCK;
		unsigned long long len = size - off < IMAGE_DELTA_BLOCK ? size - off : IMAGE_DELTA_BLOCK;
		if (n > 0 && runs[n - 1].off + runs[n - 1].len == off) {
			runs[n - 1].len += len;
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			runs = realloc(runs, cap * sizeof(*runs));
			if (runs == NULL)
				abort();
		}
		runs[n++] = (struct run){ .off = off, .len = len };
	}
	*out = runs;
	*n_out = n;
	return 0;
}

int image_tar_add_delta(struct archive *tar, struct image_sent_sums *sums, const char *path, const char *rel,
			uid_t uid_shift, gid_t gid_shift, struct ferry_error **err)
{
	const struct image_file_sums *f = sums ? sums_find(sums, rel) : NULL;
	if (f == NULL)
		return 0;
	cleanup_close int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 && (errno == ENOENT || errno == ELOOP))
		return 0; /* gone, or no file now: sent as what it is */
	if (fd < 0 || fstat(fd, &st) < 0)
		return error_sys(err, errno, "open %s", path);
	/* Another link to it would need the others too: sent whole. */
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		return 0;
	unsigned long long size = (unsigned long long)st.st_size;
	struct run *runs = NULL;
	size_t n_runs = 0;
	if (changed_runs(fd, path, size, f, &runs, &n_runs, err) < 0)
		return -1;
	unsigned long long bytes = 0;
	for (size_t i = 0; i < n_runs; i++)
		bytes += runs[i].len;

	/* Owners, mode and times as a whole entry would have them. */
	cleanup_free char *name = xasprintf("delta/%s", rel);
	struct archive_entry *entry = archive_entry_new();
	archive_entry_copy_stat(entry, &st);
	archive_entry_set_pathname(entry, name);
	archive_entry_set_size(entry, 8 + 16 * n_runs + bytes);
	archive_entry_set_uid(entry, image_id_unshift(st.st_uid, uid_shift));
	archive_entry_set_gid(entry, image_id_unshift(st.st_gid, gid_shift));
	int ret = image_tar_write_header(tar, entry, err);
	archive_entry_free(entry);
	unsigned char head[16];
	put_u64(head, size);
	if (ret == 0)
		ret = image_tar_write_data(tar, head, 8, path, err);
	cleanup_free char *buf = xcalloc(1, READ_CHUNK);
	for (size_t i = 0; ret == 0 && i < n_runs; i++) {
		unsigned long long off = runs[i].off, len = runs[i].len;
		put_u64(head, off);
		put_u64(head + 8, len);
		ret = image_tar_write_data(tar, head, 16, path, err);
		while (ret == 0 && len > 0) {
			size_t want = len < READ_CHUNK ? len : READ_CHUNK;
			ssize_t got = pread(fd, buf, want, (off_t)off);
			if (got < 0) {
				ret = error_sys(err, errno, "read %s", path);
				break;
			}
			if ((size_t)got < want)
				memset(buf + got, 0, want - got);
			ret = image_tar_write_data(tar, buf, want, path, err);
			off += want;
			len -= want;
		}
	}
	free(runs);
	if (ret < 0)
		return -1;
	log_debug("packing %s: %llu of its %llu bytes changed", path, bytes, size);
	sums->stats.delta_files++;
	sums->stats.delta_bytes += size;
	sums->stats.delta_changed += bytes;
	return 1;
}

/* ---- the target's side ---- */

/* Exactly len bytes of the entry's data; 0 at its clean end (none). */
static int read_exact(struct archive *reader, void *buf, size_t len, const char *name, struct ferry_error **err)
{
	size_t have = 0;
	while (have < len) {
		la_ssize_t r = archive_read_data(reader, (char *)buf + have, len - have);
		if (r < 0)
			return error_bad_request(err, "reading %s: %s", name, archive_error_string(reader));
		if (r == 0)
			break;
		have += (size_t)r;
	}
	if (have == 0)
		return 0;
	if (have < len)
		return error_bad_request(err, "%s: its changes end in the middle of a record", name);
	return 1;
}

static int apply_runs(struct archive *reader, int fd, const char *name, unsigned long long *size,
		      struct ferry_error **err)
{
	unsigned char head[16];
	int r = read_exact(reader, head, 8, name, err);
	if (r <= 0)
		return r < 0 ? -1 : error_bad_request(err, "%s: its changes lack the file's size", name);
	*size = get_u64(head);
	cleanup_free char *buf = xcalloc(1, READ_CHUNK);
	while ((r = read_exact(reader, head, 16, name, err)) > 0) {
		unsigned long long off = get_u64(head), len = get_u64(head + 8);
		if (off > *size || len > *size - off)
			return error_bad_request(err, "%s: a change beyond its size", name);
		while (len > 0) {
			size_t want = len < READ_CHUNK ? len : READ_CHUNK;
			if (read_exact(reader, buf, want, name, err) <= 0)
				return error_bad_request(err, "%s: its changes end early", name);
			for (size_t done = 0; done < want;) {
				ssize_t w = pwrite(fd, buf + done, want - done, (off_t)(off + done));
				if (w < 0)
					return error_set(err, errno == ENOSPC ? 507 : 500, errno, "writing %s: %s", name,
							 strerror(errno));
				done += (size_t)w;
			}
			off += want;
			len -= want;
		}
	}
	return r;
}

int image_delta_apply(struct archive *reader, struct archive_entry *entry, const char *rel, uid_t uid, gid_t gid,
		      struct ferry_error **err)
{
	cleanup_free char *name = xasprintf("rootfs/%s", rel);
	if (rel[0] == '\0' || archive_entry_filetype(entry) != AE_IFREG)
		return error_bad_request(err, "refused entry delta/%s: not a file's changes", rel);
	/* The file the first pass made, here: below the tree's top (the
	 * unpacker's cwd, its root too), through no symlink. */
	struct open_how how = {
		.flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	cleanup_close int fd = (int)syscall(SYS_openat2, AT_FDCWD, rel, &how, sizeof(how));
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return error_sys(err, errno, "open %s for its changes", name);
	if (!S_ISREG(st.st_mode))
		return error_bad_request(err, "%s: changes for what is not a file here", name);
	unsigned long long size = 0;
	if (apply_runs(reader, fd, name, &size, err) < 0)
		return -1;
	struct timespec times[2] = {
		{ .tv_sec = archive_entry_atime(entry), .tv_nsec = archive_entry_atime_nsec(entry) },
		{ .tv_sec = archive_entry_mtime(entry), .tv_nsec = archive_entry_mtime_nsec(entry) },
	};
	if (!archive_entry_atime_is_set(entry))
		times[0] = times[1];
	/* chown clears setuid and setgid bits: the mode goes after. */
	if (ftruncate(fd, (off_t)size) < 0 || fchown(fd, uid, gid) < 0 ||
	    fchmod(fd, archive_entry_perm(entry) & 07777) < 0 || futimens(fd, times) < 0)
		return error_sys(err, errno, "update %s", name);
	return 0;
}
