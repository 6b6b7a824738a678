/* The container's cgroups on this machine's hybrid layout: one cgroup per v1
 * hierarchy at /sys/fs/cgroup/<controller>/<spec->cgroup>, and one in the
 * controller-less cgroup2 tree at /sys/fs/cgroup/unified. A cgroup in every
 * mounted hierarchy makes the container's cgroup namespace root its own
 * cgroup everywhere. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "runtime/internal.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

/* The hierarchies the container gets a cgroup in, when mounted. */
static const char *const hierarchies[] = {
	"cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices", "blkio", "systemd", "unified",
};
#define N_HIERARCHIES (sizeof(hierarchies) / sizeof(hierarchies[0]))
/* Without these, limits and freezing would silently do nothing (e.g. in a
 * mount namespace from `ip netns exec`, which has no cgroup mounts). */
static const char *const required[] = { "memory", "cpuset", "pids", "freezer" };
/* Files of a delegated cgroup2 directory its owner writes to. */
static const char *const delegated_files[] = { "cgroup.procs", "cgroup.threads", "cgroup.subtree_control" };

static bool hierarchy_mounted(const char *name)
{
	cleanup_free char *path = xasprintf(CGROUP_ROOT "/%s/cgroup.procs", name);
	return access(path, F_OK) == 0;
}

static char *cgroup_dir(const char *controller, const char *cgroup)
{
	return xasprintf(CGROUP_ROOT "/%s/%s", controller, cgroup);
}

/* A new cpuset cgroup starts with empty cpus and mems, and no task can join it
 * until both are set: copy them from the parent at every level we create. */
static int cpuset_create(const char *cgroup, struct ferry_error **err)
{
	cleanup_free char *rel = xstrdup(cgroup);
	cleanup_free char *parent = xstrdup(CGROUP_ROOT "/cpuset");
	for (char *part = strtok(rel, "/"); part != NULL; part = strtok(NULL, "/")) {
		cleanup_free char *dir = xasprintf("%s/%s", parent, part);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return error_sys(err, errno, "mkdir %s", dir);
		static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
		for (size_t i = 0; i < 2; i++) {
			cleanup_free char *own_path = xasprintf("%s/%s", dir, files[i]);
			cleanup_free char *parent_path = xasprintf("%s/%s", parent, files[i]);
			cleanup_free char *own = NULL, *inherited = NULL;
			if (file_read(own_path, &own, NULL, err) < 0)
				return -1;
			if (own[0] != '\n' && own[0] != '\0')
				continue;
			if (file_read(parent_path, &inherited, NULL, err) < 0)
				return -1;
			if (file_write_string(own_path, inherited, err) < 0)
				return -1;
		}
		free(parent);
		parent = steal_pointer(&dir);
	}
	return 0;
}

static int write_limit(const char *controller, const char *cgroup, const char *file, const char *value,
		       struct ferry_error **err)
{
	cleanup_free char *path = xasprintf(CGROUP_ROOT "/%s/%s/%s", controller, cgroup, file);
	if (file_write_string(path, value, err) < 0)
		return error_wrap(err, "set %s", file);
	return 0;
}

