/* rtctl: a thin command line over the runtime, for the runtime's tests.
 *
 *   rtctl start SPEC.json
 *   rtctl state NAME DIR
 *   rtctl stop NAME DIR [TIMEOUT] [--force]
 *   rtctl exec NAME DIR [--uid N] [--gid N] [--cwd DIR] [--tty] [--pid-file F] -- CMD...
 *   rtctl freeze DIR | unfreeze DIR
 *   rtctl console DIR [SECONDS]   (relays stdin to the console, console to stdout)
 *   rtctl dump DIR IMAGES_DIR      (CRIU dump through libcriu, leaving the container running)
 *
 * dump proves the runtime builds containers CRIU can checkpoint; it uses the
 * options a container needs (see dump_options()).
 */
#include <criu/criu.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime/runtime.h"

static int usage(void)
{
	fprintf(stderr, "usage: rtctl start SPEC.json | state NAME DIR | stop NAME DIR [TIMEOUT] [--force] |\n"
			"       exec NAME DIR [--uid N] [--gid N] [--cwd DIR] [--tty] [--pid-file F] -- CMD... |\n"
			"       freeze DIR | unfreeze DIR | console DIR [SECONDS] | dump DIR IMAGES_DIR\n");
	return 2;
}

static int fail(struct ferry_error **err)
{
	fprintf(stderr, "rtctl: %s\n", (*err)->msg);
	error_free(err);
	return 1;
}

static int cmd_start(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	cleanup_free char *text = NULL;
	struct runtime_spec *spec = NULL;
	if (argc != 1)
		return usage();
	if (file_read(argv[0], &text, NULL, &err) < 0 || runtime_spec_from_json(text, &spec, &err) < 0)
		return fail(&err);
	int r = runtime_start(spec, &err);
	runtime_spec_free(spec);
	return r < 0 ? fail(&err) : 0;
}

static int cmd_state(int argc, char **argv)
{
	static const char *const names[] = { "stopped", "running", "frozen" };
	cleanup_error struct ferry_error *err = NULL;
	struct runtime_state st;
	if (argc != 2)
		return usage();
	if (runtime_get_state(argv[0], argv[1], &st, &err) < 0)
		return fail(&err);
	printf("status=%s\nmonitor_pid=%d\ninit_pid=%d\nprocesses=%lld\nmemory_usage=%lld\nmemory_peak=%lld\n"
	       "cpu_usage_ns=%lld\nlast_exit_status=%d\n",
	       names[st.status], (int)st.monitor_pid, (int)st.init_pid, st.processes, st.memory_usage, st.memory_peak,
	       st.cpu_usage_ns, st.last_exit_status);
	return 0;
}

static int cmd_stop(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	int timeout = 30;
	bool force = false;
	if (argc < 2)
		return usage();
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = true;
		else
			timeout = atoi(argv[i]);
	}
	return runtime_stop(argv[0], argv[1], timeout, force, &err) < 0 ? fail(&err) : 0;
}

static int cmd_exec(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	struct runtime_exec ex = { .stdio = { 0, 1, 2 } };
	const char *pid_file = NULL;
	if (argc < 2)
		return usage();
	int i;
	for (i = 2; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--uid") == 0 && i + 1 < argc)
			ex.uid = atoi(argv[++i]);
		else if (strcmp(argv[i], "--gid") == 0 && i + 1 < argc)
			ex.gid = atoi(argv[++i]);
		else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc)
			ex.cwd = argv[++i];
		else if (strcmp(argv[i], "--pid-file") == 0 && i + 1 < argc)
			pid_file = argv[++i];
		else if (strcmp(argv[i], "--tty") == 0)
			ex.tty = true;
		else
			return usage();
	}
	if (i + 1 >= argc)
		return usage();
	ex.argv = &argv[i + 1];

	int master = -1, slave = -1;
	if (ex.tty) {
		if (runtime_open_pty(argv[1], &master, &slave, &err) < 0)
			return fail(&err);
		ex.stdio[0] = ex.stdio[1] = ex.stdio[2] = slave;
	}
	pid_t pid, inner;
	if (runtime_exec(argv[0], argv[1], &ex, &pid, &inner, &err) < 0)
		return fail(&err);
	if (pid_file != NULL) {
		cleanup_free char *text = xasprintf("%d\n", (int)inner);
		if (file_write_atomic(pid_file, text, strlen(text), 0644, &err) < 0)
			return fail(&err);
	}
	if (ex.tty) {
		/* Relay the pty's output until the command exits. */
		close(slave);
		char buf[4096];
		ssize_t n;
		while ((n = read(master, buf, sizeof(buf))) > 0)
			if (write(1, buf, n) < 0)
				break;
		close(master);
	}
	int wstatus;
	while (waitpid(pid, &wstatus, 0) < 0)
		if (errno != EINTR)
			return 1;
	return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

