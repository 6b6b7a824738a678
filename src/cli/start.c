/* ferry start NAME...: start instances. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/instance.h"
#include "cli/target.h"
#include "common/util.h"

int cli_instances_action(const struct cli_command *cmd, int nargs, char **names, const char *action, bool force,
			 int timeout, bool stateful)
{
	int rc = cli_check_args(cmd, nargs, 1, -1);
	if (rc != 0)
		return rc;
	for (int i = 0; i < nargs; i++) {
		cleanup_error struct ferry_error *err = NULL;
		struct target t cleanup_target = { 0 };
		struct client *client cleanup_client = NULL;
		if (target_parse(names[i], &t, &err) < 0 || client_open(t.remote, &client, &err) < 0 ||
		    instance_action(client, t.name, action, force, timeout, stateful, &err) < 0) {
			if (nargs > 1)
				error_wrap(&err, "%s", t.name ? t.name : names[i]);
			rc = cli_fail(err);
			if (err && err->status != 404 && strcmp(action, "start") == 0 && !cli_quiet)
				fprintf(stderr, "Try `ferry info --show-log %s` for more info\n", names[i]);
		}
	}
	return rc;
}

/* Start one instance as lxc does: with its saved state (a stateful stop's)
 * when it has some, unless stateless; a stateless start of an instance
 * with state discards the state. */
static int start_one(const char *arg, bool stateless, struct ferry_error **err)
{
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *inst = NULL;
	if (target_parse(arg, &t, err) < 0 || client_open(t.remote, &client, err) < 0 ||
	    instance_get(client, t.name, &inst, err) < 0)
		return -1;
	bool stateful = json_is_true(json_object_get(inst, "stateful")) && !stateless;
	json_decref(inst);
	return instance_action(client, t.name, "start", false, -1, stateful, err);
}

static const struct option start_options[] = {
	{ "stateless", no_argument, NULL, 's' },
	{ 0 },
};

int cmd_start(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "start",
		.usage = "[<remote>:]<instance> [[<remote>:]<instance>...] [flags]",
		.summary = "Start instances",
		.help = "      --stateless   Ignore the instance state (a stateful stop's saved state is discarded)\n",
		.longopts = start_options,
	};
	bool stateless = false;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 's':
			stateless = true;
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int nargs = argc - optind;
	int rc = cli_check_args(&cmd, nargs, 1, -1);
	if (rc != 0)
		return rc;
	for (int i = optind; i < argc; i++) {
		cleanup_error struct ferry_error *err = NULL;
		if (start_one(argv[i], stateless, &err) < 0) {
			if (nargs > 1)
				error_wrap(&err, "%s", argv[i]);
			rc = cli_fail(err);
			if (err && err->status != 404 && !cli_quiet)
				fprintf(stderr, "Try `ferry info --show-log %s` for more info\n", argv[i]);
		}
	}
	return rc;
}
