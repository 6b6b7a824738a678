/* The profiles table of db.c. Instances name their profiles in their own
 * "profiles" column (a JSON list), so renaming a profile rewrites those
 * lists, and "used by" is a query over them. */
#pragma once

#include <jansson.h>

#include "common/error.h"

struct db;

struct db_profile {
	char *name;
	char *description;
	json_t *config;   /* object of string values */
	json_t *devices;  /* object: device name -> object of string values */
};
void db_profile_clear(struct db_profile *profile);

/* 409 "The profile already exists" when the name is taken. */
int db_profile_create(struct db *db, const struct db_profile *profile, struct ferry_error **err);
/* 404 "Profile not found" when missing. */
int db_profile_get(struct db *db, const char *name, struct db_profile *out, struct ferry_error **err);
/* Names, sorted. */
int db_profile_list(struct db *db, json_t **names, struct ferry_error **err);
/* Replace description, config and devices of profile->name. */
int db_profile_update(struct db *db, const struct db_profile *profile, struct ferry_error **err);
/* Rename the profile and every instance's reference to it, in one transaction. */
int db_profile_rename(struct db *db, const char *old_name, const char *new_name, struct ferry_error **err);
/* Delete, unless an instance uses it (checked in the same statement, so
 * an instance created meanwhile can't be left with a missing profile):
 * 400 "Profile is currently in use". */
int db_profile_delete(struct db *db, const char *name, struct ferry_error **err);
/* Names of the instances whose profiles list name, sorted. */
int db_profile_used_by(struct db *db, const char *name, json_t **instance_names, struct ferry_error **err);
