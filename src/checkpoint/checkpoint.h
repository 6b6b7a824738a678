/* Checkpoint/restore of a container's process tree through CRIU (libcriu,
 * RPC to `criu swrk`). Everything in ferry that talks to CRIU lives here.
 *
 * The options are the ones a ferry container needs (design.md, Facts): its
 * mounts bound in from the host are external (auto_ext_mnt with external
 * sharing and masters), the console master is held by the monitor outside
 * the dumped tree (orphan_pts_master: on restore CRIU makes a new master and
 * hands it back), established TCP connections move with the container, and
 * its veth is recreated by ferry, not by CRIU (netdev externals).
 *
 * When CRIU fails, the error carries CRIU's own failing line (the last
 * "Error" lines of its log) and the log's path. */
#pragma once

#include <jansson.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* Call once at start, before any thread: every CRIU this process starts
 * afterwards (directly, through libcriu, or through a child that inherits
 * the environment) tells it only of the actions ferry acts on
 * (CRIU_RPC_NOTIFY, scripts/criu-patches/0029): network-lock and -unlock,
 * post-dump, the orphaned pty master. Each other notification is a round
 * trip (~0.3-0.7 ms here) while the container is stopped. */
void checkpoint_process_init(void);
/* CRIU's log level (1-4) for every run that names none, this process's and
 * its children's (through the environment: call it before any thread):
 * 3 (info) unless set; 4 adds CRIU's debug lines. */
void checkpoint_set_log_level(int level);

/* A mount CRIU does not save but leaves to ferry: at dump, the mount at
 * `where` inside the container is recorded under `key`; at restore, `key`
 * is bound from the host directory `where`. (A bind from the host that
 * CRIU would find by itself records the host path it came from, which a
 * copied container must not inherit.) */
struct checkpoint_ext_mount {
	const char *key;   /* "ferry-dev" */
	const char *where; /* dump: the mount point inside ("/dev"); restore: the host directory */
};

struct checkpoint_dump_opts {
	pid_t pid;              /* host pid of the container's init */
	const char *images_dir; /* an existing directory; CRIU writes its images here */
	const char *log_path;   /* full path of CRIU's log (LOGDIR/NAME/<what>_dump_<timestamp>.log) */
	bool leave_running;     /* true: a snapshot, the container continues; false: it is killed once dumped */
	/* The container's v1 freezer cgroup ("/sys/fs/cgroup/freezer/ferry-x/c1"),
	 * or NULL: CRIU then seizes the tasks one by one. If the cgroup is
	 * already frozen, CRIU skips its own (100 ms step) freeze poll. */
	const char *freeze_cgroup;
	/* Pre-dump hook: a previous pre-dump's images, relative to images_dir
	 * ("../pre1"). Needs dirty-memory tracking, which this kernel lacks:
	 * keep NULL until checkpoint_check reports mem_dirty_track. */
	const char *parent_images;
	int log_level;          /* CRIU's 1-4; 0: the default (checkpoint_set_log_level) */
	const struct checkpoint_ext_mount *ext_mounts;
	size_t n_ext_mounts;
	/* A live migration's two ways with the memory, both on page_socket (a
	 * connected stream socket speaking CRIU's page-server protocol):
	 * page_server (stop-and-copy): the pages go to the peer (a `criu
	 * page-server`, checkpoint_page_server_start) as they are dumped, none
	 * into images_dir. lazy (post-copy): they are not dumped; after
	 * post_dump, CRIU serves them to the peer (a `criu lazy-pages` daemon)
	 * as it asks, until the socket ends; the dump returns once it has. */
	bool page_server;
	bool lazy;
	int page_socket;
	/* Called once the images are complete (and, with page_server, every
	 * page is with the peer), the tasks frozen: non-zero calls the dump off
	 * and resumes them, as after any failed dump (CRIU's post-dump
	 * notification). NULL: none. */
	int (*post_dump)(void *arg);
	void *post_dump_arg;
	/* The network lock, ours instead of CRIU's (CRIU's nftables table
	 * inside the container costs ~6 ms a step here): called with true where
	 * CRIU would lock (nothing may reach the container from then on), with
	 * false wherever it would unlock (a failed dump, a snapshot's end).
	 * Non-zero from the lock calls the dump off. NULL: CRIU locks. */
	int (*network_lock)(void *arg, bool lock);
	void *network_lock_arg;
	/* A `criu swrk` started before the container was frozen
	 * (checkpoint_swrk_start), so that CRIU's start-up (~8 ms here) is not
	 * spent with it frozen; the dump takes it over. NULL: the dump starts
	 * its own. */
	struct checkpoint_swrk *swrk;
};

/* `criu swrk`, waiting for one request on its socket. keep_fd (or -1): a
 * descriptor CRIU inherits under its own number (the page socket). */
struct checkpoint_swrk {
	pid_t pid;
	int fd;
};
int checkpoint_swrk_start(int keep_fd, struct checkpoint_swrk *s, struct ferry_error **err);
/* Ends a swrk that no dump took over (closing its socket ends it) and reaps
 * it; nothing for one that was taken over. */
