#include "common/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void cleanup_freep(void *p)
{
	free(*(void **)p);
}

void cleanup_closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

void cleanup_fclosep(FILE **f)
{
	if (*f != NULL)
		fclose(*f);
}

void cleanup_strvp(char ***v)
{
	strv_free(*v);
}

char *xasprintf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	return s;
}

char *xstrdup(const char *s)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		abort();
	return p;
}

size_t strv_len(char *const *v)
{
	size_t n = 0;
	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

pid_t *pids_parse(const char *text, size_t *n)
{
	size_t cap = 16;
	pid_t *pids = xcalloc(cap, sizeof(pid_t));
	*n = 0;
	for (const char *p = text; p != NULL && *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (*n == cap) {
			cap *= 2;
			pids = realloc(pids, cap * sizeof(pid_t));
			if (pids == NULL)
				abort();
		}
		pids[(*n)++] = (pid_t)v;
		p = end;
	}
	return pids;
}

char **environ_without(const char *drop, char *const *extra)
{
	extern char **environ;
	size_t n_env = strv_len(environ);
	size_t n_extra = strv_len(extra);
	char **envp = xcalloc(n_env + n_extra + 1, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n_env; i++)
		if (strncmp(environ[i], drop, strlen(drop)) != 0)
			envp[k++] = environ[i];
	for (size_t i = 0; i < n_extra; i++)
		envp[k++] = extra[i];
	return envp;
}

void strv_free(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

int file_read(const char *path, char **out, size_t *len, struct ferry_error **err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "open %s", path);
	size_t cap = 4096, n = 0;
	cleanup_free char *buf = malloc(cap);
	if (buf == NULL)
		abort();
	for (;;) {
		if (n + 1 >= cap) {
			cap *= 2;
			char *nb = realloc(buf, cap);
			if (nb == NULL)
				abort();
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return error_sys(err, errno, "read %s", path);
		if (r == 0)
			break;
		n += r;
	}
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	*out = steal_pointer(&buf);
	return 0;
}

int fd_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= w;
	}
	return 0;
}

static int file_write_renamed(const char *path, const void *data, size_t len, mode_t mode, bool sync,
			      struct ferry_error **err)
{
	cleanup_free char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
	cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return error_sys(err, errno, "create %s", tmp);
	if (fd_write_all(fd, data, len) < 0 || (sync && fsync(fd) < 0)) {
		int e = errno;
		unlink(tmp);
		return error_sys(err, e, "write %s", tmp);
	}
	if (rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		return error_sys(err, e, "rename %s to %s", tmp, path);
	}
	return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct ferry_error **err)
{
	return file_write_renamed(path, data, len, mode, true, err);
}

int file_write_volatile(const char *path, const void *data, size_t len, mode_t mode, struct ferry_error **err)
{
	return file_write_renamed(path, data, len, mode, false, err);
}

int file_write_string(const char *path, const char *value, struct ferry_error **err)
{
	cleanup_close int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "open %s", path);
	if (fd_write_all(fd, value, strlen(value)) < 0)
		return error_sys(err, errno, "write '%s' to %s", value, path);
	return 0;
}

int mkdir_p(const char *path, mode_t mode, struct ferry_error **err)
{
	cleanup_free char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return error_sys(err, errno, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return error_sys(err, errno, "mkdir %s", p);
	return 0;
}

static int rm_rf_dev(int parent, const char *name, dev_t dev, struct ferry_error **err)
{
	struct stat st;
	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : error_sys(err, errno, "stat %s", name);
	if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(parent, name, 0) < 0 && errno != ENOENT)
			return error_sys(err, errno, "unlink %s", name);
		return 0;
	}
	if (st.st_dev != dev)
		return error_set(err, 500, EBUSY, "%s is a mount point: not removing it", name);
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "open %s", name);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return error_sys(err, errno, "opendir %s", name);
	}
	struct dirent *de;
	int ret = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (rm_rf_dev(dirfd(d), de->d_name, dev, err) < 0) {
			ret = error_wrap(err, "%s", name);
			break;
		}
	}
	closedir(d);
	if (ret == 0 && unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return error_sys(err, errno, "rmdir %s", name);
	return ret;
}

int rm_rf(const char *path, struct ferry_error **err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : error_sys(err, errno, "stat %s", path);
	return rm_rf_dev(AT_FDCWD, path, st.st_dev, err);
}

int rm_rf_at(int dirfd, const char *name, struct ferry_error **err)
{
	struct stat st;
	if (fstat(dirfd, &st) < 0)
		return error_sys(err, errno, "stat the directory of %s", name);
	return rm_rf_dev(dirfd, name, st.st_dev, err);
}

int file_move(const char *from, const char *to, struct ferry_error **err)
{
	if (rename(from, to) == 0)
		return 0;
	if (errno != EXDEV)
		return error_sys(err, errno, "rename %s to %s", from, to);
	cleanup_close int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return error_sys(err, errno, "open %s", from);
	cleanup_close int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (out < 0)
		return error_sys(err, errno, "create %s", to);
	for (;;) {
		ssize_t n = sendfile(out, in, NULL, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			unlink(to);
			return error_sys(err, e, "copy %s to %s", from, to);
		}
		if (n == 0)
			break;
	}
	if (unlink(from) < 0)
		return error_sys(err, errno, "remove %s", from);
	return 0;
}

long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *time_rfc3339(const struct timespec *ts)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	return xasprintf("%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec);
}

void spawnattr_init_unblocked(posix_spawnattr_t *attr, bool new_session)
{
	posix_spawnattr_init(attr);
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | (new_session ? POSIX_SPAWN_SETSID : 0));
}
