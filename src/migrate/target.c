/* The target side of a migration: pull from the source's operation. Dial
 * the streams, take the header, create the instance's record (keeping its
 * MAC and address when free here), unpack the rootfs shifted into this
 * host's idmap, and answer with the result; a live move then takes the
 * running instance over (migrate.h). Any failure removes whatever was made
 * here and tells the source, whose instance stays or runs again there. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/db.h"
#include "daemon/db_snapshots.h"
#include "daemon/instance.h"
#include "daemon/operations.h"
#include "daemon/profiles.h"
#include "daemon/request.h"
#include "daemon/snapshots.h"
#include "daemon/tls.h"
#include "image/image.h"
#include "migrate/channel.h"
#include "migrate/migrate.h"
#include "migrate/pages.h"

struct target_job {
	char *name;
	char *operation;   /* the source's operation URL */
	char *certificate; /* the source's server certificate (PEM) */
	char *secret_control, *secret_fs, *secret_state, *secret_pages, *secret_page_requests;
	int port;          /* the source's stream listener */
	bool live;
	json_t *config, *devices, *profiles; /* the request's, when given: override the source's */
};

static void target_job_free(void *data)
{
	struct target_job *job = data;
	free(job->name);
	free(job->operation);
	free(job->certificate);
	free(job->secret_control);
	free(job->secret_fs);
	free(job->secret_state);
	free(job->secret_pages);
	free(job->secret_page_requests);
	json_decref(job->config);
	json_decref(job->devices);
	json_decref(job->profiles);
	free(job);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* config without volatile.*: what a user may set, and what is checked. */
static json_t *config_user_keys(json_t *config)
{
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(config, key, v) {
		if (strncmp(key, "volatile.", 9) != 0)
			json_object_set(out, key, v);
	}
	return out;
}

/* The source's config, minus what belongs to its host: idmap, veth names,
 * power state. The MAC and address stay (the container keeps them when
 * they are free here). */
static json_t *config_for_target(json_t *config)
{
	json_t *out = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(config, key, v) {
		if (strncmp(key, "volatile.", 9) == 0) {
			bool keep = ends_with(key, ".hwaddr") || ends_with(key, ".ipv4.address");
			if (!keep || strncmp(key, "volatile.idmap.", 15) == 0)
				continue;
		}
		json_object_set(out, key, v);
	}
	return out;
}

/* Keys of volatile.* but volatile.base_image (which LXD's client keeps in
 * a copy). */
static bool has_volatile_keys(json_t *config)
{
	const char *key;
	json_t *v;
	json_object_foreach(config, key, v) {
		if (strncmp(key, "volatile.", 9) == 0 && strcmp(key, "volatile.base_image") != 0)
			return true;
	}
	return false;
}

/* A copy, not a move, when the client's config (LXD's and ferry's
 * clients strip volatile.* for a copy and keep them for a move) has none
 * of the source's volatile keys; without a config, a move. */
static bool request_is_copy(json_t *request_config, json_t *source_config)
{
	return json_is_object(request_config) && !has_volatile_keys(request_config) && has_volatile_keys(source_config);
}

/* The fs stream into a pipe that the unpacker reads, on its own thread.
 * It reads up to the empty end message even when the unpacker has stopped
 * (done, or failed): the source then hears our result, not a broken pipe. */
/* What the operation shows while streams come in ("fs_progress", which
 * `ferry move` draws): the stage, bytes so far and the rate. */
struct progress {
	struct operation *op;
	const char *stage;
	unsigned long long bytes;
	long long started_ms, reported_ms;
};

/* The same, structured, for clients that draw it (`ferry move`'s bar):
 * {"stage": S, "bytes": N, "bytes_per_second": R}. */
static void progress_publish(struct progress *p, double rate)
{
	operation_set_metadata_key(p->op, "progress",
				   json_pack("{s:s, s:I, s:I}", "stage", p->stage, "bytes", (json_int_t)p->bytes,
					     "bytes_per_second", (json_int_t)rate));
}

static void progress_stage(struct progress *p, const char *stage)
{
	p->stage = stage;
	operation_set_metadata_key(p->op, "fs_progress", json_string(stage));
	progress_publish(p, 0);
}

static void progress_add(struct progress *p, size_t n)
{
	long long now = now_ms();
	if (p->started_ms == 0)
		p->started_ms = now;
	p->bytes += n;
	if (now - p->reported_ms < 250)
		return;
	p->reported_ms = now;
	double secs = (double)(now - p->started_ms) / 1000.0;
	double rate = secs > 0 ? (double)p->bytes / secs / 1e6 : 0;
	operation_set_metadata_key(p->op, "fs_progress",
				   json_sprintf("%s: %.1f MB (%.1f MB/s)", p->stage, (double)p->bytes / 1e6, rate));
	progress_publish(p, rate * 1e6);
}

struct fs_pump {
	struct ws *ws;
	struct progress *progress;
	int fd;              /* the pipe's write end; closed by the pump */
	struct ferry_error *err;
	bool ended;          /* the end message arrived */
	int timeout_ms;      /* for each message */
	pthread_t thread;
};

static void *fs_pump_run(void *arg)
{
	struct fs_pump *p = arg;
	bool reader_gone = false;
	for (;;) {
		enum ws_opcode op;
		char *data = NULL;
		size_t len = 0;
		int r = ws_recv(p->ws, &op, &data, &len, p->timeout_ms, &p->err);
		if (r <= 0) {
			if (r < 0)
				error_wrap(&p->err, "receive the rootfs");
			else
				error_set(&p->err, 502, EPIPE, MIGRATE_STREAM_CLOSED_EARLY);
			break;
		}
		if (len == 0) {
			free(data);
			p->ended = true;
			break;
		}
		if (p->progress != NULL)
			progress_add(p->progress, len);
		for (size_t off = 0; off < len && !reader_gone;) {
			ssize_t n = write(p->fd, data + off, len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				reader_gone = true; /* EPIPE: the unpacker says why */
				break;
			}
			off += n;
		}
		free(data);
	}
	close(p->fd);
	return NULL;
}

/* Unpack the fs stream into rootfs as it arrives, owners shifted by shift.
 * update: over the tree that is there (a live move's second pass). */
static int recv_tree_within(struct ws *ws, const char *rootfs, unsigned shift, bool update, struct progress *progress,
			    int timeout_ms, struct ferry_error **err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0)
		return error_sys(err, errno, "pipe");
	struct fs_pump pump = { .ws = ws, .fd = fds[1], .progress = progress, .timeout_ms = timeout_ms };
	int r = pthread_create(&pump.thread, NULL, fs_pump_run, &pump);
	if (r != 0) {
		close(fds[0]);
		close(fds[1]);
		return error_sys(err, r, "start the rootfs receiver");
	}
	/* image_unpack_rootfs opens a path: the pipe's read end by /proc. */
	cleanup_free char *path = xasprintf("/proc/self/fd/%d", fds[0]);
	cleanup_error struct ferry_error *unpack_err = NULL;
	int ret = update ? image_unpack_update(path, rootfs, shift, shift, &unpack_err)
			 : image_unpack_rootfs(path, rootfs, shift, shift, &unpack_err);
	close(fds[0]);
	pthread_join(pump.thread, NULL);
	/* A broken stream explains a failed unpack better than the unpacker can. */
	if (pump.err != NULL) {
		error_move(err, &pump.err);
		return -1;
	}
	if (ret < 0) {
		error_move(err, &unpack_err);
		return -1;
	}
	if (!pump.ended)
		return error_set(err, 502, EPROTO, "the rootfs stream did not end");
	return 0;
}

