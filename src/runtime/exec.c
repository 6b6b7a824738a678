/* Running a process in a running container (ferry exec), and ptys for it.
 *
 * The caller (ferryd) is multi-threaded, so everything is prepared before
 * fork and the children make only async-signal-safe calls. The first child
 * joins the container's cgroups and namespaces; setns() into a pid namespace
 * only applies to children, so it forks again, and the grandchild becomes a
 * session leader inside (design.md: otherwise the container can't be dumped)
 * and execs. The first child waits and passes on the exit status. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime/internal.h"

#define MAX_CGROUP_FDS 16
#define MAX_CANDIDATES 32

/* Namespaces joined, in order: the user namespace first, so that we hold
 * capabilities over the others, which it owns. */
/* time: a container restored by CRIU runs in a time namespace CRIU made
 * (its clocks continue); a process joining it elsewhere would make the
 * next checkpoint unrestorable ("Can't restore sub-task in NS"). */
static const char *const ns_names[] = { "user", "mnt", "pid", "uts", "ipc", "net", "cgroup", "time" };
#define N_NS (sizeof(ns_names) / sizeof(ns_names[0]))

/* Reports from the children to the caller, over a CLOEXEC pipe. */
enum exec_report_kind { EXEC_REPORT_PID = 1, EXEC_REPORT_ERROR = 2 };
enum exec_stage {
	STAGE_CGROUP, STAGE_SETNS, STAGE_FORK, STAGE_SETSID, STAGE_TTY, STAGE_IDS, STAGE_CWD, STAGE_STDIO,
	STAGE_EXEC,
};
static const char *const stage_names[] = {
	"join cgroup", "setns", "fork", "setsid", "set controlling tty", "set uid/gid", "chdir", "set up stdio",
	"exec",
};
struct exec_report {
	int kind;
	int value; /* pid, or errno */
	int stage;
	int ns;    /* for STAGE_SETNS: index in ns_names */
};

struct exec_plan {
	int cgroup_fds[MAX_CGROUP_FDS];
	int n_cgroup_fds;
	int ns_fds[N_NS];
	char *candidates[MAX_CANDIDATES]; /* argv[0] in each PATH directory */
	int n_candidates;
	char **argv;
	char **envp;
	const char *cwd;
	const char *fallback_cwd;
	uid_t uid;
	gid_t gid;
	int stdio[3];
	bool tty;
	int report_fd;
};

static void plan_free(struct exec_plan *plan)
{
	for (int i = 0; i < plan->n_cgroup_fds; i++)
		close(plan->cgroup_fds[i]);
	for (size_t i = 0; i < N_NS; i++)
		if (plan->ns_fds[i] >= 0)
			close(plan->ns_fds[i]);
	for (int i = 0; i < plan->n_candidates; i++)
		free(plan->candidates[i]);
	strv_free(plan->envp);
}

static void report(int fd, int kind, int value, int stage, int ns)
{
	struct exec_report r = { kind, value, stage, ns };
	ssize_t w = write(fd, &r, sizeof(r));
	(void)w;
}

static _Noreturn void fail(const struct exec_plan *plan, int stage, int ns)
{
	report(plan->report_fd, EXEC_REPORT_ERROR, errno, stage, ns);
	_exit(127);
}

static bool same_namespace(const char *ns, pid_t init)
{
	char path[64];
	struct stat own, theirs;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init, ns);
	if (stat(path, &theirs) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	if (stat(path, &own) < 0)
		return false;
	return own.st_ino == theirs.st_ino && own.st_dev == theirs.st_dev;
}

