/* ferry list [FILTER...]: the instances, as a table, CSV, JSON or YAML. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/columns.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"

enum { OPT_FAST = 0x200, OPT_ALL_PROJECTS };

static const struct option list_options[] = {
	{ "columns", required_argument, NULL, 'c' },
	{ "format", required_argument, NULL, 'f' },
	{ "fast", no_argument, NULL, OPT_FAST },
	{ "all-projects", no_argument, NULL, OPT_ALL_PROJECTS },
	{ 0 },
};

/* recursion=2 carries each instance's state; fetch it when a server leaves it out. */
static int ensure_state(struct client *client, json_t *instance, struct ferry_error **err)
{
	if (json_object_get(instance, "state") != NULL && !json_is_null(json_object_get(instance, "state")))
		return 0;
	cleanup_free char *name = client_escape(json_string_value(json_object_get(instance, "name")));
	cleanup_free char *path = xasprintf("/1.0/instances/%s/state", name);
	json_t *state = NULL;
	if (client_query(client, "GET", path, NULL, &state, err) < 0)
		return -1;
	json_object_set_new(instance, "state", state);
	return 0;
}

int cmd_list(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "list",
		.usage = "[<remote>:] [<filter>...] [flags]",
		.summary = "List instances",
		.help = "  -c, --columns   Columns (default \"" LIST_DEFAULT_COLUMNS "\"): 4 IPv4, 6 IPv6, a architecture,\n"
			"                  b storage pool, c created, d description, D disk usage, e project,\n"
			"                  f/F base image, l last used, m/M memory usage, n name, N processes,\n"
			"                  p PID, P profiles, s state, S snapshots, t type, u CPU usage,\n"
			"                  or [config:|devices:]key[:name][:maxWidth]\n"
			"      --fast      Fast mode (same as --columns=" LIST_FAST_COLUMNS ")\n"
			"  -f, --format    Format (csv|json|table|yaml|compact) (default \"table\")\n",
		.shortopts = "c:f:",
		.longopts = list_options,
	};
	const char *columns_spec = LIST_DEFAULT_COLUMNS;
	enum output_format format = FORMAT_TABLE;
	cleanup_error struct ferry_error *err = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'c':
			columns_spec = optarg;
			break;
		case 'f':
			if (output_format_parse(optarg, &format, &err) < 0)
				return cli_usage_error(&cmd, "%s", err->msg);
			break;
		case OPT_FAST:
			columns_spec = LIST_FAST_COLUMNS;
			break;
		case OPT_ALL_PROJECTS:
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	struct list_column *cols = NULL;
	size_t ncols = 0;
	if (list_columns_parse(columns_spec, &cols, &ncols, &err) < 0)
		return cli_usage_error(&cmd, "%s", err->msg);

	/* A first argument ending in ':' names the remote. */
	const char *remote = NULL;
	struct target t cleanup_target = { 0 };
	int first_filter = optind;
	if (optind < argc && *argv[optind] && argv[optind][strlen(argv[optind]) - 1] == ':') {
		if (target_parse(argv[optind], &t, &err) < 0) {
			list_columns_free(cols, ncols);
			return cli_fail(err);
		}
		remote = t.remote;
		first_filter++;
	}

	int exit_code = EXIT_FAIL;
	struct client *client cleanup_client = NULL;
	json_t *instances = NULL;
	json_t *shown = json_array();
	struct table *table cleanup_table = NULL;
	if (client_open(remote, &client, &err) < 0 ||
	    client_query(client, "GET", "/1.0/instances?recursion=2", NULL, &instances, &err) < 0)
		goto out;

	bool needs_state = false;
	for (size_t j = 0; j < ncols; j++)
		needs_state |= cols[j].needs_state;
	needs_state |= format == FORMAT_JSON || format == FORMAT_YAML;

	const char **header = xcalloc(ncols, sizeof(char *));
	for (size_t j = 0; j < ncols; j++)
		header[j] = cols[j].header;
	table = table_new(ncols, header);
	free(header);

	size_t i;
	json_t *inst;
	json_array_foreach(instances, i, inst) {
		bool match = true;
		for (int k = first_filter; k < argc && match; k++)
			match = list_filter_match(argv[k], inst);
		if (!match)
			continue;
		if (needs_state && ensure_state(client, inst, &err) < 0)
			goto out;
		json_array_append(shown, inst);
		char **cells = xcalloc(ncols + 1, sizeof(char *));
		for (size_t j = 0; j < ncols; j++)
			cells[j] = list_column_value(&cols[j], inst);
		table_add_row(table, (const char *const *)cells);
		strv_free(cells);
	}
	table_sort(table);
	if (render_listing(table, shown, format, &err) < 0)
		goto out;
	exit_code = EXIT_OK;
out:
	if (exit_code != EXIT_OK)
		cli_fail(err);
	list_columns_free(cols, ncols);
	json_decref(instances);
	json_decref(shown);
	return exit_code;
}
