/* Unpacking an image's rootfs/ into a container's root filesystem.
 *
 * Three layers keep a hostile tarball inside dest: every path is normalised
 * here and refused if absolute or with ".."; libarchive's secure flags
 * refuse to write through symlinks; and the extraction runs in a thread of
 * its own (unshare(CLONE_FS): its own root and cwd, nobody else's changes)
 * that is chrooted into dest, so even a link that slipped through resolves
 * inside dest. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "image/image_internal.h"

struct unpack_job {
	int tarball_fd;
	const char *tarball;
	const char *dest;
	uid_t uid_shift;
	gid_t gid_shift;
	bool update; /* over an existing tree: no implicit directories to fix */
	struct ferry_error *err;
	int ret;
};

/* An id as the host stores it for a container whose ids start at shift.
 * Ids the container cannot map become its nobody. */
static unsigned long shift_id(unsigned long id, unsigned long shift)
{
	if (shift == 0)
		return id;
	if (id >= IMAGE_ID_RANGE)
		id = IMAGE_ID_NOBODY;
	return id + shift;
}

/* Rewrite one entry for extraction (path: its name, normalized): 1 to write
 * it, 0 to skip it, < 0 to refuse. */
static int prepare_entry(struct archive_entry *entry, const char *path, const struct unpack_job *job,
			 struct ferry_error **err)
{
	const char *raw = archive_entry_pathname(entry);
	const char *rel = image_path_under(path, "rootfs");
	/* metadata.yaml, templates/, and rootfs/ itself (dest stands for it). */
	if (rel == NULL || rel[0] == '\0')
		return 0;

	mode_t type = archive_entry_filetype(entry);
	if (type == AE_IFSOCK)
		return 0;
	/* A user namespace cannot use device nodes it did not get from the
	 * runtime, and the host must not get nodes owned by a container. */
	if ((type == AE_IFCHR || type == AE_IFBLK) && job->uid_shift != 0) {
		log_debug("unpack %s: skipping device node %s", job->tarball, raw);
		return 0;
	}

	const char *link = archive_entry_hardlink(entry);
	if (link != NULL) {
		cleanup_free char *target = image_path_normalize(link);
		const char *target_rel = target ? image_path_under(target, "rootfs") : NULL;
		if (target_rel == NULL || target_rel[0] == '\0')
			return error_bad_request(err, "refused entry %s: hard link outside rootfs/ (%s)", raw, link);
		archive_entry_set_hardlink(entry, target_rel);
	}
	archive_entry_set_pathname(entry, rel);
	archive_entry_set_uid(entry, shift_id(archive_entry_uid(entry), job->uid_shift));
	archive_entry_set_gid(entry, shift_id(archive_entry_gid(entry), job->gid_shift));
	archive_entry_set_uname(entry, NULL);
	archive_entry_set_gname(entry, NULL);
	return 1;
}

static int copy_entry_data(struct archive *reader, struct archive *writer, const char *name,
			   struct ferry_error **err)
{
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t offset;
		int r = archive_read_data_block(reader, &buf, &size, &offset);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return error_bad_request(err, "reading %s: %s", name, archive_error_string(reader));
		/* A failed write(2) (ENOSPC) is only ARCHIVE_WARN to libarchive's
		 * disk writer: a file cut short is an error here. */
		if (archive_write_data_block(writer, buf, size, offset) != ARCHIVE_OK) {
			int e = archive_errno(writer);
			return error_set(err, e == ENOSPC ? 507 : 500, e, "writing %s: %s%s%s", name,
					 archive_error_string(writer), e > 0 ? ": " : "", e > 0 ? strerror(e) : "");
		}
	}
}

