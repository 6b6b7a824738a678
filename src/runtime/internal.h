/* Shared between the runtime's files; not part of its interface (runtime.h). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "runtime/runtime.h"

/* File names inside the state directory. */
#define RUNTIME_SPEC_FILE "spec.json"
#define RUNTIME_MONITOR_PID_FILE "monitor.pid"
#define RUNTIME_INIT_PID_FILE "init.pid"
#define RUNTIME_MONITOR_SOCK "monitor.sock"
#define RUNTIME_CONSOLE_LOG "console.log"
#define RUNTIME_EXIT_STATUS "exit.status"
#define RUNTIME_CHECKPOINT_STOP "checkpoint.stop"
/* A restore left paused: the pids (in the container's namespace, one a
 * line) of the processes that were stopped when dumped, which its resume
 * leaves stopped (checkpoint_images_stopped). */
#define RUNTIME_RESTORED_STOPPED "restored.stopped"
/* The container's /dev: a directory of the state dir, bound in (not a
 * tmpfs: CRIU would archive a tmpfs's files with tar on every dump and
 * restore; a bind from the host is external to it and costs nothing). */
#define RUNTIME_DEV_DIR "dev"
/* Its name in CRIU's images: restored from this container's own RUNTIME_DEV_DIR. */
#define RUNTIME_DEV_MOUNT_KEY "ferry-dev"
/* Kept with CRIU's images: the container's own cgroups (cgroup_save_tree). */
#define RUNTIME_CGROUPS_IMAGE "ferry-cgroups.txt"
/* Kept with CRIU's images: the threads with CPUs of their own
 * (checkpoint_affinity_save); absent when none has. */
#define RUNTIME_AFFINITY_IMAGE "ferry-affinity.txt"
/* A restore left paused: that file, for runtime_resume to apply. */
#define RUNTIME_RESTORED_AFFINITY "restored.affinity"

/* Environment variable through which runtime_start hands the monitor the
 * write end of its status pipe. */
#define RUNTIME_STATUS_FD_ENV "FERRY_MONITOR_STATUS_FD"
/* Set by runtime_restore: the monitor restores from these images instead of
 * booting init, logging CRIU to that path. */
#define RUNTIME_RESTORE_IMAGES_ENV "FERRY_MONITOR_RESTORE_IMAGES"
#define RUNTIME_RESTORE_LOG_ENV "FERRY_MONITOR_RESTORE_LOG"
/* Set (to "1"): the restored tasks stay stopped until runtime_resume. */
#define RUNTIME_RESTORE_PAUSED_ENV "FERRY_MONITOR_RESTORE_PAUSED"
/* Set (to "1"): runtime_restore_opts.discard_pages. */
#define RUNTIME_RESTORE_DISCARD_ENV "FERRY_MONITOR_RESTORE_DISCARD"
/* Post-copy: the fd of the socket to the source's page server. */
#define RUNTIME_RESTORE_LAZY_FD_ENV "FERRY_MONITOR_RESTORE_LAZY_FD"
/* A spare monitor's end of its socket to the ferryd that keeps it. */
#define RUNTIME_SPARE_FD_ENV "FERRY_MONITOR_SPARE_FD"
/* Post-copy: "ok" once every page is in, else why the container was killed. */
#define RUNTIME_LAZY_STATUS "lazy-pages.status"

/* --- cgroups.c: the container's cgroups on the hybrid v1 + unified layout --- */

/* Create spec->cgroup in every v1 hierarchy ferry uses and in the unified one,
 * and apply the spec's limits. */
int cgroup_create(const struct runtime_spec *spec, struct ferry_error **err);
/* The sub-cgroups the container made in its cgroup2 tree (systemd's
 * slices and services), with their owners, one "UID GID PATH" line each,
 * parents first, into file; and back after a restore, before CRIU runs.
 * CRIU recreates only the cgroups that hold tasks, but systemd keeps
 * inotify watches on the cgroup.events of empty ones too (a restore fails
 * on "Unable to open .../system-getty.slice/cgroup.events"). */
