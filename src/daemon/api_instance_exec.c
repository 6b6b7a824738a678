/* POST /1.0/instances/{name}/exec: run a command in a running instance.
 *
 * Two shapes, as in LXD:
 * - record-output (or nothing) without websockets: a task operation; the
 *   output goes to CONTAINERS/NAME/logs/exec_<op>.stdout/.stderr, and the
 *   operation's metadata says {"return": code, "output": {"1": url, "2": url}}.
 * - wait-for-websocket: a websocket operation with secrets for "0", "1",
 *   "2" (one "0" when interactive, on a pty) and "control". The process
 *   starts once the data sockets are connected. Data goes in binary
 *   messages; an empty text message marks the end of a stream (stdin EOF
 *   from the client, end of output from us). Then {"return": code}. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/ws.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/instance.h"
#include "daemon/operations.h"
#include "daemon/request.h"

/* Websocket slots: the three stdio streams and the control channel. */
enum { SLOT_STDIN, SLOT_STDOUT, SLOT_STDERR, SLOT_CONTROL, N_SLOTS };
static const char *const slot_names[N_SLOTS] = { "0", "1", "2", "control" };

struct exec_session {
	char *name;
	char **argv;
	char **env;
	char *cwd;
	uid_t uid;
	gid_t gid;
	bool interactive;
	bool record_output;
	int width, height;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *secrets[N_SLOTS];  /* NULL for unused slots */
	struct ws *ws[N_SLOTS];
	bool finished;           /* the run is done with every ws: connections may close */
	bool stop_control;
	pid_t inner_pid;
	int pty_master;
};

