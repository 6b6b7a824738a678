/* /1.0/instances/{name}/logs and /1.0/instances/{name}/console.
 *
 * Logs are the files in CONTAINERS/NAME/logs (exec output) and LOGDIR/NAME
 * (the runtime's logs). The console log is the monitor's console.log; the
 * console websocket relays the monitor's console socket. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/ws.h"
#include "daemon/daemon.h"
#include "daemon/instance.h"
#include "daemon/operations.h"
#include "daemon/request.h"

static bool instance_known(const char *name, struct ferry_error **err)
{
	json_t *obj = NULL;
	if (instance_to_json(name, 0, &obj, err) < 0)
		return false;
	json_decref(obj);
	return true;
}

static void list_dir_into(const char *name, const char *dir, json_t *urls)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		cleanup_free char *url = xasprintf("/1.0/instances/%s/logs/%s", name, de->d_name);
		json_array_append_new(urls, json_string(url));
	}
	closedir(d);
}

static struct response *logs_list(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	if (!instance_known(name, &err))
		return response_from_error(err);
	cleanup_free char *exec_logs = instance_logs_dir(name);
	cleanup_free char *runtime_logs = instance_log_dir(name);
	json_t *urls = json_array();
	list_dir_into(name, exec_logs, urls);
	list_dir_into(name, runtime_logs, urls);
	return response_sync(urls);
}

/* The path of log file `file` of instance name: in the exec logs, else the
 * runtime's. *exec_log says which. NULL with 400/404 in err. */
static char *log_path(const char *name, const char *file, bool *exec_log, struct ferry_error **err)
{
	if (!instance_known(name, err))
		return NULL;
	if (file[0] == '\0' || file[0] == '.' || strchr(file, '/') != NULL) {
		error_bad_request(err, "Invalid log file name \"%s\"", file);
		return NULL;
	}
	cleanup_free char *exec_logs = instance_logs_dir(name);
	cleanup_free char *runtime_logs = instance_log_dir(name);
	const char *dirs[2] = { exec_logs, runtime_logs };
	for (int i = 0; i < 2; i++) {
		char *path = xasprintf("%s/%s", dirs[i], file);
		struct stat st;
		if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			*exec_log = i == 0;
			return path;
		}
		free(path);
	}
	error_not_found(err, "Log file \"%s\" not found for instance \"%s\"", file, name);
	return NULL;
}

static struct response *log_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	bool exec_log;
	cleanup_free char *path = log_path(req->params[0], req->params[1], &exec_log, &err);
	if (path == NULL)
		return response_from_error(err);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		error_sys(&err, errno, "open %s", path);
		if (fd >= 0)
			close(fd);
		return response_from_error(err);
	}
	return response_fd(200, "application/octet-stream", fd, (size_t)st.st_size);
}

static struct response *log_delete(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	bool exec_log;
	cleanup_free char *path = log_path(req->params[0], req->params[1], &exec_log, &err);
	if (path == NULL)
		return response_from_error(err);
	/* The runtime's own logs stay: they explain failures. */
	if (!exec_log)
		return response_error(400, "Log file \"%s\" may not be deleted", req->params[1]);
	if (unlink(path) < 0 && errno != ENOENT) {
		error_sys(&err, errno, "delete %s", path);
		return response_from_error(err);
	}
	return response_sync(NULL);
}

static char *console_log_path(const char *name)
{
	return xasprintf("%s/%s/console.log", daemon_ctx->containers_dir, name);
}

static struct response *console_log_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	if (!instance_known(name, &err))
		return response_from_error(err);
	cleanup_free char *path = console_log_path(name);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return response_raw(200, "text/plain", xstrdup(""), 0);
		error_sys(&err, errno, "open %s", path);
		return response_from_error(err);
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		error_sys(&err, errno, "stat %s", path);
		return response_from_error(err);
	}
	return response_fd(200, "text/plain", fd, (size_t)st.st_size);
}

static struct response *console_log_delete(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	if (!instance_known(name, &err))
		return response_from_error(err);
	cleanup_free char *path = console_log_path(name);
	/* Truncate, not unlink: the monitor keeps writing to the same file. */
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT) {
		error_sys(&err, errno, "truncate %s", path);
		return response_from_error(err);
	}
	if (fd >= 0)
		close(fd);
	return response_sync(NULL);
}

/* ---- the console websocket --------------------------------------------- */

enum { CONSOLE_DATA, CONSOLE_CONTROL, N_CONSOLE_SLOTS };

struct console_session {
	char *name;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *secrets[N_CONSOLE_SLOTS];
	struct ws *ws[N_CONSOLE_SLOTS];
	bool finished;
	bool detach;  /* the client closed its control socket */
};

