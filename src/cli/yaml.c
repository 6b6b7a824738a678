/* JSON <-> YAML through libyaml's emitter and parser (config show/edit,
 * info, --format yaml). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/render.h"
#include "common/util.h"

/* Would a plain scalar with this text read back as something other than a string? */
static bool needs_quotes(const char *s)
{
	static const char *const special[] = { "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false",
					       "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO", "on",
					       "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N" };
	for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
		if (strcmp(s, special[i]) == 0)
			return true;
	char *end = NULL;
	strtod(s, &end);
	if (end != s && *end == '\0')
		return true;
	if (isspace((unsigned char)s[0]) || (s[0] && isspace((unsigned char)s[strlen(s) - 1])))
		return true;
	return false;
}

static int emit(yaml_emitter_t *em, yaml_event_t *ev)
{
	return yaml_emitter_emit(em, ev) ? 0 : -1;
}

static int emit_scalar(yaml_emitter_t *em, const char *text, yaml_scalar_style_t style)
{
	yaml_event_t ev;
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1, 1, style);
	return emit(em, &ev);
}

static int emit_value(yaml_emitter_t *em, const json_t *v)
{
	yaml_event_t ev;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
						    json_object_size(v) ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE);
		if (emit(em, &ev) < 0)
			return -1;
		const char *key;
		json_t *item;
		json_object_foreach((json_t *)v, key, item) {
			if (emit_scalar(em, key, needs_quotes(key) ? YAML_DOUBLE_QUOTED_SCALAR_STYLE : YAML_ANY_SCALAR_STYLE) < 0 ||
			    emit_value(em, item) < 0)
				return -1;
		}
		yaml_mapping_end_event_initialize(&ev);
		return emit(em, &ev);
	}
	case JSON_ARRAY: {
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
						     json_array_size(v) ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE);
		if (emit(em, &ev) < 0)
			return -1;
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item) {
			if (emit_value(em, item) < 0)
				return -1;
		}
		yaml_sequence_end_event_initialize(&ev);
		return emit(em, &ev);
	}
	case JSON_STRING: {
		const char *s = json_string_value(v);
		yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
		if (strchr(s, '\n') != NULL)
			style = YAML_LITERAL_SCALAR_STYLE;
		else if (needs_quotes(s))
			style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
		return emit_scalar(em, s, style);
	}
	case JSON_INTEGER: {
		char buf[32];
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return emit_scalar(em, buf, YAML_PLAIN_SCALAR_STYLE);
	}
	case JSON_REAL: {
		char buf[64];
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return emit_scalar(em, buf, YAML_PLAIN_SCALAR_STYLE);
	}
	case JSON_TRUE:
		return emit_scalar(em, "true", YAML_PLAIN_SCALAR_STYLE);
	case JSON_FALSE:
		return emit_scalar(em, "false", YAML_PLAIN_SCALAR_STYLE);
	case JSON_NULL:
		return emit_scalar(em, "null", YAML_PLAIN_SCALAR_STYLE);
	}
	return -1;
}

static int yaml_write_handler(void *data, unsigned char *buffer, size_t size)
{
	return fwrite(buffer, 1, size, (FILE *)data) == size;
}

int yaml_render(const json_t *value, char **out, struct ferry_error **err)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (f == NULL)
		abort();
	yaml_emitter_t em;
	yaml_event_t ev;
	yaml_emitter_initialize(&em);
	yaml_emitter_set_output(&em, yaml_write_handler, f);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	int r = 0;
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	r |= emit(&em, &ev);
	yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
	r |= r ? 0 : emit(&em, &ev);
	r |= r ? 0 : emit_value(&em, value);
	yaml_document_end_event_initialize(&ev, 1);
	r |= r ? 0 : emit(&em, &ev);
	yaml_stream_end_event_initialize(&ev);
	r |= r ? 0 : emit(&em, &ev);
	const char *problem = em.problem;
	yaml_emitter_delete(&em);
	fclose(f);
	if (r != 0) {
		free(buf);
		return error_set(err, 500, 0, "YAML output failed: %s", problem ? problem : "unknown");
	}
	*out = buf;
	return 0;
}

