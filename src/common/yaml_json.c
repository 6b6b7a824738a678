/* YAML <-> JSON: see yaml_json.h. Reading goes through libyaml's document
 * loader, which keeps every node's text, style and line; writing through
 * its emitter. */
#include "common/yaml_json.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "common/util.h"

/* ---- reading ----------------------------------------------------------- */

static void document_deletep(yaml_document_t **doc)
{
	if (*doc != NULL)
		yaml_document_delete(*doc);
}

/* One parsed document: libyaml's nodes with the source text's lines. */
struct yaml_doc {
	yaml_document_t doc;
	yaml_node_t *root; /* NULL: empty document */
};

static int yaml_doc_load(const char *text, size_t len, struct yaml_doc *out, struct ferry_error **err)
{
	yaml_parser_t parser;
	if (!yaml_parser_initialize(&parser))
		return error_set(err, 500, ENOMEM, "YAML parser: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	int ret = 0;
	if (!yaml_parser_load(&parser, &out->doc)) {
		ret = error_bad_request(err, "line %zu: invalid YAML: %s%s%s", parser.problem_mark.line + 1,
					parser.problem ? parser.problem : "syntax error",
					parser.context ? " " : "", parser.context ? parser.context : "");
	} else {
		out->root = yaml_document_get_root_node(&out->doc);
	}
	yaml_parser_delete(&parser);
	return ret;
}

static const char *scalar_text(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

static bool is_plain(const yaml_node_t *node)
{
	return node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static size_t node_line(const yaml_node_t *node)
{
	return node->start_mark.line + 1;
}

static bool word_in(const char *s, const char *const *words)
{
	for (size_t i = 0; words[i] != NULL; i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	return false;
}

static const char *const null_words[] = { "", "~", "null", "Null", "NULL", NULL };
static const char *const true_words[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON",
					  "y", "Y", NULL };
static const char *const false_words[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off",
					   "OFF", "n", "N", NULL };

static bool looks_like_integer(const char *s)
{
	const char *p = s;
	if (*p == '-' || *p == '+')
		p++;
	if (*p == '\0')
		return false;
	return strspn(p, "0123456789") == strlen(p);
}

static bool looks_like_number(const char *s)
{
	if (looks_like_integer(s))
		return true;
	char *end = NULL;
	strtod(s, &end);
	return end != s && *end == '\0' && !isspace((unsigned char)s[0]);
}

/* A plain scalar as YAML 1.1 resolves it: null, boolean, integer or string. */
static json_t *resolve_scalar(const yaml_node_t *node)
{
	const char *s = scalar_text(node);
	if (!is_plain(node))
		return json_string(s);
	if (word_in(s, null_words))
		return json_null();
	if (word_in(s, true_words))
		return json_true();
	if (word_in(s, false_words))
		return json_false();
	if (looks_like_integer(s)) {
		errno = 0;
		long long v = strtoll(s, NULL, 10);
		if (errno == 0)
			return json_integer(v);
	}
	return json_string(s);
}

static char *path_join(const char *path, const char *key)
{
	return path[0] == '\0' ? xstrdup(key) : xasprintf("%s.%s", path, key);
}

/* Mapping keys must be scalars, once each. */
static int check_key(yaml_document_t *doc, yaml_node_pair_t *pair, yaml_node_pair_t *first, const char *path,
		     struct ferry_error **err)
{
	yaml_node_t *key = yaml_document_get_node(doc, pair->key);
	if (key == NULL || key->type != YAML_SCALAR_NODE)
		return error_bad_request(err, "line %zu: %s%skeys must be plain names", key ? node_line(key) : 0,
					 path, path[0] ? ": " : "");
	for (yaml_node_pair_t *p = first; p < pair; p++) {
		yaml_node_t *other = yaml_document_get_node(doc, p->key);
		if (other != NULL && other->type == YAML_SCALAR_NODE && strcmp(scalar_text(other), scalar_text(key)) == 0) {
			cleanup_free char *full = path_join(path, scalar_text(key));
			return error_bad_request(err, "line %zu: %s: duplicate key (first on line %zu)", node_line(key),
						 full, node_line(other));
		}
	}
	return 0;
}

static int node_to_json(yaml_document_t *doc, yaml_node_t *node, const char *path, json_t *lines, int depth,
			json_t **out, struct ferry_error **err)
{
	if (depth > 64)
		return error_bad_request(err, "line %zu: %s: nested too deeply", node_line(node), path);
	switch (node->type) {
	case YAML_SCALAR_NODE:
		*out = resolve_scalar(node);
		return 0;
	case YAML_SEQUENCE_NODE: {
		json_t *array = json_array();
		for (yaml_node_item_t *item = node->data.sequence.items.start; item < node->data.sequence.items.top;
		     item++) {
			json_t *value = NULL;
			cleanup_free char *sub = xasprintf("%s[%zu]", path,
							   (size_t)(item - node->data.sequence.items.start));
			if (node_to_json(doc, yaml_document_get_node(doc, *item), sub, lines, depth + 1, &value, err) < 0) {
				json_decref(array);
				return -1;
			}
			json_array_append_new(array, value);
		}
		*out = array;
		return 0;
	}
	case YAML_MAPPING_NODE: {
		json_t *object = json_object();
		yaml_node_pair_t *first = node->data.mapping.pairs.start;
		for (yaml_node_pair_t *pair = first; pair < node->data.mapping.pairs.top; pair++) {
			if (check_key(doc, pair, first, path, err) < 0) {
				json_decref(object);
				return -1;
			}
			yaml_node_t *key = yaml_document_get_node(doc, pair->key);
			cleanup_free char *sub = path_join(path, scalar_text(key));
			if (lines != NULL)
				json_object_set_new(lines, sub, json_integer((json_int_t)node_line(key)));
			json_t *value = NULL;
			if (node_to_json(doc, yaml_document_get_node(doc, pair->value), sub, lines, depth + 1, &value,
					 err) < 0) {
				json_decref(object);
				return -1;
			}
			json_object_set_new(object, scalar_text(key), value);
		}
		*out = object;
		return 0;
	}
	default:
		return error_bad_request(err, "line %zu: %s: unsupported YAML node", node_line(node), path);
	}
}

int yaml_to_json(const char *text, size_t len, json_t **out, json_t **lines, struct ferry_error **err)
{
	struct yaml_doc parsed = { 0 };
	if (yaml_doc_load(text, len, &parsed, err) < 0)
		return -1;
	__attribute__((cleanup(document_deletep))) yaml_document_t *doc = &parsed.doc;
	json_t *line_map = lines != NULL ? json_object() : NULL;
	json_t *value = NULL;
	if (parsed.root == NULL) {
		value = json_object();
	} else if (node_to_json(doc, parsed.root, "", line_map, 0, &value, err) < 0) {
		json_decref(line_map);
		return -1;
	}
	*out = value;
	if (lines != NULL)
		*lines = line_map;
	return 0;
}

/* ---- the edit documents ------------------------------------------------ */

/* A string field: the scalar's text as written (null: ""). */
static int read_string(yaml_node_t *node, const char *path, json_t **out, struct ferry_error **err)
{
	if (node->type != YAML_SCALAR_NODE)
		return error_bad_request(err, "line %zu: %s: expected a string, not a %s", node_line(node), path,
					 node->type == YAML_MAPPING_NODE ? "map" : "list");
	const char *s = scalar_text(node);
	*out = json_string(is_plain(node) && word_in(s, null_words) ? "" : s);
	return 0;
}

static int read_bool(yaml_node_t *node, const char *path, json_t **out, struct ferry_error **err)
{
	if (node->type == YAML_SCALAR_NODE && is_plain(node)) {
		if (word_in(scalar_text(node), true_words)) {
			*out = json_true();
			return 0;
		}
		if (word_in(scalar_text(node), false_words) || word_in(scalar_text(node), null_words)) {
			*out = json_false();
			return 0;
		}
	}
	return error_bad_request(err, "line %zu: %s: expected true or false", node_line(node), path);
}

static bool is_null_node(yaml_node_t *node)
{
	return node->type == YAML_SCALAR_NODE && is_plain(node) && word_in(scalar_text(node), null_words);
}

/* {KEY: string}: config, and one device. */
static int read_string_map(yaml_document_t *doc, yaml_node_t *node, const char *path, json_t *lines, json_t **out,
			   struct ferry_error **err)
{
	if (is_null_node(node)) {
		*out = json_object();
		return 0;
	}
	if (node->type != YAML_MAPPING_NODE)
		return error_bad_request(err, "line %zu: %s: expected a map of strings", node_line(node), path);
	json_t *object = json_object();
	yaml_node_pair_t *first = node->data.mapping.pairs.start;
	for (yaml_node_pair_t *pair = first; pair < node->data.mapping.pairs.top; pair++) {
		if (check_key(doc, pair, first, path, err) < 0)
			goto fail;
		yaml_node_t *key = yaml_document_get_node(doc, pair->key);
		cleanup_free char *sub = path_join(path, scalar_text(key));
		json_object_set_new(lines, sub, json_integer((json_int_t)node_line(key)));
		json_t *value = NULL;
		if (read_string(yaml_document_get_node(doc, pair->value), sub, &value, err) < 0)
			goto fail;
		json_object_set_new(object, scalar_text(key), value);
	}
	*out = object;
	return 0;
fail:
	json_decref(object);
	return -1;
}

static int read_devices(yaml_document_t *doc, yaml_node_t *node, json_t *lines, json_t **out,
			struct ferry_error **err)
{
	if (is_null_node(node)) {
		*out = json_object();
		return 0;
	}
	if (node->type != YAML_MAPPING_NODE)
		return error_bad_request(err, "line %zu: devices: expected a map of devices", node_line(node));
	json_t *object = json_object();
	yaml_node_pair_t *first = node->data.mapping.pairs.start;
	for (yaml_node_pair_t *pair = first; pair < node->data.mapping.pairs.top; pair++) {
		if (check_key(doc, pair, first, "devices", err) < 0)
			goto fail;
		yaml_node_t *key = yaml_document_get_node(doc, pair->key);
		cleanup_free char *sub = path_join("devices", scalar_text(key));
		json_object_set_new(lines, sub, json_integer((json_int_t)node_line(key)));
		json_t *device = NULL;
		if (read_string_map(doc, yaml_document_get_node(doc, pair->value), sub, lines, &device, err) < 0)
			goto fail;
		json_object_set_new(object, scalar_text(key), device);
	}
	*out = object;
	return 0;
fail:
	json_decref(object);
	return -1;
}

static int read_string_list(yaml_document_t *doc, yaml_node_t *node, const char *path, json_t **out,
			    struct ferry_error **err)
{
	if (is_null_node(node)) {
		*out = json_array();
		return 0;
	}
	if (node->type != YAML_SEQUENCE_NODE)
		return error_bad_request(err, "line %zu: %s: expected a list of names", node_line(node), path);
	json_t *array = json_array();
	for (yaml_node_item_t *item = node->data.sequence.items.start; item < node->data.sequence.items.top; item++) {
		yaml_node_t *child = yaml_document_get_node(doc, *item);
		json_t *value = NULL;
		if (child->type != YAML_SCALAR_NODE || is_null_node(child)) {
			json_decref(array);
			return error_bad_request(err, "line %zu: %s: expected a name", node_line(child), path);
		}
		if (read_string(child, path, &value, err) < 0) {
			json_decref(array);
			return -1;
		}
		json_array_append_new(array, value);
	}
	*out = array;
	return 0;
}

/* What `show` prints that no edit can change: dropped, as lxc does. */
static const char *const read_only_fields[] = {
	"name", "used_by", "expanded_config", "expanded_devices", "status", "status_code", "created_at",
	"last_used_at", "location", "type", "project", "state", "snapshots", "backups", NULL,
};

int yaml_edit_document(const char *text, size_t len, enum yaml_edit_kind kind, json_t **out, json_t **lines,
		       struct ferry_error **err)
{
	struct yaml_doc parsed = { 0 };
	if (yaml_doc_load(text, len, &parsed, err) < 0)
		return -1;
	__attribute__((cleanup(document_deletep))) yaml_document_t *doc = &parsed.doc;
	json_t *line_map = json_object();
	json_t *body = json_object();
	/* An empty document clears everything, as with lxc. */
	if (parsed.root != NULL && !is_null_node(parsed.root)) {
		if (parsed.root->type != YAML_MAPPING_NODE) {
			error_bad_request(err, "line %zu: expected a map (config:, devices:, ...)", node_line(parsed.root));
			goto fail;
		}
		yaml_node_pair_t *first = parsed.root->data.mapping.pairs.start;
		for (yaml_node_pair_t *pair = first; pair < parsed.root->data.mapping.pairs.top; pair++) {
			if (check_key(doc, pair, first, "", err) < 0)
				goto fail;
			yaml_node_t *key = yaml_document_get_node(doc, pair->key);
			yaml_node_t *value = yaml_document_get_node(doc, pair->value);
			const char *field = scalar_text(key);
			json_object_set_new(line_map, field, json_integer((json_int_t)node_line(key)));
			json_t *parsed_value = NULL;
			int r;
			if (strcmp(field, "config") == 0)
				r = read_string_map(doc, value, "config", line_map, &parsed_value, err);
			else if (strcmp(field, "devices") == 0)
				r = read_devices(doc, value, line_map, &parsed_value, err);
			else if (strcmp(field, "description") == 0)
				r = read_string(value, "description", &parsed_value, err);
			else if (kind == YAML_EDIT_INSTANCE && strcmp(field, "profiles") == 0)
				r = read_string_list(doc, value, "profiles", &parsed_value, err);
			else if (kind == YAML_EDIT_INSTANCE && (strcmp(field, "ephemeral") == 0 || strcmp(field, "stateful") == 0))
				r = read_bool(value, field, &parsed_value, err);
			else if (kind == YAML_EDIT_INSTANCE && strcmp(field, "architecture") == 0)
				r = read_string(value, "architecture", &parsed_value, err);
			else if (word_in(field, read_only_fields))
				continue;
			else
				r = error_bad_request(err, "line %zu: %s: unknown field (expected config, devices, description%s)",
						      node_line(key), field,
						      kind == YAML_EDIT_INSTANCE ? ", profiles, ephemeral" : "");
			if (r < 0)
				goto fail;
			json_object_set_new(body, field, parsed_value);
		}
	}
	*out = body;
	if (lines != NULL)
		*lines = line_map;
	else
		json_decref(line_map);
	return 0;
fail:
	json_decref(body);
	json_decref(line_map);
	return -1;
}

/* ---- writing ----------------------------------------------------------- */

/* Would this string, written plain, read back as something else? */
static bool needs_quotes(const char *s)
{
	if (word_in(s, null_words) || word_in(s, true_words) || word_in(s, false_words) || looks_like_number(s))
		return true;
	if (isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]))
		return true;
	return false;
}

static int emit(yaml_emitter_t *emitter, yaml_event_t *event)
{
	return yaml_emitter_emit(emitter, event) ? 0 : -1;
}

static int emit_scalar(yaml_emitter_t *emitter, const char *text, yaml_scalar_style_t style)
{
	yaml_event_t event;
	yaml_scalar_event_initialize(&event, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1, style);
	return emit(emitter, &event);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int emit_value(yaml_emitter_t *emitter, json_t *value)
{
	yaml_event_t event;
	char number[64];
	switch (json_typeof(value)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(value), i = 0;
		yaml_mapping_start_event_initialize(&event, NULL, NULL, 1,
						    n == 0 ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
		if (emit(emitter, &event) < 0)
			return -1;
		const char **keys = xcalloc(n + 1, sizeof(*keys));
		const char *key;
		json_t *child;
		json_object_foreach(value, key, child) keys[i++] = key;
		qsort(keys, n, sizeof(*keys), compare_strings);
		int r = 0;
		for (i = 0; i < n && r == 0; i++) {
			r = emit_scalar(emitter, keys[i], needs_quotes(keys[i]) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
									       : YAML_ANY_SCALAR_STYLE);
			if (r == 0)
				r = emit_value(emitter, json_object_get(value, keys[i]));
		}
		free(keys);
		if (r < 0)
			return -1;
		yaml_mapping_end_event_initialize(&event);
		return emit(emitter, &event);
	}
	case JSON_ARRAY: {
		yaml_sequence_start_event_initialize(&event, NULL, NULL, 1,
						     json_array_size(value) == 0 ? YAML_FLOW_SEQUENCE_STYLE
										 : YAML_BLOCK_SEQUENCE_STYLE);
		if (emit(emitter, &event) < 0)
			return -1;
		size_t i;
		json_t *child;
		json_array_foreach(value, i, child) {
			if (emit_value(emitter, child) < 0)
				return -1;
		}
		yaml_sequence_end_event_initialize(&event);
		return emit(emitter, &event);
	}
	case JSON_STRING: {
		const char *s = json_string_value(value);
		return emit_scalar(emitter, s, needs_quotes(s) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE);
	}
	case JSON_INTEGER:
		snprintf(number, sizeof(number), "%" JSON_INTEGER_FORMAT, json_integer_value(value));
		return emit_scalar(emitter, number, YAML_PLAIN_SCALAR_STYLE);
	case JSON_REAL:
		snprintf(number, sizeof(number), "%.17g", json_real_value(value));
		return emit_scalar(emitter, number, YAML_PLAIN_SCALAR_STYLE);
	case JSON_TRUE:
		return emit_scalar(emitter, "true", YAML_PLAIN_SCALAR_STYLE);
	case JSON_FALSE:
		return emit_scalar(emitter, "false", YAML_PLAIN_SCALAR_STYLE);
	case JSON_NULL:
	default:
		return emit_scalar(emitter, "null", YAML_PLAIN_SCALAR_STYLE);
	}
}

struct text_buffer {
	char *data;
	size_t len, cap;
};

static int buffer_write(void *data, unsigned char *bytes, size_t size)
{
	struct text_buffer *buf = data;
	if (buf->len + size + 1 > buf->cap) {
		buf->cap = (buf->len + size + 1) * 2;
		char *grown = realloc(buf->data, buf->cap);
		if (grown == NULL)
			abort();
		buf->data = grown;
	}
	memcpy(buf->data + buf->len, bytes, size);
	buf->len += size;
	buf->data[buf->len] = '\0';
	return 1;
}

char *json_to_yaml(json_t *value)
{
	yaml_emitter_t emitter;
	yaml_event_t event;
	struct text_buffer buf = { 0 };
	if (!yaml_emitter_initialize(&emitter))
		abort();
	yaml_emitter_set_output(&emitter, buffer_write, &buf);
	yaml_emitter_set_unicode(&emitter, 1);
	yaml_emitter_set_width(&emitter, -1);
	yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING);
	int r = emit(&emitter, &event);
	yaml_document_start_event_initialize(&event, NULL, NULL, NULL, 1);
	if (r == 0)
		r = emit(&emitter, &event);
	if (r == 0)
		r = emit_value(&emitter, value);
	yaml_document_end_event_initialize(&event, 1);
	if (r == 0)
		r = emit(&emitter, &event);
	yaml_stream_end_event_initialize(&event);
	if (r == 0)
		r = emit(&emitter, &event);
	yaml_emitter_delete(&emitter);
	/* The emitter only fails on events out of order, which would be a bug here. */
	if (r < 0)
		abort();
	return buf.data != NULL ? buf.data : xstrdup("{}\n");
}

/* ---- errors ------------------------------------------------------------ */

/* Does message name word, standing alone (not inside a longer key)? */
static bool names_word(const char *message, const char *word)
{
	size_t n = strlen(word);
	if (n == 0)
		return false;
	for (const char *p = strstr(message, word); p != NULL; p = strstr(p + 1, word)) {
		bool start_ok = p == message || !(isalnum((unsigned char)p[-1]) || p[-1] == '.' || p[-1] == '_' ||
						   p[-1] == '-');
		char after = p[n];
		bool end_ok = after == '\0' || !(isalnum((unsigned char)after) || after == '_' || after == '-' ||
						 (after == '.' && isalnum((unsigned char)p[n + 1])));
		if (start_ok && end_ok)
			return true;
	}
	return false;
}

char *yaml_edit_locate_error(json_t *lines, const char *message)
{
	const char *best = NULL;
	int best_parts = 0;
	size_t best_len = 0;
	const char *path;
	json_t *line;
	json_object_foreach(lines, path, line) {
		int parts = 0;
		bool all = true;
		if (strncmp(path, "config.", 7) == 0) {
			all = names_word(message, path + 7);
			parts = 2;
		} else if (strncmp(path, "devices.", 8) == 0) {
			/* devices.DEV or devices.DEV.KEY: the device name has no dots
			 * in practice; a key may ("ipv4.address"). */
			const char *dev = path + 8;
			const char *dot = strchr(dev, '.');
			cleanup_free char *dev_name = dot ? strndup(dev, (size_t)(dot - dev)) : xstrdup(dev);
			all = dev_name != NULL && names_word(message, dev_name);
			parts = 2;
			if (all && dot != NULL) {
				all = names_word(message, dot + 1);
				parts = 3;
			}
		} else {
			all = names_word(message, path);
			parts = 1;
		}
		if (!all)
			continue;
		if (parts > best_parts || (parts == best_parts && strlen(path) > best_len)) {
			best = path;
			best_parts = parts;
			best_len = strlen(path);
		}
	}
	if (best == NULL)
		return NULL;
	return xasprintf("line %lld: %s: %s", (long long)json_integer_value(json_object_get(lines, best)), best,
			 message);
}
