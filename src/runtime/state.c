/* Finding a container again from its state directory, and acting on it:
 * state, stop, freeze. Works from any process (ferryd after a restart), since
 * everything comes from the files the monitor keeps. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "runtime/internal.h"

char *state_path(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

int spec_load(const char *dir, struct runtime_spec **spec, struct ferry_error **err)
{
	cleanup_free char *path = state_path(dir, RUNTIME_SPEC_FILE);
	cleanup_free char *text = NULL;
	if (file_read(path, &text, NULL, err) < 0)
		return -1;
	if (runtime_spec_from_json(text, spec, err) < 0)
		return error_wrap(err, "%s", path);
	return 0;
}

int spec_save(const struct runtime_spec *spec, struct ferry_error **err)
{
	cleanup_free char *json = runtime_spec_to_json(spec);
	cleanup_free char *path = state_path(spec->dir, RUNTIME_SPEC_FILE);
	return file_write_volatile(path, json, strlen(json), 0600, err);
}

unsigned long long proc_start_time(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	cleanup_free char *stat = NULL;
	if (pid <= 0 || file_read(path, &stat, NULL, NULL) < 0)
		return 0;
	/* The command name may contain anything, ")" included: fields start after the last ")". */
	char *p = strrchr(stat, ')');
	if (p == NULL)
		return 0;
	char state;
	unsigned long long start = 0;
	/* state (3), then 18 fields up to starttime (22). */
	if (sscanf(p + 2, "%c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &state,
		   &start) != 2)
		return 0;
	if (state == 'Z' || state == 'X')
		return 0;
	return start;
}

static int read_pid_file(const char *dir, const char *name, pid_t *pid, unsigned long long *start_time)
{
	cleanup_free char *path = state_path(dir, name);
	cleanup_free char *text = NULL;
	if (file_read(path, &text, NULL, NULL) < 0)
		return -1;
	int p = 0;
	unsigned long long st = 0;
	if (sscanf(text, "%d %llu", &p, &st) < 1 || p <= 0)
		return -1;
	*pid = p;
	if (start_time != NULL)
		*start_time = st;
	return 0;
}

pid_t monitor_find(const char *dir)
{
	pid_t pid;
	unsigned long long recorded;
	if (read_pid_file(dir, RUNTIME_MONITOR_PID_FILE, &pid, &recorded) < 0)
		return 0;
	unsigned long long actual = proc_start_time(pid);
	/* A different start time: the pid was reused by another process. */
	if (actual == 0 || actual != recorded)
		return 0;
	return pid;
}

pid_t init_find(const char *dir)
{
	pid_t pid;
	if (monitor_find(dir) <= 0 || read_pid_file(dir, RUNTIME_INIT_PID_FILE, &pid, NULL) < 0)
		return 0;
	return proc_start_time(pid) != 0 ? pid : 0;
}

/* exit.status: "WAITSTATUS", or "WAITSTATUS checkpointed" after a stateful stop. */
static int last_exit_status(const char *dir, bool *checkpointed)
{
	cleanup_free char *path = state_path(dir, RUNTIME_EXIT_STATUS);
	cleanup_free char *text = NULL;
	*checkpointed = false;
	if (file_read(path, &text, NULL, NULL) < 0)
		return -1;
	*checkpointed = strstr(text, "checkpointed") != NULL;
	return atoi(text);
}

int runtime_get_state(const char *name, const char *dir, struct runtime_state *st, struct ferry_error **err)
{
	*st = (struct runtime_state){ .status = RUNTIME_STOPPED, .processes = -1, .memory_usage = -1,
				      .memory_peak = -1, .cpu_usage_ns = -1 };
	st->last_exit_status = last_exit_status(dir, &st->checkpointed);
	st->monitor_pid = monitor_find(dir);
	if (st->monitor_pid <= 0) {
		st->monitor_pid = 0;
		return 0;
	}
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return error_wrap(err, "state of %s", name);
	st->init_pid = init_find(dir);
	st->status = cgroup_is_frozen(spec->cgroup) ? RUNTIME_FROZEN : RUNTIME_RUNNING;
	st->processes = cgroup_count_processes(spec->cgroup);
	st->memory_usage = cgroup_read_number("memory", spec->cgroup, "memory.usage_in_bytes");
	st->memory_peak = cgroup_read_number("memory", spec->cgroup, "memory.max_usage_in_bytes");
	st->cpu_usage_ns = cgroup_read_number("cpuacct", spec->cgroup, "cpuacct.usage");
	runtime_spec_free(spec);
	return 0;
}

/* Path of init inside the rootfs, following symlinks within the rootfs. */
static char *resolve_in_rootfs(const char *rootfs, const char *path)
{
	char *current = xstrdup(path);
	for (int hops = 0; hops < 40; hops++) {
		cleanup_free char *host = xasprintf("%s%s", rootfs, current);
		char target[PATH_MAX];
		ssize_t n = readlink(host, target, sizeof(target) - 1);
		if (n < 0)
			return current;
		target[n] = '\0';
		char *next;
		if (target[0] == '/') {
			next = xstrdup(target);
		} else {
			char *slash = strrchr(current, '/');
			next = xasprintf("%.*s/%s", (int)(slash - current), current, target);
		}
		free(current);
		current = next;
	}
	return current;
}