static int recv_tree(struct ws *ws, const char *rootfs, unsigned shift, bool update, struct progress *progress,
		     struct ferry_error **err)
{
	return recv_tree_within(ws, rootfs, shift, update, progress, 600 * 1000, err);
}

static int recv_rootfs(struct ws *ws, const char *rootfs, unsigned shift, struct progress *progress,
		       struct ferry_error **err)
{
	return recv_tree(ws, rootfs, shift, false, progress, err);
}

/* A directory the source names below the rootfs: "" (the top) or
 * components that are neither empty, "." nor "..". */
static bool rel_dir_valid(const char *rel)
{
	if (*rel == '\0')
		return true;
	for (const char *p = rel;;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (p[n] == '\0')
			return true;
		p += n + 1;
	}
}

/* In one directory the source listed (names): remove what it no longer
 * holds. The directory opens beneath the rootfs, through no symlink. */
static int prune_dir(int rootfd, const char *rel, json_t *names, struct ferry_error **err)
{
	if (!rel_dir_valid(rel))
		return error_set(err, 502, EPROTO, "migration: the source names a directory \"%s\" outside the rootfs", rel);
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	int fd;
	do {
		fd = (int)syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof(how));
	} while (fd < 0 && errno == EAGAIN);
	if (fd < 0) /* gone, or no directory here: nothing of it to remove */
		return errno == ENOENT || errno == ENOTDIR ? 0 : error_sys(err, errno, "open %s in the rootfs", rel);
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		int e = errno;
		close(fd);
		return error_sys(err, e, "open %s in the rootfs", rel);
	}
	/* Names as keys: JSON object keys are any bytes here (nocheck). */
	json_t *keep = json_object();
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		cleanup_free char *name = migrate_name_from_json(n);
		json_object_set_nocheck(keep, name, json_true());
	}
	/* Removing while reading may skip entries: the names first. */
	char **gone = NULL;
	size_t n_gone = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    json_object_get(keep, de->d_name) != NULL)
			continue;
		gone = realloc(gone, (n_gone + 1) * sizeof(*gone));
		if (gone == NULL)
			abort();
		gone[n_gone++] = xstrdup(de->d_name);
	}
	json_decref(keep);
	int ret = 0;
	for (size_t k = 0; k < n_gone; k++) {
		if (ret == 0 && rm_rf_at(dirfd(d), gone[k], err) < 0)
			ret = error_wrap(err, "remove %s/%s, which the source removed", *rel ? rel : ".", gone[k]);
		free(gone[k]);
	}
	free(gone);
	closedir(d);
	return ret;
}

/* Remove what the source's rootfs no longer holds: in each directory that
 * changed there since the first pass (migrate_send_paths), what it no
 * longer names. */
static int prune_dirs(const char *rootfs, json_t *dirs, struct ferry_error **err)
{
	int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return error_sys(err, errno, "open %s", rootfs);
	int ret = 0;
	size_t i;
	json_t *d;
	json_array_foreach(dirs, i, d) {
		cleanup_free char *rel = migrate_name_from_json(json_object_get(d, "dir"));
		if ((ret = prune_dir(rootfd, rel, json_object_get(d, "names"), err)) < 0)
			break;
	}
	close(rootfd);
	return ret;
}

/* CRIU images as a tar stream (owners unshifted: host root's) into dir,
 * which CRIU reads from inside the instance's user namespace. */
static int recv_images(struct ws *ws, const char *name, const char *dir, struct progress *progress,
		       struct ferry_error **err)
{
	if (instance_images_dir_make(name, dir, err) < 0 || recv_rootfs(ws, dir, 0, progress, err) < 0)
		return -1;
	/* The unpacker leaves it 0755 and root's. */
	return instance_images_dir_make(name, dir, err);
}

