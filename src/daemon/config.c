/* The declared table of configuration keys (instances, profiles, server),
 * and their validation. */
#include "daemon/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/util.h"

static const char *const migration_memory_choices[] = { "auto", "stop-and-copy", "post-copy", NULL };
static const char *const compression_choices[] = { "none", "gzip", "bzip2", "lzma", "xz", "zstd", NULL };

#define INSTANCE CONFIG_SCOPE_INSTANCE
#define SERVER CONFIG_SCOPE_SERVER

/* Every key ferry knows, with its type, default, and when a change takes
 * effect. Prefix entries come after the exact ones they could shadow.
 * "live" means a running instance sees the change at once: for limits.*
 * ferryd writes the cgroup files (instance.c, instance_apply_live); the
 * other live keys are read whenever they are used (boot.* at host start,
 * migration.* at a move, user.* never). */
static const struct config_key config_keys[] = {
	/* Instances and profiles */
	{ .name = "limits.memory", .type = CONFIG_BYTES, .live = true, .scope = INSTANCE },
	{ .name = "limits.cpu", .type = CONFIG_CPUSET, .live = true, .scope = INSTANCE },
	{ .name = "limits.processes", .type = CONFIG_INT, .live = true, .scope = INSTANCE },
	/* The rootfs is shifted on disk at creation: the mapping can't change later. */
	{ .name = "security.privileged", .type = CONFIG_BOOL, .default_value = "false", .scope = INSTANCE,
	  .create_only = true },
	{ .name = "boot.autostart", .type = CONFIG_BOOL, .live = true, .scope = INSTANCE },
	{ .name = "boot.autostart.delay", .type = CONFIG_INT, .default_value = "0", .live = true, .scope = INSTANCE },
	{ .name = "boot.autostart.priority", .type = CONFIG_INT, .default_value = "0", .live = true, .scope = INSTANCE },
	{ .name = "boot.host_shutdown_timeout", .type = CONFIG_INT, .default_value = "30", .live = true,
	  .scope = INSTANCE },
	{ .name = "migration.stateful", .type = CONFIG_BOOL, .default_value = "false", .live = true, .scope = INSTANCE },
	{ .name = "migration.memory", .type = CONFIG_CHOICE, .default_value = "auto", .live = true,
	  .choices = migration_memory_choices, .scope = INSTANCE },
	/* init's environment is fixed when it starts; exec reads them each time. */
	{ .name = "environment.", .prefix = true, .type = CONFIG_STRING, .scope = INSTANCE },
	{ .name = "user.", .prefix = true, .type = CONFIG_STRING, .live = true, .scope = INSTANCE },
	/* Copied from the image's properties at creation: informational. */
	{ .name = "image.", .prefix = true, .type = CONFIG_STRING, .live = true, .scope = INSTANCE },
	/* ferry's own bookkeeping: base image, MACs, addresses, idmap, last power state. */
	{ .name = "volatile.", .prefix = true, .type = CONFIG_STRING, .live = true, .ferry_owned = true,
	  .scope = INSTANCE },

	/* The server */
	{ .name = "core.https_address", .type = CONFIG_ADDRESS, .default_value = "", .live = true, .scope = SERVER },
	{ .name = "core.trust_password", .type = CONFIG_STRING, .live = true, .scope = SERVER },
	{ .name = "core.remote_token_expiry", .type = CONFIG_DURATION, .default_value = "", .live = true,
	  .scope = SERVER },
	{ .name = "images.auto_update_cached", .type = CONFIG_BOOL, .default_value = "true", .live = true,
	  .scope = SERVER },
	{ .name = "images.auto_update_interval", .type = CONFIG_INT, .default_value = "6", .live = true,
	  .scope = SERVER },
	{ .name = "images.compression_algorithm", .type = CONFIG_CHOICE, .default_value = "gzip", .live = true,
	  .choices = compression_choices, .scope = SERVER },
	{ .name = "images.default_architecture", .type = CONFIG_STRING, .live = true, .scope = SERVER },
	{ .name = "images.remote_cache_expiry", .type = CONFIG_INT, .default_value = "10", .live = true,
	  .scope = SERVER },
};

#undef INSTANCE
#undef SERVER

