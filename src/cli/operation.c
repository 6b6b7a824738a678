/* ferry operation list|show|delete: background operations. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/columns.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"

static const struct option format_options[] = {
	{ "format", required_argument, NULL, 'f' },
	{ 0 },
};

static char *upper(const char *s)
{
	char *u = xstrdup(s ? s : "");
	for (char *p = u; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	return u;
}

static int operation_list(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "operation list",
		.usage = "[<remote>:] [flags]",
		.summary = "List background operations",
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
	int rc = cli_check_args(&cmd, argc - optind, 0, 1);
	if (rc != 0)
		return rc;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *groups = NULL;
	if (target_parse(optind < argc ? argv[optind] : "", &t, &err) < 0 || client_open(t.remote, &client, &err) < 0 ||
	    client_query(client, "GET", "/1.0/operations?recursion=1", NULL, &groups, &err) < 0)
		return cli_fail(err);

	static const char *const header[] = { "ID", "TYPE", "DESCRIPTION", "STATUS", "CANCELABLE", "CREATED" };
	struct table *table cleanup_table = table_new(6, header);
	json_t *all = json_array();
	const char *status;
	json_t *ops;
	json_object_foreach(groups, status, ops) {
		size_t i;
		json_t *op;
		json_array_foreach(ops, i, op) {
			if (!json_is_object(op))
				continue;
			json_array_append(all, op);
			cleanup_free char *type = upper(json_string_value(json_object_get(op, "class")));
			cleanup_free char *st = upper(json_string_value(json_object_get(op, "status")));
			cleanup_free char *created = format_date(json_string_value(json_object_get(op, "created_at")));
			const char *cells[] = {
				json_string_value(json_object_get(op, "id")),
				type,
				json_string_value(json_object_get(op, "description")),
				st,
				json_is_true(json_object_get(op, "may_cancel")) ? "YES" : "NO",
				created,
			};
			table_add_row(table, cells);
		}
	}
	table_sort(table);
	rc = render_listing(table, all, format, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(all);
	json_decref(groups);
	return rc;
}

/* show and delete take one operation id. */
static int operation_one(int argc, char **argv, bool delete)
{
	const struct cli_command cmd = {
		.name = delete ? "operation delete" : "operation show",
		.usage = "[<remote>:]<operation> [flags]",
		.summary = delete ? "Delete a background operation (will attempt to cancel)"
				  : "Show details on a background operation",
	};
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(&cmd, argc - optind, 1, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (target_parse(argv[optind], &t, &err) < 0 || client_open(t.remote, &client, &err) < 0)
		return cli_fail(err);
	cleanup_free char *id = client_escape(t.name);
	cleanup_free char *path = xasprintf("/1.0/operations/%s", id);
	json_t *op = NULL;
	if (client_query(client, delete ? "DELETE" : "GET", path, NULL, &op, &err) < 0)
		return cli_fail(err);
	if (delete) {
		if (!cli_quiet)
			printf("Operation %s deleted\n", t.name);
	} else {
		cleanup_free char *yaml = NULL;
		if (yaml_render(op, &yaml, &err) < 0) {
			json_decref(op);
			return cli_fail(err);
		}
		fputs(yaml, stdout);
	}
	json_decref(op);
	return EXIT_OK;
}

static int operation_show(int argc, char **argv)
{
	return operation_one(argc, argv, false);
}

static int operation_delete(int argc, char **argv)
{
	return operation_one(argc, argv, true);
}

int cmd_operation(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "delete", "rm", "Delete a background operation (will attempt to cancel)", operation_delete },
		{ "list", "ls", "List background operations", operation_list },
		{ "show", NULL, "Show details on a background operation", operation_show },
		{ NULL },
	};
	return cli_run_subcommand("operation", subs, argc, argv);
}
