/* ferry config edit [NAME]: YAML in $EDITOR (or from stdin when it is not
 * a terminal, for scripts), read by the shared common/yaml_json.c (errors
 * name the line and key), then PUT back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/edit.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"
#include "common/yaml_json.h"

struct edit_target {
	struct client *client;
	const char *instance; /* NULL: the server */
};

static int apply_edit(json_t *body, void *data, struct ferry_error **err)
{
	struct edit_target *t = data;
	return config_put(t->client, t->instance, body, err);
}

/* The server's document has config only: a map of strings. */
static int parse_server(const char *text, size_t len, json_t **body, json_t **lines, struct ferry_error **err)
{
	json_t *doc = NULL, *line_map = NULL;
	if (yaml_to_json(text, len, &doc, &line_map, err) < 0)
		return -1;
	int r = 0;
	json_t *config = json_object_get(doc, "config");
	json_t *strings = json_object();
	const char *key;
	json_t *v;
	if (!json_is_object(doc) || (config != NULL && !json_is_object(config) && !json_is_null(config))) {
		r = error_bad_request(err, "line %lld: config: expected a map of strings",
				      (long long)json_integer_value(json_object_get(line_map, "config")));
		goto out;
	}
	json_object_foreach(doc, key, v) {
		if (strcmp(key, "config") != 0) {
			r = error_bad_request(err, "line %lld: %s: unknown field (the server's configuration has config only)",
					      (long long)json_integer_value(json_object_get(line_map, key)), key);
			goto out;
		}
	}
	json_object_foreach(config, key, v) {
		if (json_is_object(v) || json_is_array(v)) {
			cleanup_free char *path = xasprintf("config.%s", key);
			r = error_bad_request(err, "line %lld: %s: expected a string",
					      (long long)json_integer_value(json_object_get(line_map, path)), path);
			goto out;
		}
		/* Numbers and booleans go as they are: ferryd stores them as
		 * text, and keeps the trust password it shows as true. */
		json_object_set_new(strings, key, json_is_null(v) ? json_string("") : json_incref(v));
	}
out:
	json_decref(doc);
	if (r < 0) {
		json_decref(strings);
		json_decref(line_map);
		return -1;
	}
	*body = json_pack("{s:o}", "config", strings);
	if (lines != NULL)
		*lines = line_map;
	else
		json_decref(line_map);
	return 0;
}

static int edit_server(struct client *client, struct ferry_error **err)
{
	json_t *w = NULL;
	if (config_fetch(client, NULL, false, &w, err) < 0)
		return -1;
	cleanup_free char *yaml = NULL;
	int r = yaml_render(w, &yaml, err);
	json_decref(w);
	if (r < 0)
		return -1;
	struct edit_target t = { client, NULL };
	return edit_document("### This is a YAML representation of the server configuration.\n"
			     "### Any line starting with a '# will be ignored.\n###\n",
			     yaml, parse_server, apply_edit, &t, err);
}

static int edit_instance(struct client *client, const char *instance, struct ferry_error **err)
{
	json_t *w = NULL;
	if (config_fetch(client, instance, false, &w, err) < 0)
		return -1;
	cleanup_free char *yaml = NULL;
	int r = yaml_render(w, &yaml, err);
	json_decref(w);
	if (r < 0)
		return -1;
	struct edit_target t = { client, instance };
	return edit_document("### This is a YAML representation of the configuration.\n"
			     "### Any line starting with a '# will be ignored.\n###\n",
			     yaml, edit_parse_instance, apply_edit, &t, err);
}

int config_edit(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config edit",
		.usage = "[<remote>:][<instance>] [flags]",
		.summary = "Edit instance or server configurations as YAML (read from stdin when it is not a terminal)",
	};
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(&cmd, argc - optind, 0, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (target_parse(optind < argc ? argv[optind] : "", &t, &err) < 0 || client_open(t.remote, &client, &err) < 0)
		return cli_fail(err);
	const char *instance = *t.name ? t.name : NULL;
	int r = instance ? edit_instance(client, instance, &err) : edit_server(client, &err);
	return r < 0 ? cli_fail(err) : EXIT_OK;
}
