/* The container runtime: namespaces, mounts, cgroups, console, monitor, exec.
 *
 * ferry's own runtime (no liblxc), built so that CRIU can checkpoint what it
 * builds (../shared/docs/design.md, Facts): init is pid 1 and a session
 * leader, no fd of init points outside the container, the console is a pty
 * of the container's own devpts, and there is one monitor process per
 * container that is init's parent and a child subreaper.
 *
 * Per-container state directory (spec->dir, DIR/containers/NAME):
 *   spec.json      the runtime_spec the monitor was started with
 *   monitor.pid    the monitor's pid (with its start time, to survive pid reuse)
 *   init.pid       init's host pid while it runs
 *   monitor.sock   the monitor's unix socket (console attach)
 *   console.log    what the console printed (last 1 MiB)
 *   exit.status    init's last wait status ("9 checkpointed" after a stateful stop)
 *   checkpoint.stop present while a stateful stop's dump runs
 *   rootfs/        the root filesystem, owned by the idmap range on disk
 *   dev/           the container's /dev (bound in; emptied at each fresh start,
 *                  kept as it is for a restore)
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

struct runtime_nic {
	char *name;         /* name inside the container: "eth0" */
	char *bridge;       /* host bridge the host end joins */
	char *hwaddr;       /* "00:16:3e:12:34:56" */
	char *ipv4_cidr;    /* "10.166.0.23/24", or NULL for none */
	char *ipv4_gateway; /* "10.166.0.1": default route, or NULL */
	char *host_name;    /* host-side veth name; NULL: the runtime picks a fresh one */
	unsigned mtu;       /* 0: 1500 */
};

struct runtime_mount {
	char *source;  /* host path */
	char *target;  /* absolute path in the container */
	bool readonly;
};

struct runtime_spec {
	char *name;      /* container name, also its hostname */
	char *dir;       /* the state directory described above */
	char *rootfs;    /* usually DIR/containers/NAME/rootfs */
	char *log_dir;   /* this container's log directory (LOGDIR/NAME) */
	char *init;      /* NULL: "/sbin/init" */
	char *cgroup;    /* cgroup path below each hierarchy's root, unique per daemon: "ferry-1a2b3c4d/c1" */
	bool privileged; /* true: no user namespace */
	unsigned idmap_hostid; /* host uid/gid of container id 0 (unprivileged) */
	unsigned idmap_range;  /* number of ids mapped (65536) */
	long long limits_memory;    /* bytes; 0: no limit */
	char *limits_cpu;           /* cpuset list ("0-1", "0,2"); NULL: no limit */
	long long limits_processes; /* 0: no limit */
	char **environment;         /* NULL-terminated "KEY=VALUE" for init */
	struct runtime_nic *nics;
	size_t n_nics;
	struct runtime_mount *mounts;
	size_t n_mounts;
};

void runtime_spec_free(struct runtime_spec *spec);
/* The spec as JSON text and back (spec.json, read by the monitor). */
char *runtime_spec_to_json(const struct runtime_spec *spec);
int runtime_spec_from_json(const char *text, struct runtime_spec **spec, struct ferry_error **err);

/* Start the container: spawn its monitor (a new process, not a child of the
 * caller once started), which builds the namespaces, cgroups and network and
 * execs init. Returns once init runs, or with the monitor's error (what
 * failed, e.g. "mount /proc: Permission denied"). The container survives the
 * caller's exit. Safe to call from a multi-threaded process. */
int runtime_start(const struct runtime_spec *spec, struct ferry_error **err);

/* Restore a checkpointed container (runtime_checkpoint) from images_dir
 * (which also holds ferry's own record of the container's cgroups):
 * like runtime_start, but the monitor, instead of booting init, creates the
 * cgroups and fresh veths (new host-side names, recorded in spec.json) and
 * has CRIU restore the process tree as its children; the console continues
 * on the pty master CRIU hands back. CRIU's log goes to log_path (full path:
 * LOGDIR/NAME/<what>_restore_<timestamp>.log). On failure nothing is left
 * running, the cgroups and veths are gone, the images are untouched, and the
 * error carries CRIU's failing line and the log's path. o (may be NULL):
 * paused: every restored task is left stopped (the network already up)
 * until runtime_resume: a live migration's target holds it so until the
 * source has let its copy go. */
