/* ferryd's state in SQLite (ROOT/database/ferry.db): instances, images,
 * aliases, snapshots, profiles, server config. Every function is safe to call
 * from any thread (one connection, serialised, with WAL). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

struct db;

int db_open(const char *path, struct db **db, struct ferry_error **err);
void db_close(struct db *db);

struct db_instance {
	char *name;
	char *type;          /* "container" */
	char *architecture;  /* "x86_64" */
	char *description;
	bool ephemeral;
	bool stateful;       /* a stateful stop's state is on disk */
	char *created_at;    /* RFC 3339 */
	char *last_used_at;
	json_t *config;      /* object of string values (incl. volatile.* and image.*) */
	json_t *devices;     /* object: device name -> object of string values */
	json_t *profiles;    /* array of names */
};
void db_instance_clear(struct db_instance *inst);

int db_instance_create(struct db *db, const struct db_instance *inst, struct ferry_error **err);
/* 404 "Instance not found" when missing. */
int db_instance_get(struct db *db, const char *name, struct db_instance *out, struct ferry_error **err);
/* Names, sorted. */
int db_instance_list(struct db *db, json_t **names, struct ferry_error **err);
/* Replace description/ephemeral/stateful/last_used_at/config/devices/profiles of inst->name. */
int db_instance_update(struct db *db, const struct db_instance *inst, struct ferry_error **err);
int db_instance_rename(struct db *db, const char *old_name, const char *new_name, struct ferry_error **err);
int db_instance_delete(struct db *db, const char *name, struct ferry_error **err);

struct db_image {
	char *fingerprint;
	char *filename;
	long long size;
	char *architecture;
	bool public;
	bool auto_update;
	char *created_at;
	char *uploaded_at;
	char *last_used_at;
	json_t *properties;  /* object */
};
void db_image_clear(struct db_image *img);
int db_image_create(struct db *db, const struct db_image *img, struct ferry_error **err);
/* By full fingerprint or a unique prefix of it. 404 when missing. */
int db_image_get(struct db *db, const char *fingerprint, struct db_image *out, struct ferry_error **err);
int db_image_list(struct db *db, json_t **fingerprints, struct ferry_error **err);
int db_image_update(struct db *db, const struct db_image *img, struct ferry_error **err);
int db_image_delete(struct db *db, const char *fingerprint, struct ferry_error **err);

/* Aliases: name -> fingerprint, with a description. */
int db_alias_create(struct db *db, const char *name, const char *fingerprint, const char *description,
		    struct ferry_error **err);
/* *fingerprint and *description malloc'd. 404 when missing. */
int db_alias_get(struct db *db, const char *name, char **fingerprint, char **description, struct ferry_error **err);
int db_alias_list(struct db *db, json_t **names, struct ferry_error **err);
/* Aliases of one image: [{"name":..., "description":...}] */
int db_alias_list_for(struct db *db, const char *fingerprint, json_t **aliases, struct ferry_error **err);
int db_alias_update(struct db *db, const char *name, const char *fingerprint, const char *description,
		    struct ferry_error **err);
int db_alias_rename(struct db *db, const char *old_name, const char *new_name, struct ferry_error **err);
int db_alias_delete(struct db *db, const char *name, struct ferry_error **err);

/* Server config (core.*, images.*): string values. */
int db_config_get_all(struct db *db, json_t **config, struct ferry_error **err);
int db_config_set(struct db *db, const char *key, const char *value /* NULL: unset */, struct ferry_error **err);
