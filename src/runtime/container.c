/* What happens inside the new namespaces before init runs: the clone()d
 * child of the monitor becomes root of its user namespace, builds the
 * container's filesystem (rootfs, /proc, /sys, a minimal /dev with its own
 * devpts), pivots into it, takes a console from its own devpts, and execs
 * init as pid 1 and session leader, with no fd from the host left open
 * (design.md, Facts: each of these breaks a CRIU dump otherwise). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "runtime/internal.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Host device nodes bind-mounted into the container's /dev: an unprivileged
 * user namespace cannot mknod, and its tmpfs is nodev anyway. */
static const char *const host_devices[] = { "null", "zero", "full", "random", "urandom", "tty" };

static const struct {
	const char *target;
	const char *link;
} dev_symlinks[] = {
	{ "/proc/self/fd", "fd" },
	{ "/proc/self/fd/0", "stdin" },
	{ "/proc/self/fd/1", "stdout" },
	{ "/proc/self/fd/2", "stderr" },
	{ "pts/ptmx", "ptmx" },
	{ "/proc/kcore", "core" },
};

static int do_mount(const char *source, const char *target, const char *fstype, unsigned long flags,
		    const char *data, struct ferry_error **err)
{
	if (mount(source, target, fstype, flags, data) < 0)
		return error_sys(err, errno, "mount %s on %s%s%s", source ? source : "(none)", target,
				 data ? " with " : "", data ? data : "");
	return 0;
}

/* An empty file or directory to mount over, created if missing. */
static int ensure_mountpoint(const char *path, bool directory, struct ferry_error **err)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (S_ISLNK(st.st_mode))
			return error_set(err, 500, ELOOP, "mount point %s is a symlink", path);
		return 0;
	}
	if (directory)
		return mkdir_p(path, 0755, err);
	cleanup_free char *parent = xstrdup(path);
	char *slash = strrchr(parent, '/');
	if (slash != NULL && slash != parent) {
		*slash = '\0';
		if (mkdir_p(parent, 0755, err) < 0)
			return -1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return error_sys(err, errno, "create %s", path);
	close(fd);
	return 0;
}

/* Flags a remount inside a user namespace must keep: the kernel locks
 * nosuid/nodev/noexec/atime flags of mounts that came from the host. */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long flags = 0;
	if (statvfs(path, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		flags |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		flags |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		flags |= MS_RELATIME;
	return flags;
}

static int bind_mount(const char *source, const char *target, bool readonly, struct ferry_error **err)
{
	struct stat st;
	if (stat(source, &st) < 0)
		return error_sys(err, errno, "bind mount source %s", source);
	if (ensure_mountpoint(target, S_ISDIR(st.st_mode), err) < 0)
		return -1;
	if (do_mount(source, target, NULL, MS_BIND | MS_REC, NULL, err) < 0)
		return -1;
	if (readonly &&
	    do_mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | locked_flags(target), NULL, err) < 0)
		return error_wrap(err, "read-only");
	return 0;
}

/* Run by the monitor, on the host, before a boot or a restore: the
 * container's /dev directory (RUNTIME_DEV_DIR) with what a boot puts there,
 * owned by the container's root: mount points for the host's devices, the
 * console, shm, pts and mqueue, and the usual symlinks. A boot gets it
 * afresh; a restore keeps what the container left (the images expect it)
 * and makes it only where it is missing (images from another host). */