struct runtime_restore_opts {
	bool paused;
	/* Post-copy: the memory comes later, from the source's CRIU through
	 * this connected socket (the monitor keeps a copy). The monitor runs
	 * `criu lazy-pages` on it for the restore and watches it: should the
	 * pages stop coming, the container is killed (it would run on with
	 * zeroes for memory). runtime_lazy_pages_status tells the outcome. */
	bool lazy_pages;
	int lazy_socket;
	/* The images go once restored, however it ends (checkpoint_restore_opts). */
	bool discard_pages;
};
int runtime_restore(const struct runtime_spec *spec, const char *images_dir, const char *log_path,
		    const struct runtime_restore_opts *o, struct ferry_error **err);
/* A post-copy restore's pages (runtime_restore_opts.lazy_pages): 1 all in,
 * 0 still coming, -1 failed (why in *err: the container was killed). */
int runtime_lazy_pages_status(const char *dir, struct ferry_error **err);
/* Let the tasks of a container restored paused run. */
int runtime_resume(const char *name, const char *dir, struct ferry_error **err);
/* Put the container's host veths back on their bridges: the end of the
 * network lock a checkpoint takes (runtime_checkpoint does it itself
 * unless its caller died meanwhile). Idempotent. */
int runtime_network_unlock(const char *name, const char *dir, struct ferry_error **err);

struct runtime_checkpoint_opts {
	const char *images_dir; /* an existing, empty directory */
	const char *log_path;   /* full path: LOGDIR/NAME/<what>_dump_<timestamp>.log */
	bool leave_running;     /* true: a stateful snapshot; false: a stateful stop */
	bool ptrace_seize;      /* let CRIU seize task by task instead of freezing the cgroup first (for comparisons) */
	/* Post-copy (checkpoint_dump_opts): leave_running must be false. Should
	 * the pages fail after post_dump said go, CRIU gives the tasks back
	 * (still frozen) and lazy_failed(post_dump_arg) decides: true, they
	 * were taken over elsewhere: the container is killed and the error is
	 * 500/ECONNABORTED; false: it runs on here (500/ECONNRESET). */
	bool lazy;
	bool page_server; /* stop-and-copy to a page server (checkpoint_dump_opts) */
	int page_socket;
	int (*post_dump)(void *arg);
	bool (*lazy_failed)(void *arg);
	/* Called (with post_dump_arg) once the container is frozen, before CRIU
	 * starts: its files change no more from here on. May be NULL. */
	void (*frozen)(void *arg);
	void *post_dump_arg;
	/* A `criu swrk` the caller started well before (checkpoint_swrk_start,
	 * keeping page_socket): CRIU's start-up (~15 ms here) is then over by
	 * the freeze. The dump takes it over; the caller stops it after (a
	 * no-op once taken over). NULL: one starts here, just before the
	 * freeze. */
	struct checkpoint_swrk *swrk;
	/* A live move's: taken right before the freeze; a failed dump gives
	 * the frames back to the container once its veths are on their
	 * bridges again. NULL: none. */
	struct runtime_frame_hold *hold;
};

/* A live move's held frames (hold.c): what the LAN sends the container
 * while the dump's network lock keeps it off its bridges is kept instead
 * of lost, for the target to give it once it runs there. prepare (before
 * the freeze: a hold port on each NIC's bridge) for the container whose
 * state is in dir; take (right before the freeze:
 * runtime_checkpoint_opts.hold does it) sends the NICs' frames there; end
 * (idempotent) stops keeping them; frames: what was kept, as [u32 length,
 * network order][struct virtio_net_hdr, then the Ethernet frame]...,
 * valid until free, which removes the ports and with them the redirection
 * (so does putting a veth back on its bridge). */
struct runtime_frame_hold;
int runtime_frame_hold_prepare(const char *dir, struct runtime_frame_hold **hold, struct ferry_error **err);
int runtime_frame_hold_take(struct runtime_frame_hold *hold, struct ferry_error **err);
void runtime_frame_hold_end(struct runtime_frame_hold *hold);
const char *runtime_frame_hold_frames(const struct runtime_frame_hold *hold, size_t *len, size_t *count,
				      size_t *dropped);
void runtime_frame_hold_free(struct runtime_frame_hold *hold);
/* The dump failed and the container runs on here, its veths back on their
 * bridges: end the hold and give the container what was kept, once (name:
 * for the log). */
void runtime_frame_hold_give_back(struct runtime_frame_hold *hold, const char *name);
/* Give the container whose state is in dir the frames (as above) addressed
 * to its NICs' MACs, through their host veths; *given: how many went. */
int runtime_frames_give(const char *dir, const char *frames, size_t len, size_t *given, struct ferry_error **err);