static void console_session_free(void *data)
{
	struct console_session *s = data;
	free(s->name);
	for (int i = 0; i < N_CONSOLE_SLOTS; i++)
		free(s->secrets[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

static void console_connect(struct operation *op, void *data, const char *secret, struct ws *ws)
{
	struct console_session *s = data;
	int slot = -1;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < N_CONSOLE_SLOTS; i++)
		if (strcmp(secret, s->secrets[i]) == 0)
			slot = i;
	if (slot < 0 || s->ws[slot] != NULL || s->finished) {
		pthread_mutex_unlock(&s->lock);
		ws_close(ws, 1000, "");
		ws_free(ws);
		return;
	}
	s->ws[slot] = ws;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);

	if (slot == CONSOLE_CONTROL) {
		/* Only window sizes come here (the console's size is the monitor's);
		 * its closing means the client detached. */
		for (;;) {
			pthread_mutex_lock(&s->lock);
			bool done = s->finished;
			pthread_mutex_unlock(&s->lock);
			if (done)
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
		}
		pthread_mutex_lock(&s->lock);
		s->detach = true;
		pthread_cond_broadcast(&s->cond);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_lock(&s->lock);
	while (!s->finished)
		pthread_cond_wait(&s->cond, &s->lock);
	s->ws[slot] = NULL;
	pthread_mutex_unlock(&s->lock);
	ws_close(ws, 1000, "");
	ws_free(ws);
}

static int console_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct console_session *s = data;
	int ret = -1;
	cleanup_close int console_fd = -1;
	cleanup_free char *dir = NULL;
	long long deadline = now_ms() + 10 * 60 * 1000;

	pthread_mutex_lock(&s->lock);
	while (s->ws[CONSOLE_DATA] == NULL) {
		if (operation_cancelled(op) || now_ms() > deadline) {
			pthread_mutex_unlock(&s->lock);
			error_set(err, 400, ECANCELED, "console of instance \"%s\": the client never connected", s->name);
			goto out;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	struct ws *ws = s->ws[CONSOLE_DATA];
	pthread_mutex_unlock(&s->lock);

	dir = instance_dir(s->name);
	if (runtime_console_attach(dir, &console_fd, err) < 0) {
		error_wrap(err, "console of instance \"%s\"", s->name);
		goto out;
	}
	char buf[16384];
	for (;;) {
		pthread_mutex_lock(&s->lock);
		bool detach = s->detach;
		pthread_mutex_unlock(&s->lock);
		if (detach)
			break;
		/* Messages already read from the socket don't show in poll: take them first. */
		bool closed = false;
		for (;;) {
			enum ws_opcode opcode;
			char *msg = NULL;
			size_t len = 0;
			cleanup_error struct ferry_error *e = NULL;
			int r = ws_recv(ws, &opcode, &msg, &len, 0, &e);
			if (r < 0 && e->errnum == ETIMEDOUT)
				break;
			if (r <= 0) {
				closed = true;
				break;
			}
			if (len > 0 && write(console_fd, msg, len) < 0) {
				free(msg);
				closed = true;
				break;
			}
			free(msg);
		}
		if (closed)
			break;
		struct pollfd pfds[2] = { { .fd = console_fd, .events = POLLIN }, { .fd = ws_fd(ws), .events = POLLIN } };
		int r = poll(pfds, 2, 200);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0 && pfds[0].revents != 0) {
			ssize_t n = read(console_fd, buf, sizeof(buf));
			if (n <= 0)
				break; /* the container stopped */
			cleanup_error struct ferry_error *e = NULL;
			if (ws_send(ws, WS_BINARY, buf, (size_t)n, &e) < 0)
				break;
		}
	}
	ret = 0;
out:
	pthread_mutex_lock(&s->lock);
	s->finished = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static struct response *console_post(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	json_t *body = req->body;
	if (body != NULL && !json_is_object(body))
		return response_error(400, "Invalid request: expected a JSON object");
	const char *type = json_string_value(json_object_get(body, "type"));
	if (type != NULL && type[0] != '\0' && strcmp(type, "console") != 0)
		return response_error(400, "Unknown console type \"%s\"", type);
	struct runtime_state st;
	if (!instance_known(name, &err) || instance_runtime_state(name, &st, &err) < 0)
		return response_from_error(err);
	if (st.status == RUNTIME_STOPPED)
		return response_error(400, "Instance is not running");

	struct console_session *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->name = xstrdup(name);
	s->secrets[CONSOLE_DATA] = instance_new_secret();
	s->secrets[CONSOLE_CONTROL] = instance_new_secret();
	json_t *meta = json_pack("{s:{s:s,s:s}}", "fds", "0", s->secrets[CONSOLE_DATA], "control",
				 s->secrets[CONSOLE_CONTROL]);
	return instance_operation_respond(true, "Showing console", name, meta, console_run, console_connect, s,
					  console_session_free);
}

const struct route api_instance_logs_routes[] = {
	{ "GET", "/1.0/instances/{name}/logs", logs_list },
	{ "GET", "/1.0/instances/{name}/logs/{file}", log_get },
	{ "DELETE", "/1.0/instances/{name}/logs/{file}", log_delete },
	{ "GET", "/1.0/instances/{name}/console", console_log_get },
	{ "DELETE", "/1.0/instances/{name}/console", console_log_delete },
	{ "POST", "/1.0/instances/{name}/console", console_post },
	{ NULL },
};
