/* /1.0/instances/{name}/files?path=P: pull (GET), push (POST), delete.
 *
 * Every path resolves inside the instance's rootfs with openat2's
 * RESOLVE_IN_ROOT: ".." and absolute symlinks inside the rootfs stop at
 * its root, so nothing a container writes can send ferryd's writes onto
 * the host. Works whether the instance runs or not (the rootfs is a
 * directory on disk). Owners are container ids on the wire and shifted by
 * the instance's idmap on disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/instance.h"
#include "daemon/request.h"

static int openat2_in_root(int rootfd, const char *path, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC),
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd;
	do {
		fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	} while (fd < 0 && errno == EAGAIN);
	return fd;
}

/* A path in the instance, parsed: the fd of its rootfs, and of the
 * directory holding its last component. */
struct instance_path {
	char *name;          /* instance */
	char *path;          /* as given */
	char *base;          /* last component, NULL for "/" */
	int rootfd;
	int parentfd;
	struct instance_idmap idmap;
};

static void instance_path_clear(struct instance_path *p)
{
	free(p->name);
	free(p->path);
	free(p->base);
	if (p->rootfd >= 0)
		close(p->rootfd);
	if (p->parentfd >= 0)
		close(p->parentfd);
}

static int instance_path_open(const char *name, const char *path, struct instance_path *p, struct ferry_error **err)
{
	*p = (struct instance_path){ .rootfd = -1, .parentfd = -1 };
	if (path == NULL || path[0] == '\0')
		return error_bad_request(err, "Missing path argument");
	if (path[0] != '/')
		return error_bad_request(err, "Path \"%s\" isn't absolute", path);
	if (instance_idmap(name, &p->idmap, err) < 0)
		return -1;
	p->name = xstrdup(name);
	p->path = xstrdup(path);
	cleanup_free char *rootfs = instance_rootfs(name);
	p->rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->rootfd < 0)
		return error_sys(err, errno, "instance \"%s\": open rootfs", name);

	/* Split into parent and last component, ignoring trailing slashes. */
	cleanup_free char *copy = xstrdup(path);
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	char *slash = strrchr(copy, '/');
	const char *base = slash + 1;
	if (base[0] == '\0') {
		p->parentfd = openat2_in_root(p->rootfd, "/", O_PATH | O_DIRECTORY, 0);
		if (p->parentfd < 0)
			return error_sys(err, errno, "instance \"%s\": open /", name);
		return 0;
	}
	if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		return error_bad_request(err, "Path \"%s\" must name a file, not \".\" or \"..\"", path);
	p->base = xstrdup(base);
	*slash = '\0';
	const char *parent = copy[0] == '\0' ? "/" : copy;
	p->parentfd = openat2_in_root(p->rootfd, parent, O_PATH | O_DIRECTORY, 0);
	if (p->parentfd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return error_not_found(err, "Path \"%s\" not found in instance \"%s\"", path, name);
		return error_sys(err, errno, "instance \"%s\": open %s", name, parent);
	}
	return 0;
}

static struct response *error_response(struct ferry_error *err)
{
	return response_from_error(err);
}

