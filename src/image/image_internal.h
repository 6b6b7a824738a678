/* What the files of src/image share and nothing outside needs: metadata.yaml,
 * tarball paths, the tar writer, the store, and running host tools. */
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "common/error.h"
#include "image/image.h"

/* A container inside the container: the ids a shifted rootfs may use. */
#define IMAGE_ID_RANGE 65536
#define IMAGE_ID_NOBODY 65534

/* metadata.yaml, as LXD writes it. */
struct image_metadata {
	char *architecture;
	long long creation_date;
	char **property_keys;   /* NULL-terminated, same length as values */
	char **property_values;
};
void image_metadata_clear(struct image_metadata *md);
void image_metadata_set_property(struct image_metadata *md, const char *key, const char *value);
const char *image_metadata_property(const struct image_metadata *md, const char *key);
/* Parse metadata.yaml; 400 on anything that is not LXD's shape. */
int image_metadata_parse(const char *text, size_t len, struct image_metadata *out, struct ferry_error **err);
/* Render metadata.yaml (malloc'd, NUL-terminated). */
int image_metadata_format(const struct image_metadata *md, char **out, size_t *len, struct ferry_error **err);
/* The host's architecture as LXD names it ("x86_64"). */
char *image_host_architecture(void);

/* A path from a tarball without "./", "//" or a trailing "/": NULL when it is
 * absolute or has a ".." component, "" for the archive's top. */
char *image_path_normalize(const char *path);
/* The rest of path below top ("" for top itself), or NULL if not under it. */
const char *image_path_under(const char *path, const char *top);

/* Check that fd holds a unified tarball (any compression libarchive reads):
 * metadata.yaml that parses, rootfs/, only safe paths, hard links inside
 * rootfs/, nothing going through a symlink. Fills md. Errors are 400. */
int image_tarball_check(int fd, const char *name, struct image_metadata *md, struct ferry_error **err);

/* The tar writer every image is made with: gzip, pax where needed, a gzip
 * header without a timestamp so equal content gives an equal file. */
int image_tar_open(struct archive **out, const char *path, struct ferry_error **err);
int image_tar_close(struct archive *tar, const char *path, struct ferry_error **err);
/* archive_write_header, its failure an error naming the entry. */
int image_tar_write_header(struct archive *tar, struct archive_entry *entry, struct ferry_error **err);
/* archive_write_data of all len bytes, a short write an error naming path. */
int image_tar_write_data(struct archive *tar, const void *data, size_t len, const char *path,
			 struct ferry_error **err);
int image_tar_add_dir(struct archive *tar, const char *path, mode_t mode, uid_t uid, gid_t gid, time_t mtime,
		      struct ferry_error **err);
int image_tar_add_data(struct archive *tar, const char *path, mode_t mode, uid_t uid, gid_t gid, time_t mtime,
		       const void *data, size_t len, struct ferry_error **err);
int image_tar_add_symlink(struct archive *tar, const char *path, const char *target, time_t mtime,
			  struct ferry_error **err);
/* A host file's content under path in the tarball (owner root). */
int image_tar_add_host_file(struct archive *tar, const char *path, const char *host_path, mode_t mode,
			    time_t mtime, struct ferry_error **err);
/* Everything under rootfs_dir as rootfs/..., owners less the shift. */
int image_tar_add_tree(struct archive *tar, const char *rootfs_dir, uid_t uid_shift, gid_t gid_shift,
		       struct ferry_error **err);
/* An id as the container sees it (IMAGE_ID_NOBODY if it can't). */
unsigned long image_id_unshift(unsigned long id, unsigned long shift);

/* A live move's big files, sent again as their changed blocks (delta.c):
 * the first pass keeps a checksum of each block it sent of every regular
 * file of IMAGE_DELTA_MIN bytes or more; the pass while the instance is
 * frozen sends such a file, changed since, as "delta/PATH" with the blocks
 * that differ, which the target writes into the file it has. */
