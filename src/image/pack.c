/* Writing unified tarballs: metadata.yaml, then rootfs/ with owners as the
 * container sees them (0 = root), gzip-compressed. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "image/image_internal.h"

int image_tar_open(struct archive **out, const char *path, struct ferry_error **err)
{
	struct archive *tar = archive_write_new();
	if (archive_write_add_filter_gzip(tar) != ARCHIVE_OK ||
	    archive_write_set_format_pax_restricted(tar) != ARCHIVE_OK ||
	    archive_write_set_filter_option(tar, "gzip", "timestamp", NULL) < ARCHIVE_WARN) {
		error_set(err, 500, 0, "tar writer: %s", archive_error_string(tar));
		archive_write_free(tar);
		return -1;
	}
	if (archive_write_open_filename(tar, path) != ARCHIVE_OK) {
		error_set(err, 500, archive_errno(tar), "create %s: %s", path, archive_error_string(tar));
		archive_write_free(tar);
		return -1;
	}
	*out = tar;
	return 0;
}

int image_tar_close(struct archive *tar, const char *path, struct ferry_error **err)
{
	int r = archive_write_close(tar);
	int ret = 0;
	if (r != ARCHIVE_OK)
		ret = error_set(err, 500, archive_errno(tar), "write %s: %s", path, archive_error_string(tar));
	archive_write_free(tar);
	return ret;
}

int image_tar_write_header(struct archive *tar, struct archive_entry *entry, struct ferry_error **err)
{
	int r = archive_write_header(tar, entry);
	if (r < ARCHIVE_WARN)
		return error_set(err, 500, archive_errno(tar), "add %s to the tarball: %s",
				 archive_entry_pathname(entry), archive_error_string(tar));
	return 0;
}

int image_tar_write_data(struct archive *tar, const void *data, size_t len, const char *path,
			 struct ferry_error **err)
{
	if (archive_write_data(tar, data, len) != (la_ssize_t)len)
		return error_set(err, 500, archive_errno(tar), "write %s: %s", path, archive_error_string(tar));
	return 0;
}

static struct archive_entry *new_entry(const char *path, mode_t type, mode_t mode, uid_t uid, gid_t gid,
				       time_t mtime)
{
	struct archive_entry *entry = archive_entry_new();
	archive_entry_set_pathname(entry, path);
	archive_entry_set_filetype(entry, type);
	archive_entry_set_perm(entry, mode);
	archive_entry_set_uid(entry, uid);
	archive_entry_set_gid(entry, gid);
	archive_entry_set_mtime(entry, mtime, 0);
	return entry;
}

int image_tar_add_dir(struct archive *tar, const char *path, mode_t mode, uid_t uid, gid_t gid, time_t mtime,
		      struct ferry_error **err)
{
	struct archive_entry *entry = new_entry(path, AE_IFDIR, mode, uid, gid, mtime);
	int ret = image_tar_write_header(tar, entry, err);
	archive_entry_free(entry);
	return ret;
}

int image_tar_add_data(struct archive *tar, const char *path, mode_t mode, uid_t uid, gid_t gid, time_t mtime,
		       const void *data, size_t len, struct ferry_error **err)
{
	struct archive_entry *entry = new_entry(path, AE_IFREG, mode, uid, gid, mtime);
	archive_entry_set_size(entry, len);
	int ret = image_tar_write_header(tar, entry, err);
	archive_entry_free(entry);
	if (ret == 0 && len > 0 && archive_write_data(tar, data, len) != (la_ssize_t)len)
		ret = error_set(err, 500, archive_errno(tar), "add %s to the tarball: %s", path,
				archive_error_string(tar));
	return ret;
}

int image_tar_add_symlink(struct archive *tar, const char *path, const char *target, time_t mtime,
			  struct ferry_error **err)
{
	struct archive_entry *entry = new_entry(path, AE_IFLNK, 0777, 0, 0, mtime);
	archive_entry_set_symlink(entry, target);
	int ret = image_tar_write_header(tar, entry, err);
	archive_entry_free(entry);
	return ret;
}

int image_tar_add_host_file(struct archive *tar, const char *path, const char *host_path, mode_t mode,
			    time_t mtime, struct ferry_error **err)
{
	cleanup_free char *data = NULL;
	size_t len = 0;
	if (file_read(host_path, &data, &len, err) < 0)
		return -1;
	return image_tar_add_data(tar, path, mode, 0, 0, mtime, data, len, err);
}

/* Owners as the container sees them. An id outside the container's range
 * shows up there as the overflow id (nobody), so that is what it becomes. */