static void add_owner_headers(struct response *resp, const struct instance_path *p, const struct stat *st,
			      const char *type)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%u", instance_idmap_from_host(&p->idmap, st->st_uid));
	response_add_header(resp, "X-LXD-uid", buf);
	snprintf(buf, sizeof(buf), "%u", instance_idmap_from_host(&p->idmap, st->st_gid));
	response_add_header(resp, "X-LXD-gid", buf);
	snprintf(buf, sizeof(buf), "%04o", (unsigned)(st->st_mode & 07777));
	response_add_header(resp, "X-LXD-mode", buf);
	response_add_header(resp, "X-LXD-type", type);
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct response *files_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	struct instance_path p;
	struct response *resp = NULL;
	struct stat st;

	if (instance_path_open(req->params[0], request_query(req, "path"), &p, &err) < 0) {
		resp = error_response(err);
		goto out;
	}
	const char *base = p.base ? p.base : ".";
	if (fstatat(p.parentfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			error_not_found(&err, "Path \"%s\" not found in instance \"%s\"", p.path, p.name);
		else
			error_sys(&err, errno, "instance \"%s\": stat %s", p.name, p.path);
		resp = error_response(err);
		goto out;
	}
	if (S_ISLNK(st.st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(p.parentfd, base, target, sizeof(target));
		if (n < 0) {
			error_sys(&err, errno, "instance \"%s\": readlink %s", p.name, p.path);
			resp = error_response(err);
			goto out;
		}
		resp = response_raw(200, "application/octet-stream", strndup(target, (size_t)n), (size_t)n);
		add_owner_headers(resp, &p, &st, "symlink");
	} else if (S_ISDIR(st.st_mode)) {
		int dfd = openat2_in_root(p.parentfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
		if (dir == NULL) {
			error_sys(&err, errno, "instance \"%s\": open directory %s", p.name, p.path);
			if (dfd >= 0)
				close(dfd);
			resp = error_response(err);
			goto out;
		}
		size_t n = 0, cap = 16;
		char **names = xcalloc(cap, sizeof(char *));
		struct dirent *de;
		while ((de = readdir(dir)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (n + 1 >= cap) {
				cap *= 2;
				names = realloc(names, cap * sizeof(char *));
				if (names == NULL)
					abort();
			}
			names[n++] = xstrdup(de->d_name);
		}
		names[n] = NULL;
		closedir(dir);
		qsort(names, n, sizeof(char *), compare_names);
		json_t *list = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, json_string(names[i]));
		strv_free(names);
		resp = response_sync(list);
		add_owner_headers(resp, &p, &st, "directory");
	} else if (S_ISREG(st.st_mode)) {
		int fd = openat2_in_root(p.parentfd, base, O_RDONLY | O_NOFOLLOW, 0);
		if (fd < 0 || fstat(fd, &st) < 0) {
			error_sys(&err, errno, "instance \"%s\": open %s", p.name, p.path);
			if (fd >= 0)
				close(fd);
			resp = error_response(err);
			goto out;
		}
		resp = response_fd(200, "application/octet-stream", fd, (size_t)st.st_size);
		cleanup_free char *disposition = xasprintf("inline;filename=%s", base);
		response_add_header(resp, "Content-Disposition", disposition);
		add_owner_headers(resp, &p, &st, "file");
	} else {
		resp = response_error(400, "Path \"%s\" is not a file, directory or symlink", p.path);
	}
out:
	instance_path_clear(&p);
	return resp;
}

/* X-LXD-uid/gid/mode: -1 when absent, as LXD's ParseLXDFileHeaders. */
static int header_number(struct request *req, const char *name, int base, long *out, struct ferry_error **err)
{
	const char *v = request_header(req, name);
	*out = -1;
	if (v == NULL || v[0] == '\0')
		return 0;
	char *end = NULL;
	errno = 0;
	long n = strtol(v, &end, base);
	if (errno != 0 || *end != '\0' || n < -1)
		return error_bad_request(err, "Invalid %s header \"%s\"", name, v);
	*out = n;
	return 0;
}

static int write_all(int fd, const char *data, size_t len, struct ferry_error **err)
{
	return fd_write_all(fd, data, len) < 0 ? error_sys(err, errno, "write") : 0;
}

static int write_body(struct request *req, int fd, struct ferry_error **err)
{
	if (req->body_file != NULL) {
		cleanup_close int in = open(req->body_file, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			return error_sys(err, errno, "open %s", req->body_file);
		char buf[65536];
		for (;;) {
			ssize_t n = read(in, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return error_sys(err, errno, "read %s", req->body_file);
			if (n == 0)
				return 0;
			if (write_all(fd, buf, (size_t)n, err) < 0)
				return -1;
		}
	}
	if (req->raw_body != NULL && req->raw_len > 0)
		return write_all(fd, req->raw_body, req->raw_len, err);
	return 0;
}

/* Own and mode of what fd is, as the request asks (new: root, default mode). */
static int apply_owner_mode(int fd, const struct instance_path *p, long uid, long gid, long mode, bool created,
			    mode_t default_mode, struct ferry_error **err)
{
	if (created || uid >= 0 || gid >= 0) {
		unsigned cuid = uid >= 0 ? (unsigned)uid : 0, cgid = gid >= 0 ? (unsigned)gid : 0;
		if (!created) {
			struct stat st;
			if (fstat(fd, &st) == 0) {
				if (uid < 0)
					cuid = instance_idmap_from_host(&p->idmap, st.st_uid);
				if (gid < 0)
					cgid = instance_idmap_from_host(&p->idmap, st.st_gid);
			}
		}
		if (fchown(fd, instance_idmap_to_host(&p->idmap, cuid), instance_idmap_to_host(&p->idmap, cgid)) < 0)
			return error_sys(err, errno, "instance \"%s\": chown %s", p->name, p->path);
	}
	if (created || mode >= 0) {
		/* chown cleared setuid/setgid: set the mode after it. */
		if (fchmod(fd, mode >= 0 ? (mode_t)mode : default_mode) < 0)
			return error_sys(err, errno, "instance \"%s\": chmod %s", p->name, p->path);
	}
	return 0;
}

static struct response *files_post(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	struct instance_path p;
	struct response *resp = NULL;
	long uid, gid, mode;
	const char *type = request_header(req, "X-LXD-type");
	const char *write_mode = request_header(req, "X-LXD-write");

	if (type == NULL || type[0] == '\0')
		type = "file";
	if (write_mode == NULL || write_mode[0] == '\0')
		write_mode = "overwrite";
	if (strcmp(write_mode, "overwrite") != 0 && strcmp(write_mode, "append") != 0)
		return response_error(400, "Bad file write mode: %s", write_mode);
	if (strcmp(type, "file") != 0 && strcmp(type, "directory") != 0 && strcmp(type, "symlink") != 0)
		return response_error(400, "Bad file type: %s", type);
	if (header_number(req, "X-LXD-uid", 10, &uid, &err) < 0 || header_number(req, "X-LXD-gid", 10, &gid, &err) < 0 ||
	    header_number(req, "X-LXD-mode", 8, &mode, &err) < 0)
		return error_response(err);
	if (uid >= (long)INSTANCE_IDMAP_RANGE || gid >= (long)INSTANCE_IDMAP_RANGE)
		return response_error(400, "Owner %ld:%ld is outside the instance's id range 0-%u", uid, gid,
				      INSTANCE_IDMAP_RANGE - 1);
	if (mode > 07777)
		return response_error(400, "Invalid X-LXD-mode %lo", mode);
	if (instance_path_open(req->params[0], request_query(req, "path"), &p, &err) < 0) {
		resp = error_response(err);
		goto out;
	}
	if (p.base == NULL) {
		resp = response_error(400, "Can't replace the root directory");
		goto out;
	}

	struct stat st;
	bool exists = fstatat(p.parentfd, p.base, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (strcmp(type, "file") == 0) {
		int flags = O_WRONLY | O_CREAT | (strcmp(write_mode, "append") == 0 ? O_APPEND : O_TRUNC);
		/* Follows a symlink at the end too, but only inside the rootfs. */
		cleanup_close int fd = openat2_in_root(p.rootfd, p.path, flags, 0600);
		if (fd < 0) {
			error_sys(&err, errno, "instance \"%s\": open %s", p.name, p.path);
			resp = error_response(err);
			goto out;
		}
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			resp = response_error(400, "Path \"%s\" is not a regular file", p.path);
			goto out;
		}
		if (apply_owner_mode(fd, &p, uid, gid, mode, !exists, 0644, &err) < 0 || write_body(req, fd, &err) < 0) {
			error_wrap(&err, "push %s", p.path);
			resp = error_response(err);
			goto out;
		}
	} else if (strcmp(type, "directory") == 0) {
		if (mkdirat(p.parentfd, p.base, 0700) < 0 && errno != EEXIST) {
			error_sys(&err, errno, "instance \"%s\": mkdir %s", p.name, p.path);
			resp = error_response(err);
			goto out;
		}
		cleanup_close int fd = openat2_in_root(p.parentfd, p.base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
		if (fd < 0) {
			error_sys(&err, errno, "instance \"%s\": open directory %s", p.name, p.path);
			resp = error_response(err);
			goto out;
		}
		if (apply_owner_mode(fd, &p, uid, gid, mode, !exists, 0755, &err) < 0) {
			resp = error_response(err);
			goto out;
		}
	} else {
		cleanup_free char *target = NULL;
		if (req->raw_body != NULL)
			target = strndup(req->raw_body, req->raw_len);
		else if (req->body_file != NULL && file_read(req->body_file, &target, NULL, &err) < 0) {
			resp = error_response(err);
			goto out;
		}
		if (target == NULL || target[0] == '\0') {
			resp = response_error(400, "A symlink needs its target as the body");
			goto out;
		}
		if (exists && !S_ISDIR(st.st_mode) && unlinkat(p.parentfd, p.base, 0) < 0) {
			error_sys(&err, errno, "instance \"%s\": replace %s", p.name, p.path);
			resp = error_response(err);
			goto out;
		}
		if (symlinkat(target, p.parentfd, p.base) < 0) {
			error_sys(&err, errno, "instance \"%s\": symlink %s", p.name, p.path);
			resp = error_response(err);
			goto out;
		}
		unsigned cuid = uid >= 0 ? (unsigned)uid : 0, cgid = gid >= 0 ? (unsigned)gid : 0;
		if (fchownat(p.parentfd, p.base, instance_idmap_to_host(&p.idmap, cuid),
			     instance_idmap_to_host(&p.idmap, cgid), AT_SYMLINK_NOFOLLOW) < 0) {
			error_sys(&err, errno, "instance \"%s\": chown %s", p.name, p.path);
			resp = error_response(err);
			goto out;
		}
	}
	resp = response_sync(NULL);
out:
	instance_path_clear(&p);
	return resp;
}

static struct response *files_delete(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	struct instance_path p;
	struct response *resp = NULL;
	if (instance_path_open(req->params[0], request_query(req, "path"), &p, &err) < 0) {
		resp = error_response(err);
		goto out;
	}
	if (p.base == NULL) {
		resp = response_error(400, "Can't delete the root directory");
		goto out;
	}
	if (unlinkat(p.parentfd, p.base, 0) < 0) {
		if (errno == EISDIR && unlinkat(p.parentfd, p.base, AT_REMOVEDIR) == 0) {
			resp = response_sync(NULL);
			goto out;
		}
		if (errno == ENOENT)
			error_not_found(&err, "Path \"%s\" not found in instance \"%s\"", p.path, p.name);
		else
			error_sys(&err, errno, "instance \"%s\": delete %s", p.name, p.path);
		resp = error_response(err);
		goto out;
	}
	resp = response_sync(NULL);
out:
	instance_path_clear(&p);
	return resp;
}

const struct route api_instance_files_routes[] = {
	{ "GET", "/1.0/instances/{name}/files", files_get },
	{ "POST", "/1.0/instances/{name}/files", files_post },
	{ "DELETE", "/1.0/instances/{name}/files", files_delete },
	{ NULL },
};
