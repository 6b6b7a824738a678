/* Profiles: see profiles.h. */
#include "daemon/profiles.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/instance.h"

/* Profile writes run one at a time: an edit checks every instance that uses
 * the profile against the new content, and that check must not race
 * another edit of the same instances' profiles. */
static pthread_mutex_t profiles_write_mutex = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t default_mutex = PTHREAD_MUTEX_INITIALIZER;
static bool default_exists;

int profiles_ensure_default(struct ferry_error **err)
{
	pthread_mutex_lock(&default_mutex);
	int ret = 0;
	if (!default_exists) {
		struct db_profile existing = { 0 };
		cleanup_error struct ferry_error *lookup = NULL;
		if (db_profile_get(daemon_ctx->db, "default", &existing, &lookup) == 0) {
			db_profile_clear(&existing);
			default_exists = true;
		} else if (lookup->status != 404) {
			error_move(err, &lookup);
			ret = error_wrap(err, "default profile");
		} else {
			/* What every instance had before profiles existed: the
			 * bridge and the root disk. */
			struct db_profile profile = {
				.name = "default",
				.description = "Default ferry profile",
				.config = json_object(),
				.devices = json_pack("{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s}}", "eth0", "name", "eth0",
						     "network", daemon_ctx->bridge, "type", "nic", "root", "path", "/",
						     "pool", "default", "type", "disk"),
			};
			ret = db_profile_create(daemon_ctx->db, &profile, err);
			json_decref(profile.config);
			json_decref(profile.devices);
			if (ret < 0) {
				error_wrap(err, "create the default profile");
			} else {
				default_exists = true;
				log_info("created the default profile (bridge %s)", daemon_ctx->bridge);
			}
		}
	}
	pthread_mutex_unlock(&default_mutex);
	return ret;
}

int profile_name_validate(const char *name, struct ferry_error **err)
{
	if (name == NULL || name[0] == '\0')
		return error_bad_request(err, "No name provided");
	if (strchr(name, '/') != NULL)
		return error_bad_request(err, "Profile names may not contain slashes");
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return error_bad_request(err, "Invalid profile name '%s'", name);
	/* lxc profile assign separates names with commas; control characters
	 * and spaces would make names no one can type back. */
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == ',' || *p == 0x7f)
			return error_bad_request(err, "Invalid profile name '%s': no spaces, commas or control characters",
						 name);
	return 0;
}

static char *profile_url(const char *name)
{
	return xasprintf("/1.0/profiles/%s", name);
}

static void lifecycle(const char *action, const char *name, json_t *context)
{
	cleanup_free char *url = profile_url(name);
	events_lifecycle(action, url, context);
}

/* The stored profile, or 404 "Profile not found" naming it. */
static int profile_get(const char *name, struct db_profile *out, struct ferry_error **err)
{
	if (profiles_ensure_default(err) < 0)
		return -1;
	if (db_profile_get(daemon_ctx->db, name, out, err) < 0) {
		if ((*err)->status == 404) {
			error_free(err);
			return error_not_found(err, "Profile not found: %s", name);
		}
		return error_wrap(err, "profile \"%s\"", name);
	}
	return 0;
}

/* "a, b, c" from a list of strings. */
static char *join_strings(json_t *list, const char *sep)
{
	size_t len = 1, i;
	json_t *item;
	json_array_foreach(list, i, item) len += strlen(json_string_value(item)) + strlen(sep);
	char *out = xcalloc(1, len);
	json_array_foreach(list, i, item) {
		if (i > 0)
			strcat(out, sep);
		strcat(out, json_string_value(item));
	}
	return out;
}

int profiles_check_exist(json_t *names, struct ferry_error **err)
{
	if (names == NULL || json_is_null(names))
		return 0;
	if (!json_is_array(names))
		return error_bad_request(err, "Invalid profiles: expected a list of names");
	if (profiles_ensure_default(err) < 0)
		return -1;
	json_t *missing = json_array();
	size_t i, j;
	json_t *p;
	json_array_foreach(names, i, p) {
		if (!json_is_string(p)) {
			json_decref(missing);
			return error_bad_request(err, "Invalid profiles: expected a list of names");
		}
		for (j = 0; j < i; j++)
			if (json_equal(json_array_get(names, j), p)) {
				json_decref(missing);
				return error_bad_request(err, "Duplicate profile found in request: %s", json_string_value(p));
			}
		struct db_profile profile = { 0 };
		cleanup_error struct ferry_error *lookup = NULL;
		if (db_profile_get(daemon_ctx->db, json_string_value(p), &profile, &lookup) == 0) {
			db_profile_clear(&profile);
			continue;
		}
		if (lookup->status != 404) {
			json_decref(missing);
			error_move(err, &lookup);
			return error_wrap(err, "profile \"%s\"", json_string_value(p));
		}
		json_array_append(missing, p);
	}
	size_t n = json_array_size(missing);
	if (n == 0) {
		json_decref(missing);
		return 0;
	}
	cleanup_free char *list = join_strings(missing, ", ");
	json_decref(missing);
	return error_bad_request(err, "%s not found: %s", n == 1 ? "Profile" : "Profiles", list);
}