int cgroup_create(const struct runtime_spec *spec, struct ferry_error **err)
{
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (!hierarchy_mounted(required[i]))
			return error_set(err, 500, ENOENT, "the %s cgroup hierarchy is not mounted at " CGROUP_ROOT "/%s",
					 required[i], required[i]);
	for (size_t i = 0; i < N_HIERARCHIES; i++) {
		if (!hierarchy_mounted(hierarchies[i]))
			continue;
		if (strcmp(hierarchies[i], "cpuset") == 0) {
			if (cpuset_create(spec->cgroup, err) < 0)
				return error_wrap(err, "create cpuset cgroup %s", spec->cgroup);
			continue;
		}
		cleanup_free char *dir = cgroup_dir(hierarchies[i], spec->cgroup);
		if (mkdir_p(dir, 0755, err) < 0)
			return error_wrap(err, "create cgroup");
	}
	/* A freezer cgroup left behind frozen (a host whose CRIU died mid-dump)
	 * would freeze init at its first step, and the start would wait for
	 * it for good. */
	if (cgroup_is_frozen(spec->cgroup)) {
		log_warn("container %s: its freezer cgroup was left frozen: thawed", spec->name);
		if (cgroup_freeze(spec->cgroup, false, err) < 0)
			return error_wrap(err, "create cgroup");
	}

	/* Delegation, as for systemd's own containers: the container's root
	 * owns its cgroup2 directory (mounted at its /sys/fs/cgroup) and may
	 * make sub-cgroups and move its processes between them. The v1
	 * hierarchies, where the limits are, stay root's. */
	if (!spec->privileged && hierarchy_mounted("unified")) {
		cleanup_free char *dir = cgroup_dir("unified", spec->cgroup);
		if (chown(dir, spec->idmap_hostid, spec->idmap_hostid) < 0)
			return error_sys(err, errno, "delegate cgroup %s to the container", dir);
		for (size_t i = 0; i < sizeof(delegated_files) / sizeof(delegated_files[0]); i++) {
			cleanup_free char *path = xasprintf("%s/%s", dir, delegated_files[i]);
			if (chown(path, spec->idmap_hostid, spec->idmap_hostid) < 0 && errno != ENOENT)
				return error_sys(err, errno, "delegate cgroup %s to the container", path);
		}
	}

	char value[64];
	if (spec->limits_memory > 0) {
		snprintf(value, sizeof(value), "%lld", spec->limits_memory);
		if (write_limit("memory", spec->cgroup, "memory.limit_in_bytes", value, err) < 0)
			return error_wrap(err, "limits.memory");
	}
	if (spec->limits_cpu != NULL && spec->limits_cpu[0] != '\0') {
		if (write_limit("cpuset", spec->cgroup, "cpuset.cpus", spec->limits_cpu, err) < 0)
			return error_wrap(err, "limits.cpu");
	}
	if (spec->limits_processes > 0) {
		snprintf(value, sizeof(value), "%lld", spec->limits_processes);
		if (write_limit("pids", spec->cgroup, "pids.max", value, err) < 0)
			return error_wrap(err, "limits.processes");
	}
	return 0;
}

static int save_subtree(FILE *out, const char *top, const char *rel)
{
	cleanup_free char *dir = rel[0] != '\0' ? xasprintf("%s/%s", top, rel) : xstrdup(top);
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	struct dirent *de;
	int ret = 0;
	while (ret == 0 && (de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.' || strchr(de->d_name, '\n') != NULL)
			continue;
		cleanup_free char *sub_rel = rel[0] != '\0' ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		cleanup_free char *sub = xasprintf("%s/%s", top, sub_rel);
		struct stat st;
		if (stat(sub, &st) < 0)
			continue;
		fprintf(out, "%u %u %s\n", (unsigned)st.st_uid, (unsigned)st.st_gid, sub_rel);
		ret = save_subtree(out, top, sub_rel);
	}
	closedir(d);
	return ret;
}

int cgroup_save_tree(const char *cgroup, const char *file, struct ferry_error **err)
{
	cleanup_free char *top = cgroup_dir("unified", cgroup);
	cleanup_fclose FILE *out = fopen(file, "we");
	if (out == NULL)
		return error_sys(err, errno, "create %s", file);
	if (save_subtree(out, top, "") < 0)
		return error_sys(err, errno, "list the cgroups below %s", top);
	if (fflush(out) != 0)
		return error_sys(err, errno, "write %s", file);
	return 0;
}

int cgroup_restore_tree(const char *cgroup, const char *file, struct ferry_error **err)
{
	cleanup_fclose FILE *in = fopen(file, "re");
	if (in == NULL)
		return errno == ENOENT ? 0 : error_sys(err, errno, "open %s", file);
	cleanup_free char *top = cgroup_dir("unified", cgroup);
	unsigned uid, gid;
	char rel[4096];
	while (fscanf(in, "%u %u %4095[^\n]\n", &uid, &gid, rel) == 3) {
		/* Only below the container's own cgroup. */
		if (rel[0] == '/' || strstr(rel, "..") != NULL)
			return error_set(err, 400, EINVAL, "%s: bad cgroup path %s", file, rel);
		cleanup_free char *dir = xasprintf("%s/%s", top, rel);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return error_sys(err, errno, "create cgroup %s", dir);
		if (chown(dir, uid, gid) < 0)
			return error_sys(err, errno, "chown cgroup %s", dir);
		for (size_t i = 0; i < sizeof(delegated_files) / sizeof(delegated_files[0]); i++) {
			cleanup_free char *path = xasprintf("%s/%s", dir, delegated_files[i]);
			if (chown(path, uid, gid) < 0 && errno != ENOENT)
				return error_sys(err, errno, "chown %s", path);
		}
	}
	return 0;
}

int cgroup_attach(const char *cgroup, pid_t pid, struct ferry_error **err)
{
	char value[32];
	snprintf(value, sizeof(value), "%d", (int)pid);
	for (size_t i = 0; i < N_HIERARCHIES; i++) {
		if (!hierarchy_mounted(hierarchies[i]))
			continue;
		cleanup_free char *path = xasprintf(CGROUP_ROOT "/%s/%s/cgroup.procs", hierarchies[i], cgroup);
		if (file_write_string(path, value, err) < 0)
			return error_wrap(err, "join cgroup");
	}
	return 0;
}

int cgroup_open_procs(const char *cgroup, int *fds, int max_fds, struct ferry_error **err)
{
	int n = 0;
	for (size_t i = 0; i < N_HIERARCHIES && n < max_fds; i++) {
		if (!hierarchy_mounted(hierarchies[i]))
			continue;
		cleanup_free char *path = xasprintf(CGROUP_ROOT "/%s/%s/cgroup.procs", hierarchies[i], cgroup);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			while (n > 0)
				close(fds[--n]);
			return error_sys(err, e, "open %s", path);
		}
		fds[n++] = fd;
	}
	return n;
}

