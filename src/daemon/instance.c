/* Instances: the glue between the database, images, network and runtime. */
#include "daemon/instance.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "common/log.h"
#include "common/util.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/events.h"
#include "daemon/operations.h"
#include "daemon/profiles.h"
#include "daemon/request.h"
#include "daemon/snapshots.h"
#include "image/image.h"
#include "runtime/network.h"

/* Address assignment reads every instance's addresses and writes one: it
 * runs under this lock so two creations never pick the same address. */
static pthread_mutex_t address_mutex = PTHREAD_MUTEX_INITIALIZER;
/* --address-range: picks stay inside it (0, 0: anywhere in the subnet). */
static uint32_t address_range_first, address_range_last;

void instance_address_range_set(uint32_t first, uint32_t last)
{
	address_range_first = first;
	address_range_last = last;
}

/* ---- names and paths --------------------------------------------------- */

int instance_name_validate(const char *name, struct ferry_error **err)
{
	if (name == NULL || name[0] == '\0' || strlen(name) > 63)
		return error_bad_request(err, "Invalid instance name \"%s\": Name must be 1-63 characters long",
					 name ? name : "");
	if (name[0] == '-')
		return error_bad_request(err, "Invalid instance name \"%s\": Name must not start with \"-\" character", name);
	if (isdigit((unsigned char)name[0]))
		return error_bad_request(err, "Invalid instance name \"%s\": Name must not start with a digit", name);
	if (name[strlen(name) - 1] == '-')
		return error_bad_request(err, "Invalid instance name \"%s\": Name must not end with \"-\" character", name);
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return error_bad_request(err,
						 "Invalid instance name \"%s\": Name can only contain alphanumeric and hyphen characters",
						 name);
	return 0;
}

char *instance_dir(const char *name)
{
	return xasprintf("%s/%s", daemon_ctx->containers_dir, name);
}

char *instance_rootfs(const char *name)
{
	return xasprintf("%s/%s/rootfs", daemon_ctx->containers_dir, name);
}

char *instance_logs_dir(const char *name)
{
	return xasprintf("%s/%s/logs", daemon_ctx->containers_dir, name);
}

char *instance_log_dir(const char *name)
{
	return xasprintf("%s/%s", daemon_ctx->log_dir, name);
}

char *instance_state_dir(const char *name)
{
	return xasprintf("%s/%s/state", daemon_ctx->containers_dir, name);
}

char *instance_url(const char *name)
{
	return xasprintf("/1.0/instances/%s", name);
}

json_t *instance_resources(const char *name)
{
	cleanup_free char *url = instance_url(name);
	return json_pack("{s:[s]}", "instances", url);
}

static char *now_rfc3339(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return time_rfc3339(&ts);
}

static void lifecycle(const char *action, const char *name)
{
	cleanup_free char *url = instance_url(name);
	events_lifecycle(action, url, NULL);
}

/* cgroup names include a hash of the daemon's root, so two ferryds (tests,
 * the multi-host bed) never share a cgroup. */
char *instance_cgroup_parent(const char *root)
{
	unsigned hash = 2166136261u; /* FNV-1a */
	for (const char *p = root; *p; p++) {
		hash ^= (unsigned char)*p;
		hash *= 16777619u;
	}
	return xasprintf("ferry-%08x", hash);
}

char *instance_cgroup(const char *name)
{
	cleanup_free char *parent = instance_cgroup_parent(daemon_ctx->root);
	return xasprintf("%s/%s", parent, name);
}

/* ---- devices and config ------------------------------------------------ */

json_t *instance_expanded_devices(const struct db_instance *inst)
{
	json_t *devices = NULL;
	profiles_expand(inst->profiles, NULL, inst->devices, NULL, NULL, &devices);
	return devices;
}

json_t *instance_expanded_config(const struct db_instance *inst)
{
	json_t *config = NULL;
	profiles_expand(inst->profiles, inst->config, NULL, NULL, &config, NULL);
	return config;
}

static bool is_nic(json_t *d)
{
	const char *type = json_string_value(json_object_get(d, "type"));
	return type != NULL && strcmp(type, "nic") == 0;
}

static void config_set(json_t *config, const char *key, const char *value)
{
	if (value == NULL)
		json_object_del(config, key);
	else
		json_object_set_new(config, key, json_string(value));
}

/* Addresses held by every instance but skip_name: {"10.0.0.2": "c1", ...}. */
static int addresses_in_use(const char *skip_name, json_t **out, struct ferry_error **err)
{
	json_t *names = NULL;
	if (db_instance_list(daemon_ctx->db, &names, err) < 0)
		return error_wrap(err, "list instances");
	json_t *used = json_object();
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		const char *name = json_string_value(n);
		if (skip_name != NULL && strcmp(name, skip_name) == 0)
			continue;
		struct db_instance inst = { 0 };
		cleanup_error struct ferry_error *ignored = NULL;
		if (db_instance_get(daemon_ctx->db, name, &inst, &ignored) < 0)
			continue; /* deleted meanwhile */
		json_t *devices = instance_expanded_devices(&inst);
		const char *dev;
		json_t *d;
		json_object_foreach(devices, dev, d) {
			if (!is_nic(d))
				continue;
			const char *addr = json_string_value(json_object_get(d, "ipv4.address"));
			cleanup_free char *vkey = xasprintf("volatile.%s.ipv4.address", dev);
			if (addr == NULL)
				addr = json_string_value(json_object_get(inst.config, vkey));
			if (addr != NULL)
				json_object_set_new(used, addr, json_string(name));
		}
		json_decref(devices);
		db_instance_clear(&inst);
	}
	json_decref(names);
	*out = used;
	return 0;
}

static bool address_in_subnet(const char *addr, uint32_t gw, int prefix)
{
	unsigned a;
	if (config_parse_ipv4(addr, &a) < 0)
		return false;
	uint32_t mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
	return (a & mask) == (gw & mask) && a != gw && a != (gw & mask) && a != ((gw & mask) | ~mask);
}

/* Give each nic of inst its MAC and address (volatile.DEV.hwaddr,
 * volatile.DEV.ipv4.address): keep what it has while still valid, else the
 * lowest free host address. A fixed ipv4.address must be free. Call with
 * address_mutex held, and write inst to the DB before releasing it. */
static int assign_nics(struct db_instance *inst, struct ferry_error **err)
{
	uint32_t gw;
	int prefix;
	if (network_cidr_parse(daemon_ctx->bridge_cidr, &gw, &prefix, err) < 0)
		return error_wrap(err, "bridge address %s", daemon_ctx->bridge_cidr);
	json_t *used = NULL;
	if (addresses_in_use(inst->name, &used, err) < 0)
		return -1;
	json_t *devices = instance_expanded_devices(inst);
	int ret = 0;
	const char *dev;
	json_t *d;

	/* Fixed addresses first, so a free pick never takes one of them. */
	json_object_foreach(devices, dev, d) {
		const char *fixed = json_string_value(json_object_get(d, "ipv4.address"));
		if (!is_nic(d) || fixed == NULL)
			continue;
		const char *owner = json_string_value(json_object_get(used, fixed));
		if (owner != NULL) {
			ret = error_bad_request(err, "Device \"%s\": ipv4.address %s is already used by instance \"%s\"",
						dev, fixed, owner);
			goto out;
		}
		json_object_set_new(used, fixed, json_string(inst->name));
	}
	json_object_foreach(devices, dev, d) {
		if (!is_nic(d))
			continue;
		cleanup_free char *hw_key = xasprintf("volatile.%s.hwaddr", dev);
		cleanup_free char *ip_key = xasprintf("volatile.%s.ipv4.address", dev);
		if (json_object_get(d, "hwaddr") == NULL && json_string_value(json_object_get(inst->config, hw_key)) == NULL) {
			cleanup_free char *mac = network_new_hwaddr();
			config_set(inst->config, hw_key, mac);
		}
		if (json_object_get(d, "ipv4.address") != NULL) {
			config_set(inst->config, ip_key, NULL);
			continue;
		}
		const char *cur = json_string_value(json_object_get(inst->config, ip_key));
		if (cur != NULL && address_in_subnet(cur, gw, prefix) && json_object_get(used, cur) == NULL) {
			json_object_set_new(used, cur, json_string(inst->name));
			continue;
		}
		char *picked = NULL;
		for (uint32_t n = 2; (picked = network_ipv4_nth(daemon_ctx->bridge_cidr, n)) != NULL; n++) {
			unsigned a;
			if (config_parse_ipv4(picked, &a) == 0 && a != gw && json_object_get(used, picked) == NULL &&
			    (address_range_last == 0 || (a >= address_range_first && a <= address_range_last)))
				break;
			free(picked);
		}
		if (picked == NULL) {
			ret = error_set(err, 507, ENOSPC, "Device \"%s\": no free address left in %s", dev,
					daemon_ctx->bridge_cidr);
			goto out;
		}
		config_set(inst->config, ip_key, picked);
		json_object_set_new(used, picked, json_string(inst->name));
		free(picked);
	}
out:
	json_decref(devices);
	json_decref(used);
	return ret;
}

/* ---- images ------------------------------------------------------------ */

static int resolve_image(const char *alias, const char *fingerprint, struct image_info *info, struct ferry_error **err)
{
	cleanup_free char *fp = NULL;
	if (alias != NULL && alias[0] != '\0') {
		cleanup_free char *description = NULL;
		if (db_alias_get(daemon_ctx->db, alias, &fp, &description, err) < 0) {
			if ((*err)->status == 404) {
				error_free(err);
				return error_not_found(err, "Image \"%s\" not found", alias);
			}
			return error_wrap(err, "image alias \"%s\"", alias);
		}
	} else if (fingerprint != NULL && fingerprint[0] != '\0') {
		struct db_image img = { 0 };
		if (db_image_get(daemon_ctx->db, fingerprint, &img, err) < 0) {
			if ((*err)->status == 404) {
				error_free(err);
				return error_not_found(err, "Image \"%s\" not found", fingerprint);
			}
			return error_wrap(err, "image \"%s\"", fingerprint);
		}
		fp = xstrdup(img.fingerprint);
		db_image_clear(&img);
	} else {
		return error_bad_request(err, "Image source needs an \"alias\" or a \"fingerprint\"");
	}
	if (image_stat(daemon_ctx->images_dir, fp, info, err) < 0)
		return error_wrap(err, "image %s", fp);
	return 0;
}