void checkpoint_swrk_stop(struct checkpoint_swrk *s);

/* At ferryd's start: the page-socket config files (dump-PID-TID.conf in
 * CRIU's run directory) of dumps whose ferryd died before it removed them. */
void checkpoint_rundir_sweep(void);
#define cleanup_swrk __attribute__((cleanup(checkpoint_swrk_stop)))

/* Dump the process tree rooted at o->pid. On failure the container keeps
 * running (CRIU resumes what it seized; a freezer cgroup stays frozen).
 * A lazy dump whose pages were not all served after post_dump said go
 * fails with 500/ECONNABORTED: CRIU has let the tasks go as well (their
 * network unlocked: scripts/criu-patches/0005), but whether they may run
 * again is the caller's to say (not if their copy elsewhere ran on). */
int checkpoint_dump(const struct checkpoint_dump_opts *o, struct ferry_error **err);

/* A restored container's network device: a veth pair that CRIU makes, the
 * container end inside the restored namespace (stock 4.2.1 can't for a
 * user-namespaced container, design.md; patch 0014 can), the host end on
 * the host, off any bridge: checkpoint_restore_opts.network_unlock puts it
 * on one. */
struct checkpoint_netdev {
	const char *name;      /* the name inside the container: "eth0" */
	const char *host_name; /* the host end's name */
};

struct checkpoint_restore_opts {
	const char *rootfs;
	const char *images_dir;
	const char *log_path;
	/* Where the container's cgroups are, below every hierarchy's root
	 * ("/ferry-x/c1"); they must exist. The container's cgroup namespace was
	 * rooted there at dump time, so this maps it onto the new place. */
	const char *cgroup_root;
	const struct checkpoint_netdev *netdevs;
	size_t n_netdevs;
	int log_level;
	const struct checkpoint_ext_mount *ext_mounts;
	size_t n_ext_mounts;
	/* Leave every restored task stopped (SIGSTOP) instead of running: a live
	 * migration's target holds the container so until the source lets it go
	 * (checkpoint_resume). The network is already unlocked then. Such a
	 * restore runs on one CPU, and so do its tasks until checkpoint_resume
	 * (CRIU's restore of a tree is faster so, here: fewer cross-CPU wake-ups
	 * and TLB shoot-downs). */
	bool leave_stopped;
	/* Post-copy: the anonymous memory is not in the images but comes from
	 * the `criu lazy-pages` daemon (checkpoint_lazy_pages_start) listening
	 * in the log's directory. */
	bool lazy_pages;
	/* The images are this restore's alone (a migration's, gone after it
	 * either way): CRIU punches the pages out of them as it reads them
	 * (its auto-dedup), so the memory they held goes to the restored
	 * tasks instead of being taken twice. The pages image is lost. */
	bool discard_pages;
	/* The network lock, ours instead of CRIU's: the host ends are made off
	 * their bridges, and this puts them on, where CRIU would unlock (before
	 * the tasks run). Non-zero fails the restore. Required with netdevs:
	 * nothing else puts them on a bridge. */
	int (*network_unlock)(void *arg);
	void *network_unlock_arg;
	/* A `criu swrk` the caller started earlier, as its own child
	 * (checkpoint_swrk_start), so that CRIU's start-up (~15-20 ms here) is
	 * not spent now: the restore takes it over, and the caller reaps it
	 * (waitpid on any child) once it has ended. NULL (or its socket
	 * closed): libcriu starts one. */
	struct checkpoint_swrk *swrk;
};

/* Restore as a child of the calling process (criu_restore_child: the
 * restored init is created as the caller's child, so the caller should be a
 * child subreaper with SIGCHLD blocked). Returns the restored init's host pid
 * in *pid and the new console master (the pty master that was orphaned at
 * dump) in *console_master, or -1 if the tree had no orphaned master. On
 * failure CRIU has killed whatever it restored; the images are untouched. */
int checkpoint_restore(const struct checkpoint_restore_opts *o, pid_t *pid, int *console_master,
		       struct ferry_error **err);

/* A thread's CPUs, by its tid in the container's pid namespace
 * (checkpoint/affinity.c: CRIU saves no affinity). */
struct checkpoint_affinity {
	pid_t vtid;
	cpu_set_t cpus;
};
/* The processes of the cgroup at dir and of every cgroup below it (a
 * systemd container keeps none in its top cgroup of the cgroup2 tree), in a
 * new array; NULL with *n 0 when there are none. */
pid_t *checkpoint_cgroup_tree_pids(const char *dir, size_t *n);
/* While the tree is frozen: the threads of the processes in the cgroup tree
 * at cgroup_dir whose CPUs are not all of the caller's, written to path
 * (kept with the images); no file when there are none. */
int checkpoint_affinity_save(const char *cgroup_dir, const char *path, struct ferry_error **err);
/* The threads' CPUs saved at path, in a new array (none without a file). */
int checkpoint_affinity_load(const char *path, struct checkpoint_affinity **out, size_t *n, struct ferry_error **err);
/* Every thread of the restored processes pids allowed the caller's CPUs,
 * or, when a has it, the ones it had among those. */