static int extract_entries(struct archive *reader, struct archive *writer, const struct unpack_job *job,
			   struct ferry_error **err)
{
	for (;;) {
		struct archive_entry *entry;
		int r = archive_read_next_header(reader, &entry);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return error_bad_request(err, "%s is not a readable tarball: %s", job->tarball,
						 archive_error_string(reader));
		const char *raw = archive_entry_pathname(entry);
		cleanup_free char *path = image_path_normalize(raw);
		if (path == NULL)
			return error_bad_request(err, "refused entry %s: unsafe path", raw ? raw : "(unreadable name)");
		/* A live move's big file changed since its first pass: its changes. */
		const char *delta = job->update ? image_path_under(path, "delta") : NULL;
		if (delta != NULL) {
			if (image_delta_apply(reader, entry, delta, shift_id(archive_entry_uid(entry), job->uid_shift),
					      shift_id(archive_entry_gid(entry), job->gid_shift), err) < 0)
				return -1;
			continue;
		}
		int keep = prepare_entry(entry, path, job, err);
		if (keep < 0)
			return -1;
		if (keep == 0)
			continue;
		cleanup_free char *name = xasprintf("rootfs/%s", archive_entry_pathname(entry));
		r = archive_write_header(writer, entry);
		if (r < ARCHIVE_WARN)
			return error_bad_request(err, "refused entry %s: %s", name, archive_error_string(writer));
		if (r == ARCHIVE_WARN)
			log_warn("unpack %s: %s: %s", job->tarball, name, archive_error_string(writer));
		if (archive_entry_size(entry) > 0 && copy_entry_data(reader, writer, name, err) < 0)
			return -1;
		r = archive_write_finish_entry(writer);
		if (r < ARCHIVE_WARN)
			return error_set(err, 500, archive_errno(writer), "finishing %s: %s", name,
					 archive_error_string(writer));
		if (r == ARCHIVE_WARN)
			log_warn("unpack %s: %s: %s", job->tarball, name, archive_error_string(writer));
	}
}

static uid_t fix_uid;
static gid_t fix_gid;

/* Directories libarchive made for entries whose parents the tarball lacks
 * belong to whoever extracted (host root): give them to the container. */
static int fix_implicit_dir(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type == FTW_D && (st->st_uid < fix_uid || st->st_gid < fix_gid))
		if (lchown(path, fix_uid, fix_gid) < 0)
			return errno;
	return 0;
}

static pthread_mutex_t fix_lock = PTHREAD_MUTEX_INITIALIZER;

static int fix_implicit_dirs(uid_t uid, gid_t gid, struct ferry_error **err)
{
	pthread_mutex_lock(&fix_lock);
	fix_uid = uid;
	fix_gid = gid;
	int r = nftw(".", fix_implicit_dir, 64, FTW_PHYS | FTW_MOUNT);
	pthread_mutex_unlock(&fix_lock);
	if (r != 0)
		return error_sys(err, r > 0 ? r : errno, "set owners of directories");
	return 0;
}

static int unpack_in_dest(struct unpack_job *job, struct ferry_error **err)
{
	/* Our own root and cwd: chroot and chdir below touch no other thread. */
	if (unshare(CLONE_FS) < 0)
		return error_sys(err, errno, "unshare(CLONE_FS)");
	umask(022);

	struct archive *reader = archive_read_new();
	struct archive *writer = archive_write_disk_new();
	int ret = -1;
	archive_read_support_filter_all(reader);
	archive_read_support_format_tar(reader);
	archive_write_disk_set_options(writer, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
						       ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM |
						       ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME |
						       ARCHIVE_EXTRACT_XATTR);
	/* Opened before the chroot: decompressors may need files of the host. */
	if (archive_read_open_fd(reader, job->tarball_fd, 64 * 1024) != ARCHIVE_OK) {
		error_bad_request(err, "%s is not a tarball: %s", job->tarball, archive_error_string(reader));
		goto out;
	}
	if (chdir(job->dest) < 0) {
		error_sys(err, errno, "chdir %s", job->dest);
		goto out;
	}
	if (chroot(".") < 0) {
		if (errno != EPERM) {
			error_sys(err, errno, "chroot %s", job->dest);
			goto out;
		}
		log_warn("unpack %s: cannot chroot into %s: relying on path checks alone", job->tarball, job->dest);
	}
	if (extract_entries(reader, writer, job, err) < 0)
		goto out;
	/* Directory modes and times are set at close. */
	if (archive_write_close(writer) != ARCHIVE_OK) {
		error_set(err, 500, archive_errno(writer), "finish unpacking: %s", archive_error_string(writer));
		goto out;
	}
	if (job->uid_shift != 0 && !job->update && fix_implicit_dirs(job->uid_shift, job->gid_shift, err) < 0)
		goto out;
	ret = 0;
out:
	archive_read_free(reader);
	archive_write_free(writer);
	return ret;
}