/* The header's snapshots, each from its fs stream (a stateful one's CRIU
 * images too). *created
 * counts the rows made, for the cleanup. */
static int recv_snapshots(struct migrate_stream *fs, const char *name, json_t *snapshots, unsigned shift,
			  struct progress *progress,
			  size_t *created, struct ferry_error **err)
{
	size_t i;
	json_t *j;
	json_array_foreach(snapshots, i, j) {
		struct db_snapshot s = { 0 };
		if (migrate_snapshot_from_json(j, &s, err) < 0)
			return -1;
		cleanup_free char *sdir = NULL;
		cleanup_free char *srootfs = NULL;
		int r = snapshot_name_validate(s.name, err);
		if (r == 0) {
			sdir = snapshot_dir(name, s.name);
			srootfs = xasprintf("%s/rootfs", sdir);
			/* CRIU restores a stateful one from inside the container's
			 * user namespace: the directories on the way are its. */
			r = mkdir_p(sdir, 0700, err);
			if (r == 0 && s.stateful) {
				cleanup_free char *parent = xstrdup(sdir);
				*strrchr(parent, '/') = '\0';
				r = instance_images_dir_make(name, parent, err);
				if (r == 0)
					r = instance_images_dir_make(name, sdir, err);
			}
		}
		if (r == 0)
			r = recv_rootfs(migrate_stream_ws(fs), srootfs, shift, progress, err);
		if (r == 0 && s.stateful) {
			cleanup_free char *sstate = xasprintf("%s/state", sdir);
			r = recv_images(migrate_stream_ws(fs), name, sstate, progress, err);
		}
		if (r == 0) {
			s.instance = xstrdup(name);
			json_t *config = config_for_target(s.config);
			json_decref(s.config);
			s.config = config;
			r = db_snapshot_create(daemon_ctx->db, &s, err);
		}
		if (r < 0) {
			error_wrap(err, "snapshot \"%s\"", s.name ? s.name : "?");
			db_snapshot_clear(&s);
			return -1;
		}
		(*created)++;
		db_snapshot_clear(&s);
	}
	return 0;
}

/* Pre-flight of a live move: each disk the container binds from the host
 * (its expanded devices: profiles, then its own) must be on this host, or
 * the restore would fail with the source already stopped. */
static int disks_present(json_t *profiles, json_t *devices, struct ferry_error **err)
{
	json_t *default_profiles = json_pack("[s]", "default");
	json_t *expanded = NULL;
	profiles_expand(json_is_array(profiles) ? profiles : default_profiles, NULL, devices, NULL, NULL, &expanded);
	json_decref(default_profiles);
	int ret = 0;
	const char *name;
	json_t *d;
	json_object_foreach(expanded, name, d) {
		const char *type = json_string_value(json_object_get(d, "type"));
		const char *path = json_string_value(json_object_get(d, "path"));
		const char *source = json_string_value(json_object_get(d, "source"));
		struct stat st;
		if (type == NULL || strcmp(type, "disk") != 0 || path == NULL || strcmp(path, "/") == 0 || source == NULL)
			continue;
		if (stat(source, &st) < 0) {
			ret = error_set(err, 400, errno, "Device \"%s\": its source %s is not on this host: %s", name, source,
					strerror(errno));
			break;
		}
	}
	json_decref(expanded);
	return ret;
}

/* The host of the source's operation URL ("https://HOST:PORT/1.0/..."),
 * where its stream listener is too. */
static char *operation_host(const char *operation)
{
	if (strncmp(operation, "https://", 8) != 0)
		return NULL;
	const char *h = operation + 8;
	const char *end;
	if (*h == '[') {
		end = strchr(h, ']');
		return end ? strndup(h + 1, (size_t)(end - h - 1)) : NULL;
	}
	end = h + strcspn(h, ":/");
	return end > h ? strndup(h, (size_t)(end - h)) : NULL;
}

static int dial(const struct target_job *job, const char *secret, struct migrate_stream **out,
		struct ferry_error **err)
{
	cleanup_free char *host = operation_host(job->operation);
	cleanup_free char *cert = xasprintf("%s/server.crt", daemon_ctx->root);
	cleanup_free char *key = xasprintf("%s/server.key", daemon_ctx->root);
	if (host == NULL)
		return error_bad_request(err, "migration source %s: not an https:// URL", job->operation);
	return migrate_stream_dial(host, job->port, secret, job->certificate, cert, key, out, err);
}

/* The source's dump log, received into dir: into this instance's logs. */
static void keep_dump_log(const char *name, const char *dir)
{
	cleanup_free char *log_dir = instance_log_dir(name);
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "migration_dump_", 15) != 0)
			continue;
		cleanup_free char *from = xasprintf("%s/%s", dir, de->d_name);
		cleanup_free char *to = xasprintf("%s/%s", log_dir, de->d_name);
		if (mkdir(log_dir, 0700) < 0 && errno != EEXIST)
			break;
		cleanup_error struct ferry_error *e = NULL;
		if (file_move(from, to, &e) < 0)
			log_warn("instance %s: keeping the source's dump log: %s", name, e->msg);
	}
	closedir(d);
}

/* What the LAN sent the instance while it was stopped (MIGRATE_HELD_FRAMES
 * in dir, if any), to it now: it runs here. */
static void give_held_frames(const char *name, const char *dir)
{
	cleanup_free char *path = xasprintf("%s/" MIGRATE_HELD_FRAMES, dir);
	if (access(path, F_OK) != 0)
		return;
	cleanup_free char *data = NULL;
	size_t len = 0, given = 0;
	cleanup_free char *inst = instance_dir(name);
	cleanup_error struct ferry_error *e = NULL;
	if (file_read(path, &data, &len, &e) < 0 || runtime_frames_give(inst, data, len, &given, &e) < 0)
		log_warn("instance %s: the frames held while it moved: %s", name, e->msg);
	else
		log_info("instance %s: gave it %zu frames the source held while it moved", name, given);
	unlink(path);
}

