/* Instance snapshots (stateless and stateful) and local copies. */
#include "daemon/snapshots.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/db.h"
#include "daemon/db_snapshots.h"
#include "daemon/events.h"
#include "daemon/instance.h"
#include "daemon/profiles.h"
#include "runtime/network.h"

/* LXD's "no expiry". */
#define NO_EXPIRY "0001-01-01T00:00:00Z"

extern char **environ;

char *snapshot_dir(const char *instance, const char *snap)
{
	return xasprintf("%s/%s/snapshots/%s", daemon_ctx->containers_dir, instance, snap);
}

static char *snapshot_url(const char *instance, const char *snap)
{
	return xasprintf("/1.0/instances/%s/snapshots/%s", instance, snap);
}

static void snapshot_lifecycle(const char *action, const char *instance, const char *snap, json_t *context)
{
	cleanup_free char *url = snapshot_url(instance, snap);
	events_lifecycle(action, url, context);
}

static char *now_rfc3339(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return time_rfc3339(&ts);
}

int snapshot_name_validate(const char *name, struct ferry_error **err)
{
	if (name == NULL || name[0] == '\0')
		return error_bad_request(err, "Invalid snapshot name: it must not be empty");
	if (strchr(name, '/') != NULL)
		return error_bad_request(err, "Invalid snapshot name \"%s\": snapshot names may not contain slashes", name);
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strlen(name) > 255)
		return error_bad_request(err, "Invalid snapshot name \"%s\"", name);
	for (const char *p = name; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return error_bad_request(err, "Invalid snapshot name \"%s\": no white space allowed", name);
	return 0;
}

char *snapshot_next_name(const char *instance)
{
	for (int i = 0;; i++) {
		char *name = xasprintf("snap%d", i);
		struct db_snapshot snap = { 0 };
		cleanup_error struct ferry_error *e = NULL;
		if (db_snapshot_get(daemon_ctx->db, instance, name, &snap, &e) < 0)
			return name;
		db_snapshot_clear(&snap);
		free(name);
	}
}

/* An expiry as given by a client: RFC 3339, null, "" or Go's zero time. */
static int parse_expiry(json_t *v, char **out, struct ferry_error **err)
{
	if (v == NULL || json_is_null(v)) {
		*out = xstrdup(NO_EXPIRY);
		return 0;
	}
	const char *s = json_string_value(v);
	if (s == NULL)
		return error_bad_request(err, "Invalid expires_at: expected an RFC 3339 time");
	if (s[0] == '\0' || strncmp(s, "0001-01-01", 10) == 0) {
		*out = xstrdup(NO_EXPIRY);
		return 0;
	}
	struct tm tm = { 0 };
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return error_bad_request(err, "Invalid expires_at \"%s\": expected an RFC 3339 time", s);
	*out = xstrdup(s);
	return 0;
}

/* ---- copying trees ------------------------------------------------------ */

/* True if every line of cp's errors (C locale) is a file that vanished:
 * cp found it by reading its directory, so "No such file or directory"
 * can only mean it went meanwhile. */