/* Checkpoint the running container with CRIU. leave_running: it continues
 * (and stays frozen if it was). Otherwise it stops: returns once the monitor
 * has cleaned up as for runtime_stop, and runtime_get_state reports the exit
 * as checkpointed. On failure the container keeps running, and the error
 * carries CRIU's failing line and the log's path. */
int runtime_checkpoint(const char *name, const char *dir, const struct runtime_checkpoint_opts *o,
		       struct ferry_error **err);

enum runtime_status { RUNTIME_STOPPED, RUNTIME_RUNNING, RUNTIME_FROZEN };

struct runtime_state {
	enum runtime_status status;
	pid_t monitor_pid;
	pid_t init_pid;          /* host pid of init; 0 when stopped */
	long long processes;     /* number of processes in the container; -1 unknown */
	long long memory_usage;  /* bytes, from the memory cgroup; -1 unknown */
	long long memory_peak;   /* bytes; -1 unknown */
	long long cpu_usage_ns;  /* from cpuacct; -1 unknown */
	int last_exit_status;    /* wait status of the last init exit; -1 none */
	bool checkpointed;       /* that exit was a stateful stop (CRIU dumped and ended it), not a crash */
};

/* Find the container's monitor again (also after a ferryd restart) and read
 * its state. A container with no live monitor is RUNTIME_STOPPED. */
int runtime_get_state(const char *name, const char *dir, struct runtime_state *st, struct ferry_error **err);

/* Stop: send init its shutdown signal (SIGRTMIN+4 to systemd, SIGUSR2 to
 * busybox init, else SIGPWR), wait up to timeout_s seconds (-1: forever),
 * then SIGKILL. force: SIGKILL at once. Returns once the monitor has exited
 * and the cgroups and host veths are gone. */
int runtime_stop(const char *name, const char *dir, int timeout_s, bool force, struct ferry_error **err);

/* rmdir an (empty) cgroup directory and the cgroups below it, deepest
 * first: 0, also when dir is gone; -1 with errno. */
int runtime_cgroup_remove_tree(const char *dir);

/* Freeze and thaw every process through the freezer cgroup. */
int runtime_freeze(const char *dir, struct ferry_error **err);
int runtime_unfreeze(const char *dir, struct ferry_error **err);

struct runtime_exec {
	char **argv;     /* argv[0] resolved with PATH inside the container */
	char **env;      /* full environment; NULL: a default PATH/HOME/TERM */
	char *cwd;       /* NULL: "/root" or "/" */
	uid_t uid;       /* inside the container */
	gid_t gid;
	int stdio[3];    /* fds in the caller for the process's stdin/out/err */
	bool tty;        /* stdio[0] is a pty slave from runtime_open_pty: make it the controlling tty */
};

/* Run a process in the running container: joins its cgroups and every
 * namespace, becomes a session leader inside (so the container stays
 * dumpable), and execs. *pid is a host process, a child of the caller, whose
 * exit status is the command's (exit code, or 128+signal); *inner_pid is the
 * command's own host pid, for forwarding signals. */
int runtime_exec(const char *name, const char *dir, const struct runtime_exec *ex, pid_t *pid, pid_t *inner_pid,
		 struct ferry_error **err);

/* Open a pty pair in the container's own devpts (for interactive exec). */
int runtime_open_pty(const char *dir, int *master, int *slave, struct ferry_error **err);

/* Connect to the console: returns a socket whose reads are console output
 * and whose writes are console input, relayed by the monitor. */
int runtime_console_attach(const char *dir, int *fd, struct ferry_error **err);

/* Entry point of the monitor: ferryd re-executes itself as
 * "ferryd __monitor DIR" and main() calls this. Never returns. */
_Noreturn void runtime_monitor_main(const char *dir);
/* A spare monitor ("PROGRAM __spare", runtime_spares_start): waits, started
 * and with a `criu swrk` of its own, for the next start or restore. */
_Noreturn void runtime_monitor_spare_main(void);
/* Keep a spare monitor from now on (ferryd: from its start), for starts and
 * restores to take instead of spawning one, and a spare `criu swrk` for
 * stateful stops and snapshots; the spares end with the caller or at
 * runtime_spares_stop (which waits for the last to go). */
void runtime_spares_start(void);
void runtime_spares_stop(void);
/* A restore is coming (a live move to here begins): make the spare now if
 * there is none, rather than a second after the last one was taken (moves
 * back to back, a host's evacuation, come faster); returns once it is
 * ready. Not while anything here is stopped: its start takes CPU. */
void runtime_spares_ready(void);