unsigned long image_id_unshift(unsigned long id, unsigned long shift)
{
	if (shift == 0)
		return id;
	if (id < shift || id - shift >= IMAGE_ID_RANGE)
		return IMAGE_ID_NOBODY;
	return id - shift;
}

/* vanish_ok: a file removed since its header was written (a running
 * container's) is not an error; the entry is left to the tar writer, which
 * fills it with zeros (add_tree says what happens to it then). */
static int copy_file_data(struct archive *disk, struct archive *tar, const char *path, bool vanish_ok,
			  struct image_file_sums *sums, struct ferry_error **err)
{
	char buf[64 * 1024];
	for (;;) {
		la_ssize_t n = archive_read_data(disk, buf, sizeof(buf));
		if (n < 0 && vanish_ok && archive_errno(disk) == ENOENT) {
			log_debug("packing %s: gone meanwhile", path);
			return 0;
		}
		if (n < 0)
			return error_set(err, 500, archive_errno(disk), "read %s: %s", path,
					 archive_error_string(disk));
		if (n == 0)
			return 0;
		if (image_tar_write_data(tar, buf, (size_t)n, path, err) < 0)
			return -1;
		if (sums != NULL)
			image_sums_feed(sums, buf, (size_t)n);
	}
}

/* sums (may be NULL): where a big file's sums go (image_sums_begin). */
static int add_tree_entry(struct archive *disk, struct archive *tar, struct archive_entry_linkresolver *links,
			  struct archive_entry *entry, size_t prefix_len, uid_t uid_shift, gid_t gid_shift,
			  bool vanish_ok, struct image_sent_sums *sums, struct ferry_error **err)
{
	const char *source = archive_entry_sourcepath(entry);
	if (source == NULL)
		source = archive_entry_pathname(entry);
	/* Sockets belong to running processes; tar cannot hold them. */
	if (archive_entry_filetype(entry) == AE_IFSOCK)
		return 0;
	const char *rel = source + prefix_len;
	while (*rel == '/')
		rel++;
	cleanup_free char *path = *rel ? xasprintf("rootfs/%s", rel) : xstrdup("rootfs");
	archive_entry_set_pathname(entry, path);
	archive_entry_set_uid(entry, image_id_unshift(archive_entry_uid(entry), uid_shift));
	archive_entry_set_gid(entry, image_id_unshift(archive_entry_gid(entry), gid_shift));
	archive_entry_set_uname(entry, NULL);
	archive_entry_set_gname(entry, NULL);

	struct archive_entry *spare = NULL;
	archive_entry_linkify(links, &entry, &spare);
	/* With tar's strategy linkify hands each entry straight back: the
	 * first of a set of hard links with its data, the others as links. */
	if (entry == NULL)
		return 0;
	if (image_tar_write_header(tar, entry, err) < 0)
		return error_wrap(err, "pack %s", source);
	if (archive_entry_filetype(entry) != AE_IFREG || archive_entry_hardlink(entry) != NULL ||
	    archive_entry_size(entry) <= 0)
		return 0;
	if (sums == NULL || archive_entry_nlink(entry) != 1 || archive_entry_size(entry) < IMAGE_DELTA_MIN)
		return copy_file_data(disk, tar, source, vanish_ok, NULL, err);
	struct image_file_sums *f = image_sums_begin(rel);
	int ret = copy_file_data(disk, tar, source, vanish_ok, f, err);
	image_sums_end(sums, f);
	return ret;
}

/* A tree's top as the walkers name it: no trailing slash (malloc'd). */
static char *tree_top(const char *dir)
{
	char *top = xstrdup(dir);
	for (size_t n = strlen(top); n > 1 && top[n - 1] == '/'; n--)
		top[n - 1] = '\0';
	return top;
}

/* libarchive's message for a directory it listed but could not open to
 * read; it keeps no errno for it. */
#define VISIT_FAILED ": Couldn't visit directory"

