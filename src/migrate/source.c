/* The source side of a migration: an operation whose streams ("control",
 * "fs", and "state" for a live move) the target connects to, on a TLS
 * listener of the migration's own (channel.h);
 * then the header, the rootfs as a tar stream, and the target's result. The
 * instance stays locked (no start, no edit) throughout; a cold one stays
 * untouched, a live one is checkpointed and handed over (migrate.h). */
#include <archive.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/db_snapshots.h"
#include "daemon/instance.h"
#include "daemon/operations.h"
#include "daemon/request.h"
#include "daemon/snapshots.h"
#include "daemon/tls.h"
#include "image/image.h"
/* image_tar_add_tree: the image library's packer, here writing into a
 * websocket instead of a file. */
#include "image/image_internal.h"
#include "migrate/channel.h"
#include "migrate/migrate.h"
#include "migrate/pages.h"
#include "runtime/runtime.h"

struct source_job {
	char *name;
	char *snapshot;     /* a snapshot of it, copied as a new instance (not live) */
	char *secret_control, *secret_fs, *secret_state, *secret_pages, *secret_page_requests;
	bool instance_only; /* no snapshots */
	bool stateful;      /* a stopped instance's saved state goes along */
	bool live;
	bool post_copy;     /* live: the memory follows after the takeover */
	/* The streams come in here (channel.h), not through the API server. */
	struct migrate_listener *listener;
	struct ws *control, *fs, *state, *pages, *page_requests;
	/* A live move's first pass: what it sent of the big files. */
	struct image_sent_sums *sums;
};

static void source_job_free(void *data)
{
	struct source_job *job = data;
	free(job->name);
	free(job->snapshot);
	free(job->secret_control);
	free(job->secret_fs);
	free(job->secret_state);
	free(job->secret_pages);
	free(job->secret_page_requests);
	if (job->listener != NULL)
		migrate_listener_close(job->listener);
	image_sent_sums_free(job->sums);
	free(job);
}

/* Streams offered through the API's operation websocket are not served:
 * a ferry target dials the listener whose port the secrets carry. */
static void source_connect(struct operation *op, void *data, const char *secret, struct ws *ws)
{
	(void)op;
	(void)data;
	(void)secret;
	ws_close(ws, 1008, "migration streams connect to the port in the secrets");
	ws_free(ws);
}

static bool source_cancelled(void *arg)
{
	return operation_cancelled(arg);
}

static int wait_streams(struct operation *op, struct source_job *job, struct ferry_error **err)
{
	const char *secrets[] = { job->secret_control, job->secret_fs, job->secret_state, job->secret_pages,
				  job->secret_page_requests };
	struct ws *streams[5] = { NULL };
	size_t n = job->live ? 5 : 2;
	int r = migrate_listener_accept(job->listener, secrets, n, streams, MIGRATE_CONNECT_TIMEOUT_MS,
					source_cancelled, op, err);
	migrate_listener_close(job->listener);
	job->listener = NULL;
	if (r < 0) {
		if ((*err)->errnum == ETIMEDOUT)
			error_wrap(err, "the migration target did not connect");
		return -1;
	}
	job->control = streams[0];
	job->fs = streams[1];
	job->state = streams[2];
	job->pages = streams[3];
	job->page_requests = streams[4];
	return 0;
}

static void close_streams(struct source_job *job)
{
	struct ws **streams[] = { &job->control, &job->fs, &job->state, &job->pages, &job->page_requests };
	for (size_t i = 0; i < 5; i++) {
		if (*streams[i] == NULL)
			continue;
		ws_close(*streams[i], 1000, "");
		migrate_ws_free(*streams[i]);
		*streams[i] = NULL;
	}
}

/* libarchive's writer, straight into the fs websocket. */
struct fs_sink {
	struct ws *ws;
	struct operation *op;
	unsigned long long sent;
	long long last_report_ms;
	struct ferry_error *err;
};

static la_ssize_t fs_sink_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct fs_sink *sink = ctx;
	if (sink->ws == NULL) {
		archive_set_error(a, ECANCELED, "called off");
		return -1;
	}
	if (ws_send(sink->ws, WS_BINARY, buf, len, &sink->err) < 0) {
		archive_set_error(a, EPIPE, "%s", sink->err->msg);
		return -1;
	}
	sink->sent += len;
	long long now = now_ms();
	if (now - sink->last_report_ms >= 500) {
		sink->last_report_ms = now;
		operation_set_metadata_key(sink->op, "fs_progress", json_sprintf("%llu bytes sent", sink->sent));
	}
	return (la_ssize_t)len;
}

/* A tar stream into ws (migrate.h: uncompressed, owners as given). The
 * last block goes unpadded: a live move's /dev or state, a few KiB to a
 * few hundred, would go as whole 256 KiB blocks. */
static struct archive *tree_tar_open(struct fs_sink *sink, struct ferry_error **err)
{
	struct archive *tar = archive_write_new();
	if (archive_write_set_format_pax_restricted(tar) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(tar, MIGRATE_FS_CHUNK) != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(tar, 1) != ARCHIVE_OK ||
	    archive_write_open(tar, sink, NULL, fs_sink_write, NULL) != ARCHIVE_OK) {
		error_set(err, 500, 0, "tar writer: %s", archive_error_string(tar));
		archive_write_free(tar);
		return NULL;
	}
	return tar;
}

/* The end of the tar stream, then an empty message: the end of the tree.
 * ret: how the tree went so far. */
static int tree_tar_close(struct archive *tar, struct fs_sink *sink, const char *what, int ret,
			  struct ferry_error **err)
{
	if (ret == 0 && archive_write_close(tar) != ARCHIVE_OK)
		ret = error_set(err, 500, archive_errno(tar), "send %s: %s", what, archive_error_string(tar));
	if (ret == 0 && ws_send(sink->ws, WS_BINARY, "", 0, err) < 0)
		ret = -1;
	/* A failed tree ends here: not even its tar trailer goes. */
	if (ret < 0)
		sink->ws = NULL;
	archive_write_free(tar);
	/* The websocket's own error says more than libarchive's copy of it. */
	if (ret < 0 && sink->err != NULL) {
		error_free(err);
		error_move(err, &sink->err);
		error_wrap(err, "send %s", what);
	}
	error_free(&sink->err);
	return ret;
}

/* A tree as a tar stream with container ids (the target shifts them into
 * its own map; shift 0: as they are), then an empty message: the end.
 * since (may be NULL): only what changed since then; listed gets each
 * directory that changed, with its names (image_tar_add_tree_changed). */
