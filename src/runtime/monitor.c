/* The per-container monitor: started by runtime_start() as a re-exec of the
 * caller ("PROGRAM __monitor DIR"), detached from it, it creates the cgroups,
 * clone()s init into new namespaces, wires the network, then stays as init's
 * parent (and child subreaper) holding the console until init exits.
 * Started by runtime_restore(), it has CRIU restore init instead (restore.c),
 * and then goes on the same way. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "runtime/internal.h"
#include "runtime/network.h"

#define CONSOLE_LOG_MAX (1024 * 1024)
#define CONSOLE_LOG_KEEP (512 * 1024)
#define MAX_CONSOLE_CLIENTS 16
#define CHILD_STACK_SIZE (256 * 1024)

static int monitor_report(const struct runtime_spec *spec, const char *what, const char *restore_images,
			  int status_read, struct ferry_error **err);
static int spare_take(void);
static int monitor_spawn(char *const argv[], char *const envp[], const int *keep, size_t n_keep,
			 struct ferry_error **err);
static int spare_hand(int fd, const char *dir, char *const *entries, int status_fd, int lazy_fd);

/* ---- runtime_start: the caller's side ---- */

/* The container's root (a host uid of the idmap) must be able to walk to its
 * rootfs: say so plainly instead of failing later with EACCES from a mount. */
static int check_rootfs_reachable(const struct runtime_spec *spec, struct ferry_error **err)
{
	if (spec->privileged)
		return 0;
	cleanup_free char *path = xstrdup(spec->rootfs);
	for (;;) {
		struct stat st;
		if (stat(path, &st) < 0)
			return error_sys(err, errno, "rootfs %s", path);
		if (!(st.st_mode & S_IXOTH) && st.st_uid != spec->idmap_hostid)
			return error_set(err, 500, EACCES,
					 "%s is not searchable by the container's root (uid %u): it needs o+x", path,
					 spec->idmap_hostid);
		char *slash = strrchr(path, '/');
		if (slash == NULL || slash == path)
			return 0;
		*slash = '\0';
	}
}

/* The monitor's program: ferry-monitor beside the caller's executable
 * (ferryd's; src/daemon/monitor_main.c), else the caller itself, which
 * answers "__monitor DIR" too (tests/runtime/rtctl). */
static char *monitor_program(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
	if (slash != NULL) {
		*slash = '\0';
		char *beside = xasprintf("%s/ferry-monitor", self);
		if (access(beside, X_OK) == 0)
			return beside;
		free(beside);
	}
	return xstrdup("/proc/self/exe");
}

/* The monitor's environment: the caller's without any FERRY_MONITOR_*
 * variable, then extra (NULL-terminated). Free the array, not the strings. */
static char **monitor_environ(char *const *extra)
{
	return environ_without("FERRY_MONITOR_", extra);
}

/* Spawn the monitor and wait for its report. what: "start" or "restore";
 * restore_images/restore_log: NULL for a fresh start. */
static int monitor_launch(const struct runtime_spec *spec, const char *what, const char *restore_images,
			  const char *restore_log, const struct runtime_restore_opts *o, struct ferry_error **err)
{
	if (monitor_find(spec->dir) > 0)
		return error_conflict(err, "container %s is already running", spec->name);
	if (mkdir_p(spec->dir, 0711, err) < 0 || (spec->log_dir != NULL && mkdir_p(spec->log_dir, 0700, err) < 0))
		return error_wrap(err, "%s %s", what, spec->name);

	if (check_rootfs_reachable(spec, err) < 0)
		return error_wrap(err, "%s %s", what, spec->name);

	if (spec_save(spec, err) < 0)
		return error_wrap(err, "%s %s", what, spec->name);

	int status_pipe[2];
	if (pipe2(status_pipe, O_CLOEXEC) < 0)
		return error_sys(err, errno, "%s %s: pipe", what, spec->name);
	cleanup_close int status_read = status_pipe[0];
	cleanup_close int status_write = status_pipe[1];

	/* Everything the monitor needs comes through its environment and
	 * inherited fds, prepared here: the start's or restore's own variables
	 * (extra), then the fds'. */
	cleanup_free char *images_env =
		restore_images != NULL ? xasprintf(RUNTIME_RESTORE_IMAGES_ENV "=%s", restore_images) : NULL;
	cleanup_free char *log_env = restore_log != NULL ? xasprintf(RUNTIME_RESTORE_LOG_ENV "=%s", restore_log) : NULL;
	char *extra[10];
	size_t n_extra = 0;
	if (images_env != NULL)
		extra[n_extra++] = images_env;
	if (log_env != NULL)
		extra[n_extra++] = log_env;
	if (o != NULL && o->paused)
		extra[n_extra++] = RUNTIME_RESTORE_PAUSED_ENV "=1";
	if (o != NULL && o->discard_pages)
		extra[n_extra++] = RUNTIME_RESTORE_DISCARD_ENV "=1";
	extra[n_extra] = NULL;
	int lazy_fd = o != NULL && o->lazy_pages ? o->lazy_socket : -1;

	/* A spare monitor, when there is one, saves its start (and a
	 * restore's swrk's). If it is gone, a new monitor it is. */
	int spare = spare_take();
	if (spare >= 0) {
		int handed = spare_hand(spare, spec->dir, extra, status_write, lazy_fd);
		close(spare);
		if (handed == 0) {
			close(steal_fd(&status_write));
			return monitor_report(spec, what, restore_images, status_read, err);
		}
	}

	cleanup_free char *fd_env = xasprintf(RUNTIME_STATUS_FD_ENV "=%d", status_write);
	cleanup_free char *lazy_env = lazy_fd >= 0 ? xasprintf(RUNTIME_RESTORE_LAZY_FD_ENV "=%d", lazy_fd) : NULL;
	extra[n_extra++] = fd_env;
	extra[n_extra++] = lazy_env; /* NULL ends the list when there is none */
	extra[n_extra] = NULL;
	cleanup_free char **envp = monitor_environ(extra);
	char *argv[] = { "ferry-monitor", "__monitor", spec->dir, NULL };
	int keep[] = { status_write, lazy_fd };
	if (monitor_spawn(argv, envp, keep, lazy_fd >= 0 ? 2 : 1, err) < 0)
		return error_wrap(err, "%s %s", what, spec->name);
	close(steal_fd(&status_write));
	return monitor_report(spec, what, restore_images, status_read, err);
}

