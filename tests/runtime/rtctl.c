/* rtctl: a thin command line over the runtime, for the runtime's tests.
 *
 *   rtctl start SPEC.json
 *   rtctl state NAME DIR
 *   rtctl stop NAME DIR [TIMEOUT] [--force]
 *   rtctl exec NAME DIR [--uid N] [--gid N] [--cwd DIR] [--tty] [--pid-file F] -- CMD...
 *   rtctl freeze DIR | unfreeze DIR
 *   rtctl console DIR [SECONDS]   (relays stdin to the console, console to stdout)
 *   rtctl dump DIR IMAGES_DIR      (CRIU dump leaving the container running; log IMAGES_DIR/dump.log)
 *   rtctl checkpoint NAME DIR IMAGES [--leave-running] [--seize] [--log PATH]
 *   rtctl restore SPEC.json IMAGES [--log PATH]
 *   rtctl check                    (what CRIU can do here, as JSON)
 *
 * checkpoint and restore print how long the call took ("dump 123 ms",
 * "restore 45 ms"); their CRIU log goes to the spec's log_dir under
 * checkpoint_log_path()'s name unless --log says otherwise. --seize lets CRIU
 * seize task by task instead of freezing the cgroup first.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/util.h"
#include "runtime/runtime.h"

static int usage(void)
{
	fprintf(stderr, "usage: rtctl start SPEC.json | state NAME DIR | stop NAME DIR [TIMEOUT] [--force] |\n"
			"       exec NAME DIR [--uid N] [--gid N] [--cwd DIR] [--tty] [--pid-file F] -- CMD... |\n"
			"       freeze DIR | unfreeze DIR | console DIR [SECONDS] | dump DIR IMAGES_DIR |\n"
			"       checkpoint NAME DIR IMAGES [--leave-running] [--seize] [--log PATH] |\n"
			"       restore SPEC.json IMAGES [--log PATH] | check\n");
	return 2;
}

static int fail(struct ferry_error **err)
{
	fprintf(stderr, "rtctl: %s\n", (*err)->msg);
	error_free(err);
	return 1;
}

/* DIR/spec.json. */
static int spec_read(const char *dir, struct runtime_spec **spec, struct ferry_error **err)
{
	cleanup_free char *path = xasprintf("%s/spec.json", dir);
	cleanup_free char *text = NULL;
	if (file_read(path, &text, NULL, err) < 0 || runtime_spec_from_json(text, spec, err) < 0)
		return -1;
	return 0;
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
	       "cpu_usage_ns=%lld\nlast_exit_status=%d\ncheckpointed=%s\n",
	       names[st.status], (int)st.monitor_pid, (int)st.init_pid, st.processes, st.memory_usage, st.memory_peak,
	       st.cpu_usage_ns, st.last_exit_status, st.checkpointed ? "true" : "false");
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

/* dump: the runtime test's proof that its containers are dumpable. */
static int cmd_dump(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	if (argc != 2)
		return usage();
	struct runtime_spec *spec = NULL;
	if (spec_read(argv[0], &spec, &err) < 0)
		return fail(&err);
	cleanup_free char *log_path = xasprintf("%s/dump.log", argv[1]);
	struct runtime_checkpoint_opts o = { .images_dir = argv[1], .log_path = log_path, .leave_running = true };
	int r = runtime_checkpoint(spec->name, argv[0], &o, &err);
	runtime_spec_free(spec);
	return r < 0 ? fail(&err) : 0;
}

static int cmd_checkpoint(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	struct runtime_checkpoint_opts o = { 0 };
	const char *log_path = NULL;
	if (argc < 3)
		return usage();
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--leave-running") == 0)
			o.leave_running = true;
		else if (strcmp(argv[i], "--seize") == 0)
			o.ptrace_seize = true;
		else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
			log_path = argv[++i];
		else
			return usage();
	}
	cleanup_free char *default_log = NULL;
	if (log_path == NULL) {
		struct runtime_spec *spec = NULL;
		if (spec_read(argv[1], &spec, &err) < 0)
			return fail(&err);
		default_log = checkpoint_log_path(spec->log_dir != NULL ? spec->log_dir : spec->dir,
						  o.leave_running ? "snapshot" : "stop", "dump");
		runtime_spec_free(spec);
		log_path = default_log;
	}
	o.images_dir = argv[2];
	o.log_path = log_path;
	long long start = now_ms();
	if (runtime_checkpoint(argv[0], argv[1], &o, &err) < 0)
		return fail(&err);
	printf("dump %lld ms\n", now_ms() - start);
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	cleanup_free char *text = NULL;
	const char *log_path = NULL;
	if (argc != 2 && !(argc == 4 && strcmp(argv[2], "--log") == 0))
		return usage();
	if (argc == 4)
		log_path = argv[3];
	struct runtime_spec *spec = NULL;
	if (file_read(argv[0], &text, NULL, &err) < 0 || runtime_spec_from_json(text, &spec, &err) < 0)
		return fail(&err);
	cleanup_free char *default_log = NULL;
	if (log_path == NULL)
		log_path = default_log =
			checkpoint_log_path(spec->log_dir != NULL ? spec->log_dir : spec->dir, "stop", "restore");
	long long start = now_ms();
	int r = runtime_restore(spec, argv[1], log_path, NULL, &err);
	runtime_spec_free(spec);
	if (r < 0)
		return fail(&err);
	printf("restore %lld ms\n", now_ms() - start);
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *result = NULL;
	if (argc != 0)
		return usage();
	if (checkpoint_check(&result, &err) < 0)
		return fail(&err);
	char *text = json_dumps(result, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(result);
	puts(text);
	free(text);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "__monitor") == 0)
		runtime_monitor_main(argv[2]);
	if (argc < 2)
		return usage();
	checkpoint_process_init();
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
	if (strcmp(cmd, "checkpoint") == 0)
		return cmd_checkpoint(argc, argv);
	if (strcmp(cmd, "restore") == 0)
		return cmd_restore(argc, argv);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc, argv);
	return usage();
}