/* Devices of src over those of dst, by name, whole. */
static void devices_overlay(json_t *dst, json_t *src)
{
	const char *dev;
	json_t *d;
	json_object_foreach(src, dev, d) {
		json_object_set_new(dst, dev, json_deep_copy(d));
	}
}

void profiles_expand(json_t *profile_names, json_t *local_config, json_t *local_devices,
		     const struct db_profile *override, json_t **config, json_t **devices)
{
	json_t *expanded_config = json_object();
	json_t *expanded_devices = json_object();
	cleanup_error struct ferry_error *ensure = NULL;
	if (profiles_ensure_default(&ensure) < 0)
		log_warn("%s", ensure->msg);
	size_t i;
	json_t *p;
	json_array_foreach(profile_names, i, p) {
		const char *name = json_string_value(p);
		if (name == NULL)
			continue;
		if (override != NULL && strcmp(name, override->name) == 0) {
			json_object_update(expanded_config, override->config);
			devices_overlay(expanded_devices, override->devices);
			continue;
		}
		struct db_profile profile = { 0 };
		cleanup_error struct ferry_error *e = NULL;
		if (db_profile_get(daemon_ctx->db, name, &profile, &e) < 0) {
			log_warn("profile \"%s\" is listed by an instance but can't be read: %s", name, e->msg);
			continue;
		}
		json_object_update(expanded_config, profile.config);
		devices_overlay(expanded_devices, profile.devices);
		db_profile_clear(&profile);
	}
	if (json_is_object(local_config))
		json_object_update(expanded_config, local_config);
	if (json_is_object(local_devices))
		devices_overlay(expanded_devices, local_devices);
	/* A device of type "none" hides a profile's device of that name. */
	const char *dev;
	json_t *d;
	void *tmp;
	json_object_foreach_safe(expanded_devices, tmp, dev, d) {
		const char *type = json_string_value(json_object_get(d, "type"));
		if (type != NULL && strcmp(type, "none") == 0)
			json_object_del(expanded_devices, dev);
	}
	if (config != NULL)
		*config = expanded_config;
	else
		json_decref(expanded_config);
	if (devices != NULL)
		*devices = expanded_devices;
	else
		json_decref(expanded_devices);
}


int profile_to_json(const char *name, json_t **out, struct ferry_error **err)
{
	struct db_profile profile = { 0 };
	if (profile_get(name, &profile, err) < 0)
		return -1;
	json_t *users = NULL;
	if (db_profile_used_by(daemon_ctx->db, name, &users, err) < 0) {
		db_profile_clear(&profile);
		return error_wrap(err, "instances using profile \"%s\"", name);
	}
	json_t *used_by = json_array();
	size_t i;
	json_t *u;
	json_array_foreach(users, i, u) {
		cleanup_free char *url = instance_url(json_string_value(u));
		json_array_append_new(used_by, json_string(url));
	}
	json_decref(users);
	*out = json_pack("{s:s, s:s, s:O, s:O, s:o}", "name", profile.name, "description", profile.description,
			 "config", profile.config, "devices", profile.devices, "used_by", used_by);
	db_profile_clear(&profile);
	return 0;
}

int profiles_list_json(bool recursion, json_t **out, struct ferry_error **err)
{
	if (profiles_ensure_default(err) < 0)
		return -1;
	json_t *names = NULL;
	if (db_profile_list(daemon_ctx->db, &names, err) < 0)
		return error_wrap(err, "list profiles");
	json_t *list = json_array();
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		const char *name = json_string_value(n);
		if (!recursion) {
			cleanup_free char *url = profile_url(name);
			json_array_append_new(list, json_string(url));
			continue;
		}
		json_t *obj = NULL;
		cleanup_error struct ferry_error *e = NULL;
		/* Deleted between the list and here: leave it out. */
		if (profile_to_json(name, &obj, &e) == 0)
			json_array_append_new(list, obj);
	}
	json_decref(names);
	*out = list;
	return 0;
}