/* What asks init to shut down: systemd wants SIGRTMIN+4, busybox init
 * SIGUSR2 (poweroff); sysvinit and others take SIGPWR. */
static int shutdown_signal(const char *rootfs, const char *init)
{
	cleanup_free char *resolved = resolve_in_rootfs(rootfs, init != NULL ? init : "/sbin/init");
	const char *base = strrchr(resolved, '/');
	base = base != NULL ? base + 1 : resolved;
	if (strcmp(base, "systemd") == 0)
		return SIGRTMIN + 4;
	if (strcmp(base, "busybox") == 0)
		return SIGUSR2;
	return SIGPWR;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

bool monitor_wait_gone(pid_t monitor, unsigned long long start_time, long long timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	/* A pidfd tells the moment it exits (it is not our child); opened,
	 * then checked to be that monitor still (not a pid reused). */
	int pidfd = (int)syscall(SYS_pidfd_open, monitor, 0);
	if (pidfd >= 0) {
		bool gone = proc_start_time(monitor) != start_time;
		while (!gone) {
			long long left = timeout_ms < 0 ? -1 : deadline - now_ms();
			if (timeout_ms >= 0 && left < 0)
				break;
			struct pollfd p = { .fd = pidfd, .events = POLLIN };
			int r = poll(&p, 1, left < 0 ? -1 : (int)(left > INT_MAX ? INT_MAX : left));
			if (r < 0 && errno != EINTR)
				break; /* the polling below, then */
			gone = r > 0;
		}
		close(pidfd);
		if (gone)
			return true;
	}
	while (proc_start_time(monitor) == start_time) {
		if (timeout_ms >= 0 && now_ms() > deadline)
			return false;
		sleep_ms(5);
	}
	return true;
}

/* The monitor died without cleaning up (killed): do its part. */
static int stop_without_monitor(const struct runtime_spec *spec, struct ferry_error **err)
{
	cgroup_kill_all(spec->cgroup);
	if (cgroup_destroy(spec->cgroup, err) < 0)
		return -1;
	static const char *const files[] = { RUNTIME_INIT_PID_FILE, RUNTIME_MONITOR_SOCK, RUNTIME_MONITOR_PID_FILE };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		cleanup_free char *path = state_path(spec->dir, files[i]);
		unlink(path);
	}
	return 0;
}

int runtime_stop(const char *name, const char *dir, int timeout_s, bool force, struct ferry_error **err)
{
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return error_wrap(err, "stop %s", name);
	int ret = 0;
	pid_t monitor = monitor_find(dir);
	if (monitor <= 0) {
		if (cgroup_count_processes(spec->cgroup) > 0)
			log_warn("container %s: monitor gone, killing what is left", name);
		ret = stop_without_monitor(spec, err);
		goto out;
	}
	unsigned long long monitor_start = proc_start_time(monitor);
	pid_t init = init_find(dir);
	/* A frozen process takes no signal, SIGKILL included. */
	if (cgroup_is_frozen(spec->cgroup) && cgroup_freeze(spec->cgroup, false, err) < 0) {
		ret = error_wrap(err, "stop %s", name);
		goto out;
	}
	if (init > 0 && !force) {
		int sig = shutdown_signal(spec->rootfs, spec->init);
		if (kill(init, sig) < 0 && errno != ESRCH) {
			ret = error_sys(err, errno, "stop %s: signal init", name);
			goto out;
		}
		if (monitor_wait_gone(monitor, monitor_start, timeout_s < 0 ? -1 : timeout_s * 1000LL))
			goto out;
		log_info("container %s: no shutdown after %d s, killing it", name, timeout_s);
	}
	init = init_find(dir);
	if (init > 0)
		kill(init, SIGKILL);
	if (!monitor_wait_gone(monitor, monitor_start, 30000))
		ret = error_set(err, 500, ETIMEDOUT, "stop %s: the monitor (pid %d) did not exit", name, (int)monitor);
out:
	runtime_spec_free(spec);
	return ret;
}

static int freeze(const char *dir, bool frozen, struct ferry_error **err)
{
	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return -1;
	int ret = 0;
	if (monitor_find(dir) <= 0)
		ret = error_conflict(err, "container %s is not running", spec->name);
	else if (cgroup_freeze(spec->cgroup, frozen, err) < 0)
		ret = error_wrap(err, "container %s", spec->name);
	runtime_spec_free(spec);
	return ret;
}

int runtime_freeze(const char *dir, struct ferry_error **err)
{
	return freeze(dir, true, err);
}

int runtime_unfreeze(const char *dir, struct ferry_error **err)
{
	return freeze(dir, false, err);
}
