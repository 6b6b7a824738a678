/* ferry restore c1 s1: put a snapshot back (LXD's PUT of the instance with
 * {"restore": "s1", "stateful": bool}). A stateful snapshot brings its
 * processes back, running, unless --stateless; a stateless one leaves the
 * instance stopped with the snapshot's rootfs and config. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/snapshot.h"
#include "cli/target.h"
#include "common/util.h"

enum { OPT_STATEFUL = 0x200, OPT_STATELESS };

static const struct option restore_options[] = {
	{ "stateful", no_argument, NULL, OPT_STATEFUL },
	{ "stateless", no_argument, NULL, OPT_STATELESS },
	{ 0 },
};

int cmd_restore(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "restore",
		.usage = "[<remote>:]<instance> <snapshot> [flags]",
		.summary = "Restore instances from snapshots",
		.help = "      --stateful    Restore the snapshot's running state (the default for a stateful snapshot)\n"
			"      --stateless   Only put the rootfs and config back, leaving the instance stopped\n",
		.longopts = restore_options,
	};
	int stateful = -1; /* -1: as the snapshot was taken */
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case OPT_STATEFUL:
			stateful = 1;
			break;
		case OPT_STATELESS:
			stateful = 0;
			break;
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
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (target_parse(argv[optind], &t, &err) < 0 || client_open(t.remote, &client, &err) < 0)
		return cli_fail(err);
	const char *snap = optind + 1 < argc ? argv[optind + 1] : NULL;
	char *slash = strchr(t.name, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (snap == NULL)
			snap = slash + 1;
	}
	if (snap == NULL || *snap == '\0')
		return cli_usage_error(&cmd, "Missing snapshot name");
	if (stateful < 0) {
		json_t *obj = NULL;
		if (snapshot_get(client, t.name, snap, &obj, &err) < 0)
			return cli_fail(err);
		stateful = json_is_true(json_object_get(obj, "stateful"));
		json_decref(obj);
	}
	cleanup_free char *escaped = client_escape(t.name);
	cleanup_free char *path = xasprintf("/1.0/instances/%s", escaped);
	json_t *body = json_pack("{s:s,s:b}", "restore", snap, "stateful", stateful);
	int r = client_run_operation(client, "PUT", path, body, NULL, NULL, &err);
	json_decref(body);
	return r < 0 ? cli_fail(err) : EXIT_OK;
}