/* Visit every pid listed in dir/cgroup.procs and below. */
static void for_each_pid(const char *dir, void (*fn)(pid_t pid, void *data), void *data)
{
	cleanup_free char *procs = xasprintf("%s/cgroup.procs", dir);
	cleanup_fclose FILE *f = fopen(procs, "re");
	if (f != NULL) {
		int pid;
		while (fscanf(f, "%d", &pid) == 1)
			fn(pid, data);
	}
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		cleanup_free char *sub = xasprintf("%s/%s", dir, de->d_name);
		for_each_pid(sub, fn, data);
	}
	closedir(d);
}

static void count_pid(pid_t pid, void *data)
{
	(*(long long *)data)++;
}

static void kill_pid(pid_t pid, void *data)
{
	kill(pid, SIGKILL);
}

long long cgroup_count_processes(const char *cgroup)
{
	cleanup_free char *dir = cgroup_dir("pids", cgroup);
	if (access(dir, F_OK) < 0)
		return -1;
	long long n = 0;
	for_each_pid(dir, count_pid, &n);
	return n;
}

void cgroup_for_each_pid(const char *controller, const char *cgroup, void (*fn)(pid_t pid, void *data), void *data)
{
	cleanup_free char *dir = cgroup_dir(controller, cgroup);
	for_each_pid(dir, fn, data);
}

void cgroup_kill_all(const char *cgroup)
{
	for (size_t i = 0; i < N_HIERARCHIES; i++) {
		cleanup_free char *dir = cgroup_dir(hierarchies[i], cgroup);
		for_each_pid(dir, kill_pid, NULL);
	}
}

/* rmdir a cgroup and the cgroups below it (the container may have made some). */
static int cgroup_remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		cleanup_free char *sub = xasprintf("%s/%s", dir, de->d_name);
		cgroup_remove_tree(sub);
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int runtime_cgroup_remove_tree(const char *dir)
{
	return cgroup_remove_tree(dir);
}

/* The freezer: cgroup v2's (cgroup.freeze in the unified hierarchy) where
 * the container has a cgroup there, else v1's. Each v1 write flips a static
 * key in the kernel, ~2 ms here against ~0.07 ms for v2, and a dump writes
 * twice (our freeze, CRIU's thaw once it has seized the tasks). */
static char *freezer_v2_file(const char *cgroup, const char *file)
{
	char *path = xasprintf(CGROUP_ROOT "/unified/%s/%s", cgroup, file);
	if (access(path, F_OK) == 0)
		return path;
	free(path);
	return NULL;
}