/* Whether the walker's failure (ARCHIVE_FAILED) was over an entry removed
 * meanwhile: one gone between its listing and its reading (entry names
 * it), or a directory gone before the walker went in (the message names
 * it). The path is then gone indeed: anything else stays an error. */
static bool failed_on_vanished(struct archive *disk, struct archive_entry *entry)
{
	const char *path = archive_entry_pathname(entry);
	cleanup_free char *dir = NULL;
	if (path == NULL) {
		const char *msg = archive_error_string(disk);
		size_t n = msg ? strlen(msg) : 0, suffix = strlen(VISIT_FAILED);
		if (n <= suffix || strcmp(msg + n - suffix, VISIT_FAILED) != 0)
			return false;
		dir = xstrdup(msg);
		dir[n - suffix] = '\0';
		path = dir;
	}
	struct stat st;
	return lstat(path, &st) < 0 && errno == ENOENT;
}

/* Everything, through libarchive's walker. vanish_ok: the tree is a
 * running container's (a live move's first pass): an entry removed while
 * the walk goes on is left out, or, if its header went already, filled with
 * zeros; the pass while the container is frozen lists its directory, and
 * the target removes it then. */
static int add_tree(struct archive *tar, const char *rootfs_dir, uid_t uid_shift, gid_t gid_shift, bool vanish_ok,
		    struct image_sent_sums *sums, struct ferry_error **err)
{
	cleanup_free char *top = tree_top(rootfs_dir);
	struct stat st;
	if (stat(top, &st) < 0)
		return error_sys(err, errno, "%s", top);
	if (!S_ISDIR(st.st_mode))
		return error_set(err, 400, ENOTDIR, "%s is not a directory", top);

	struct archive *disk = archive_read_disk_new();
	archive_read_disk_set_symlink_physical(disk);
	/* Mounts inside the tree (a running container's /proc) are not its content. */
	archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS | ARCHIVE_READDISK_NO_FFLAGS);
	struct archive_entry_linkresolver *links = archive_entry_linkresolver_new();
	archive_entry_linkresolver_set_strategy(links, archive_format(tar));
	struct archive_entry *entry = archive_entry_new();
	int ret = 0;
	if (archive_read_disk_open(disk, top) != ARCHIVE_OK) {
		ret = error_set(err, 500, archive_errno(disk), "read %s: %s", top, archive_error_string(disk));
		goto out;
	}
	for (;;) {
		archive_entry_clear(entry);
		int r = archive_read_next_header2(disk, entry);
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_WARN && vanish_ok)
			log_debug("packing %s: %s", top, archive_error_string(disk));
		else if (r == ARCHIVE_WARN)
			log_warn("packing %s: %s", top, archive_error_string(disk));
		if (r == ARCHIVE_FAILED && vanish_ok && failed_on_vanished(disk, entry)) {
			log_debug("packing %s: %s: gone meanwhile", top, archive_error_string(disk));
			continue;
		}
		if (r < ARCHIVE_WARN) {
			ret = error_set(err, 500, archive_errno(disk), "read %s: %s", top, archive_error_string(disk));
			goto out;
		}
		archive_read_disk_descend(disk);
		ret = add_tree_entry(disk, tar, links, entry, strlen(top), uid_shift, gid_shift, vanish_ok, sums, err);
		if (ret < 0)
			goto out;
	}
out:
	archive_entry_free(entry);
	archive_entry_linkresolver_free(links);
	archive_read_close(disk);
	archive_read_free(disk);
	return ret;
}

int image_tar_add_tree(struct archive *tar, const char *rootfs_dir, uid_t uid_shift, gid_t gid_shift,
		       struct ferry_error **err)
{
	return add_tree(tar, rootfs_dir, uid_shift, gid_shift, false, NULL, err);
}

/* ---- the changes pass ----
 *
 * A live move walks the whole rootfs again while the container is frozen,
 * for what changed since the first pass. libarchive's walker reads every
 * entry's xattrs, ACLs and holes (~14 system calls, ~21 us an entry here:
 * 178 ms for the ~8500 entries of a Debian rootfs); this walk only lstats
 * each (along directory fds), and reads the few changed entries whole
 * through libarchive. */