static const struct config_key *key_find_in_scope(const char *key, unsigned scope)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		const struct config_key *ck = &config_keys[i];
		if (!(ck->scope & scope))
			continue;
		if (ck->prefix) {
			size_t n = strlen(ck->name);
			if (strncmp(key, ck->name, n) == 0 && key[n] != '\0')
				return ck;
		} else if (strcmp(key, ck->name) == 0) {
			return ck;
		}
	}
	return NULL;
}

const struct config_key *config_key_find(const char *key)
{
	return key_find_in_scope(key, CONFIG_SCOPE_INSTANCE);
}

const struct config_key *config_server_key_find(const char *key)
{
	return key_find_in_scope(key, CONFIG_SCOPE_SERVER);
}

const struct config_key *config_keys_all(size_t *count)
{
	*count = sizeof(config_keys) / sizeof(config_keys[0]);
	return config_keys;
}

int config_parse_bool(const char *value, bool *out)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off", "" };
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(value, yes[i]) == 0) {
			*out = true;
			return 0;
		}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(value, no[i]) == 0) {
			*out = false;
			return 0;
		}
	return -1;
}

static int parse_uint(const char *value, long long *out)
{
	if (value[0] == '\0' || !isdigit((unsigned char)value[0]))
		return -1;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(value, &end, 10);
	if (errno != 0 || *end != '\0' || v < 0)
		return -1;
	*out = v;
	return 0;
}

int config_parse_bytes(const char *value, long long *bytes, struct ferry_error **err)
{
	static const struct { const char *suffix; long long mult; } units[] = {
		{ "EiB", 1LL << 60 }, { "PiB", 1LL << 50 }, { "TiB", 1LL << 40 }, { "GiB", 1LL << 30 },
		{ "MiB", 1LL << 20 }, { "KiB", 1LL << 10 },
		{ "EB", 1000000000000000000LL }, { "PB", 1000000000000000LL }, { "TB", 1000000000000LL },
		{ "GB", 1000000000LL }, { "MB", 1000000LL }, { "kB", 1000LL }, { "KB", 1000LL }, { "B", 1 },
	};
	size_t len = strlen(value);
	if (len > 1 && value[len - 1] == '%') {
		cleanup_free char *num = strndup(value, len - 1);
		long long pct;
		if (num == NULL || parse_uint(num, &pct) < 0 || pct == 0 || pct > 100)
			return error_bad_request(err, "Invalid percentage \"%s\"", value);
		long long total = (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
		*bytes = total / 100 * pct;
		return 0;
	}
	long long mult = 1;
	size_t numlen = len;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		size_t sl = strlen(units[i].suffix);
		if (len > sl && strcmp(value + len - sl, units[i].suffix) == 0) {
			mult = units[i].mult;
			numlen = len - sl;
			break;
		}
	}
	cleanup_free char *num = strndup(value, numlen);
	long long n;
	if (num == NULL || parse_uint(num, &n) < 0)
		return error_bad_request(err, "Invalid size \"%s\" (expected e.g. 256MiB, 1GB or 50%%)", value);
	if (n > LLONG_MAX / mult)
		return error_bad_request(err, "Size \"%s\" is too large", value);
	*bytes = n * mult;
	return 0;
}

static long online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

int config_parse_cpuset(const char *value, char **cpuset, struct ferry_error **err)
{
	long long count;
	long ncpu = online_cpus();
	if (parse_uint(value, &count) == 0) {
		if (count == 0)
			return error_bad_request(err, "Invalid CPU count \"%s\": must be at least 1", value);
		/* More CPUs than the host has: all of them, as LXD does. */
		if (count > ncpu)
			count = ncpu;
		*cpuset = count == 1 ? xstrdup("0") : xasprintf("0-%lld", count - 1);
		return 0;
	}
	/* A list of CPUs and ranges: "0-1", "0,2", "0-1,3". */
	cleanup_free char *copy = xstrdup(value);
	char *save = NULL;
	for (char *part = strtok_r(copy, ",", &save); part != NULL; part = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(part, '-');
		long long lo, hi;
		if (dash != NULL) {
			*dash = '\0';
			if (parse_uint(part, &lo) < 0 || parse_uint(dash + 1, &hi) < 0 || lo > hi)
				return error_bad_request(err, "Invalid CPU set \"%s\"", value);
		} else if (parse_uint(part, &lo) < 0) {
			return error_bad_request(err, "Invalid CPU set \"%s\"", value);
		} else {
			hi = lo;
		}
		if (hi >= ncpu)
			return error_bad_request(err, "Invalid CPU set \"%s\": this host has CPUs 0-%ld", value, ncpu - 1);
	}
	if (value[0] == '\0' || value[strlen(value) - 1] == ',')
		return error_bad_request(err, "Invalid CPU set \"%s\"", value);
	*cpuset = xstrdup(value);
	return 0;
}