static bool only_vanished(const char *msg, size_t *n)
{
	*n = 0;
	for (const char *line = msg; *line;) {
		size_t len = strcspn(line, "\n");
		static const char tail[] = ": No such file or directory";
		if (len > 0) {
			if (len < sizeof(tail) - 1 || memcmp(line + len - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0)
				return false;
			(*n)++;
		}
		line += len + (line[len] == '\n');
	}
	return *n > 0;
}

/* cp -a (owners, modes, times, xattrs, hard links within the tree, device
 * nodes) with reflinks where the file system has them. dst must not exist.
 * live: src is a running instance's rootfs, whose files may go while they
 * are copied (as LXD's rsync, which ignores vanished files): those are not
 * an error. */
static int copy_tree(const char *src, const char *dst, bool live, struct ferry_error **err)
{
	int pipe_fds[2];
	if (pipe2(pipe_fds, O_CLOEXEC) < 0)
		return error_sys(err, errno, "pipe");
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
	char *argv[] = { "cp", "-a", "--reflink=auto", "--", (char *)src, (char *)dst, NULL };
	char *c_locale[] = { "LC_ALL=C", NULL };
	char **envp = environ_without("LC_ALL=", c_locale);
	pid_t pid;
	int r = posix_spawnp(&pid, "cp", &actions, NULL, argv, envp);
	free(envp);
	posix_spawn_file_actions_destroy(&actions);
	close(pipe_fds[1]);
	if (r != 0) {
		close(pipe_fds[0]);
		return error_sys(err, r, "run cp");
	}
	/* All of its errors (a live tree's vanished files are each a line). */
	enum { MSG_MAX = 1 << 20 };
	char *msg = xcalloc(1, MSG_MAX);
	size_t n = 0;
	for (;;) {
		char sink[512];
		bool full = n == MSG_MAX - 1;
		ssize_t got = full ? read(pipe_fds[0], sink, sizeof(sink)) : read(pipe_fds[0], msg + n, MSG_MAX - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		if (!full)
			n += (size_t)got;
	}
	msg[n] = '\0';
	close(pipe_fds[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			free(msg);
			return error_sys(err, errno, "wait for cp");
		}
	size_t vanished = 0;
	if (live && WIFEXITED(status) && WEXITSTATUS(status) == 1 && n < MSG_MAX - 1 && only_vanished(msg, &vanished)) {
		log_info("copy %s to %s: %zu files went while it was copied", src, dst, vanished);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		msg[strcspn(msg, "\n")] = '\0';
		r = error_set(err, 500, EIO, "copy %s to %s: %s", src, dst, msg[0] ? msg : "cp failed");
	}
	free(msg);
	return r == 0 ? 0 : -1;
}

static long long tree_bytes;
static int tree_size_visit(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path, (void)flag, (void)ftw;
	tree_bytes += (long long)st->st_blocks * 512;
	return 0;
}

/* Disk usage of a tree (du). nftw keeps its state in a global: serialised. */
static long long tree_size(const char *path)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&lock);
	tree_bytes = 0;
	nftw(path, tree_size_visit, 32, FTW_PHYS | FTW_MOUNT);
	long long n = tree_bytes;
	pthread_mutex_unlock(&lock);
	return n;
}

/* ---- JSON --------------------------------------------------------------- */

static json_t *snapshot_json(const struct db_snapshot *s)
{
	json_t *config = NULL, *devices = NULL;
	profiles_expand(s->profiles, s->config, s->devices, NULL, &config, &devices);
	return json_pack("{s:s,s:s,s:O,s:O,s:O,s:o,s:o,s:b,s:b,s:s,s:s,s:s,s:s,s:I}",
			 "name", s->name,
			 "architecture", s->architecture,
			 "config", s->config,
			 "devices", s->devices,
			 "profiles", s->profiles,
			 "expanded_config", config,
			 "expanded_devices", devices,
			 "ephemeral", s->ephemeral,
			 "stateful", s->stateful,
			 "description", s->description ? s->description : "",
			 "created_at", s->created_at,
			 "expires_at", s->expires_at && s->expires_at[0] ? s->expires_at : NO_EXPIRY,
			 "last_used_at", s->last_used_at && s->last_used_at[0] ? s->last_used_at : "1970-01-01T00:00:00Z",
			 "size", (json_int_t)s->size);
}

static int snapshot_get(const char *instance, const char *snap, struct db_snapshot *out, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(instance, &inst, err) < 0)
		return -1;
	db_instance_clear(&inst);
	if (db_snapshot_get(daemon_ctx->db, instance, snap, out, err) < 0) {
		if ((*err)->status == 404) {
			error_free(err);
			return error_not_found(err, "Snapshot \"%s\" of instance \"%s\" not found", snap, instance);
		}
		return error_wrap(err, "snapshot \"%s/%s\"", instance, snap);
	}
	return 0;
}

int snapshot_to_json(const char *instance, const char *snap, json_t **out, struct ferry_error **err)
{
	struct db_snapshot s = { 0 };
	if (snapshot_get(instance, snap, &s, err) < 0)
		return -1;
	*out = snapshot_json(&s);
	db_snapshot_clear(&s);
	return 0;
}