struct image_tree_writer {
	struct archive *tar;
	struct archive *full; /* reads one entry at a time */
	struct archive_entry_linkresolver *links;
	struct archive_entry *entry;
	char *top;
	size_t top_len;
	uid_t uid_shift;
	gid_t gid_shift;
};

struct image_tree_writer *image_tree_writer_new(struct archive *tar, const char *top, uid_t uid_shift,
						 gid_t gid_shift)
{
	struct image_tree_writer *w = xcalloc(1, sizeof(*w));
	w->tar = tar;
	w->full = archive_read_disk_new();
	w->links = archive_entry_linkresolver_new();
	w->entry = archive_entry_new();
	w->top = tree_top(top);
	w->top_len = strlen(w->top);
	w->uid_shift = uid_shift;
	w->gid_shift = gid_shift;
	archive_read_disk_set_symlink_physical(w->full);
	archive_read_disk_set_behavior(w->full, ARCHIVE_READDISK_NO_FFLAGS);
	archive_entry_linkresolver_set_strategy(w->links, archive_format(tar));
	return w;
}

void image_tree_writer_free(struct image_tree_writer *w)
{
	if (w == NULL)
		return;
	archive_entry_free(w->entry);
	archive_entry_linkresolver_free(w->links);
	archive_read_free(w->full);
	free(w->top);
	free(w);
}

int image_tree_writer_add(struct image_tree_writer *w, const char *path, struct ferry_error **err)
{
	archive_entry_clear(w->entry);
	if (archive_read_disk_open(w->full, path) != ARCHIVE_OK)
		return error_set(err, 500, archive_errno(w->full), "read %s: %s", path, archive_error_string(w->full));
	int r = archive_read_next_header2(w->full, w->entry);
	int ret = 0;
	if (r == ARCHIVE_WARN)
		log_warn("packing %s: %s", path, archive_error_string(w->full));
	if (r == ARCHIVE_EOF || (r < ARCHIVE_WARN && archive_errno(w->full) == ENOENT))
		ret = 0; /* gone meanwhile */
	else if (r < ARCHIVE_WARN)
		ret = error_set(err, 500, archive_errno(w->full), "read %s: %s", path, archive_error_string(w->full));
	else
		ret = add_tree_entry(w->full, w->tar, w->links, w->entry, w->top_len, w->uid_shift, w->gid_shift, true,
				     NULL, err);
	archive_read_close(w->full);
	return ret;
}

struct changes_walk {
	struct image_tree_writer *w;
	dev_t dev;
	const struct timespec *since;
	image_dir_listed_fn *listed;
	void *listed_arg;
	struct image_sent_sums *sums;
};

static bool stat_changed_since(const struct stat *st, const struct timespec *since)
{
	const struct timespec *t[2] = { &st->st_ctim, &st->st_mtim };
	for (int i = 0; i < 2; i++)
		if (t[i]->tv_sec > since->tv_sec || (t[i]->tv_sec == since->tv_sec && t[i]->tv_nsec >= since->tv_nsec))
			return true;
	return false;
}

/* dir (host path, open as dfd, which this closes): its entries, and below.
 * changed: dir itself changed since w->since (an entry may have gone): its
 * names go to w->listed. */
static int walk_changes(struct changes_walk *w, int dfd, const char *dir, bool changed, struct ferry_error **err)
{
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int e = errno;
		close(dfd);
		return error_sys(err, e, "open %s", dir);
	}
	bool list = changed && w->listed != NULL;
	char **names = NULL;
	size_t n_names = 0, cap = 0;
	int ret = 0;
	struct dirent *de;
	while (ret == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		cleanup_free char *path = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				ret = error_sys(err, errno, "stat %s", path);
			continue;
		}
		if (list) {
			if (n_names == cap) {
				cap = cap ? 2 * cap : 64;
				names = realloc(names, cap * sizeof(*names));
				if (names == NULL)
					abort();
			}
			names[n_names++] = xstrdup(de->d_name);
		}
		/* Sockets belong to running processes; tar cannot hold them. */
		bool entry_changed = stat_changed_since(&st, w->since);
		int delta = 0;
		if (S_ISREG(st.st_mode) && entry_changed && w->sums != NULL)
			delta = image_tar_add_delta(w->w->tar, w->sums, path, path + w->w->top_len + 1, w->w->uid_shift,
						    w->w->gid_shift, err);
		if (delta < 0)
			ret = -1;
		else if (delta == 0 && !S_ISSOCK(st.st_mode) && entry_changed)
			ret = image_tree_writer_add(w->w, path, err);
		/* Mounts inside the tree are not its content. */
		if (ret == 0 && S_ISDIR(st.st_mode) && st.st_dev == w->dev) {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				if (errno != ENOENT)
					ret = error_sys(err, errno, "open %s", path);
				continue;
			}
			ret = walk_changes(w, sub, path, entry_changed, err);
		}
	}
	if (ret == 0 && errno != 0)
		ret = error_sys(err, errno, "read %s", dir);
	closedir(d);
	if (ret == 0 && list) {
		const char *rel = dir + w->w->top_len;
		while (*rel == '/')
			rel++;
		w->listed(rel, (const char *const *)names, n_names, w->listed_arg);
	}
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	return ret;
}

