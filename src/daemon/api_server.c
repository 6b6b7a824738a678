/* /, /1.0 (the server and its config), and the read-only views clients
 * look up before they act: the bridge (/1.0/networks) and the storage pool
 * (/1.0/storage-pools). Networks and pools become resources of their own in
 * later issues; profiles live in api_profiles.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/db.h"
#include "daemon/db_networks.h"
#include "daemon/request.h"
#include "daemon/server.h"
#include "daemon/tls.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.0.0"
#endif

/* The LXD API extensions ferryd implements. The lxc client checks some
 * before it uses a feature, and picks newer endpoints by them: "instances"
 * (/1.0/instances rather than /1.0/containers), "container_full" (lxc list
 * with recursion=2), "instance_get_full" (lxc info with recursion=1: the
 * instance with its state, snapshots and backups), "api_filtering" (lxc
 * list always asks with ?filter=, empty without key=value filters). Add one
 * only with the feature. */
static const char *const api_extensions[] = {
	"etag",
	"patch",
	"container_last_used_at",
	"network",
	"profile_usedby",
	"container_exec_recording",
	"container_exec_signal_handling",
	"storage",
	"image_create_aliases",
	"entity_description",
	"console",
	"operation_description",
	"event_lifecycle",
	"id_map",
	"container_full",
	"container_exec_user_group_cwd",
	"instances",
	"image_types",
	"images_expiry",
	"image_profiles",
	"event_location",
	"api_os",
	"server_supported_storage_drivers",
	"event_project",
	"api_filtering",
	"instance_get_full",
	/* remotes (api_certificates.c): PUT /1.0/certificates/FP, tokens,
	 * and the restricted/projects fields of a certificate */
	"certificate_update",
	"certificate_token",
	"certificate_project",
	/* stateful snapshots move and copy between hosts with their state */
	"container_snapshot_stateful_migration",
};

/* Server config keys accepted now (image refresh reads its keys in a later
 * issue). */
static const char *const server_config_keys[] = {
	"core.https_address",
	"core.remote_token_expiry",
	"core.trust_password",
	"images.auto_update_cached",
	"images.auto_update_interval",
	"images.compression_algorithm",
	"images.default_architecture",
	"images.remote_cache_expiry",
};

static bool server_config_key_known(const char *key)
{
	for (size_t i = 0; i < sizeof(server_config_keys) / sizeof(server_config_keys[0]); i++)
		if (strcmp(server_config_keys[i], key) == 0)
			return true;
	return false;
}

static struct response *root_get(struct request *req)
{
	return response_sync(json_pack("[s]", "/1.0"));
}

/* "KEY=value" of /etc/os-release, unquoted. */
static char *os_release(const char *key)
{
	cleanup_free char *text = NULL;
	if (file_read("/etc/os-release", &text, NULL, NULL) < 0)
		return xstrdup("");
	size_t klen = strlen(key);
	for (char *line = text; line != NULL && *line != '\0';) {
		char *next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
			char *v = line + klen + 1;
			size_t n = strlen(v);
			if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
				v[n - 1] = '\0';
				v++;
			}
			return xstrdup(v);
		}
		line = next;
	}
	return xstrdup("");
}

/* The config as GET /1.0 shows it: the trust password only as "set". */
static json_t *server_config_public(json_t *config)
{
	if (json_object_get(config, "core.trust_password") != NULL)
		json_object_set_new(config, "core.trust_password", json_true());
	return config;
}

/* CRIU on this host (checkpoint_check, cached): defined with the instances
 * (instance.c), which the unit tests that link this file don't have. */
json_t *instance_criu_environment(void) __attribute__((weak));

