/* Instance snapshots and copies.
 *
 * A snapshot lives at CONTAINERS/NAME/snapshots/SNAP:
 *   rootfs/       a copy of the instance's rootfs (cp -a --reflink=auto)
 *   state/        a stateful snapshot's CRIU images (dumped with the
 *                 container left running, at the same frozen instant as
 *                 the rootfs copy)
 *   config.json   the snapshot object as GET returns it (for a reader
 *                 without the database)
 * and its row in the database (db_snapshots.h). The functions here do one
 * action; the endpoints call them holding instance_lock(instance). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

/* CONTAINERS/NAME/snapshots/SNAP (malloc'd). */
char *snapshot_dir(const char *instance, const char *snap);
/* LXD's rules: not empty, no "/", not "." or "..", no white space. 400. */
int snapshot_name_validate(const char *name, struct ferry_error **err);
/* The first free "snapN" (LXD's default names). */
char *snapshot_next_name(const char *instance);

/* Take a snapshot. stateful: the instance must run; it is frozen, its
 * rootfs copied, CRIU dumps it leaving it running (log:
 * LOGDIR/NAME/snapshot_dump_<ts>.log), then it is thawed. Refused (409)
 * while an exec session runs in it. expires_at: RFC 3339, or NULL/"" for
 * never. On failure nothing is left behind and the instance runs on. */
/* A request's "expires_at" (RFC 3339, null, "" or Go's zero time: never). */
int snapshot_parse_expiry(json_t *v, char **out, struct ferry_error **err);
int snapshot_create(const char *instance, const char *snap, bool stateful, const char *expires_at,
		    struct ferry_error **err);
int snapshot_delete(const char *instance, const char *snap, struct ferry_error **err);
/* Delete every snapshot whose expires_at has passed (as LXD does, on a
 * timer); returns how many. snapshots_prune_start runs it now and every
 * SNAPSHOT_PRUNE_INTERVAL_S seconds on a thread of its own. */
#define SNAPSHOT_PRUNE_INTERVAL_S 10
int snapshots_prune_expired(void);
void snapshots_prune_start(void);
int snapshot_rename(const char *instance, const char *snap, const char *new_name, struct ferry_error **err);
/* PUT/PATCH: "expires_at" and "description". */
int snapshot_update(const char *instance, const char *snap, json_t *body, struct ferry_error **err);
/* Put the snapshot back: the instance is stopped (killed) if it runs, a
 * stateful stop's saved state is discarded, the rootfs and config (all but
 * volatile.*) are replaced by the snapshot's. stateful: the snapshot must
 * be stateful, and its processes are restored (running); otherwise the
 * instance is left stopped. */
int snapshot_restore(const char *instance, const char *snap, bool stateful, struct ferry_error **err);

/* LXD's InstanceSnapshot object. 404 when missing. */
int snapshot_to_json(const char *instance, const char *snap, json_t **out, struct ferry_error **err);
/* Every snapshot of instance as objects, oldest first (never NULL). */
json_t *snapshots_to_json(const char *instance);
/* Their URLs: "/1.0/instances/NAME/snapshots/SNAP". */
json_t *snapshots_urls(const char *instance);

/* A local copy (POST /1.0/instances, source type "copy"): source is
 * "c1" or "c1/s1". config/devices/profiles/description (may be NULL) come
 * from the request, else from the source; volatile keys are reset (fresh
 * MAC and address) except the image and idmap the rootfs was made with.
 * Copies the source's snapshots too (stateless) unless instance_only or
 * the source is a snapshot. The copy is stopped. */
struct instance_copy_args {
	const char *name;
	const char *source;
	json_t *config;
	json_t *devices;
	json_t *profiles;
	const char *description;
	bool ephemeral;
	bool instance_only;
};
/* Validate without changing anything (name, source, that the name is free). */
int instance_copy_check(const struct instance_copy_args *args, struct ferry_error **err);
int instance_copy(const struct instance_copy_args *args, struct ferry_error **err);