int cgroup_destroy(const char *cgroup, struct ferry_error **err)
{
	/* A frozen process can't die: thaw before killing. */
	cleanup_free char *freezer = xasprintf(CGROUP_ROOT "/freezer/%s/freezer.state", cgroup);
	if (access(freezer, F_OK) == 0)
		file_write_string(freezer, "THAWED", NULL);
	cleanup_free char *freezer_v2 = freezer_v2_file(cgroup, "cgroup.freeze");
	if (freezer_v2 != NULL)
		file_write_string(freezer_v2, "0", NULL);
	long long deadline = now_ms() + 5000;
	for (size_t i = 0; i < N_HIERARCHIES; i++) {
		cleanup_free char *dir = cgroup_dir(hierarchies[i], cgroup);
		/* Dying processes leave their cgroup a little after SIGKILL: retry. */
		while (cgroup_remove_tree(dir) < 0) {
			int e = errno;
			if (e != EBUSY || now_ms() > deadline)
				return error_sys(err, e, "remove cgroup %s", dir);
			cgroup_kill_all(cgroup);
			struct timespec ts = { 0, 2 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
	return 0;
}

char *cgroup_freezer_dir(const char *cgroup)
{
	cleanup_free char *v2 = freezer_v2_file(cgroup, "cgroup.freeze");
	return xasprintf(CGROUP_ROOT "/%s/%s", v2 != NULL ? "unified" : "freezer", cgroup);
}

static bool v1_is_frozen(const char *cgroup)
{
	cleanup_free char *path = xasprintf(CGROUP_ROOT "/freezer/%s/freezer.state", cgroup);
	cleanup_free char *state = NULL;
	if (file_read(path, &state, NULL, NULL) < 0)
		return false;
	return strncmp(state, "FROZEN", 6) == 0 || strncmp(state, "FREEZING", 8) == 0;
}

bool cgroup_is_frozen(const char *cgroup)
{
	cleanup_free char *v2 = freezer_v2_file(cgroup, "cgroup.freeze");
	cleanup_free char *state = NULL;
	if (v2 != NULL && file_read(v2, &state, NULL, NULL) == 0 && state[0] == '1')
		return true;
	/* Also v1's: a container an older ferryd froze. */
	return v1_is_frozen(cgroup);
}

/* Poll briefly and often: the freezer settles within milliseconds, and a
 * coarse poll interval (LXC's) costs a checkpoint 100 ms. v1: writing
 * FROZEN again on each round retries tasks that were busy in the kernel;
 * v2: cgroup.events says "frozen 1" once every task is. */
static int freeze_wait(const char *path, const char *rewrite, const char *want, bool frozen, struct ferry_error **err)
{
	long long deadline = now_ms() + 10000;
	long sleep_us = 100;
	for (;;) {
		if (rewrite != NULL && file_write_string(path, rewrite, err) < 0)
			return error_wrap(err, frozen ? "freeze" : "thaw");
		cleanup_free char *state = NULL;
		if (file_read(path, &state, NULL, err) < 0)
			return error_wrap(err, frozen ? "freeze" : "thaw");
		if (strstr(state, want) != NULL)
			return 0;
		if (now_ms() > deadline)
			return error_set(err, 500, ETIMEDOUT, "%s: %s still says %.*s after 10 s", frozen ? "freeze" : "thaw",
					 path, (int)strcspn(state, "\n"), state);
		struct timespec ts = { 0, sleep_us * 1000 };
		nanosleep(&ts, NULL);
		if (sleep_us < 5000)
			sleep_us *= 2;
	}
}

static int v1_freeze(const char *cgroup, bool frozen, struct ferry_error **err)
{
	cleanup_free char *path = xasprintf(CGROUP_ROOT "/freezer/%s/freezer.state", cgroup);
	const char *want = frozen ? "FROZEN" : "THAWED";
	return freeze_wait(path, want, want, frozen, err);
}

int cgroup_freeze(const char *cgroup, bool frozen, struct ferry_error **err)
{
	cleanup_free char *v2 = freezer_v2_file(cgroup, "cgroup.freeze");
	if (v2 == NULL)
		return v1_freeze(cgroup, frozen, err);
	if (!frozen && v1_is_frozen(cgroup) && v1_freeze(cgroup, false, err) < 0)
		return -1;
	if (file_write_string(v2, frozen ? "1" : "0", err) < 0)
		return error_wrap(err, frozen ? "freeze" : "thaw");
	if (!frozen)
		return 0;
	cleanup_free char *events = freezer_v2_file(cgroup, "cgroup.events");
	if (events == NULL)
		return error_set(err, 500, ENOENT, "freeze: no cgroup.events beside %s", v2);
	return freeze_wait(events, NULL, "frozen 1", true, err);
}

long long cgroup_read_number(const char *controller, const char *cgroup, const char *file)
{
	cleanup_free char *path = xasprintf(CGROUP_ROOT "/%s/%s/%s", controller, cgroup, file);
	cleanup_free char *text = NULL;
	if (file_read(path, &text, NULL, NULL) < 0)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno != 0 || end == text)
		return -1;
	return v;
}