void checkpoint_affinity_apply(const pid_t *pids, size_t n_pids, const struct checkpoint_affinity *a, size_t n);
/* The file's lines, "TID CPU,CPU,...", and back (-1: malformed). */
char *checkpoint_affinity_format(const struct checkpoint_affinity *a, size_t n);
int checkpoint_affinity_parse(const char *text, struct checkpoint_affinity **out, size_t *n);

/* Continue the tasks of a tree restored with leave_stopped: SIGCONT to each
 * process listed in cgroup_procs (a cgroup.procs file that holds them all),
 * each of its threads first given its CPUs back (checkpoint_affinity_apply
 * with affinity: CRIU restores none, its tasks get the restore's). The
 * processes whose pid in their own pid namespace is one of keep_stopped
 * (checkpoint_images_stopped's) stay stopped, as they were dumped. */
int checkpoint_resume(const char *cgroup_procs, const pid_t *keep_stopped, size_t n_keep,
		      const struct checkpoint_affinity *affinity, size_t n_affinity, struct ferry_error **err);

/* The processes that were stopped (SIGSTOP, ^Z) when CRIU dumped the
 * images in images_dir: their pids in the dumped pid namespace, in a new
 * array (*n of them, maybe none). */
int checkpoint_images_stopped(const char *images_dir, pid_t **vpids, size_t *n, struct ferry_error **err);
/* The task state in the bytes of one core image (core-PID.img): 1 alive,
 * 3 stopped; -1 without one (a thread's image) or for another image. */
int checkpoint_core_task_state(const void *img, size_t len);

/* Stop-and-copy's receiving end: start `criu page-server` as a child of
 * the caller, writing the pages that come on page_socket (the caller
 * keeps its copy) into images_dir, its log at log_path. It exits once
 * the dump said it is done: checkpoint_page_server_wait. */
int checkpoint_page_server_start(const char *images_dir, const char *log_path, int page_socket, pid_t *pid,
				 struct ferry_error **err);
/* Wait for it (at most timeout_ms; then it is killed): 0 when every page
 * is written. */
int checkpoint_page_server_wait(pid_t pid, const char *log_path, int timeout_ms, struct ferry_error **err);

/* Post-copy's receiving end: start `criu lazy-pages` as a child of the
 * caller, taking the pages from page_socket (a connected stream socket to
 * the dumping CRIU's page server; the child gets a copy) for the tasks a
 * restore with lazy_pages (images in images_dir, its log in the same
 * directory as log_path) is about to create. Returns at once, its pid in
 * *pid: the restore waits (up to 5 s, scripts/criu-patches/0010) until it
 * listens, so that the two start at the same time. It exits once every
 * page is in (status 0), or when the pages can't come (the tasks then lack
 * memory: they must not run on). drain_fd >= 0 (a pipe's read end; the
 * child gets a copy): the pages no task has asked for wait until it is
 * readable or every write end is closed (scripts/criu-patches/0027), so
 * that a restore leaving its tasks stopped does not pull them meanwhile. */
int checkpoint_lazy_pages_start(const char *images_dir, const char *log_path, int page_socket, int drain_fd,
				pid_t *pid, struct ferry_error **err);
/* The same daemon started ahead of its restore (scripts/criu-patches/
 * 0028): it waits on late_fd (a unix socket; the child gets a copy) for
 * one message: the log's name (in the work directory) as data, and the
 * images directory, the work directory and the page socket as SCM_RIGHTS.
 * The socket's end without one: it exits (status 0). drain_fd: as above. */
int checkpoint_lazy_pages_ahead(int drain_fd, int late_fd, pid_t *pid, struct ferry_error **err);

/* This host's CPU as CRIU describes it (`criu cpuinfo dump`: the bytes of
 * its cpuinfo.img), and whether a dump made on the CPU so described can be
 * restored here (`criu cpuinfo check`: CRIU's default comparison of the
 * features the processes may use). A live migration's pre-flight. */
int checkpoint_cpuinfo_dump(char **data, size_t *len, struct ferry_error **err);
int checkpoint_cpuinfo_check(const void *data, size_t len, struct ferry_error **err);

/* What this host can do, for GET /1.0's environment:
 * {"version": "4.2.1", "check": "ok" or CRIU's error,
 *  "features": {"mem_dirty_track": false, "lazy_pages": true, "pidfd_store": true, "pagemap_scan": true}}.
 * Fails only if CRIU can't be run at all. Takes about 100 ms (three CRIU runs). */
int checkpoint_check(json_t **out, struct ferry_error **err);

/* Where a dump's or restore's log goes (issue 3, point 4):
 * LOG_DIR/<what>_<action>_<UTC timestamp with ms>.log, e.g.
 * "/var/log/ferry/c1/stop_dump_20261122T101500.123.log"; what is "stop",
 * "snapshot" or "migration", action "dump" or "restore". Names sort by time. */
char *checkpoint_log_path(const char *log_dir, const char *what, const char *action);

/* The last "Error" lines of a CRIU log (at most max_lines, joined with "; "),
 * without their timestamps; NULL if the log has none. */
char *checkpoint_log_errors(const char *log_path, int max_lines);
