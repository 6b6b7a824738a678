/* ferry restart NAME...: restart instances (the flags of stop, in stop.c). */
#include "cli/cli.h"

int cmd_restart(int argc, char **argv)
{
	return cli_stop_or_restart(argc, argv, "restart");
}