static void exec_session_free(void *data)
{
	struct exec_session *s = data;
	free(s->name);
	strv_free(s->argv);
	strv_free(s->env);
	free(s->cwd);
	for (int i = 0; i < N_SLOTS; i++)
		free(s->secrets[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

static int wait_exit_code(pid_t pid)
{
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	return exit_code_of(status);
}

/* The container's own /dev/null: a host fd would pin a mount the container
 * can't see, and a dump of a process left holding it would fail. */
static int open_container_devnull(const char *name, int flags)
{
	struct runtime_state st;
	cleanup_error struct ferry_error *e = NULL;
	if (instance_runtime_state(name, &st, &e) < 0 || st.init_pid <= 0)
		return -1;
	cleanup_free char *path = xasprintf("/proc/%d/root/dev/null", (int)st.init_pid);
	return open(path, flags | O_CLOEXEC | O_NOCTTY);
}

static int exec_start(struct exec_session *s, const int stdio[3], bool tty, pid_t *pid, pid_t *inner,
		      struct ferry_error **err)
{
	cleanup_free char *dir = instance_dir(s->name);
	struct runtime_exec ex = {
		.argv = s->argv,
		.env = s->env,
		.cwd = s->cwd,
		.uid = s->uid,
		.gid = s->gid,
		.stdio = { stdio[0], stdio[1], stdio[2] },
		.tty = tty,
	};
	if (runtime_exec(s->name, dir, &ex, pid, inner, err) < 0)
		return error_wrap(err, "exec in instance \"%s\"", s->name);
	return 0;
}

/* ---- record-output (no websockets) ------------------------------------- */

static int exec_run_recorded(struct operation *op, void *data, struct ferry_error **err)
{
	struct exec_session *s = data;
	cleanup_free char *logs = instance_logs_dir(s->name);
	cleanup_free char *out_name = xasprintf("exec_%s.stdout", operation_id(op));
	cleanup_free char *err_name = xasprintf("exec_%s.stderr", operation_id(op));
	cleanup_close int in_fd = -1, out_fd = -1, err_fd = -1;

	if (mkdir_p(logs, 0700, err) < 0)
		return -1;
	in_fd = open_container_devnull(s->name, O_RDONLY);
	if (in_fd < 0) {
		int p[2];
		/* An empty pipe: the command reads EOF. */
		if (pipe2(p, O_CLOEXEC) < 0)
			return error_sys(err, errno, "pipe");
		close(p[1]);
		in_fd = p[0];
	}
	if (s->record_output) {
		cleanup_free char *out_path = xasprintf("%s/%s", logs, out_name);
		cleanup_free char *err_path = xasprintf("%s/%s", logs, err_name);
		out_fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out_fd < 0)
			return error_sys(err, errno, "open %s", out_path);
		err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (err_fd < 0)
			return error_sys(err, errno, "open %s", err_path);
	} else {
		out_fd = open_container_devnull(s->name, O_WRONLY);
		err_fd = open_container_devnull(s->name, O_WRONLY);
		if (out_fd < 0 || err_fd < 0)
			return error_sys(err, errno, "open the container's /dev/null");
	}
	int stdio[3] = { in_fd, out_fd, err_fd };
	pid_t pid, inner;
	if (exec_start(s, stdio, false, &pid, &inner, err) < 0)
		return -1;
	int code = wait_exit_code(pid);
	json_t *meta = json_pack("{s:i}", "return", code);
	if (s->record_output) {
		cleanup_free char *out_url = xasprintf("/1.0/instances/%s/logs/%s", s->name, out_name);
		cleanup_free char *err_url = xasprintf("/1.0/instances/%s/logs/%s", s->name, err_name);
		json_object_set_new(meta, "output", json_pack("{s:s,s:s}", "1", out_url, "2", err_url));
	}
	operation_set_metadata(op, meta);
	return 0;
}

/* ---- websockets -------------------------------------------------------- */

static void exec_connect(struct operation *op, void *data, const char *secret, struct ws *ws)
{
	struct exec_session *s = data;
	int slot = -1;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < N_SLOTS; i++)
		if (s->secrets[i] != NULL && strcmp(secret, s->secrets[i]) == 0)
			slot = i;
	if (slot < 0 || s->ws[slot] != NULL || s->finished) {
		pthread_mutex_unlock(&s->lock);
		ws_close(ws, 1000, "");
		ws_free(ws);
		return;
	}
	s->ws[slot] = ws;
	pthread_cond_broadcast(&s->cond);
	/* The run relays on this ws; it says when it is done with it. */
	while (!s->finished)
		pthread_cond_wait(&s->cond, &s->lock);
	s->ws[slot] = NULL;
	pthread_mutex_unlock(&s->lock);
	ws_close(ws, 1000, "");
	ws_free(ws);
}

static bool data_slots_connected(struct exec_session *s)
{
	for (int i = SLOT_STDIN; i <= SLOT_STDERR; i++)
		if (s->secrets[i] != NULL && s->ws[i] == NULL)
			return false;
	return true;
}

static void set_window_size(int master, int width, int height)
{
	if (master < 0 || width <= 0 || height <= 0)
		return;
	struct winsize wsz = { .ws_row = (unsigned short)height, .ws_col = (unsigned short)width };
	ioctl(master, TIOCSWINSZ, &wsz);
}

/* The control channel: window-resize and signal messages. */
static void *control_thread(void *arg)
{
	struct exec_session *s = arg;
	pthread_mutex_lock(&s->lock);
	while (s->ws[SLOT_CONTROL] == NULL && !s->stop_control)
		pthread_cond_wait(&s->cond, &s->lock);
	struct ws *ws = s->ws[SLOT_CONTROL];
	pthread_mutex_unlock(&s->lock);
	if (ws == NULL)
		return NULL;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		bool stop = s->stop_control;
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		enum ws_opcode opcode;
		cleanup_free char *msg = NULL;
		size_t len;
		cleanup_error struct ferry_error *e = NULL;
		int r = ws_recv(ws, &opcode, &msg, &len, 200, &e);
		if (r < 0 && e->errnum == ETIMEDOUT)
			continue;
		if (r <= 0)
			break;
		json_t *cmd = json_loadb(msg, len, 0, NULL);
		const char *command = json_string_value(json_object_get(cmd, "command"));
		if (command != NULL && strcmp(command, "window-resize") == 0) {
			json_t *args = json_object_get(cmd, "args");
			const char *w = json_string_value(json_object_get(args, "width"));
			const char *h = json_string_value(json_object_get(args, "height"));
			if (w != NULL && h != NULL)
				set_window_size(s->pty_master, atoi(w), atoi(h));
		} else if (command != NULL && strcmp(command, "signal") == 0) {
			int sig = (int)json_integer_value(json_object_get(cmd, "signal"));
			if (sig > 0 && sig < NSIG && s->inner_pid > 0)
				kill(s->inner_pid, sig);
		}
		json_decref(cmd);
	}
	return NULL;
}