static int send_tree(struct operation *op, struct ws *ws, const char *rootfs, unsigned shift,
		     const struct timespec *since, image_dir_listed_fn *listed, void *listed_arg,
		     struct image_sent_sums *sums, unsigned long long *sent, struct ferry_error **err)
{
	struct fs_sink sink = { .ws = ws, .op = op };
	struct archive *tar = tree_tar_open(&sink, err);
	if (tar == NULL)
		return -1;
	int ret = image_tar_add_tree_changed(tar, rootfs, shift, shift, since, listed, listed_arg, sums, err);
	ret = tree_tar_close(tar, &sink, rootfs, ret, err);
	*sent = sink.sent;
	return ret;
}

/* The snapshots' rows, oldest first, as the header carries them. */
static int send_rootfs(struct operation *op, struct ws *ws, const char *rootfs, unsigned shift,
		       struct image_sent_sums *sums, unsigned long long *sent, struct ferry_error **err)
{
	return send_tree(op, ws, rootfs, shift, NULL, NULL, NULL, sums, sent, err);
}

static int snapshots_header(const char *name, json_t **out, struct ferry_error **err)
{
	json_t *names = NULL;
	if (db_snapshot_list(daemon_ctx->db, name, &names, err) < 0)
		return -1;
	json_t *list = json_array();
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		struct db_snapshot s = { 0 };
		if (db_snapshot_get(daemon_ctx->db, name, json_string_value(n), &s, err) < 0) {
			json_decref(names);
			json_decref(list);
			return -1;
		}
		json_array_append_new(list, migrate_snapshot_to_json(&s));
		db_snapshot_clear(&s);
	}
	json_decref(names);
	*out = list;
	return 0;
}

/* dirs: [{"dir": DIR, "names": [NAME, ...]}] of the directories that
 * changed (migrate_send_paths). */
static void dir_listed(const char *rel, const char *const *names, size_t n, void *dirs)
{
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, migrate_name_to_json(names[i]));
	json_array_append_new((json_t *)dirs, json_pack("{s:o, s:o}", "dir", migrate_name_to_json(rel), "names", list));
}

/* This move's CRIU dump log (the newest migration_dump_*.log: names sort
 * by time) goes to the target once the instance runs there, so that the
 * target keeps it too: the source's copy of the instance, logs and all, is
 * deleted after a move. A copy into dir (CRIU goes on writing the log),
 * not synced: the copy that counts is the target's. */
static void copy_dump_log(const char *name, const char *dir)
{
	cleanup_free char *log_dir = instance_log_dir(name);
	DIR *d = opendir(log_dir);
	if (d == NULL)
		return;
	cleanup_free char *newest = NULL;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "migration_dump_", 15) != 0 || (newest != NULL && strcmp(de->d_name, newest) <= 0))
			continue;
		free(newest);
		newest = xstrdup(de->d_name);
	}
	closedir(d);
	if (newest == NULL)
		return;
	cleanup_free char *from = xasprintf("%s/%s", log_dir, newest);
	cleanup_free char *to = xasprintf("%s/%s", dir, newest);
	cleanup_free char *data = NULL;
	size_t len = 0;
	cleanup_error struct ferry_error *e = NULL;
	if (file_read(from, &data, &len, &e) < 0 || file_write_volatile(to, data, len, 0600, &e) < 0)
		log_warn("instance %s: the dump log stays here only: %s", name, e->msg);
}

/* What a live move sends once the instance is frozen: the rootfs's
 * changes since the first pass, then what each directory changed since
 * holds (what the target must remove is what these no longer name). */
static int send_rootfs_changes(struct operation *op, struct source_job *job, const char *rootfs, unsigned shift,
			       const struct timespec *first_pass, unsigned long long *bytes, struct ferry_error **err)
{
	json_t *dirs = json_array();
	/* The kernel stamps files with a clock that may lag by a tick: slack. */
	struct timespec since = *first_pass;
	since.tv_nsec -= 50 * 1000000L;
	if (since.tv_nsec < 0) {
		since.tv_sec--;
		since.tv_nsec += 1000000000L;
	}
	int r = send_tree(op, job->fs, rootfs, shift, &since, dir_listed, dirs, job->sums, bytes, err);
	if (r == 0)
		r = migrate_send_paths(job->control, dirs, err);
	json_decref(dirs);
	return r;
}

/* The container's /dev (a directory of the instance, bound in; frozen,
 * nothing changes it), first on the state stream: it goes while CRIU dumps. */
static int send_dev(struct operation *op, struct source_job *job, unsigned shift, unsigned long long *bytes,
		    struct ferry_error **err)
{
	cleanup_free char *dir = instance_dir(job->name);
	cleanup_free char *dev = xasprintf("%s/dev", dir);
	unsigned long long n = 0;
	int r = send_tree(op, job->state, dev, shift, NULL, NULL, NULL, NULL, &n, err);
	*bytes += n;
	return r;
}

/* A live move from the checkpoint on (migrate.h): what both memory modes
 * share. */
struct handover {
	struct operation *op;
	struct source_job *job;
	const char *rootfs;
	unsigned shift;
	const struct timespec *first_pass;
	long long t_freeze, t_dumped, t_sent, t_restored, t_running, t_done;
	/* The rootfs's changes go while CRIU dumps (the container is frozen),
	 * then CRIU's images as it closes them (images_stream). */
	pthread_t walker;
	bool walking, walk_done;
	int walk_result;
	struct ferry_error *walk_err;
	unsigned long long walk_bytes;
	int images_watch;  /* inotify on the state directory, from the freeze */
	int dump_end;      /* eventfd: 1 the dump is over, 2 called off */
	/* post-copy: the commit races the end of CRIU's page serving */
	pthread_mutex_t lock;
	bool committed;  /* INSTANCE_KEY_OUTGOING "committed": never run here again */
	bool dump_over;  /* CRIU stopped serving pages: too late to commit */
	struct ferry_error *err;      /* why the takeover failed (post-copy's watcher) */
	struct migrate_pages *pages;
	unsigned long long page_bytes; /* relayed */
	pthread_t watcher;
	bool watching;
	struct migrate_result complete; /* the target's last word on the pages */
	struct ferry_error *complete_err;
	/* What the LAN sent the instance while it was stopped: the target gives
	 * it to the instance once it runs (with the dump log). */
	struct runtime_frame_hold *hold;
};

/* CRIU's images, on the state stream, as CRIU closes them (the image
 * files it rewrites go again: the target keeps the last), until the dump
 * is over (dump_end); then whatever was not sent (ferry's own files, the
 * dump's log) or changed since. Called off (dump_end 2, the dump failed):
 * the stream is left unfinished, so that the target restores nothing. */