json_t *snapshots_to_json(const char *instance)
{
	json_t *out = json_array();
	json_t *names = NULL;
	cleanup_error struct ferry_error *e = NULL;
	if (db_snapshot_list(daemon_ctx->db, instance, &names, &e) < 0)
		return out;
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		struct db_snapshot s = { 0 };
		if (db_snapshot_get(daemon_ctx->db, instance, json_string_value(n), &s, &e) < 0) {
			error_free(&e);
			continue;
		}
		json_array_append_new(out, snapshot_json(&s));
		db_snapshot_clear(&s);
	}
	json_decref(names);
	return out;
}

json_t *snapshots_urls(const char *instance)
{
	json_t *out = json_array();
	json_t *names = NULL;
	cleanup_error struct ferry_error *e = NULL;
	if (db_snapshot_list(daemon_ctx->db, instance, &names, &e) < 0)
		return out;
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		cleanup_free char *url = snapshot_url(instance, json_string_value(n));
		json_array_append_new(out, json_string(url));
	}
	json_decref(names);
	return out;
}

static void write_config_json(const struct db_snapshot *s)
{
	cleanup_free char *dir = snapshot_dir(s->instance, s->name);
	cleanup_free char *path = xasprintf("%s/config.json", dir);
	json_t *obj = snapshot_json(s);
	char *text = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
	cleanup_error struct ferry_error *e = NULL;
	if (text == NULL || file_write_atomic(path, text, strlen(text), 0600, &e) < 0)
		log_warn("snapshot %s/%s: writing %s: %s", s->instance, s->name, path, e ? e->msg : "out of memory");
	free(text);
	json_decref(obj);
}

/* ---- create, delete, rename, update ------------------------------------- */