static struct response *server_get(struct request *req)
{
	json_t *extensions = json_array();
	for (size_t i = 0; i < sizeof(api_extensions) / sizeof(api_extensions[0]); i++)
		json_array_append_new(extensions, json_string(api_extensions[i]));
	/* An untrusted client learns what it needs to authenticate, no more
	 * (LXD's api.ServerUntrusted). */
	if (!req->trusted)
		return response_sync(json_pack("{s:o, s:s, s:s, s:s, s:b, s:[s]}", "api_extensions", extensions,
					       "api_status", "stable", "api_version", "1.0", "auth", "untrusted",
					       "public", 0, "auth_methods", "tls"));
	cleanup_error struct ferry_error *err = NULL;
	json_t *config = NULL;
	if (db_config_get_all(daemon_ctx->db, &config, &err) < 0) {
		json_decref(extensions);
		return response_from_error(err);
	}
	struct utsname uts;
	uname(&uts);
	cleanup_free char *os_name = os_release("NAME");
	cleanup_free char *os_version = os_release("VERSION_ID");
	json_t *environment = json_pack(
		"{s:o, s:[s,s], s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:i, s:s,"
		" s:s, s:s, s:[{s:s, s:s, s:b}]}",
		"addresses", server_https_addresses(), "architectures", "x86_64", "i686", "certificate",
		tls_server_certificate_pem(), "certificate_fingerprint", tls_server_fingerprint(),
		"driver", "ferry", "driver_version", FERRY_VERSION, "firewall", "nftables", "kernel", uts.sysname,
		"kernel_architecture", uts.machine, "kernel_version", uts.release, "os_name", os_name, "os_version",
		os_version, "project", "default", "server", "ferry", "server_name", daemon_ctx->server_name,
		"server_clustered", 0, "server_event_mode", "full-mesh", "server_pid", (int)getpid(),
		"server_version", FERRY_VERSION, "storage", "dir", "storage_version", "1",
		"storage_supported_drivers", "Name", "dir", "Version", "1", "Remote", 0);
	json_t *criu = instance_criu_environment ? instance_criu_environment() : NULL;
	if (criu != NULL)
		json_object_set_new(environment, "criu", criu);
	json_t *server = json_pack("{s:o, s:o, s:s, s:s, s:s, s:b, s:[s], s:o}", "config",
				   server_config_public(config), "api_extensions", extensions, "api_status", "stable",
				   "api_version", "1.0", "auth", "trusted", "public", 0, "auth_methods", "tls",
				   "environment", environment);
	return response_sync(server);
}

/* A config value as stored: strings as they are, numbers and booleans as
 * text; NULL (with keep) for the trust password shown back as true. */
static int server_config_value(const char *key, json_t *value, char **out, bool *keep, struct ferry_error **err)
{
	*out = NULL;
	*keep = false;
	if (strcmp(key, "core.trust_password") == 0 && json_is_true(value)) {
		*keep = true;
		return 0;
	}
	if (json_is_string(value))
		*out = xstrdup(json_string_value(value));
	else if (json_is_integer(value))
		*out = xasprintf("%lld", (long long)json_integer_value(value));
	else if (json_is_boolean(value))
		*out = xstrdup(json_is_true(value) ? "true" : "false");
	else if (!json_is_null(value))
		return error_bad_request(err, "Invalid value for \"%s\": expected a string", key);
	time_t at;
	if (*out != NULL && **out != '\0' && strcmp(key, "core.remote_token_expiry") == 0 &&
	    trust_token_expiry(*out, time(NULL), &at, err) < 0) {
		free(*out);
		*out = NULL;
		return error_wrap(err, "Invalid value for \"%s\"", key);
	}
	return 0;
}

/* Open, move or close the HTTPS listener when core.https_address changes.
 * Done before the config is written: an address that can't be served
 * (invalid, port in use) is refused with the reason and changes nothing. */
static int https_address_apply(json_t *config, json_t *current, bool replace, struct ferry_error **err)
{
	json_t *value = json_object_get(config, "core.https_address");
	if (value == NULL && !replace)
		return 0;
	cleanup_free char *next = NULL;
	bool keep;
	if (value != NULL && server_config_value("core.https_address", value, &next, &keep, err) < 0)
		return -1;
	const char *now = json_string_value(json_object_get(current, "core.https_address"));
	if (strcmp(now ? now : "", next ? next : "") == 0)
		return 0;
	return server_https_set(next, err);
}

/* PUT replaces the whole config (keys left out are unset), PATCH only the given keys. */
static struct response *server_config_update(struct request *req, bool replace)
{
	json_t *config = json_object_get(req->body, "config");
	if (req->body == NULL || !json_is_object(req->body) || (config != NULL && !json_is_object(config)))
		return response_error(400, "Expected a JSON object with a \"config\" object");
	cleanup_error struct ferry_error *err = NULL;
	json_t *current = NULL;
	if (db_config_get_all(daemon_ctx->db, &current, &err) < 0)
		return response_from_error(err);

	/* Check everything first: a bad key changes nothing. */
	const char *key;
	json_t *value;
	json_object_foreach(config, key, value) {
		if (!server_config_key_known(key)) {
			json_decref(current);
			return response_error(400, "Unknown configuration key: %s", key);
		}
		cleanup_free char *v = NULL;
		bool keep;
		if (server_config_value(key, value, &v, &keep, &err) < 0) {
			json_decref(current);
			return response_from_error(err);
		}
	}
	if (https_address_apply(config, current, replace, &err) < 0) {
		json_decref(current);
		return response_from_error(err);
	}
	if (replace) {
		json_object_foreach(current, key, value) {
			if (json_object_get(config, key) == NULL && db_config_set(daemon_ctx->db, key, NULL, &err) < 0)
				goto failed;
		}
	}
	json_object_foreach(config, key, value) {
		cleanup_free char *v = NULL;
		bool keep;
		server_config_value(key, value, &v, &keep, NULL);
		if (keep)
			continue;
		if (v != NULL && *v != '\0' && strcmp(key, "core.trust_password") == 0) {
			char *hash = trust_password_hash(v);
			free(v);
			v = hash;
		}
		if (db_config_set(daemon_ctx->db, key, v != NULL && *v != '\0' ? v : NULL, &err) < 0)
			goto failed;
		log_info("server config %s %s", key, v != NULL && *v != '\0' ? "set" : "unset");
	}
	json_decref(current);
	return response_sync(NULL);
failed:
	json_decref(current);
	return response_from_error(err);
}

