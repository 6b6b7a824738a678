/* Is this a unified tarball we are willing to keep? Read every entry once,
 * before the image goes into the store, so that whatever the daemon later
 * unpacks was already looked at. Unpacking repeats the safety checks itself. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "image/image_internal.h"

/* metadata.yaml is a few hundred bytes; refuse to slurp a huge one. */
#define METADATA_MAX (1024 * 1024)

static int compare_strings(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void free_tree(void **symlinks)
{
	tdestroy(*symlinks, free);
}

/* The first symlink (seen earlier in the archive) that path goes through, or NULL. */
static const char *through_symlink(void *symlinks, const char *path)
{
	cleanup_free char *prefix = xstrdup(path);
	for (char *slash = strchr(prefix, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		void *found = tfind(prefix, &symlinks, compare_strings);
		*slash = '/';
		if (found != NULL)
			return *(const char **)found;
	}
	return NULL;
}

static void remember_entry(void **symlinks, const char *path, bool is_symlink)
{
	void *found = tfind(path, symlinks, compare_strings);
	if (is_symlink && found == NULL) {
		tsearch(xstrdup(path), symlinks, compare_strings);
	} else if (!is_symlink && found != NULL) {
		/* A later entry of the same name replaces the symlink on extraction. */
		char *key = *(char **)found;
		tdelete(path, symlinks, compare_strings);
		free(key);
	}
}

static int read_metadata(struct archive *ar, struct archive_entry *entry, char **out, size_t *len,
			 struct ferry_error **err)
{
	if (archive_entry_filetype(entry) != AE_IFREG)
		return error_bad_request(err, "metadata.yaml is not a regular file");
	if (archive_entry_size(entry) > METADATA_MAX)
		return error_bad_request(err, "metadata.yaml is larger than %d bytes", METADATA_MAX);
	size_t size = archive_entry_size(entry);
	cleanup_free char *buf = xcalloc(size + 1, 1);
	size_t n = 0;
	while (n < size) {
		la_ssize_t r = archive_read_data(ar, buf + n, size - n);
		if (r < 0)
			return error_bad_request(err, "reading metadata.yaml: %s", archive_error_string(ar));
		if (r == 0)
			break;
		n += r;
	}
	*len = n;
	*out = steal_pointer(&buf);
	return 0;
}

static int check_entry(struct archive *ar, struct archive_entry *entry, void **symlinks, char **metadata,
		       size_t *metadata_len, bool *has_rootfs, struct ferry_error **err)
{
	const char *raw = archive_entry_pathname(entry);
	cleanup_free char *path = image_path_normalize(raw);
	if (path == NULL)
		return error_bad_request(err, "unsafe path in image: %s", raw ? raw : "(unreadable name)");
	if (path[0] == '\0')
		return 0;
	if (strcmp(path, "metadata.yaml") == 0) {
		if (*metadata != NULL)
			return error_bad_request(err, "metadata.yaml appears twice");
		return read_metadata(ar, entry, metadata, metadata_len, err);
	}
	bool in_rootfs = image_path_under(path, "rootfs") != NULL;
	if (!in_rootfs && image_path_under(path, "templates") == NULL)
		return error_bad_request(err, "unexpected entry %s (a unified image holds metadata.yaml, templates/ and "
					      "rootfs/)", raw);
	if (in_rootfs)
		*has_rootfs = true;

	const char *via = through_symlink(*symlinks, path);
	if (via != NULL)
		return error_bad_request(err, "entry %s goes through the symlink %s", raw, via);

	const char *link = archive_entry_hardlink(entry);
	if (link != NULL) {
		cleanup_free char *target = image_path_normalize(link);
		if (target == NULL || image_path_under(target, in_rootfs ? "rootfs" : "templates") == NULL)
			return error_bad_request(err, "hard link %s points outside its directory: %s", raw, link);
		via = through_symlink(*symlinks, target);
		if (via != NULL)
			return error_bad_request(err, "hard link %s goes through the symlink %s", raw, via);
	}
	remember_entry(symlinks, path, archive_entry_filetype(entry) == AE_IFLNK);
	return 0;
}

int image_tarball_check(int fd, const char *name, struct image_metadata *md, struct ferry_error **err)
{
	if (lseek(fd, 0, SEEK_SET) < 0)
		return error_sys(err, errno, "seek %s", name);
	struct archive *ar = archive_read_new();
	archive_read_support_filter_all(ar);
	archive_read_support_format_tar(ar);
	__attribute__((cleanup(free_tree))) void *symlinks = NULL;
	cleanup_free char *metadata = NULL;
	size_t metadata_len = 0;
	bool has_rootfs = false;
	int ret = 0;

	if (archive_read_open_fd(ar, fd, 64 * 1024) != ARCHIVE_OK) {
		ret = error_bad_request(err, "%s is not a tarball: %s", name, archive_error_string(ar));
		goto out;
	}
	for (;;) {
		struct archive_entry *entry;
		int r = archive_read_next_header(ar, &entry);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			ret = error_bad_request(err, "%s is not a readable tarball: %s", name, archive_error_string(ar));
			goto out;
		}
		ret = check_entry(ar, entry, &symlinks, &metadata, &metadata_len, &has_rootfs, err);
		if (ret < 0)
			goto out;
	}
	if (metadata == NULL) {
		ret = error_bad_request(err, "%s has no metadata.yaml: not a unified image tarball", name);
		goto out;
	}
	if (!has_rootfs) {
		ret = error_bad_request(err, "%s has no rootfs/: not a unified image tarball", name);
		goto out;
	}
	ret = image_metadata_parse(metadata, metadata_len, md, err);
out:
	archive_read_free(ar);
	return ret;
}
