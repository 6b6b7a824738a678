/* The declared table of instance configuration keys and device types, and
 * their validation. Validation runs before anything changes: a request with
 * one bad key changes nothing. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

enum config_type {
	CONFIG_STRING,
	CONFIG_BOOL,
	CONFIG_INT,     /* non-negative integer */
	CONFIG_BYTES,   /* "256MiB", "1GB", "50%" (of the host's memory) */
	CONFIG_CPUSET,  /* "2" (a count) or "0-1" / "0,2" */
	CONFIG_CHOICE,  /* one of choices */
	CONFIG_ADDRESS, /* "[host]:port", "host:port", "host" or ":port" (a listen address) */
	CONFIG_DURATION,/* "", "30M", "1H", "2D 12H": LXD's token expiry */
};

/* Where a key may be set. */
enum config_scope {
	CONFIG_SCOPE_INSTANCE = 1 << 0, /* an instance's or a profile's config */
	CONFIG_SCOPE_SERVER = 1 << 1,   /* /1.0's config */
};

struct config_key {
	const char *name;      /* exact key, or a prefix ending in '.' when prefix is true */
	bool prefix;           /* "environment.", "user.": any key below it */
	enum config_type type;
	const char *default_value; /* NULL: no default */
	bool live;             /* applies to a running instance at once; else at next start */
	bool ferry_owned;      /* set by ferry only (volatile.*, image.*) */
	const char *const *choices; /* CONFIG_CHOICE: NULL-terminated */
	unsigned scope;        /* enum config_scope bits */
	bool create_only;      /* can't change once the instance exists (security.privileged) */
};

/* The entry describing an instance (or profile) key, or NULL when unknown. */
const struct config_key *config_key_find(const char *key);
/* The entry describing a server key (core.*, images.*), or NULL. */
const struct config_key *config_server_key_find(const char *key);
/* Every declared key of a scope, for listing: the table's entries in order
 * (*count set). */
const struct config_key *config_keys_all(size_t *count);

/* Validate server config a user sends (PUT/PATCH /1.0): every key known and
 * of its type. 400 "Unknown configuration key: K" / "Invalid value for ...". */
int config_validate_server(json_t *config, struct ferry_error **err);

/* Check one value against its key's type. */
int config_value_validate(const struct config_key *ck, const char *key, const char *value, struct ferry_error **err);

/* Validate a config object a user sends (POST, PUT, PATCH): every key known,
 * every value a string of the right type. old_config (may be NULL) holds the
 * instance's current config: ferry-owned keys may only repeat their current
 * value. 400 with the key (and value) named. */
int config_validate_user(json_t *config, json_t *old_config, struct ferry_error **err);

/* Validate devices: {"name": {"type": "nic"|"disk"|"unix-char"|"none", ...}}.
 * bridge: the daemon's bridge name (nic network=/parent= must name it);
 * bridge_cidr: its gateway/prefix, to check ipv4.address lies inside. */
int config_validate_devices(json_t *devices, const char *bridge, const char *bridge_cidr,
			    struct ferry_error **err);

/* The value of key in config, else its declared default, else NULL. */
const char *config_get(json_t *config, const char *key);
bool config_get_bool(json_t *config, const char *key);

/* "256MiB", "1GB", "1048576", "50%" -> bytes. */
int config_parse_bytes(const char *value, long long *bytes, struct ferry_error **err);
/* "true"/"1"/"yes"/"on" and "false"/"0"/"no"/"off" (case-insensitive). */
int config_parse_bool(const char *value, bool *out);
/* "2" -> "0-1"; "0-1" / "0,2" -> as given (checked against the online CPUs). */
int config_parse_cpuset(const char *value, char **cpuset, struct ferry_error **err);

/* IPv4 helpers for the nic checks and address management. */
int config_parse_cidr(const char *cidr, unsigned *addr_host_order, int *prefix, struct ferry_error **err);
int config_parse_ipv4(const char *text, unsigned *addr_host_order);
char *config_format_ipv4(unsigned addr_host_order);