/* Once it runs: the frames the source held (given to it at once), then
 * the source's dump log (kept with ours). */
static void recv_dump_log(const char *name, struct ws *state)
{
	cleanup_free char *inst = instance_dir(name);
	cleanup_free char *frames = xasprintf("%s/.held-frames", inst);
	cleanup_free char *dir = xasprintf("%s/.dump-log", inst);
	cleanup_error struct ferry_error *e = NULL;
	if (rm_rf(frames, &e) < 0 || mkdir_p(frames, 0700, &e) < 0 ||
	    recv_tree_within(state, frames, 0, false, NULL, MIGRATE_LOG_TIMEOUT_MS, &e) < 0) {
		log_warn("instance %s: no held frames from the source: %s", name, e->msg);
	} else {
		give_held_frames(name, frames);
		if (rm_rf(dir, &e) < 0 || mkdir_p(dir, 0700, &e) < 0 ||
		    recv_tree_within(state, dir, 0, false, NULL, MIGRATE_LOG_TIMEOUT_MS, &e) < 0)
			log_warn("instance %s: no dump log from the source: %s", name, e->msg);
		else
			keep_dump_log(name, dir);
	}
	error_free(&e);
	if (rm_rf(frames, &e) < 0 || rm_rf(dir, &e) < 0)
		log_warn("instance %s: %s", name, e->msg);
}

/* Post-copy, once the tasks run: wait for every page (the monitor kills
 * the copy if they stop coming), then tell the source. */
static int await_pages(struct target_job *job, struct ws *control, struct ferry_error **err)
{
	long long t0 = now_ms();
	int r;
	while ((r = instance_lazy_pages_status(job->name, err)) == 0) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	struct migrate_result res = { .success = r > 0, .message = r > 0 ? "complete" : (*err)->msg };
	cleanup_error struct ferry_error *e = NULL;
	if (migrate_send_result(control, &res, &e) < 0)
		log_warn("instance %s: the source did not hear that the pages are %s: %s", job->name,
			 r > 0 ? "in" : "lost", e->msg);
	if (r < 0)
		return error_wrap(err, "post-copy");
	log_info("instance %s: every page is in, %lld ms after the takeover", job->name, now_ms() - t0);
	return 0;
}

/* Stop-and-copy: the pages come while the source dumps, before the rest
 * of the state, into a `criu page-server` of ours writing them into a
 * directory of their own (the state's must be empty for its tar), moved
 * into the state's once all are in.
 *
 * Both are in memory: the restore punches the pages out as it reads them
 * (discard_pages), and the memory they free is what the restored tasks
 * take, where a disk's page cache frees large blocks that the allocator
 * hands out last (1 GiB restored here: 0.6 s, or 2.5 s taking memory the
 * guest had not used lately). They are beside the instance when its
 * directory is in memory already (a tmpfs, whose limits then hold for the
 * pages too), else in the daemon's staging directory, the state directory
 * a link to its own there (a link to each image would not do: CRIU opens
 * some from inside the container's mounts).
 *
 * Post-copy has no pages here, only the state, which goes to staging too:
 * CRIU's forty-odd small images are made while the instance is stopped,
 * and a file made on this machine's ext4 costs ~105 us against ~12 on a
 * tmpfs. */
struct page_intake {
	struct migrate_pages *relay;
	pid_t server;
	char *dir, *log;
	char *state; /* the state directory's place in staging, or NULL */
};

static int page_intake_start(struct page_intake *pi, struct target_job *job, bool post_copy, struct ws *pages,
			     struct ws *page_requests, struct ferry_error **err)
{
	cleanup_free char *dir = instance_dir(job->name);
	cleanup_free char *log_dir = instance_log_dir(job->name);
	pi->state = instance_staging_path(job->name, "state");
	pi->dir = pi->state != NULL ? instance_staging_path(job->name, "pages") : xasprintf("%s/state.pages", dir);
	if (pi->state != NULL && (rm_rf(pi->state, err) < 0 || instance_images_dir_make(job->name, pi->state, err) < 0))
		return -1;
	if (post_copy) {
		free(steal_pointer(&pi->dir));
		if (pi->state != NULL)
			log_info("instance %s: its state waits in %s", job->name, pi->state);
		return 0;
	}
	pi->log = checkpoint_log_path(log_dir, "migration", "page-server");
	int sock = -1;
	if (mkdir_p(log_dir, 0700, err) < 0 || rm_rf(pi->dir, err) < 0 ||
	    instance_images_dir_make(job->name, pi->dir, err) < 0 ||
	    migrate_pages_target_start(pages, page_requests, &sock, &pi->relay, err) < 0)
		return -1;
	log_info("instance %s: its pages wait in %s", job->name, pi->dir);
	int r = checkpoint_page_server_start(pi->dir, pi->log, sock, &pi->server, err);
	close(sock);
	return r;
}

/* Every page is in (the source's CRIU said so to the page server): into
 * the state directory with the other images. */
static int page_intake_finish(struct page_intake *pi, const char *state_dir, struct ferry_error **err)
{
	int r = checkpoint_page_server_wait(pi->server, pi->log, 600 * 1000, err);
	pi->server = 0;
	migrate_pages_stop(pi->relay);
	pi->relay = NULL;
	if (r < 0)
		return error_wrap(err, "the memory");
	DIR *d = opendir(pi->dir);
	if (d == NULL)
		return error_sys(err, errno, "open %s", pi->dir);
	struct dirent *de;
	while (r == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *from = xasprintf("%s/%s", pi->dir, de->d_name);
		cleanup_free char *to = xasprintf("%s/%s", state_dir, de->d_name);
		if (rename(from, to) < 0)
			r = error_sys(err, errno, "rename %s to %s", from, to);
	}
	closedir(d);
	return r;
}