int snapshot_create(const char *instance, const char *snap, bool stateful, const char *expires_at,
		    struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	struct db_snapshot s = { 0 };
	struct runtime_state st;
	cleanup_free char *dir = snapshot_dir(instance, snap);
	cleanup_free char *instance_directory = instance_dir(instance);
	cleanup_free char *rootfs = instance_rootfs(instance);
	cleanup_free char *snap_rootfs = xasprintf("%s/rootfs", dir);
	cleanup_free char *snap_state = xasprintf("%s/state", dir);
	cleanup_free char *parent = xasprintf("%s/snapshots", instance_directory);
	cleanup_free char *log_path = NULL;
	bool dir_created = false, we_froze = false;
	int ret = -1;

	if (snapshot_name_validate(snap, err) < 0)
		return -1;
	if (instance_get(instance, &inst, err) < 0)
		return -1;
	struct db_snapshot existing = { 0 };
	cleanup_error struct ferry_error *missing = NULL;
	if (db_snapshot_get(daemon_ctx->db, instance, snap, &existing, &missing) == 0) {
		db_snapshot_clear(&existing);
		error_conflict(err, "Snapshot \"%s\" already exists", snap);
		goto out;
	}
	if (instance_runtime_state(instance, &st, err) < 0)
		goto out;
	if (stateful) {
		if (st.status == RUNTIME_STOPPED) {
			error_bad_request(err, "Unable to create a stateful snapshot: the instance isn't running");
			goto out;
		}
		if (instance_checkpoint_check(instance, "snapshot --stateful", err) < 0)
			goto out;
	}
	if (instance_images_dir_make(instance, parent, err) < 0)
		goto out;
	if (mkdir(dir, 0700) < 0) {
		error_sys(err, errno, "mkdir %s", dir);
		goto out;
	}
	dir_created = true;
	if (instance_images_dir_make(instance, dir, err) < 0)
		goto out;

	if (stateful) {
		/* The rootfs and the memory at one instant: frozen for both. */
		long long t0 = now_ms();
		if (st.status == RUNTIME_RUNNING) {
			if (runtime_freeze(instance_directory, err) < 0)
				goto out;
			we_froze = true;
		}
		if (copy_tree(rootfs, snap_rootfs, true, err) < 0)
			goto out;
		cleanup_free char *log_dir = instance_log_dir(instance);
		if (instance_images_dir_make(instance, snap_state, err) < 0)
			goto out;
		if (mkdir_p(log_dir, 0700, err) < 0)
			goto out;
		log_path = checkpoint_log_path(log_dir, "snapshot", "dump");
		struct runtime_checkpoint_opts o = { .images_dir = snap_state, .log_path = log_path, .leave_running = true };
		if (runtime_checkpoint(instance, instance_directory, &o, err) < 0) {
			error_wrap(err, "the instance keeps running");
			goto out;
		}
		if (we_froze) {
			we_froze = false;
			if (runtime_unfreeze(instance_directory, err) < 0)
				goto out;
		}
		log_info("instance %s: stateful snapshot %s in %lld ms", instance, snap, now_ms() - t0);
	} else if (copy_tree(rootfs, snap_rootfs, true, err) < 0) {
		goto out;
	}

	s.instance = xstrdup(instance);
	s.name = xstrdup(snap);
	s.description = xstrdup("");
	s.stateful = stateful;
	s.ephemeral = inst.ephemeral;
	s.architecture = xstrdup(inst.architecture);
	s.created_at = now_rfc3339();
	s.expires_at = xstrdup(expires_at && expires_at[0] ? expires_at : NO_EXPIRY);
	s.last_used_at = xstrdup("1970-01-01T00:00:00Z");
	s.config = json_deep_copy(inst.config);
	s.devices = json_deep_copy(inst.devices);
	s.profiles = json_deep_copy(inst.profiles);
	s.size = tree_size(dir);
	if (db_snapshot_create(daemon_ctx->db, &s, err) < 0)
		goto out;
	write_config_json(&s);
	ret = 0;
	log_info("instance %s: snapshot %s taken (%s)", instance, snap, stateful ? "stateful" : "stateless");
	snapshot_lifecycle("instance-snapshot-created", instance, snap, NULL);
out:
	if (we_froze) {
		cleanup_error struct ferry_error *e = NULL;
		if (runtime_unfreeze(instance_directory, &e) < 0)
			log_error("instance %s: thaw after a failed snapshot: %s", instance, e->msg);
	}
	if (ret < 0 && dir_created) {
		cleanup_error struct ferry_error *e = NULL;
		if (rm_rf(dir, &e) < 0)
			log_error("instance %s: cleaning up %s: %s", instance, dir, e->msg);
	}
	if (ret < 0)
		error_wrap(err, "snapshot%s \"%s/%s\"", stateful ? " --stateful" : "", instance, snap);
	db_instance_clear(&inst);
	db_snapshot_clear(&s);
	return ret;
}

int snapshot_delete(const char *instance, const char *snap, struct ferry_error **err)
{
	struct db_snapshot s = { 0 };
	if (snapshot_get(instance, snap, &s, err) < 0)
		return -1;
	db_snapshot_clear(&s);
	cleanup_free char *dir = snapshot_dir(instance, snap);
	/* The row first: a snapshot half on disk is no snapshot. */
	if (db_snapshot_delete(daemon_ctx->db, instance, snap, err) < 0 || rm_rf(dir, err) < 0)
		return error_wrap(err, "delete snapshot \"%s/%s\"", instance, snap);
	log_info("instance %s: snapshot %s deleted", instance, snap);
	snapshot_lifecycle("instance-snapshot-deleted", instance, snap, NULL);
	return 0;
}