struct sent_image {
	char *name;
	struct timespec mtime, ctime;
	off_t size;
};

static bool image_sent_as_is(struct sent_image *sent, size_t n, const char *name, const struct stat *st)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(sent[i].name, name) == 0)
			return sent[i].size == st->st_size && sent[i].mtime.tv_sec == st->st_mtim.tv_sec &&
			       sent[i].mtime.tv_nsec == st->st_mtim.tv_nsec && sent[i].ctime.tv_sec == st->st_ctim.tv_sec &&
			       sent[i].ctime.tv_nsec == st->st_ctim.tv_nsec;
	return false;
}

static int image_send(struct image_tree_writer *w, const char *dir, const char *name, struct sent_image **sent,
		      size_t *n, struct ferry_error **err)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, name);
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	if (image_tree_writer_add(w, path, err) < 0)
		return -1;
	size_t i = 0;
	while (i < *n && strcmp((*sent)[i].name, name) != 0)
		i++;
	if (i == *n) {
		*sent = realloc(*sent, (*n + 1) * sizeof(**sent));
		if (*sent == NULL)
			abort();
		(*sent)[(*n)++] = (struct sent_image){ .name = xstrdup(name) };
	}
	(*sent)[i].size = st.st_size;
	(*sent)[i].mtime = st.st_mtim;
	(*sent)[i].ctime = st.st_ctim;
	return 0;
}

/* The closed files inotify reported: sent. */
static int images_drain(struct handover *h, struct image_tree_writer *w, const char *dir, struct sent_image **sent,
			size_t *n, struct ferry_error **err)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t len = read(h->images_watch, buf, sizeof(buf));
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0)
			return 0; /* EAGAIN: nothing more for now */
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			/* Dot-names are no images (the final scan passes them over too). */
			if (ev->len > 0 && ev->name[0] != '.' && image_send(w, dir, ev->name, sent, n, err) < 0)
				return -1;
		}
	}
}

static int images_stream(struct handover *h, struct ferry_error **err)
{
	cleanup_free char *dir = instance_state_dir(h->job->name);
	struct fs_sink sink = { .ws = h->job->state, .op = h->op };
	struct archive *tar = tree_tar_open(&sink, err);
	if (tar == NULL)
		return -1;
	struct image_tree_writer *w = image_tree_writer_new(tar, dir, 0, 0);
	struct sent_image *sent = NULL;
	size_t n = 0;
	uint64_t end = 0;
	int ret = 0;
	while (ret == 0 && end == 0) {
		struct pollfd p[2] = { { .fd = h->images_watch, .events = POLLIN }, { .fd = h->dump_end, .events = POLLIN } };
		/* A watch that could not be set (-1) is ignored by poll. */
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			ret = error_sys(err, errno, "wait for CRIU's images");
		else if (h->images_watch >= 0 && (p[0].revents & POLLIN))
			ret = images_drain(h, w, dir, &sent, &n, err);
		if (ret == 0 && read(h->dump_end, &end, sizeof(end)) < 0 && errno != EAGAIN)
			ret = error_sys(err, errno, "wait for the dump's end");
	}
	if (ret == 0 && end != 1)
		ret = error_set(err, 500, ECANCELED, "the dump was called off");
	if (ret == 0 && h->images_watch >= 0)
		ret = images_drain(h, w, dir, &sent, &n, err);
	/* What inotify did not report (written before the freeze, or while no
	 * watch could be set), or changed since it was sent. */
	DIR *d = ret == 0 ? opendir(dir) : NULL;
	if (ret == 0 && d == NULL)
		ret = error_sys(err, errno, "open %s", dir);
	struct dirent *de;
	while (ret == 0 && (de = readdir(d)) != NULL) {
		struct stat st;
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || image_sent_as_is(sent, n, de->d_name, &st))
			continue;
		ret = image_send(w, dir, de->d_name, &sent, &n, err);
	}
	if (d != NULL)
		closedir(d);
	image_tree_writer_free(w);
	for (size_t i = 0; i < n; i++)
		free(sent[i].name);
	free(sent);
	ret = tree_tar_close(tar, &sink, dir, ret, err);
	h->walk_bytes += sink.sent;
	return ret;
}

static void *rootfs_walk(void *arg)
{
	struct handover *h = arg;
	h->walk_result = send_rootfs_changes(h->op, h->job, h->rootfs, h->shift, h->first_pass, &h->walk_bytes,
					     &h->walk_err);
	if (h->walk_result == 0)
		h->walk_result = send_dev(h->op, h->job, h->shift, &h->walk_bytes, &h->walk_err);
	if (h->walk_result == 0)
		h->walk_result = images_stream(h, &h->walk_err);
	h->walk_done = true;
	return NULL;
}

/* The container is frozen, CRIU about to start (runtime_checkpoint_opts
 * .frozen): the rootfs's changes go meanwhile, then CRIU's images as it
 * writes them. The watch is set before CRIU starts. */
