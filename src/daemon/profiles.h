/* Profiles: named sets of config and devices that instances list in
 * order. An instance's expanded view is its profiles applied in that
 * order, then its own config and devices on top.
 *
 * The "default" profile (the bridge nic eth0 and the root disk) exists from
 * the first start, can't be deleted or renamed, and is what an instance
 * gets when it names no profiles. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "daemon/db_profiles.h"

/* Create the default profile if it is missing (first start, or a database
 * from before profiles). Cheap after the first success. */
int profiles_ensure_default(struct ferry_error **err);

/* LXD's rules for profile names. 400 when invalid. */
int profile_name_validate(const char *name, struct ferry_error **err);

/* Check that every name in names (a JSON list of strings) is a profile
 * here. 400 "Profile not found: a" / "Profiles not found: a, b" naming all
 * that are missing; also refuses a malformed list and duplicates. Used when
 * an instance is created or updated, and before a migration. */
int profiles_check_exist(json_t *names, struct ferry_error **err);

/* The expanded config and devices of an instance with these profiles and
 * its own (local) config and devices. A local device replaces a profile's
 * device of the same name whole; a device of type "none" removes it.
 * override (may be NULL) stands in for the stored profile of its name, to
 * check an edit before it is saved. A profile that has gone missing is
 * skipped with a warning. config or devices may be NULL (not wanted). */
void profiles_expand(json_t *profile_names, json_t *local_config, json_t *local_devices,
		     const struct db_profile *override, json_t **config, json_t **devices);

/* LXD's Profile object: name, description, config, devices, used_by. */
int profile_to_json(const char *name, json_t **out, struct ferry_error **err);
/* GET /1.0/profiles: URLs, or objects with recursion. */
int profiles_list_json(bool recursion, json_t **out, struct ferry_error **err);

/* POST /1.0/profiles: {"name", "description", "config", "devices"}. */
int profile_create(json_t *body, struct ferry_error **err);

/* PUT (merge false: replace config, devices and description) or PATCH
 * (merge true: only the keys given). Validated first, with every instance
 * that uses the profile checked under its new expanded view; nothing
 * changes on failure. Then applied to those instances: live where the
 * kernel allows, else at their next start. *report (may be NULL) gets
 * {"applies_at_next_start": {"INSTANCE": ["key", "devices.NAME"]}}. */
int profile_update(const char *name, json_t *body, bool merge, json_t **report, struct ferry_error **err);

/* Rename, carrying the instances that use it along. */
int profile_rename(const char *name, const char *new_name, struct ferry_error **err);
/* Delete an unused profile that isn't "default". */
int profile_delete(const char *name, struct ferry_error **err);
