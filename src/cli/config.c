/* ferry config get|set|unset|show|edit: instance and server configuration.
 * Without an instance the server's config is meant, as with lxc; config
 * keys contain a '.', instance names never do, which tells them apart. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/config_verbs.h"
#include "cli/devices.h"
#include "cli/edit.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"

/* A copy of obj with its keys sorted (config maps read better so). */
static json_t *sorted_copy(json_t *obj)
{
	if (!json_is_object(obj))
		return json_object();
	size_t n = json_object_size(obj), k = 0;
	const char **keys = xcalloc(n + 1, sizeof(char *));
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
		keys[k++] = key;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
			const char *t = keys[j];
			keys[j] = keys[j - 1];
			keys[j - 1] = t;
		}
	json_t *out = json_object();
	for (k = 0; k < n; k++)
		json_object_set(out, keys[k], json_object_get(obj, keys[k]));
	free(keys);
	return out;
}

int config_fetch(struct client *client, const char *instance, bool expanded, json_t **writable,
		 struct ferry_error **err)
{
	json_t *full = NULL;
	if (instance == NULL) {
		if (client_query(client, "GET", "/1.0", NULL, &full, err) < 0)
			return -1;
		*writable = json_pack("{s:o}", "config", sorted_copy(json_object_get(full, "config")));
		json_decref(full);
		return 0;
	}
	cleanup_free char *escaped = client_escape(instance);
	cleanup_free char *path = xasprintf("/1.0/instances/%s", escaped);
	if (client_query(client, "GET", path, NULL, &full, err) < 0)
		return -1;
	json_t *config = json_object_get(full, expanded ? "expanded_config" : "config");
	json_t *devices = json_object_get(full, expanded ? "expanded_devices" : "devices");
	json_t *profiles = json_object_get(full, "profiles");
	json_t *w = json_object();
	json_object_set_new(w, "architecture", json_string(json_string_value(json_object_get(full, "architecture")) ?: ""));
	json_object_set_new(w, "config", sorted_copy(config));
	json_object_set_new(w, "devices", sorted_copy(devices));
	json_object_set_new(w, "ephemeral", json_boolean(json_is_true(json_object_get(full, "ephemeral"))));
	json_object_set(w, "profiles", json_is_array(profiles) ? profiles : json_array());
	json_object_set_new(w, "stateful", json_boolean(json_is_true(json_object_get(full, "stateful"))));
	json_object_set_new(w, "description", json_string(json_string_value(json_object_get(full, "description")) ?: ""));
	json_decref(full);
	*writable = w;
	return 0;
}

int config_put(struct client *client, const char *instance, json_t *writable, struct ferry_error **err)
{
	if (instance == NULL)
		return client_query(client, "PUT", "/1.0", writable, NULL, err);
	cleanup_free char *escaped = client_escape(instance);
	cleanup_free char *path = xasprintf("/1.0/instances/%s", escaped);
	json_t *final = NULL;
	if (client_run_operation(client, "PUT", path, writable, NULL, &final, err) < 0)
		return -1;
	/* Which of the changes wait for the next start: in the operation's metadata. */
	edit_report_next_start(instance, json_object_get(final, "metadata"));
	json_decref(final);
	return 0;
}

/* Is this argument a config key (has a '.') rather than an instance? */
static bool is_config_key(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	return strchr(colon ? colon + 1 : arg, '.') != NULL;
}

static int open_target(const char *arg, struct target *t, struct client **client, struct ferry_error **err)
{
	if (target_parse(arg ? arg : "", t, err) < 0 || client_open(t->remote, client, err) < 0)
		return -1;
	return 0;
}

static const struct option expanded_options[] = {
	{ "expanded", no_argument, NULL, 'e' },
	{ 0 },
};

static int parse_simple(const struct cli_command *cmd, int argc, char **argv, bool *expanded)
{
	int c;
	while ((c = cli_next_option(cmd, argc, argv)) != -1) {
		if (c == 'e' && expanded != NULL)
			*expanded = true;
		else
			return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	}
	return -1;
}

static int config_get(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config get",
		.usage = "[<remote>:][<instance>] <key> [flags]",
		.summary = "Get values for instance or server configuration keys",
		.help = "  -e, --expanded   Access the expanded configuration\n",
		.shortopts = "e",
		.longopts = expanded_options,
	};
	bool expanded = false;
	int rc = parse_simple(&cmd, argc, argv, &expanded);
	if (rc >= 0)
		return rc;
	if ((rc = cli_check_args(&cmd, argc - optind, 1, 2)) != 0)
		return rc;
	bool server = argc - optind == 1;
	const char *key = argv[argc - 1];
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *w = NULL;
	if (open_target(server ? NULL : argv[optind], &t, &client, &err) < 0 ||
	    config_fetch(client, server || !*t.name ? NULL : t.name, expanded, &w, &err) < 0)
		return cli_fail(err);
	json_t *v = json_object_get(json_object_get(w, "config"), key);
	printf("%s\n", json_is_string(v) ? json_string_value(v) : "");
	json_decref(w);
	return EXIT_OK;
}