/* Run the monitor program (argv, envp) and wait for it to have detached:
 * stdio on /dev/null, the keep fds inherited under their own numbers.
 * posix_spawn (glibc: CLONE_VM|CLONE_VFORK), not fork: a fork of ferryd
 * (~36 MB resident) copies its page tables and turns every page ferryd
 * writes next into a copy-on-write fault, ~12 us each on these machines,
 * while a migrating container waits for its restore. The monitor forks
 * once more itself (monitor_detach), so that it is nobody's child, in a
 * session of its own (POSIX_SPAWN_SETSID). */
static int monitor_spawn(char *const argv[], char *const envp[], const int *keep, size_t n_keep,
			 struct ferry_error **err)
{
	cleanup_close int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		return error_sys(err, errno, "open /dev/null");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, 0);
	posix_spawn_file_actions_adddup2(&fa, devnull, 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	/* A dup2 onto itself clears close-on-exec in the child only. */
	for (size_t i = 0; i < n_keep; i++)
		posix_spawn_file_actions_adddup2(&fa, keep[i], keep[i]);
	posix_spawnattr_t attr;
	spawnattr_init_unblocked(&attr, true);
	cleanup_free char *program = monitor_program();
	pid_t child = -1;
	int r = posix_spawn(&child, program, &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return error_sys(err, r, "run the monitor (%s)", program);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* The monitor's report on its start, from the status pipe: "ok" or why not. */
static int monitor_report(const struct runtime_spec *spec, const char *what, const char *restore_images,
			  int status_read, struct ferry_error **err)
{
	char report[1024];
	size_t len = 0;
	for (;;) {
		ssize_t r = read(status_read, report + len, sizeof(report) - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += r;
		if (len == sizeof(report) - 1)
			break;
	}
	report[len] = '\0';
	if (strcmp(report, "ok") == 0)
		return 0;
	if (len == 0)
		return error_set(err, 500, EIO, "%s %s: the monitor exited without a report (log: %s/monitor.log)",
				 what, spec->name, spec->log_dir ? spec->log_dir : spec->dir);
	/* A restore's report already names CRIU's log, the better one to read. */
	if (restore_images != NULL && strstr(report, "(log: ") != NULL)
		return error_set(err, 500, 0, "%s %s: %s", what, spec->name, report);
	return error_set(err, 500, 0, "%s %s: %s (log: %s/monitor.log)", what, spec->name, report,
			 spec->log_dir ? spec->log_dir : spec->dir);
}

int runtime_start(const struct runtime_spec *spec, struct ferry_error **err)
{
	return monitor_launch(spec, "start", NULL, NULL, NULL, err);
}

int runtime_restore(const struct runtime_spec *spec, const char *images_dir, const char *log_path,
		    const struct runtime_restore_opts *o, struct ferry_error **err)
{
	/* The monitor runs elsewhere (cwd "/"): it needs absolute paths. */
	if (images_dir[0] != '/' || log_path[0] != '/')
		return error_bad_request(err, "restore %s: the images and log paths must be absolute", spec->name);
	cleanup_free char *inventory = xasprintf("%s/inventory.img", images_dir);
	if (access(inventory, R_OK) < 0)
		return error_sys(err, errno, "restore %s: no checkpoint in %s", spec->name, images_dir);
	return monitor_launch(spec, "restore", images_dir, log_path, o, err);
}

int runtime_lazy_pages_status(const char *dir, struct ferry_error **err)
{
	cleanup_free char *path = state_path(dir, RUNTIME_LAZY_STATUS);
	cleanup_free char *text = NULL;
	cleanup_error struct ferry_error *e = NULL;
	if (file_read(path, &text, NULL, &e) < 0) {
		if (e->errnum != ENOENT) {
			error_move(err, &e);
			return -1;
		}
		if (monitor_find(dir) > 0)
			return 0;
		return error_set(err, 500, ESRCH, "the container stopped before every page was in");
	}
	if (strcmp(text, "ok\n") == 0)
		return 1;
	text[strcspn(text, "\n")] = '\0';
	return error_set(err, 500, EIO, "%s", text);
}

/* ---- the monitor ---- */

struct monitor {
	struct runtime_spec *spec;
	int status_fd;   /* runtime_start's pipe, until the start is reported */
	pid_t init_pid;
	int console;     /* pty master of the container's console */
	int console_log;
	long long console_log_size;
	int listen_fd;
	int clients[MAX_CONSOLE_CLIENTS];
	int signal_fd;
	char **host_veths; /* host-side veth names, deleted after init exits */
	char *restore_images; /* runtime_restore: restore from here instead of booting */
	char *restore_log;
	struct runtime_restore_opts restore_opts;
	pid_t lazy_pid; /* post-copy: `criu lazy-pages`, until every page is in */
	/* Post-copy: the daemon pulls the pages no task asked for once this is
	 * closed (restore_lazy_start): when init runs, or at lazy_drain_by. */
	int lazy_drain;
	long long lazy_drain_by;
	struct ferry_error *lazy_err; /* why it could not be started (reported by monitor_start) */
	/* A spare's `criu swrk` (fd -1: none), and its `criu lazy-pages`
	 * (late -1: none). */
	struct checkpoint_swrk swrk;
	struct restore_lazy_ahead lazy_ahead;
};

static void report_start(struct monitor *m, const char *text)
{
	if (m->status_fd < 0)
		return;
	ssize_t w = write(m->status_fd, text, strlen(text));
	(void)w;
	close(m->status_fd);
	m->status_fd = -1;
}

static int write_pid_file(const char *dir, const char *name, pid_t pid, bool with_start_time,
			  struct ferry_error **err)
{
	cleanup_free char *path = state_path(dir, name);
	cleanup_free char *text = with_start_time ? xasprintf("%d %llu\n", (int)pid, proc_start_time(pid))
						  : xasprintf("%d\n", (int)pid);
	return file_write_volatile(path, text, strlen(text), 0644, err);
}

static void write_id_map(pid_t pid, const char *file, const struct runtime_spec *spec, struct ferry_error **err,
			 int *ret)
{
	if (*ret < 0)
		return;
	cleanup_free char *path = xasprintf("/proc/%d/%s", (int)pid, file);
	cleanup_free char *map = xasprintf("0 %u %u\n", spec->idmap_hostid, spec->idmap_range);
	if (file_write_string(path, map, err) < 0)
		*ret = error_wrap(err, "write %s", file);
}

/* Plug each nic in: a veth pair whose container end moves into init's network
 * namespace under a temporary name and is configured there. */
static int monitor_network(struct monitor *m, pid_t child, struct ferry_error **err)
{
	struct runtime_spec *spec = m->spec;
	m->host_veths = xcalloc(spec->n_nics + 1, sizeof(char *));
	for (size_t i = 0; i < spec->n_nics; i++) {
		struct runtime_nic *nic = &spec->nics[i];
		if (nic->host_name == NULL)
			nic->host_name = network_new_host_name();
		m->host_veths[i] = xstrdup(nic->host_name);
		cleanup_free char *peer = xasprintf("fp%d_%zu", (int)child, i);
		if (network_veth_create(nic, peer, child, err) < 0 ||
		    network_configure_inside(child, peer, nic, err) < 0)
			return error_wrap(err, "nic %s", nic->name);
	}
	if (spec->n_nics == 0)
		return 0;
	/* Record the host-side names picked here, for whoever reads spec.json. */
	return spec_save(spec, err);
}

static int monitor_spawn_init(struct monitor *m, struct ferry_error **err)
{
	struct runtime_spec *spec = m->spec;
	if (container_dev_dir_prepare(spec, true, err) < 0)
		return -1;
	int sync_pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync_pair) < 0)
		return error_sys(err, errno, "socketpair");
	cleanup_close int sync_fd = sync_pair[0];
	struct container_setup setup = { .spec = spec, .sync_fd = sync_pair[1] };

	int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD;
	if (!spec->privileged)
		flags |= CLONE_NEWUSER;
	void *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
			   -1, 0);
	if (stack == MAP_FAILED)
		return error_sys(err, errno, "mmap");
	pid_t child = clone(container_init_main, (char *)stack + CHILD_STACK_SIZE, flags, &setup);
	int clone_errno = errno;
	munmap(stack, CHILD_STACK_SIZE);
	close(sync_pair[1]);
	if (child < 0)
		return error_sys(err, clone_errno, "clone the container's init");
	m->init_pid = child;
	log_info("container %s: init is pid %d", spec->name, (int)child);

	int ret = 0;
	if (!spec->privileged) {
		write_id_map(child, "uid_map", spec, err, &ret);
		write_id_map(child, "gid_map", spec, err, &ret);
	}
	if (ret == 0 && cgroup_attach(spec->cgroup, child, err) < 0)
		ret = -1;
	if (ret == 0 && monitor_network(m, child, err) < 0)
		ret = -1;
	if (ret == 0 && sync_send(sync_fd, SYNC_GO, -1, NULL) < 0)
		ret = error_sys(err, errno, "signal the container's init");
	if (ret < 0) {
		kill(child, SIGKILL);
		return -1;
	}

	/* The child sends the console, then either an error or nothing: the
	 * socket closes on its successful exec. */
	for (;;) {
		char msg, text[1024];
		int fd;
		ssize_t r = sync_recv(sync_fd, &msg, &fd, text, sizeof(text));
		if (r < 0)
			return error_sys(err, errno, "read from the container's init");
		if (r == 0)
			break;
		if (msg == SYNC_CONSOLE && fd >= 0) {
			m->console = fd;
		} else if (msg == SYNC_ERROR) {
			kill(child, SIGKILL);
			return error_set(err, 500, 0, "%s", text);
		} else if (fd >= 0) {
			close(fd);
		}
	}
	if (m->console < 0) {
		kill(child, SIGKILL);
		return error_set(err, 500, EPROTO, "init exec'd without a console");
	}
	return 0;
}

