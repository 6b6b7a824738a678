/* The monitor's side of runtime_restore: instead of cloning a new init, it
 * has CRIU bring the checkpointed process tree back as its own children.
 *
 * The network: CRIU makes each nic's veth pair (our patch 0014: the
 * container end is born in the restored network namespace, with the MAC
 * of the images), the host end under a fresh name (the old host end of a
 * just-stopped container may still be on its way out) and off any bridge
 * until the unlock (--external veth[eth0]:HOSTNAME). Addresses and routes
 * come back from the images. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "runtime/internal.h"
#include "runtime/network.h"

char *restore_lazy_log_path(const char *restore_log)
{
	const char *at = restore_log != NULL ? strstr(restore_log, "_restore_") : NULL;
	if (at == NULL)
		return xasprintf("%s.lazy-pages.log", restore_log ? restore_log : "/tmp/ferry");
	return xasprintf("%.*s_lazy-pages_%s", (int)(at - restore_log), restore_log, at + strlen("_restore_"));
}

/* A pipe (or a unix socket pair: socket) whose fds are above the fds 3-5
 * a CRIU child gets them as (checkpoint_spawn_criu), close-on-exec. */
static int fd_pair_high(bool socket, int fds[2], struct ferry_error **err)
{
	int p[2];
	int r = socket ? socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) : pipe2(p, O_CLOEXEC);
	if (r < 0)
		return error_sys(err, errno, socket ? "socketpair" : "pipe");
	fds[0] = fcntl(p[0], F_DUPFD_CLOEXEC, 10);
	fds[1] = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
	close(p[0]);
	close(p[1]);
	if (fds[0] >= 0 && fds[1] >= 0)
		return 0;
	int e = errno;
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	return error_sys(err, e, "fcntl");
}

int restore_lazy_ahead_start(struct restore_lazy_ahead *a, struct ferry_error **err)
{
	*a = (struct restore_lazy_ahead){ .pid = -1, .late = -1, .drain = -1 };
	int drain[2], late[2];
	if (fd_pair_high(false, drain, err) < 0)
		return -1;
	if (fd_pair_high(true, late, err) < 0) {
		close(drain[0]);
		close(drain[1]);
		return -1;
	}
	int r = checkpoint_lazy_pages_ahead(drain[0], late[1], &a->pid, err);
	close(drain[0]);
	close(late[1]);
	if (r < 0) {
		close(drain[1]);
		close(late[0]);
		return -1;
	}
	a->late = late[0];
	a->drain = drain[1];
	return 0;
}

void restore_lazy_ahead_drop(struct restore_lazy_ahead *a)
{
	if (a->late >= 0)
		close(steal_fd(&a->late));
	if (a->drain >= 0)
		close(steal_fd(&a->drain));
}

/* Tell the daemon started ahead where its restore is (checkpoint.h). */
static int lazy_configure(int late, const char *images_dir, const char *lazy_log, int socket, struct ferry_error **err)
{
	cleanup_free char *work_dir = xstrdup(lazy_log);
	char *slash = strrchr(work_dir, '/');
	if (slash == NULL)
		return error_bad_request(err, "lazy-pages log %s: not absolute", lazy_log);
	*slash = '\0';
	const char *name = slash + 1;
	cleanup_close int images = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (images < 0)
		return error_sys(err, errno, "open %s", images_dir);
	cleanup_close int work = open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (work < 0)
		return error_sys(err, errno, "open %s", work_dir);
	int fds[3] = { images, work, socket };
	if (unix_send_fds(late, name, strlen(name), fds, 3) < 0)
		return error_sys(err, errno, "configure the lazy-pages daemon started ahead");
	return 0;
}

/* Post-copy: `criu lazy-pages` listens in the restore's work directory
 * (its log's) before CRIU restores; the monitor keeps no copy of the
 * socket, so that the source sees the end when the daemon ends. */