struct relay_output {
	int fd;          /* pipe read end or pty master; -1 when done */
	struct ws *ws;
};

/* Move data until the command has exited and its output is drained. One
 * thread does all of it, so a ws that carries both directions (the
 * interactive "0") is never used by two threads. */
static int relay(struct exec_session *s, pid_t pid, int pidfd, struct relay_output *outs, size_t n_outs, int in_fd,
		 struct ws *in_ws, int *exit_code)
{
	bool exited = false, in_open = in_ws != NULL && in_fd >= 0;
	char *pending = NULL;
	size_t pending_len = 0, pending_off = 0;
	char buf[65536];

	for (;;) {
		/* Messages already read from the socket don't show in poll: take them first. */
		while (in_open && pending_len == 0) {
			enum ws_opcode opcode;
			char *msg = NULL;
			size_t len = 0;
			cleanup_error struct ferry_error *e = NULL;
			int r = ws_recv(in_ws, &opcode, &msg, &len, 0, &e);
			if (r < 0 && e->errnum == ETIMEDOUT)
				break;
			if (r == 1 && opcode == WS_BINARY) {
				if (len == 0) {
					free(msg);
					continue;
				}
				pending = msg;
				pending_len = len;
				pending_off = 0;
				break;
			}
			free(msg);
			/* An empty text message (the client's stdin ended), a close, or an error. */
			in_open = false;
			if (s->interactive) {
				/* The client went away from its terminal: hang up, as a terminal would. */
				if (r <= 0 && !exited && s->inner_pid > 0)
					kill(s->inner_pid, SIGHUP);
			} else {
				close(in_fd);
				in_fd = -1;
			}
		}

		struct pollfd pfds[8];
		int idx_out[4], idx_in = -1, idx_pid = -1;
		nfds_t n = 0;
		bool outputs_open = false;
		for (size_t i = 0; i < n_outs; i++) {
			idx_out[i] = -1;
			if (outs[i].fd >= 0) {
				idx_out[i] = (int)n;
				pfds[n++] = (struct pollfd){ .fd = outs[i].fd, .events = POLLIN };
				outputs_open = true;
			}
		}
		if (exited && !outputs_open)
			break;
		if (pending_len > 0 && in_fd >= 0) {
			idx_in = (int)n;
			pfds[n++] = (struct pollfd){ .fd = in_fd, .events = POLLOUT };
		} else if (in_open) {
			/* Readable: the loop's top takes the message. */
			pfds[n++] = (struct pollfd){ .fd = ws_fd(in_ws), .events = POLLIN };
		}
		if (!exited) {
			idx_pid = (int)n;
			pfds[n++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		}
		/* After the exit, a descendant may hold the output open: stop once it is quiet. */
		int r = poll(pfds, n, exited ? 300 : -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (r == 0 && exited)
			break;
		for (size_t i = 0; i < n_outs; i++) {
			if (idx_out[i] < 0 || pfds[idx_out[i]].revents == 0)
				continue;
			ssize_t got = read(outs[i].fd, buf, sizeof(buf));
			if (got < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (got <= 0) {
				/* EOF, or EIO from a pty master once the last slave closed. */
				outs[i].fd = -1;
				continue;
			}
			cleanup_error struct ferry_error *e = NULL;
			if (outs[i].ws != NULL && ws_send(outs[i].ws, WS_BINARY, buf, (size_t)got, &e) < 0) {
				log_debug("exec %s: output socket: %s", s->name, e->msg);
				outs[i].ws = NULL; /* keep draining so the command doesn't block */
			}
		}
		if (idx_in >= 0 && pfds[idx_in].revents != 0) {
			ssize_t w = write(in_fd, pending + pending_off, pending_len - pending_off);
			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				/* The command closed its stdin: drop what the client sends. */
				pending_off = pending_len;
			} else if (w > 0) {
				pending_off += (size_t)w;
			}
			if (pending_off >= pending_len) {
				free(pending);
				pending = NULL;
				pending_len = pending_off = 0;
			}
		}
		if (idx_pid >= 0 && pfds[idx_pid].revents != 0) {
			*exit_code = wait_exit_code(pid);
			exited = true;
		}
	}
	free(pending);
	if (!exited)
		*exit_code = wait_exit_code(pid);
	if (!s->interactive && in_fd >= 0)
		close(in_fd);
	return 0;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			close(fds[i]);
			fds[i] = -1;
		}
}

static int exec_run_websocket(struct operation *op, void *data, struct ferry_error **err)
{
	struct exec_session *s = data;
	int ret = -1;
	int exit_code = -1;
	pthread_t control;
	bool control_started = false;
	/* Child ends (given to the command) and our ends. */
	int child_fds[3] = { -1, -1, -1 }, our_fds[3] = { -1, -1, -1 };
	pid_t pid = -1;
	int pidfd = -1;

	/* The command starts once every data socket is connected (LXD does the same). */
	long long deadline = now_ms() + 10 * 60 * 1000;
	pthread_mutex_lock(&s->lock);
	while (!data_slots_connected(s)) {
		if (operation_cancelled(op) || now_ms() > deadline) {
			s->finished = true;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			return error_set(err, 400, ECANCELED, "exec in instance \"%s\": the client never connected", s->name);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);

	if (s->interactive) {
		cleanup_free char *dir = instance_dir(s->name);
		int master, slave;
		if (runtime_open_pty(dir, &master, &slave, err) < 0) {
			error_wrap(err, "exec in instance \"%s\": pty", s->name);
			goto out;
		}
		s->pty_master = our_fds[0] = master;
		child_fds[0] = slave;
		set_window_size(master, s->width, s->height);
	} else {
		for (int i = 0; i < 3; i++) {
			int p[2];
			if (pipe2(p, O_CLOEXEC) < 0) {
				error_sys(err, errno, "pipe");
				goto out;
			}
			child_fds[i] = i == 0 ? p[0] : p[1];
			our_fds[i] = i == 0 ? p[1] : p[0];
		}
	}
	int stdio[3] = { child_fds[0], s->interactive ? child_fds[0] : child_fds[1],
			 s->interactive ? child_fds[0] : child_fds[2] };
	pid_t inner;
	if (exec_start(s, stdio, s->interactive, &pid, &inner, err) < 0)
		goto out;
	pthread_mutex_lock(&s->lock);
	s->inner_pid = inner;
	pthread_mutex_unlock(&s->lock);
	/* Only the command holds its ends now: EOF/EIO comes when it (and its children) exit. */
	close_fds(child_fds, 3);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		error_sys(err, errno, "pidfd_open %d", (int)pid);
		kill(pid, SIGKILL);
		wait_exit_code(pid);
		goto out;
	}
	fcntl(our_fds[0], F_SETFL, fcntl(our_fds[0], F_GETFL) | O_NONBLOCK);
	if (pthread_create(&control, NULL, control_thread, s) == 0)
		control_started = true;

	if (s->interactive) {
		struct relay_output outs[1] = { { our_fds[0], s->ws[SLOT_STDIN] } };
		relay(s, pid, pidfd, outs, 1, our_fds[0], s->ws[SLOT_STDIN], &exit_code);
	} else {
		struct relay_output outs[2] = { { our_fds[1], s->ws[SLOT_STDOUT] }, { our_fds[2], s->ws[SLOT_STDERR] } };
		relay(s, pid, pidfd, outs, 2, our_fds[0], s->ws[SLOT_STDIN], &exit_code);
		our_fds[0] = -1; /* closed by relay */
	}
	/* The end of each output stream, then the exit code. */
	for (int i = SLOT_STDIN; i <= SLOT_STDERR; i++) {
		if (s->ws[i] == NULL || (i == SLOT_STDIN && !s->interactive))
			continue;
		cleanup_error struct ferry_error *e = NULL;
		ws_send(s->ws[i], WS_TEXT, "", 0, &e);
	}
	operation_set_metadata(op, json_pack("{s:i}", "return", exit_code));
	ret = 0;
out:
	pthread_mutex_lock(&s->lock);
	s->stop_control = true;
	/* Wake the control thread out of its wait for a message at once (its
	 * recv sees end-of-file); the close frame still goes out afterwards. */
	if (s->ws[SLOT_CONTROL] != NULL)
		shutdown(ws_fd(s->ws[SLOT_CONTROL]), SHUT_RD);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (control_started)
		pthread_join(control, NULL);
	close_fds(child_fds, 3);
	close_fds(our_fds, 3);
	if (pidfd >= 0)
		close(pidfd);
	pthread_mutex_lock(&s->lock);
	s->finished = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- the request ------------------------------------------------------- */

static struct response *exec_post(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	json_t *body = req->body;
	if (!json_is_object(body))
		return response_error(400, "Invalid request: expected a JSON object");
	json_t *command = json_object_get(body, "command");
	if (!json_is_array(command) || json_array_size(command) == 0)
		return response_error(400, "Invalid command: expected a non-empty list of strings");
	json_t *env = json_object_get(body, "environment");
	if (env != NULL && !json_is_null(env) && !json_is_object(env))
		return response_error(400, "Invalid environment: expected an object of strings");
	json_t *cwd = json_object_get(body, "cwd");
	if (cwd != NULL && !json_is_string(cwd))
		return response_error(400, "Invalid cwd: expected a string");

	struct runtime_state st;
	if (instance_runtime_state(name, &st, &err) < 0)
		return response_from_error(err);
	json_t *obj = NULL;
	if (instance_to_json(name, 0, &obj, &err) < 0)
		return response_from_error(err);
	json_decref(obj);
	if (st.status == RUNTIME_STOPPED)
		return response_error(400, "Instance is not running");
	if (st.status == RUNTIME_FROZEN)
		return response_error(400, "Instance is frozen");

	struct exec_session *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->pty_master = -1;
	s->name = xstrdup(name);
	s->argv = xcalloc(json_array_size(command) + 1, sizeof(char *));
	size_t i;
	json_t *arg;
	json_array_foreach(command, i, arg) {
		if (!json_is_string(arg)) {
			exec_session_free(s);
			return response_error(400, "Invalid command: expected a non-empty list of strings");
		}
		s->argv[i] = xstrdup(json_string_value(arg));
	}
	s->uid = (uid_t)json_integer_value(json_object_get(body, "user"));
	s->gid = (gid_t)json_integer_value(json_object_get(body, "group"));
	const char *cwd_value = json_string_value(cwd);
	s->cwd = xstrdup(cwd_value != NULL && cwd_value[0] != '\0' ? cwd_value : NULL);
	s->interactive = json_is_true(json_object_get(body, "interactive"));
	s->record_output = json_is_true(json_object_get(body, "record-output"));
	s->width = (int)json_integer_value(json_object_get(body, "width"));
	s->height = (int)json_integer_value(json_object_get(body, "height"));
	s->env = instance_exec_environment(name, env, s->uid, &err);
	if (s->env == NULL) {
		exec_session_free(s);
		return response_from_error(err);
	}

	if (!json_is_true(json_object_get(body, "wait-for-websocket")))
		return instance_operation_respond(false, "Executing command", name, NULL, exec_run_recorded, NULL, s,
						  exec_session_free);

	json_t *fds = json_object();
	for (int slot = 0; slot < N_SLOTS; slot++) {
		if (s->interactive && (slot == SLOT_STDOUT || slot == SLOT_STDERR))
			continue;
		s->secrets[slot] = instance_new_secret();
		json_object_set_new(fds, slot_names[slot], json_string(s->secrets[slot]));
	}
	json_t *meta = json_pack("{s:o,s:O,s:o,s:b}", "fds", fds, "command", command, "environment",
				 json_is_object(env) ? json_incref(env) : json_object(), "interactive", s->interactive);
	return instance_operation_respond(true, "Executing command", name, meta, exec_run_websocket, exec_connect, s,
					  exec_session_free);
}

const struct route api_instance_exec_routes[] = {
	{ "POST", "/1.0/instances/{name}/exec", exec_post },
	{ NULL },
};