/* Keep console.log at most CONSOLE_LOG_MAX: when it grows past, keep its tail. */
static void console_log_append(struct monitor *m, const char *data, size_t len)
{
	if (m->console_log < 0)
		return;
	ssize_t w = write(m->console_log, data, len);
	if (w > 0)
		m->console_log_size += w;
	if (m->console_log_size <= CONSOLE_LOG_MAX)
		return;
	cleanup_free char *tail = malloc(CONSOLE_LOG_KEEP);
	if (tail == NULL)
		return;
	ssize_t n = pread(m->console_log, tail, CONSOLE_LOG_KEEP, m->console_log_size - CONSOLE_LOG_KEEP);
	if (n < 0)
		return;
	if (ftruncate(m->console_log, 0) == 0 && write(m->console_log, tail, n) == n)
		m->console_log_size = n;
}

static void console_relay_output(struct monitor *m, bool *console_hup)
{
	char buf[16384];
	ssize_t n = read(m->console, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* EIO: no process holds the console's slave right now. */
		*console_hup = true;
		return;
	}
	console_log_append(m, buf, n);
	for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++) {
		if (m->clients[i] < 0)
			continue;
		/* A client that doesn't keep up loses output; the container never waits. */
		if (send(m->clients[i], buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
			close(m->clients[i]);
			m->clients[i] = -1;
		}
	}
}

