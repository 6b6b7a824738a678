/* The Debian image: debootstrap bookworm (minbase, systemd as init) from the
 * machine's own apt mirror. The finished tree is kept in cache_dir and packed
 * again on the next build, so only the first build downloads anything. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "image/image_internal.h"

#define DEBIAN_SUITE "bookworm"
/* A real init, the tools to look at a running system, and real services
 * (a web server, a key-value store, a database, an SSH server), enabled by
 * their packages: containers have no internet to install them later, and
 * issues 3 and 5 want a Debian container whose services, and the sessions
 * users hold open to them, go on after a checkpoint/restore or a move.
 * postgresql's own postinst makes its cluster (15/main); openssh-server's
 * makes the host keys. Changing this list invalidates the cached tree (its
 * .packages stamp). */
#define DEBIAN_PACKAGES \
	"systemd-sysv,iproute2,procps,netbase,nginx-light,redis-server,openssh-server,postgresql"

/* First URI of a deb822 stanza whose Suites has the bare suite ("bookworm",
 * not "bookworm-security"). */
char *image_apt_mirror_deb822(const char *text, const char *suite)
{
	char *found = NULL;
	cleanup_free char *copy = xstrdup(text);
	cleanup_free char *uri = NULL;
	bool suite_ok = false, is_deb = false;
	/* A blank line ends a stanza; a sentinel one ends the last. */
	cleanup_free char *padded = xasprintf("%s\n\n", copy);
	for (char *line = padded, *next; line != NULL && found == NULL; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (line[strspn(line, " \t")] == '\0') {
			if (uri != NULL && suite_ok && is_deb)
				found = steal_pointer(&uri);
			free(steal_pointer(&uri));
			suite_ok = is_deb = false;
			continue;
		}
		char *value = strchr(line, ':');
		if (line[0] == '#' || value == NULL)
			continue;
		*value++ = '\0';
		value += strspn(value, " \t");
		if (strcasecmp(line, "Types") == 0) {
			is_deb = false;
			for (char *save = NULL, *w = strtok_r(value, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
				is_deb = is_deb || strcmp(w, "deb") == 0;
		} else if (strcasecmp(line, "URIs") == 0) {
			free(uri);
			uri = strndup(value, strcspn(value, " \t"));
		} else if (strcasecmp(line, "Suites") == 0) {
			for (char *save = NULL, *w = strtok_r(value, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
				suite_ok = suite_ok || strcmp(w, suite) == 0;
		}
	}
	return found;
}

/* "deb [options] URI SUITE COMPONENTS..." */
char *image_apt_mirror_list(const char *text, const char *suite)
{
	cleanup_free char *copy = xstrdup(text);
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *words[4] = {0};
		int n = 0;
		char *wsave = NULL;
		for (char *w = strtok_r(line, " \t", &wsave); w && n < 4; w = strtok_r(NULL, " \t", &wsave)) {
			if (n == 1 && w[0] == '[') {
				while (w && strchr(w, ']') == NULL)
					w = strtok_r(NULL, " \t", &wsave);
				continue;
			}
			words[n++] = w;
		}
		if (n >= 3 && strcmp(words[0], "deb") == 0 && strcmp(words[2], suite) == 0)
			return xstrdup(words[1]);
	}
	return NULL;
}

static int find_mirror(char **mirror, struct ferry_error **err)
{
	glob_t g;
	if (glob("/etc/apt/sources.list.d/*.sources", 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && *mirror == NULL; i++) {
			cleanup_free char *text = NULL;
			cleanup_error struct ferry_error *read_err = NULL;
			if (file_read(g.gl_pathv[i], &text, NULL, &read_err) == 0)
				*mirror = image_apt_mirror_deb822(text, DEBIAN_SUITE);
		}
		globfree(&g);
	}
	cleanup_free char *list = NULL;
	cleanup_error struct ferry_error *read_err = NULL;
	if (*mirror == NULL && file_read("/etc/apt/sources.list", &list, NULL, &read_err) == 0)
		*mirror = image_apt_mirror_list(list, DEBIAN_SUITE);
	if (*mirror == NULL)
		return error_set(err, 500, ENOENT,
				 "no apt source for %s in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list",
				 DEBIAN_SUITE);
	return 0;
}

/* What an image must not carry from the machine it was built on, and what
 * makes each container its own: systemd writes a fresh machine-id into an
 * empty file at first boot. */
static int tidy_tree(const char *tree, struct ferry_error **err)
{
	struct {
		const char *path;
		const char *content; /* NULL: remove */
	} edits[] = {
		{"etc/machine-id", ""},
		{"var/lib/dbus/machine-id", NULL},
		{"etc/hostname", "debian\n"},
		{"etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
		/* debootstrap copies the host's; ferryd configures the network from outside. */
		{"etc/resolv.conf", ""},
		/* For every service: CRIU can't checkpoint a nested user
		 * namespace, and some units ask for one; their other sandboxing
		 * (mount and UTS namespaces, seccomp, capabilities) stays. */
		{"etc/systemd/system/service.d/ferry-checkpoint.conf",
		 "# ferry: keep services checkpointable (CRIU can't dump nested user namespaces)\n"
		 "[Service]\nPrivateUsers=no\n"},
		{NULL, NULL},
	};
	/* As apt-get clean and Debian's container images do: the package
	 * archives and indexes are a third of the tree and stale soon. */
	static const char *const litter[] = {
		"var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*", NULL,
	};
	for (size_t i = 0; litter[i] != NULL; i++) {
		cleanup_free char *pattern = xasprintf("%s/%s", tree, litter[i]);
		glob_t g;
		if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc; j++)
			if (unlink(g.gl_pathv[j]) < 0 && errno != ENOENT) {
				error_sys(err, errno, "remove %s", g.gl_pathv[j]);
				globfree(&g);
				return -1;
			}
		globfree(&g);
	}
	for (size_t i = 0; edits[i].path != NULL; i++) {
		cleanup_free char *path = xasprintf("%s/%s", tree, edits[i].path);
		if (edits[i].content == NULL) {
			if (unlink(path) < 0 && errno != ENOENT)
				return error_sys(err, errno, "remove %s", path);
			continue;
		}
		/* Replace a symlink instead of writing through it. */
		if (unlink(path) < 0 && errno != ENOENT)
			return error_sys(err, errno, "remove %s", path);
		cleanup_free char *parent = xstrdup(path);
		*strrchr(parent, '/') = '\0';
		if (mkdir_p(parent, 0755, err) < 0)
			return -1;
		if (file_write_atomic(path, edits[i].content, strlen(edits[i].content), 0644, err) < 0)
			return -1;
	}
	return 0;
}

static int debootstrap_tree(const char *cache_dir, const char *tree, struct ferry_error **err)
{
	cleanup_free char *mirror = NULL;
	if (find_mirror(&mirror, err) < 0)
		return -1;
	cleanup_free char *work = xasprintf("%s.partial", tree);
	cleanup_free char *debs = xasprintf("%s/debs", cache_dir);
	cleanup_free char *log_path = xasprintf("%s/debootstrap.log", cache_dir);
	/* A partial tree from an interrupted run; rm_rf refuses to cross a
	 * mount debootstrap left behind, and so do we. */
	if (rm_rf(work, err) < 0)
		return error_wrap(err, "remove the unfinished tree");
	if (mkdir_p(debs, 0755, err) < 0)
		return -1;
	unlink(log_path);
	cleanup_free char *cache_opt = xasprintf("--cache-dir=%s", debs);
	char *const argv[] = {
		"/usr/sbin/debootstrap", "--variant=minbase", "--include=" DEBIAN_PACKAGES, "--components=main",
		cache_opt, DEBIAN_SUITE, work, mirror, NULL,
	};
	log_info("debootstrap %s from %s into %s (log: %s)", DEBIAN_SUITE, mirror, work, log_path);
	if (access(argv[0], X_OK) < 0)
		return error_sys(err, errno, "%s (install debootstrap)", argv[0]);
	if (image_run(argv, NULL, log_path, err) < 0)
		return -1;
	if (rename(work, tree) < 0)
		return error_sys(err, errno, "rename %s to %s", work, tree);
	return 0;
}

static bool tree_cached(const char *tree, const char *stamp)
{
	cleanup_free char *packages = NULL;
	cleanup_error struct ferry_error *read_err = NULL;
	struct stat st;
	if (stat(tree, &st) < 0 || !S_ISDIR(st.st_mode))
		return false;
	if (file_read(stamp, &packages, NULL, &read_err) < 0)
		return false;
	return strcmp(packages, DEBIAN_PACKAGES "\n") == 0;
}

static int pack_debian(const char *tree, const char *tmp, struct ferry_error **err)
{
	struct image_metadata md = {0};
	cleanup_free char *yaml = NULL;
	size_t yaml_len = 0;
	struct archive *tar = NULL;
	char date[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y%m%d_%H:%M", &tm);
	cleanup_free char *description = xasprintf("Debian %s (%s)", DEBIAN_SUITE, date);
	md.architecture = image_host_architecture();
	md.creation_date = now;
	image_metadata_set_property(&md, "architecture", md.architecture);
	image_metadata_set_property(&md, "description", description);
	image_metadata_set_property(&md, "os", "debian");
	image_metadata_set_property(&md, "release", DEBIAN_SUITE);
	image_metadata_set_property(&md, "variant", "default");
	int ret = image_metadata_format(&md, &yaml, &yaml_len, err);
	image_metadata_clear(&md);
	if (ret < 0 || image_tar_open(&tar, tmp, err) < 0)
		return -1;
	if (image_tar_add_data(tar, "metadata.yaml", 0644, 0, 0, now, yaml, yaml_len, err) < 0 ||
	    image_tar_add_tree(tar, tree, 0, 0, err) < 0) {
		archive_write_free(tar);
		return -1;
	}
	return image_tar_close(tar, tmp, err);
}

int image_build_debian(const char *store_dir, const char *cache_dir, struct image_info *out,
		       struct ferry_error **err)
{
	if (geteuid() != 0)
		return error_set(err, 403, EPERM, "build the debian image: debootstrap needs root");
	cleanup_free char *tree = xasprintf("%s/%s-minbase", cache_dir, DEBIAN_SUITE);
	cleanup_free char *stamp = xasprintf("%s/%s-minbase.packages", cache_dir, DEBIAN_SUITE);
	cleanup_free char *tmp = NULL;
	if (mkdir_p(cache_dir, 0755, err) < 0)
		goto fail;
	if (!tree_cached(tree, stamp)) {
		if (rm_rf(tree, err) < 0)
			goto fail;
		unlink(stamp);
		if (debootstrap_tree(cache_dir, tree, err) < 0)
			goto fail;
		if (file_write_atomic(stamp, DEBIAN_PACKAGES "\n", strlen(DEBIAN_PACKAGES "\n"), 0644, err) < 0)
			goto fail;
	} else {
		log_info("debian image: using the cached tree %s", tree);
	}
	/* Every time: a cache from an older ferry gets today's tidying too. */
	if (tidy_tree(tree, err) < 0 || image_store_tmpfile(store_dir, &tmp, err) < 0)
		goto fail;
	if (pack_debian(tree, tmp, err) < 0) {
		unlink(tmp);
		goto fail;
	}
	if (image_store_add(store_dir, tmp, out, err) < 0)
		goto fail;
	return 0;
fail:
	return error_wrap(err, "build the debian image");
}