/* After page_intake_finish, or instead of it when the takeover failed
 * (err: its error): a page server that failed (a full disk, say) is why
 * the source stopped sending, and its reason the better one. */
static void page_intake_clear(struct page_intake *pi, struct ferry_error **err)
{
	if (pi->server > 0) {
		cleanup_error struct ferry_error *why = NULL;
		if (checkpoint_page_server_wait(pi->server, pi->log, 1000, &why) < 0 && why->errnum != ETIMEDOUT &&
		    err != NULL) {
			error_free(err);
			error_move(err, &why);
			error_wrap(err, "the memory");
		}
	}
	migrate_pages_stop(pi->relay);
	if (pi->dir != NULL) {
		cleanup_error struct ferry_error *e = NULL;
		rm_rf(pi->dir, &e);
	}
	if (pi->state != NULL) {
		cleanup_error struct ferry_error *e = NULL;
		rm_rf(pi->state, &e);
	}
	free(pi->dir);
	free(pi->log);
	free(pi->state);
}

/* Memory this host has not used lately can be slow to take again: on a VM
 * whose host takes back what the guest frees (virtio-balloon's free page
 * reporting; this one: ~8.6 us a page, against ~0.5 for memory used
 * moments ago), the pages a move brings cost most of a large
 * stop-and-copy's stop and of post-copy's pages. So there, before the
 * source freezes the instance, the target takes as much memory as it uses
 * (a file on a tmpfs, written, then removed): what it gives back is what
 * the pages take next. From WARM_MIN, and only with twice that much
 * available. bench, 1 GiB: stop-and-copy stopped 5973 -> 2858 ms,
 * post-copy's pages 3529 -> 2554 ms (the warming comes before the freeze:
 * the moves take as long). */
#define WARM_MIN (64ULL << 20)

/* Does a balloon device take back what the guest frees (its feature
 * VIRTIO_BALLOON_F_REPORTING, bit 5)? */
static bool takes_freed_memory;

static void balloon_check(void)
{
	DIR *d = opendir("/sys/bus/virtio/drivers/virtio_balloon");
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "virtio", 6) != 0)
			continue;
		cleanup_free char *path = xasprintf("/sys/bus/virtio/drivers/virtio_balloon/%s/features", de->d_name);
		char bits[16] = { 0 };
		FILE *f = fopen(path, "re");
		if (f != NULL && fgets(bits, sizeof(bits), f) != NULL && strlen(bits) > 5 && bits[5] == '1')
			takes_freed_memory = true;
		if (f != NULL)
			fclose(f);
	}
	if (d != NULL)
		closedir(d);
}

static bool host_takes_freed_memory(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, balloon_check);
	return takes_freed_memory;
}

static unsigned long long mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb = 0;
	char line[128];
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	if (f != NULL)
		fclose(f);
	return kb << 10;
}

static void warm_memory(const char *name, unsigned long long bytes)
{
	if (bytes < WARM_MIN || !host_takes_freed_memory() || mem_available() < 2 * bytes)
		return;
	char *path = instance_staging_path(name, "warm");
	if (path == NULL) {
		cleanup_free char *dir = instance_dir(name);
		struct statfs st;
		if (statfs(dir, &st) < 0 || st.f_type != TMPFS_MAGIC)
			return; /* a disk's page cache would be written back */
		path = xasprintf("%s/.warm", dir);
	}
	long long t0 = now_ms();
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		unlink(path); /* freed at the close, whatever happens */
		/* Written: tmpfs's fallocate leaves its pages untouched. */
		enum { CHUNK = 1 << 20 };
		char *zeros = xcalloc(1, CHUNK);
		for (unsigned long long done = 0; done < bytes;) {
			ssize_t w = write(fd, zeros, bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				log_warn("instance %s: warming %llu MiB of memory: %s", name, bytes >> 20,
					 w < 0 ? strerror(errno) : "no room");
				break;
			}
			done += (unsigned long long)w;
		}
		free(zeros);
		close(fd);
		log_info("instance %s: warmed %llu MiB of memory for its pages in %lld ms", name, bytes >> 20,
			 now_ms() - t0);
	}
	free(path);
}

/* A live move, after the first pass: say ready, take the changes, the
 * state (stop-and-copy: the pages first, as the source dumps them) and
 * /dev, restore with the tasks stopped (post-copy: without their memory,
 * which comes from the source as they need it), and let them run once the
 * source has committed. *restored: a copy runs here (stopped) and must be
 * killed if this fails. */