static void console_accept(struct monitor *m)
{
	int fd = accept4(m->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++) {
		if (m->clients[i] < 0) {
			m->clients[i] = fd;
			return;
		}
	}
	log_warn("container %s: too many console clients", m->spec->name);
	close(fd);
}

static void console_relay_input(struct monitor *m, int slot)
{
	char buf[4096];
	ssize_t n = read(m->clients[slot], buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close(m->clients[slot]);
		m->clients[slot] = -1;
		return;
	}
	ssize_t w = write(m->console, buf, n);
	(void)w;
}

/* Post-copy: `criu lazy-pages` has exited. With every page in, the
 * container is whole; otherwise its tasks would run on with zeroes where
 * their memory should be: they die, at once. */
static void lazy_pages_done(struct monitor *m, int wstatus)
{
	cleanup_free char *path = state_path(m->spec->dir, RUNTIME_LAZY_STATUS);
	cleanup_free char *text = NULL;
	cleanup_free char *lazy_log = restore_lazy_log_path(m->restore_log);
	if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) {
		log_info("container %s: every page is in", m->spec->name);
		text = xstrdup("ok\n");
	} else {
		text = xasprintf("the pages stopped coming (criu lazy-pages: %s %d; log: %s): the container was killed\n",
				 WIFEXITED(wstatus) ? "exit status" : "signal",
				 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus), lazy_log);
		log_error("container %s: %s", m->spec->name, text);
		if (m->init_pid > 0)
			kill(m->init_pid, SIGKILL);
		cgroup_freeze(m->spec->cgroup, false, NULL);
	}
	struct ferry_error *err = NULL;
	if (file_write_volatile(path, text, strlen(text), 0644, &err) < 0) {
		log_error("container %s: %s", m->spec->name, err->msg);
		error_free(&err);
	}
}

/* A restore that leaves its tasks stopped (a live move's, until the source
 * commits) has nothing to fault in meanwhile: the rest of the pages wait
 * for init to run, as they would only compete for the CPU with the end of
 * the move. So that a resume missed cannot keep them waiting for ever,
 * they go at the latest after LAZY_DRAIN_HOLD_MS: by then a move's target
 * has had its commit, or has killed its copy. */
#define LAZY_DRAIN_HOLD_MS 30000

static void lazy_drain_release(struct monitor *m, const char *why)
{
	if (m->lazy_drain < 0)
		return;
	close(steal_fd(&m->lazy_drain));
	log_info("container %s: %s: the rest of its pages follow", m->spec->name, why);
}

/* Reap children (init, and orphans we adopt as subreaper); true once init is gone. */
static bool monitor_reap(struct monitor *m, int *init_status)
{
	struct signalfd_siginfo si;
	while (read(m->signal_fd, &si, sizeof(si)) > 0)
		;
	bool init_exited = false;
	for (;;) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG | WCONTINUED);
		if (pid <= 0)
			break;
		if (WIFCONTINUED(wstatus)) {
			if (pid == m->init_pid)
				lazy_drain_release(m, "init runs");
			continue;
		}
		if (pid == m->init_pid) {
			*init_status = wstatus;
			init_exited = true;
		} else if (pid == m->lazy_pid) {
			m->lazy_pid = 0;
			lazy_pages_done(m, wstatus);
		}
	}
	return init_exited;
}