static int config_set(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config set",
		.usage = "[<remote>:][<instance>] <key>=<value>... [flags]\n  ferry config set [<remote>:][<instance>] <key> <value>",
		.summary = "Set instance or server configuration keys",
	};
	int rc = parse_simple(&cmd, argc, argv, NULL);
	if (rc >= 0)
		return rc;
	int nargs = argc - optind;
	char **args = argv + optind;
	if ((rc = cli_check_args(&cmd, nargs, 1, -1)) != 0)
		return rc;
	/* Forms: KEY VALUE | KEY=VALUE... (server); NAME KEY VALUE | NAME KEY=VALUE... (instance). */
	bool server = strchr(args[0], '=') != NULL || (nargs == 2 && is_config_key(args[0]));
	const char *instance_arg = server ? NULL : args[0];
	int first = server ? 0 : 1;
	if (first >= nargs)
		return cli_usage_error(&cmd, "Missing required arguments");
	json_t *changes = json_object();
	if (nargs - first == 2 && strchr(args[first], '=') == NULL) {
		json_object_set_new(changes, args[first], json_string(args[first + 1]));
	} else {
		for (int i = first; i < nargs; i++) {
			cleanup_error struct ferry_error *kv_err = NULL;
			cleanup_free char *key = NULL;
			cleanup_free char *value = NULL;
			if (cli_parse_key_value(args[i], &key, &value, &kv_err) < 0) {
				json_decref(changes);
				return cli_usage_error(&cmd, "%s", kv_err->msg);
			}
			json_object_set_new(changes, key, json_string(value));
		}
	}
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *w = NULL;
	rc = EXIT_OK;
	if (open_target(instance_arg, &t, &client, &err) < 0 ||
	    config_fetch(client, server || !*t.name ? NULL : t.name, false, &w, &err) < 0) {
		rc = cli_fail(err);
	} else {
		json_object_update(json_object_get(w, "config"), changes);
		if (config_put(client, server || !*t.name ? NULL : t.name, w, &err) < 0)
			rc = cli_fail(err);
	}
	json_decref(w);
	json_decref(changes);
	return rc;
}

static int config_unset(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config unset",
		.usage = "[<remote>:][<instance>] <key> [flags]",
		.summary = "Unset instance or server configuration keys",
	};
	int rc = parse_simple(&cmd, argc, argv, NULL);
	if (rc >= 0)
		return rc;
	if ((rc = cli_check_args(&cmd, argc - optind, 1, 2)) != 0)
		return rc;
	bool server = argc - optind == 1;
	const char *key = argv[argc - 1];
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *w = NULL;
	if (open_target(server ? NULL : argv[optind], &t, &client, &err) < 0 ||
	    config_fetch(client, server || !*t.name ? NULL : t.name, false, &w, &err) < 0)
		return cli_fail(err);
	json_t *config = json_object_get(w, "config");
	if (json_object_get(config, key) == NULL) {
		json_decref(w);
		error_set(&err, 400, 0, "Can't unset key '%s', it's not currently set", key);
		return cli_fail(err);
	}
	json_object_del(config, key);
	rc = config_put(client, server || !*t.name ? NULL : t.name, w, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(w);
	return rc;
}

static int config_show(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config show",
		.usage = "[<remote>:][<instance>] [flags]",
		.summary = "Show instance or server configurations",
		.help = "  -e, --expanded   Show the expanded configuration\n",
		.shortopts = "e",
		.longopts = expanded_options,
	};
	bool expanded = false;
	int rc = parse_simple(&cmd, argc, argv, &expanded);
	if (rc >= 0)
		return rc;
	if ((rc = cli_check_args(&cmd, argc - optind, 0, 1)) != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *w = NULL;
	if (open_target(optind < argc ? argv[optind] : NULL, &t, &client, &err) < 0 ||
	    config_fetch(client, *t.name ? t.name : NULL, expanded, &w, &err) < 0)
		return cli_fail(err);
	cleanup_free char *yaml = NULL;
	rc = yaml_render(w, &yaml, &err) < 0 ? cli_fail(err) : EXIT_OK;
	if (yaml != NULL)
		fputs(yaml, stdout);
	json_decref(w);
	return rc;
}

/* ferry config device …: an instance's own devices. */
static int instance_devices_fetch(struct client *client, const char *name, json_t **writable, struct ferry_error **err)
{
	if (*name == '\0')
		return error_bad_request(err, "Devices belong to an instance: name one");
	return config_fetch(client, name, false, writable, err);
}

static int instance_devices_store(struct client *client, const char *name, json_t *writable, struct ferry_error **err)
{
	return config_put(client, name, writable, err);
}

static int config_device(int argc, char **argv)
{
	static const struct device_owner instances = {
		.group = "config device", .noun = "instance", .fetch = instance_devices_fetch, .store = instance_devices_store,
	};
	return cli_devices(&instances, argc, argv);
}

int cmd_config(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "device", NULL, "Manage instance devices", config_device },
		{ "edit", NULL, "Edit instance or server configurations as YAML", config_edit },
		{ "get", NULL, "Get values for instance or server configuration keys", config_get },
		{ "set", NULL, "Set instance or server configuration keys", config_set },
		{ "show", NULL, "Show instance or server configurations", config_show },
		{ "trust", NULL, "Manage trusted clients", config_trust },
		{ "unset", NULL, "Unset instance or server configuration keys", config_unset },
		{ NULL },
	};
	return cli_run_subcommand("config", subs, argc, argv);
}
