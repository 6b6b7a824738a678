/* ferry profile create|list|show|get|set|unset|edit|rename|delete|copy|
 * add|remove|assign|device: /1.0/profiles, and the profiles of an
 * instance (PATCH /1.0/instances/NAME {"profiles": [...]}). Changes that
 * running instances take only at their next start are listed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/devices.h"
#include "cli/edit.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"
#include "common/yaml_json.h"

static int open_target(const char *arg, struct target *t, struct client **client, struct ferry_error **err)
{
	return target_parse(arg ? arg : "", t, err) < 0 || client_open(t->remote, client, err) < 0 ? -1 : 0;
}

static char *profile_path(const char *name)
{
	cleanup_free char *escaped = client_escape(name);
	return xasprintf("/1.0/profiles/%s", escaped);
}

static char *instance_path(const char *name)
{
	cleanup_free char *escaped = client_escape(name);
	return xasprintf("/1.0/instances/%s", escaped);
}

static int profile_fetch(struct client *client, const char *name, json_t **profile, struct ferry_error **err)
{
	cleanup_free char *path = profile_path(name);
	return client_query(client, "GET", path, NULL, profile, err);
}

/* PUT or PATCH, then say what waits for a next start. */
static int profile_send(struct client *client, const char *method, const char *name, json_t *body,
			struct ferry_error **err)
{
	cleanup_free char *path = profile_path(name);
	json_t *report = NULL;
	if (client_query(client, method, path, body, &report, err) < 0)
		return -1;
	edit_report_next_start(NULL, report);
	json_decref(report);
	return 0;
}

/* The writable part of a profile: what PUT takes. */
static json_t *profile_writable(json_t *profile)
{
	json_t *w = json_object();
	json_t *config = json_object_get(profile, "config");
	json_t *devices = json_object_get(profile, "devices");
	json_object_set_new(w, "config", json_is_object(config) ? json_deep_copy(config) : json_object());
	json_object_set_new(w, "description",
			    json_string(json_string_value(json_object_get(profile, "description")) ?: ""));
	json_object_set_new(w, "devices", json_is_object(devices) ? json_deep_copy(devices) : json_object());
	return w;
}