static struct response *server_put(struct request *req)
{
	return server_config_update(req, true);
}

static struct response *server_patch(struct request *req)
{
	return server_config_update(req, false);
}

/* Instances that use the bridge or the default profile, as URLs. */
static json_t *instances_using(const char *profile, const char *network)
{
	json_t *used_by = json_array();
	json_t *names = NULL;
	if (db_instance_list(daemon_ctx->db, &names, NULL) < 0)
		return used_by;
	size_t i;
	json_t *name;
	json_array_foreach(names, i, name) {
		struct db_instance inst = { 0 };
		if (db_instance_get(daemon_ctx->db, json_string_value(name), &inst, NULL) < 0)
			continue;
		bool uses = false;
		size_t j;
		json_t *p;
		json_array_foreach(inst.profiles, j, p)
			if (profile != NULL && json_is_string(p) && strcmp(json_string_value(p), profile) == 0)
				uses = true;
		const char *dev_name;
		json_t *dev;
		json_object_foreach(inst.devices, dev_name, dev) {
			const char *net = json_string_value(json_object_get(dev, "network"));
			const char *parent = json_string_value(json_object_get(dev, "parent"));
			if (network != NULL && ((net && strcmp(net, network) == 0) || (parent && strcmp(parent, network) == 0)))
				uses = true;
		}
		if (uses)
			json_array_append_new(used_by, json_sprintf("/1.0/instances/%s", inst.name));
		db_instance_clear(&inst);
	}
	json_decref(names);
	return used_by;
}

static json_t *network_json(void)
{
	json_t *config = NULL;
	if (db_network_get(daemon_ctx->db, daemon_ctx->bridge, &config, NULL) < 0)
		config = json_pack("{s:s, s:s}", "ipv4.address", daemon_ctx->bridge_cidr ? daemon_ctx->bridge_cidr : "",
				   "ipv4.nat", daemon_ctx->nat ? "true" : "false");
	if (json_object_get(config, "ipv6.address") == NULL)
		json_object_set_new(config, "ipv6.address", json_string("none"));
	/* The default profile puts every instance on the bridge. */
	json_t *used_by = instances_using("default", daemon_ctx->bridge);
	json_array_append_new(used_by, json_string("/1.0/profiles/default"));
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:o, s:[s]}", "name", daemon_ctx->bridge, "description", "",
			 "type", "bridge", "managed", 1, "status", "Created", "config", config, "used_by", used_by,
			 "locations", "none");
}

static struct response *networks_get(struct request *req)
{
	if (request_recursion(req) > 0)
		return response_sync(json_pack("[o]", network_json()));
	return response_sync(json_pack("[o]", json_sprintf("/1.0/networks/%s", daemon_ctx->bridge)));
}

static struct response *network_get(struct request *req)
{
	if (strcmp(req->params[0], daemon_ctx->bridge) != 0)
		return response_error(404, "Network not found");
	return response_sync(network_json());
}

/* The instances' directories are the one storage pool, "default" (dir). */
static json_t *storage_pool_default_json(void)
{
	json_t *used_by = instances_using("default", NULL);
	json_array_append_new(used_by, json_string("/1.0/profiles/default"));
	return json_pack("{s:s, s:s, s:s, s:{s:s}, s:o, s:s, s:[s]}", "name", "default", "description", "", "driver",
			 "dir", "config", "source", daemon_ctx->containers_dir, "used_by", used_by, "status",
			 "Created", "locations", "none");
}

static struct response *storage_pools_get(struct request *req)
{
	if (request_recursion(req) > 0)
		return response_sync(json_pack("[o]", storage_pool_default_json()));
	return response_sync(json_pack("[s]", "/1.0/storage-pools/default"));
}

static struct response *storage_pool_get(struct request *req)
{
	if (strcmp(req->params[0], "default") != 0)
		return response_error(404, "Storage pool not found");
	return response_sync(storage_pool_default_json());
}

const struct route api_server_routes[] = {
	{ "GET", "/", root_get, true },
	{ "GET", "/1.0", server_get, true },
	{ "PUT", "/1.0", server_put },
	{ "PATCH", "/1.0", server_patch },
	{ "GET", "/1.0/networks", networks_get },
	{ "GET", "/1.0/networks/{name}", network_get },
	{ "GET", "/1.0/storage-pools", storage_pools_get },
	{ "GET", "/1.0/storage-pools/{name}", storage_pool_get },
	{ NULL },
};
