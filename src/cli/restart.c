/* ferry restart NAME...: restart instances. */
#include "cli/cli.h"
#include "common/util.h"

enum { OPT_TIMEOUT = 0x200, OPT_STATEFUL };

static const struct option stop_options[] = {
	{ "force", no_argument, NULL, 'f' },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "stateful", no_argument, NULL, OPT_STATEFUL },
	{ 0 },
};

int cmd_restart(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "restart",
		.usage = "[<remote>:]<instance> [[<remote>:]<instance>...] [flags]",
		.summary = "Restart instances",
		.help = "  -f, --force      Force the instance to stop\n"
			"      --stateful   Store the instance state (checkpoint; needs CRIU support in ferryd)\n"
			"      --timeout    Time to wait for the instance to shutdown cleanly (default -1)\n",
		.shortopts = "f",
		.longopts = stop_options,
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
	return cli_instances_action(&cmd, argc - optind, argv + optind, "restart", force, (int)timeout, stateful);
}