int snapshot_rename(const char *instance, const char *snap, const char *new_name, struct ferry_error **err)
{
	struct db_snapshot s = { 0 };
	if (snapshot_name_validate(new_name, err) < 0)
		return -1;
	if (snapshot_get(instance, snap, &s, err) < 0)
		return -1;
	db_snapshot_clear(&s);
	cleanup_free char *dir = snapshot_dir(instance, snap);
	cleanup_free char *new_dir = snapshot_dir(instance, new_name);
	if (db_snapshot_rename(daemon_ctx->db, instance, snap, new_name, err) < 0)
		return error_wrap(err, "rename snapshot \"%s/%s\"", instance, snap);
	if (rename(dir, new_dir) < 0) {
		int e = errno;
		cleanup_error struct ferry_error *undo = NULL;
		db_snapshot_rename(daemon_ctx->db, instance, new_name, snap, &undo);
		return error_sys(err, e, "rename snapshot \"%s/%s\": rename %s", instance, snap, dir);
	}
	if (db_snapshot_get(daemon_ctx->db, instance, new_name, &s, err) == 0) {
		write_config_json(&s);
		db_snapshot_clear(&s);
	}
	error_free(err);
	log_info("instance %s: snapshot %s renamed to %s", instance, snap, new_name);
	snapshot_lifecycle("instance-snapshot-renamed", instance, new_name, json_pack("{s:s}", "old_name", snap));
	return 0;
}

int snapshot_update(const char *instance, const char *snap, json_t *body, struct ferry_error **err)
{
	struct db_snapshot s = { 0 };
	if (!json_is_object(body))
		return error_bad_request(err, "Invalid request: expected a JSON object");
	json_t *description = json_object_get(body, "description");
	json_t *expires = json_object_get(body, "expires_at");
	if (description != NULL && !json_is_string(description) && !json_is_null(description))
		return error_bad_request(err, "Invalid description: expected a string");
	cleanup_free char *expiry = NULL;
	if (expires != NULL && parse_expiry(expires, &expiry, err) < 0)
		return -1;
	if (snapshot_get(instance, snap, &s, err) < 0)
		return -1;
	if (json_is_string(description)) {
		free(s.description);
		s.description = xstrdup(json_string_value(description));
	}
	if (expiry != NULL) {
		free(s.expires_at);
		s.expires_at = steal_pointer(&expiry);
	}
	int r = db_snapshot_update(daemon_ctx->db, &s, err);
	if (r == 0) {
		write_config_json(&s);
		snapshot_lifecycle("instance-snapshot-updated", instance, snap, NULL);
	} else {
		error_wrap(err, "update snapshot \"%s/%s\"", instance, snap);
	}
	db_snapshot_clear(&s);
	return r;
}

int snapshot_parse_expiry(json_t *v, char **out, struct ferry_error **err)
{
	return parse_expiry(v, out, err);
}

/* ---- restore ------------------------------------------------------------ */

/* The snapshot's config with the instance's own volatile keys (its MAC,
 * address, idmap and power state stay its own). */
static json_t *restored_config(json_t *snap_config, json_t *current)
{
	json_t *config = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(snap_config, key, v) {
		if (strncmp(key, "volatile.", 9) != 0)
			json_object_set(config, key, v);
	}
	json_object_foreach(current, key, v) {
		if (strncmp(key, "volatile.", 9) == 0)
			json_object_set(config, key, v);
	}
	return config;
}

