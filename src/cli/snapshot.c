/* ferry snapshot: take instance snapshots, as lxc does ("ferry snapshot c1
 * s1 [--stateful]"), and manage them: create, list, show, rename, delete
 * (incus's subcommands; "ferry delete c1/s1" works too). */
#include "cli/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/columns.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"

char *snapshot_api_path(const char *instance, const char *snap)
{
	cleanup_free char *i = client_escape(instance);
	cleanup_free char *s = client_escape(snap);
	return xasprintf("/1.0/instances/%s/snapshots/%s", i, s);
}

int snapshot_get(struct client *c, const char *instance, const char *snap, json_t **out, struct ferry_error **err)
{
	cleanup_free char *path = snapshot_api_path(instance, snap);
	return client_query(c, "GET", path, NULL, out, err);
}

int snapshot_delete(struct client *c, const char *instance, const char *snap, struct ferry_error **err)
{
	cleanup_free char *path = snapshot_api_path(instance, snap);
	return client_run_operation(c, "DELETE", path, NULL, NULL, NULL, err);
}

/* "[remote:]c1" with the snapshot in the next argument, or "[remote:]c1/s1"
 * alone: a client, the instance and the snapshot (NULL when not given). */
static int parse_snapshot_args(const char *arg, const char *snap_arg, struct client **client, char **instance,
			       char **snap, struct ferry_error **err)
{
	struct target t cleanup_target = { 0 };
	if (target_parse(arg, &t, err) < 0 || client_open(t.remote, client, err) < 0)
		return -1;
	char *slash = strchr(t.name, '/');
	if (slash != NULL) {
		if (snap_arg != NULL)
			return error_bad_request(err, "Give the snapshot as \"%s\" or as a second argument, not both", arg);
		*snap = xstrdup(slash + 1);
		*slash = '\0';
	} else {
		*snap = snap_arg ? xstrdup(snap_arg) : NULL;
	}
	if (t.name[0] == '\0')
		return error_bad_request(err, "Missing instance name");
	*instance = xstrdup(t.name);
	return 0;
}

enum { OPT_STATEFUL = 0x200, OPT_REUSE, OPT_NO_EXPIRY };

static const struct option create_options[] = {
	{ "stateful", no_argument, NULL, OPT_STATEFUL },
	{ "reuse", no_argument, NULL, OPT_REUSE },
	{ "no-expiry", no_argument, NULL, OPT_NO_EXPIRY },
	{ 0 },
};

static int snapshot_create(const char *name, int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = name,
		.usage = "[<remote>:]<instance> [<snapshot name>] [flags]",
		.summary = "Create instance snapshots",
		.help = "      --no-expiry   Ignore any configured auto-expiry for the instance\n"
			"      --reuse       If the snapshot name already exists, delete and create a new one\n"
			"      --stateful    Whether or not to snapshot the instance's running state\n",
		.longopts = create_options,
	};
	bool stateful = false, reuse = false;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case OPT_STATEFUL:
			stateful = true;
			break;
		case OPT_REUSE:
			reuse = true;
			break;
		case OPT_NO_EXPIRY:
			break; /* snapshots.expiry isn't supported: nothing expires by itself */
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 1, 2);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct client *client cleanup_client = NULL;
	cleanup_free char *instance = NULL, *snap = NULL;
	if (parse_snapshot_args(argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL, &client, &instance, &snap,
				&err) < 0)
		return cli_fail(err);
	if (reuse && snap != NULL) {
		json_t *existing = NULL;
		if (snapshot_get(client, instance, snap, &existing, &err) == 0) {
			json_decref(existing);
			if (snapshot_delete(client, instance, snap, &err) < 0)
				return cli_fail(err);
		}
		error_free(&err);
	}
	cleanup_free char *escaped = client_escape(instance);
	cleanup_free char *path = xasprintf("/1.0/instances/%s/snapshots", escaped);
	json_t *body = json_pack("{s:b}", "stateful", stateful);
	if (snap != NULL)
		json_object_set_new(body, "name", json_string(snap));
	int r = client_run_operation(client, "POST", path, body, NULL, NULL, &err);
	json_decref(body);
	return r < 0 ? cli_fail(err) : EXIT_OK;
}