int restore_lazy_start(const char *dir, const char *images_dir, const char *log_path, int socket,
		       struct restore_lazy_ahead *ahead, pid_t *lazy_pid, int *drain, struct ferry_error **err)
{
	cleanup_free char *status = state_path(dir, RUNTIME_LAZY_STATUS);
	unlink(status);
	cleanup_free char *lazy_log = restore_lazy_log_path(log_path);
	if (ahead != NULL && ahead->late >= 0) {
		cleanup_error struct ferry_error *e = NULL;
		int r = lazy_configure(ahead->late, images_dir, lazy_log, socket, &e);
		close(steal_fd(&ahead->late));
		if (r == 0) {
			close(socket);
			*lazy_pid = ahead->pid;
			*drain = steal_fd(&ahead->drain);
			return 0;
		}
		/* It ends (a child left to reap); a new one starts. */
		log_warn("post-copy: the lazy-pages daemon started ahead: %s", e->msg);
		kill(ahead->pid, SIGKILL);
		restore_lazy_ahead_drop(ahead);
	}
	int d[2];
	if (fd_pair_high(false, d, err) < 0) {
		close(socket);
		return -1;
	}
	int r = checkpoint_lazy_pages_start(images_dir, lazy_log, socket, d[0], lazy_pid, err);
	close(d[0]);
	close(socket);
	if (r < 0)
		close(d[1]);
	else
		*drain = d[1];
	return r;
}

/* A paused restore: which processes runtime_resume must leave stopped. On
 * failure they are continued with the others (logged). */
static void note_stopped(const char *images_dir, const char *path, const char *name)
{
	pid_t *vpids = NULL;
	size_t n = 0;
	cleanup_error struct ferry_error *e = NULL;
	if (checkpoint_images_stopped(images_dir, &vpids, &n, &e) < 0) {
		log_warn("container %s: which of its processes were stopped is unknown (%s): its resume continues them all",
			 name, e->msg);
		return;
	}
	if (n > 0) {
		size_t cap = n * 12 + 1, len = 0;
		cleanup_free char *text = xcalloc(1, cap);
		for (size_t i = 0; i < n; i++)
			len += (size_t)snprintf(text + len, cap - len, "%d\n", (int)vpids[i]);
		if (file_write_volatile(path, text, len, 0600, &e) < 0)
			log_warn("container %s: %s: its resume continues every process", name, e->msg);
	}
	free(vpids);
}

/* The threads' CPUs saved with the images (CRIU restores none): given back
 * now to a tree that runs; for a paused one, copied to keep_path, for
 * runtime_resume. */
static void affinity_restore(const struct runtime_spec *spec, const char *images_dir, const char *keep_path)
{
	cleanup_free char *path = xasprintf("%s/" RUNTIME_AFFINITY_IMAGE, images_dir);
	cleanup_free char *text = NULL;
	if (file_read(path, &text, NULL, NULL) < 0)
		return; /* none had CPUs of its own */
	cleanup_error struct ferry_error *e = NULL;
	if (keep_path != NULL) {
		if (file_write_volatile(keep_path, text, strlen(text), 0600, &e) < 0)
			log_warn("container %s: %s: its threads may run on any CPU", spec->name, e->msg);
		return;
	}
	cleanup_free struct checkpoint_affinity *a = NULL;
	size_t n = 0;
	if (checkpoint_affinity_parse(text, &a, &n) < 0) {
		log_warn("container %s: %s: not a list of threads' CPUs: its threads may run on any CPU", spec->name,
			 path);
		return;
	}
	cleanup_free char *freezer = cgroup_freezer_dir(spec->cgroup);
	size_t n_pids = 0;
	cleanup_free pid_t *pids = checkpoint_cgroup_tree_pids(freezer, &n_pids);
	checkpoint_affinity_apply(pids, n_pids, a, n);
}