static void rootfs_walk_start(void *arg)
{
	struct handover *h = arg;
	cleanup_free char *dir = instance_state_dir(h->job->name);
	h->images_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (h->images_watch >= 0 && inotify_add_watch(h->images_watch, dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		log_warn("instance %s: no watch on %s (%s): its images go after the dump", h->job->name, dir,
			 strerror(errno));
		close(steal_fd(&h->images_watch));
	}
	h->walking = pthread_create(&h->walker, NULL, rootfs_walk, h) == 0;
}

/* The dump is over (or called off: the images stream is left unfinished). */
static void dump_ended(struct handover *h, bool over)
{
	uint64_t v = over ? 1 : 2;
	if (h->dump_end >= 0 && write(h->dump_end, &v, sizeof(v)) < 0)
		log_warn("instance %s: the image streamer missed the dump's end: %s", h->job->name, strerror(errno));
}

/* The rootfs's changes are sent (or failed): 0, or -1 with why. */
static int rootfs_walk_join(struct handover *h, struct ferry_error **err)
{
	if (h->walking) {
		pthread_join(h->walker, NULL);
		h->walking = false;
	}
	if (!h->walk_done)
		rootfs_walk(h); /* no walker ran (it could not start): here, now */
	if (h->walk_result < 0) {
		error_move(err, &h->walk_err);
		return -1;
	}
	return 0;
}

/* The instance is checkpointed: the rootfs's changes are through (or go
 * now), and the state: the images CRIU has not closed yet, with the dump's
 * log. */
static int send_state(struct handover *h, struct ferry_error **err)
{
	h->t_dumped = now_ms();
	operation_set_metadata_key(h->op, "phase", json_string("sending the state"));
	dump_ended(h, true);
	int r = rootfs_walk_join(h, err);
	h->t_sent = now_ms();
	if (r == 0)
		log_info("instance %s: sent its state and rootfs changes (%llu bytes)", h->job->name, h->walk_bytes);
	if (r == 0 && h->job->sums != NULL) {
		struct image_delta_stats d = image_sent_sums_stats(h->job->sums);
		if (d.delta_files > 0)
			log_info("instance %s: %zu big file(s) changed since the first pass went as their changed "
				 "blocks: %llu of %llu bytes",
				 h->job->name, d.delta_files, d.delta_changed, d.delta_bytes);
	}
	return r;
}

/* A tree of its own on the state stream (migrate.h), from a scratch
 * directory of the instance (sub) that fill fills. Best effort: lost says
 * what is lost when it fails. True when it went. */
static bool send_scratch_tree(struct handover *h, const char *sub, void (*fill)(const char *name, const char *dir, void *arg),
			      void *arg, const char *lost)
{
	const char *name = h->job->name;
	cleanup_free char *inst = instance_dir(name);
	cleanup_free char *dir = xasprintf("%s/%s", inst, sub);
	cleanup_error struct ferry_error *e = NULL;
	unsigned long long sent = 0;
	if (rm_rf(dir, &e) < 0 || mkdir_p(dir, 0700, &e) < 0) {
		log_warn("instance %s: %s: %s", name, lost, e->msg);
		return false;
	}
	fill(name, dir, arg);
	bool went = send_tree(h->op, h->job->state, dir, 0, NULL, NULL, NULL, NULL, &sent, &e) == 0;
	if (!went)
		log_warn("instance %s: %s: %s", name, lost, e->msg);
	error_free(&e);
	if (rm_rf(dir, &e) < 0)
		log_warn("instance %s: %s", name, e->msg);
	return went;
}

struct held_frames {
	const char *data;
	size_t len, frames, dropped;
};

static void write_held_frames(const char *name, const char *dir, void *arg)
{
	struct held_frames *f = arg;
	if (f->frames == 0)
		return;
	cleanup_free char *path = xasprintf("%s/" MIGRATE_HELD_FRAMES, dir);
	cleanup_error struct ferry_error *e = NULL;
	if (file_write_volatile(path, f->data, f->len, 0600, &e) < 0)
		log_warn("instance %s: the frames held while it moved are lost: %s", name, e->msg);
}

/* Once the target runs it: the frames held while it was stopped, a tree
 * of at most one file on the state stream (migrate.h), first: the LAN's
 * requests among them wait for their answers. */
static void send_held_frames(struct handover *h)
{
	struct held_frames f = { 0 };
	if (h->hold != NULL)
		f.data = runtime_frame_hold_frames(h->hold, &f.len, &f.frames, &f.dropped);
	if (send_scratch_tree(h, ".held-frames", write_held_frames, &f, "the frames held while it moved are lost") &&
	    (f.frames > 0 || f.dropped > 0))
		log_info("instance %s: %zu frames (%zu bytes) came for it while it was stopped: sent to the target "
			 "(%zu more dropped)",
			 h->job->name, f.frames, f.len, f.dropped);
}

static void fill_dump_log(const char *name, const char *dir, void *arg)
{
	(void)arg;
	copy_dump_log(name, dir);
}

/* Then the dump's log, a tree of one file on the state stream (migrate.h).
 * Best effort: the move is done. */
static void send_dump_log(struct handover *h)
{
	send_scratch_tree(h, ".dump-log", fill_dump_log, NULL, "the dump log stays here only");
}

/* The target restores it; commit; hear that it runs. A failure before the
 * commit leaves h->committed false (the source may run it again). */
static int take_over(struct handover *h, struct ferry_error **err)
{
	struct source_job *job = h->job;
	struct migrate_result res = { 0 };
	operation_set_metadata_key(h->op, "phase", json_string("restore"));
	int r = migrate_recv_result(job->control, &res, MIGRATE_RESTORE_TIMEOUT_MS, err);
	if (r == 0 && !res.success)
		r = error_set(err, 500, 0, "the target could not restore it: %s",
			      res.message ? res.message : "no reason given");
	migrate_result_clear(&res);
	if (r < 0)
		return -1;
	pthread_mutex_lock(&h->lock);
	if (h->dump_over)
		r = error_set(err, 500, EPIPE, "the pages stopped before the commit");
	else
		r = instance_config_mark(job->name, INSTANCE_KEY_OUTGOING, "committed", err);
	h->committed = r == 0;
	pthread_mutex_unlock(&h->lock);
	if (r < 0)
		return -1;
	h->t_restored = now_ms();
	int sent = migrate_send_commit(job->control, err);
	int r2 = sent < 0 ? -1 : migrate_recv_result(job->control, &res, MIGRATE_COMMIT_TIMEOUT_MS, err);
	h->t_running = now_ms();
	if (r2 == 0 && res.success) {
		runtime_frame_hold_end(h->hold);
		send_held_frames(h);
	}
	/* The copy here never runs again: off the LAN (post-copy keeps it,
	 * frozen, while it serves the pages, and its kernel would answer ARP
	 * for the address the target has now, were its veths put back on
	 * their bridges). After the target's answer: deleting a device takes
	 * ~20 ms here, and the network lock keeps them off the bridges
	 * meanwhile. */
	instance_cut_host_veths(job->name);
	if (r2 < 0 || !res.success) {
		if (*err == NULL)
			error_set(err, 500, 0, "%s", res.message ? res.message : "no reason given");
		migrate_result_clear(&res);
		return error_wrap(err, "the target restored the instance but did not confirm that it runs");
	}
	migrate_result_clear(&res);
	return 0;
}

/* The dump failed before the handover (the instance runs on here): when
 * the target's side broke it (its page server: a full disk, say), the
 * target's reason is the one to give; not when the target only saw the
 * streams end (CRIU's own failure here: its line says why). */
static void dump_failed(struct handover *h, struct ferry_error **err)
{
	if (h->err != NULL || h->committed)
		return;
	struct migrate_result res = { 0 };
	cleanup_error struct ferry_error *e = NULL;
	/* Its wait for the rootfs's changes or the state ends: it answers on
	 * control. */
	ws_close(h->job->fs, 1000, "");
	ws_close(h->job->state, 1000, "");
	if (migrate_recv_result(h->job->control, &res, MIGRATE_REASON_TIMEOUT_MS, &e) == 0 && !res.success &&
	    res.message != NULL && strstr(res.message, MIGRATE_STREAM_CLOSED_EARLY) == NULL) {
		error_free(err);
		error_set(err, 500, 0, "the target failed: %s", res.message);
		error_wrap(err, "the instance runs here again");
	}
	migrate_result_clear(&res);
}

static void report_times(struct handover *h)
{
	const char *name = h->job->name;
	json_t *times = json_pack("{s:I, s:I, s:I, s:I, s:I}", "checkpoint_ms", (json_int_t)(h->t_dumped - h->t_freeze),
				  "transfer_ms", (json_int_t)(h->t_sent - h->t_dumped), "restore_ms",
				  (json_int_t)(h->t_restored - h->t_sent), "resume_ms", (json_int_t)(h->t_running - h->t_restored),
				  "downtime_ms", (json_int_t)(h->t_running - h->t_freeze));
	if (h->t_done > 0) {
		json_object_set_new(times, "pages_ms", json_integer(h->t_done - h->t_running));
		json_object_set_new(times, "pages_bytes", json_integer((json_int_t)h->page_bytes));
	}
	operation_set_metadata_key(h->op, "migration_times", times);
	operation_set_metadata_key(h->op, "phase", json_string("done"));
	log_info("instance %s: moved live: stopped for %lld ms (checkpoint %lld, transfer %lld, restore %lld, "
		 "resume %lld)%s",
		 name, h->t_running - h->t_freeze, h->t_dumped - h->t_freeze, h->t_sent - h->t_dumped,
		 h->t_restored - h->t_sent, h->t_running - h->t_restored, h->t_done > 0 ? ", then its pages followed" : "");
}

/* The target's answer to the header: its plan for the instance (one that
 * fits what was offered), or why it refuses. *plan: MIGRATE_PLAN_*. */
static int await_plan(struct source_job *job, bool running, bool live, char **plan, struct ferry_error **err)
{
	struct migrate_result res = { 0 };
	if (migrate_recv_result(job->control, &res, MIGRATE_PLAN_TIMEOUT_MS, err) < 0)
		return -1;
	if (!res.success) {
		error_set(err, 500, 0, "the target refused: %s", res.message ? res.message : "no reason given");
		migrate_result_clear(&res);
		return -1;
	}
	const char *p = res.plan ? res.plan : "";
	bool fits = running ? strcmp(p, MIGRATE_PLAN_COPY) == 0 || strcmp(p, MIGRATE_PLAN_STOP) == 0 ||
				      (live && strcmp(p, MIGRATE_PLAN_LIVE) == 0)
			    : strcmp(p, MIGRATE_PLAN_COLD) == 0;
	if (!fits) {
		error_set(err, 502, EPROTO, "the target's plan \"%s\" does not fit a%s instance%s", p,
			  running ? " running" : " stopped", running && !live ? " not asked to move live" : "");
		migrate_result_clear(&res);
		return -1;
	}
	*plan = steal_pointer(&res.plan);
	migrate_result_clear(&res);
	return 0;
}

/* The target's checks and the first pass: nothing is frozen yet. */
static int await_ready(struct source_job *job, struct ferry_error **err)
{
	struct migrate_result res = { 0 };
	if (migrate_recv_result(job->control, &res, 3600 * 1000, err) < 0)
		return -1;
	if (!res.success) {
		error_set(err, 500, 0, "the target refused: %s", res.message ? res.message : "no reason given");
		migrate_result_clear(&res);
		return -1;
	}
	migrate_result_clear(&res);
	return 0;
}

/* CRIU could not serve every page: may its tasks run here again? */
static bool lazy_failed(void *arg)
{
	struct handover *h = arg;
	pthread_mutex_lock(&h->lock);
	h->dump_over = true;
	bool committed = h->committed;
	pthread_mutex_unlock(&h->lock);
	return committed;
}

/* Both memory modes, once the target is ready: the page relay, the
 * checkpoint (INSTANCE_KEY_OUTGOING = mark while it lasts; o gets the
 * socket and the hooks' argument), then what is left to wind down once
 * CRIU returns: the rootfs walk, the takeover watcher, the relay. Returns
 * the dump's result, with the target's reason when its side broke it. */
static int handover_run(struct handover *h, const char *mark, struct runtime_checkpoint_opts *o,
			struct ferry_error **err)
{
	struct source_job *job = h->job;
	int criu_socket = -1;
	pthread_mutex_init(&h->lock, NULL);
	/* The page relay, and CRIU on it, while the target gets ready: CRIU's
	 * start-up is over by the freeze. */
	struct checkpoint_swrk swrk = { .pid = -1, .fd = -1 };
	h->images_watch = -1;
	h->dump_end = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int r = h->dump_end < 0 ? error_sys(err, errno, "eventfd") : 0;
	if (r == 0)
		r = migrate_pages_source_start(o->lazy, job->pages, job->page_requests, &criu_socket, &h->pages, err);
	if (r == 0)
		r = checkpoint_swrk_start(criu_socket, &swrk, err);
	if (r == 0) {
		cleanup_free char *dir = instance_dir(job->name);
		cleanup_error struct ferry_error *e = NULL;
		if (runtime_frame_hold_prepare(dir, &h->hold, &e) < 0)
			log_warn("instance %s: its frames are not held while it moves: %s", job->name, e->msg);
		o->hold = h->hold;
	}
	if (r == 0 && await_ready(job, err) < 0)
		r = error_wrap(err, "nothing was frozen: the instance keeps running here");
	if (r == 0) {
		operation_set_metadata_key(h->op, "phase", json_string("checkpoint"));
		r = instance_config_mark(job->name, INSTANCE_KEY_OUTGOING, mark, err);
	}
	bool dumped = r == 0;
	if (dumped) {
		h->t_freeze = now_ms();
		o->page_socket = criu_socket;
		o->frozen = rootfs_walk_start;
		o->post_dump_arg = h;
		o->swrk = &swrk;
		r = instance_stop_stateful_as(job->name, "migration", o, err);
		if (o->lazy)
			h->t_done = now_ms();
	}
	checkpoint_swrk_stop(&swrk);
	/* A dump that failed before its notification: the walker stops. */
	dump_ended(h, false);
	if (h->walking)
		pthread_join(h->walker, NULL);
	error_free(&h->walk_err);
	if (h->images_watch >= 0)
		close(steal_fd(&h->images_watch));
	if (h->dump_end >= 0)
		close(steal_fd(&h->dump_end));
	lazy_failed(h); /* no commit after this point */
	if (criu_socket >= 0)
		close(criu_socket);
	if (h->watching)
		pthread_join(h->watcher, NULL);
	h->page_bytes = migrate_pages_stop(h->pages);
	pthread_mutex_destroy(&h->lock);
	runtime_frame_hold_free(steal_pointer(&h->hold));
	if (!dumped)
		return r;
	/* Sent, or of no use: the dump's images go (the state directory, a
	 * link to them, goes with the saved state). */
	instance_dump_staging_clear(job->name);
	/* Only now: the watcher may have marked the commit until it ended. */
	cleanup_error struct ferry_error *e = NULL;
	if (instance_config_mark(job->name, INSTANCE_KEY_OUTGOING, NULL, &e) < 0)
		log_error("instance %s: %s", job->name, e->msg);
	if (r < 0)
		dump_failed(h, err);
	return r;
}

/* CRIU's post-dump notification in a stop-and-copy: every page is with
 * the target's page server, the other images are complete, the tasks
 * frozen. The target takes over now; until its commit, non-zero gives the
 * tasks back here (CRIU resumes them, network unlocked). */
static int copy_post_dump(void *arg)
{
	struct handover *h = arg;
	operation_set_metadata_key(h->op, "phase", json_string("sending the state"));
	if (send_state(h, &h->err) < 0 || take_over(h, &h->err) < 0)
		return h->committed ? 0 : 1;
	send_dump_log(h);
	return 0;
}

/* Stop-and-copy: CRIU streams every page to the target as it dumps them,
 * then the rest of the state goes; the target restores it whole. */
static int live_handover(struct operation *op, struct source_job *job, const char *rootfs, unsigned shift,
			 const struct timespec *first_pass, struct ferry_error **err)
{
	struct handover h = { .op = op, .job = job, .rootfs = rootfs, .shift = shift, .first_pass = first_pass };
	struct runtime_checkpoint_opts o = { .page_server = true, .post_dump = copy_post_dump };
	int r = handover_run(&h, "frozen", &o, err);
	if (r < 0 && h.err != NULL) {
		/* Called off at the notification: CRIU gave the tasks back, they
		 * run here. The target's side of it says more than CRIU's. */
		error_free(err);
		error_move(err, &h.err);
		error_wrap(err, "the instance runs here again");
	} else if (r == 0 && h.err != NULL) {
		error_move(err, &h.err);
		error_wrap(err, "the copy here is gone: it runs there unless the target failed to resume it");
		r = -1;
	}
	cleanup_error struct ferry_error *e = NULL;
	if ((r == 0 || h.committed) && instance_discard_state(job->name, &e) < 0)
		log_error("instance %s: after the move: %s", job->name, e->msg);
	if (r == 0)
		report_times(&h);
	error_free(&h.err);
	return r < 0 ? -1 : 0;
}

/* Post-copy, while CRIU serves pages: the takeover, then the target's
 * word that every page is in (or not), which ends the page serving. */
static void *takeover_watch(void *arg)
{
	struct handover *h = arg;
	if (take_over(h, &h->err) < 0 && !h->committed) {
		migrate_pages_source_end(h->pages, false);
		return NULL;
	}
	send_dump_log(h);
	/* Committed: the pages must follow while the target wants them. */
	operation_set_metadata_key(h->op, "phase", json_string("pages"));
	int r = migrate_recv_result(h->job->control, &h->complete, 24 * 3600 * 1000, &h->complete_err);
	migrate_pages_source_end(h->pages, r == 0 && h->complete.success);
	return NULL;
}

/* CRIU's post-dump notification: the images are written, the pages not;
 * the tasks wait, frozen. Non-zero calls the dump off (they run again). */
static int lazy_post_dump(void *arg)
{
	struct handover *h = arg;
	operation_set_metadata_key(h->op, "phase", json_string("sending the state"));
	if (send_state(h, &h->err) < 0)
		return 1;
	/* The target restores while CRIU serves the pages it faults. */
	int r = pthread_create(&h->watcher, NULL, takeover_watch, h);
	if (r != 0) {
		error_set(&h->err, 500, r, "post-copy: no thread for the takeover: %s", strerror(r));
		return 1;
	}
	h->watching = true;
	return 0;
}

/* Post-copy: CRIU dumps all but the memory; the target runs the instance
 * as soon as it is restored, and the pages follow (migrate.h). */
static int live_handover_post_copy(struct operation *op, struct source_job *job, const char *rootfs, unsigned shift,
				   const struct timespec *first_pass, struct ferry_error **err)
{
	struct handover h = { .op = op, .job = job, .rootfs = rootfs, .shift = shift, .first_pass = first_pass };
	struct runtime_checkpoint_opts o = { .lazy = true, .post_dump = lazy_post_dump, .lazy_failed = lazy_failed };
	int r = handover_run(&h, "post-copy", &o, err);
	cleanup_error struct ferry_error *e = NULL;
	if (r < 0 && !h.committed) {
		/* The dump was called off or its pages stopped before the commit:
		 * CRIU gave the tasks back, they run here. The target's side of it
		 * says more than CRIU's. */
		if (h.err != NULL) {
			error_free(err);
			error_move(err, &h.err);
			error_wrap(err, "the instance runs here again");
		}
	} else if (r < 0) {
		const char *why = h.complete_err ? h.complete_err->msg
				  : !h.complete.success && h.complete.message ? h.complete.message
									       : NULL;
		error_wrap(err, "the target ran it, but its memory could not all follow%s%s; the target stopped its "
				"copy, and so did the source: the instance stays here, stopped, with its rootfs as it "
				"was when it froze",
			   why ? ": " : "", why ? why : "");
	} else if (!h.complete.success) {
		/* CRIU's page server ended cleanly, yet the target did not confirm. */
		r = error_set(err, 500, 0, "post-copy: the target did not confirm that it has every page: %s",
			      h.complete_err ? h.complete_err->msg : h.complete.message ? h.complete.message : "?");
	}
	if (r == 0) {
		if (instance_discard_state(job->name, &e) < 0)
			log_error("instance %s: after the move: %s", job->name, e->msg);
		report_times(&h);
	}
	error_free(&h.err);
	error_free(&h.complete_err);
	migrate_result_clear(&h.complete);
	return r < 0 ? -1 : 0;
}

/* A stream broke: the target may have stopped reading because it
 * refused, and its reason is better. */
static void refused_reason(struct source_job *job, struct ferry_error **err)
{
	struct migrate_result res = { 0 };
	cleanup_error struct ferry_error *e = NULL;
	if (migrate_recv_result(job->control, &res, MIGRATE_REASON_TIMEOUT_MS, &e) == 0 && !res.success) {
		error_free(err);
		error_set(err, 500, 0, "the target refused: %s", res.message ? res.message : "no reason given");
	}
	migrate_result_clear(&res);
}

/* Not live: the target answers once the last file is on its disk. */
static int await_arrival(struct source_job *job, struct ferry_error **err)
{
	struct migrate_result res = { 0 };
	if (migrate_recv_result(job->control, &res, 3600 * 1000, err) < 0)
		return -1;
	int r = res.success ? 0
			    : error_set(err, 500, 0, "the target refused: %s",
					res.message ? res.message : "no reason given");
	migrate_result_clear(&res);
	return r;
}

/* A snapshot to another server, as a new instance there (LXD's POST
 * /1.0/instances/NAME/snapshots/SNAP {"migration": true}): the header is
 * the snapshot's record, without snapshots; then its rootfs; no state (a
 * stateful snapshot's copy starts afresh, as a local copy does). */
static int snapshot_source_run(struct operation *op, struct source_job *job, struct ferry_error **err)
{
	struct db_snapshot snap = { 0 };
	json_t *none = json_array();
	cleanup_free char *sdir = snapshot_dir(job->name, job->snapshot);
	cleanup_free char *srootfs = xasprintf("%s/rootfs", sdir);
	cleanup_free char *plan = NULL;
	int ret = -1;

	instance_lock(job->name);
	if (wait_streams(op, job, err) < 0 || db_snapshot_get(daemon_ctx->db, job->name, job->snapshot, &snap, err) < 0)
		goto out;
	struct instance_idmap map;
	if (instance_idmap(job->name, &map, err) < 0)
		goto out;
	struct migrate_header h = {
		.name = job->name, .architecture = snap.architecture, .description = snap.description,
		.config = snap.config, .devices = snap.devices, .profiles = snap.profiles, .snapshots = none,
	};
	if (migrate_send_header(job->control, &h, err) < 0 || await_plan(job, false, false, &plan, err) < 0)
		goto out;
	unsigned long long sent = 0;
	if (send_rootfs(op, job->fs, srootfs, map.base, NULL, &sent, err) < 0) {
		refused_reason(job, err);
		goto out;
	}
	operation_set_metadata_key(op, "fs_progress", json_sprintf("%llu bytes sent", sent));
	if (await_arrival(job, err) < 0)
		goto out;
	log_info("instance %s: snapshot %s sent to a migration target (%llu bytes of rootfs)", job->name, job->snapshot,
		 sent);
	ret = 0;
out:
	json_decref(none);
	db_snapshot_clear(&snap);
	instance_unlock(job->name);
	close_streams(job);
	if (ret < 0)
		error_wrap(err, "migrate \"%s/%s\"", job->name, job->snapshot);
	return ret;
}

static int source_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct source_job *job = data;
	if (job->snapshot != NULL)
		return snapshot_source_run(op, job, err);
	struct db_instance inst = { 0 };
	json_t *snapshots = NULL;
	/* Declared before the first goto: cleanup must never see them uninitialised. */
	cleanup_free char *rootfs = instance_rootfs(job->name);
	cleanup_free char *state_dir = instance_state_dir(job->name);
	cleanup_free char *cpuinfo = NULL;
	cleanup_free char *plan = NULL;
	bool stopped_here = false;
	int ret = -1;

	instance_lock(job->name);
	if (wait_streams(op, job, err) < 0)
		goto out;
	if (instance_get(job->name, &inst, err) < 0)
		goto out;
	bool running = instance_is_running(job->name);
	bool live = running && job->live;
	/* Stopped with its state: the state goes along (its start restores it). */
	bool stateful = !running && job->stateful && inst.stateful && access(state_dir, F_OK) == 0;
	if (!running && inst.stateful && !stateful)
		log_warn("instance %s: moves without the state its stateful stop saved (the request did not ask for it): "
			 "it boots at its next start",
			 job->name);
	struct instance_idmap map;
	if (instance_idmap(job->name, &map, err) < 0)
		goto out;
	if (live || stateful) {
		cleanup_free char *img = NULL;
		size_t img_len = 0;
		if (checkpoint_cpuinfo_dump(&img, &img_len, err) < 0)
			goto out;
		cpuinfo = tls_base64_encode(img, img_len);
	}
	if (job->instance_only)
		snapshots = json_array();
	else if (snapshots_header(job->name, &snapshots, err) < 0)
		goto out;
	struct migrate_header h = {
		.name = inst.name, .architecture = inst.architecture, .description = inst.description,
		.ephemeral = inst.ephemeral, .config = inst.config, .devices = inst.devices,
		.profiles = inst.profiles, .snapshots = snapshots, .live = live, .stateful = stateful, .cpuinfo = cpuinfo,
		.post_copy = live && job->post_copy, .running = running,
	};
	if (live) {
		struct runtime_state rs;
		struct ferry_error *e = NULL;
		if (instance_runtime_state(job->name, &rs, &e) == 0 && rs.memory_usage > 0)
			h.memory = (unsigned long long)rs.memory_usage;
		error_free(&e);
	}
	if (migrate_send_header(job->control, &h, err) < 0)
		goto out;
	/* The target's plan: how a running instance goes (or why not at all). */
	if (await_plan(job, running, live, &plan, err) < 0)
		goto out;
	/* Only a live move dumps the tasks (a copy reads the rootfs alone). */
	if (strcmp(plan, MIGRATE_PLAN_LIVE) == 0 && instance_checkpoint_check(job->name, "move", err) < 0)
		goto out;
	if (strcmp(plan, MIGRATE_PLAN_COPY) == 0) {
		live = false;
		log_info("instance %s: copied while it runs (a copy of its rootfs as it is meanwhile, without its state)",
			 job->name);
	} else if (strcmp(plan, MIGRATE_PLAN_STOP) == 0) {
		live = false;
		if (instance_stop_keep(job->name, MIGRATE_STOP_TIMEOUT_S, false, err) < 0) {
			error_wrap(err, "stop it before it moves");
			goto out;
		}
		stopped_here = true;
		log_info("instance %s: stopped for a move that is not live", job->name);
	}
	/* A live move's second pass sends what changed after this. */
	struct timespec first_pass;
	clock_gettime(CLOCK_REALTIME, &first_pass);
	unsigned long long sent = 0;
	/* Each snapshot's rootfs, oldest first, then the instance's. */
	int sent_ok = 0;
	size_t i;
	json_t *snap;
	json_array_foreach(snapshots, i, snap) {
		cleanup_free char *sdir = snapshot_dir(job->name, json_string_value(json_object_get(snap, "name")));
		cleanup_free char *srootfs = xasprintf("%s/rootfs", sdir);
		unsigned long long n = 0;
		sent_ok = send_rootfs(op, job->fs, srootfs, map.base, NULL, &n, err);
		sent += n;
		/* A stateful snapshot's CRIU images follow its rootfs. */
		if (sent_ok == 0 && json_is_true(json_object_get(snap, "stateful"))) {
			cleanup_free char *sstate = xasprintf("%s/state", sdir);
			sent_ok = send_tree(op, job->fs, sstate, 0, NULL, NULL, NULL, NULL, &n, err);
			sent += n;
		}
		if (sent_ok < 0)
			break;
	}
	if (sent_ok == 0) {
		unsigned long long n = 0;
		/* A live move sends the big files changed since as their changes. */
		if (live)
			job->sums = image_sent_sums_new();
		sent_ok = send_rootfs(op, job->fs, rootfs, map.base, job->sums, &n, err);
		sent += n;
	}
	/* The saved state's CRIU images, as they are (ids unshifted). */
	if (sent_ok == 0 && stateful) {
		unsigned long long n = 0;
		sent_ok = send_tree(op, job->fs, state_dir, 0, NULL, NULL, NULL, NULL, &n, err);
		sent += n;
	}
	if (sent_ok < 0) {
		refused_reason(job, err);
		goto out;
	}
	operation_set_metadata_key(op, "fs_progress", json_sprintf("%llu bytes sent", sent));
	if (live) {
		ret = job->post_copy ? live_handover_post_copy(op, job, rootfs, map.base, &first_pass, err)
				     : live_handover(op, job, rootfs, map.base, &first_pass, err);
		goto out;
	}
	if (await_arrival(job, err) < 0)
		goto out;
	log_info("instance %s: sent to a migration target (%llu bytes of rootfs)", job->name, sent);
	ret = 0;
out:
	/* A move that stopped it and failed: it runs here again. */
	if (ret < 0 && stopped_here) {
		cleanup_error struct ferry_error *e = NULL;
		if (instance_start(job->name, &e) < 0) {
			log_error("instance %s: starting it again after the failed move: %s", job->name, e->msg);
			error_wrap(err, "it was stopped for the move, and starting it here again failed (%s)", e->msg);
		} else {
			log_info("instance %s: started again: the move failed", job->name);
			error_wrap(err, "it was stopped for the move and runs here again");
		}
	}
	json_decref(snapshots);
	db_instance_clear(&inst);
	instance_unlock(job->name);
	close_streams(job);
	if (ret < 0)
		error_wrap(err, "migrate \"%s\"", job->name);
	return ret;
}