static char *host_architecture(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return xstrdup("x86_64");
	return xstrdup(u.machine);
}

/* ---- create and delete ------------------------------------------------- */

static bool has_root_disk(json_t *expanded_devices)
{
	const char *dev;
	json_t *d;
	json_object_foreach(expanded_devices, dev, d) {
		const char *type = json_string_value(json_object_get(d, "type"));
		const char *path = json_string_value(json_object_get(d, "path"));
		if (type && strcmp(type, "disk") == 0 && path && strcmp(path, "/") == 0)
			return true;
	}
	return false;
}

/* profiles NULL (not given): ["default"], as LXD. */
static int check_config_and_devices(json_t *config, json_t *old_config, json_t *devices, json_t *profiles,
				    struct ferry_error **err)
{
	if (config_validate_user(config, old_config, err) < 0)
		return -1;
	if (config_validate_devices(devices, daemon_ctx->bridge, daemon_ctx->bridge_cidr, err) < 0)
		return -1;
	if (profiles_check_exist(profiles, err) < 0)
		return -1;
	/* Every instance needs a root disk: from a profile or its own. */
	json_t *default_profiles = json_pack("[s]", "default");
	json_t *expanded = NULL;
	profiles_expand(json_is_array(profiles) ? profiles : default_profiles, NULL, devices, NULL, NULL, &expanded);
	json_decref(default_profiles);
	bool has_root = has_root_disk(expanded);
	json_decref(expanded);
	if (!has_root)
		return error_bad_request(err, "The instance has no root disk device");
	return 0;
}

static bool instance_exists(const char *name)
{
	struct db_instance inst = { 0 };
	cleanup_error struct ferry_error *e = NULL;
	if (db_instance_get(daemon_ctx->db, name, &inst, &e) < 0)
		return false;
	db_instance_clear(&inst);
	return true;
}

int instance_create_check(const struct instance_create_args *args, struct ferry_error **err)
{
	if (instance_name_validate(args->name, err) < 0)
		return -1;
	if (check_config_and_devices(args->config, NULL, args->devices, args->profiles, err) < 0)
		return -1;
	if (strcmp(args->source_type, "image") == 0) {
		struct image_info info = { 0 };
		if (resolve_image(args->alias, args->fingerprint, &info, err) < 0)
			return -1;
		image_info_free(&info);
	} else if (strcmp(args->source_type, "none") != 0) {
		return error_bad_request(err, "Unknown source type %s", args->source_type);
	}
	if (instance_exists(args->name))
		return error_conflict(err, "Instance \"%s\" already exists", args->name);
	/* A fixed address another instance holds: refuse now, not in the operation. */
	struct db_instance probe = {
		.name = (char *)args->name,
		.config = json_is_object(args->config) ? json_deep_copy(args->config) : json_object(),
		.devices = json_is_object(args->devices) ? args->devices : NULL,
		.profiles = json_is_array(args->profiles) ? json_incref(args->profiles) : json_pack("[s]", "default"),
	};
	pthread_mutex_lock(&address_mutex);
	int r = assign_nics(&probe, err);
	pthread_mutex_unlock(&address_mutex);
	json_decref(probe.config);
	json_decref(probe.profiles);
	return r;
}

int instance_create(const struct instance_create_args *args, struct ferry_error **err)
{
	struct image_info image = { 0 };
	struct db_instance inst = { 0 };
	cleanup_free char *dir = NULL;
	cleanup_free char *rootfs = NULL;
	cleanup_free char *logs = NULL;
	bool db_created = false, dir_created = false;
	int ret = -1;

	if (instance_create_check(args, err) < 0)
		return -1;
	bool is_image = strcmp(args->source_type, "image") == 0;
	if (is_image && resolve_image(args->alias, args->fingerprint, &image, err) < 0)
		return -1;

	inst.name = xstrdup(args->name);
	inst.type = xstrdup("container");
	inst.architecture = xstrdup(is_image && image.architecture ? image.architecture : NULL);
	if (inst.architecture == NULL)
		inst.architecture = host_architecture();
	inst.description = xstrdup(args->description ? args->description : "");
	inst.ephemeral = args->ephemeral;
	inst.created_at = now_rfc3339();
	inst.last_used_at = xstrdup("1970-01-01T00:00:00Z");
	inst.config = json_is_object(args->config) ? json_deep_copy(args->config) : json_object();
	inst.devices = json_is_object(args->devices) ? json_deep_copy(args->devices) : json_object();
	inst.profiles = json_is_array(args->profiles) ? json_deep_copy(args->profiles) : json_pack("[s]", "default");

	if (is_image) {
		for (size_t i = 0; image.property_keys != NULL && image.property_keys[i] != NULL; i++) {
			cleanup_free char *key = xasprintf("image.%s", image.property_keys[i]);
			if (json_object_get(inst.config, key) == NULL)
				config_set(inst.config, key, image.property_values[i]);
		}
		config_set(inst.config, "volatile.base_image", image.fingerprint);
	}
	/* A profile may make it privileged too: the expanded view decides. */
	json_t *expanded_config = instance_expanded_config(&inst);
	bool privileged = config_get_bool(expanded_config, "security.privileged");
	json_decref(expanded_config);
	cleanup_free char *idmap_base = xasprintf("%u", privileged ? 0 : INSTANCE_IDMAP_BASE_DEFAULT);
	config_set(inst.config, "volatile.idmap.base", idmap_base);
	config_set(inst.config, "volatile.last_state.power", "STOPPED");

	pthread_mutex_lock(&address_mutex);
	if (instance_exists(args->name)) {
		pthread_mutex_unlock(&address_mutex);
		error_conflict(err, "Instance \"%s\" already exists", args->name);
		goto out;
	}
	if (assign_nics(&inst, err) < 0 || db_instance_create(daemon_ctx->db, &inst, err) < 0) {
		pthread_mutex_unlock(&address_mutex);
		goto out;
	}
	pthread_mutex_unlock(&address_mutex);
	db_created = true;

	dir = instance_dir(args->name);
	rootfs = instance_rootfs(args->name);
	struct stat st;
	if (lstat(dir, &st) == 0) {
		/* Left over from a crash: not ours to reuse or remove blindly. */
		error_conflict(err, "Directory %s already exists", dir);
		goto out;
	}
	if (mkdir_p(daemon_ctx->containers_dir, 0711, err) < 0)
		goto out;
	if (mkdir(dir, 0711) < 0) {
		error_sys(err, errno, "mkdir %s", dir);
		goto out;
	}
	dir_created = true;
	logs = instance_logs_dir(args->name);
	if (mkdir(logs, 0700) < 0) {
		error_sys(err, errno, "mkdir %s", logs);
		goto out;
	}
	if (is_image) {
		uid_t shift = privileged ? 0 : INSTANCE_IDMAP_BASE_DEFAULT;
		if (image_unpack_rootfs(image.path, rootfs, shift, shift, err) < 0) {
			error_wrap(err, "unpack image %.12s", image.fingerprint);
			goto out;
		}
	} else {
		if (mkdir(rootfs, 0755) < 0) {
			error_sys(err, errno, "mkdir %s", rootfs);
			goto out;
		}
		unsigned id = privileged ? 0 : INSTANCE_IDMAP_BASE_DEFAULT;
		if (chown(rootfs, id, id) < 0) {
			error_sys(err, errno, "chown %s", rootfs);
			goto out;
		}
	}
	ret = 0;
	log_info("instance %s: created%s%.12s", args->name, is_image ? " from image " : "",
		 is_image ? image.fingerprint : "");
	lifecycle("instance-created", args->name);
out:
	if (ret < 0) {
		cleanup_error struct ferry_error *cleanup_err = NULL;
		if (dir_created && rm_rf(dir, &cleanup_err) < 0)
			log_error("instance %s: cleaning up %s: %s", args->name, dir, cleanup_err->msg);
		error_free(&cleanup_err);
		if (db_created && db_instance_delete(daemon_ctx->db, args->name, &cleanup_err) < 0)
			log_error("instance %s: cleaning up the DB row: %s", args->name, cleanup_err->msg);
		error_wrap(err, "create instance \"%s\"", args->name);
	}
	image_info_free(&image);
	db_instance_clear(&inst);
	return ret;
}

int instance_get(const char *name, struct db_instance *inst, struct ferry_error **err)
{
	if (db_instance_get(daemon_ctx->db, name, inst, err) < 0) {
		if ((*err)->status == 404) {
			error_free(err);
			return error_not_found(err, "Instance \"%s\" not found", name);
		}
		return error_wrap(err, "instance \"%s\"", name);
	}
	return 0;
}

int instance_runtime_state(const char *name, struct runtime_state *st, struct ferry_error **err)
{
	cleanup_free char *dir = instance_dir(name);
	memset(st, 0, sizeof(*st));
	if (runtime_get_state(name, dir, st, err) < 0)
		return error_wrap(err, "state of instance \"%s\"", name);
	return 0;
}

bool instance_is_running(const char *name)
{
	struct runtime_state st;
	cleanup_error struct ferry_error *e = NULL;
	if (instance_runtime_state(name, &st, &e) < 0)
		return false;
	return st.status != RUNTIME_STOPPED;
}