/* checkpoint_restore_opts.network_unlock: the host ends, made off their
 * bridges, go on, before the tasks run. */
static int restore_network_unlock(void *arg)
{
	return nics_lock(arg, false);
}

int restore_init(struct runtime_spec *spec, const char *images_dir, const char *log_path,
		 const struct runtime_restore_opts *ro, struct checkpoint_swrk *swrk, pid_t *init_pid,
		 int *console, char ***host_veths, pid_t *lazy_pid, struct ferry_error **err)
{
	char **veths = xcalloc(spec->n_nics + 1, sizeof(char *));
	*host_veths = veths;
	cleanup_free struct checkpoint_netdev *netdevs = xcalloc(spec->n_nics + 1, sizeof(*netdevs));
	/* CRIU makes each veth, its container end born in the restored
	 * namespace: a device moved into a namespace costs an rcu_barrier()
	 * (~20 ms here). The host end gets a fresh name: the old one may not be
	 * gone yet (namespace teardown is asynchronous). */
	for (size_t i = 0; i < spec->n_nics; i++) {
		struct runtime_nic *nic = &spec->nics[i];
		free(nic->host_name);
		nic->host_name = network_new_host_name();
		veths[i] = xstrdup(nic->host_name);
		netdevs[i] = (struct checkpoint_netdev){ .name = nic->name, .host_name = nic->host_name };
	}
	if (spec->n_nics > 0 && spec_save(spec, err) < 0)
		return error_wrap(err, "restore");

	cleanup_free char *cgroups = xasprintf("%s/" RUNTIME_CGROUPS_IMAGE, images_dir);
	if (cgroup_restore_tree(spec->cgroup, cgroups, err) < 0)
		return error_wrap(err, "restore the container's cgroups");

	if (container_dev_dir_prepare(spec, false, err) < 0)
		return error_wrap(err, "restore");
	cleanup_free char *dev = state_path(spec->dir, RUNTIME_DEV_DIR);
	cleanup_free char *cgroup_root = xasprintf("/%s", spec->cgroup);
	struct checkpoint_restore_opts o = {
		.rootfs = spec->rootfs,
		.images_dir = images_dir,
		.log_path = log_path,
		.cgroup_root = cgroup_root,
		.netdevs = netdevs,
		.n_netdevs = spec->n_nics,
		.ext_mounts = &(struct checkpoint_ext_mount){ .key = RUNTIME_DEV_MOUNT_KEY, .where = dev },
		.n_ext_mounts = 1,
		.leave_stopped = ro != NULL && ro->paused,
		.lazy_pages = ro != NULL && ro->lazy_pages,
		.discard_pages = ro != NULL && ro->discard_pages,
		.network_unlock = restore_network_unlock,
		.network_unlock_arg = spec,
		.swrk = swrk,
	};
	cleanup_free char *stopped_path = state_path(spec->dir, RUNTIME_RESTORED_STOPPED);
	unlink(stopped_path);
	cleanup_free char *affinity_path = state_path(spec->dir, RUNTIME_RESTORED_AFFINITY);
	unlink(affinity_path);
	int r = checkpoint_restore(&o, init_pid, console, err);
	if (r == 0 && o.leave_stopped)
		note_stopped(images_dir, stopped_path, spec->name);
	if (r == 0)
		affinity_restore(spec, images_dir, o.leave_stopped ? affinity_path : NULL);
	if (o.lazy_pages) {
		/* The daemon has every task's userfaultfd now (or never will). */
		cleanup_free char *sock = xstrdup(log_path);
		strcpy(strrchr(sock, '/') + 1, "lazy-pages.socket");
		unlink(sock);
	}
	if (r < 0) {
		if (*lazy_pid > 0)
			kill(*lazy_pid, SIGKILL);
		return -1;
	}
	if (*console < 0)
		log_warn("container %s: restored without a console (no orphaned pty master in the images)", spec->name);
	return 0;
}