static int live_takeover(struct progress *progress, struct target_job *job, struct ws *control, struct ws *fs,
			 struct ws *state, struct ws *pages, struct ws *page_requests, bool post_copy,
			 unsigned long long memory, const char *rootfs, unsigned shift, bool *restored,
			 struct ferry_error **err)
{
	cleanup_free char *dir = instance_dir(job->name);
	cleanup_free char *state_dir = instance_state_dir(job->name);
	cleanup_free char *dev = xasprintf("%s/dev", dir);
	struct page_intake intake = { 0 };
	struct migrate_pages *relay = NULL;
	/* Declared before the first goto: cleanup must never see it uninitialised. */
	cleanup_error struct ferry_error *e = NULL;
	struct migrate_result res = { .success = true, .message = "ready" };
	int r = -1;
	progress_stage(progress, "making room for its memory");
	warm_memory(job->name, memory);
	if (page_intake_start(&intake, job, post_copy, pages, page_requests, err) < 0)
		goto out;
	if (migrate_send_result(control, &res, err) < 0)
		goto out;
	progress_stage(progress, "rootfs changes (the instance is stopped)");
	json_t *dirs = NULL;
	if (recv_tree(fs, rootfs, shift, true, progress, err) < 0 ||
	    migrate_recv_paths(control, &dirs, 600 * 1000, err) < 0) {
		error_wrap(err, "the rootfs's changes");
		goto out;
	}
	long long t0 = now_ms();
	r = prune_dirs(rootfs, dirs, err);
	json_decref(dirs);
	if (r < 0)
		goto out;
	r = -1;
	progress->stage = "state";
	/* The state directory appears as the state comes (a link when staged).
	 * The images go into the directory itself: the unpacker follows no link. */
	const char *images = intake.state != NULL ? intake.state : state_dir;
	if (intake.state != NULL && (rm_rf(state_dir, err) < 0 || symlink(intake.state, state_dir) < 0)) {
		if (*err == NULL)
			error_sys(err, errno, "link %s to %s", state_dir, intake.state);
		goto out;
	}
	/* /dev comes first: the source sends it while CRIU dumps. */
	if (recv_rootfs(state, dev, shift, progress, err) < 0 || recv_images(state, job->name, images, progress, err) < 0) {
		error_wrap(err, "the saved state");
		goto out;
	}
	if (!post_copy && page_intake_finish(&intake, images, err) < 0)
		goto out;
	struct db_instance inst = { 0 };
	if (instance_get(job->name, &inst, err) < 0)
		goto out;
	inst.stateful = true;
	r = db_instance_update(daemon_ctx->db, &inst, err);
	db_instance_clear(&inst);
	if (r < 0)
		goto out;
	r = -1;
	long long t1 = now_ms();
	progress_stage(progress, "restoring");
	/* Post-copy: the pages come from the source's CRIU as the tasks need them. */
	int daemon_socket = -1;
	if (post_copy && migrate_pages_target_start(pages, page_requests, &daemon_socket, &relay, err) < 0)
		goto out;
	int restore = instance_restore_paused(job->name, "migration", daemon_socket, err);
	if (daemon_socket >= 0)
		close(daemon_socket);
	if (restore < 0)
		goto out;
	*restored = true;
	long long t2 = now_ms();
	res.message = "restored";
	if (migrate_send_result(control, &res, err) < 0 || migrate_recv_commit(control, MIGRATE_COMMIT_TIMEOUT_MS, err) < 0) {
		error_wrap(err, "no commit from the source: this copy goes");
		goto out;
	}
	long long t3 = now_ms();
	/* Ours from now on: nothing may remove it any more (post-copy: unless
	 * its pages fail, so the mark stays until they are in). */
	if (relay == NULL && instance_config_mark(job->name, INSTANCE_KEY_MIGRATING, NULL, err) < 0)
		goto out;
	*restored = false;
	if (instance_resume(job->name, &e) < 0) {
		log_error("instance %s: %s", job->name, e->msg);
		res = (struct migrate_result){ .success = false, .message = e->msg };
	} else {
		res.message = "running";
	}
	if (migrate_send_result(control, &res, err) < 0)
		log_warn("instance %s: runs here, but the source did not hear it: %s", job->name, (*err)->msg);
	else if (res.success)
		recv_dump_log(job->name, state);
	error_free(err);
	if (relay != NULL) {
		progress_stage(progress, "pages (the instance runs here)");
		r = await_pages(job, control, err);
		unsigned long long page_bytes = migrate_pages_stop(relay);
		relay = NULL;
		if (r < 0) {
			/* Killed by its monitor: what is left of it goes. */
			*restored = true;
			goto out;
		}
		r = -1;
		if (instance_discard_state(job->name, &e) < 0 ||
		    instance_config_mark(job->name, INSTANCE_KEY_MIGRATING, NULL, &e) < 0)
			log_error("instance %s: after its pages: %s", job->name, e->msg);
		log_info("instance %s: %.1f MB of pages came after the takeover", job->name, (double)page_bytes / 1e6);
	}
	log_info("instance %s: taken over live (state unpacked in %lld ms, restored in %lld ms, commit after %lld ms)",
		 job->name, t1 - t0, t2 - t1, t3 - t2);
	r = 0;
out:
	migrate_pages_stop(relay);
	page_intake_clear(&intake, r < 0 ? err : NULL);
	return r;
}