/* A plain scalar's type, as YAML 1.1 core reads it (the part that matters here). */
static json_t *plain_scalar(const char *s)
{
	if (strcmp(s, "") == 0 || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0)
		return json_null();
	if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
		return json_true();
	if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
		return json_false();
	char *end = NULL;
	long long i = strtoll(s, &end, 10);
	if (end != s && *end == '\0')
		return json_integer(i);
	double d = strtod(s, &end);
	if (end != s && *end == '\0' && (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '.'))
		return json_real(d);
	return json_string(s);
}

struct yaml_reader {
	yaml_parser_t parser;
	struct ferry_error **err;
};

static int read_node(struct yaml_reader *r, yaml_event_t *first, json_t **out);

static int next_event(struct yaml_reader *r, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&r->parser, ev))
		return error_bad_request(r->err, "Invalid YAML: %s at line %zu", r->parser.problem ? r->parser.problem : "parse error",
					 r->parser.problem_mark.line + 1);
	return 0;
}

static int read_node(struct yaml_reader *r, yaml_event_t *ev, json_t **out)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT: {
		const char *text = (const char *)ev->data.scalar.value;
		*out = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? plain_scalar(text) : json_string(text);
		return 0;
	}
	case YAML_SEQUENCE_START_EVENT: {
		json_t *arr = json_array();
		for (;;) {
			yaml_event_t item;
			if (next_event(r, &item) < 0) {
				json_decref(arr);
				return -1;
			}
			if (item.type == YAML_SEQUENCE_END_EVENT) {
				yaml_event_delete(&item);
				break;
			}
			json_t *v = NULL;
			int rc = read_node(r, &item, &v);
			yaml_event_delete(&item);
			if (rc < 0) {
				json_decref(arr);
				return -1;
			}
			json_array_append_new(arr, v);
		}
		*out = arr;
		return 0;
	}
	case YAML_MAPPING_START_EVENT: {
		json_t *obj = json_object();
		for (;;) {
			yaml_event_t key;
			if (next_event(r, &key) < 0) {
				json_decref(obj);
				return -1;
			}
			if (key.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&key);
				break;
			}
			if (key.type != YAML_SCALAR_EVENT) {
				yaml_event_delete(&key);
				json_decref(obj);
				return error_bad_request(r->err, "Invalid YAML: mapping keys must be scalars");
			}
			cleanup_free char *name = xstrdup((const char *)key.data.scalar.value);
			yaml_event_delete(&key);
			yaml_event_t value;
			if (next_event(r, &value) < 0) {
				json_decref(obj);
				return -1;
			}
			json_t *v = NULL;
			int rc = read_node(r, &value, &v);
			yaml_event_delete(&value);
			if (rc < 0) {
				json_decref(obj);
				return -1;
			}
			json_object_set_new(obj, name, v);
		}
		*out = obj;
		return 0;
	}
	case YAML_ALIAS_EVENT:
		return error_bad_request(r->err, "Invalid YAML: aliases are not supported");
	default:
		return error_bad_request(r->err, "Invalid YAML: unexpected event");
	}
}

int yaml_parse(const char *text, size_t len, json_t **out, struct ferry_error **err)
{
	struct yaml_reader r = { .err = err };
	yaml_parser_initialize(&r.parser);
	yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
	json_t *doc = NULL;
	int rc = 0;
	for (;;) {
		yaml_event_t ev;
		if (next_event(&r, &ev) < 0) {
			rc = -1;
			break;
		}
		yaml_event_type_t type = ev.type;
		if (type == YAML_SCALAR_EVENT || type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT ||
		    type == YAML_ALIAS_EVENT) {
			if (doc != NULL) {
				yaml_event_delete(&ev);
				rc = error_bad_request(err, "Invalid YAML: more than one document");
				break;
			}
			rc = read_node(&r, &ev, &doc);
		}
		yaml_event_delete(&ev);
		if (rc < 0 || type == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&r.parser);
	if (rc < 0) {
		json_decref(doc);
		return -1;
	}
	*out = doc != NULL && !json_is_null(doc) ? doc : json_object();
	return 0;
}
