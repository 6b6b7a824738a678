/* The snapshots table of db.c: one row per instance snapshot, keyed by the
 * instance's name and the snapshot's. Renaming an instance renames its
 * snapshots' rows with it, deleting it deletes them (foreign key cascades). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

struct db;

struct db_snapshot {
	char *instance;
	char *name;
	char *description;
	bool stateful;       /* CRIU images are in its state directory */
	bool ephemeral;
	char *architecture;
	char *created_at;    /* RFC 3339 */
	char *expires_at;    /* RFC 3339; "0001-01-01T00:00:00Z": never (LXD's zero time) */
	char *last_used_at;
	json_t *config;      /* the instance's config at the snapshot (incl. volatile.*) */
	json_t *devices;
	json_t *profiles;
	long long size;      /* bytes on disk (rootfs and state), measured at creation */
};
void db_snapshot_clear(struct db_snapshot *snap);

/* 409 when the instance already has a snapshot of that name. */
int db_snapshot_create(struct db *db, const struct db_snapshot *snap, struct ferry_error **err);
/* 404 "Snapshot not found" when missing. */
int db_snapshot_get(struct db *db, const char *instance, const char *name, struct db_snapshot *out,
		    struct ferry_error **err);
/* The snapshots' names of one instance, oldest first. */
int db_snapshot_list(struct db *db, const char *instance, json_t **names, struct ferry_error **err);
/* Replace description and expires_at. */
int db_snapshot_update(struct db *db, const struct db_snapshot *snap, struct ferry_error **err);
int db_snapshot_rename(struct db *db, const char *instance, const char *old_name, const char *new_name,
		       struct ferry_error **err);
int db_snapshot_delete(struct db *db, const char *instance, const char *name, struct ferry_error **err);