/* The fields a profile body may carry, checked for type; config and
 * devices against the key table (volatile.* is refused: it belongs to one
 * instance). */
static int validate_profile_body(json_t *body, struct ferry_error **err)
{
	if (!json_is_object(body))
		return error_bad_request(err, "Invalid request: expected a JSON object");
	json_t *description = json_object_get(body, "description");
	if (description != NULL && !json_is_null(description) && !json_is_string(description))
		return error_bad_request(err, "Invalid description: expected a string");
	json_t *config = json_object_get(body, "config");
	if (config != NULL && !json_is_null(config) && !json_is_object(config))
		return error_bad_request(err, "Invalid config: expected an object of strings");
	json_t *devices = json_object_get(body, "devices");
	if (devices != NULL && !json_is_null(devices) && !json_is_object(devices))
		return error_bad_request(err, "Invalid devices: expected an object");
	const char *key;
	json_t *v;
	json_object_foreach(config, key, v) {
		const struct config_key *ck = config_key_find(key);
		if (ck != NULL && ck->ferry_owned)
			return error_bad_request(err, "Key \"%s\" is read-only (set by ferry for each instance)", key);
	}
	if (config_validate_user(config, NULL, err) < 0)
		return -1;
	if (config_validate_devices(devices, daemon_ctx->bridge, daemon_ctx->bridge_cidr, err) < 0)
		return -1;
	return 0;
}

int profile_create(json_t *body, struct ferry_error **err)
{
	if (!json_is_object(body))
		return error_bad_request(err, "Invalid request: expected a JSON object");
	json_t *name = json_object_get(body, "name");
	if (name != NULL && !json_is_string(name))
		return error_bad_request(err, "Invalid name: expected a string");
	if (profile_name_validate(json_string_value(name), err) < 0)
		return -1;
	if (validate_profile_body(body, err) < 0)
		return -1;
	if (profiles_ensure_default(err) < 0)
		return -1;
	json_t *config = json_object_get(body, "config");
	json_t *devices = json_object_get(body, "devices");
	struct db_profile profile = {
		.name = (char *)json_string_value(name),
		.description = (char *)json_string_value(json_object_get(body, "description")),
		.config = json_is_object(config) ? config : NULL,
		.devices = json_is_object(devices) ? devices : NULL,
	};
	pthread_mutex_lock(&profiles_write_mutex);
	int r = db_profile_create(daemon_ctx->db, &profile, err);
	pthread_mutex_unlock(&profiles_write_mutex);
	if (r < 0)
		return error_wrap(err, "create profile \"%s\"", profile.name);
	log_info("profile %s: created", profile.name);
	lifecycle("profile-created", profile.name, NULL);
	return 0;
}

/* The expanded view of each instance in names, before an edit:
 * {"c1": {"config": {...}, "devices": {...}}}. */
static json_t *expanded_views(json_t *names)
{
	json_t *views = json_object();
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		json_t *config = NULL, *devices = NULL;
		cleanup_error struct ferry_error *e = NULL;
		if (instance_expanded(json_string_value(n), &config, &devices, &e) < 0)
			continue; /* deleted meanwhile */
		json_object_set_new(views, json_string_value(n), json_pack("{s:o, s:o}", "config", config, "devices",
									   devices));
	}
	return views;
}

