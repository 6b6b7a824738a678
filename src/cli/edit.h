/* What `config edit` and `profile edit` share: the YAML document in
 * $EDITOR (or read from stdin when it is not a terminal), read with the
 * shared common/yaml_json.c, its errors pointed at the line and key; and
 * the report of the changes that wait for an instance's next start. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "common/yaml_json.h"

/* Turn the edited text into the API's body, with the line of every key
 * (as yaml_edit_document does). */
typedef int (*edit_parse_fn)(const char *text, size_t len, json_t **body, json_t **lines, struct ferry_error **err);
/* Apply the body. Returns < 0 with *err on refusal. */
typedef int (*edit_apply_fn)(json_t *body, void *ctx, struct ferry_error **err);

/* yaml_edit_document for an instance and for a profile. */
int edit_parse_instance(const char *text, size_t len, json_t **body, json_t **lines, struct ferry_error **err);
int edit_parse_profile(const char *text, size_t len, json_t **body, json_t **lines, struct ferry_error **err);

/* Read the edited text (stdin when it is not a terminal, else the editor
 * on yaml, shown after intro, again after each refusal while the user
 * wants to retry), turn it into the API's body and apply it. A refusal of
 * the server that names a key of the document is reported with that
 * key's line ("line 7: devices.eth0.ipv4.address: ..."). Nothing is
 * applied when the YAML is invalid. */
int edit_document(const char *intro, const char *yaml, edit_parse_fn parse, edit_apply_fn apply, void *ctx,
		  struct ferry_error **err);

/* All of stdin (NUL-terminated). */
int edit_read_stdin(char **text, size_t *len, struct ferry_error **err);

/* Print the keys that apply only at the next start: for one instance
 * (keys a JSON array) or for several (an object INSTANCE -> array). */
void edit_print_next_start(const char *instance, const json_t *keys);
/* The same from an answer's metadata ({"applies_at_next_start": ...}). */
void edit_report_next_start(const char *instance, const json_t *metadata);