int cgroup_save_tree(const char *cgroup, const char *file, struct ferry_error **err);
int cgroup_restore_tree(const char *cgroup, const char *file, struct ferry_error **err);
/* Move pid into the container's cgroups. */
int cgroup_attach(const char *cgroup, pid_t pid, struct ferry_error **err);
/* Kill whatever is left in the cgroups and remove them. */
int cgroup_destroy(const char *cgroup, struct ferry_error **err);
/* Open every cgroup.procs of the container for writing (for runtime_exec, which
 * joins by writing "0" after fork). Returns the number of fds, or < 0. */
int cgroup_open_procs(const char *cgroup, int *fds, int max_fds, struct ferry_error **err);
/* Freeze or thaw through cgroup v2's freezer where the container has a
 * cgroup in the unified hierarchy, else v1's; returns once frozen (a thaw
 * also thaws v1's, which an older ferryd may have used). */
int cgroup_freeze(const char *cgroup, bool frozen, struct ferry_error **err);
/* True if either freezer holds the container (v1: FROZEN or FREEZING). */
bool cgroup_is_frozen(const char *cgroup);
/* The freezer's directory, for CRIU's --freeze-cgroup: the one
 * cgroup_freeze uses. */
char *cgroup_freezer_dir(const char *cgroup);
/* Number of processes in the container (the pids hierarchy, recursively); -1 unknown. */
long long cgroup_count_processes(const char *cgroup);
/* A number from a cgroup file ("memory", "memory.usage_in_bytes"); -1 unknown. */
long long cgroup_read_number(const char *controller, const char *cgroup, const char *file);
/* SIGKILL every process in the container's cgroups. */
void cgroup_kill_all(const char *cgroup);
/* fn for every pid in the container's cgroup of controller and below. */
void cgroup_for_each_pid(const char *controller, const char *cgroup, void (*fn)(pid_t pid, void *data), void *data);

/* --- container.c: runs in the cloned child, inside the new namespaces --- */

struct container_setup {
	const struct runtime_spec *spec;
	int sync_fd; /* the child's end of the monitor's socketpair */
};
/* The container's /dev directory on the host (RUNTIME_DEV_DIR), bound in
 * at boot: made afresh (fresh), or only if missing (for a restore). */
int container_dev_dir_prepare(const struct runtime_spec *spec, bool fresh, struct ferry_error **err);
/* Entry point of the clone()d child. Waits for the monitor's go, builds the
 * container's filesystem and console, and execs init. Returns only on error
 * (after reporting it on sync_fd). */
int container_init_main(void *arg);

/* Messages on the monitor/child socketpair. */
enum container_sync_msg {
	SYNC_GO = 'G',       /* monitor -> child: maps, cgroups and network are ready */
	SYNC_CONSOLE = 'C',  /* child -> monitor: console master (SCM_RIGHTS) */
	SYNC_ERROR = 'E',    /* child -> monitor: followed by the error message */
};

/* --- state.c: finding a container's processes again --- */

/* Start time of pid (field 22 of /proc/PID/stat); 0 if pid is gone or a zombie. */
unsigned long long proc_start_time(pid_t pid);
/* The monitor's pid if it still runs (pid and start time match monitor.pid), else 0. */
pid_t monitor_find(const char *dir);
/* Init's pid from init.pid if the monitor runs, else 0. */
pid_t init_find(const char *dir);
/* spec.json of the state directory. */
int spec_load(const char *dir, struct runtime_spec **spec, struct ferry_error **err);
int spec_save(const struct runtime_spec *spec, struct ferry_error **err);
/* Wait until monitor (started at start_time) has exited; false on timeout
 * (timeout_ms < 0: forever). A zombie counts as gone. */
bool monitor_wait_gone(pid_t monitor, unsigned long long start_time, long long timeout_ms);

/* --- checkpoint.c --- */