int container_dev_dir_prepare(const struct runtime_spec *spec, bool fresh, struct ferry_error **err)
{
	cleanup_free char *dev = state_path(spec->dir, RUNTIME_DEV_DIR);
	struct stat st;
	if (!fresh && lstat(dev, &st) == 0)
		return 0;
	if (rm_rf(dev, err) < 0)
		return -1;
	if (mkdir(dev, 0755) < 0)
		return error_sys(err, errno, "mkdir %s", dev);
	/* Made by the host's root, in a directory only it can reach yet. */
	cleanup_close int dir = open(dev, O_DIRECTORY | O_NOFOLLOW | O_RDONLY | O_CLOEXEC);
	if (dir < 0)
		return error_sys(err, errno, "open %s", dev);
	uid_t root = spec->privileged ? 0 : spec->idmap_hostid;
	static const char *const dirs[] = { "shm", "pts", "mqueue" };
	size_t n_devices = sizeof(host_devices) / sizeof(host_devices[0]);
	for (size_t i = 0; i <= n_devices; i++) {
		const char *name = i < n_devices ? host_devices[i] : "console";
		int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			return error_sys(err, errno, "create %s/%s", dev, name);
		close(fd);
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (mkdirat(dir, dirs[i], 0755) < 0)
			return error_sys(err, errno, "mkdir %s/%s", dev, dirs[i]);
	for (size_t i = 0; i < sizeof(dev_symlinks) / sizeof(dev_symlinks[0]); i++)
		if (symlinkat(dev_symlinks[i].target, dir, dev_symlinks[i].link) < 0)
			return error_sys(err, errno, "symlink %s/%s", dev, dev_symlinks[i].link);
	DIR *d = fdopendir(fcntl(dir, F_DUPFD_CLOEXEC, 0));
	if (d == NULL)
		return error_sys(err, errno, "read %s", dev);
	struct dirent *de;
	int ret = 0;
	while (ret == 0 && (de = readdir(d)) != NULL)
		if (fchownat(dir, de->d_name, root, root, AT_SYMLINK_NOFOLLOW) < 0)
			ret = error_sys(err, errno, "chown %s/%s", dev, de->d_name);
	closedir(d);
	return ret;
}

static int mount_dev(const struct runtime_spec *spec, const char *rootfs, struct ferry_error **err)
{
	/* The monitor's directory (container_dev_dir_prepare), not a tmpfs: its
	 * contents (mount points, symlinks) are ferry's, and a bind from the
	 * host costs a checkpoint nothing (CRIU tars a tmpfs's files). */
	cleanup_free char *dev = xasprintf("%s/dev", rootfs);
	cleanup_free char *dev_source = state_path(spec->dir, RUNTIME_DEV_DIR);
	if (ensure_mountpoint(dev, true, err) < 0 || do_mount(dev_source, dev, NULL, MS_BIND, NULL, err) < 0 ||
	    do_mount(NULL, dev, NULL, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC | locked_flags(dev), NULL, err) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(host_devices) / sizeof(host_devices[0]); i++) {
		cleanup_free char *source = xasprintf("/dev/%s", host_devices[i]);
		cleanup_free char *target = xasprintf("%s/%s", dev, host_devices[i]);
		if (ensure_mountpoint(target, false, err) < 0 || do_mount(source, target, NULL, MS_BIND, NULL, err) < 0)
			return -1;
	}

	cleanup_free char *shm = xasprintf("%s/shm", dev);
	if (ensure_mountpoint(shm, true, err) < 0 ||
	    do_mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k", err) < 0)
		return -1;

	/* The container owns its ipc namespace, so it may mount its mqueue; not
	 * essential, so a refusal is only logged. */
	cleanup_free char *mqueue = xasprintf("%s/mqueue", dev);
	struct ferry_error *mq_err = NULL;
	if (ensure_mountpoint(mqueue, true, &mq_err) < 0 ||
	    do_mount("mqueue", mqueue, "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, &mq_err) < 0) {
		log_warn("container %s: %s", spec->name, mq_err->msg);
		error_free(&mq_err);
	}

	/* Its own devpts, so that its ptys (console included) are its own and CRIU
	 * can dump them. gid 5 is the tty group, when the idmap covers it. */
	cleanup_free char *pts = xasprintf("%s/pts", dev);
	const char *pts_options = spec->privileged || spec->idmap_range > 5
					  ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
					  : "newinstance,ptmxmode=0666,mode=0620";
	if (ensure_mountpoint(pts, true, err) < 0 ||
	    do_mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC, pts_options, err) < 0)
		return -1;

	cleanup_free char *console = xasprintf("%s/console", dev);
	return ensure_mountpoint(console, false, err);
}

static int build_rootfs(const struct runtime_spec *spec, struct ferry_error **err)
{
	const char *rootfs = spec->rootfs;
	/* Nothing mounted from here on propagates back to the host, while the
	 * host's later mounts still reach us. */
	if (do_mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL, err) < 0)
		return -1;
	/* pivot_root needs the new root to be a mount point. */
	if (do_mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL, err) < 0)
		return -1;

	cleanup_free char *proc = xasprintf("%s/proc", rootfs);
	if (ensure_mountpoint(proc, true, err) < 0 ||
	    do_mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
		return -1;
	cleanup_free char *sys = xasprintf("%s/sys", rootfs);
	if (ensure_mountpoint(sys, true, err) < 0 ||
	    do_mount("sysfs", sys, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL, err) < 0)
		return -1;
	/* The container's own cgroup2 tree (its cgroup namespace roots it at
	 * the container's cgroup in the unified hierarchy), writable by the
	 * container's root: systemd as init needs it, and a unified-only
	 * /sys/fs/cgroup is the layout it handles best (no v1 controllers of
	 * the host inside: the host's limits stay out of the container's reach). */
	cleanup_free char *cgroup = xasprintf("%s/sys/fs/cgroup", rootfs);
	if (do_mount("cgroup2", cgroup, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
		return -1;
	if (mount_dev(spec, rootfs, err) < 0)
		return -1;

	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct runtime_mount *m = &spec->mounts[i];
		cleanup_free char *target = xasprintf("%s%s", rootfs, m->target);
		if (bind_mount(m->source, target, m->readonly, err) < 0)
			return error_wrap(err, "mount %s", m->target);
	}

	/* pivot_root(".", "."): the old root ends up on top of the new one and is
	 * detached at once, leaving no host path reachable. */
	if (chdir(rootfs) < 0)
		return error_sys(err, errno, "chdir %s", rootfs);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return error_sys(err, errno, "pivot_root %s", rootfs);
	if (umount2(".", MNT_DETACH) < 0)
		return error_sys(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return error_sys(err, errno, "chdir /");
	return 0;
}

/* The console: a pty of the container's own devpts. The master goes to the
 * monitor, the slave becomes /dev/console and init's controlling terminal
 * and stdio. */
static int setup_console(int sync_fd, struct ferry_error **err)
{
	cleanup_close int master = open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return error_sys(err, errno, "open /dev/pts/ptmx");
	if (unlockpt(master) < 0)
		return error_sys(err, errno, "unlockpt");
	int index;
	if (ioctl(master, TIOCGPTN, &index) < 0)
		return error_sys(err, errno, "TIOCGPTN");
	char slave_path[64];
	snprintf(slave_path, sizeof(slave_path), "/dev/pts/%d", index);
	if (do_mount(slave_path, "/dev/console", NULL, MS_BIND, NULL, err) < 0)
		return -1;
	if (sync_send(sync_fd, SYNC_CONSOLE, master, NULL) < 0)
		return error_sys(err, errno, "send the console to the monitor");

	if (setsid() < 0)
		return error_sys(err, errno, "setsid");
	cleanup_close int slave = open("/dev/console", O_RDWR | O_CLOEXEC);
	if (slave < 0)
		return error_sys(err, errno, "open /dev/console");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return error_sys(err, errno, "TIOCSCTTY /dev/console");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return error_sys(err, errno, "dup2 console to fd %d", i);
	return 0;
}

static int become_root(const struct runtime_spec *spec, struct ferry_error **err)
{
	if (setresgid(0, 0, 0) < 0)
		return error_sys(err, errno, "setresgid 0");
	if (setgroups(0, NULL) < 0)
		return error_sys(err, errno, "setgroups");
	if (setresuid(0, 0, 0) < 0)
		return error_sys(err, errno, "setresuid 0");
	return 0;
}

void reset_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
}

static char **init_environment(const struct runtime_spec *spec)
{
	size_t n = strv_len(spec->environment);
	char **env = xcalloc(n + 4, sizeof(char *));
	size_t k = 0;
	env[k++] = xstrdup(DEFAULT_PATH);
	env[k++] = xstrdup("container=ferry");
	env[k++] = xstrdup("TERM=linux");
	for (size_t i = 0; i < n; i++)
		env[k++] = xstrdup(spec->environment[i]);
	env[k] = NULL;
	return env;
}

/* As LXD's image templates do: /etc/hostname names the container, also
 * after a rename or a copy. Written inside the container, as its root,
 * after pivot_root, so a symlink there can't reach the host. Only an
 * existing regular file is rewritten: images without one keep none. */
static void write_hostname_file(const char *name)
{
	struct stat st;
	if (lstat("/etc/hostname", &st) < 0 || !S_ISREG(st.st_mode))
		return;
	int fd = open("/etc/hostname", O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, name, strlen(name)) < 0 || write(fd, "\n", 1) < 0)
		log_warn("write /etc/hostname: %s", strerror(errno));
	close(fd);
}

static int container_setup(const struct runtime_spec *spec, int sync_fd, struct ferry_error **err)
{
	char msg;
	/* Wait until the monitor has written the id maps, placed us in the
	 * cgroups and plugged in the network. */
	ssize_t r = sync_recv(sync_fd, &msg, NULL, NULL, 0);
	if (r <= 0 || msg != SYNC_GO)
		return error_set(err, 500, EPIPE, "the monitor gave no go");
	/* Only now: the cgroup namespace's root is the cgroup we were put in. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		return error_sys(err, errno, "unshare the cgroup namespace");
	if (become_root(spec, err) < 0)
		return -1;
	if (sethostname(spec->name, strlen(spec->name)) < 0)
		return error_sys(err, errno, "sethostname %s", spec->name);
	if (build_rootfs(spec, err) < 0)
		return error_wrap(err, "rootfs %s", spec->rootfs);
	if (setup_console(sync_fd, err) < 0)
		return error_wrap(err, "console");
	umask(022);
	write_hostname_file(spec->name);

	const char *init = spec->init != NULL ? spec->init : "/sbin/init";
	char *argv[] = { (char *)init, NULL };
	char **env = init_environment(spec);
	/* No host fd may survive into init (it would break a dump): everything
	 * above 2 closes on exec, the sync socket included, which tells the
	 * monitor that exec succeeded. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		return error_sys(err, errno, "close_range");
	reset_signals();
	/* A container whose monitor died can't be found again (runtime_get_state
	 * would call it stopped, and a start would run a second copy): it dies
	 * with its monitor. Set last, as credential changes clear it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return error_sys(err, errno, "PR_SET_PDEATHSIG");
	execve(init, argv, env);
	int e = errno;
	strv_free(env);
	return error_sys(err, e, "exec %s", init);
}

int container_init_main(void *arg)
{
	struct container_setup *setup = arg;
	struct ferry_error *err = NULL;
	container_setup(setup->spec, setup->sync_fd, &err);
	sync_send(setup->sync_fd, SYNC_ERROR, -1, err != NULL ? err->msg : "unknown error");
	error_free(&err);
	_exit(1);
}