static int snapshot_create_cmd(int argc, char **argv)
{
	return snapshot_create("snapshot create", argc, argv);
}

/* The arguments of a verb that names one snapshot and takes no options
 * ("c1 s1" or "c1/s1"): -1 when they are good, else the verb's exit code
 * (help, usage, an unknown remote). */
static int one_snapshot_args(const struct cli_command *cmd, int argc, char **argv, struct client **client,
			     char **instance, char **snap)
{
	int c;
	while ((c = cli_next_option(cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(cmd, argc - optind, 1, 2);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	if (parse_snapshot_args(argv[optind], optind + 1 < argc ? argv[optind + 1] : NULL, client, instance, snap,
				&err) < 0)
		return cli_fail(err);
	if (*snap == NULL)
		return cli_usage_error(cmd, "Missing snapshot name");
	return -1;
}

static int snapshot_delete_cmd(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "snapshot delete",
		.usage = "[<remote>:]<instance> <snapshot name> | [<remote>:]<instance>/<snapshot name>",
		.summary = "Delete instance snapshots",
	};
	cleanup_error struct ferry_error *err = NULL;
	struct client *client cleanup_client = NULL;
	cleanup_free char *instance = NULL, *snap = NULL;
	int rc = one_snapshot_args(&cmd, argc, argv, &client, &instance, &snap);
	if (rc >= 0)
		return rc;
	return snapshot_delete(client, instance, snap, &err) < 0 ? cli_fail(err) : EXIT_OK;
}

static int snapshot_rename_cmd(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "snapshot rename",
		.usage = "[<remote>:]<instance> <old snapshot name> <new snapshot name>",
		.summary = "Rename instance snapshots",
	};
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		if (c == CLI_OPT_HELP)
			return EXIT_OK;
		return EXIT_USAGE;
	}
	int rc = cli_check_args(&cmd, argc - optind, 2, 3);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct client *client cleanup_client = NULL;
	cleanup_free char *instance = NULL, *snap = NULL;
	bool joined = argc - optind == 2; /* "c1/s1 s2" */
	if (parse_snapshot_args(argv[optind], joined ? NULL : argv[optind + 1], &client, &instance, &snap, &err) < 0)
		return cli_fail(err);
	if (snap == NULL)
		return cli_usage_error(&cmd, "Missing snapshot name");
	const char *new_name = argv[argc - 1];
	/* "c1/s2" as the new name (lxc rename c1/s1 c1/s2). */
	const char *slash = strchr(new_name, '/');
	if (slash != NULL)
		new_name = slash + 1;
	cleanup_free char *path = snapshot_api_path(instance, snap);
	json_t *body = json_pack("{s:s}", "name", new_name);
	int r = client_run_operation(client, "POST", path, body, NULL, NULL, &err);
	json_decref(body);
	return r < 0 ? cli_fail(err) : EXIT_OK;
}

static const struct option list_options[] = {
	{ "format", required_argument, NULL, 'f' },
	{ 0 },
};

