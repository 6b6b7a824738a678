/* What a restore on another host must know of the container's mounts.
 *
 * CRIU records a mount bound from inside the rootfs (a systemd service's
 * sandbox: /usr bound read-only in a namespace of its own) by the host path
 * of the rootfs it was dumped from. A restore on a host whose rootfs is
 * elsewhere must show its rootfs at that path too (restore.c's alias),
 * which costs it the swrk started ahead (monitor.c). Most containers have
 * no such mount: this says which. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/util.h"
#include "runtime/internal.h"

/* One line of /proc/PID/mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT ...".
 * The strings point into line (cut there). */
struct mountinfo_line {
	int id;
	const char *dev;
	const char *root;
	const char *mountpoint;
};

static bool mountinfo_parse(char *line, struct mountinfo_line *m)
{
	char *save = NULL;
	char *id = strtok_r(line, " ", &save);
	char *parent = strtok_r(NULL, " ", &save);
	m->dev = strtok_r(NULL, " ", &save);
	m->root = strtok_r(NULL, " ", &save);
	m->mountpoint = strtok_r(NULL, " ", &save);
	if (id == NULL || parent == NULL || m->mountpoint == NULL)
		return false;
	m->id = atoi(id);
	return true;
}

struct binds_scan {
	char *dev;         /* the container's "/": its filesystem */
	char *root;        /* and where in it */
	int root_id;       /* its id in init's mount namespace */
	ino_t *seen;       /* mount namespaces scanned */
	size_t n_seen;
	bool found;
	bool unsure;       /* something could not be read: say "found" */
};

/* root under (or at) top, in mountinfo's escaped form. */
static bool path_within(const char *root, const char *top)
{
	size_t n = strlen(top);
	if (strcmp(top, "/") == 0)
		return true;
	return strncmp(root, top, n) == 0 && (root[n] == '\0' || root[n] == '/');
}

/* pid's mount namespace, unless already scanned: is a mount in it (but the
 * container's "/" itself) bound from inside the rootfs? */
static void binds_scan_pid(pid_t pid, void *data)
{
	struct binds_scan *b = data;
	if (b->found || b->unsure)
		return;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	struct stat st;
	if (stat(path, &st) < 0) {
		b->unsure = errno != ENOENT && errno != ESRCH;
		return;
	}
	for (size_t i = 0; i < b->n_seen; i++)
		if (b->seen[i] == st.st_ino)
			return;
	b->seen = realloc(b->seen, (b->n_seen + 1) * sizeof(*b->seen));
	if (b->seen == NULL)
		abort();
	b->seen[b->n_seen++] = st.st_ino;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	cleanup_fclose FILE *f = fopen(path, "re");
	if (f == NULL) {
		b->unsure = true;
		return;
	}
	cleanup_free char *line = NULL;
	size_t cap = 0;
	while (!b->found && getline(&line, &cap, f) > 0) {
		struct mountinfo_line m;
		if (!mountinfo_parse(line, &m))
			continue;
		/* The first namespace is init's, whose "/" is the rootfs itself.
		 * Another namespace's copy of it counts (to be safe). */
		if (b->n_seen == 1 && m.id == b->root_id)
			continue;
		b->found = strcmp(m.dev, b->dev) == 0 && path_within(m.root, b->root);
	}
}

/* The container's "/" as init sees it: the last mount on "/". */
static int rootfs_mount(pid_t init, struct binds_scan *b, struct ferry_error **err)
{
	cleanup_free char *path = xasprintf("/proc/%d/mountinfo", (int)init);
	cleanup_fclose FILE *f = fopen(path, "re");
	if (f == NULL)
		return error_sys(err, errno, "open %s", path);
	cleanup_free char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		struct mountinfo_line m;
		if (!mountinfo_parse(line, &m) || strcmp(m.mountpoint, "/") != 0)
			continue;
		free(b->dev);
		free(b->root);
		b->dev = xstrdup(m.dev);
		b->root = xstrdup(m.root);
		b->root_id = m.id;
	}
	if (b->dev == NULL)
		return error_set(err, 500, ENOENT, "no mount on / in %s", path);
	return 0;
}

int runtime_rootfs_binds(const char *dir, bool *binds, struct ferry_error **err)
{
	*binds = true;
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return -1;
	struct binds_scan b = { 0 };
	int ret = -1;
	pid_t init = init_find(dir);
	if (init <= 0) {
		error_conflict(err, "container %s is not running", spec->name);
		goto out;
	}
	if (rootfs_mount(init, &b, err) < 0)
		goto out;
	/* init first: its namespace is the one whose "/" is the rootfs. */
	binds_scan_pid(init, &b);
	cgroup_for_each_pid("freezer", spec->cgroup, binds_scan_pid, &b);
	if (b.unsure) {
		error_set(err, 500, EIO, "container %s: could not read every process's mounts", spec->name);
		goto out;
	}
	*binds = b.found;
	ret = 0;
out:
	free(b.dev);
	free(b.root);
	free(b.seen);
	runtime_spec_free(spec);
	return ret;
}