int snapshot_restore(const char *instance, const char *snap, bool stateful, struct ferry_error **err)
{
	struct db_snapshot s = { 0 };
	struct db_instance inst = { 0 };
	cleanup_free char *dir = snapshot_dir(instance, snap);
	cleanup_free char *snap_rootfs = xasprintf("%s/rootfs", dir);
	cleanup_free char *snap_state = xasprintf("%s/state", dir);
	cleanup_free char *rootfs = instance_rootfs(instance);
	cleanup_free char *rootfs_new = xasprintf("%s.restore-new", rootfs);
	cleanup_free char *rootfs_old = xasprintf("%s.restore-old", rootfs);
	int ret = -1;
	/* Declared before the first goto: cleanup must never see it uninitialised. */
	cleanup_error struct ferry_error *ignored = NULL;

	if (snapshot_get(instance, snap, &s, err) < 0)
		return -1;
	if (stateful && !s.stateful) {
		error_bad_request(err, "Snapshot \"%s\" is stateless: it has no processes to restore", snap);
		goto out;
	}
	if (instance_is_running(instance)) {
		/* Cut the wire first: the killed processes' sockets would send
		 * FIN/RST to their peers, and connections that the snapshot's
		 * processes hold (unchanged since) could not resume. */
		if (stateful)
			instance_cut_host_veths(instance);
		if (instance_stop_forced(instance, err) < 0)
			goto out;
	}
	if (instance_discard_state(instance, err) < 0)
		goto out;

	/* Copy aside first, then swap: a failed copy leaves the rootfs as it was. */
	rm_rf(rootfs_new, &ignored);
	rm_rf(rootfs_old, &ignored);
	if (copy_tree(snap_rootfs, rootfs_new, false, err) < 0)
		goto out;
	if (rename(rootfs, rootfs_old) < 0) {
		error_sys(err, errno, "rename %s", rootfs);
		rm_rf(rootfs_new, &ignored);
		goto out;
	}
	if (rename(rootfs_new, rootfs) < 0) {
		error_sys(err, errno, "rename %s", rootfs_new);
		rename(rootfs_old, rootfs);
		rm_rf(rootfs_new, &ignored);
		goto out;
	}
	if (rm_rf(rootfs_old, &ignored) < 0)
		log_warn("instance %s: removing the replaced rootfs: %s", instance, ignored->msg);

	if (instance_get(instance, &inst, err) < 0)
		goto out;
	json_t *config = restored_config(s.config, inst.config);
	json_decref(inst.config);
	inst.config = config;
	json_decref(inst.devices);
	inst.devices = json_deep_copy(s.devices);
	json_decref(inst.profiles);
	inst.profiles = json_deep_copy(s.profiles);
	inst.ephemeral = s.ephemeral;
	if (db_instance_update(daemon_ctx->db, &inst, err) < 0)
		goto out;
	log_info("instance %s: rootfs and config restored from snapshot %s", instance, snap);

	if (stateful && instance_start_mode(instance, INSTANCE_START_DEFAULT, snap_state, "snapshot", err) < 0)
		goto out;
	ret = 0;
	snapshot_lifecycle("instance-snapshot-restored", instance, snap, NULL);
out:
	if (ret < 0)
		error_wrap(err, "restore instance \"%s\" from snapshot \"%s\"", instance, snap);
	db_snapshot_clear(&s);
	db_instance_clear(&inst);
	return ret;
}

/* ---- copies ------------------------------------------------------------- */

/* "c1" or "c1/s1" */
static int split_source(const char *source, char **instance, char **snap, struct ferry_error **err)
{
	if (source == NULL || source[0] == '\0')
		return error_bad_request(err, "Invalid source: a copy needs \"source\": \"NAME\" or \"NAME/SNAPSHOT\"");
	const char *slash = strchr(source, '/');
	*instance = slash ? strndup(source, (size_t)(slash - source)) : xstrdup(source);
	*snap = slash ? xstrdup(slash + 1) : NULL;
	return 0;
}

int instance_copy_check(const struct instance_copy_args *args, struct ferry_error **err)
{
	cleanup_free char *src = NULL, *src_snap = NULL;
	if (instance_name_validate(args->name, err) < 0)
		return -1;
	if (split_source(args->source, &src, &src_snap, err) < 0)
		return -1;
	struct db_instance inst = { 0 };
	if (instance_get(src, &inst, err) < 0)
		return -1;
	db_instance_clear(&inst);
	if (src_snap != NULL) {
		struct db_snapshot s = { 0 };
		if (snapshot_get(src, src_snap, &s, err) < 0)
			return -1;
		db_snapshot_clear(&s);
	}
	if (instance_get(args->name, &inst, err) == 0) {
		db_instance_clear(&inst);
		return error_conflict(err, "Instance \"%s\" already exists", args->name);
	}
	error_free(err);
	if (args->profiles != NULL && !json_is_null(args->profiles) && profiles_check_exist(args->profiles, err) < 0)
		return -1;
	return 0;
}

/* The copy's config: the request's or the source's, without the source's
 * volatile keys but those the rootfs on disk depends on. */
static json_t *copy_config(json_t *requested, json_t *source)
{
	json_t *config = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(json_is_object(requested) ? requested : source, key, v) {
		if (strncmp(key, "volatile.", 9) != 0)
			json_object_set(config, key, v);
	}
	static const char *const kept[] = { "volatile.base_image", "volatile.idmap.base" };
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		json_t *k = json_object_get(source, kept[i]);
		if (k != NULL)
			json_object_set(config, kept[i], k);
	}
	json_object_set_new(config, "volatile.last_state.power", json_string("STOPPED"));
	return config;
}