static void *unpack_thread(void *arg)
{
	struct unpack_job *job = arg;
	job->ret = unpack_in_dest(job, &job->err);
	return NULL;
}

/* Empty dest again after a refused tarball, keeping dest itself. */
static int empty_dir(const char *dir, struct ferry_error **err)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return error_sys(err, errno, "open %s", dir);
	struct dirent *de;
	int ret = 0;
	while (ret == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		cleanup_free char *path = xasprintf("%s/%s", dir, de->d_name);
		ret = rm_rf(path, err);
	}
	closedir(d);
	return ret;
}

static int prepare_dest(const char *dest, bool *created, struct ferry_error **err)
{
	*created = false;
	if (mkdir(dest, 0755) == 0) {
		*created = true;
	} else if (errno == ENOENT) {
		if (mkdir_p(dest, 0755, err) < 0)
			return -1;
		*created = true;
	} else if (errno == EEXIST) {
		struct stat st;
		if (lstat(dest, &st) < 0)
			return error_sys(err, errno, "stat %s", dest);
		if (!S_ISDIR(st.st_mode))
			return error_set(err, 409, ENOTDIR, "%s exists and is not a directory", dest);
		DIR *d = opendir(dest);
		if (d == NULL)
			return error_sys(err, errno, "open %s", dest);
		struct dirent *de;
		bool empty = true;
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				empty = false;
		closedir(d);
		if (!empty)
			return error_set(err, 409, ENOTEMPTY, "%s is not empty", dest);
	} else {
		return error_sys(err, errno, "mkdir %s", dest);
	}
	return 0;
}

int image_unpack_update(const char *tarball, const char *dest, uid_t uid_shift, gid_t gid_shift,
			struct ferry_error **err)
{
	cleanup_close int fd = open(tarball, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "unpack %s: open", tarball);
	cleanup_free char *dest_abs = realpath(dest, NULL);
	if (dest_abs == NULL)
		return error_sys(err, errno, "unpack %s: %s", tarball, dest);
	struct unpack_job job = {
		.tarball_fd = fd, .tarball = tarball, .dest = dest_abs,
		.uid_shift = uid_shift, .gid_shift = gid_shift, .update = true,
	};
	pthread_t thread;
	int r = pthread_create(&thread, NULL, unpack_thread, &job);
	if (r != 0)
		return error_sys(err, r, "unpack %s: start the unpacking thread", tarball);
	pthread_join(thread, NULL);
	if (job.ret < 0) {
		error_move(err, &job.err);
		return error_wrap(err, "unpack %s over %s", tarball, dest);
	}
	return 0;
}

int image_unpack_rootfs(const char *tarball, const char *dest, uid_t uid_shift, gid_t gid_shift,
			struct ferry_error **err)
{
	cleanup_close int fd = open(tarball, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "unpack %s: open", tarball);
	/* chroot wants an absolute path that does not change under us. */
	cleanup_free char *dest_abs = NULL;
	bool created = false;
	if (prepare_dest(dest, &created, err) < 0)
		return error_wrap(err, "unpack %s", tarball);
	dest_abs = realpath(dest, NULL);
	if (dest_abs == NULL)
		return error_sys(err, errno, "unpack %s: %s", tarball, dest);

	struct unpack_job job = {
		.tarball_fd = fd, .tarball = tarball, .dest = dest_abs,
		.uid_shift = uid_shift, .gid_shift = gid_shift,
	};
	pthread_t thread;
	int r = pthread_create(&thread, NULL, unpack_thread, &job);
	if (r != 0) {
		job.ret = error_sys(&job.err, r, "start the unpacking thread");
	} else {
		pthread_join(thread, NULL);
	}
	if (job.ret == 0 && (lchown(dest_abs, uid_shift, gid_shift) < 0 || chmod(dest_abs, 0755) < 0))
		job.ret = error_sys(&job.err, errno, "set owner and mode of %s", dest_abs);
	if (job.ret < 0) {
		cleanup_error struct ferry_error *cleanup_err = NULL;
		if ((created ? rm_rf(dest_abs, &cleanup_err) : empty_dir(dest_abs, &cleanup_err)) < 0)
			log_error("unpack %s: cleaning up %s: %s", tarball, dest_abs, cleanup_err->msg);
		error_move(err, &job.err);
		return error_wrap(err, "unpack %s into %s", tarball, dest);
	}
	return 0;
}