/* A job for name, with the secrets of its control and fs streams. */
static struct source_job *source_job_new(const char *name)
{
	struct source_job *job = xcalloc(1, sizeof(*job));
	job->name = xstrdup(name);
	job->secret_control = instance_new_secret();
	job->secret_fs = instance_new_secret();
	return job;
}

/* The job's listener, and its operation with the secrets (a live job's
 * state and page streams' too) as metadata. */
static struct response *source_job_respond(struct source_job *job, const char *description)
{
	cleanup_error struct ferry_error *err = NULL;
	cleanup_free char *cert = xasprintf("%s/server.crt", daemon_ctx->root);
	cleanup_free char *key = xasprintf("%s/server.key", daemon_ctx->root);
	if (migrate_listener_open(NULL, cert, key, &job->listener, &err) < 0) {
		source_job_free(job);
		return response_from_error(err);
	}
	json_t *metadata = json_pack("{s:s, s:s}", MIGRATE_SECRET_CONTROL, job->secret_control, MIGRATE_SECRET_FS,
				     job->secret_fs);
	if (job->live) {
		json_object_set_new(metadata, MIGRATE_SECRET_STATE, json_string(job->secret_state));
		json_object_set_new(metadata, MIGRATE_SECRET_PAGES, json_string(job->secret_pages));
		json_object_set_new(metadata, MIGRATE_SECRET_PAGE_REQUESTS, json_string(job->secret_page_requests));
		json_object_set_new(metadata, "memory", json_string(job->post_copy ? "post-copy" : "stop-and-copy"));
	}
	json_object_set_new(metadata, MIGRATE_SECRET_PORT, json_sprintf("%d", migrate_listener_port(job->listener)));
	return instance_operation_respond(true, description, job->name, metadata, source_run, source_connect, job,
					  source_job_free);
}