int instance_delete(const char *name, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	db_instance_clear(&inst);
	if (instance_is_running(name))
		return error_bad_request(err, "Instance is running");
	cleanup_free char *dir = instance_dir(name);
	cleanup_free char *log_dir = instance_log_dir(name);
	if (rm_rf(dir, err) < 0)
		return error_wrap(err, "delete instance \"%s\"", name);
	if (rm_rf(log_dir, err) < 0)
		return error_wrap(err, "delete instance \"%s\"", name);
	if (db_instance_delete(daemon_ctx->db, name, err) < 0)
		return error_wrap(err, "delete instance \"%s\"", name);
	log_info("instance %s: deleted", name);
	lifecycle("instance-deleted", name);
	return 0;
}

static int rename_if_exists(const char *from, const char *to, struct ferry_error **err)
{
	if (rename(from, to) < 0 && errno != ENOENT)
		return error_sys(err, errno, "rename %s to %s", from, to);
	return 0;
}

int instance_rename(const char *name, const char *new_name, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_name_validate(new_name, err) < 0)
		return -1;
	if (instance_get(name, &inst, err) < 0)
		return -1;
	db_instance_clear(&inst);
	if (instance_is_running(name))
		return error_bad_request(err, "Renaming of running instance not allowed");
	if (instance_exists(new_name))
		return error_conflict(err, "Instance \"%s\" already exists", new_name);
	cleanup_free char *dir = instance_dir(name), *new_dir = instance_dir(new_name);
	cleanup_free char *log_dir = instance_log_dir(name), *new_log_dir = instance_log_dir(new_name);
	if (db_instance_rename(daemon_ctx->db, name, new_name, err) < 0)
		return error_wrap(err, "rename instance \"%s\"", name);
	if (rename_if_exists(dir, new_dir, err) < 0 || rename_if_exists(log_dir, new_log_dir, err) < 0) {
		cleanup_error struct ferry_error *undo = NULL;
		rename_if_exists(new_log_dir, log_dir, &undo);
		db_instance_rename(daemon_ctx->db, new_name, name, &undo);
		return error_wrap(err, "rename instance \"%s\"", name);
	}
	log_info("instance %s: renamed to %s", name, new_name);
	cleanup_free char *old_url = instance_url(name);
	cleanup_free char *new_url = instance_url(new_name);
	events_lifecycle("instance-renamed", new_url, json_pack("{s:s}", "old_name", name));
	return 0;
}

int instance_update(const char *name, json_t *body, bool merge, bool dry_run, json_t *next_start,
		    struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	json_t *config = json_object_get(body, "config");
	json_t *devices = json_object_get(body, "devices");
	json_t *profiles = json_object_get(body, "profiles");
	json_t *description = json_object_get(body, "description");
	json_t *ephemeral = json_object_get(body, "ephemeral");
	json_t *old_config = NULL, *old_devices = NULL, *new_config = NULL, *new_devices = NULL;
	int ret = -1;

	if (!json_is_object(body))
		return error_bad_request(err, "Invalid request: expected a JSON object");
	if (description != NULL && !json_is_null(description) && !json_is_string(description))
		return error_bad_request(err, "Invalid description: expected a string");
	if (ephemeral != NULL && !json_is_null(ephemeral) && !json_is_boolean(ephemeral))
		return error_bad_request(err, "Invalid ephemeral: expected a boolean");
	if (profiles != NULL && !json_is_null(profiles) && !json_is_array(profiles))
		return error_bad_request(err, "Invalid profiles: expected a list of names");
	if (instance_get(name, &inst, err) < 0)
		return -1;
	if (config_validate_user(config, inst.config, err) < 0)
		goto out;

	json_t *local_config;
	if (merge) {
		local_config = json_deep_copy(inst.config);
		if (json_is_object(config))
			json_object_update(local_config, config);
	} else {
		local_config = json_is_object(config) ? json_deep_copy(config) : json_object();
		/* ferry's own keys stay, whether the client sent them back or not. */
		const char *key;
		json_t *v;
		json_object_foreach(inst.config, key, v) {
			const struct config_key *ck = config_key_find(key);
			if (ck != NULL && ck->ferry_owned)
				json_object_set(local_config, key, v);
		}
	}
	json_t *local_devices;
	if (merge) {
		local_devices = json_deep_copy(inst.devices);
		if (json_is_object(devices))
			json_object_update(local_devices, devices);
	} else {
		local_devices = json_is_object(devices) ? json_deep_copy(devices) : json_object();
	}
	json_t *local_profiles = json_is_array(profiles) ? json_deep_copy(profiles) : json_deep_copy(inst.profiles);

	old_config = instance_expanded_config(&inst);
	old_devices = instance_expanded_devices(&inst);
	json_decref(inst.config);
	json_decref(inst.devices);
	json_decref(inst.profiles);
	inst.config = local_config;
	inst.devices = local_devices;
	inst.profiles = local_profiles;
	if (check_config_and_devices(NULL, NULL, inst.devices, inst.profiles, err) < 0)
		goto out;
	new_config = instance_expanded_config(&inst);
	new_devices = instance_expanded_devices(&inst);

	/* The rootfs was shifted on disk at creation: the mapping can't change,
	 * whether the instance's own config or a profile asks for it. */
	if (config_get_bool(new_config, "security.privileged") != config_get_bool(old_config, "security.privileged")) {
		error_bad_request(err, "security.privileged can only be set when the instance is created");
		goto out;
	}
	if (json_is_string(description)) {
		free(inst.description);
		inst.description = xstrdup(json_string_value(description));
	}
	if (json_is_boolean(ephemeral))
		inst.ephemeral = json_is_true(ephemeral);

	pthread_mutex_lock(&address_mutex);
	ret = assign_nics(&inst, err);
	/* Live first: a limit the kernel refuses (memory below current use)
	 * fails the update before the database changes. */
	if (ret == 0 && !dry_run)
		ret = instance_apply_live(name, old_config, old_devices, new_config, new_devices, next_start, err);
	if (ret == 0 && !dry_run) {
		ret = db_instance_update(daemon_ctx->db, &inst, err);
		if (ret < 0) {
			cleanup_error struct ferry_error *undo = NULL;
			instance_apply_live(name, new_config, new_devices, old_config, old_devices, NULL, &undo);
		}
	}
	pthread_mutex_unlock(&address_mutex);
	if (ret == 0 && !dry_run)
		lifecycle("instance-updated", name);
out:
	if (ret < 0)
		error_wrap(err, "update instance \"%s\"", name);
	json_decref(old_config);
	json_decref(old_devices);
	json_decref(new_config);
	json_decref(new_devices);
	db_instance_clear(&inst);
	return ret;
}

int instance_expanded(const char *name, json_t **config, json_t **devices, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	profiles_expand(inst.profiles, inst.config, inst.devices, NULL, config, devices);
	db_instance_clear(&inst);
	return 0;
}

int instance_check_profile_edit(const char *name, const struct db_profile *profile, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	json_t *old_config = NULL, *new_config = NULL, *new_devices = NULL;
	int ret = -1;
	if (instance_get(name, &inst, err) < 0)
		return -1;
	old_config = instance_expanded_config(&inst);
	profiles_expand(inst.profiles, inst.config, inst.devices, profile, &new_config, &new_devices);
	if (!has_root_disk(new_devices)) {
		error_bad_request(err, "The instance would have no root disk device");
		goto out;
	}
	if (config_get_bool(new_config, "security.privileged") != config_get_bool(old_config, "security.privileged")) {
		error_bad_request(err, "security.privileged can only be set when the instance is created");
		goto out;
	}
	/* Fixed addresses must stay free: try the assignment on a copy. */
	struct db_instance probe = {
		.name = inst.name,
		.config = json_deep_copy(inst.config),
		.devices = json_deep_copy(new_devices),
		.profiles = json_array(),
	};
	pthread_mutex_lock(&address_mutex);
	ret = assign_nics(&probe, err);
	pthread_mutex_unlock(&address_mutex);
	json_decref(probe.config);
	json_decref(probe.devices);
	json_decref(probe.profiles);
out:
	if (ret < 0)
		error_wrap(err, "instance \"%s\"", name);
	json_decref(old_config);
	json_decref(new_config);
	json_decref(new_devices);
	db_instance_clear(&inst);
	return ret;
}

/* Write one cgroup v1 control file of a running instance. */
static int cgroup_write(const char *name, const char *controller, const char *file, const char *value,
			struct ferry_error **err)
{
	cleanup_free char *cgroup = instance_cgroup(name);
	cleanup_free char *path = xasprintf("/sys/fs/cgroup/%s/%s/%s", controller, cgroup, file);
	if (file_write_string(path, value, err) < 0)
		return error_wrap(err, "set %s to %s", file, value);
	return 0;
}

/* limits.KEY of config, for a running instance: the value its cgroup file
 * takes, with "no limit" spelled as the kernel wants it. */
static int limit_value(const char *key, json_t *config, char **out, struct ferry_error **err)
{
	const char *v = config_get(config, key);
	bool unset = v == NULL || v[0] == '\0';
	if (strcmp(key, "limits.memory") == 0) {
		long long bytes;
		if (unset) {
			*out = xstrdup("-1");
			return 0;
		}
		if (config_parse_bytes(v, &bytes, err) < 0)
			return -1;
		*out = xasprintf("%lld", bytes);
		return 0;
	}
	if (strcmp(key, "limits.cpu") == 0) {
		if (unset) {
			/* Back to every CPU its parent cgroup may use. */
			cleanup_free char *parent = instance_cgroup_parent(daemon_ctx->root);
			cleanup_free char *path = xasprintf("/sys/fs/cgroup/cpuset/%s/cpuset.cpus", parent);
			char *cpus = NULL;
			if (file_read(path, &cpus, NULL, err) < 0)
				return -1;
			cpus[strcspn(cpus, "\n")] = '\0';
			*out = cpus;
			return 0;
		}
		return config_parse_cpuset(v, out, err);
	}
	/* limits.processes */
	*out = xstrdup(unset ? "max" : v);
	return 0;
}