/* "HOST", "HOST:PORT", "[IPV6]:PORT", ":PORT", "IPV6": what core.https_address takes. */
static bool valid_listen_address(const char *value)
{
	const char *port = NULL;
	cleanup_free char *host = NULL;
	struct in6_addr a6;
	if (value[0] == '[') {
		const char *close = strchr(value, ']');
		if (close == NULL)
			return false;
		host = strndup(value + 1, (size_t)(close - value - 1));
		if (host == NULL || inet_pton(AF_INET6, host, &a6) != 1)
			return false;
		if (close[1] == '\0')
			return true;
		if (close[1] != ':')
			return false;
		port = close + 2;
	} else if (strchr(value, ':') != strrchr(value, ':')) {
		return inet_pton(AF_INET6, value, &a6) == 1; /* a bare IPv6 address */
	} else {
		const char *colon = strchr(value, ':');
		host = colon ? strndup(value, (size_t)(colon - value)) : xstrdup(value);
		if (host == NULL)
			return false;
		for (const char *p = host; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
				return false;
		port = colon ? colon + 1 : NULL;
	}
	long long n;
	if (port != NULL && (parse_uint(port, &n) < 0 || n < 1 || n > 65535))
		return false;
	return true;
}

/* LXD's expiry durations: space-separated NUMBER+UNIT terms (S, M, H, d, w, m, y). */
static bool valid_duration(const char *value)
{
	cleanup_free char *copy = xstrdup(value);
	char *save = NULL;
	for (char *term = strtok_r(copy, " ", &save); term != NULL; term = strtok_r(NULL, " ", &save)) {
		size_t len = strlen(term);
		if (len < 2 || strchr("SMHdwmy", term[len - 1]) == NULL)
			return false;
		term[len - 1] = '\0';
		long long n;
		if (parse_uint(term, &n) < 0)
			return false;
	}
	return true;
}

int config_value_validate(const struct config_key *ck, const char *key, const char *value, struct ferry_error **err)
{
	bool b;
	long long n;
	cleanup_free char *cpuset = NULL;
	cleanup_error struct ferry_error *inner = NULL;

	switch (ck->type) {
	case CONFIG_STRING:
		return 0;
	case CONFIG_BOOL:
		if (config_parse_bool(value, &b) < 0)
			return error_bad_request(err, "Invalid value for \"%s\": \"%s\" is not a boolean", key, value);
		return 0;
	case CONFIG_INT:
		if (value[0] != '\0' && parse_uint(value, &n) < 0)
			return error_bad_request(err, "Invalid value for \"%s\": \"%s\" is not a non-negative integer",
						 key, value);
		return 0;
	case CONFIG_BYTES:
		if (value[0] != '\0' && config_parse_bytes(value, &n, &inner) < 0)
			return error_bad_request(err, "Invalid value for \"%s\": %s", key, inner->msg);
		return 0;
	case CONFIG_CPUSET:
		if (value[0] != '\0' && config_parse_cpuset(value, &cpuset, &inner) < 0)
			return error_bad_request(err, "Invalid value for \"%s\": %s", key, inner->msg);
		return 0;
	case CONFIG_CHOICE: {
		for (size_t i = 0; ck->choices[i] != NULL; i++)
			if (strcmp(value, ck->choices[i]) == 0)
				return 0;
		char expected[256] = "";
		for (size_t i = 0; ck->choices[i] != NULL; i++) {
			size_t used = strlen(expected);
			snprintf(expected + used, sizeof(expected) - used, "%s%s", i > 0 ? ", " : "", ck->choices[i]);
		}
		return error_bad_request(err, "Invalid value for \"%s\": \"%s\" (expected one of: %s)", key, value,
					 expected);
	}
	case CONFIG_ADDRESS:
		if (value[0] != '\0' && !valid_listen_address(value))
			return error_bad_request(err, "Invalid value for \"%s\": \"%s\" is not an address (expected "
						 "HOST, HOST:PORT, [IPV6]:PORT or :PORT)", key, value);
		return 0;
	case CONFIG_DURATION:
		if (!valid_duration(value))
			return error_bad_request(err, "Invalid value for \"%s\": \"%s\" is not a duration (expected "
						 "e.g. 30M, 1H, 2D 12H)", key, value);
		return 0;
	}
	return 0;
}

int config_validate_user(json_t *config, json_t *old_config, struct ferry_error **err)
{
	if (config == NULL || json_is_null(config))
		return 0;
	if (!json_is_object(config))
		return error_bad_request(err, "Invalid config: expected an object of strings");
	const char *key;
	json_t *v;
	json_object_foreach(config, key, v) {
		const struct config_key *ck = config_key_find(key);
		if (ck == NULL)
			return error_bad_request(err, "Unknown configuration key: %s", key);
		if (!json_is_string(v))
			return error_bad_request(err, "Invalid value for \"%s\": expected a string", key);
		const char *value = json_string_value(v);
		if (ck->ferry_owned) {
			const char *old = old_config ? json_string_value(json_object_get(old_config, key)) : NULL;
			if (old == NULL || strcmp(old, value) != 0)
				return error_bad_request(err, "Key \"%s\" is read-only (set by ferry)", key);
			continue;
		}
		if (config_value_validate(ck, key, value, err) < 0)
			return -1;
	}
	return 0;
}

int config_validate_server(json_t *config, struct ferry_error **err)
{
	if (config == NULL || json_is_null(config))
		return 0;
	if (!json_is_object(config))
		return error_bad_request(err, "Invalid config: expected an object of strings");
	const char *key;
	json_t *v;
	json_object_foreach(config, key, v) {
		const struct config_key *ck = config_server_key_find(key);
		if (ck == NULL)
			return error_bad_request(err, "Unknown configuration key: %s", key);
		/* null unsets a key in a PATCH. */
		if (json_is_null(v))
			continue;
		if (!json_is_string(v))
			return error_bad_request(err, "Invalid value for \"%s\": expected a string", key);
		if (config_value_validate(ck, key, json_string_value(v), err) < 0)
			return -1;
	}
	return 0;
}

const char *config_get(json_t *config, const char *key)
{
	const char *v = config ? json_string_value(json_object_get(config, key)) : NULL;
	if (v != NULL)
		return v;
	const struct config_key *ck = config_key_find(key);
	return ck && !ck->prefix ? ck->default_value : NULL;
}

bool config_get_bool(json_t *config, const char *key)
{
	const char *v = config_get(config, key);
	bool b = false;
	if (v != NULL && config_parse_bool(v, &b) < 0)
		return false;
	return b;
}

int config_parse_ipv4(const char *text, unsigned *addr_host_order)
{
	struct in_addr a;
	if (inet_pton(AF_INET, text, &a) != 1)
		return -1;
	*addr_host_order = ntohl(a.s_addr);
	return 0;
}

char *config_format_ipv4(unsigned addr_host_order)
{
	char buf[INET_ADDRSTRLEN];
	struct in_addr a = { .s_addr = htonl(addr_host_order) };
	inet_ntop(AF_INET, &a, buf, sizeof(buf));
	return xstrdup(buf);
}

int config_parse_cidr(const char *cidr, unsigned *addr_host_order, int *prefix, struct ferry_error **err)
{
	cleanup_free char *copy = xstrdup(cidr);
	char *slash = strchr(copy, '/');
	long long p = 32;
	if (slash != NULL) {
		*slash = '\0';
		if (parse_uint(slash + 1, &p) < 0 || p > 32)
			return error_bad_request(err, "Invalid CIDR address \"%s\"", cidr);
	}
	if (config_parse_ipv4(copy, addr_host_order) < 0)
		return error_bad_request(err, "Invalid IPv4 address \"%s\"", cidr);
	*prefix = (int)p;
	return 0;
}

static bool valid_hwaddr(const char *mac)
{
	if (strlen(mac) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2) {
			if (mac[i] != ':')
				return false;
		} else if (!isxdigit((unsigned char)mac[i])) {
			return false;
		}
	}
	return true;
}

