/* JSON to YAML through libyaml's emitter, keeping the order of the JSON
 * (info, show, --format yaml); YAML to JSON through the shared
 * common/yaml_json.c. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "cli/render.h"
#include "common/util.h"
#include "common/yaml_json.h"

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

/* Reading is the shared code's (common/yaml_json.c), which the server's
 * checks and `config edit`/`profile edit` use too: one reading of YAML,
 * with the line of every error. */
int yaml_parse(const char *text, size_t len, json_t **out, struct ferry_error **err)
{
	json_t *doc = NULL;
	if (yaml_to_json(text, len, &doc, NULL, err) < 0)
		return error_wrap(err, "Invalid YAML");
	if (json_is_null(doc)) {
		json_decref(doc);
		doc = json_object();
	}
	*out = doc;
	return 0;
}