/* Copy the snapshots of src to dst (stateless: CRIU images name the
 * source's MAC and address). */
static int copy_snapshots(const char *src, const char *dst, struct ferry_error **err)
{
	json_t *names = NULL;
	if (db_snapshot_list(daemon_ctx->db, src, &names, err) < 0)
		return -1;
	int ret = 0;
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		const char *name = json_string_value(n);
		struct db_snapshot s = { 0 };
		if (db_snapshot_get(daemon_ctx->db, src, name, &s, err) < 0) {
			ret = -1;
			break;
		}
		cleanup_free char *from = snapshot_dir(src, name);
		cleanup_free char *to = snapshot_dir(dst, name);
		cleanup_free char *from_rootfs = xasprintf("%s/rootfs", from);
		cleanup_free char *to_rootfs = xasprintf("%s/rootfs", to);
		if (mkdir_p(to, 0700, err) < 0 || copy_tree(from_rootfs, to_rootfs, false, err) < 0) {
			db_snapshot_clear(&s);
			ret = -1;
			break;
		}
		free(s.instance);
		s.instance = xstrdup(dst);
		s.stateful = false;
		json_t *config = copy_config(s.config, s.config);
		json_decref(s.config);
		s.config = config;
		s.size = tree_size(to);
		ret = db_snapshot_create(daemon_ctx->db, &s, err);
		if (ret == 0)
			write_config_json(&s);
		db_snapshot_clear(&s);
		if (ret < 0)
			break;
	}
	json_decref(names);
	return ret;
}

int instance_copy(const struct instance_copy_args *args, struct ferry_error **err)
{
	cleanup_free char *src = NULL, *src_snap = NULL;
	struct db_instance source = { 0 };
	struct db_snapshot snap = { 0 };
	struct db_instance inst = { 0 };
	cleanup_free char *dir = instance_dir(args->name);
	cleanup_free char *rootfs = instance_rootfs(args->name);
	cleanup_free char *logs = instance_logs_dir(args->name);
	cleanup_free char *src_rootfs = NULL;
	bool db_created = false, dir_created = false;
	int ret = -1;

	if (instance_copy_check(args, err) < 0)
		return -1;
	split_source(args->source, &src, &src_snap, err);
	if (instance_get(src, &source, err) < 0)
		return -1;
	json_t *src_config = source.config, *src_devices = source.devices, *src_profiles = source.profiles;
	const char *src_arch = source.architecture;
	if (src_snap != NULL) {
		if (snapshot_get(src, src_snap, &snap, err) < 0)
			goto out;
		src_config = snap.config;
		src_devices = snap.devices;
		src_profiles = snap.profiles;
		src_arch = snap.architecture;
		cleanup_free char *sdir = snapshot_dir(src, src_snap);
		src_rootfs = xasprintf("%s/rootfs", sdir);
	} else {
		src_rootfs = instance_rootfs(src);
	}

	inst.name = xstrdup(args->name);
	inst.type = xstrdup("container");
	inst.architecture = xstrdup(src_arch);
	inst.description = xstrdup(args->description ? args->description : source.description);
	inst.ephemeral = args->ephemeral;
	inst.created_at = now_rfc3339();
	inst.last_used_at = xstrdup("1970-01-01T00:00:00Z");
	inst.config = copy_config(args->config, src_config);
	inst.devices = json_deep_copy(json_is_object(args->devices) ? args->devices : src_devices);
	inst.profiles = json_deep_copy(json_is_array(args->profiles) ? args->profiles : src_profiles);
	if (instance_record_create(&inst, err) < 0)
		goto out;
	db_created = true;

	if (mkdir_p(daemon_ctx->containers_dir, 0711, err) < 0)
		goto out;
	if (mkdir(dir, 0711) < 0) {
		error_sys(err, errno, "mkdir %s", dir);
		goto out;
	}
	dir_created = true;
	if (mkdir(logs, 0700) < 0) {
		error_sys(err, errno, "mkdir %s", logs);
		goto out;
	}
	if (copy_tree(src_rootfs, rootfs, src_snap == NULL, err) < 0)
		goto out;
	if (src_snap == NULL && !args->instance_only && copy_snapshots(src, args->name, err) < 0)
		goto out;
	ret = 0;
	log_info("instance %s: copied from %s", args->name, args->source);
	char *url = instance_url(args->name);
	events_lifecycle("instance-created", url, NULL);
	free(url);
out:
	if (ret < 0) {
		cleanup_error struct ferry_error *e = NULL;
		if (dir_created && rm_rf(dir, &e) < 0)
			log_error("instance %s: cleaning up %s: %s", args->name, dir, e->msg);
		error_free(&e);
		if (db_created && db_instance_delete(daemon_ctx->db, args->name, &e) < 0)
			log_error("instance %s: cleaning up the DB row: %s", args->name, e->msg);
		error_wrap(err, "copy \"%s\" to \"%s\"", args->source, args->name);
	}
	db_instance_clear(&source);
	db_instance_clear(&inst);
	db_snapshot_clear(&snap);
	return ret;
}