/* The network lock during a dump or restore, done on the host: every host
 * veth end off its bridge (lock) or back on (unlock). A lock stops at the
 * first failure; an unlock puts back all it can. Failures are logged. */
int nics_lock(const struct runtime_spec *spec, bool lock);
/* The spare swrk for dumps without a page socket (runtime_spares_start). */
void dump_spares_start(void);
void dump_spares_stop(void);

/* --- container.c --- */

/* No signal blocked, every one at its default: what the monitor ignores
 * or blocks must not reach init (or a detached monitor) that way. */
void reset_signals(void);

/* --- monitor.c --- */

/* Run fill (a spare's maker) a second from now, in a thread of its own:
 * not now, while the start or restore that took the last spare is under
 * way (a spare's start-up would take a core from it). */
void spare_fill_later(void (*fill)(void));

/* --- restore.c: the monitor's side of runtime_restore --- */

struct checkpoint_swrk;

/* Give the nics fresh host veth names (saved in spec.json) and have CRIU
 * restore the container as the caller's children, making its veths.
 * swrk: a `criu swrk` the caller started ahead (a spare monitor's), or
 * NULL. *host_veths is set (for the caller to delete) even on failure.
 * Post-copy: *lazy_pid is the daemon the caller started (restore_lazy_start),
 * killed here if CRIU fails. */
int restore_init(struct runtime_spec *spec, const char *images_dir, const char *log_path,
		 const struct runtime_restore_opts *o, struct checkpoint_swrk *swrk, pid_t *init_pid,
		 int *console, char ***host_veths, pid_t *lazy_pid, struct ferry_error **err);
/* Post-copy: the log of `criu lazy-pages` next to the restore's log
 * ("..._restore_TS.log" -> "..._lazy-pages_TS.log"). */
char *restore_lazy_log_path(const char *restore_log);
/* Post-copy's `criu lazy-pages` started ahead of its restore, by a spare
 * monitor (it takes ~10 ms to listen, and the restore waits for it): it
 * waits for restore_lazy_start to tell it where its restore is. */
struct restore_lazy_ahead {
	pid_t pid;
	int late;  /* its configuration socket, -1 once used or dropped */
	int drain; /* the write end of its drain pipe (below) */
};
int restore_lazy_ahead_start(struct restore_lazy_ahead *a, struct ferry_error **err);
/* Not needed (a start, or a restore without lazy pages): it exits on its
 * own, a child left to reap. Idempotent. */
void restore_lazy_ahead_drop(struct restore_lazy_ahead *a);
/* Post-copy's `criu lazy-pages` on socket (closed here), the one started
 * ahead when there is one (ahead may be NULL), else started now, as soon
 * as the monitor has the restore. The pages no task asks for wait until
 * *drain (a pipe's write end, close-on-exec) is closed: once the restored
 * tasks run. */
int restore_lazy_start(const char *dir, const char *images_dir, const char *log_path, int socket,
		       struct restore_lazy_ahead *ahead, pid_t *lazy_pid, int *drain, struct ferry_error **err);
/* dir/name, for the fixed file names above. */
char *state_path(const char *dir, const char *name);
/* Connect to or bind a unix socket at a path that may be longer than sun_path
 * (through /proc/self/fd of the directory). */
int unix_socket_at(const char *dir, const char *name, bool listen_on, int *out, struct ferry_error **err);
/* Send one message (data, len) with n_fds fds (SCM_RIGHTS, at most 4):
 * the bytes sent, or -1. */
ssize_t unix_send_fds(int sock, const void *data, size_t len, const int *fds, size_t n_fds);
/* Receive one message into buf (size) and up to max_fds of its fds
 * (close-on-exec; any more are closed), *n_fds of them: its length, 0 at
 * the end, or -1. */
ssize_t unix_recv_fds(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *n_fds);
/* Send/receive one byte message with an optional fd (SCM_RIGHTS). */
int sync_send(int sock, char msg, int fd, const char *text);
ssize_t sync_recv(int sock, char *msg, int *fd, char *text, size_t text_size);
