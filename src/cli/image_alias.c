/* ferry image alias create|delete|list|rename. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/image_verbs.h"
#include "cli/images.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"

static int open_client(const char *arg, struct target *t, struct client **client, struct ferry_error **err)
{
	return target_parse(arg, t, err) < 0 || client_open(t->remote, client, err) < 0 ? -1 : 0;
}

static int no_options(const struct cli_command *cmd, int argc, char **argv, int min, int max)
{
	int c;
	while ((c = cli_next_option(cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(cmd, argc - optind, min, max);
	return rc != 0 ? rc : -1;
}

static int alias_create(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "image alias create",
					 .usage = "[<remote>:]<alias> <fingerprint> [flags]",
					 .summary = "Create aliases for existing images" };
	int rc = no_options(&cmd, argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	cleanup_free char *fp = NULL;
	if (open_client(argv[optind], &t, &client, &err) < 0 || image_resolve(client, argv[optind + 1], &fp, &err) < 0)
		return cli_fail(err);
	json_t *body = json_pack("{s:s, s:s, s:s}", "name", t.name, "target", fp, "description", "");
	rc = client_query(client, "POST", "/1.0/images/aliases", body, NULL, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(body);
	return rc;
}

static int alias_delete(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "image alias delete",
					 .usage = "[<remote>:]<alias> [flags]",
					 .summary = "Delete image aliases" };
	int rc = no_options(&cmd, argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (open_client(argv[optind], &t, &client, &err) < 0)
		return cli_fail(err);
	cleanup_free char *escaped = client_escape(t.name);
	cleanup_free char *path = xasprintf("/1.0/images/aliases/%s", escaped);
	return client_query(client, "DELETE", path, NULL, NULL, &err) < 0 ? cli_fail(err) : EXIT_OK;
}

static int alias_rename(int argc, char **argv)
{
	const struct cli_command cmd = { .name = "image alias rename",
					 .usage = "[<remote>:]<alias> <new-name> [flags]",
					 .summary = "Rename aliases" };
	int rc = no_options(&cmd, argc, argv, 2, 2);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (open_client(argv[optind], &t, &client, &err) < 0)
		return cli_fail(err);
	cleanup_free char *escaped = client_escape(t.name);
	cleanup_free char *path = xasprintf("/1.0/images/aliases/%s", escaped);
	json_t *body = json_pack("{s:s}", "name", argv[optind + 1]);
	rc = client_query(client, "POST", path, body, NULL, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(body);
	return rc;
}

static const struct option format_options[] = {
	{ "format", required_argument, NULL, 'f' },
	{ 0 },
};

static int alias_list(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "image alias list",
		.usage = "[<remote>:] [<filters>...] [flags]",
		.summary = "List image aliases",
		.help = "  -f, --format   Format (csv|json|table|yaml|compact) (default \"table\")\n",
		.shortopts = "f:",
		.longopts = format_options,
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
	struct target t cleanup_target = { 0 };
	int first_filter = optind;
	const char *remote = NULL;
	if (optind < argc && *argv[optind] && argv[optind][strlen(argv[optind]) - 1] == ':') {
		if (target_parse(argv[optind], &t, &err) < 0)
			return cli_fail(err);
		remote = t.remote;
		first_filter++;
	}
	struct client *client cleanup_client = NULL;
	json_t *aliases = NULL;
	if (client_open(remote, &client, &err) < 0 ||
	    client_query(client, "GET", "/1.0/images/aliases?recursion=1", NULL, &aliases, &err) < 0)
		return cli_fail(err);
	static const char *const header[] = { "ALIAS", "FINGERPRINT", "TYPE", "DESCRIPTION" };
	struct table *table cleanup_table = table_new(4, header);
	json_t *shown = json_array();
	size_t i;
	json_t *a;
	json_array_foreach(aliases, i, a) {
		const char *name = json_string_value(json_object_get(a, "name")) ?: "";
		bool match = first_filter >= argc;
		for (int k = first_filter; k < argc && !match; k++)
			match = strncmp(name, argv[k], strlen(argv[k])) == 0;
		if (!match)
			continue;
		json_array_append(shown, a);
		const char *target = json_string_value(json_object_get(a, "target")) ?: "";
		const char *type = json_string_value(json_object_get(a, "type"));
		cleanup_free char *fp = strndup(target, 12);
		cleanup_free char *type_up = xstrdup(type && *type ? type : "container");
		for (char *p = type_up; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		const char *cells[] = { name, fp, type_up, json_string_value(json_object_get(a, "description")) };
		table_add_row(table, cells);
	}
	table_sort(table);
	int rc = render_listing(table, shown, format, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(shown);
	json_decref(aliases);
	return rc;
}

int image_alias(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "create", "add", "Create aliases for existing images", alias_create },
		{ "delete", "rm", "Delete image aliases", alias_delete },
		{ "list", "ls", "List image aliases", alias_list },
		{ "rename", "mv", "Rename aliases", alias_rename },
		{ NULL },
	};
	return cli_run_subcommand("image alias", subs, argc, argv);
}