static bool key_in(const char *key, const char *const *allowed)
{
	for (size_t i = 0; allowed[i] != NULL; i++)
		if (strcmp(key, allowed[i]) == 0)
			return true;
	return false;
}

static int validate_nic(const char *dev, json_t *d, const char *bridge, const char *bridge_cidr,
			struct ferry_error **err)
{
	const char *nictype = json_string_value(json_object_get(d, "nictype"));
	const char *network = json_string_value(json_object_get(d, "network"));
	const char *parent = json_string_value(json_object_get(d, "parent"));
	const char *hwaddr = json_string_value(json_object_get(d, "hwaddr"));
	const char *ipv4 = json_string_value(json_object_get(d, "ipv4.address"));
	const char *mtu = json_string_value(json_object_get(d, "mtu"));

	if (network != NULL) {
		if (nictype != NULL || parent != NULL)
			return error_bad_request(err, "Device \"%s\": \"network\" can't be combined with \"nictype\" or \"parent\"", dev);
		if (bridge != NULL && strcmp(network, bridge) != 0)
			return error_not_found(err, "Device \"%s\": network \"%s\" not found", dev, network);
	} else {
		if (nictype == NULL || strcmp(nictype, "bridged") != 0)
			return error_bad_request(err, "Device \"%s\": unsupported nictype \"%s\" (only \"bridged\")", dev,
						 nictype ? nictype : "");
		if (parent == NULL)
			return error_bad_request(err, "Device \"%s\": missing \"parent\" (the bridge)", dev);
		if (bridge != NULL && strcmp(parent, bridge) != 0)
			return error_bad_request(err, "Device \"%s\": parent \"%s\" is not ferry's bridge \"%s\"", dev,
						 parent, bridge);
	}
	if (hwaddr != NULL && !valid_hwaddr(hwaddr))
		return error_bad_request(err, "Device \"%s\": invalid hwaddr \"%s\"", dev, hwaddr);
	long long n;
	if (mtu != NULL && (parse_uint(mtu, &n) < 0 || n < 576 || n > 65535))
		return error_bad_request(err, "Device \"%s\": invalid mtu \"%s\"", dev, mtu);
	unsigned addr;
	if (ipv4 != NULL && config_parse_ipv4(ipv4, &addr) < 0)
		return error_bad_request(err, "Device \"%s\": invalid ipv4.address \"%s\" (not an IPv4 address)", dev,
					 ipv4);
	if (ipv4 != NULL && bridge_cidr != NULL) {
		unsigned gw;
		int prefix;
		if (config_parse_cidr(bridge_cidr, &gw, &prefix, err) < 0)
			return -1;
		unsigned mask = prefix == 0 ? 0 : ~0u << (32 - prefix);
		if ((addr & mask) != (gw & mask) || addr == (gw & mask) || addr == ((gw & mask) | ~mask) || addr == gw)
			return error_bad_request(err, "Device \"%s\": ipv4.address \"%s\" is not a free host address in %s",
						 dev, ipv4, bridge_cidr);
	}
	return 0;
}

