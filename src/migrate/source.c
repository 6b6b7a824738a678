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
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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

struct source_job {
	char *name;
	char *secret_control, *secret_fs, *secret_state;
	bool instance_only; /* no snapshots */
	bool live;
	/* The streams come in here (channel.h), not through the API server. */
	struct migrate_listener *listener;
	struct ws *control, *fs, *state;
};

static void source_job_free(void *data)
{
	struct source_job *job = data;
	free(job->name);
	free(job->secret_control);
	free(job->secret_fs);
	free(job->secret_state);
	if (job->listener != NULL)
		migrate_listener_close(job->listener);
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
	const char *secrets[] = { job->secret_control, job->secret_fs, job->secret_state };
	struct ws *streams[3] = { NULL };
	size_t n = job->live ? 3 : 2;
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
	return 0;
}

static void close_streams(struct source_job *job)
{
	struct ws **streams[] = { &job->control, &job->fs, &job->state };
	for (size_t i = 0; i < 3; i++) {
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

/* A tree as a tar stream with container ids (the target shifts them into
 * its own map; shift 0: as they are), then an empty message: the end.
 * since (may be NULL): only what changed since then; seen gets every path. */
static int send_tree(struct operation *op, struct ws *ws, const char *rootfs, unsigned shift,
		     const struct timespec *since,
		     void (*seen)(const char *rel, void *arg), void *seen_arg, unsigned long long *sent,
		     struct ferry_error **err)
{
	struct fs_sink sink = { .ws = ws, .op = op };
	struct archive *tar = archive_write_new();
	int ret = -1;
	if (archive_write_set_format_pax_restricted(tar) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(tar, MIGRATE_FS_CHUNK) != ARCHIVE_OK ||
	    archive_write_open(tar, &sink, NULL, fs_sink_write, NULL) != ARCHIVE_OK) {
		error_set(err, 500, 0, "tar writer: %s", archive_error_string(tar));
		goto out;
	}
	if (image_tar_add_tree_changed(tar, rootfs, shift, shift, since, seen, seen_arg, err) < 0)
		goto out;
	if (archive_write_close(tar) != ARCHIVE_OK) {
		error_set(err, 500, archive_errno(tar), "send the rootfs: %s", archive_error_string(tar));
		goto out;
	}
	if (ws_send(ws, WS_BINARY, "", 0, err) < 0)
		goto out;
	ret = 0;
out:
	archive_write_free(tar);
	/* The websocket's own error says more than libarchive's copy of it. */
	if (ret < 0 && sink.err != NULL) {
		error_free(err);
		error_move(err, &sink.err);
		error_wrap(err, "send %s", rootfs);
	}
	error_free(&sink.err);
	*sent = sink.sent;
	return ret;
}

/* The snapshots' rows, oldest first, as the header carries them. */
static int send_rootfs(struct operation *op, struct ws *ws, const char *rootfs, unsigned shift,
		       unsigned long long *sent, struct ferry_error **err)
{
	return send_tree(op, ws, rootfs, shift, NULL, NULL, NULL, sent, err);
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

static void path_seen(const char *rel, void *arg)
{
	json_object_set_new((json_t *)arg, rel, json_true());
}

/* This move's CRIU dump log (the newest migration_dump_*.log: names sort
 * by time) goes along in the state, so that the target keeps it too: the
 * source's copy of the instance, logs and all, is deleted after a move. */
static void copy_dump_log(const char *name, const char *state)
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
	cleanup_free char *to = xasprintf("%s/%s", state, newest);
	cleanup_free char *data = NULL;
	size_t len = 0;
	cleanup_error struct ferry_error *e = NULL;
	if (file_read(from, &data, &len, &e) < 0 || file_write_atomic(to, data, len, 0600, &e) < 0)
		log_warn("instance %s: the dump log stays here only: %s", name, e->msg);
}

/* What a live move sends while the instance is stopped: the rootfs's
 * changes and its paths, then the saved state (with the dump's log) and
 * /dev. */
static int send_final(struct operation *op, struct source_job *job, const char *rootfs, unsigned shift,
		      const struct timespec *first_pass, struct ferry_error **err)
{
	cleanup_free char *state = instance_state_dir(job->name);
	cleanup_free char *dir = instance_dir(job->name);
	cleanup_free char *dev = xasprintf("%s/dev", dir);
	json_t *paths = json_object();
	unsigned long long n = 0, total = 0;
	/* The kernel stamps files with a clock that may lag by a tick: slack. */
	struct timespec since = *first_pass;
	since.tv_nsec -= 50 * 1000000L;
	if (since.tv_nsec < 0) {
		since.tv_sec--;
		since.tv_nsec += 1000000000L;
	}
	int r = send_tree(op, job->fs, rootfs, shift, &since, path_seen, paths, &n, err);
	total += n;
	if (r == 0)
		r = migrate_send_paths(job->control, paths, err);
	json_decref(paths);
	if (r == 0) {
		operation_set_metadata_key(op, "phase", json_string("sending the state"));
		copy_dump_log(job->name, state);
		r = send_tree(op, job->state, state, 0, NULL, NULL, NULL, &n, err);
		total += n;
	}
	if (r == 0) {
		r = send_tree(op, job->state, dev, shift, NULL, NULL, NULL, &n, err);
		total += n;
	}
	if (r == 0)
		log_info("instance %s: sent its state and rootfs changes (%llu bytes)", job->name, total);
	return r;
}

/* After a failure before the commit: the saved state runs here again. */
static void roll_back(const char *name, struct ferry_error **err)
{
	cleanup_error struct ferry_error *e = NULL;
	if (instance_start_mode(name, INSTANCE_START_STATEFUL, NULL, "migration", &e) < 0) {
		error_wrap(err, "restoring it here failed too (%s); its state is kept: \"ferry start %s\" retries", e->msg,
			   name);
		return;
	}
	if (instance_config_mark(name, INSTANCE_KEY_OUTGOING, NULL, &e) < 0)
		log_error("instance %s: %s", name, e->msg);
	error_wrap(err, "the instance runs here again");
}

static int live_handover(struct operation *op, struct source_job *job, const char *rootfs, unsigned shift,
			 const struct timespec *first_pass, struct ferry_error **err)
{
	struct migrate_result res = { 0 };
	/* The target's checks and the first pass: nothing is frozen yet. */
	if (migrate_recv_result(job->control, &res, 3600 * 1000, err) < 0)
		return -1;
	if (!res.success) {
		error_set(err, 500, 0, "the target refused: %s", res.message ? res.message : "no reason given");
		migrate_result_clear(&res);
		return -1;
	}
	migrate_result_clear(&res);

	operation_set_metadata_key(op, "phase", json_string("checkpoint"));
	if (instance_config_mark(job->name, INSTANCE_KEY_OUTGOING, "frozen", err) < 0)
		return -1;
	long long t_freeze = now_ms();
	if (instance_stop_stateful_as(job->name, "migration", err) < 0) {
		cleanup_error struct ferry_error *e = NULL;
		if (instance_config_mark(job->name, INSTANCE_KEY_OUTGOING, NULL, &e) < 0)
			log_error("instance %s: %s", job->name, e->msg);
		return -1;
	}
	long long t_dumped = now_ms();
	int r = send_final(op, job, rootfs, shift, first_pass, err);
	long long t_sent = now_ms();
	if (r == 0) {
		operation_set_metadata_key(op, "phase", json_string("restore"));
		r = migrate_recv_result(job->control, &res, MIGRATE_RESTORE_TIMEOUT_MS, err);
	}
	if (r == 0 && !res.success)
		r = error_set(err, 500, 0, "the target could not restore it: %s",
			      res.message ? res.message : "no reason given");
	migrate_result_clear(&res);
	if (r == 0)
		r = instance_config_mark(job->name, INSTANCE_KEY_OUTGOING, "committed", err);
	if (r < 0) {
		roll_back(job->name, err);
		return -1;
	}
	long long t_restored = now_ms();
	if (migrate_send_commit(job->control, err) < 0 ||
	    migrate_recv_result(job->control, &res, MIGRATE_COMMIT_TIMEOUT_MS, err) < 0 || !res.success) {
		if (*err == NULL)
			error_set(err, 500, 0, "%s", res.message ? res.message : "no reason given");
		migrate_result_clear(&res);
		return error_wrap(err, "the target restored the instance but did not confirm that it runs: "
				       "the saved state stays here, stopped (start it here only if the target "
				       "does not have it)");
	}
	migrate_result_clear(&res);
	long long t_running = now_ms();
	cleanup_error struct ferry_error *e = NULL;
	if (instance_discard_state(job->name, &e) < 0 ||
	    instance_config_mark(job->name, INSTANCE_KEY_OUTGOING, NULL, &e) < 0)
		log_error("instance %s: after the move: %s", job->name, e->msg);
	json_t *times = json_pack("{s:I, s:I, s:I, s:I, s:I}", "checkpoint_ms", (json_int_t)(t_dumped - t_freeze),
				  "transfer_ms", (json_int_t)(t_sent - t_dumped), "restore_ms",
				  (json_int_t)(t_restored - t_sent), "resume_ms", (json_int_t)(t_running - t_restored),
				  "downtime_ms", (json_int_t)(t_running - t_freeze));
	operation_set_metadata_key(op, "migration_times", times);
	operation_set_metadata_key(op, "phase", json_string("done"));
	log_info("instance %s: moved live: stopped for %lld ms (checkpoint %lld, transfer %lld, restore %lld, "
		 "resume %lld)",
		 job->name, t_running - t_freeze, t_dumped - t_freeze, t_sent - t_dumped, t_restored - t_sent,
		 t_running - t_restored);
	return 0;
}

static int source_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct source_job *job = data;
	struct db_instance inst = { 0 };
	json_t *snapshots = NULL;
	/* Declared before the first goto: cleanup must never see them uninitialised. */
	cleanup_free char *rootfs = instance_rootfs(job->name);
	cleanup_free char *cpuinfo = NULL;
	int ret = -1;

	instance_lock(job->name);
	if (wait_streams(op, job, err) < 0)
		goto out;
	if (instance_get(job->name, &inst, err) < 0)
		goto out;
	bool running = instance_is_running(job->name);
	if (running && !job->live) {
		error_bad_request(err, "Instance \"%s\" is running: stop it first, or move it --stateless", job->name);
		goto out;
	}
	bool live = running && job->live;
	if (live && instance_exec_sessions_check(job->name, "move", err) < 0)
		goto out;
	struct instance_idmap map;
	if (instance_idmap(job->name, &map, err) < 0)
		goto out;
	if (live) {
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
		.profiles = inst.profiles, .snapshots = snapshots, .live = live, .rootfs = rootfs, .cpuinfo = cpuinfo,
	};
	if (migrate_send_header(job->control, &h, err) < 0)
		goto out;
	/* A live move's second pass sends what changed after this. */
	struct timespec first_pass;
	clock_gettime(CLOCK_REALTIME, &first_pass);
	unsigned long long sent = 0;
	struct migrate_result res = { 0 };
	/* Each snapshot's rootfs, oldest first, then the instance's. */
	int sent_ok = 0;
	size_t i;
	json_t *snap;
	json_array_foreach(snapshots, i, snap) {
		cleanup_free char *sdir = snapshot_dir(job->name, json_string_value(json_object_get(snap, "name")));
		cleanup_free char *srootfs = xasprintf("%s/rootfs", sdir);
		unsigned long long n = 0;
		sent_ok = send_rootfs(op, job->fs, srootfs, map.base, &n, err);
		sent += n;
		if (sent_ok < 0)
			break;
	}
	if (sent_ok == 0) {
		unsigned long long n = 0;
		sent_ok = send_rootfs(op, job->fs, rootfs, map.base, &n, err);
		sent += n;
	}
	if (sent_ok < 0) {
		/* The target may have stopped reading because it refused: its reason is better. */
		cleanup_error struct ferry_error *e = NULL;
		if (migrate_recv_result(job->control, &res, MIGRATE_REASON_TIMEOUT_MS, &e) == 0 && !res.success) {
			error_free(err);
			error_set(err, 500, 0, "the target refused: %s", res.message ? res.message : "no reason given");
		}
		migrate_result_clear(&res);
		goto out;
	}
	operation_set_metadata_key(op, "fs_progress", json_sprintf("%llu bytes sent", sent));
	if (live) {
		ret = live_handover(op, job, rootfs, map.base, &first_pass, err);
		goto out;
	}
	/* The target answers once the last file is on its disk. */
	if (migrate_recv_result(job->control, &res, 3600 * 1000, err) < 0)
		goto out;
	if (!res.success) {
		error_set(err, 500, 0, "the target refused: %s", res.message ? res.message : "no reason given");
		migrate_result_clear(&res);
		goto out;
	}
	migrate_result_clear(&res);
	log_info("instance %s: sent to a migration target (%llu bytes of rootfs)", job->name, sent);
	ret = 0;
out:
	json_decref(snapshots);
	db_instance_clear(&inst);
	instance_unlock(job->name);
	close_streams(job);
	if (ret < 0)
		error_wrap(err, "migrate \"%s\"", job->name);
	return ret;
}

struct response *migrate_source_respond(const char *name, json_t *body)
{
	cleanup_error struct ferry_error *err = NULL;
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, &err) < 0)
		return response_from_error(err);
	db_instance_clear(&inst);
	bool live = json_is_true(json_object_get(body, "live"));
	if (instance_is_running(name) && !live)
		return response_error(400, "Instance \"%s\" is running: stop it first, or move it --stateless", name);
	if (live && instance_exec_sessions_check(name, "move", &err) < 0)
		return response_from_error(err);
	struct source_job *job = xcalloc(1, sizeof(*job));
	job->name = xstrdup(name);
	job->secret_control = instance_new_secret();
	job->secret_fs = instance_new_secret();
	job->instance_only = json_is_true(json_object_get(body, "instance_only"));
	job->live = live;
	job->secret_state = instance_new_secret();
	cleanup_free char *cert = xasprintf("%s/server.crt", daemon_ctx->root);
	cleanup_free char *key = xasprintf("%s/server.key", daemon_ctx->root);
	if (migrate_listener_open(NULL, cert, key, &job->listener, &err) < 0) {
		source_job_free(job);
		return response_from_error(err);
	}
	json_t *metadata = json_pack("{s:s, s:s}", MIGRATE_SECRET_CONTROL, job->secret_control, MIGRATE_SECRET_FS,
				     job->secret_fs);
	if (live)
		json_object_set_new(metadata, MIGRATE_SECRET_STATE, json_string(job->secret_state));
	json_object_set_new(metadata, MIGRATE_SECRET_PORT, json_sprintf("%d", migrate_listener_port(job->listener)));
	return instance_operation_respond(true, "Migrating instance", name, metadata, source_run, source_connect, job,
					  source_job_free);
}