/* The environment's PATH, or the default. */
static const char *env_path(char **envp)
{
	for (size_t i = 0; envp[i] != NULL; i++)
		if (strncmp(envp[i], "PATH=", 5) == 0)
			return envp[i] + 5;
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

static int plan_prepare(const char *name, const char *dir, const struct runtime_exec *ex, struct exec_plan *plan,
			struct ferry_error **err)
{
	for (size_t i = 0; i < N_NS; i++)
		plan->ns_fds[i] = -1;
	if (ex->argv == NULL || ex->argv[0] == NULL || ex->argv[0][0] == '\0')
		return error_bad_request(err, "no command given");

	struct runtime_spec *spec = NULL;
	if (spec_load(dir, &spec, err) < 0)
		return -1;
	pid_t init = init_find(dir);
	if (init <= 0) {
		runtime_spec_free(spec);
		return error_conflict(err, "container %s is not running", name);
	}
	if (cgroup_is_frozen(spec->cgroup)) {
		runtime_spec_free(spec);
		return error_conflict(err, "container %s is frozen", name);
	}
	plan->n_cgroup_fds = cgroup_open_procs(spec->cgroup, plan->cgroup_fds, MAX_CGROUP_FDS, err);
	runtime_spec_free(spec);
	if (plan->n_cgroup_fds < 0) {
		plan->n_cgroup_fds = 0;
		return -1;
	}

	for (size_t i = 0; i < N_NS; i++) {
		/* A privileged container shares our user namespace: setns would refuse it. */
		if (same_namespace(ns_names[i], init))
			continue;
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)init, ns_names[i]);
		plan->ns_fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (plan->ns_fds[i] < 0)
			return error_sys(err, errno, "open %s", path);
	}

	if (ex->env != NULL) {
		size_t n = strv_len(ex->env);
		plan->envp = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			plan->envp[i] = xstrdup(ex->env[i]);
	} else {
		plan->envp = xcalloc(4, sizeof(char *));
		plan->envp[0] = xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
		plan->envp[1] = xstrdup(ex->uid == 0 ? "HOME=/root" : "HOME=/");
		plan->envp[2] = xstrdup("TERM=xterm");
	}

	/* PATH lookup happens in the child, inside the container's mount
	 * namespace; only the candidate paths are built here. */
	const char *cmd = ex->argv[0];
	if (strchr(cmd, '/') != NULL) {
		plan->candidates[plan->n_candidates++] = xstrdup(cmd);
	} else {
		cleanup_free char *path = xstrdup(env_path(plan->envp));
		char *save = NULL;
		for (char *d = strtok_r(path, ":", &save); d != NULL && plan->n_candidates < MAX_CANDIDATES;
		     d = strtok_r(NULL, ":", &save))
			plan->candidates[plan->n_candidates++] = xasprintf("%s/%s", d, cmd);
	}
	plan->argv = ex->argv;
	plan->cwd = ex->cwd;
	plan->fallback_cwd = ex->uid == 0 ? "/root" : "/";
	plan->uid = ex->uid;
	plan->gid = ex->gid;
	plan->tty = ex->tty;
	memcpy(plan->stdio, ex->stdio, sizeof(plan->stdio));
	return 0;
}

/* The grandchild: inside every namespace; only async-signal-safe calls. */
static _Noreturn void exec_inner(const struct exec_plan *plan)
{
	if (setsid() < 0)
		fail(plan, STAGE_SETSID, 0);

	/* Move stdio out of the way of 0-2 before dup2, in case they overlap. */
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = fcntl(plan->stdio[i], F_DUPFD_CLOEXEC, 3);
		if (fds[i] < 0)
			fail(plan, STAGE_STDIO, 0);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(fds[i], i) < 0)
			fail(plan, STAGE_STDIO, 0);
	if (plan->tty && ioctl(0, TIOCSCTTY, 0) < 0)
		fail(plan, STAGE_TTY, 0);

	if (setgroups(0, NULL) < 0 || setresgid(plan->gid, plan->gid, plan->gid) < 0 ||
	    setresuid(plan->uid, plan->uid, plan->uid) < 0)
		fail(plan, STAGE_IDS, 0);
	if (plan->cwd != NULL) {
		if (chdir(plan->cwd) < 0)
			fail(plan, STAGE_CWD, 0);
	} else if (chdir(plan->fallback_cwd) < 0 && chdir("/") < 0) {
		fail(plan, STAGE_CWD, 0);
	}

	/* Nothing from the caller survives exec; the report pipe closes on
	 * success, which tells the caller the command runs. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);

	int exec_errno = ENOENT;
	for (int i = 0; i < plan->n_candidates; i++) {
		execve(plan->candidates[i], plan->argv, plan->envp);
		/* As execvp: a found but unusable file beats "not found". */
		if (errno != ENOENT && errno != ENOTDIR)
			exec_errno = errno;
	}
	errno = exec_errno;
	fail(plan, STAGE_EXEC, 0);
}

/* The first child: joins cgroups and namespaces, forks into the pid
 * namespace, reports the grandchild's pid, and exits with its status. */