static bool path_has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

static int validate_disk(const char *dev, json_t *d, struct ferry_error **err)
{
	const char *path = json_string_value(json_object_get(d, "path"));
	const char *source = json_string_value(json_object_get(d, "source"));
	const char *pool = json_string_value(json_object_get(d, "pool"));
	const char *readonly = json_string_value(json_object_get(d, "readonly"));
	bool b;

	if (path == NULL || path[0] != '/')
		return error_bad_request(err, "Device \"%s\": disk needs an absolute \"path\"", dev);
	if (strcmp(path, "/") == 0) {
		if (pool == NULL)
			return error_bad_request(err, "Device \"%s\": the root disk needs a \"pool\"", dev);
		if (source != NULL)
			return error_bad_request(err, "Device \"%s\": the root disk can't have a \"source\"", dev);
	} else {
		if (source == NULL || source[0] != '/')
			return error_bad_request(err, "Device \"%s\": disk needs an absolute \"source\" on the host", dev);
		if (path_has_dotdot(path))
			return error_bad_request(err, "Device \"%s\": invalid path \"%s\"", dev, path);
	}
	if (readonly != NULL && config_parse_bool(readonly, &b) < 0)
		return error_bad_request(err, "Device \"%s\": invalid readonly \"%s\"", dev, readonly);
	return 0;
}

