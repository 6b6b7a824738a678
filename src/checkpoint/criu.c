/* Dump and restore through libcriu: each call builds its own criu_opts
 * (criu_local_*, so that ferryd's threads never share CRIU's global options)
 * and runs one `criu swrk` for it. */
#include <criu/criu.h>
#include <criu/rpc.pb-c.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/internal.h"
#include "common/log.h"
#include "common/util.h"

/* Deleted files that are still open are copied into the images ("ghost
 * files"); CRIU's 1 MiB default refuses an ordinary deleted log file. */
#define GHOST_LIMIT (128u << 20)
/* CRIU's log level for every run that names none: 3 (info), or what
 * checkpoint_set_log_level put in the environment, which the monitors (ferryd
 * run again) inherit. CRIU's debug lines (4) are two thirds of a log and cost
 * ~7% of a live move's stop here: busybox post-copy 110 -> 103 ms, with 33
 * processes ~580 -> ~540 ms. */
#define LOG_LEVEL_ENV "FERRY_CRIU_LOG_LEVEL"

void checkpoint_set_log_level(int level)
{
	char v[2] = { (char)('0' + level), '\0' };
	if (level >= 1 && level <= 4)
		setenv(LOG_LEVEL_ENV, v, 1);
}

static int log_level_default(void)
{
	const char *v = getenv(LOG_LEVEL_ENV);
	if (v != NULL && v[0] >= '1' && v[0] <= '4' && v[1] == '\0')
		return v[0] - '0';
	return 3;
}

void checkpoint_prepare_rundir(void)
{
	static const char dir[] = CHECKPOINT_CRIU_RUNDIR;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return;
		struct stat st;
		if (lstat(dir, &st) < 0)
			return;
		if (S_ISDIR(st.st_mode) && st.st_uid == geteuid() && (st.st_mode & 0077) == 0)
			return;
		cleanup_free char *aside = xasprintf("%s.untrusted.%d", dir, (int)getpid());
		log_warn("%s is not root's private directory: moved to %s", dir, aside);
		if (rename(dir, aside) < 0)
			return;
	}
}

void checkpoint_rundir_sweep(void)
{
	DIR *d = opendir(CHECKPOINT_CRIU_RUNDIR);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int pid = 0, tid = 0, n = 0;
		if (sscanf(de->d_name, "dump-%d-%d.conf%n", &pid, &tid, &n) != 2 || de->d_name[n] != '\0' || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
}

static void criu_opts_freep(criu_opts **opts)
{
	if (*opts != NULL)
		criu_local_free_opts(*opts);
}
#define cleanup_criu_opts __attribute__((cleanup(criu_opts_freep)))

/* CRIU reaches each cgroup hierarchy through a "yard": a directory holding
 * one mount of each, named for its controllers ("unified" for cgroup v2).
 * Unless given one, it makes its own: ten mounts here, on every dump
 * (~0.8 ms) and restore (~0.6 ms). The host's /sys/fs/cgroup is such a
 * directory when it holds a hierarchy for every line of /proc/self/cgroup
 * (a hybrid layout, as ferry's cgroups need): then it is the yard. CRIU
 * would mount a hierarchy the images name but the yard lacks into it, so
 * this host's own must all be there. */
#define CGROUP_YARD "/sys/fs/cgroup"

static bool host_cgroup_yard(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	cleanup_free char *text = NULL;
	cleanup_error struct ferry_error *e = NULL;
	if (file_read("/proc/self/cgroup", &text, NULL, &e) < 0)
		return (known = 0);
	bool all = true;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line != NULL && all; line = strtok_r(NULL, "\n", &save)) {
		/* "ID:CONTROLLERS:PATH"; CONTROLLERS empty for cgroup v2. */
		char *names = strchr(line, ':');
		char *end = names ? strchr(names + 1, ':') : NULL;
		if (end == NULL)
			return (known = 0);
		*end = '\0';
		names++;
		if (strncmp(names, "name=", 5) == 0)
			names += 5;
		cleanup_free char *dir = xasprintf(CGROUP_YARD "/%s", *names ? names : "unified");
		struct stat st;
		all = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	}
	return (known = all);
}