static int monitor_loop(struct monitor *m)
{
	bool console_hup = false;
	int init_status = 0;
	for (;;) {
		struct pollfd fds[3 + MAX_CONSOLE_CLIENTS];
		int slots[MAX_CONSOLE_CLIENTS];
		nfds_t n = 0;
		fds[n++] = (struct pollfd){ .fd = m->signal_fd, .events = POLLIN };
		fds[n++] = (struct pollfd){ .fd = m->listen_fd, .events = POLLIN };
		/* A console with no slave open polls as HUP forever: look again later. */
		fds[n++] = (struct pollfd){ .fd = console_hup ? -1 : m->console, .events = POLLIN };
		int n_clients = 0;
		for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++) {
			if (m->clients[i] < 0)
				continue;
			slots[n_clients++] = i;
			fds[n++] = (struct pollfd){ .fd = m->clients[i], .events = POLLIN };
		}
		int timeout = console_hup ? 200 : -1;
		if (m->lazy_drain >= 0) {
			long long left = m->lazy_drain_by - now_ms();
			if (left <= 0) {
				lazy_drain_release(m, "init was not resumed in time");
				continue;
			}
			if (timeout < 0 || left < timeout)
				timeout = (int)left;
		}
		int r = poll(fds, n, timeout);
		if (r < 0 && errno != EINTR) {
			log_error("container %s: poll: %s", m->spec->name, strerror(errno));
			return -1;
		}
		console_hup = false;
		if (r <= 0)
			continue;
		if (fds[2].revents & (POLLIN | POLLHUP | POLLERR))
			console_relay_output(m, &console_hup);
		if (fds[1].revents & POLLIN)
			console_accept(m);
		for (int i = 0; i < n_clients; i++)
			if (fds[3 + i].revents & (POLLIN | POLLHUP | POLLERR))
				console_relay_input(m, slots[i]);
		if ((fds[0].revents & POLLIN) && monitor_reap(m, &init_status))
			return init_status;
	}
}

/* After a stateful stop ferryd waits for this monitor to be gone, and a
 * veth takes ~13 ms to delete here; a restore makes its own under new
 * names. So a child of ours deletes them once we are gone (1: it does;
 * 0: do it now). */
static int veths_delete_later(char **veths)
{
	pid_t pid = fork();
	if (pid < 0)
		return 0;
	if (pid > 0)
		return 1;
	close_range(3, ~0U, 0);
	for (size_t i = 0; veths[i] != NULL; i++) {
		struct ferry_error *err = NULL;
		network_link_delete(veths[i], &err);
		error_free(&err);
	}
	_exit(0);
}

/* checkpointed: a stateful stop (the veths may go after us). */
static void monitor_cleanup(struct monitor *m, bool checkpointed)
{
	struct ferry_error *err = NULL;
	/* Init's death tears down its pid namespace; anything that escaped into
	 * the cgroups some other way dies here. */
	if (cgroup_destroy(m->spec->cgroup, &err) < 0) {
		log_error("container %s: %s", m->spec->name, err->msg);
		error_free(&err);
	}
	bool later = checkpointed && m->host_veths != NULL && m->host_veths[0] != NULL &&
		     veths_delete_later(m->host_veths) == 1;
	for (size_t i = 0; !later && m->host_veths != NULL && m->host_veths[i] != NULL; i++) {
		if (network_link_delete(m->host_veths[i], &err) < 0) {
			log_warn("container %s: %s", m->spec->name, err->msg);
			error_free(&err);
		}
	}
	strv_free(m->host_veths);
	m->host_veths = NULL;
	cleanup_free char *init_pid = state_path(m->spec->dir, RUNTIME_INIT_PID_FILE);
	cleanup_free char *sock = state_path(m->spec->dir, RUNTIME_MONITOR_SOCK);
	unlink(init_pid);
	unlink(sock);
}

static _Noreturn void monitor_exit(struct monitor *m, int code)
{
	cleanup_free char *pid_file = state_path(m->spec->dir, RUNTIME_MONITOR_PID_FILE);
	/* Last: once monitor.pid is gone, runtime_stop considers the container stopped. */
	unlink(pid_file);
	_exit(code);
}

static int monitor_start(struct monitor *m, struct ferry_error **err)
{
	struct runtime_spec *spec = m->spec;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return error_sys(err, errno, "PR_SET_CHILD_SUBREAPER");
	if (write_pid_file(spec->dir, RUNTIME_MONITOR_PID_FILE, getpid(), true, err) < 0)
		return -1;
	cleanup_free char *exit_status = state_path(spec->dir, RUNTIME_EXIT_STATUS);
	unlink(exit_status);

	cleanup_free char *console_log = state_path(spec->dir, RUNTIME_CONSOLE_LOG);
	m->console_log = open(console_log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (m->console_log < 0)
		return error_sys(err, errno, "open %s", console_log);
	if (unix_socket_at(spec->dir, RUNTIME_MONITOR_SOCK, true, &m->listen_fd, err) < 0)
		return -1;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	m->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m->signal_fd < 0)
		return error_sys(err, errno, "signalfd");

	/* The lazy-pages daemon, started first thing (monitor_run). */
	if (m->lazy_err != NULL) {
		error_move(err, &m->lazy_err);
		return error_wrap(err, "restore");
	}
	if (cgroup_create(spec, err) < 0)
		return -1;
	if (m->restore_images != NULL) {
		if (restore_init(spec, m->restore_images, m->restore_log, &m->restore_opts, &m->swrk, &m->init_pid, &m->console,
				 &m->host_veths, &m->lazy_pid, err) < 0)
			return -1;
	} else {
		/* A spare's swrk is not needed: it ends with its socket (reaped
		 * as any child). */
		if (m->swrk.fd >= 0)
			close(steal_fd(&m->swrk.fd));
		if (monitor_spawn_init(m, err) < 0)
			return error_wrap(err, "init");
	}
	if (m->console >= 0) {
		int flags = fcntl(m->console, F_GETFL);
		fcntl(m->console, F_SETFL, flags | O_NONBLOCK);
	}
	if (write_pid_file(spec->dir, RUNTIME_INIT_PID_FILE, m->init_pid, false, err) < 0)
		return -1;
	return 0;
}