static const struct {
	const char *key;
	const char *controller;
	const char *file;
} live_limits[] = {
	{ "limits.memory", "memory", "memory.limit_in_bytes" },
	{ "limits.cpu", "cpuset", "cpuset.cpus" },
	{ "limits.processes", "pids", "pids.max" },
};

static bool same_string(json_t *a, json_t *b, const char *key)
{
	const char *x = json_string_value(json_object_get(a, key));
	const char *y = json_string_value(json_object_get(b, key));
	return (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* Keys and devices that differ between two expanded views and can't reach
 * a running instance before it restarts: "environment.FOO", "devices.data". */
static void list_next_start(json_t *old_config, json_t *old_devices, json_t *new_config, json_t *new_devices,
			    json_t *next_start)
{
	json_t *keys = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(old_config, key, v) json_object_set_new(keys, key, json_true());
	json_object_foreach(new_config, key, v) json_object_set_new(keys, key, json_true());
	json_object_foreach(keys, key, v) {
		if (same_string(old_config, new_config, key))
			continue;
		const struct config_key *ck = config_key_find(key);
		if (ck != NULL && !ck->live)
			json_array_append_new(next_start, json_string(key));
	}
	json_decref(keys);
	/* Devices: hot-plugging disks and nics isn't done yet. */
	json_t *names = json_object();
	json_object_foreach(old_devices, key, v) json_object_set_new(names, key, json_true());
	json_object_foreach(new_devices, key, v) json_object_set_new(names, key, json_true());
	json_object_foreach(names, key, v) {
		if (!json_equal(json_object_get(old_devices, key), json_object_get(new_devices, key)))
			json_array_append_new(next_start, json_sprintf("devices.%s", key));
	}
	json_decref(names);
}

int instance_apply_live(const char *name, json_t *old_config, json_t *old_devices, json_t *new_config,
			json_t *new_devices, json_t *next_start, struct ferry_error **err)
{
	if (!instance_is_running(name))
		return 0; /* everything applies at the next start anyway */
	size_t applied = 0;
	size_t n = sizeof(live_limits) / sizeof(live_limits[0]);
	for (; applied < n; applied++) {
		const char *key = live_limits[applied].key;
		if (same_string(old_config, new_config, key))
			continue;
		cleanup_free char *value = NULL;
		if (limit_value(key, new_config, &value, err) < 0 ||
		    cgroup_write(name, live_limits[applied].controller, live_limits[applied].file, value, err) < 0)
			break;
		log_info("instance %s: %s set to %s live", name, key, value);
	}
	if (applied < n) {
		/* Put back what was already written, so nothing changed. */
		for (size_t i = 0; i < applied; i++) {
			const char *key = live_limits[i].key;
			cleanup_free char *value = NULL;
			cleanup_error struct ferry_error *undo = NULL;
			if (same_string(old_config, new_config, key))
				continue;
			if (limit_value(key, old_config, &value, &undo) < 0 ||
			    cgroup_write(name, live_limits[i].controller, live_limits[i].file, value, &undo) < 0)
				log_error("instance %s: restoring %s: %s", name, key, undo->msg);
		}
		return error_wrap(err, "apply %s to the running instance", live_limits[applied].key);
	}
	if (next_start != NULL)
		list_next_start(old_config, old_devices, new_config, new_devices, next_start);
	return 0;
}

/* ---- runtime ----------------------------------------------------------- */

static unsigned idmap_base_of(json_t *config)
{
	const char *v = json_string_value(json_object_get(config, "volatile.idmap.base"));
	if (v == NULL)
		return config_get_bool(config, "security.privileged") ? 0 : INSTANCE_IDMAP_BASE_DEFAULT;
	return (unsigned)strtoul(v, NULL, 10);
}

/* The runtime_spec for inst, from its expanded config and devices. Picks
 * fresh host-side veth names and records them in inst->config. */
static int build_spec(struct db_instance *inst, struct runtime_spec **out, struct ferry_error **err)
{
	struct runtime_spec *spec = xcalloc(1, sizeof(*spec));
	/* Limits and environment from the profiles too; volatile.* is the
	 * instance's own. */
	json_t *config = inst->config;
	json_t *expanded_config = instance_expanded_config(inst);
	json_t *devices = instance_expanded_devices(inst);
	int ret = -1;
	uint32_t gw;
	int prefix;
	const char *v;
	cleanup_free char *gateway = NULL;

	spec->name = xstrdup(inst->name);
	spec->dir = instance_dir(inst->name);
	spec->rootfs = instance_rootfs(inst->name);
	spec->log_dir = instance_log_dir(inst->name);
	spec->cgroup = instance_cgroup(inst->name);
	spec->idmap_hostid = idmap_base_of(config);
	spec->privileged = spec->idmap_hostid == 0;
	spec->idmap_range = INSTANCE_IDMAP_RANGE;

	if ((v = config_get(expanded_config, "limits.memory")) != NULL && v[0] != '\0' &&
	    config_parse_bytes(v, &spec->limits_memory, err) < 0)
		goto out;
	if ((v = config_get(expanded_config, "limits.cpu")) != NULL && v[0] != '\0' &&
	    config_parse_cpuset(v, &spec->limits_cpu, err) < 0)
		goto out;
	if ((v = config_get(expanded_config, "limits.processes")) != NULL && v[0] != '\0')
		spec->limits_processes = strtoll(v, NULL, 10);

	size_t n_env = 0;
	const char *key;
	json_t *value;
	spec->environment = xcalloc(json_object_size(expanded_config) + 1, sizeof(char *));
	json_object_foreach(expanded_config, key, value) {
		if (strncmp(key, "environment.", 12) == 0 && json_is_string(value))
			spec->environment[n_env++] = xasprintf("%s=%s", key + 12, json_string_value(value));
	}

	if (network_cidr_parse(daemon_ctx->bridge_cidr, &gw, &prefix, err) < 0) {
		error_wrap(err, "bridge address");
		goto out;
	}
	gateway = config_format_ipv4(gw);
	size_t n_dev = json_object_size(devices);
	spec->nics = xcalloc(n_dev, sizeof(*spec->nics));
	spec->mounts = xcalloc(n_dev, sizeof(*spec->mounts));
	const char *dev;
	json_t *d;
	json_object_foreach(devices, dev, d) {
		const char *type = json_string_value(json_object_get(d, "type"));
		if (strcmp(type, "nic") == 0) {
			struct runtime_nic *nic = &spec->nics[spec->n_nics++];
			cleanup_free char *hw_key = xasprintf("volatile.%s.hwaddr", dev);
			cleanup_free char *ip_key = xasprintf("volatile.%s.ipv4.address", dev);
			cleanup_free char *host_key = xasprintf("volatile.%s.host_name", dev);
			const char *name = json_string_value(json_object_get(d, "name"));
			const char *hwaddr = json_string_value(json_object_get(d, "hwaddr"));
			const char *addr = json_string_value(json_object_get(d, "ipv4.address"));
			const char *mtu = json_string_value(json_object_get(d, "mtu"));
			nic->name = xstrdup(name ? name : dev);
			nic->bridge = xstrdup(daemon_ctx->bridge);
			nic->hwaddr = xstrdup(hwaddr ? hwaddr : json_string_value(json_object_get(config, hw_key)));
			if (addr == NULL)
				addr = json_string_value(json_object_get(config, ip_key));
			if (addr != NULL) {
				nic->ipv4_cidr = xasprintf("%s/%d", addr, prefix);
				nic->ipv4_gateway = xstrdup(gateway);
			}
			nic->host_name = network_new_host_name();
			nic->mtu = mtu ? (unsigned)strtoul(mtu, NULL, 10) : 0;
			config_set(config, host_key, nic->host_name);
		} else if (strcmp(type, "disk") == 0) {
			const char *path = json_string_value(json_object_get(d, "path"));
			if (strcmp(path, "/") == 0)
				continue; /* the rootfs itself */
			struct runtime_mount *m = &spec->mounts[spec->n_mounts++];
			bool ro = false;
			const char *readonly = json_string_value(json_object_get(d, "readonly"));
			if (readonly != NULL)
				config_parse_bool(readonly, &ro);
			m->source = xstrdup(json_string_value(json_object_get(d, "source")));
			m->target = xstrdup(path);
			m->readonly = ro;
		}
		/* unix-char devices are validated, not yet passed through. */
	}
	*out = spec;
	spec = NULL;
	ret = 0;
out:
	runtime_spec_free(spec);
	json_decref(expanded_config);
	json_decref(devices);
	return ret;
}

static void forget_host_names(json_t *config)
{
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(config, tmp, key, v) {
		size_t n = strlen(key);
		if (strncmp(key, "volatile.", 9) == 0 && n > 10 && strcmp(key + n - 10, ".host_name") == 0)
			json_object_del(config, key);
	}
}

static int save_power_state(const char *name, const char *power, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	config_set(inst.config, "volatile.last_state.power", power);
	if (strcmp(power, "STOPPED") == 0)
		forget_host_names(inst.config);
	int r = db_instance_update(daemon_ctx->db, &inst, err);
	db_instance_clear(&inst);
	return r;
}

void instance_cut_host_veths(const char *instance)
{
	cleanup_free char *dir = instance_dir(instance);
	cleanup_free char *path = xasprintf("%s/spec.json", dir);
	cleanup_free char *text = NULL;
	struct runtime_spec *spec = NULL;
	cleanup_error struct ferry_error *e = NULL;
	if (file_read(path, &text, NULL, &e) < 0 || runtime_spec_from_json(text, &spec, &e) < 0) {
		log_warn("instance %s: before the restore: %s", instance, e->msg);
		return;
	}
	for (size_t i = 0; i < spec->n_nics; i++) {
		if (spec->nics[i].host_name != NULL && network_link_delete(spec->nics[i].host_name, &e) < 0) {
			log_warn("instance %s: removing %s: %s", instance, spec->nics[i].host_name, e->msg);
			error_free(&e);
		}
	}
	runtime_spec_free(spec);
}

int instance_config_mark(const char *name, const char *key, const char *value, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	if (value != NULL)
		config_set(inst.config, key, value);
	else
		json_object_del(inst.config, key);
	int r = db_instance_update(daemon_ctx->db, &inst, err);
	db_instance_clear(&inst);
	return r;
}

/* Discard a stateful stop's saved state (start --stateless, a snapshot
 * restore). */
static int discard_state(struct db_instance *inst, struct ferry_error **err)
{
	cleanup_free char *state = instance_state_dir(inst->name);
	if (daemon_discard(state, err) < 0)
		return error_wrap(err, "discard the saved state");
	inst->stateful = false;
	if (db_instance_update(daemon_ctx->db, inst, err) < 0)
		return error_wrap(err, "discard the saved state");
	log_info("instance %s: saved state discarded", inst->name);
	return 0;
}

int instance_discard_state(const char *name, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	int r = inst.stateful ? discard_state(&inst, err) : 0;
	db_instance_clear(&inst);
	return r;
}

/* After a restore: the restored veths have host-side names the monitor
 * picked (spec.json), and neighbours must learn where the addresses live
 * now (gratuitous ARP). */
/* Gratuitous ARP for each nic's address from inside the container: the
 * LAN learns where it is now (after a move), and which MAC has it (an
 * address handed out again, to a new instance, may still be cached for the
 * old one's). */
static void announce_nics(const char *name, const struct runtime_spec *spec, pid_t init_pid)
{
	for (size_t i = 0; init_pid > 0 && i < spec->n_nics; i++) {
		cleanup_error struct ferry_error *e = NULL;
		if (network_announce(init_pid, spec->nics[i].name, &e) < 0)
			log_warn("instance %s: announcing %s: %s", name, spec->nics[i].name, e->msg);
	}
}

static void after_restore(const char *name)
{
	cleanup_free char *dir = instance_dir(name);
	cleanup_free char *spec_path = xasprintf("%s/spec.json", dir);
	cleanup_free char *text = NULL;
	struct runtime_spec *spec = NULL;
	struct runtime_state st;
	cleanup_error struct ferry_error *e = NULL;
	if (file_read(spec_path, &text, NULL, &e) < 0 || runtime_spec_from_json(text, &spec, &e) < 0 ||
	    instance_runtime_state(name, &st, &e) < 0) {
		log_warn("instance %s: after the restore: %s", name, e->msg);
		runtime_spec_free(spec);
		return;
	}
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, &e) == 0) {
		for (size_t i = 0; i < spec->n_nics; i++) {
			/* The device's name in the config is the nic's name unless the device says otherwise. */
			const char *dev;
			json_t *d;
			json_t *devices = instance_expanded_devices(&inst);
			json_object_foreach(devices, dev, d) {
				const char *nic_name = json_string_value(json_object_get(d, "name"));
				if (!is_nic(d) || strcmp(nic_name ? nic_name : dev, spec->nics[i].name) != 0)
					continue;
				cleanup_free char *key = xasprintf("volatile.%s.host_name", dev);
				config_set(inst.config, key, spec->nics[i].host_name);
			}
			json_decref(devices);
		}
		if (db_instance_update(daemon_ctx->db, &inst, &e) < 0)
			log_warn("instance %s: recording the restored veths: %s", name, e->msg);
		db_instance_clear(&inst);
	}
	error_free(&e);
	announce_nics(name, spec, st.init_pid);
	runtime_spec_free(spec);
}

