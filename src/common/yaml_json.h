/* YAML <-> JSON for the documents users edit: what `lxc config edit` and
 * `lxc profile edit` show in $EDITOR or read on stdin, and what
 * `show` prints. Pure functions: text in, JSON out (and back), with the
 * line of every key so that errors can point at it.
 *
 * Scalars are read as LXD's client reads them (Go's yaml into typed
 * fields): a string field takes the scalar's text as written ("2", "yes",
 * "1.5"), a boolean field takes true/false (and YAML 1.1's yes/no/on/off). */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

/* Parse one YAML document into JSON: mappings to objects, sequences to
 * arrays, plain scalars that YAML resolves as null, booleans or integers to
 * those, every other scalar to a string. *lines (may be NULL) gets the line
 * (1-based) of every mapping key by dotted path from the top: {"config":
 * 2, "config.limits.memory": 3, "devices.eth0.ipv4.address": 7}.
 * Errors: 400 "line N: ...". Empty text is an empty object. */
int yaml_to_json(const char *text, size_t len, json_t **out, json_t **lines, struct ferry_error **err);

enum yaml_edit_kind {
	YAML_EDIT_INSTANCE, /* config, devices, profiles, description, ephemeral, stateful, architecture */
	YAML_EDIT_PROFILE,  /* config, devices, description */
};

/* An edited instance or profile as the API takes it (the body of PUT
 * /1.0/instances/NAME or /1.0/profiles/NAME): config a map of strings,
 * devices a map of maps of strings, profiles a list of strings,
 * description a string, ephemeral/stateful booleans. Fields that `show`
 * prints but no one can change (name, used_by, expanded_*, status,
 * created_at, ...) are dropped; any other field is refused. Errors: 400
 * "line N: KEY: what is wrong", e.g. "line 4: devices.eth0: expected a
 * map of strings". *lines as for yaml_to_json (may be NULL). */
int yaml_edit_document(const char *text, size_t len, enum yaml_edit_kind kind, json_t **out, json_t **lines,
		       struct ferry_error **err);

/* JSON to block-style YAML, keys sorted (the order Go's yaml prints LXD's
 * structs and maps in), strings quoted where YAML would read them back as
 * something else ("2", "true", ""). Empty objects and arrays print as {}
 * and []. Returns malloc'd text ending in a newline. */
char *json_to_yaml(json_t *value);

/* The server's answer to an edited document, pointed at the line of the
 * key it names: with lines from yaml_edit_document and a message such as
 * 'update profile "p": Device "eth0": invalid ipv4.address "x"', returns
 * "line 7: devices.eth0.ipv4.address: update profile ...". The key chosen
 * is the deepest one of lines whose every part (after config./devices.)
 * the message names. NULL when it names none. malloc'd. */
char *yaml_edit_locate_error(json_t *lines, const char *message);