/* ---- expiry ------------------------------------------------------------- */

/* An RFC 3339 time as seconds since the epoch; false for "never" (Go's zero
 * time) or what does not parse. */
static bool expiry_time(const char *s, time_t *out)
{
	if (s == NULL || s[0] == '\0' || strncmp(s, "0001-01-01", 10) == 0)
		return false;
	struct tm tm = { 0 };
	const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return false;
	if (*rest == '.')
		for (rest++; *rest >= '0' && *rest <= '9'; rest++)
			;
	long offset = 0;
	if (*rest == '+' || *rest == '-') {
		int hh = 0, mm = 0;
		if (sscanf(rest + 1, "%2d:%2d", &hh, &mm) != 2)
			return false;
		offset = (hh * 3600L + mm * 60L) * (*rest == '-' ? -1 : 1);
	} else if (*rest != 'Z' && *rest != 'z') {
		return false;
	}
	*out = timegm(&tm) - offset;
	return true;
}

int snapshots_prune_expired(void)
{
	json_t *instances = NULL;
	cleanup_error struct ferry_error *e = NULL;
	if (db_instance_list(daemon_ctx->db, &instances, &e) < 0) {
		log_warn("pruning expired snapshots: %s", e->msg);
		return 0;
	}
	time_t now = time(NULL);
	int pruned = 0;
	size_t i, j;
	json_t *inst, *snap;
	json_array_foreach(instances, i, inst) {
		const char *name = json_string_value(inst);
		json_t *snaps = NULL;
		if (db_snapshot_list(daemon_ctx->db, name, &snaps, &e) < 0) {
			error_free(&e);
			continue;
		}
		json_array_foreach(snaps, j, snap) {
			struct db_snapshot s = { 0 };
			time_t when;
			if (db_snapshot_get(daemon_ctx->db, name, json_string_value(snap), &s, &e) < 0) {
				error_free(&e);
				continue;
			}
			bool expired = expiry_time(s.expires_at, &when) && when <= now;
			db_snapshot_clear(&s);
			if (!expired)
				continue;
			instance_lock(name);
			if (snapshot_delete(name, json_string_value(snap), &e) < 0) {
				log_warn("pruning expired snapshots: %s", e->msg);
				error_free(&e);
			} else {
				log_info("instance %s: snapshot %s expired", name, json_string_value(snap));
				pruned++;
			}
			instance_unlock(name);
		}
		json_decref(snaps);
	}
	json_decref(instances);
	return pruned;
}

static void *prune_thread(void *arg)
{
	(void)arg;
	for (;;) {
		snapshots_prune_expired();
		sleep(SNAPSHOT_PRUNE_INTERVAL_S);
	}
	return NULL;
}

void snapshots_prune_start(void)
{
	pthread_t thread;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, prune_thread, NULL) != 0)
		log_error("could not start the expired-snapshot pruner");
	pthread_attr_destroy(&attr);
}
