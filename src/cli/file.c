/* ferry file push|pull: files in and out of instances. */
#include "cli/cli.h"

int file_push(int argc, char **argv);
int file_pull(int argc, char **argv);

int cmd_file(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "pull", NULL, "Pull files from instances", file_pull },
		{ "push", NULL, "Push files into instances", file_push },
		{ NULL },
	};
	return cli_run_subcommand("file", subs, argc, argv);
}
