/* The busybox image: Debian's busybox-static and a handful of files, made
 * straight into a tarball (no rootfs on disk), offline, in well under a
 * second. Every mtime and the creation date are the busybox binary's mtime,
 * so the same busybox gives the same bytes and the same fingerprint. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "image/image_internal.h"

#define HOST_BUSYBOX "/bin/busybox"

/* A dynamic busybox would need the host's libc inside the container. */
static int check_static_elf(const char *path, struct ferry_error **err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "open %s (install busybox-static)", path);
	Elf64_Ehdr header;
	if (pread(fd, &header, sizeof(header), 0) != sizeof(header) || memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 ||
	    header.e_ident[EI_CLASS] != ELFCLASS64)
		return error_set(err, 500, ENOEXEC, "%s is not a 64-bit ELF executable", path);
	for (unsigned i = 0; i < header.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph), header.e_phoff + (off_t)i * header.e_phentsize) != sizeof(ph))
			return error_set(err, 500, ENOEXEC, "%s: truncated program headers", path);
		if (ph.p_type == PT_INTERP)
			return error_set(err, 500, ENOEXEC,
					 "%s is dynamically linked: install busybox-static, not busybox", path);
	}
	return 0;
}

/* "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary." -> "1.35.0" */
static int busybox_version(char **version, struct ferry_error **err)
{
	char *const argv[] = {HOST_BUSYBOX, "--help", NULL};
	cleanup_free char *help = NULL;
	/* busybox --help exits 0 on Debian; some builds exit 1, so read what it said anyway. */
	cleanup_error struct ferry_error *run_err = NULL;
	image_run(argv, &help, NULL, &run_err);
	const char *v = help ? strstr(help, "BusyBox v") : NULL;
	if (v == NULL)
		return error_set(err, 500, 0, "cannot read the version of %s", HOST_BUSYBOX);
	v += strlen("BusyBox v");
	*version = strndup(v, strcspn(v, " \n"));
	return 0;
}

static const char inittab[] =
	"# The runtime mounts /proc, /sys, /dev and sets the hostname.\n"
	"::sysinit:/bin/mkdir -p /run /tmp /var/log /var/run\n"
	"# The console is the container's own pty.\n"
	"::askfirst:-/bin/sh\n"
	"::ctrlaltdel:/sbin/reboot\n"
	"::shutdown:/bin/sync\n";

static const char passwd[] =
	"root:x:0:0:root:/root:/bin/sh\n"
	"www-data:x:33:33:www-data:/var/www:/bin/false\n"
	"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

static const char shadow[] =
	"root:*:19000:0:99999:7:::\n"
	"www-data:*:19000:0:99999:7:::\n"
	"nobody:*:19000:0:99999:7:::\n";

static const char group[] =
	"root:x:0:\n"
	"www-data:x:33:\n"
	"nogroup:x:65534:\n";

static const char hosts[] =
	"127.0.0.1\tlocalhost\n"
	"::1\tlocalhost ip6-localhost ip6-loopback\n";

static const char profile[] =
	"export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	"export PS1='\\h:\\w\\$ '\n";

struct dir_spec {
	const char *path;
	mode_t mode;
	uid_t owner;
};

static const struct dir_spec dirs[] = {
	{"rootfs", 0755, 0},
	{"rootfs/bin", 0755, 0},
	{"rootfs/sbin", 0755, 0},
	{"rootfs/usr", 0755, 0},
	{"rootfs/usr/bin", 0755, 0},
	{"rootfs/usr/sbin", 0755, 0},
	{"rootfs/etc", 0755, 0},
	{"rootfs/root", 0700, 0},
	{"rootfs/home", 0755, 0},
	{"rootfs/tmp", 01777, 0},
	{"rootfs/var", 0755, 0},
	{"rootfs/var/log", 0755, 0},
	{"rootfs/var/www", 0755, 33},
	{"rootfs/run", 0755, 0},
	{"rootfs/mnt", 0755, 0},
	{"rootfs/proc", 0555, 0},
	{"rootfs/sys", 0555, 0},
	{"rootfs/dev", 0755, 0},
	{NULL, 0, 0},
};

static bool dir_in_table(const char *path)
{
	for (const struct dir_spec *d = dirs; d->path != NULL; d++)
		if (strcmp(d->path, path) == 0)
			return true;
	return false;
}

struct busybox_build {
	struct archive *tar;
	time_t mtime;
	char **applets; /* "bin/ls", "usr/sbin/httpd", ... */
	char **extra_dirs;
};

static int add_extra_dirs(struct busybox_build *b, struct ferry_error **err)
{
	/* Applets in directories the table lacks (busybox decides where). */
	size_t n_extra = 0;
	for (size_t i = 0; b->applets[i] != NULL; i++) {
		cleanup_free char *path = xasprintf("rootfs/%s", b->applets[i]);
		for (char *slash = strchr(path + strlen("rootfs/"), '/'); slash; slash = strchr(slash + 1, '/')) {
			*slash = '\0';
			bool known = dir_in_table(path);
			for (size_t j = 0; !known && j < n_extra; j++)
				known = strcmp(b->extra_dirs[j], path) == 0;
			if (!known) {
				b->extra_dirs = realloc(b->extra_dirs, (n_extra + 2) * sizeof(char *));
				if (b->extra_dirs == NULL)
					abort();
				b->extra_dirs[n_extra++] = xstrdup(path);
				b->extra_dirs[n_extra] = NULL;
				if (image_tar_add_dir(b->tar, path, 0755, 0, 0, b->mtime, err) < 0)
					return -1;
			}
			*slash = '/';
		}
	}
	return 0;
}