/* Take what the caller left us: its signal mask and dispositions, fds. */
static int fd_from_env(const char *name)
{
	const char *fd_env = getenv(name);
	if (fd_env == NULL)
		return -1;
	int fd = atoi(fd_env);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	unsetenv(name);
	return fd;
}

/* What a detached monitor (or spare) starts from: no signal blocked or
 * caught, cwd /. It outlives ferryd and its terminal; it ends when init
 * ends. */
static void monitor_settle(void)
{
	reset_signals();
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (chdir("/") < 0)
		log_warn("monitor: chdir /: %s", strerror(errno));
	umask(022);
}

static int monitor_detach(int *lazy_fd)
{
	int status_fd = fd_from_env(RUNTIME_STATUS_FD_ENV);
	/* The caller spawned us as its child and waits for that child to end:
	 * the monitor proper is our own child (a small process to fork yet). */
	pid_t monitor = fork();
	if (monitor < 0) {
		const char msg[] = "the monitor could not fork";
		ssize_t w = write(status_fd, msg, sizeof(msg) - 1);
		(void)w;
		_exit(1);
	}
	if (monitor > 0)
		_exit(0);
	*lazy_fd = fd_from_env(RUNTIME_RESTORE_LAZY_FD_ENV);
	/* Fds the caller's other threads leaked into us must not reach init:
	 * every one from 3 up but these two. */
	int keep[2] = { status_fd < *lazy_fd ? status_fd : *lazy_fd, status_fd < *lazy_fd ? *lazy_fd : status_fd };
	unsigned from = 3;
	for (int i = 0; i < 2; i++) {
		if (keep[i] < (int)from)
			continue;
		if (keep[i] > (int)from)
			close_range(from, keep[i] - 1, 0);
		from = keep[i] + 1;
	}
	close_range(from, ~0U, 0);

	monitor_settle();
	return status_fd;
}

/* A variable for the monitor alone: init must not inherit it. */
static char *env_take(const char *name)
{
	const char *value = getenv(name);
	char *copy = value != NULL ? xstrdup(value) : NULL;
	unsetenv(name);
	return copy;
}

/* After a failed start or restore: no child of ours may outlive the report
 * (the cgroups are empty by now, so they are all dead or dying). */
