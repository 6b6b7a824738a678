/* ferry launch IMAGE [NAME]: init, then start. */
#include "cli/cli.h"

int cmd_launch(int argc, char **argv)
{
	return cli_create_instance(argc, argv, true);
}