int profile_update(const char *name, json_t *body, bool merge, json_t **report, struct ferry_error **err)
{
	struct db_profile profile = { 0 };
	json_t *users = NULL;
	json_t *views = NULL;
	json_t *next_start = json_object();
	json_t *failures = json_array();
	int ret = -1;

	if (validate_profile_body(body, err) < 0)
		goto out_unlocked;
	pthread_mutex_lock(&profiles_write_mutex);
	if (profile_get(name, &profile, err) < 0)
		goto out;

	json_t *config = json_object_get(body, "config");
	json_t *devices = json_object_get(body, "devices");
	json_t *description = json_object_get(body, "description");
	if (merge) {
		if (json_is_object(config))
			json_object_update(profile.config, config);
		if (json_is_object(devices))
			devices_overlay(profile.devices, devices);
	} else {
		json_decref(profile.config);
		json_decref(profile.devices);
		profile.config = json_is_object(config) ? json_deep_copy(config) : json_object();
		profile.devices = json_is_object(devices) ? json_deep_copy(devices) : json_object();
	}
	if (json_is_string(description) || !merge) {
		free(profile.description);
		profile.description = xstrdup(json_is_string(description) ? json_string_value(description) : "");
	}

	/* Every instance that uses the profile must stay valid with it. */
	if (db_profile_used_by(daemon_ctx->db, name, &users, err) < 0)
		goto out;
	size_t i;
	json_t *n;
	json_array_foreach(users, i, n) {
		const char *inst = json_string_value(n);
		instance_lock(inst);
		int r = instance_check_profile_edit(inst, &profile, err);
		instance_unlock(inst);
		if (r < 0)
			goto out;
	}
	views = expanded_views(users);

	if (db_profile_update(daemon_ctx->db, &profile, err) < 0)
		goto out;
	log_info("profile %s: updated", name);
	lifecycle("profile-updated", name, NULL);

	/* Saved: now carry the change to the instances. A failure here (a
	 * cgroup refusing a limit) leaves the profile saved, as LXD does, and
	 * says which instances did not take it. */
	const char *inst;
	json_t *view;
	json_object_foreach(views, inst, view) {
		json_t *new_config = NULL, *new_devices = NULL;
		json_t *pending = json_array();
		cleanup_error struct ferry_error *e = NULL;
		instance_lock(inst);
		int r = instance_expanded(inst, &new_config, &new_devices, &e);
		if (r == 0)
			r = instance_apply_live(inst, json_object_get(view, "config"), json_object_get(view, "devices"),
						new_config, new_devices, pending, &e);
		instance_unlock(inst);
		json_decref(new_config);
		json_decref(new_devices);
		if (r < 0) {
			log_warn("profile %s: instance %s: %s", name, inst, e->msg);
			json_array_append_new(failures, json_sprintf("%s: %s", inst, e->msg));
		}
		if (json_array_size(pending) > 0)
			json_object_set(next_start, inst, pending);
		json_decref(pending);
	}
	if (json_array_size(failures) > 0) {
		cleanup_free char *list = join_strings(failures, "; ");
		error_set(err, 500, 0, "The following instances failed to update (profile change still saved): %s", list);
		goto out;
	}
	if (report != NULL)
		*report = json_pack("{s:O}", "applies_at_next_start", next_start);
	ret = 0;
out:
	pthread_mutex_unlock(&profiles_write_mutex);
out_unlocked:
	if (ret < 0)
		error_wrap(err, "update profile \"%s\"", name);
	db_profile_clear(&profile);
	json_decref(users);
	json_decref(views);
	json_decref(next_start);
	json_decref(failures);
	return ret;
}

int profile_rename(const char *name, const char *new_name, struct ferry_error **err)
{
	if (strcmp(name, "default") == 0)
		return error_set(err, 403, EPERM, "The 'default' profile cannot be renamed");
	if (profile_name_validate(new_name, err) < 0)
		return -1;
	if (profiles_ensure_default(err) < 0)
		return -1;
	pthread_mutex_lock(&profiles_write_mutex);
	int r = db_profile_rename(daemon_ctx->db, name, new_name, err);
	pthread_mutex_unlock(&profiles_write_mutex);
	if (r < 0) {
		if ((*err)->status == 404) {
			error_free(err);
			return error_not_found(err, "Profile not found: %s", name);
		}
		return error_wrap(err, "rename profile \"%s\"", name);
	}
	log_info("profile %s: renamed to %s", name, new_name);
	lifecycle("profile-renamed", new_name, json_pack("{s:s}", "old_name", name));
	return 0;
}

int profile_delete(const char *name, struct ferry_error **err)
{
	if (strcmp(name, "default") == 0)
		return error_set(err, 403, EPERM, "The 'default' profile cannot be deleted");
	pthread_mutex_lock(&profiles_write_mutex);
	int r = db_profile_delete(daemon_ctx->db, name, err);
	if (r < 0 && (*err)->status == 400) {
		/* Name the instances, so the user knows what to change. */
		json_t *users = NULL;
		cleanup_error struct ferry_error *e = NULL;
		if (db_profile_used_by(daemon_ctx->db, name, &users, &e) == 0) {
			cleanup_free char *list = join_strings(users, ", ");
			json_decref(users);
			error_free(err);
			error_bad_request(err, "Profile is currently in use by instances: %s", list);
		}
	} else if (r < 0 && (*err)->status == 404) {
		error_free(err);
		error_not_found(err, "Profile not found: %s", name);
	}
	pthread_mutex_unlock(&profiles_write_mutex);
	if (r < 0)
		return -1;
	log_info("profile %s: deleted", name);
	lifecycle("profile-deleted", name, NULL);
	return 0;
}