static int snapshot_list_cmd(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "snapshot list",
		.usage = "[<remote>:]<instance> [flags]",
		.summary = "List instance snapshots",
		.help = "  -f, --format   Format (csv|json|table|yaml|compact) (default \"table\")\n",
		.shortopts = "f:",
		.longopts = list_options,
	};
	enum output_format format = FORMAT_TABLE;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		cleanup_error struct ferry_error *err = NULL;
		switch (c) {
		case 'f':
			if (output_format_parse(optarg, &format, &err) < 0)
				return cli_usage_error(&cmd, "%s", err->msg);
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 1, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct client *client cleanup_client = NULL;
	cleanup_free char *instance = NULL, *snap = NULL;
	if (parse_snapshot_args(argv[optind], NULL, &client, &instance, &snap, &err) < 0)
		return cli_fail(err);
	cleanup_free char *escaped = client_escape(instance);
	cleanup_free char *path = xasprintf("/1.0/instances/%s/snapshots?recursion=1", escaped);
	json_t *snaps = NULL;
	if (client_query(client, "GET", path, NULL, &snaps, &err) < 0)
		return cli_fail(err);
	static const char *const header[] = { "NAME", "TAKEN AT", "EXPIRES AT", "STATEFUL" };
	struct table *table cleanup_table = table_new(4, header);
	size_t i;
	json_t *s;
	json_array_foreach(snaps, i, s) {
		cleanup_free char *taken = format_date(json_string_value(json_object_get(s, "created_at")));
		cleanup_free char *expires = format_date(json_string_value(json_object_get(s, "expires_at")));
		const char *cells[] = { json_string_value(json_object_get(s, "name")), taken, expires,
					json_is_true(json_object_get(s, "stateful")) ? "YES" : "NO" };
		table_add_row(table, cells);
	}
	int r = render_listing(table, snaps, format, &err);
	json_decref(snaps);
	return r < 0 ? cli_fail(err) : EXIT_OK;
}

static int snapshot_show_cmd(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "snapshot show",
		.usage = "[<remote>:]<instance> <snapshot name> | [<remote>:]<instance>/<snapshot name>",
		.summary = "Show instance snapshot configuration",
	};
	cleanup_error struct ferry_error *err = NULL;
	struct client *client cleanup_client = NULL;
	cleanup_free char *instance = NULL, *snap = NULL;
	int rc = one_snapshot_args(&cmd, argc, argv, &client, &instance, &snap);
	if (rc >= 0)
		return rc;
	json_t *obj = NULL;
	if (snapshot_get(client, instance, snap, &obj, &err) < 0)
		return cli_fail(err);
	cleanup_free char *yaml = NULL;
	int r = yaml_render(obj, &yaml, &err);
	json_decref(obj);
	if (r < 0)
		return cli_fail(err);
	fputs(yaml, stdout);
	return EXIT_OK;
}

static int snapshot_restore_cmd(int argc, char **argv)
{
	return cmd_restore(argc, argv);
}

static const struct cli_subcommand snapshot_subcommands[] = {
	{ "create", NULL, "Create instance snapshots", snapshot_create_cmd },
	{ "delete", "rm", "Delete instance snapshots", snapshot_delete_cmd },
	{ "list", "ls", "List instance snapshots", snapshot_list_cmd },
	{ "rename", NULL, "Rename instance snapshots", snapshot_rename_cmd },
	{ "restore", NULL, "Restore instance snapshots", snapshot_restore_cmd },
	{ "show", NULL, "Show instance snapshot configuration", snapshot_show_cmd },
	{ NULL },
};

int cmd_snapshot(int argc, char **argv)
{
	/* "ferry snapshot c1 [s1]" (lxc's form) unless a subcommand is named. */
	if (argc >= 2 && argv[1][0] != '-') {
		for (const struct cli_subcommand *s = snapshot_subcommands; s->name != NULL; s++)
			if (strcmp(argv[1], s->name) == 0 || (s->alias != NULL && strcmp(argv[1], s->alias) == 0))
				return cli_run_subcommand("snapshot", snapshot_subcommands, argc, argv);
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("Usage:\n  ferry snapshot [<remote>:]<instance> [<snapshot name>] [--stateful]\n"
		       "  ferry snapshot [command]\n\nAvailable Commands:\n");
		for (const struct cli_subcommand *s = snapshot_subcommands; s->name != NULL; s++)
			printf("  %-12s %s\n", s->name, s->summary);
		return EXIT_OK;
	}
	return snapshot_create("snapshot", argc, argv);
}