static void reap_all(void)
{
	long long deadline = now_ms() + 2000;
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0)
			continue;
		if (pid < 0 || now_ms() > deadline)
			return;
		struct timespec ts = { 0, 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* The monitor proper, detached: status_fd and lazy_fd (or -1) as
 * monitor_detach leaves them; swrk and lazy_ahead (or NULL): a spare's. */
static _Noreturn void monitor_run(const char *dir, int status_fd, int lazy_fd, struct checkpoint_swrk *swrk,
				  struct restore_lazy_ahead *lazy_ahead)
{
	struct monitor m = { .status_fd = -1, .console = -1, .console_log = -1, .listen_fd = -1, .signal_fd = -1,
			     .lazy_drain = -1, .swrk = { .pid = -1, .fd = -1 },
			     .lazy_ahead = { .pid = -1, .late = -1, .drain = -1 } };
	for (int i = 0; i < MAX_CONSOLE_CLIENTS; i++)
		m.clients[i] = -1;
	if (swrk != NULL)
		m.swrk = *swrk;
	if (lazy_ahead != NULL)
		m.lazy_ahead = *lazy_ahead;
	m.status_fd = status_fd;
	m.restore_opts.lazy_socket = lazy_fd;
	m.restore_opts.lazy_pages = m.restore_opts.lazy_socket >= 0;
	prctl(PR_SET_NAME, "ferry-monitor");
	m.restore_images = env_take(RUNTIME_RESTORE_IMAGES_ENV);
	m.restore_log = env_take(RUNTIME_RESTORE_LOG_ENV);
	char *paused = env_take(RUNTIME_RESTORE_PAUSED_ENV);
	m.restore_opts.paused = paused != NULL && strcmp(paused, "1") == 0;
	free(paused);
	char *discard = env_take(RUNTIME_RESTORE_DISCARD_ENV);
	m.restore_opts.discard_pages = discard != NULL && strcmp(discard, "1") == 0;
	free(discard);

	/* Post-copy: the lazy-pages daemon before anything else. CRIU's
	 * restore waits at its start for the daemon's socket, and the daemon
	 * takes ~10 ms from its spawn to listen here; the monitor's own
	 * start-up (the spec, its log and files, the cgroups) goes meanwhile. */
	if (m.restore_images != NULL && m.restore_opts.lazy_pages)
		restore_lazy_start(dir, m.restore_images, m.restore_log, steal_fd(&m.restore_opts.lazy_socket),
				   &m.lazy_ahead, &m.lazy_pid, &m.lazy_drain, &m.lazy_err);
	/* A spare's daemon that no restore took: it exits. */
	restore_lazy_ahead_drop(&m.lazy_ahead);

	struct ferry_error *err = NULL;
	if (spec_load(dir, &m.spec, &err) < 0) {
		if (m.lazy_pid > 0)
			kill(m.lazy_pid, SIGKILL);
		report_start(&m, err->msg);
		_exit(1);
	}
	cleanup_free char *log_path = xasprintf("%s/monitor.log", m.spec->log_dir ? m.spec->log_dir : m.spec->dir);
	log_open(log_path);
	log_info("container %s: monitor starting%s", m.spec->name, m.restore_images != NULL ? " (restore)" : "");

	if (monitor_start(&m, &err) < 0) {
		log_error("container %s: start failed: %s", m.spec->name, err->msg);
		if (m.lazy_pid > 0)
			kill(m.lazy_pid, SIGKILL); /* started ahead of a restore that failed */
		if (m.init_pid > 0)
			while (waitpid(m.init_pid, NULL, 0) < 0 && errno == EINTR)
				;
		/* Clean up before reporting, so that a retried start finds nothing in its way. */
		monitor_cleanup(&m, false);
		reap_all();
		cleanup_free char *pid_file = state_path(m.spec->dir, RUNTIME_MONITOR_PID_FILE);
		unlink(pid_file);
		report_start(&m, err->msg);
		_exit(1);
	}
	report_start(&m, "ok");
	log_info("container %s: running", m.spec->name);
	m.lazy_drain_by = now_ms() + LAZY_DRAIN_HOLD_MS;
	if (!m.restore_opts.paused)
		lazy_drain_release(&m, "restored running");

	int init_status = monitor_loop(&m);
	log_info("container %s: init exited (wait status %d)", m.spec->name, init_status);
	/* Whatever the console still holds. */
	bool hup = false;
	for (int i = 0; i < 64 && !hup; i++)
		console_relay_output(&m, &hup);
	/* A stateful stop: CRIU dumped the container and killed it. */
	cleanup_free char *checkpoint_mark = state_path(m.spec->dir, RUNTIME_CHECKPOINT_STOP);
	bool checkpointed = WIFSIGNALED(init_status) && WTERMSIG(init_status) == SIGKILL &&
			    access(checkpoint_mark, F_OK) == 0;
	unlink(checkpoint_mark);
	cleanup_free char *status_path = state_path(m.spec->dir, RUNTIME_EXIT_STATUS);
	cleanup_free char *status_text = xasprintf("%d%s\n", init_status, checkpointed ? " checkpointed" : "");
	if (file_write_volatile(status_path, status_text, strlen(status_text), 0644, &err) < 0) {
		log_error("container %s: %s", m.spec->name, err->msg);
		error_free(&err);
	}
	monitor_cleanup(&m, checkpointed);
	log_info("container %s: monitor exiting", m.spec->name);
	monitor_exit(&m, 0);
}

_Noreturn void runtime_monitor_main(const char *dir)
{
	int lazy_fd = -1;
	int status_fd = monitor_detach(&lazy_fd);
	monitor_run(dir, status_fd, lazy_fd, NULL, NULL);
}

/* ---- spare monitors ----
 *
 * A start or restore that spawns its monitor waits ~10 ms for it to exec
 * and detach, and a restore another ~15-20 ms for CRIU's `criu swrk` to
 * start (exec, ~350 page faults of libraries here): all while a migrating
 * container is stopped. So ferryd keeps one monitor started ahead of need,
 * with a swrk of its own and a `criu lazy-pages` waiting to be told where
 * a post-copy restore is (restore_lazy_ahead_start: it takes ~10 ms to
 * listen, which the restore would wait for). The spare waits on a socket
 * for the instance's directory and the environment monitor_launch gives a
 * new monitor, with the status pipe (and post-copy's page socket) as
 * SCM_RIGHTS, then goes on as that monitor. It ends when its socket does
 * (its ferryd gone), and its lazy-pages daemon with it. */

#define SPARE_MESSAGE_MAX 16384

_Noreturn void runtime_monitor_spare_main(void)
{
	int chan = fd_from_env(RUNTIME_SPARE_FD_ENV);
	if (chan < 0)
		_exit(2);
	pid_t child = fork();
	if (child < 0)
		_exit(1);
	if (child > 0)
		_exit(0);
	if (chan > 3)
		close_range(3, chan - 1, 0);
	close_range(chan + 1, ~0U, 0);
	monitor_settle();
	prctl(PR_SET_NAME, "ferry-monitor");
	struct checkpoint_swrk swrk;
	struct ferry_error *err = NULL;
	if (checkpoint_swrk_start(-1, &swrk, &err) < 0)
		error_free(&err); /* a restore starts its own */
	struct restore_lazy_ahead lazy;
	if (restore_lazy_ahead_start(&lazy, &err) < 0)
		error_free(&err); /* a post-copy restore starts its own */

	char hello[32];
	int len = snprintf(hello, sizeof(hello), "%d", (int)getpid());
	if (send(chan, hello, (size_t)len, MSG_NOSIGNAL) != len) {
		checkpoint_swrk_stop(&swrk);
		_exit(0);
	}
	static char buf[SPARE_MESSAGE_MAX + 1];
	int fds[2] = { -1, -1 };
	size_t n_fds = 0;
	ssize_t n = unix_recv_fds(chan, buf, SPARE_MESSAGE_MAX, fds, 2, &n_fds);
	close(chan);
	if (n <= 0 || n_fds == 0) {
		/* Our ferryd is gone (or sent nonsense): so are we. */
		checkpoint_swrk_stop(&swrk);
		_exit(0);
	}
	buf[n] = '\0';
	/* "DIR\0KEY=VALUE\0...": the variables monitor_launch would set. */
	const char *dir = buf;
	for (char *p = buf + strlen(buf) + 1; p < buf + n; p += strlen(p) + 1) {
		char *eq = strchr(p, '=');
		if (eq == NULL)
			continue;
		*eq = '\0';
		setenv(p, eq + 1, 1);
	}
	monitor_run(dir, fds[0], fds[1], &swrk, &lazy);
}

/* ferryd's side: one spare at a time. */
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static bool spares_on;
static bool spare_filling;
static int spare_fd = -1;
static pid_t spare_pid = -1;
static unsigned long long spare_start; /* spare_pid's start time */

/* Start a spare: its socket and pid (once it said it is ready). */
static int spare_spawn(int *fd, pid_t *pid, struct ferry_error **err)
{
	cleanup_free char *program = monitor_program();
	if (strcmp(program, "/proc/self/exe") == 0)
		return error_set(err, 500, ENOENT, "spare monitor: no ferry-monitor beside this program");
	int sk[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk) < 0)
		return error_sys(err, errno, "spare monitor: socketpair");
	cleanup_close int ours = sk[0];
	cleanup_close int theirs = sk[1];
	cleanup_free char *fd_env = xasprintf(RUNTIME_SPARE_FD_ENV "=%d", theirs);
	char *extra[] = { fd_env, NULL };
	cleanup_free char **envp = monitor_environ(extra);
	char *argv[] = { "ferry-monitor", "__spare", NULL };
	if (monitor_spawn(argv, envp, &theirs, 1, err) < 0)
		return error_wrap(err, "spare monitor");
	close(steal_fd(&theirs));
	struct pollfd p = { .fd = ours, .events = POLLIN };
	int r;
	while ((r = poll(&p, 1, 10000)) < 0 && errno == EINTR)
		;
	char hello[32];
	ssize_t n = r > 0 ? recv(ours, hello, sizeof(hello) - 1, 0) : -1;
	if (n <= 0)
		return error_set(err, 500, EIO, "spare monitor: it did not start");
	hello[n] = '\0';
	*pid = (pid_t)atoi(hello);
	*fd = steal_fd(&ours);
	return 0;
}

