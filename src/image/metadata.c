/* metadata.yaml: the part of a unified tarball that describes it.
 *
 *   architecture: x86_64
 *   creation_date: 1700000000
 *   properties:
 *     os: busybox
 *     ...
 *
 * Other keys LXD knows (templates, expiry_date) are accepted and ignored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <yaml.h>

#include "common/util.h"
#include "image/image_internal.h"

void image_metadata_clear(struct image_metadata *md)
{
	free(md->architecture);
	strv_free(md->property_keys);
	strv_free(md->property_values);
	memset(md, 0, sizeof(*md));
}

void image_metadata_set_property(struct image_metadata *md, const char *key, const char *value)
{
	size_t n = strv_len(md->property_keys);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(md->property_keys[i], key) == 0) {
			free(md->property_values[i]);
			md->property_values[i] = xstrdup(value);
			return;
		}
	}
	char **keys = realloc(md->property_keys, (n + 2) * sizeof(char *));
	char **values = realloc(md->property_values, (n + 2) * sizeof(char *));
	if (keys == NULL || values == NULL)
		abort();
	keys[n] = xstrdup(key);
	values[n] = xstrdup(value);
	keys[n + 1] = values[n + 1] = NULL;
	md->property_keys = keys;
	md->property_values = values;
}

const char *image_metadata_property(const struct image_metadata *md, const char *key)
{
	for (size_t i = 0; md->property_keys != NULL && md->property_keys[i] != NULL; i++)
		if (strcmp(md->property_keys[i], key) == 0)
			return md->property_values[i];
	return NULL;
}

char *image_host_architecture(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return xstrdup("x86_64");
	return xstrdup(u.machine);
}

static const char *scalar_of(yaml_node_t *node)
{
	if (node == NULL || node->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)node->data.scalar.value;
}

static int metadata_from_document(yaml_document_t *doc, struct image_metadata *out, struct ferry_error **err)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return error_bad_request(err, "metadata.yaml is not a mapping");
	for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
		const char *key = scalar_of(yaml_document_get_node(doc, pair->key));
		yaml_node_t *value = yaml_document_get_node(doc, pair->value);
		if (key == NULL)
			continue;
		if (strcmp(key, "architecture") == 0) {
			if (scalar_of(value) == NULL)
				return error_bad_request(err, "metadata.yaml: architecture is not a string");
			free(out->architecture);
			out->architecture = xstrdup(scalar_of(value));
		} else if (strcmp(key, "creation_date") == 0) {
			const char *s = scalar_of(value);
			char *end = NULL;
			errno = 0;
			long long date = s != NULL ? strtoll(s, &end, 10) : 0;
			if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || date < 0)
				return error_bad_request(err, "metadata.yaml: creation_date is not a unix time");
			out->creation_date = date;
		} else if (strcmp(key, "properties") == 0) {
			if (value == NULL || value->type != YAML_MAPPING_NODE)
				return error_bad_request(err, "metadata.yaml: properties is not a mapping");
			for (yaml_node_pair_t *p = value->data.mapping.pairs.start; p < value->data.mapping.pairs.top;
			     p++) {
				const char *k = scalar_of(yaml_document_get_node(doc, p->key));
				const char *v = scalar_of(yaml_document_get_node(doc, p->value));
				if (k == NULL || v == NULL)
					return error_bad_request(err, "metadata.yaml: properties must map strings to strings");
				image_metadata_set_property(out, k, v);
			}
		}
	}
	if (out->architecture == NULL || out->architecture[0] == '\0')
		return error_bad_request(err, "metadata.yaml has no architecture");
	return 0;
}

int image_metadata_parse(const char *text, size_t len, struct image_metadata *out, struct ferry_error **err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	memset(out, 0, sizeof(*out));
	if (!yaml_parser_initialize(&parser))
		return error_set(err, 500, ENOMEM, "yaml parser");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		error_bad_request(err, "metadata.yaml: %s at line %zu", parser.problem ? parser.problem : "invalid YAML",
				  parser.problem_mark.line + 1);
		yaml_parser_delete(&parser);
		return -1;
	}
	int ret = metadata_from_document(&doc, out, err);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (ret < 0)
		image_metadata_clear(out);
	return ret;
}

static bool emit_scalar(yaml_emitter_t *emitter, const char *value, yaml_scalar_style_t style)
{
	yaml_event_t event;
	if (!yaml_scalar_event_initialize(&event, NULL, NULL, (yaml_char_t *)value, (int)strlen(value), 1, 1, style))
		return false;
	return yaml_emitter_emit(emitter, &event);
}

static bool emit_simple(yaml_emitter_t *emitter, int (*init)(yaml_event_t *))
{
	yaml_event_t event;
	return init(&event) && yaml_emitter_emit(emitter, &event);
}

static int stream_start(yaml_event_t *e)
{
	return yaml_stream_start_event_initialize(e, YAML_UTF8_ENCODING);
}
static int stream_end(yaml_event_t *e)
{
	return yaml_stream_end_event_initialize(e);
}
static int document_start(yaml_event_t *e)
{
	return yaml_document_start_event_initialize(e, NULL, NULL, NULL, 1);
}
static int document_end(yaml_event_t *e)
{
	return yaml_document_end_event_initialize(e, 1);
}
static int mapping_start(yaml_event_t *e)
{
	return yaml_mapping_start_event_initialize(e, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
}
static int mapping_end(yaml_event_t *e)
{
	return yaml_mapping_end_event_initialize(e);
}

static bool emit_metadata(yaml_emitter_t *em, const struct image_metadata *md)
{
	char date[32];
	snprintf(date, sizeof(date), "%lld", md->creation_date);
	if (!emit_simple(em, stream_start) || !emit_simple(em, document_start) || !emit_simple(em, mapping_start))
		return false;
	if (!emit_scalar(em, "architecture", YAML_PLAIN_SCALAR_STYLE) ||
	    !emit_scalar(em, md->architecture, YAML_ANY_SCALAR_STYLE) ||
	    !emit_scalar(em, "creation_date", YAML_PLAIN_SCALAR_STYLE) ||
	    !emit_scalar(em, date, YAML_PLAIN_SCALAR_STYLE) ||
	    !emit_scalar(em, "properties", YAML_PLAIN_SCALAR_STYLE) || !emit_simple(em, mapping_start))
		return false;
	/* Values always quoted: "12" or "yes" must come back as strings to
	 * every reader, LXD's Go decoder included. */
	for (size_t i = 0; md->property_keys != NULL && md->property_keys[i] != NULL; i++)
		if (!emit_scalar(em, md->property_keys[i], YAML_ANY_SCALAR_STYLE) ||
		    !emit_scalar(em, md->property_values[i], YAML_DOUBLE_QUOTED_SCALAR_STYLE))
			return false;
	return emit_simple(em, mapping_end) && emit_simple(em, mapping_end) && emit_simple(em, document_end) &&
	       emit_simple(em, stream_end);
}

int image_metadata_format(const struct image_metadata *md, char **out, size_t *len, struct ferry_error **err)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (f == NULL)
		return error_sys(err, errno, "open_memstream");
	yaml_emitter_t emitter;
	if (!yaml_emitter_initialize(&emitter)) {
		fclose(f);
		free(buf);
		return error_set(err, 500, ENOMEM, "yaml emitter");
	}
	yaml_emitter_set_output_file(&emitter, f);
	yaml_emitter_set_unicode(&emitter, 1);
	bool ok = emit_metadata(&emitter, md);
	const char *problem = emitter.problem;
	yaml_emitter_delete(&emitter);
	fclose(f);
	if (!ok) {
		free(buf);
		return error_set(err, 500, EINVAL, "writing metadata.yaml: %s", problem ? problem : "emitter failed");
	}
	*out = buf;
	if (len != NULL)
		*len = size;
	return 0;
}
