/* ferry delete NAME...: delete instances (--force stops them first), and
 * snapshots named NAME/SNAPSHOT. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/instance.h"
#include "cli/snapshot.h"
#include "cli/target.h"
#include "common/util.h"

static const struct option delete_options[] = {
	{ "force", no_argument, NULL, 'f' },
	{ "interactive", no_argument, NULL, 'i' },
	{ 0 },
};

static int delete_instance(const char *arg, bool force, bool interactive, struct ferry_error **err)
{
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *inst = NULL;
	if (target_parse(arg, &t, err) < 0 || client_open(t.remote, &client, err) < 0)
		return -1;
	/* "c1/s1": a snapshot (lxc's way). */
	char *slash = strchr(t.name, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (interactive && !cli_confirm("Remove %s/%s (yes/no) [default=no]? ", t.name, slash + 1))
			return error_set(err, 0, 0, "User aborted delete operation");
		return snapshot_delete(client, t.name, slash + 1, err);
	}
	if (interactive && !cli_confirm("Remove %s (yes/no) [default=no]? ", t.name))
		return error_set(err, 0, 0, "User aborted delete operation");
	if (instance_get(client, t.name, &inst, err) < 0)
		return -1;
	const char *status = json_string_value(json_object_get(inst, "status"));
	bool stopped = status == NULL || strcmp(status, "Stopped") == 0;
	json_decref(inst);
	if (!stopped) {
		if (!force)
			return error_set(err, 400, 0, "The instance is currently running, stop it first or use --force");
		if (instance_action(client, t.name, "stop", true, -1, false, err) < 0)
			return error_wrap(err, "Stopping the instance failed");
	}
	cleanup_free char *escaped = client_escape(t.name);
	cleanup_free char *path = xasprintf("/1.0/instances/%s", escaped);
	return client_run_operation(client, "DELETE", path, NULL, NULL, NULL, err);
}

int cmd_delete(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "delete",
		.usage = "[<remote>:]<instance>[/<snapshot>] [[<remote>:]<instance>[/<snapshot>]...] [flags]",
		.summary = "Delete instances",
		.help = "  -f, --force         Force the removal of running instances\n"
			"  -i, --interactive   Require user confirmation\n",
		.shortopts = "fi",
		.longopts = delete_options,
	};
	bool force = false, interactive = false;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case 'i':
			interactive = true;
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 1, -1);
	if (rc != 0)
		return rc;
	for (int i = optind; i < argc; i++) {
		cleanup_error struct ferry_error *err = NULL;
		if (delete_instance(argv[i], force, interactive, &err) < 0) {
			if (argc - optind > 1)
				error_wrap(&err, "%s", argv[i]);
			rc = cli_fail(err);
		}
	}
	return rc;
}