static int cmd_freeze(bool frozen, int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	if (argc != 1)
		return usage();
	int r = frozen ? runtime_freeze(argv[0], &err) : runtime_unfreeze(argv[0], &err);
	return r < 0 ? fail(&err) : 0;
}

static int cmd_console(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	if (argc < 1)
		return usage();
	int seconds = argc > 1 ? atoi(argv[1]) : -1;
	int sock;
	if (runtime_console_attach(argv[0], &sock, &err) < 0)
		return fail(&err);
	long long deadline = now_ms() + seconds * 1000LL;
	bool stdin_open = true;
	for (;;) {
		struct pollfd fds[2] = { { .fd = sock, .events = POLLIN }, { .fd = stdin_open ? 0 : -1, .events = POLLIN } };
		int timeout = seconds < 0 ? -1 : (int)(deadline - now_ms());
		if (seconds >= 0 && timeout <= 0)
			break;
		if (poll(fds, 2, timeout) <= 0)
			continue;
		char buf[4096];
		if (fds[0].revents) {
			ssize_t n = read(sock, buf, sizeof(buf));
			if (n <= 0 || write(1, buf, n) < 0)
				break;
		}
		if (fds[1].revents) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n <= 0)
				stdin_open = false;
			else if (write(sock, buf, n) < 0)
				break;
		}
	}
	close(sock);
	return 0;
}

/* What a dump of a ferry container needs:
 * - the mounts bound in from the host (/dev/null etc., the rootfs itself) are
 *   external, and their peer groups live outside: auto_ext_mnt, ext_sharing,
 *   ext_masters;
 * - the console's master is held by the monitor, outside the dumped tree:
 *   orphan_pts_master (RPC only; on restore CRIU opens a new master in the
 *   container's devpts and hands it back through the notify callback);
 * - established TCP connections move with the container. */
static int cmd_dump(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	if (argc != 2)
		return usage();
	cleanup_free char *init_path = xasprintf("%s/init.pid", argv[0]);
	cleanup_free char *init_text = NULL;
	if (file_read(init_path, &init_text, NULL, &err) < 0)
		return fail(&err);
	cleanup_close int images = open(argv[1], O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (images < 0) {
		fprintf(stderr, "rtctl: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (criu_init_opts() < 0 || criu_set_service_binary("/usr/local/sbin/criu") < 0) {
		fprintf(stderr, "rtctl: libcriu init failed\n");
		return 1;
	}
	criu_set_pid(atoi(init_text));
	criu_set_images_dir_fd(images);
	criu_set_log_file("dump.log");
	criu_set_log_level(4);
	criu_set_leave_running(true);
	criu_set_tcp_established(true);
	criu_set_auto_ext_mnt(true);
	criu_set_ext_sharing(true);
	criu_set_ext_masters(true);
	criu_set_orphan_pts_master(true);
	int r = criu_dump();
	if (r < 0) {
		fprintf(stderr, "rtctl: criu dump failed (%d), log: %s/dump.log\n", r, argv[1]);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "__monitor") == 0)
		runtime_monitor_main(argv[2]);
	if (argc < 2)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	const char *cmd = argv[1];
	argc -= 2;
	argv += 2;
	if (strcmp(cmd, "start") == 0)
		return cmd_start(argc, argv);
	if (strcmp(cmd, "state") == 0)
		return cmd_state(argc, argv);
	if (strcmp(cmd, "stop") == 0)
		return cmd_stop(argc, argv);
	if (strcmp(cmd, "exec") == 0)
		return cmd_exec(argc, argv);
	if (strcmp(cmd, "freeze") == 0)
		return cmd_freeze(true, argc, argv);
	if (strcmp(cmd, "unfreeze") == 0)
		return cmd_freeze(false, argc, argv);
	if (strcmp(cmd, "console") == 0)
		return cmd_console(argc, argv);
	if (strcmp(cmd, "dump") == 0)
		return cmd_dump(argc, argv);
	return usage();
}