static int start_instance(const char *name, enum instance_start_mode mode, const char *images, const char *what,
			  const struct runtime_restore_opts *restore_opts, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	struct runtime_spec *spec = NULL;
	struct runtime_state st;
	cleanup_free char *state_dir = instance_state_dir(name);
	cleanup_free char *log_path = NULL;
	int ret = -1;

	if (instance_get(name, &inst, err) < 0)
		return -1;
	if (instance_runtime_state(name, &st, err) < 0)
		goto out;
	if (st.status != RUNTIME_STOPPED) {
		error_bad_request(err, "The instance is already running");
		goto out;
	}
	/* As LXD: a stateless start of an instance with saved state discards it. */
	if (images == NULL && inst.stateful && mode == INSTANCE_START_STATELESS && discard_state(&inst, err) < 0)
		goto out;
	if (images == NULL && mode == INSTANCE_START_STATEFUL && !inst.stateful) {
		error_bad_request(err, "The instance has no saved state to restore");
		goto out;
	}
	if (images == NULL && inst.stateful) {
		images = state_dir;
		if (what == NULL)
			what = "stop";
	}
	pthread_mutex_lock(&address_mutex);
	ret = assign_nics(&inst, err);
	if (ret == 0)
		ret = build_spec(&inst, &spec, err);
	if (ret == 0) {
		config_set(inst.config, "volatile.last_state.power", "RUNNING");
		free(inst.last_used_at);
		inst.last_used_at = now_rfc3339();
		ret = db_instance_update(daemon_ctx->db, &inst, err);
	}
	pthread_mutex_unlock(&address_mutex);
	if (ret < 0)
		goto out;
	ret = -1;
	if (mkdir_p(spec->log_dir, 0700, err) < 0)
		goto out;
	if (images != NULL) {
		log_path = checkpoint_log_path(spec->log_dir, what, "restore");
		long long t0 = now_ms();
		if (runtime_restore(spec, images, log_path, restore_opts, err) < 0) {
			cleanup_error struct ferry_error *ignored = NULL;
			save_power_state(name, "STOPPED", &ignored);
			if (images == state_dir)
				error_wrap(err, "restore the saved state (it is kept: \"ferry start --stateless %s\" "
						"discards it and boots afresh)", name);
			else
				error_wrap(err, "restore the snapshot's state (the instance stays stopped)");
			goto out;
		}
		log_info("instance %s: restored from %s in %lld ms", name, images, now_ms() - t0);
		after_restore(name);
		/* Post-copy: the lazy-pages daemon still reads it (the target
		 * discards it once every page is in). */
		if (images == state_dir && !(restore_opts != NULL && restore_opts->lazy_pages)) {
			/* Running again: the saved state has served. */
			struct db_instance now = { 0 };
			cleanup_error struct ferry_error *e = NULL;
			if (instance_get(name, &now, &e) < 0 || discard_state(&now, &e) < 0)
				log_error("instance %s: removing the used state: %s", name, e->msg);
			db_instance_clear(&now);
		}
	} else if (runtime_start(spec, err) < 0) {
		cleanup_error struct ferry_error *ignored = NULL;
		save_power_state(name, "STOPPED", &ignored);
		goto out;
	} else {
		struct runtime_state st;
		cleanup_error struct ferry_error *e = NULL;
		if (instance_runtime_state(name, &st, &e) == 0)
			announce_nics(name, spec, st.init_pid);
	}
	ret = 0;
	log_info("instance %s: started%s", name, images ? " (restored)" : "");
	lifecycle("instance-started", name);
out:
	if (ret < 0)
		error_wrap(err, "start instance \"%s\"", name);
	runtime_spec_free(spec);
	db_instance_clear(&inst);
	return ret;
}

int instance_start_mode(const char *name, enum instance_start_mode mode, const char *images, const char *what,
			struct ferry_error **err)
{
	return start_instance(name, mode, images, what, NULL, err);
}

int instance_restore_paused(const char *name, const char *what, int lazy_socket, struct ferry_error **err)
{
	struct runtime_restore_opts o = {
		.paused = true,
		.lazy_pages = lazy_socket >= 0,
		.lazy_socket = lazy_socket,
		.discard_pages = true,
	};
	return start_instance(name, INSTANCE_START_STATEFUL, NULL, what, &o, err);
}

int instance_lazy_pages_status(const char *name, struct ferry_error **err)
{
	cleanup_free char *dir = instance_dir(name);
	return runtime_lazy_pages_status(dir, err);
}

int instance_resume(const char *name, struct ferry_error **err)
{
	cleanup_free char *dir = instance_dir(name);
	return runtime_resume(name, dir, err);
}

int instance_start(const char *name, struct ferry_error **err)
{
	return instance_start_mode(name, INSTANCE_START_DEFAULT, NULL, NULL, err);
}

struct proc_stat {
	pid_t pid, ppid;
	char comm[32];
};

static bool proc_stat_read(pid_t pid, struct proc_stat *ps)
{
	cleanup_free char *path = xasprintf("/proc/%d/stat", (int)pid);
	cleanup_free char *stat = NULL;
	if (file_read(path, &stat, NULL, NULL) < 0)
		return false;
	/* "pid (comm) state ppid ...": comm may hold spaces and parens. */
	const char *lp = strchr(stat, '(');
	const char *rp = strrchr(stat, ')');
	int ppid = 0;
	if (lp == NULL || rp == NULL || rp < lp || sscanf(rp + 1, " %*c %d", &ppid) != 1)
		return false;
	ps->pid = pid;
	ps->ppid = ppid;
	snprintf(ps->comm, sizeof(ps->comm), "%.*s", (int)(rp - lp - 1), lp + 1);
	return true;
}

/* A process of the instance whose parent is outside it (not init, whose
 * parent is the monitor), as one reading of procs_path shows it; its comm
 * is the command it runs: its child's, when it has one (an exec session's
 * first child is a copy of ferryd; the user's command is its child). */