struct response *migrate_source_snapshot_respond(const char *name, const char *snapshot)
{
	struct source_job *job = source_job_new(name);
	job->snapshot = xstrdup(snapshot);
	return source_job_respond(job, "Migrating snapshot");
}

struct response *migrate_source_respond(const char *name, json_t *body)
{
	cleanup_error struct ferry_error *err = NULL;
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, &err) < 0)
		return response_from_error(err);
	/* How the memory goes: the request's "memory" (ferry's own field),
	 * else the instance's migration.memory. */
	const char *memory = json_string_value(json_object_get(body, "memory"));
	json_t *expanded = instance_expanded_config(&inst);
	cleanup_free char *configured = xstrdup(json_string_value(json_object_get(expanded, "migration.memory")) ?: "");
	json_decref(expanded);
	db_instance_clear(&inst);
	if (memory == NULL)
		memory = configured[0] ? configured : MIGRATE_MEMORY_DEFAULT;
	if (strcmp(memory, "post-copy") != 0 && strcmp(memory, "stop-and-copy") != 0 && strcmp(memory, "auto") != 0)
		return response_error(400, "Invalid memory mode \"%s\" (auto, stop-and-copy or post-copy)", memory);
	bool post_copy = strcmp(memory, "post-copy") == 0;
	if (strcmp(memory, "auto") == 0) {
		struct runtime_state st;
		post_copy = instance_runtime_state(name, &st, &err) == 0 && st.memory_usage >= MIGRATE_POST_COPY_FROM;
		error_free(&err);
	}
	/* An exec session refuses a live move, not a copy: checked once the
	 * target's plan tells one from the other. */
	bool live = json_is_true(json_object_get(body, "live"));
	struct source_job *job = source_job_new(name);
	job->instance_only = json_is_true(json_object_get(body, "instance_only"));
	job->stateful = json_is_true(json_object_get(body, "stateful"));
	job->live = live;
	job->secret_state = instance_new_secret();
	job->post_copy = live && post_copy;
	job->secret_pages = instance_new_secret();
	job->secret_page_requests = instance_new_secret();
	return source_job_respond(job, "Migrating instance");
}