static int validate_unix_char(const char *dev, json_t *d, struct ferry_error **err)
{
	const char *path = json_string_value(json_object_get(d, "path"));
	const char *source = json_string_value(json_object_get(d, "source"));
	static const char *const numeric[] = { "major", "minor", "uid", "gid", NULL };
	if (path == NULL && source == NULL)
		return error_bad_request(err, "Device \"%s\": unix-char needs \"source\" or \"path\"", dev);
	for (size_t i = 0; numeric[i] != NULL; i++) {
		const char *v = json_string_value(json_object_get(d, numeric[i]));
		long long n;
		if (v != NULL && parse_uint(v, &n) < 0)
			return error_bad_request(err, "Device \"%s\": invalid %s \"%s\"", dev, numeric[i], v);
	}
	/* A device number is both or neither: without them, source's are used. */
	if ((json_object_get(d, "major") == NULL) != (json_object_get(d, "minor") == NULL))
		return error_bad_request(err, "Device \"%s\": unix-char needs both \"major\" and \"minor\", or neither",
					 dev);
	if (path != NULL && (path[0] != '/' || path_has_dotdot(path)))
		return error_bad_request(err, "Device \"%s\": invalid path \"%s\"", dev, path);
	if (source != NULL && source[0] != '/')
		return error_bad_request(err, "Device \"%s\": source \"%s\" must be an absolute path on the host", dev,
					 source);
	const char *required = json_string_value(json_object_get(d, "required"));
	bool b;
	if (required != NULL && config_parse_bool(required, &b) < 0)
		return error_bad_request(err, "Device \"%s\": invalid required \"%s\"", dev, required);
	const char *mode = json_string_value(json_object_get(d, "mode"));
	if (mode != NULL && (strspn(mode, "01234567") != strlen(mode) || strlen(mode) > 4 || mode[0] == '\0'))
		return error_bad_request(err, "Device \"%s\": invalid mode \"%s\"", dev, mode);
	return 0;
}

int config_validate_devices(json_t *devices, const char *bridge, const char *bridge_cidr, struct ferry_error **err)
{
	static const char *const nic_keys[] = { "type", "nictype", "network", "parent", "name", "hwaddr",
						"ipv4.address", "mtu", "host_name", NULL };
	static const char *const disk_keys[] = { "type", "path", "source", "pool", "readonly", "size", NULL };
	static const char *const unix_char_keys[] = { "type", "path", "source", "major", "minor", "uid", "gid",
						      "mode", "required", NULL };
	static const char *const none_keys[] = { "type", NULL };

	if (devices == NULL || json_is_null(devices))
		return 0;
	if (!json_is_object(devices))
		return error_bad_request(err, "Invalid devices: expected an object");
	const char *dev;
	json_t *d;
	json_object_foreach(devices, dev, d) {
		if (dev[0] == '\0' || strchr(dev, '/') != NULL)
			return error_bad_request(err, "Invalid device name \"%s\"", dev);
		if (!json_is_object(d))
			return error_bad_request(err, "Device \"%s\": expected an object of strings", dev);
		const char *key;
		json_t *v;
		json_object_foreach(d, key, v) {
			if (!json_is_string(v))
				return error_bad_request(err, "Device \"%s\": value of \"%s\" must be a string", dev, key);
		}
		const char *type = json_string_value(json_object_get(d, "type"));
		if (type == NULL)
			return error_bad_request(err, "Device \"%s\": missing \"type\"", dev);
		const char *const *allowed;
		if (strcmp(type, "nic") == 0)
			allowed = nic_keys;
		else if (strcmp(type, "disk") == 0)
			allowed = disk_keys;
		else if (strcmp(type, "unix-char") == 0)
			allowed = unix_char_keys;
		else if (strcmp(type, "none") == 0)
			allowed = none_keys;
		else
			return error_bad_request(err, "Device \"%s\": unsupported device type \"%s\"", dev, type);
		json_object_foreach(d, key, v) {
			if (!key_in(key, allowed))
				return error_bad_request(err, "Device \"%s\": unknown %s device key \"%s\"", dev, type, key);
		}
		int r = 0;
		if (strcmp(type, "nic") == 0)
			r = validate_nic(dev, d, bridge, bridge_cidr, err);
		else if (strcmp(type, "disk") == 0)
			r = validate_disk(dev, d, err);
		else if (strcmp(type, "unix-char") == 0)
			r = validate_unix_char(dev, d, err);
		if (r < 0)
			return -1;
	}
	return 0;
}