static bool outsider_find(const char *procs_path, pid_t init_pid, struct proc_stat *o)
{
	cleanup_free char *procs = NULL;
	if (file_read(procs_path, &procs, NULL, NULL) < 0)
		return false; /* gone meanwhile: nothing to protect */
	size_t n = 0;
	cleanup_free pid_t *pids = pids_parse(procs, &n);
	cleanup_free struct proc_stat *ps = xcalloc(n ? n : 1, sizeof(*ps));
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (proc_stat_read(pids[i], &ps[m]))
			m++;
	for (size_t i = 0; i < m; i++) {
		if (ps[i].pid == init_pid)
			continue;
		bool inside = false;
		for (size_t j = 0; j < n && !inside; j++)
			inside = pids[j] == ps[i].ppid;
		if (inside)
			continue;
		*o = ps[i];
		for (size_t j = 0; j < m; j++)
			if (ps[j].ppid == ps[i].pid) {
				memcpy(o->comm, ps[j].comm, sizeof(o->comm));
				break;
			}
		return true;
	}
	return false;
}

/* Processes of a running instance whose parent is outside it: the processes
 * of an open exec session (its first child joins the cgroups and stays
 * ferryd's child). CRIU dumps the tree below init only, so a stateful stop
 * would lose them. One reading of cgroup.procs can also show a process
 * whose parent is exiting (the kernel takes a task out of its cgroup before
 * it hands the children to init), so only an outsider seen in three
 * readings 20 ms apart counts. */
static int exec_sessions_check(const char *name, const char *action, const char *procs_path, pid_t init_pid,
			       struct ferry_error **err)
{
	struct proc_stat o;
	for (int reading = 0; reading < 3; reading++) {
		if (reading > 0)
			usleep(20 * 1000);
		if (!outsider_find(procs_path, init_pid, &o))
			return 0;
	}
	return error_conflict(err,
			      "Can't %s instance \"%s\" while an exec session runs in it (%s, host pid %d): "
			      "CRIU saves the processes below init only, and that session's would be lost. "
			      "End the session (or let it finish) and try again",
			      action, name, o.comm, (int)o.pid);
}

/* The namespaces CRIU can save only as the container's own: a process
 * with one of these of its own can't be checkpointed (mount and network
 * namespaces nested in the container's it can save). `unit` is the systemd
 * setting that gives a service one. */
static const struct {
	const char *ns, *what, *unit;
} unnestable_ns[] = {
	{ "ipc", "an IPC", "PrivateIPC=no" },
	{ "pid", "a PID", "PrivatePIDs=no" },
	{ "user", "a user", "PrivateUsers=no" },
	{ "time", "a time", NULL },
};

static bool ns_inode(pid_t pid, const char *ns, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, ns);
	ssize_t n = readlink(path, buf, size - 1);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* A process of the instance in an IPC, PID, user or time namespace
 * nested in the container's: CRIU would refuse it once the instance is
 * frozen, in its own words ("Can't dump nested ipc namespace for PID").
 * Said here before anything stops, with the process's name and the way out. */
static int nested_ns_check(const char *name, const char *action, const pid_t *pids, size_t n, pid_t init_pid,
			   struct ferry_error **err)
{
	for (size_t k = 0; k < sizeof(unnestable_ns) / sizeof(unnestable_ns[0]); k++) {
		char own[64], other[64];
		if (!ns_inode(init_pid, unnestable_ns[k].ns, own, sizeof(own)))
			continue;
		for (size_t i = 0; i < n; i++) {
			struct proc_stat ps;
			if (pids[i] == init_pid || !ns_inode(pids[i], unnestable_ns[k].ns, other, sizeof(other)) ||
			    strcmp(own, other) == 0 || !proc_stat_read(pids[i], &ps))
				continue;
			cleanup_free char *hint =
				unnestable_ns[k].unit == NULL
					? xstrdup("")
					: xasprintf(" (for a systemd service, %s in its unit avoids it)", unnestable_ns[k].unit);
			return error_conflict(err,
					      "Can't %s instance \"%s\": its process %s (host pid %d) runs in %s "
					      "namespace of its own, and CRIU can save IPC, PID, user and time "
					      "namespaces only as the container's%s",
					      action, name, ps.comm, (int)ps.pid, unnestable_ns[k].what, hint);
		}
	}
	return 0;
}

/* The magic of the mqueue filesystem (the kernel's ipc/mqueue.c; not in
 * linux/magic.h). */
#define FERRY_MQUEUE_MAGIC 0x19800202

/* A POSIX message queue open in a process of the instance, or in its
 * /dev/mqueue: CRIU can't save one, and would refuse it once the instance
 * is frozen, in words that don't say so ("Can't lookup mount=N for fd=M
 * path=/NAME"). */
static int mqueue_check(const char *name, const char *action, const pid_t *pids, size_t n, pid_t init_pid,
			struct ferry_error **err)
{
	for (size_t i = 0; i < n; i++) {
		char dir[64];
		snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pids[i]);
		DIR *d = opendir(dir);
		if (d == NULL)
			continue; /* gone meanwhile */
		struct dirent *e;
		char queue[256] = "";
		while (queue[0] == '\0' && (e = readdir(d)) != NULL) {
			char path[64 + sizeof(e->d_name)];
			struct statfs st;
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			if (statfs(path, &st) < 0 || st.f_type != FERRY_MQUEUE_MAGIC)
				continue;
			ssize_t len = readlink(path, queue, sizeof(queue) - 1);
			if (len > 0)
				queue[len] = '\0';
			else
				strcpy(queue, "?");
		}
		closedir(d);
		struct proc_stat ps;
		if (queue[0] != '\0' && proc_stat_read(pids[i], &ps))
			return error_conflict(err,
					      "Can't %s instance \"%s\": its process %s (host pid %d) has the POSIX message "
					      "queue %s open, and CRIU can't save message queues",
					      action, name, ps.comm, (int)ps.pid, queue);
	}
	/* Nor one that no process holds: CRIU refuses a /dev/mqueue that is
	 * not empty ("mqueue isn't empty"). */
	cleanup_free char *mqueues = xasprintf("/proc/%d/root/dev/mqueue", (int)init_pid);
	DIR *d = opendir(mqueues);
	if (d == NULL)
		return 0;
	struct dirent *e;
	char queue[sizeof(e->d_name)] = "";
	while (queue[0] == '\0' && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			snprintf(queue, sizeof(queue), "%s", e->d_name);
	closedir(d);
	if (queue[0] != '\0')
		return error_conflict(err,
				      "Can't %s instance \"%s\": it has the POSIX message queue /%s (/dev/mqueue/%s), "
				      "and CRIU can't save message queues. Remove it once no process needs it",
				      action, name, queue, queue);
	return 0;
}

/* What would keep a running instance from being checkpointed, said before
 * anything stops it. */
int instance_checkpoint_check(const char *name, const char *action, struct ferry_error **err)
{
	struct runtime_state st;
	if (instance_runtime_state(name, &st, err) < 0)
		return -1;
	if (st.status == RUNTIME_STOPPED || st.init_pid <= 0)
		return 0;
	cleanup_free char *cgroup = instance_cgroup(name);
	cleanup_free char *procs_path = xasprintf("/sys/fs/cgroup/freezer/%s/cgroup.procs", cgroup);
	if (exec_sessions_check(name, action, procs_path, st.init_pid, err) < 0)
		return -1;
	cleanup_free char *procs = NULL;
	if (file_read(procs_path, &procs, NULL, NULL) < 0)
		return 0; /* gone meanwhile: nothing to check */
	size_t n = 0;
	cleanup_free pid_t *pids = pids_parse(procs, &n);
	if (nested_ns_check(name, action, pids, n, st.init_pid, err) < 0)
		return -1;
	return mqueue_check(name, action, pids, n, st.init_pid, err);
}

int instance_images_dir_make(const char *name, const char *path, struct ferry_error **err)
{
	struct instance_idmap map;
	if (instance_idmap(name, &map, err) < 0)
		return -1;
	if (mkdir(path, 0710) < 0 && errno != EEXIST)
		return error_sys(err, errno, "mkdir %s", path);
	if (chown(path, 0, map.base) < 0)
		return error_sys(err, errno, "chown %s", path);
	if (chmod(path, map.base ? 0710 : 0700) < 0)
		return error_sys(err, errno, "chmod %s", path);
	return 0;
}

char *instance_staging_path(const char *name, const char *what)
{
	if (daemon_ctx->staging_dir == NULL)
		return NULL;
	cleanup_free char *dir = instance_dir(name);
	struct statfs st;
	if (statfs(dir, &st) == 0 && st.f_type == TMPFS_MAGIC)
		return NULL;
	return xasprintf("%s/%s.%s", daemon_ctx->staging_dir, name, what);
}

void instance_dump_staging_clear(const char *name)
{
	cleanup_free char *staged = instance_staging_path(name, "dump");
	cleanup_error struct ferry_error *e = NULL;
	if (staged != NULL && rm_rf(staged, &e) < 0)
		log_warn("instance %s: %s", name, e->msg);
}