static int list_applets(struct busybox_build *b, struct ferry_error **err)
{
	char *const argv[] = {HOST_BUSYBOX, "--list-full", NULL};
	cleanup_free char *list = NULL;
	if (image_run(argv, &list, NULL, err) < 0)
		return error_wrap(err, "list busybox applets");
	size_t n = 0;
	b->applets = xcalloc(1, sizeof(char *));
	for (char *save = NULL, *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cleanup_free char *path = image_path_normalize(line);
		/* Only applets in a directory; busybox itself is added apart. */
		if (path == NULL || strchr(path, '/') == NULL || strcmp(path, "bin/busybox") == 0)
			continue;
		b->applets = realloc(b->applets, (n + 2) * sizeof(char *));
		if (b->applets == NULL)
			abort();
		b->applets[n++] = steal_pointer(&path);
		b->applets[n] = NULL;
	}
	if (n == 0)
		return error_set(err, 500, 0, "%s --list-full listed no applets", HOST_BUSYBOX);
	return 0;
}

static int add_files(struct busybox_build *b, const char *hostname_line, const char *os_release,
		     struct ferry_error **err)
{
	struct {
		const char *path;
		const char *data;
		mode_t mode;
	} files[] = {
		{"rootfs/etc/inittab", inittab, 0644},
		{"rootfs/etc/passwd", passwd, 0644},
		{"rootfs/etc/shadow", shadow, 0640},
		{"rootfs/etc/group", group, 0644},
		{"rootfs/etc/hostname", hostname_line, 0644},
		{"rootfs/etc/hosts", hosts, 0644},
		{"rootfs/etc/profile", profile, 0644},
		{"rootfs/etc/os-release", os_release, 0644},
		{"rootfs/etc/resolv.conf", "", 0644},
		{NULL, NULL, 0},
	};
	for (size_t i = 0; files[i].path != NULL; i++)
		if (image_tar_add_data(b->tar, files[i].path, files[i].mode, 0, 0, b->mtime, files[i].data,
				       strlen(files[i].data), err) < 0)
			return -1;
	return 0;
}

static int write_busybox_tarball(struct busybox_build *b, const char *tmp, const char *version,
				 struct ferry_error **err)
{
	struct image_metadata md = {0};
	cleanup_free char *yaml = NULL;
	size_t yaml_len = 0;
	char date[32];
	struct tm tm;
	gmtime_r(&b->mtime, &tm);
	strftime(date, sizeof(date), "%Y%m%d_%H:%M", &tm);
	cleanup_free char *description = xasprintf("busybox %s (%s)", version, date);
	cleanup_free char *os_release = xasprintf("NAME=BusyBox\nID=busybox\nVERSION_ID=%s\nPRETTY_NAME=\"BusyBox %s\"\n",
						  version, version);
	md.architecture = image_host_architecture();
	md.creation_date = b->mtime;
	image_metadata_set_property(&md, "architecture", md.architecture);
	image_metadata_set_property(&md, "description", description);
	image_metadata_set_property(&md, "os", "busybox");
	image_metadata_set_property(&md, "release", version);
	int ret = image_metadata_format(&md, &yaml, &yaml_len, err);
	image_metadata_clear(&md);
	if (ret < 0 || image_tar_open(&b->tar, tmp, err) < 0)
		return -1;

	ret = -1;
	if (image_tar_add_data(b->tar, "metadata.yaml", 0644, 0, 0, b->mtime, yaml, yaml_len, err) < 0)
		goto out;
	for (const struct dir_spec *d = dirs; d->path != NULL; d++)
		if (image_tar_add_dir(b->tar, d->path, d->mode, d->owner, d->owner, b->mtime, err) < 0)
			goto out;
	if (add_extra_dirs(b, err) < 0 ||
	    image_tar_add_host_file(b->tar, "rootfs/bin/busybox", HOST_BUSYBOX, 0755, b->mtime, err) < 0 ||
	    add_files(b, "busybox\n", os_release, err) < 0)
		goto out;
	bool has_init = false;
	for (size_t i = 0; b->applets[i] != NULL; i++) {
		cleanup_free char *path = xasprintf("rootfs/%s", b->applets[i]);
		has_init = has_init || strcmp(b->applets[i], "sbin/init") == 0;
		if (image_tar_add_symlink(b->tar, path, "/bin/busybox", b->mtime, err) < 0)
			goto out;
	}
	if (!has_init && image_tar_add_symlink(b->tar, "rootfs/sbin/init", "/bin/busybox", b->mtime, err) < 0)
		goto out;
	ret = 0;
out:
	if (ret < 0) {
		archive_write_free(b->tar);
		return -1;
	}
	return image_tar_close(b->tar, tmp, err);
}

int image_build_busybox(const char *store_dir, struct image_info *out, struct ferry_error **err)
{
	struct busybox_build b = {0};
	cleanup_free char *version = NULL;
	cleanup_free char *tmp = NULL;
	int ret = -1;
	struct stat st;
	if (check_static_elf(HOST_BUSYBOX, err) < 0 || busybox_version(&version, err) < 0 ||
	    list_applets(&b, err) < 0)
		goto out;
	if (stat(HOST_BUSYBOX, &st) < 0) {
		error_sys(err, errno, "stat %s", HOST_BUSYBOX);
		goto out;
	}
	b.mtime = st.st_mtime;
	if (image_store_tmpfile(store_dir, &tmp, err) < 0)
		goto out;
	if (write_busybox_tarball(&b, tmp, version, err) < 0) {
		unlink(tmp);
		goto out;
	}
	ret = image_store_add(store_dir, tmp, out, err);
out:
	strv_free(b.applets);
	strv_free(b.extra_dirs);
	if (ret < 0)
		error_wrap(err, "build the busybox image");
	return ret;
}