static int profile_list(int argc, char **argv)
{
	static const struct option options[] = { { "format", required_argument, NULL, 'f' }, { 0 } };
	const struct cli_command cmd = {
		.name = "profile list",
		.usage = "[<remote>:] [flags]",
		.summary = "List profiles",
		.help = "  -f, --format   Format (csv|json|table|yaml|compact) (default \"table\")\n",
		.shortopts = "f:",
		.longopts = options,
	};
	enum output_format format = FORMAT_TABLE;
	cleanup_error struct ferry_error *err = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		if (c == 'f') {
			if (output_format_parse(optarg, &format, &err) < 0)
				return cli_usage_error(&cmd, "%s", err->msg);
		} else {
			return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 0, 1);
	if (rc != 0)
		return rc;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *profiles = NULL;
	if (open_target(optind < argc ? argv[optind] : NULL, &t, &client, &err) < 0 ||
	    client_query(client, "GET", "/1.0/profiles?recursion=1", NULL, &profiles, &err) < 0)
		return cli_fail(err);
	static const char *const header[] = { "NAME", "DESCRIPTION", "USED BY" };
	struct table *table cleanup_table = table_new(3, header);
	size_t i;
	json_t *p;
	json_array_foreach(profiles, i, p) {
		char used[32];
		snprintf(used, sizeof(used), "%zu", json_array_size(json_object_get(p, "used_by")));
		const char *cells[] = { json_string_value(json_object_get(p, "name")),
					json_string_value(json_object_get(p, "description")), used };
		table_add_row(table, cells);
	}
	table_sort(table);
	rc = render_listing(table, profiles, format, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(profiles);
	return rc;
}

static int profile_create(int argc, char **argv)
{
	static const struct option options[] = { { "description", required_argument, NULL, 'd' }, { 0 } };
	const struct cli_command cmd = {
		.name = "profile create",
		.usage = "[<remote>:]<profile> [flags]",
		.summary = "Create profiles (from YAML on stdin when it is not a terminal)",
		.help = "      --description   Profile description\n",
		.longopts = options,
	};
	const char *description = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		if (c == 'd')
			description = optarg;
		else
			return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	}
	int rc = cli_check_args(&cmd, argc - optind, 1, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (open_target(argv[optind], &t, &client, &err) < 0)
		return cli_fail(err);
	if (*t.name == '\0')
		return cli_usage_error(&cmd, "A profile name is required");
	json_t *body = NULL;
	if (!isatty(STDIN_FILENO)) {
		/* As lxc: a YAML document on stdin is the new profile's content. */
		cleanup_free char *text = NULL;
		size_t len = 0;
		if (edit_read_stdin(&text, &len, &err) < 0 ||
		    edit_parse_profile(text, len, &body, NULL, &err) < 0)
			return cli_fail(err);
	} else {
		body = json_object();
	}
	json_object_set_new(body, "name", json_string(t.name));
	if (description != NULL)
		json_object_set_new(body, "description", json_string(description));
	rc = client_query(client, "POST", "/1.0/profiles", body, NULL, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(body);
	if (rc == EXIT_OK && !cli_quiet)
		printf("Profile %s created\n", t.name);
	return rc;
}

static int profile_show(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "profile show", .usage = "[<remote>:]<profile> [flags]",
					 .summary = "Show profile configurations" };
	int rc = cli_no_options(&cmd, argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *profile = NULL;
	if (open_target(argv[optind], &t, &client, &err) < 0 || profile_fetch(client, t.name, &profile, &err) < 0)
		return cli_fail(err);
	cleanup_free char *yaml = json_to_yaml(profile);
	fputs(yaml, stdout);
	json_decref(profile);
	return EXIT_OK;
}

static int profile_get(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "profile get", .usage = "[<remote>:]<profile> <key> [flags]",
					 .summary = "Get values for profile configuration keys" };
	int rc = cli_no_options(&cmd, argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *profile = NULL;
	if (open_target(argv[optind], &t, &client, &err) < 0 || profile_fetch(client, t.name, &profile, &err) < 0)
		return cli_fail(err);
	json_t *v = json_object_get(json_object_get(profile, "config"), argv[optind + 1]);
	printf("%s\n", json_is_string(v) ? json_string_value(v) : "");
	json_decref(profile);
	return EXIT_OK;
}

static int profile_set(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "profile set",
		.usage = "[<remote>:]<profile> <key><value>...\n  ferry profile set [<remote>:]<profile> <key> <value>",
		.summary = "Set profile configuration keys",
	};
	int rc = cli_no_options(&cmd, argc, argv, 2, -1);
	if (rc >= 0)
		return rc;
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	json_t *config = json_object();
	if (nargs == 2 && strchr(args[0], '=') == NULL) {
		json_object_set_new(config, args[0], json_string(args[1]));
	} else {
		for (int i = 0; i < nargs; i++) {
			cleanup_error struct ferry_error *kv_err = NULL;
			cleanup_free char *key = NULL, *value = NULL;
			if (cli_parse_key_value(args[i], &key, &value, &kv_err) < 0) {
				json_decref(config);
				return cli_usage_error(&cmd, "%s", kv_err->msg);
			}
			json_object_set_new(config, key, json_string(value));
		}
	}
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *body = json_pack("{s:o}", "config", config);
	rc = open_target(argv[optind], &t, &client, &err) < 0 || profile_send(client, "PATCH", t.name, body, &err) < 0
		     ? cli_fail(err)
		     : EXIT_OK;
	json_decref(body);
	return rc;
}

static int profile_unset(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "profile unset", .usage = "[<remote>:]<profile> <key> [flags]",
					 .summary = "Unset profile configuration keys" };
	int rc = cli_no_options(&cmd, argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	const char *key = argv[optind + 1];
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *profile = NULL;
	if (open_target(argv[optind], &t, &client, &err) < 0 || profile_fetch(client, t.name, &profile, &err) < 0)
		return cli_fail(err);
	json_t *w = profile_writable(profile);
	json_decref(profile);
	if (json_object_get(json_object_get(w, "config"), key) == NULL) {
		json_decref(w);
		error_set(&err, 400, 0, "Can't unset key '%s', it's not currently set", key);
		return cli_fail(err);
	}
	json_object_del(json_object_get(w, "config"), key);
	rc = profile_send(client, "PUT", t.name, w, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(w);
	return rc;
}

struct edit_target {
	struct client *client;
	const char *name;
};

static int apply_profile(json_t *body, void *data, struct ferry_error **err)
{
	struct edit_target *t = data;
	return profile_send(t->client, "PUT", t->name, body, err);
}

static int profile_edit(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "profile edit",
		.usage = "[<remote>:]<profile> [flags]",
		.summary = "Edit profile configurations as YAML (read from stdin when it is not a terminal)",
	};
	int rc = cli_no_options(&cmd, argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *profile = NULL;
	if (open_target(argv[optind], &t, &client, &err) < 0)
		return cli_fail(err);
	cleanup_free char *yaml = NULL;
	if (isatty(STDIN_FILENO)) {
		if (profile_fetch(client, t.name, &profile, &err) < 0)
			return cli_fail(err);
		yaml = json_to_yaml(profile);
		json_decref(profile);
	}
	struct edit_target target = { client, t.name };
	if (edit_document("### This is a YAML representation of the profile.\n"
			  "### Any line starting with a '# will be ignored.\n###\n",
			  yaml ? yaml : "", edit_parse_profile, apply_profile, &target, &err) < 0)
		return cli_fail(err);
	return EXIT_OK;
}

static int profile_rename(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "profile rename", .usage = "[<remote>:]<profile> <new-name> [flags]",
					 .summary = "Rename profiles" };
	int rc = cli_no_options(&cmd, argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (open_target(argv[optind], &t, &client, &err) < 0)
		return cli_fail(err);
	cleanup_free char *path = profile_path(t.name);
	json_t *body = json_pack("{s:s}", "name", argv[optind + 1]);
	rc = client_query(client, "POST", path, body, NULL, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(body);
	if (rc == EXIT_OK && !cli_quiet)
		printf("Profile %s renamed to %s\n", t.name, argv[optind + 1]);
	return rc;
}

static int profile_delete(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "profile delete", .usage = "[<remote>:]<profile>... [flags]",
					 .summary = "Delete profiles" };
	int rc = cli_no_options(&cmd, argc, argv, 1, -1);
	if (rc >= 0)
		return rc;
	rc = EXIT_OK;
	for (int i = optind; i < argc; i++) {
		cleanup_error struct ferry_error *err = NULL;
		struct target t cleanup_target = { 0 };
		struct client *client cleanup_client = NULL;
		cleanup_free char *path = NULL;
		if (open_target(argv[i], &t, &client, &err) < 0 ||
		    client_query(client, "DELETE", path = profile_path(t.name), NULL, NULL, &err) < 0) {
			rc = cli_fail(err);
			continue;
		}
		if (!cli_quiet)
			printf("Profile %s deleted\n", t.name);
	}
	return rc;
}

static int profile_copy(int argc, char **argv)
{
	static const struct option options[] = { { "refresh", no_argument, NULL, 'r' }, { 0 } };
	const struct cli_command cmd = {
		.name = "profile copy",
		.usage = "[<remote>:]<profile> [<remote>:][<profile>] [flags]",
		.summary = "Copy profiles (also to another server: ferry profile copy p other:)",
		.help = "      --refresh   Update the target profile if it exists\n",
		.longopts = options,
	};
	bool refresh = false;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		if (c == 'r')
			refresh = true;
		else
			return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	}
	int rc = cli_check_args(&cmd, argc - optind, 2, 2);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target src cleanup_target = { 0 }, dst cleanup_target = { 0 };
	struct client *from cleanup_client = NULL;
	struct client *to cleanup_client = NULL;
	json_t *profile = NULL;
	if (open_target(argv[optind], &src, &from, &err) < 0 || target_parse(argv[optind + 1], &dst, &err) < 0 ||
	    client_open(dst.remote, &to, &err) < 0 || profile_fetch(from, src.name, &profile, &err) < 0)
		return cli_fail(err);
	const char *name = *dst.name ? dst.name : src.name;
	json_t *body = profile_writable(profile);
	json_decref(profile);
	cleanup_error struct ferry_error *get_err = NULL;
	json_t *existing = NULL;
	bool exists = profile_fetch(to, name, &existing, &get_err) == 0;
	json_decref(existing);
	if (exists && !refresh) {
		json_decref(body);
		error_set(&err, 409, 0, "Profile \"%s\" already exists on %s (use --refresh to update it)", name,
			  dst.remote);
		return cli_fail(err);
	}
	if (exists) {
		rc = profile_send(to, "PUT", name, body, &err);
	} else {
		json_object_set_new(body, "name", json_string(name));
		rc = client_query(to, "POST", "/1.0/profiles", body, NULL, &err);
	}
	json_decref(body);
	return rc < 0 ? cli_fail(err) : EXIT_OK;
}

/* The profiles of an instance, changed by change(), PATCHed back. */
static int instance_profiles_update(const char *arg, int (*change)(json_t *profiles, void *data,
								       struct ferry_error **err),
				    void *data, struct ferry_error **err)
{
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (open_target(arg, &t, &client, err) < 0)
		return -1;
	cleanup_free char *path = instance_path(t.name);
	json_t *inst = NULL;
	if (client_query(client, "GET", path, NULL, &inst, err) < 0)
		return -1;
	json_t *profiles = json_object_get(inst, "profiles");
	profiles = json_is_array(profiles) ? json_deep_copy(profiles) : json_array();
	json_decref(inst);
	if (change(profiles, data, err) < 0) {
		json_decref(profiles);
		return -1;
	}
	json_t *body = json_pack("{s:o}", "profiles", profiles);
	json_t *report = NULL;
	int r = client_query(client, "PATCH", path, body, &report, err);
	json_decref(body);
	if (r == 0)
		edit_report_next_start(t.name, report);
	json_decref(report);
	return r;
}

static int add_profile(json_t *profiles, void *data, struct ferry_error **err)
{
	const char *name = data;
	size_t i;
	json_t *p;
	json_array_foreach(profiles, i, p)
		if (strcmp(json_string_value(p) ?: "", name) == 0)
			return error_set(err, 400, 0, "Profile %s is already applied", name);
	json_array_append_new(profiles, json_string(name));
	return 0;
}

static int remove_profile(json_t *profiles, void *data, struct ferry_error **err)
{
	const char *name = data;
	size_t i;
	json_t *p;
	json_array_foreach(profiles, i, p) {
		if (strcmp(json_string_value(p) ?: "", name) == 0) {
			json_array_remove(profiles, i);
			return 0;
		}
	}
	return error_set(err, 400, 0, "Profile %s isn't currently applied", name);
}

static int assign_profiles(json_t *profiles, void *data, struct ferry_error **err)
{
	const char *list = data;
	json_array_clear(profiles);
	cleanup_free char *copy = xstrdup(list);
	char *save = NULL;
	for (char *p = strtok_r(copy, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save))
		if (*p != '\0')
			json_array_append_new(profiles, json_string(p));
	return 0;
}

static int instance_profile_verb(int argc, char **argv, const char *name, const char *usage, const char *summary,
				 int (*change)(json_t *, void *, struct ferry_error **), const char *done)
{
	const struct cli_command cmd = { .name = name, .usage = usage, .summary = summary };
	int rc = cli_no_options(&cmd, argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	if (instance_profiles_update(argv[optind], change, argv[optind + 1], &err) < 0)
		return cli_fail(err);
	if (!cli_quiet && done != NULL)
		printf(done, argv[optind + 1], argv[optind]);
	return EXIT_OK;
}

static int profile_add(int argc, char **argv)
{
	return instance_profile_verb(argc, argv, "profile add", "[<remote>:]<instance> <profile> [flags]",
				     "Add profiles to instances", add_profile, "Profile %s added to %s\n");
}

static int profile_remove(int argc, char **argv)
{
	return instance_profile_verb(argc, argv, "profile remove", "[<remote>:]<instance> <profile> [flags]",
				     "Remove profiles from instances", remove_profile, "Profile %s removed from %s\n");
}

static int profile_assign(int argc, char **argv)
{
	return instance_profile_verb(argc, argv, "profile assign", "[<remote>:]<instance> <profiles> [flags]",
				     "Assign sets of profiles to instances (comma-separated; \"\" for none)",
				     assign_profiles, "Profiles %s applied to %s\n");
}

/* ---- profile device ---- */

static int profile_devices_fetch(struct client *client, const char *name, json_t **writable, struct ferry_error **err)
{
	json_t *profile = NULL;
	if (profile_fetch(client, name, &profile, err) < 0)
		return -1;
	*writable = profile_writable(profile);
	json_decref(profile);
	return 0;
}

static int profile_devices_store(struct client *client, const char *name, json_t *writable, struct ferry_error **err)
{
	return profile_send(client, "PUT", name, writable, err);
}

static int profile_device(int argc, char **argv)
{
	static const struct device_owner profiles = {
		.group = "profile device", .noun = "profile", .fetch = profile_devices_fetch, .store = profile_devices_store,
	};
	return cli_devices(&profiles, argc, argv);
}

int cmd_profile(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "add", NULL, "Add profiles to instances", profile_add },
		{ "assign", "apply", "Assign sets of profiles to instances", profile_assign },
		{ "copy", "cp", "Copy profiles", profile_copy },
		{ "create", NULL, "Create profiles", profile_create },
		{ "delete", "rm", "Delete profiles", profile_delete },
		{ "device", NULL, "Manage devices", profile_device },
		{ "edit", NULL, "Edit profile configurations as YAML", profile_edit },
		{ "get", NULL, "Get values for profile configuration keys", profile_get },
		{ "list", "ls", "List profiles", profile_list },
		{ "remove", NULL, "Remove profiles from instances", profile_remove },
		{ "rename", "mv", "Rename profiles", profile_rename },
		{ "set", NULL, "Set profile configuration keys", profile_set },
		{ "show", NULL, "Show profile configurations", profile_show },
		{ "unset", NULL, "Unset profile configuration keys", profile_unset },
		{ NULL },
	};
	return cli_run_subcommand("profile", subs, argc, argv);
}