int instance_stop_stateful_as(const char *name, const char *what, const struct runtime_checkpoint_opts *lazy,
			      struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	struct runtime_state st;
	cleanup_free char *dir = instance_dir(name);
	cleanup_free char *state_dir = instance_state_dir(name);
	cleanup_free char *log_dir = instance_log_dir(name);
	cleanup_free char *log_path = NULL;
	cleanup_free char *staged = NULL;
	int ret = -1;

	if (instance_get(name, &inst, err) < 0)
		return -1;
	if (instance_runtime_state(name, &st, err) < 0)
		goto out;
	if (st.status == RUNTIME_STOPPED) {
		error_bad_request(err, "The instance is already stopped");
		goto out;
	}
	if (instance_checkpoint_check(name, "stop --stateful", err) < 0)
		goto out;
	/* The images of an earlier stop can't be here (a start removes them),
	 * unless a crash left them: this dump replaces them. */
	/* A live move's dump goes to staging (instance.h). CRIU makes forty-odd
	 * small images while the instance is frozen; a file made on this
	 * machine's ext4 costs ~105 us, on a tmpfs ~12. */
	staged = strcmp(what, "migration") == 0 ? instance_staging_path(name, "dump") : NULL;
	if (rm_rf(state_dir, err) < 0 || mkdir_p(log_dir, 0700, err) < 0)
		goto out;
	if (staged != NULL) {
		if (rm_rf(staged, err) < 0 || instance_images_dir_make(name, staged, err) < 0)
			goto out;
		if (symlink(staged, state_dir) < 0) {
			error_sys(err, errno, "link %s to %s", state_dir, staged);
			goto out;
		}
		log_info("instance %s: its dump goes to %s", name, staged);
	} else if (instance_images_dir_make(name, state_dir, err) < 0) {
		goto out;
	}
	log_path = checkpoint_log_path(log_dir, what, "dump");
	struct runtime_checkpoint_opts o = lazy != NULL ? *lazy : (struct runtime_checkpoint_opts){ 0 };
	o.images_dir = state_dir;
	o.log_path = log_path;
	o.leave_running = false;
	long long t0 = now_ms();
	if (runtime_checkpoint(name, dir, &o, err) < 0) {
		cleanup_error struct ferry_error *ignored = NULL;
		rm_rf(state_dir, &ignored);
		if (staged != NULL)
			rm_rf(staged, &ignored);
		if ((*err)->errnum == ECONNABORTED) {
			save_power_state(name, "STOPPED", &ignored);
			error_wrap(err, "its copy here was stopped (its memory was handed over)");
		} else {
			error_wrap(err, "the instance keeps running");
		}
		goto out;
	}
	log_info("instance %s: checkpointed and stopped in %lld ms", name, now_ms() - t0);
	inst.stateful = true;
	config_set(inst.config, "volatile.last_state.power", "STOPPED");
	forget_host_names(inst.config);
	if (db_instance_update(daemon_ctx->db, &inst, err) < 0)
		goto out;
	ret = 0;
	lifecycle("instance-stopped", name);
out:
	if (ret < 0)
		error_wrap(err, "stop --stateful instance \"%s\"", name);
	db_instance_clear(&inst);
	return ret;
}

int instance_stop_stateful(const char *name, struct ferry_error **err)
{
	return instance_stop_stateful_as(name, "stop", NULL, err);
}

/* ---- CRIU on this host (GET /1.0 environment.criu) ---------------------- */

/* checkpoint_check runs CRIU three times (about 100 ms): once, in the
 * background from start-up, and every GET /1.0 answers from the cache. */
static pthread_mutex_t criu_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t criu_cond = PTHREAD_COND_INITIALIZER;
static json_t *criu_environment;
static bool criu_checking;

static void *criu_check_thread(void *arg)
{
	(void)arg;
	json_t *out = NULL;
	cleanup_error struct ferry_error *e = NULL;
	if (checkpoint_check(&out, &e) < 0)
		out = json_pack("{s:n,s:s,s:{}}", "version", "check", e->msg, "features");
	else
		log_info("CRIU %s: check %s", json_string_value(json_object_get(out, "version")) ?: "?",
			 json_string_value(json_object_get(out, "check")) ?: "?");
	pthread_mutex_lock(&criu_mutex);
	criu_environment = out;
	criu_checking = false;
	pthread_cond_broadcast(&criu_cond);
	pthread_mutex_unlock(&criu_mutex);
	return NULL;
}

/* Call with criu_mutex held. */
static void criu_check_start_locked(void)
{
	if (criu_environment != NULL || criu_checking)
		return;
	pthread_t thread;
	criu_checking = true;
	if (pthread_create(&thread, NULL, criu_check_thread, NULL) != 0) {
		criu_checking = false;
		return;
	}
	pthread_detach(thread);
}

void instance_criu_check_start(void)
{
	pthread_mutex_lock(&criu_mutex);
	criu_check_start_locked();
	pthread_mutex_unlock(&criu_mutex);
}

json_t *instance_criu_environment(void)
{
	pthread_mutex_lock(&criu_mutex);
	criu_check_start_locked();
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	while (criu_checking && pthread_cond_timedwait(&criu_cond, &criu_mutex, &deadline) == 0)
		;
	json_t *out = criu_environment ? json_incref(criu_environment) : NULL;
	pthread_mutex_unlock(&criu_mutex);
	return out;
}

/* Stop without the ephemeral deletion and event (shared by stop and restart). */
static int stop_runtime(const char *name, int timeout_s, bool force, struct ferry_error **err)
{
	struct runtime_state st;
	cleanup_free char *dir = instance_dir(name);
	if (instance_runtime_state(name, &st, err) < 0)
		return -1;
	if (st.status == RUNTIME_STOPPED)
		return error_bad_request(err, "The instance is already stopped");
	/* A frozen init can't act on its shutdown signal, and with cgroup v1
	 * even SIGKILL waits for the thaw. */
	if (st.status == RUNTIME_FROZEN && runtime_unfreeze(dir, err) < 0)
		return -1;
	if (runtime_stop(name, dir, timeout_s, force, err) < 0)
		return -1;
	return save_power_state(name, "STOPPED", err);
}

int instance_stop(const char *name, int timeout_s, bool force, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	bool ephemeral = inst.ephemeral;
	db_instance_clear(&inst);
	if (instance_stop_keep(name, timeout_s, force, err) < 0)
		return -1;
	if (ephemeral && instance_delete(name, err) < 0)
		return error_wrap(err, "delete ephemeral instance \"%s\"", name);
	return 0;
}

int instance_stop_keep(const char *name, int timeout_s, bool force, struct ferry_error **err)
{
	if (stop_runtime(name, timeout_s, force, err) < 0)
		return error_wrap(err, "stop instance \"%s\"", name);
	log_info("instance %s: stopped", name);
	lifecycle(force ? "instance-stopped" : "instance-shutdown", name);
	return 0;
}

int instance_restart(const char *name, int timeout_s, bool force, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	db_instance_clear(&inst);
	if (stop_runtime(name, timeout_s, force, err) < 0)
		return error_wrap(err, "restart instance \"%s\"", name);
	if (instance_start(name, err) < 0)
		return error_wrap(err, "restart");
	lifecycle("instance-restarted", name);
	return 0;
}

int instance_stop_forced(const char *name, struct ferry_error **err)
{
	if (stop_runtime(name, -1, true, err) < 0)
		return error_wrap(err, "stop instance \"%s\"", name);
	lifecycle("instance-stopped", name);
	return 0;
}

int instance_record_create(struct db_instance *inst, struct ferry_error **err)
{
	pthread_mutex_lock(&address_mutex);
	int r;
	if (instance_exists(inst->name))
		r = error_conflict(err, "Instance \"%s\" already exists", inst->name);
	else if ((r = assign_nics(inst, err)) == 0)
		r = db_instance_create(daemon_ctx->db, inst, err);
	pthread_mutex_unlock(&address_mutex);
	return r;
}

int instance_freeze(const char *name, struct ferry_error **err)
{
	struct runtime_state st;
	cleanup_free char *dir = instance_dir(name);
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	db_instance_clear(&inst);
	if (instance_runtime_state(name, &st, err) < 0)
		return -1;
	if (st.status == RUNTIME_STOPPED)
		return error_bad_request(err, "The instance isn't running");
	if (st.status == RUNTIME_FROZEN)
		return error_bad_request(err, "The instance is already frozen");
	if (runtime_freeze(dir, err) < 0)
		return error_wrap(err, "freeze instance \"%s\"", name);
	lifecycle("instance-paused", name);
	return 0;
}

int instance_unfreeze(const char *name, struct ferry_error **err)
{
	struct runtime_state st;
	cleanup_free char *dir = instance_dir(name);
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	db_instance_clear(&inst);
	if (instance_runtime_state(name, &st, err) < 0)
		return -1;
	if (st.status == RUNTIME_STOPPED)
		return error_bad_request(err, "The instance isn't running");
	if (st.status == RUNTIME_RUNNING)
		return error_bad_request(err, "The instance is already running");
	if (runtime_unfreeze(dir, err) < 0)
		return error_wrap(err, "unfreeze instance \"%s\"", name);
	lifecycle("instance-resumed", name);
	return 0;
}

/* ---- JSON -------------------------------------------------------------- */

static const char *status_name(enum runtime_status s)
{
	switch (s) {
	case RUNTIME_RUNNING: return "Running";
	case RUNTIME_FROZEN: return "Frozen";
	default: return "Stopped";
	}
}

static int status_code(enum runtime_status s)
{
	switch (s) {
	case RUNTIME_RUNNING: return 103;
	case RUNTIME_FROZEN: return 110;
	default: return 102;
	}
}

static json_t *state_json(const char *name, const struct runtime_state *st)
{
	json_t *network = json_null();
	if (st->status != RUNTIME_STOPPED && st->init_pid > 0) {
		cleanup_error struct ferry_error *e = NULL;
		json_t *net = NULL;
		if (network_state_json(st->init_pid, &net, &e) < 0)
			log_warn("instance %s: network state: %s", name, e->msg);
		else
			network = net;
	}
	bool running = st->status != RUNTIME_STOPPED;
	return json_pack("{s:s,s:i,s:{},s:{s:I,s:I,s:I,s:I},s:o,s:I,s:I,s:{s:I}}",
			 "status", status_name(st->status),
			 "status_code", status_code(st->status),
			 "disk",
			 "memory", "usage", (json_int_t)(running && st->memory_usage > 0 ? st->memory_usage : 0),
			 "usage_peak", (json_int_t)(running && st->memory_peak > 0 ? st->memory_peak : 0),
			 "swap_usage", (json_int_t)0, "swap_usage_peak", (json_int_t)0,
			 "network", network,
			 "pid", (json_int_t)(running ? st->init_pid : -1),
			 "processes", (json_int_t)(running ? st->processes : 0),
			 "cpu", "usage", (json_int_t)(running && st->cpu_usage_ns > 0 ? st->cpu_usage_ns : 0));
}

