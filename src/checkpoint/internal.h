/* Shared between the checkpoint files; not part of checkpoint.h. */
#pragma once

#include <sched.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

/* CRIU 4.2.1, built by the project's setup script (design.md). */
#define CHECKPOINT_CRIU_BINARY "/usr/local/sbin/criu"
/* Its run directory, compiled in (scripts/setup.sh: make RUNDIR=...): CRIU
 * keeps its kernel-feature probe there (criu.kdat), on a tmpfs only. */
#define CHECKPOINT_CRIU_RUNDIR "/dev/shm/ferry-criu"

/* Make CHECKPOINT_CRIU_RUNDIR root's own private directory before a CRIU
 * run, so that CRIU caches its kernel-feature probe there (about 45 ms of
 * each run). /dev/shm is world-writable: a directory someone else made
 * first is moved aside, since CRIU trusts the file it finds there. Never
 * fails: without the directory CRIU just probes again. */
void checkpoint_prepare_rundir(void);

/* Fill *err for a failed libcriu call r: CRIU's own error lines from its log
 * and the log's path. Returns -1. */
int checkpoint_criu_error(struct ferry_error **err, const char *what, int r, const char *log_path);

/* Run a CRIU command (argv[0] the binary) as a child of the caller, stdio
 * on /dev/null; socket (>= 0) becomes its fd 3, drain_fd (>= 0) its fd 4,
 * named to it by CRIU_LAZY_DRAIN_FD (scripts/criu-patches/0027), late_fd
 * (>= 0) its fd 5, named by CRIU_LAZY_LATE_FD (0028; fd 3 is then
 * /dev/null until the late configuration puts the socket there). */
int checkpoint_spawn_criu(char **argv, int socket, int drain_fd, int late_fd, pid_t *pid, struct ferry_error **err);

/* Thread tid of process pid (host numbers): its number in its own
 * (innermost) pid namespace, NSpid's last in /proc/PID/task/TID/status; 0
 * if unknown. A process's own: tid = pid. */
pid_t checkpoint_inner_tid(pid_t pid, pid_t tid);

/* The threads a dump pinned to its own CPU, with the CPUs each had. */
struct checkpoint_pin {
	struct checkpoint_pinned *threads;
	size_t n, cap;
};

/* Every thread of every process in the cgroup tree at dir (frozen: none
 * comes or goes) onto the CPUs one, each one's own kept in pin. Best
 * effort: a thread that can't be moved stays where it was. */
void checkpoint_pin_tree(const char *dir, const cpu_set_t *one, struct checkpoint_pin *pin);

/* Each thread checkpoint_pin_tree moved gets its own CPUs back (one that
 * is gone is skipped); pin is emptied. */
void checkpoint_unpin(struct checkpoint_pin *pin);