static int target_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct target_job *job = data;
	struct migrate_stream *control = NULL, *fs = NULL, *state = NULL, *pages = NULL, *page_requests = NULL;
	bool restored = false, answered = false;
	struct migrate_header h = { 0 };
	struct db_instance inst = { 0 };
	cleanup_free char *dir = instance_dir(job->name);
	cleanup_free char *rootfs = instance_rootfs(job->name);
	cleanup_free char *logs = instance_logs_dir(job->name);
	bool db_created = false, dir_created = false;
	size_t snapshots_created = 0;
	int ret = -1;

	/* Before the streams: the source freezes nothing until they are in. */
	if (job->live)
		runtime_spares_ready();
	if (dial(job, job->secret_control, &control, err) < 0 || dial(job, job->secret_fs, &fs, err) < 0 ||
	    (job->secret_state != NULL && dial(job, job->secret_state, &state, err) < 0) ||
	    (job->secret_pages != NULL && dial(job, job->secret_pages, &pages, err) < 0) ||
	    (job->secret_page_requests != NULL && dial(job, job->secret_page_requests, &page_requests, err) < 0))
		goto out;
	if (migrate_recv_header(migrate_stream_ws(control), &h, 60 * 1000, err) < 0)
		goto out;
	if (h.live && state == NULL) {
		error_set(err, 502, EPROTO, "the source sends a running instance, but no state stream was offered");
		goto out;
	}
	if (h.live && (pages == NULL || page_requests == NULL)) {
		error_set(err, 502, EPROTO, "the source sends a running instance, but no page streams were offered");
		goto out;
	}
	/* How a running instance comes: a copy of it is not live. */
	const char *plan = !h.running				 ? MIGRATE_PLAN_COLD
			   : request_is_copy(job->config, h.config) ? MIGRATE_PLAN_COPY
			   : h.live				 ? MIGRATE_PLAN_LIVE
								 : MIGRATE_PLAN_STOP;
	bool live = strcmp(plan, MIGRATE_PLAN_LIVE) == 0;
	bool stateful = !h.running && h.stateful;
	/* Pre-flight, before the source stops anything: can this CPU run it
	 * (or the saved state of a stopped one)? */
	if (live || stateful) {
		cleanup_free unsigned char *cpuinfo = NULL;
		size_t cpuinfo_len = 0;
		if (h.cpuinfo == NULL || tls_base64_decode(h.cpuinfo, &cpuinfo, &cpuinfo_len) < 0) {
			error_set(err, 502, EPROTO, "the source sent no CPU description");
			goto out;
		}
		if (checkpoint_cpuinfo_check(cpuinfo, cpuinfo_len, err) < 0) {
			if (!live)
				error_wrap(err, "its saved state can't run on this host (start it with --stateless, stop it, "
						"and move it again)");
			goto out;
		}
	}

	inst.name = xstrdup(job->name);
	inst.type = xstrdup("container");
	inst.architecture = xstrdup(h.architecture ? h.architecture : "x86_64");
	inst.description = xstrdup(h.description ? h.description : "");
	inst.ephemeral = h.ephemeral;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	inst.created_at = time_rfc3339(&now);
	inst.last_used_at = xstrdup("1970-01-01T00:00:00Z");
	inst.config = config_for_target(json_is_object(job->config) ? job->config : h.config);
	inst.devices = json_deep_copy(json_is_object(job->devices) ? job->devices : h.devices);
	inst.profiles = json_deep_copy(json_is_array(job->profiles) ? job->profiles : h.profiles);
	/* Profiles, config and devices must make sense here (LXD refuses a
	 * missing profile the same way). */
	/* Marks a partial copy until the end: a ferryd that dies meanwhile
	 * removes it at its next start (instances_startup). */
	json_object_set_new(inst.config, INSTANCE_KEY_MIGRATING, json_string("true"));
	json_t *user_config = config_user_keys(inst.config);
	struct instance_create_args check = {
		.name = inst.name, .source_type = "none", .config = user_config, .devices = inst.devices,
		.profiles = inst.profiles,
	};
	int checked = instance_create_check(&check, err);
	json_decref(user_config);
	if (checked == 0 && live)
		checked = disks_present(inst.profiles, inst.devices, err);
	if (checked < 0 || instance_record_create(&inst, err) < 0)
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
	struct instance_idmap map;
	if (instance_idmap(job->name, &map, err) < 0)
		goto out;
	/* All checked that can be before anything comes: the plan. */
	struct migrate_result planned = { .success = true, .plan = (char *)plan };
	if (migrate_send_result(migrate_stream_ws(control), &planned, err) < 0)
		goto out;
	if (strcmp(plan, MIGRATE_PLAN_COPY) == 0)
		log_info("instance %s: a copy of a running instance: its rootfs comes as it is meanwhile, without its state",
			 job->name);
	struct progress progress = { .op = op, .stage = "snapshots" };
	if (recv_snapshots(fs, job->name, h.snapshots, map.base, &progress, &snapshots_created, err) < 0)
		goto out;
	progress.stage = "rootfs";
	if (recv_rootfs(migrate_stream_ws(fs), rootfs, map.base, &progress, err) < 0)
		goto out;
	if (live) {
		if (live_takeover(&progress, job, migrate_stream_ws(control), migrate_stream_ws(fs), migrate_stream_ws(state),
				  migrate_stream_ws(pages), migrate_stream_ws(page_requests), h.post_copy, h.memory, rootfs, map.base,
				  &restored, err) < 0)
			goto out;
		answered = true;
		ret = 0;
		log_info("instance %s: received live from %s", job->name, job->operation);
		goto out;
	}
	/* Stopped with its state: CRIU's images, for its next start. */
	if (stateful) {
		cleanup_free char *state_dir = instance_state_dir(job->name);
		progress.stage = "state";
		if (recv_images(migrate_stream_ws(fs), job->name, state_dir, &progress, err) < 0) {
			error_wrap(err, "the saved state");
			goto out;
		}
		inst.stateful = true;
	}
	json_object_del(inst.config, INSTANCE_KEY_MIGRATING);
	if (db_instance_update(daemon_ctx->db, &inst, err) < 0)
		goto out;
	ret = 0;
	log_info("instance %s: received from %s%s", job->name, job->operation, stateful ? " with its saved state" : "");