int instance_state_to_json(const char *name, json_t **out, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	struct runtime_state st;
	if (instance_get(name, &inst, err) < 0)
		return -1;
	db_instance_clear(&inst);
	if (instance_runtime_state(name, &st, err) < 0)
		return -1;
	*out = state_json(name, &st);
	return 0;
}

int instance_to_json(const char *name, int recursion, json_t **out, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	struct runtime_state st;
	if (instance_get(name, &inst, err) < 0)
		return -1;
	if (instance_runtime_state(name, &st, err) < 0) {
		db_instance_clear(&inst);
		return -1;
	}
	json_t *obj = json_pack("{s:s,s:O,s:O,s:b,s:O,s:b,s:s,s:s,s:o,s:o,s:s,s:s,s:i,s:s,s:s,s:s,s:s}",
				"architecture", inst.architecture ? inst.architecture : "x86_64",
				"config", inst.config,
				"devices", inst.devices,
				"ephemeral", inst.ephemeral,
				"profiles", inst.profiles,
				"stateful", inst.stateful,
				"description", inst.description ? inst.description : "",
				"created_at", inst.created_at ? inst.created_at : "1970-01-01T00:00:00Z",
				"expanded_config", instance_expanded_config(&inst),
				"expanded_devices", instance_expanded_devices(&inst),
				"name", inst.name,
				"status", status_name(st.status),
				"status_code", status_code(st.status),
				"last_used_at", inst.last_used_at ? inst.last_used_at : "1970-01-01T00:00:00Z",
				"location", "none",
				"type", "container",
				"project", "default");
	if (recursion >= 2) {
		json_object_set_new(obj, "state", state_json(name, &st));
		json_t *snaps = snapshots_to_json(name);
		json_object_set_new(obj, "snapshots", json_array_size(snaps) > 0 ? snaps : json_null());
		if (json_array_size(snaps) == 0)
			json_decref(snaps);
		json_object_set_new(obj, "backups", json_null());
	}
	db_instance_clear(&inst);
	*out = obj;
	return 0;
}

/* ---- idmap and exec environment ---------------------------------------- */

int instance_idmap(const char *name, struct instance_idmap *map, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return -1;
	map->base = idmap_base_of(inst.config);
	map->range = INSTANCE_IDMAP_RANGE;
	db_instance_clear(&inst);
	return 0;
}

unsigned instance_idmap_to_host(const struct instance_idmap *map, unsigned id)
{
	return map->base == 0 ? id : map->base + id;
}

unsigned instance_idmap_from_host(const struct instance_idmap *map, unsigned host_id)
{
	if (map->base == 0)
		return host_id;
	if (host_id < map->base || host_id >= map->base + map->range)
		return 65534;
	return host_id - map->base;
}

static void env_set_default(json_t *env, const char *key, const char *value)
{
	if (json_object_get(env, key) == NULL)
		json_object_set_new(env, key, json_string(value));
}

char **instance_exec_environment(const char *name, json_t *request_env, uid_t uid, struct ferry_error **err)
{
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, err) < 0)
		return NULL;
	json_t *env = json_object();
	const char *key;
	json_t *v;
	if (json_is_object(request_env)) {
		json_object_foreach(request_env, key, v) {
			if (json_is_string(v))
				json_object_set(env, key, v);
		}
	}
	json_t *expanded_config = instance_expanded_config(&inst);
	json_object_foreach(expanded_config, key, v) {
		if (strncmp(key, "environment.", 12) == 0 && json_is_string(v))
			env_set_default(env, key + 12, json_string_value(v));
	}
	json_decref(expanded_config);
	/* LXD's defaults. */
	env_set_default(env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	if (uid == 0) {
		env_set_default(env, "HOME", "/root");
		env_set_default(env, "USER", "root");
	}
	env_set_default(env, "LANG", "C.UTF-8");
	db_instance_clear(&inst);

	char **out = xcalloc(json_object_size(env) + 1, sizeof(char *));
	size_t n = 0;
	json_object_foreach(env, key, v) {
		out[n++] = xasprintf("%s=%s", key, json_string_value(v));
	}
	json_decref(env);
	return out;
}

/* ---- start-up ---------------------------------------------------------- */

int instances_startup(struct ferry_error **err)
{
	json_t *names = NULL;
	/* Instances from before profiles existed list "default": it must exist. */
	if (profiles_ensure_default(err) < 0)
		return -1;
	instance_criu_check_start();
	if (db_instance_list(daemon_ctx->db, &names, err) < 0)
		return error_wrap(err, "list instances");
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		const char *name = json_string_value(n);
		struct db_instance inst = { 0 };
		struct runtime_state st;
		cleanup_error struct ferry_error *e = NULL;
		instance_lock(name);
		if (instance_get(name, &inst, &e) < 0 || instance_runtime_state(name, &st, &e) < 0) {
			log_error("start-up: %s", e->msg);
			goto next;
		}
		if (json_object_get(inst.config, INSTANCE_KEY_MIGRATING) != NULL) {
			log_warn("instance %s: removing the partial copy of a migration that did not finish", name);
			/* A live move's copy, restored but never committed by its source:
			 * its network first (no RSTs for the source's connections). */
			if (st.status != RUNTIME_STOPPED)
				instance_cut_host_veths(name);
			if (st.status != RUNTIME_STOPPED && instance_stop_forced(name, &e) < 0) {
				log_error("start-up: %s", e->msg);
				goto next;
			}
			if (instance_delete(name, &e) < 0)
				log_error("start-up: %s", e->msg);
			goto next;
		}
		const char *outgoing = json_string_value(json_object_get(inst.config, INSTANCE_KEY_OUTGOING));
		if (outgoing != NULL) {
			/* A live move away that ended with this ferryd. Before its
			 * commit CRIU gave the tasks back (still frozen by us); after
			 * it, the target runs them. The state here never holds the
			 * memory (it went to the target). */
			cleanup_free char *dir = instance_dir(name);
			cleanup_free char *state_dir = instance_state_dir(name);
			bool committed = strcmp(outgoing, "committed") == 0;
			if (st.status != RUNTIME_STOPPED && !committed) {
				log_warn("instance %s: a live move away did not finish: it runs here again", name);
				if (runtime_network_unlock(name, dir, &e) < 0)
					log_error("start-up: %s", e->msg);
				error_free(&e);
				if (st.status == RUNTIME_FROZEN && runtime_unfreeze(dir, &e) < 0)
					log_error("start-up: %s", e->msg);
			} else if (st.status != RUNTIME_STOPPED) {
				log_warn("instance %s: moved live to another host, which runs it: the copy here is stopped",
					 name);
				instance_cut_host_veths(name);
				if (instance_stop_forced(name, &e) < 0)
					log_error("start-up: %s", e->msg);
			} else {
				log_warn("instance %s: a live move away ended with this ferryd after the checkpoint: its "
					 "memory is not here; it stays stopped",
					 name);
			}
			error_free(&e);
			if (instance_runtime_state(name, &st, &e) == 0 && st.status == RUNTIME_STOPPED &&
			    (instance_discard_state(name, &e) < 0 || rm_rf(state_dir, &e) < 0))
				log_error("start-up: %s", e->msg);
			error_free(&e);
			if (instance_config_mark(name, INSTANCE_KEY_OUTGOING, NULL, &e) < 0)
				log_error("start-up: %s", e->msg);
			goto next;
		}
		const char *last = json_string_value(json_object_get(inst.config, "volatile.last_state.power"));
		bool was_running = last != NULL && strcmp(last, "RUNNING") == 0;
		if (st.status != RUNTIME_STOPPED) {
			log_info("instance %s: found running (monitor %d, init %d)", name, (int)st.monitor_pid,
				 (int)st.init_pid);
			if (!was_running)
				save_power_state(name, "RUNNING", &e);
			/* A checkpoint that ended with the last ferryd may have left
			 * its network lock on (runtime_checkpoint's own). */
			cleanup_free char *dir = instance_dir(name);
			cleanup_error struct ferry_error *ne = NULL;
			if (runtime_network_unlock(name, dir, &ne) < 0)
				log_error("start-up: %s", ne->msg);
			goto next;
		}
		/* As LXD: boot.autostart when set, else whatever ran before the host went down. */
		json_t *expanded_config = instance_expanded_config(&inst);
		const char *autostart = json_string_value(json_object_get(expanded_config, "boot.autostart"));
		bool start = autostart != NULL ? config_get_bool(expanded_config, "boot.autostart") : was_running;
		json_decref(expanded_config);
		if (start) {
			log_info("instance %s: autostart", name);
			if (instance_start(name, &e) < 0)
				log_error("start-up: %s", e->msg);
		} else if (was_running) {
			save_power_state(name, "STOPPED", &e);
		}
next:
		db_instance_clear(&inst);
		instance_unlock(name);
	}
	json_decref(names);
	return 0;
}

/* ---- operations -------------------------------------------------------- */

struct response *instance_operation_respond(bool websocket, const char *description, const char *name,
					    json_t *metadata, instance_op_run_fn run, instance_op_connect_fn connect,
					    void *data, void (*free_data)(void *data))
{
	struct operation *op = operation_new(websocket ? OPERATION_WEBSOCKET : OPERATION_TASK, description,
					     instance_resources(name), run, connect, data, free_data);
	if (metadata != NULL)
		operation_set_metadata(op, metadata);
	operation_start(op);
	struct response *resp = response_async(op);
	operation_unref(op);
	return resp;
}

char *instance_new_secret(void)
{
	unsigned char raw[32];
	char *hex = xcalloc(1, sizeof(raw) * 2 + 1);
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		abort();
	for (size_t i = 0; i < sizeof(raw); i++)
		sprintf(hex + 2 * i, "%02x", raw[i]);
	return hex;
}