/* Make a spare if spares are on and there is none. */
static void spare_fill(void)
{
	pthread_mutex_lock(&spare_lock);
	bool go = spares_on && spare_fd < 0 && !spare_filling;
	spare_filling = go;
	pthread_mutex_unlock(&spare_lock);
	if (!go)
		return;
	int fd = -1;
	pid_t pid = -1;
	cleanup_error struct ferry_error *e = NULL;
	if (spare_spawn(&fd, &pid, &e) < 0)
		log_warn("%s", e->msg);
	pthread_mutex_lock(&spare_lock);
	spare_filling = false;
	if (fd >= 0 && spares_on && spare_fd < 0) {
		spare_fd = steal_fd(&fd);
		spare_pid = pid;
		spare_start = proc_start_time(pid);
	}
	pthread_mutex_unlock(&spare_lock);
	if (fd >= 0)
		close(fd); /* not wanted any more: it ends */
}

void runtime_spares_ready(void)
{
	spare_fill();
}

struct spare_later {
	void (*fill)(void);
};

static void *spare_later_run(void *arg)
{
	struct spare_later *l = arg;
	void (*fill)(void) = l->fill;
	free(l);
	struct timespec ts = { 1, 0 };
	nanosleep(&ts, NULL);
	fill();
	return NULL;
}

void spare_fill_later(void (*fill)(void))
{
	struct spare_later *l = xcalloc(1, sizeof(*l));
	l->fill = fill;
	pthread_t t;
	if (pthread_create(&t, NULL, spare_later_run, l) == 0)
		pthread_detach(t);
	else
		free(l);
}

/* The spare, if there is one (its socket); a new one follows later. */
static int spare_take(void)
{
	pthread_mutex_lock(&spare_lock);
	int fd = steal_fd(&spare_fd);
	spare_pid = -1;
	bool refill = spares_on;
	pthread_mutex_unlock(&spare_lock);
	if (refill)
		spare_fill_later(spare_fill);
	return fd;
}

/* Hand the spare on fd a start or restore: dir, then the environment
 * entries (the status pipe and the page socket go as fds). */
static int spare_hand(int fd, const char *dir, char *const *entries, int status_fd, int lazy_fd)
{
	static __thread char buf[SPARE_MESSAGE_MAX];
	size_t len = 0;
	size_t dl = strlen(dir) + 1;
	if (dl > sizeof(buf))
		return -1;
	memcpy(buf, dir, dl);
	len = dl;
	for (size_t i = 0; entries[i] != NULL; i++) {
		size_t el = strlen(entries[i]) + 1;
		if (len + el > sizeof(buf))
			return -1;
		memcpy(buf + len, entries[i], el);
		len += el;
	}
	int fds[2] = { status_fd, lazy_fd };
	return unix_send_fds(fd, buf, len, fds, lazy_fd >= 0 ? 2 : 1) == (ssize_t)len ? 0 : -1;
}

void runtime_spares_start(void)
{
	pthread_mutex_lock(&spare_lock);
	spares_on = true;
	pthread_mutex_unlock(&spare_lock);
	spare_fill();
	dump_spares_start();
}

void runtime_spares_stop(void)
{
	dump_spares_stop();
	pthread_mutex_lock(&spare_lock);
	spares_on = false;
	int fd = steal_fd(&spare_fd);
	pid_t pid = spare_pid;
	unsigned long long start = spare_start;
	spare_pid = -1;
	pthread_mutex_unlock(&spare_lock);
	if (fd < 0)
		return;
	close(fd);
	/* It ends with its swrk, at once: wait (up to a second), so that
	 * nothing of ours outlives us. */
	if (pid > 0)
		monitor_wait_gone(pid, start, 1000);
}
