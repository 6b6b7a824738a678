/* Running the host tools an image is built with (busybox, debootstrap). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "image/image_internal.h"

/* A fixed environment: the build must not depend on the caller's, except
 * for a proxy the machine's apt may need. */
static char **build_environment(void)
{
	static const char *const passed[] = {"http_proxy", "https_proxy", "no_proxy", NULL};
	char **env = xcalloc(8, sizeof(char *));
	size_t n = 0;
	env[n++] = xstrdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	env[n++] = xstrdup("LC_ALL=C");
	env[n++] = xstrdup("DEBIAN_FRONTEND=noninteractive");
	for (size_t i = 0; passed[i] != NULL; i++) {
		const char *value = getenv(passed[i]);
		if (value != NULL)
			env[n++] = xasprintf("%s=%s", passed[i], value);
	}
	return env;
}

static int read_all(int fd, char **out)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (buf == NULL)
		abort();
	for (;;) {
		if (n + 1 >= cap) {
			cap *= 2;
			char *bigger = realloc(buf, cap);
			if (bigger == NULL)
				abort();
			buf = bigger;
		}
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			buf[n] = '\0';
			*out = buf;
			return r < 0 ? -errno : 0;
		}
		n += r;
	}
}

int image_run(char *const argv[], char **out, const char *log_path, struct ferry_error **err)
{
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	int pipe_fds[2] = {-1, -1};
	if (out != NULL) {
		if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
			posix_spawn_file_actions_destroy(&actions);
			return error_sys(err, errno, "pipe");
		}
		posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
		posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
	} else {
		const char *target = log_path ? log_path : "/dev/null";
		posix_spawn_file_actions_addopen(&actions, 1, target, O_WRONLY | O_CREAT | O_APPEND, 0600);
		posix_spawn_file_actions_adddup2(&actions, 1, 2);
	}
	cleanup_strv char **env = build_environment();
	pid_t pid;
	int r = posix_spawn(&pid, argv[0], &actions, NULL, argv, env);
	posix_spawn_file_actions_destroy(&actions);
	if (pipe_fds[1] >= 0)
		close(pipe_fds[1]);
	if (r != 0) {
		if (pipe_fds[0] >= 0)
			close(pipe_fds[0]);
		return error_sys(err, r, "run %s", argv[0]);
	}
	cleanup_free char *output = NULL;
	if (out != NULL) {
		read_all(pipe_fds[0], &output);
		close(pipe_fds[0]);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return error_sys(err, errno, "wait for %s", argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (WIFSIGNALED(status))
			return error_set(err, 500, 0, "%s was killed by signal %d", argv[0], WTERMSIG(status));
		if (log_path != NULL)
			return error_set(err, 500, 0, "%s exited with status %d (log: %s)", argv[0],
					 WEXITSTATUS(status), log_path);
		return error_set(err, 500, 0, "%s exited with status %d", argv[0], WEXITSTATUS(status));
	}
	if (out != NULL)
		*out = steal_pointer(&output);
	return 0;
}