int image_tar_add_tree_changed(struct archive *tar, const char *rootfs_dir, uid_t uid_shift, gid_t gid_shift,
			       const struct timespec *since, image_dir_listed_fn *listed, void *listed_arg,
			       struct image_sent_sums *sums, struct ferry_error **err)
{
	if (since == NULL)
		return add_tree(tar, rootfs_dir, uid_shift, gid_shift, true, sums, err);
	struct changes_walk w = {
		.w = image_tree_writer_new(tar, rootfs_dir, uid_shift, gid_shift), .since = since, .listed = listed,
		.listed_arg = listed_arg, .sums = sums,
	};
	const char *top = w.w->top;
	struct stat st;
	int ret = 0;
	int dfd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &st) < 0) {
		ret = error_sys(err, errno, "open %s", top);
		if (dfd >= 0)
			close(dfd);
	} else {
		w.dev = st.st_dev;
		/* The top itself ("rootfs"), as the full walk has it. */
		bool changed = stat_changed_since(&st, since);
		if (changed)
			ret = image_tree_writer_add(w.w, top, err);
		if (ret == 0)
			ret = walk_changes(&w, dfd, top, changed, err);
		else
			close(dfd);
	}
	image_tree_writer_free(w.w);
	return ret;
}

int image_pack_rootfs(const char *rootfs_dir, const char *out_tarball, uid_t uid_shift, gid_t gid_shift,
		      char **property_keys, char **property_values, struct ferry_error **err)
{
	struct image_metadata md = {0};
	for (size_t i = 0; property_keys != NULL && property_keys[i] != NULL; i++)
		image_metadata_set_property(&md, property_keys[i], property_values[i] ? property_values[i] : "");
	const char *architecture = image_metadata_property(&md, "architecture");
	md.architecture = architecture ? xstrdup(architecture) : image_host_architecture();
	md.creation_date = time(NULL);

	cleanup_free char *yaml = NULL;
	size_t yaml_len = 0;
	cleanup_free char *tmp = xasprintf("%s.tmp-XXXXXX", out_tarball);
	struct archive *tar = NULL;
	int fd = mkostemp(tmp, O_CLOEXEC);
	int ret = -1;
	if (fd < 0) {
		error_sys(err, errno, "create %s", tmp);
		goto out;
	}
	close(fd);
	if (image_metadata_format(&md, &yaml, &yaml_len, err) < 0 || image_tar_open(&tar, tmp, err) < 0)
		goto out;
	if (image_tar_add_data(tar, "metadata.yaml", 0644, 0, 0, md.creation_date, yaml, yaml_len, err) < 0 ||
	    image_tar_add_tree(tar, rootfs_dir, uid_shift, gid_shift, err) < 0) {
		archive_write_free(tar);
		goto out;
	}
	if (image_tar_close(tar, tmp, err) < 0)
		goto out;
	if (rename(tmp, out_tarball) < 0) {
		error_sys(err, errno, "rename %s to %s", tmp, out_tarball);
		goto out;
	}
	ret = 0;
out:
	if (ret < 0) {
		unlink(tmp);
		error_wrap(err, "pack %s", rootfs_dir);
	}
	image_metadata_clear(&md);
	return ret;
}