static _Noreturn void exec_outer(const struct exec_plan *plan)
{
	for (int i = 0; i < plan->n_cgroup_fds; i++)
		if (write(plan->cgroup_fds[i], "0", 1) < 0)
			fail(plan, STAGE_CGROUP, 0);
	for (size_t i = 0; i < N_NS; i++)
		if (plan->ns_fds[i] >= 0 && setns(plan->ns_fds[i], 0) < 0)
			fail(plan, STAGE_SETNS, (int)i);

	pid_t inner = fork();
	if (inner < 0)
		fail(plan, STAGE_FORK, 0);
	if (inner == 0)
		exec_inner(plan);
	report(plan->report_fd, EXEC_REPORT_PID, inner, 0, 0);
	/* This process never execs, so it still holds every fd of the
	 * (multi-threaded) caller: other sessions' pipes among them, and the
	 * write end of its own command's stdin. Keep none of them open. */
	close_range(3, ~0U, 0);

	int wstatus;
	while (waitpid(inner, &wstatus, 0) < 0)
		if (errno != EINTR)
			_exit(127);
	if (WIFEXITED(wstatus))
		_exit(WEXITSTATUS(wstatus));
	_exit(128 + WTERMSIG(wstatus));
}

int runtime_exec(const char *name, const char *dir, const struct runtime_exec *ex, pid_t *pid, pid_t *inner_pid,
		 struct ferry_error **err)
{
	struct exec_plan plan = { .report_fd = -1 };
	if (plan_prepare(name, dir, ex, &plan, err) < 0) {
		plan_free(&plan);
		return error_wrap(err, "exec in %s", name);
	}
	int report_pipe[2];
	if (pipe2(report_pipe, O_CLOEXEC) < 0) {
		plan_free(&plan);
		return error_sys(err, errno, "exec in %s: pipe", name);
	}
	plan.report_fd = report_pipe[1];

	pid_t child = fork();
	if (child == 0)
		exec_outer(&plan);
	int fork_errno = errno;
	close(report_pipe[1]);
	plan_free(&plan);
	if (child < 0) {
		close(report_pipe[0]);
		return error_sys(err, fork_errno, "exec in %s: fork", name);
	}

	pid_t inner = 0;
	struct exec_report r;
	int ret = 0;
	for (;;) {
		ssize_t n = read(report_pipe[0], &r, sizeof(r));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(r))
			break;
		if (r.kind == EXEC_REPORT_PID) {
			inner = r.value;
		} else if (r.kind == EXEC_REPORT_ERROR && ret == 0) {
			const char *stage = r.stage >= 0 && r.stage <= STAGE_EXEC ? stage_names[r.stage] : "?";
			if (r.stage == STAGE_EXEC)
				ret = error_set(err, r.value == ENOENT ? 404 : 500, r.value, "exec in %s: %s: %s", name,
						ex->argv[0], strerror(r.value));
			else if (r.stage == STAGE_SETNS)
				ret = error_sys(err, r.value, "exec in %s: setns %s", name, ns_names[r.ns]);
			else
				ret = error_sys(err, r.value, "exec in %s: %s", name, stage);
		}
	}
	close(report_pipe[0]);
	if (ret == 0 && inner <= 0)
		ret = error_set(err, 500, EIO, "exec in %s: the helper exited without a report", name);
	if (ret < 0) {
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
		return ret;
	}
	*pid = child;
	if (inner_pid != NULL)
		*inner_pid = inner;
	return 0;
}

int runtime_open_pty(const char *dir, int *master, int *slave, struct ferry_error **err)
{
	pid_t init = init_find(dir);
	if (init <= 0)
		return error_conflict(err, "container is not running");
	/* The container's own devpts, reached through init's root: a pty there
	 * is one CRIU can dump with the container. */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/root/dev/pts/ptmx", (int)init);
	cleanup_close int m = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return error_sys(err, errno, "open %s", path);
	if (unlockpt(m) < 0)
		return error_sys(err, errno, "unlockpt");
	/* TIOCGPTPEER opens the slave of this very master, with no path lookup
	 * through the container's filesystem. */
	int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return error_sys(err, errno, "open the pty slave");
	*master = steal_fd(&m);
	*slave = s;
	return 0;
}

int runtime_console_attach(const char *dir, int *fd, struct ferry_error **err)
{
	if (monitor_find(dir) <= 0)
		return error_conflict(err, "container is not running");
	if (unix_socket_at(dir, RUNTIME_MONITOR_SOCK, false, fd, err) < 0)
		return error_wrap(err, "console");
	return 0;
}
