/* ferry stop NAME...: stop instances (--force kills them, --stateful
 * checkpoints them). ferry restart shares the parsing (restart.c). */
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"

enum { OPT_TIMEOUT = 0x200, OPT_STATEFUL };

static const struct option stop_options[] = {
	{ "force", no_argument, NULL, 'f' },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "stateful", no_argument, NULL, OPT_STATEFUL },
	{ 0 },
};

static const struct option restart_options[] = {
	{ "force", no_argument, NULL, 'f' },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ 0 },
};

/* "stop" or "restart": the same flags, but only a stop can be stateful. */
int cli_stop_or_restart(int argc, char **argv, const char *action)
{
	bool is_stop = strcmp(action, "stop") == 0;
	const struct cli_command cmd = {
		.name = action,
		.usage = "[<remote>:]<instance> [[<remote>:]<instance>...] [flags]",
		.summary = is_stop ? "Stop instances" : "Restart instances",
		.help = is_stop ? "  -f, --force      Force the instance to stop\n"
				  "      --stateful   Store the instance state (checkpoint; needs CRIU support in ferryd)\n"
				  "      --timeout    Time to wait for the instance to shutdown cleanly (default -1)\n"
				: "  -f, --force      Force the instance to restart\n"
				  "      --timeout    Time to wait for the instance to shutdown cleanly (default -1)\n",
		.shortopts = "f",
		.longopts = is_stop ? stop_options : restart_options,
	};
	bool force = false, stateful = false;
	long long timeout = -1;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		cleanup_error struct ferry_error *err = NULL;
		switch (c) {
		case 'f':
			force = true;
			break;
		case OPT_TIMEOUT:
			if (cli_parse_int(optarg, &timeout, &err) < 0)
				return cli_usage_error(&cmd, "%s", err->msg);
			break;
		case OPT_STATEFUL:
			stateful = true;
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	return cli_instances_action(&cmd, argc - optind, argv + optind, action, force, (int)timeout, stateful);
}

int cmd_stop(int argc, char **argv)
{
	return cli_stop_or_restart(argc, argv, "stop");
}