#define IMAGE_DELTA_MIN (1024 * 1024)
#define IMAGE_DELTA_BLOCK (64 * 1024)
struct image_sent_sums;
struct image_sent_sums *image_sent_sums_new(void);
void image_sent_sums_free(struct image_sent_sums *sums);
struct image_delta_stats {
	size_t summed_files;	      /* files summed by the first pass */
	unsigned long long summed_bytes;
	size_t delta_files;	      /* of those, sent again as their changes */
	unsigned long long delta_bytes;	  /* their size */
	unsigned long long delta_changed; /* the bytes that went */
};
struct image_delta_stats image_sent_sums_stats(const struct image_sent_sums *sums);
/* One file's sums, fed its bytes as they are sent, in order; ended, they
 * join sums under rel. */
struct image_file_sums;
struct image_file_sums *image_sums_begin(const char *rel);
void image_sums_feed(struct image_file_sums *f, const void *data, size_t len);
void image_sums_end(struct image_sent_sums *sums, struct image_file_sums *f);
/* path (rel below the tree's top), if sums has it and it is still a file
 * of one link, as delta/REL: 1 sent so, 0 not (send it whole), -1 error. */
int image_tar_add_delta(struct archive *tar, struct image_sent_sums *sums, const char *path, const char *rel,
			uid_t uid_shift, gid_t gid_shift, struct ferry_error **err);
/* The target's side: the data of entry (delta/REL, read from reader) into
 * the file REL below the cwd, then uid, gid, mode and times. */
int image_delta_apply(struct archive *reader, struct archive_entry *entry, const char *rel, uid_t uid, gid_t gid,
		      struct ferry_error **err);

/* A directory (rel: below rootfs_dir, "" for itself, "etc", "usr/lib")
 * and every name in it. */
typedef void image_dir_listed_fn(const char *rel, const char *const *names, size_t n, void *arg);
/* The same, of a tree that may be in use, but only entries changed (ctime
 * or mtime) at or after since (NULL: all, and listed is not called; an
 * entry removed during the walk is no error); listed (may be NULL) gets each
 * directory that changed so (an entry added, removed or renamed changes
 * it), with all its names: what the tree lost since is what such a
 * directory no longer names. sums (may be NULL): without since, the big
 * files' sums go there; with since, a big file changed goes as its
 * changes (image_tar_add_delta). */
int image_tar_add_tree_changed(struct archive *tar, const char *rootfs_dir, uid_t uid_shift, gid_t gid_shift,
			       const struct timespec *since, image_dir_listed_fn *listed, void *listed_arg,
			       struct image_sent_sums *sums, struct ferry_error **err);

/* Entries of a tree on disk (host paths under top), one at a time, into
 * tar as rootfs/...: whole (metadata, xattrs, data; hard links as links
 * after the first), owners less the shift. A live move streams CRIU's
 * images through one as CRIU closes them. */
struct image_tree_writer;
struct image_tree_writer *image_tree_writer_new(struct archive *tar, const char *top, uid_t uid_shift,
						 gid_t gid_shift);
/* path: top or below it; gone meanwhile: nothing, 0. */
int image_tree_writer_add(struct image_tree_writer *w, const char *path, struct ferry_error **err);
void image_tree_writer_free(struct image_tree_writer *w);

/* A new temporary file in the store for a tarball being made (path malloc'd). */
int image_store_tmpfile(const char *store_dir, char **path, struct ferry_error **err);
/* Check the finished tarball at tmp_path, name it by its sha256 in the store,
 * record its info beside it. tmp_path is gone afterwards, in every case. An
 * image already in the store is not an error: its info is returned. */
int image_store_add(const char *store_dir, const char *tmp_path, struct image_info *out, struct ferry_error **err);

/* Run argv (absolute path) with stdin /dev/null. stdout is captured into
 * *out when out is not NULL; otherwise stdout and stderr go to log_path
 * (appended), or /dev/null. Fails unless it exits 0. */
int image_run(char *const argv[], char **out, const char *log_path, struct ferry_error **err);

/* The mirror URI apt uses for suite ("bookworm"), from a deb822 .sources
 * file or a one-line sources.list; NULL if none (malloc'd). */
char *image_apt_mirror_deb822(const char *text, const char *suite);
char *image_apt_mirror_list(const char *text, const char *suite);