/* Options common to dump and restore. CRIU takes the log's name relative to
 * its work directory (no "/" allowed), so the work directory is the log's. */
static int opts_new(const char *what, const char *images_dir, const char *log_path, int log_level, criu_opts **out,
		    int *images_fd, int *work_fd, struct ferry_error **err)
{
	*images_fd = open(images_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (*images_fd < 0)
		return error_sys(err, errno, "CRIU %s: images directory %s", what, images_dir);
	cleanup_free char *log_dir = xstrdup(log_path);
	char *slash = strrchr(log_dir, '/');
	const char *log_name = log_path;
	if (slash != NULL) {
		*slash = '\0';
		log_name = slash + 1;
		if (log_dir[0] == '\0')
			strcpy(log_dir, "/");
	} else {
		strcpy(log_dir, ".");
	}
	if (log_name[0] == '\0')
		return error_bad_request(err, "CRIU %s: log path %s names no file", what, log_path);
	*work_fd = open(log_dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (*work_fd < 0)
		return error_sys(err, errno, "CRIU %s: log directory %s", what, log_dir);

	checkpoint_prepare_rundir();
	criu_opts *opts = NULL;
	if (criu_local_init_opts(&opts) < 0)
		return error_set(err, 500, ENOMEM, "CRIU %s: libcriu could not allocate its options", what);
	*out = opts;
	if (criu_local_set_service_binary(opts, CHECKPOINT_CRIU_BINARY) < 0 ||
	    criu_local_set_log_file(opts, log_name) < 0)
		return error_set(err, 500, ENOMEM, "CRIU %s: libcriu options", what);
	criu_local_set_images_dir_fd(opts, *images_fd);
	criu_local_set_work_dir_fd(opts, *work_fd);
	criu_local_set_log_level(opts, log_level > 0 ? log_level : log_level_default());

	/* What every ferry container needs on both sides (see checkpoint.h). */
	criu_local_set_shell_job(opts, false);
	criu_local_set_tcp_established(opts, true);
	criu_local_set_file_locks(opts, true);
	criu_local_set_auto_ext_mnt(opts, true);
	criu_local_set_ext_sharing(opts, true);
	criu_local_set_ext_masters(opts, true);
	criu_local_set_orphan_pts_master(opts, true);
	criu_local_set_ghost_limit(opts, GHOST_LIMIT);
	/* The container's network namespace is its own: CRIU locks it (drops
	 * every packet but its own, so that no RST kills a TCP connection while
	 * it is dumped or being restored) with a table inside it, the host's
	 * tables stay untouched. nftables, through libnftables inside CRIU:
	 * iptables would run iptables-restore (and ip6tables-restore) for the
	 * lock, and again for the unlock on restore, 5-15 ms a run here. */
	if (criu_local_set_network_lock(opts, CRIU_NETWORK_LOCK_NFTABLES) < 0)
		return error_set(err, 500, ENOMEM, "CRIU %s: libcriu options", what);
	/* The monitor creates the container's cgroups (with their limits) before
	 * a restore: CRIU puts the tasks back into them and restores the
	 * properties only of cgroups it has to create itself (ones the container
	 * made below its own). */
	criu_local_set_manage_cgroups(opts, true);
	criu_local_set_manage_cgroups_mode(opts, CRIU_CG_MODE_SOFT);
	if (host_cgroup_yard() && criu_local_add_cg_yard(opts, CGROUP_YARD) < 0)
		return error_set(err, 500, ENOMEM, "CRIU %s: libcriu options", what);
	return 0;
}

/* CRIU stops its helpers with SIGTERM (cgroupd, at the end of a restore).
 * A caller that ignores SIGTERM (the monitor does) would hand that on to
 * `criu swrk` through fork and exec, and the restore would hang for good in
 * waitpid. Around a CRIU call, ignoring becomes blocking (inherited too, but
 * the helpers unblock SIGTERM themselves); a SIGTERM that arrives meanwhile
 * is dropped when SIG_IGN is put back, as it would have been. */
struct sigterm_guard {
	bool swapped;
	sigset_t old_mask;
};

static void sigterm_guard_enter(struct sigterm_guard *g)
{
	struct sigaction old;
	g->swapped = false;
	if (sigaction(SIGTERM, NULL, &old) < 0 || old.sa_handler != SIG_IGN)
		return;
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &g->old_mask);
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigaction(SIGTERM, &dfl, NULL);
	g->swapped = true;
}

static void sigterm_guard_leave(struct sigterm_guard *g)
{
	if (!g->swapped)
		return;
	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigaction(SIGTERM, &ign, NULL);
	pthread_sigmask(SIG_SETMASK, &g->old_mask, NULL);
}

/* libcriu's return codes, for when CRIU left no error in its log. */
static const char *criu_failure(int r)
{
	switch (-r) {
	case EBADE:
		return "CRIU reported failure";
	case ECONNREFUSED:
		return "could not start " CHECKPOINT_CRIU_BINARY;
	case ECOMM:
		return "lost the connection to CRIU (it died?)";
	case EINVAL:
		return "CRIU does not support this request";
	case EBADMSG:
		return "unexpected answer from CRIU";
	default:
		return "CRIU failed";
	}
}

/* CRIU's errors that need saying in a container's terms: a substring of
 * its line, and what it means. */
static const struct {
	const char *line, *meaning;
} criu_meanings[] = {
	{ "In-flight connection",
	  "A listening TCP socket in the container holds connections its process has not accepted yet, even after "
	  "a wait before the freeze, which CRIU can't save: try again once they are accepted" },
};

int checkpoint_criu_error(struct ferry_error **err, const char *what, int r, const char *log_path)
{
	cleanup_free char *errors = checkpoint_log_errors(log_path, 3);
	const char *meaning = NULL;
	for (size_t i = 0; errors != NULL && i < sizeof(criu_meanings) / sizeof(criu_meanings[0]); i++)
		if (strstr(errors, criu_meanings[i].line) != NULL)
			meaning = criu_meanings[i].meaning;
	if (errors != NULL && meaning != NULL)
		return error_set(err, 500, EIO, "CRIU %s failed: %s. %s (log: %s)", what, errors, meaning, log_path);
	if (errors != NULL)
		return error_set(err, 500, EIO, "CRIU %s failed: %s (log: %s)", what, errors, log_path);
	return error_set(err, 500, -r, "CRIU %s failed: %s (%d) (log: %s)", what, criu_failure(r), r, log_path);
}

/* libcriu's notify callback has no user data: the dump in this thread. */
struct dump_notify_state {
	const struct checkpoint_dump_opts *o;
	bool handed_over; /* post_dump said go */
};
static __thread struct dump_notify_state *dump_state;

static int dump_notify(char *action, criu_notify_arg_t na)
{
	(void)na;
	struct dump_notify_state *st = dump_state;
	if (st == NULL)
		return 0;
	if (st->o->network_lock != NULL && strcmp(action, "network-lock") == 0)
		return st->o->network_lock(st->o->network_lock_arg, true);
	if (st->o->network_lock != NULL && strcmp(action, "network-unlock") == 0)
		return st->o->network_lock(st->o->network_lock_arg, false);
	if (strcmp(action, "post-dump") != 0 || st->o->post_dump == NULL)
		return 0;
	int r = st->o->post_dump(st->o->post_dump_arg);
	if (r == 0)
		st->handed_over = true;
	return r;
}

/* libcriu has no setter for a lazy dump, and its RPC ignores the page
 * server's fd for dumps: both go in a config file CRIU reads. The socket
 * is inherited by `criu swrk` under its own number. */
static int page_socket_config(criu_opts *opts, bool lazy, int socket, char **conf_path, struct ferry_error **err)
{
	*conf_path = xasprintf(CHECKPOINT_CRIU_RUNDIR "/dump-%d-%d.conf", (int)getpid(), (int)gettid());
	cleanup_free char *conf = xasprintf("%s\nps-socket %d\n", lazy ? "lazy-pages" : "page-server", socket);
	if (file_write_volatile(*conf_path, conf, strlen(conf), 0600, err) < 0)
		return error_wrap(err, "CRIU dump: page socket");
	if (criu_local_set_config_file(opts, *conf_path) < 0)
		return error_set(err, 500, ENOMEM, "CRIU dump: libcriu options");
	return 0;
}

extern char **environ;

/* `criu swrk` is started with posix_spawn and handed to libcriu as its
 * service socket. libcriu would fork() the caller: in ferryd (~36 MB
 * resident) that copies its page tables and makes every page ferryd writes
 * next a copy-on-write fault, ~12 us each here, all while the container is
 * frozen. */
int checkpoint_swrk_start(int keep_fd, struct checkpoint_swrk *s, struct ferry_error **err)
{
	*s = (struct checkpoint_swrk){ .pid = -1, .fd = -1 };
	int sk[2];
	if (socketpair(AF_LOCAL, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0)
		return error_sys(err, errno, "CRIU: socket for criu swrk");
	char fd_arg[16];
	snprintf(fd_arg, sizeof(fd_arg), "%d", sk[1]);
	char *argv[] = { CHECKPOINT_CRIU_BINARY, "swrk", fd_arg, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	/* A dup2 onto itself clears close-on-exec in the child only. */
	posix_spawn_file_actions_adddup2(&fa, sk[1], sk[1]);
	if (keep_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, keep_fd, keep_fd);
	posix_spawnattr_t attr;
	spawnattr_init_unblocked(&attr, false);
	checkpoint_prepare_rundir();
	struct sigterm_guard guard;
	sigterm_guard_enter(&guard);
	/* Every symbol bound at its start (before any freeze, and free:
	 * criu --version starts no slower), not at first call in each task a
	 * restore forks: each lazy binding there is a lookup and
	 * copy-on-write faults on the GOT. */
	char *bind_now[] = { "LD_BIND_NOW=1", NULL };
	cleanup_free char **envp = environ_without("LD_BIND_NOW=", bind_now);
	int r = posix_spawn(&s->pid, argv[0], &fa, &attr, argv, envp);
	sigterm_guard_leave(&guard);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(sk[1]);
	if (r != 0) {
		close(sk[0]);
		s->pid = -1;
		return error_sys(err, r, "run %s swrk", CHECKPOINT_CRIU_BINARY);
	}
	s->fd = sk[0];
	return 0;
}

void checkpoint_swrk_stop(struct checkpoint_swrk *s)
{
	if (s->fd >= 0)
		close(steal_fd(&s->fd));
	if (s->pid > 0)
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
			;
	s->pid = -1;
}

/* The caller's CPUs, and the one a dump, or a restore left stopped, runs
 * on: the last of them (the first takes more of the host's interrupts).
 * None with fewer than two. */
static int single_cpu(cpu_set_t *caller, cpu_set_t *one)
{
	if (sched_getaffinity(0, sizeof(*caller), caller) < 0 || CPU_COUNT(caller) < 2)
		return -1;
	int last = -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, caller))
			last = c;
	CPU_ZERO(one);
	CPU_SET(last, one);
	return 0;
}

int checkpoint_dump(const struct checkpoint_dump_opts *o, struct ferry_error **err)
{
	if (o->pid <= 0)
		return error_bad_request(err, "CRIU dump: no process to dump");
	cleanup_close int images_fd = -1;
	cleanup_close int work_fd = -1;
	cleanup_criu_opts criu_opts *opts = NULL;
	if (opts_new("dump", o->images_dir, o->log_path, o->log_level, &opts, &images_fd, &work_fd, err) < 0)
		return -1;
	for (size_t i = 0; i < o->n_ext_mounts; i++)
		if (criu_local_add_ext_mount(opts, o->ext_mounts[i].where, o->ext_mounts[i].key) < 0)
			return error_set(err, 500, ENOMEM, "CRIU dump: libcriu options");
	criu_local_set_pid(opts, o->pid);
	criu_local_set_leave_running(opts, o->leave_running);
	if (o->freeze_cgroup != NULL && criu_local_set_freeze_cgroup(opts, o->freeze_cgroup) < 0)
		return error_set(err, 500, ENOMEM, "CRIU dump: libcriu options");
	if (o->parent_images != NULL) {
		criu_local_set_track_mem(opts, true);
		if (criu_local_set_parent_images(opts, o->parent_images) < 0)
			return error_set(err, 500, ENOMEM, "CRIU dump: libcriu options");
	}

	cleanup_free char *conf_path = NULL;
	bool page_socket = o->lazy || o->page_server;
	if (page_socket) {
		if (o->page_socket < 0)
			return error_bad_request(err, "CRIU dump: the pages need a socket");
		if (page_socket_config(opts, o->lazy, o->page_socket, &conf_path, err) < 0)
			return -1;
	}
	struct dump_notify_state st = { .o = o };
	dump_state = &st;
	/* Notifications cost a round trip each: only when asked for. */
	if (o->post_dump != NULL || o->network_lock != NULL)
		criu_local_set_notify_cb(opts, dump_notify);
	if (o->network_lock != NULL && criu_local_set_network_lock(opts, CRIU_NETWORK_LOCK_SKIP) < 0)
		return error_set(err, 500, ENOMEM, "CRIU dump: libcriu options");

	long long start = now_ms();
	struct checkpoint_swrk own = { .pid = -1, .fd = -1 };
	struct checkpoint_swrk *swrk = o->swrk;
	if (swrk == NULL) {
		if (checkpoint_swrk_start(page_socket ? o->page_socket : -1, &own, err) < 0) {
			dump_state = NULL;
			if (conf_path != NULL)
				unlink(conf_path);
			return -1;
		}
		swrk = &own;
	}
	/* The dump and the frozen tree on one CPU: each of CRIU's many round
	 * trips with a task's parasite wakes the other side, and across CPUs
	 * after an idle that costs ~150 us here against ~16 on one. The
	 * threads get their own CPUs back if they live on. */
	struct checkpoint_pin pin = { 0 };
	cpu_set_t caller_cpus, one;
	if (o->freeze_cgroup != NULL && single_cpu(&caller_cpus, &one) == 0 &&
	    sched_setaffinity(swrk->pid, sizeof(one), &one) == 0)
		checkpoint_pin_tree(o->freeze_cgroup, &one, &pin);
	/* libcriu closes the socket after the request. */
	criu_local_set_service_fd(opts, steal_fd(&swrk->fd));
	int r = criu_local_dump(opts);
	checkpoint_swrk_stop(swrk);
	/* Unless they are gone (their numbers may be another's soon). */
	if (r != 0 || o->leave_running)
		checkpoint_unpin(&pin);
	else
		free(pin.threads);
	dump_state = NULL;
	if (conf_path != NULL)
		unlink(conf_path);
	/* CRIU writes its statistics (freeze, frozen and memory-dump times) into
	 * its work directory, the log's: they belong with the images. */
	renameat(work_fd, "stats-dump", images_fd, "stats-dump");
	if (r != 0 && st.handed_over && o->lazy) {
		cleanup_free char *errors = checkpoint_log_errors(o->log_path, 3);
		return error_set(err, 500, ECONNABORTED, "CRIU could not serve every page after the handover: %s (log: %s)",
				 errors ? errors : criu_failure(r < 0 ? r : -EBADE), o->log_path);
	}
	if (r > 0)
		return error_set(err, 500, ECANCELED, "CRIU dump: called off after the images were written (log: %s)",
				 o->log_path);
	if (r < 0)
		return checkpoint_criu_error(err, "dump", r, o->log_path);
	log_info("CRIU dump of pid %d took %lld ms (log: %s)", (int)o->pid, now_ms() - start, o->log_path);
	return 0;
}

void checkpoint_process_init(void)
{
	setenv("CRIU_RPC_NOTIFY", "network-lock,network-unlock,post-dump,orphan-pts-master", 1);
}

/* libcriu's notify callback has no user data; a restore runs in one thread,
 * whose variable this is. */
static __thread int restore_console_master = -1;
static __thread const struct checkpoint_restore_opts *restore_opts;

static int restore_notify(char *action, criu_notify_arg_t na)
{
	/* libcriu has just received the master with this notification. */
	if (strcmp(action, "orphan-pts-master") == 0)
		restore_console_master = criu_get_orphan_pts_master_fd();
	const struct checkpoint_restore_opts *o = restore_opts;
	if (o != NULL && o->network_unlock != NULL && strcmp(action, "network-unlock") == 0)
		return o->network_unlock(o->network_unlock_arg);
	return 0;
}

/* Whether a restore's tasks have enough to do each to gain from every CPU:
 * at least HEAVY_TASKS processes with HEAVY_MM_BYTES of mm image (its
 * mappings: ~40 or more). On one CPU a tree of small processes restores
 * faster (busybox and 8 or 16 sleeps: 128 against 152 ms, 211 against 233,
 * every move of 6), a Debian container's (14 processes, 12 with 2-8.5 KiB
 * mm images, postgres's 150 mappings each) slower: 449-591 against
 * 371-499 ms, every move of 6. */
#define HEAVY_TASKS 4
#define HEAVY_MM_BYTES 2048

static bool heavy_tree(const char *images_dir)
{
	DIR *d = opendir(images_dir);
	if (d == NULL)
		return false;
	int heavy = 0;
	struct dirent *e;
	while (heavy < HEAVY_TASKS && (e = readdir(d)) != NULL) {
		struct stat st;
		if (strncmp(e->d_name, "mm-", 3) == 0 && fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
		    st.st_size >= HEAVY_MM_BYTES)
			heavy++;
	}
	closedir(d);
	return heavy >= HEAVY_TASKS;
}

int checkpoint_restore(const struct checkpoint_restore_opts *o, pid_t *pid, int *console_master,
		       struct ferry_error **err)
{
	cleanup_close int images_fd = -1;
	cleanup_close int work_fd = -1;
	cleanup_criu_opts criu_opts *opts = NULL;
	if (opts_new("restore", o->images_dir, o->log_path, o->log_level, &opts, &images_fd, &work_fd, err) < 0)
		return -1;
	if (criu_local_set_root(opts, o->rootfs) < 0)
		return error_set(err, 500, ENOMEM, "CRIU restore: libcriu options");
	if (o->cgroup_root != NULL && criu_local_add_cg_root(opts, NULL, o->cgroup_root) < 0)
		return error_set(err, 500, ENOMEM, "CRIU restore: libcriu options");
	for (size_t i = 0; i < o->n_netdevs; i++) {
		cleanup_free char *key = xasprintf("veth[%s]:%s", o->netdevs[i].name, o->netdevs[i].host_name);
		if (criu_local_add_external(opts, key) < 0)
			return error_set(err, 500, ENOMEM, "CRIU restore: libcriu options");
	}
	for (size_t i = 0; i < o->n_ext_mounts; i++)
		if (criu_local_add_ext_mount(opts, o->ext_mounts[i].key, o->ext_mounts[i].where) < 0)
			return error_set(err, 500, ENOMEM, "CRIU restore: libcriu options");
	criu_local_set_notify_cb(opts, restore_notify);
	criu_local_set_auto_dedup(opts, o->discard_pages);
	if (o->n_netdevs > 0 && o->network_unlock == NULL)
		return error_bad_request(err, "CRIU restore: veths need a network_unlock to join their bridges");
	if (o->network_unlock != NULL && criu_local_set_network_lock(opts, CRIU_NETWORK_LOCK_SKIP) < 0)
		return error_set(err, 500, ENOMEM, "CRIU restore: libcriu options");
	/* libcriu has no setter for these RPC options: its opts begin with the
	 * request's CriuOpts (lib/c/criu.c, struct criu_opts). */
	CriuOpts *rpc = *(CriuOpts **)opts;
	if (o->leave_stopped) {
		rpc->has_leave_stopped = true;
		rpc->leave_stopped = true;
	}
	if (o->lazy_pages) {
		rpc->has_lazy_pages = true;
		rpc->lazy_pages = true;
	}

	restore_console_master = -1;
	restore_opts = o;
	long long start = now_ms();
	struct sigterm_guard guard;
	sigterm_guard_enter(&guard);
	int r;
	bool ahead = o->swrk != NULL && o->swrk->fd >= 0;
	/* One CPU for a restore whose tasks wait for checkpoint_resume, unless
	 * they are heavy: a swrk started ahead is pinned, else this thread,
	 * whose affinity the swrk libcriu forks inherits, until the restore
	 * ends. */
	cpu_set_t caller_cpus, one;
	bool pinned = false;
	if (o->leave_stopped && !heavy_tree(o->images_dir) && single_cpu(&caller_cpus, &one) == 0)
		pinned = sched_setaffinity(ahead ? o->swrk->pid : 0, sizeof(one), &one) == 0;
	if (ahead) {
		/* What criu_local_restore_child asks of its own swrk: the
		 * restored init becomes the caller's child (CLONE_PARENT). libcriu
		 * closes the socket after the request. */
		rpc->has_rst_sibling = true;
		rpc->rst_sibling = true;
		criu_local_set_service_fd(opts, steal_fd(&o->swrk->fd));
		r = criu_local_restore(opts);
		/* It ends on its own now (libcriu closed its socket); its exit
		 * takes ~2 ms here, which the caller's reaping of its children
		 * waits for instead of the restore. */
		o->swrk->pid = -1;
	} else {
		r = criu_local_restore_child(opts);
		if (pinned)
			sched_setaffinity(0, sizeof(caller_cpus), &caller_cpus);
	}
	sigterm_guard_leave(&guard);
	restore_opts = NULL;
	int master = steal_fd(&restore_console_master);
	unlinkat(work_fd, "stats-restore", 0);
	if (r <= 0) {
		if (master >= 0)
			close(master);
		return checkpoint_criu_error(err, "restore", r < 0 ? r : -EBADMSG, o->log_path);
	}
	/* libcriu receives the master without O_CLOEXEC. */
	if (master >= 0)
		fcntl(master, F_SETFD, FD_CLOEXEC);
	log_info("CRIU restore of %s took %lld ms%s%s: init is pid %d (log: %s)", o->rootfs, now_ms() - start,
		 ahead ? " (its swrk started ahead)" : "", pinned ? " on one CPU" : "", r, o->log_path);
	*pid = r;
	*console_master = master;
	return 0;
}

int checkpoint_resume(const char *cgroup_procs, const pid_t *keep_stopped, size_t n_keep,
		      const struct checkpoint_affinity *affinity, size_t n_affinity, struct ferry_error **err)
{
	cleanup_free char *procs = NULL;
	if (file_read(cgroup_procs, &procs, NULL, err) < 0)
		return error_wrap(err, "resume the restored tasks");
	size_t n = 0;
	cleanup_free pid_t *pids = pids_parse(procs, &n);
	checkpoint_affinity_apply(pids, n, affinity, n_affinity);
	for (size_t i = 0; i < n; i++) {
		pid_t pid = pids[i];
		bool keep = false;
		pid_t inner = n_keep > 0 ? checkpoint_inner_tid(pid, pid) : 0;
		for (size_t k = 0; k < n_keep && inner > 0 && !keep; k++)
			keep = keep_stopped[k] == inner;
		if (keep) {
			log_info("restored task %d (%d in its namespace) stays stopped, as it was dumped", (int)pid, (int)inner);
			continue;
		}
		if (kill(pid, SIGCONT) < 0 && errno != ESRCH)
			return error_sys(err, errno, "resume the restored tasks: SIGCONT to %d", (int)pid);
	}
	if (n == 0)
		return error_set(err, 500, ESRCH, "resume the restored tasks: none in %s", cgroup_procs);
	return 0;
}

int checkpoint_spawn_criu(char **argv, int socket, int drain_fd, int late_fd, pid_t *pid, struct ferry_error **err)
{
	/* The environment, and the CRIU_LAZY_ variables for the fds given. */
	char *lazy[3] = { NULL };
	size_t n_lazy = 0;
	if (drain_fd >= 0)
		lazy[n_lazy++] = "CRIU_LAZY_DRAIN_FD=4";
	if (late_fd >= 0)
		lazy[n_lazy++] = "CRIU_LAZY_LATE_FD=5";
	cleanup_free char **envp = environ_without("CRIU_LAZY_", lazy);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (socket >= 0)
		posix_spawn_file_actions_adddup2(&fa, socket, 3);
	else if (late_fd >= 0)
		posix_spawn_file_actions_addopen(&fa, 3, "/dev/null", O_RDONLY, 0);
	if (drain_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, drain_fd, 4);
	if (late_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, late_fd, 5);
	checkpoint_prepare_rundir();
	int r = posix_spawn(pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return error_sys(err, r, "run %s %s", argv[0], argv[1]);
	return 0;
}

/* A CRIU command's work directory (-W) and log name (-o, relative to it)
 * from the log's full path. */
static int split_log_path(const char *what, const char *log_path, char **work_dir, const char **log_name,
			  struct ferry_error **err)
{
	const char *slash = strrchr(log_path, '/');
	if (slash == NULL)
		return error_bad_request(err, "criu %s: log path %s is not absolute", what, log_path);
	*work_dir = strndup(log_path, (size_t)(slash - log_path));
	*log_name = slash + 1;
	return 0;
}

/* `criu COMMAND` on page_socket (its fd 3), with the images in images_dir
 * and its log at log_path; option: one more argument, or NULL; drain_fd:
 * as checkpoint_spawn_criu's. */
static int spawn_page_command(const char *command, const char *option, const char *images_dir, const char *log_path,
			      int page_socket, int drain_fd, pid_t *pid, struct ferry_error **err)
{
	cleanup_free char *work_dir = NULL;
	const char *log_name = NULL;
	if (split_log_path(command, log_path, &work_dir, &log_name, err) < 0)
		return -1;
	char verbosity[8];
	snprintf(verbosity, sizeof(verbosity), "-v%d", log_level_default());
	char *argv[] = { CHECKPOINT_CRIU_BINARY, (char *)command, "--ps-socket", "3", "-D", (char *)images_dir,
			 "-W", work_dir, "-o", (char *)log_name, verbosity, (char *)option, NULL };
	return checkpoint_spawn_criu(argv, page_socket, drain_fd, -1, pid, err);
}

int checkpoint_page_server_start(const char *images_dir, const char *log_path, int page_socket, pid_t *pid,
				 struct ferry_error **err)
{
	return spawn_page_command("page-server", NULL, images_dir, log_path, page_socket, -1, pid, err);
}

int checkpoint_page_server_wait(pid_t pid, const char *log_path, int timeout_ms, struct ferry_error **err)
{
	long long deadline = now_ms() + timeout_ms;
	int status = 0;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return error_sys(err, errno, "wait for criu page-server");
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			return error_set(err, 504, ETIMEDOUT, "criu page-server did not finish in %d s (log: %s)",
					 timeout_ms / 1000, log_path);
		}
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	cleanup_free char *errors = checkpoint_log_errors(log_path, 3);
	return error_set(err, 502, EIO, "criu page-server failed: %s (log: %s)",
			 errors ? errors : "no reason in its log", log_path);
}

int checkpoint_lazy_pages_start(const char *images_dir, const char *log_path, int page_socket, int drain_fd,
				pid_t *pid, struct ferry_error **err)
{
	/* --page-server: the pages come from page_socket, not from images. */
	return spawn_page_command("lazy-pages", "--page-server", images_dir, log_path, page_socket, drain_fd, pid, err);
}

int checkpoint_lazy_pages_ahead(int drain_fd, int late_fd, pid_t *pid, struct ferry_error **err)
{
	/* Placeholders, all replaced by the late configuration (not the level). */
	char verbosity[8];
	snprintf(verbosity, sizeof(verbosity), "-v%d", log_level_default());
	char *argv[] = { CHECKPOINT_CRIU_BINARY, "lazy-pages", "--ps-socket", "3", "-D", "/", "-W", "/", "-o",
			 "/dev/null", verbosity, "--page-server", NULL };
	return checkpoint_spawn_criu(argv, -1, drain_fd, late_fd, pid, err);
}