out:
	if (ret < 0) {
		cleanup_error struct ferry_error *e = NULL;
		/* A restored copy the source never let go: it must not run twice,
		 * and must not end the connections the source's copy keeps
		 * (killing it would send RSTs): its network goes first. */
		if (restored)
			instance_cut_host_veths(job->name);
		if (restored && instance_stop_forced(job->name, &e) < 0) {
			log_error("instance %s: stopping the uncommitted copy: %s", job->name, e->msg);
			error_free(&e);
		}
		if (dir_created && rm_rf(dir, &e) < 0)
			log_error("instance %s: cleaning up %s: %s", job->name, dir, e->msg);
		error_free(&e);
		for (size_t i = 0; i < snapshots_created; i++) {
			const char *sname = json_string_value(json_object_get(json_array_get(h.snapshots, i), "name"));
			if (db_snapshot_delete(daemon_ctx->db, job->name, sname, &e) < 0) {
				log_error("instance %s: cleaning up snapshot %s: %s", job->name, sname, e->msg);
				error_free(&e);
			}
		}
		if (db_created && db_instance_delete(daemon_ctx->db, job->name, &e) < 0)
			log_error("instance %s: cleaning up the DB row: %s", job->name, e->msg);
	}
	/* Tell the source, when it can still hear us. */
	if (control != NULL && !answered) {
		struct migrate_result res = { .success = ret == 0, .message = ret < 0 && *err ? (*err)->msg : NULL };
		cleanup_error struct ferry_error *e = NULL;
		if (migrate_send_result(migrate_stream_ws(control), &res, &e) < 0 && ret == 0) {
			/* The source can't learn that we have it: it keeps its copy, and so would we. */
			log_warn("instance %s: could not confirm to the source: %s", job->name, e->msg);
		}
	}
	migrate_stream_free(page_requests);
	migrate_stream_free(pages);
	migrate_stream_free(state);
	migrate_stream_free(fs);
	migrate_stream_free(control);
	migrate_header_clear(&h);
	db_instance_clear(&inst);
	if (ret < 0)
		error_wrap(err, "migrate \"%s\" here", job->name);
	return ret;
}

struct response *migrate_target_respond(json_t *body)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *source = json_object_get(body, "source");
	const char *name = json_string_value(json_object_get(body, "name"));
	const char *mode = json_string_value(json_object_get(source, "mode"));
	const char *operation = json_string_value(json_object_get(source, "operation"));
	const char *certificate = json_string_value(json_object_get(source, "certificate"));
	json_t *secrets = json_object_get(source, "secrets");
	const char *s_control = json_string_value(json_object_get(secrets, MIGRATE_SECRET_CONTROL));
	const char *s_fs = json_string_value(json_object_get(secrets, MIGRATE_SECRET_FS));
	if (name == NULL)
		return response_error(400, "Invalid request: missing the instance \"name\"");
	if (instance_name_validate(name, &err) < 0)
		return response_from_error(err);
	if (mode != NULL && strcmp(mode, "pull") != 0)
		return response_error(400, "Migration mode \"%s\" isn't supported (only \"pull\")", mode);
	const char *s_port = json_string_value(json_object_get(secrets, MIGRATE_SECRET_PORT));
	if (operation == NULL || certificate == NULL || s_control == NULL || s_fs == NULL)
		return response_error(400, "Invalid migration source: operation, certificate and secrets "
					   "{\"control\", \"fs\"} are required");
	char *port_end = NULL;
	long port = s_port != NULL ? strtol(s_port, &port_end, 10) : 0;
	if (s_port == NULL || *port_end != '\0' || port <= 0 || port > 65535)
		return response_error(400, "Invalid migration source: the secrets carry no stream port "
					   "(\"" MIGRATE_SECRET_PORT "\"): only a ferry source can be migrated from");
	/* Live unless said otherwise when the source offers the state (older
	 * clients, pylxd 2.2.10's among them, send no "live": LXD's target
	 * takes it from what the source offers). */
	json_t *live_json = json_object_get(source, "live");
	const char *s_state = json_string_value(json_object_get(secrets, MIGRATE_SECRET_STATE));
	bool live = json_is_boolean(live_json) ? json_is_true(live_json) : s_state != NULL;
	/* Asked live of what isn't (a snapshot: lxc copy asks every copy
	 * live unless --stateless): the source offers no state, so not live. */
	live = live && s_state != NULL;
	if (!live && s_state != NULL)
		return response_error(400, "Invalid migration source: \"live\" is false, but the source moves the "
					   "instance live (its secrets have \"state\"; ask it with \"live\": false)");
	/* Refuse a taken name now, before the source sends anything. */
	struct db_instance existing = { 0 };
	if (instance_get(name, &existing, &err) == 0) {
		db_instance_clear(&existing);
		return response_error(409, "Instance \"%s\" already exists", name);
	}
	error_free(&err);
	/* What the request itself brings is checked now, before the source sends anything. */
	json_t *user_config = config_user_keys(json_object_get(body, "config"));
	struct instance_create_args check = {
		.name = name, .source_type = "none", .config = user_config,
		.devices = json_object_get(body, "devices"), .profiles = json_object_get(body, "profiles"),
	};
	int checked = instance_create_check(&check, &err);
	json_decref(user_config);
	if (checked < 0)
		return response_from_error(err);
	struct target_job *job = xcalloc(1, sizeof(*job));
	job->name = xstrdup(name);
	job->operation = xstrdup(operation);
	job->certificate = xstrdup(certificate);
	job->secret_control = xstrdup(s_control);
	job->secret_fs = xstrdup(s_fs);
	job->live = live;
	job->port = (int)port;
	job->secret_state = live ? xstrdup(s_state) : NULL;
	const char *s_pages = json_string_value(json_object_get(secrets, MIGRATE_SECRET_PAGES));
	const char *s_page_requests = json_string_value(json_object_get(secrets, MIGRATE_SECRET_PAGE_REQUESTS));
	if (live && s_pages != NULL && s_page_requests != NULL) {
		job->secret_pages = xstrdup(s_pages);
		job->secret_page_requests = xstrdup(s_page_requests);
	}
	job->config = json_incref(json_object_get(body, "config"));
	job->devices = json_incref(json_object_get(body, "devices"));
	job->profiles = json_incref(json_object_get(body, "profiles"));
	cleanup_free char *name_copy = xstrdup(name);
	return instance_operation_respond(false, "Creating instance", name_copy, NULL, target_run, NULL, job,
					  target_job_free);
}
