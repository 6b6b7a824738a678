#include <stdio.h>

#include "cli/cli.h"

int cmd_snapshot(int argc, char **argv)
{
	fprintf(stderr, "Error: ferry snapshot is not implemented yet\n");
	return EXIT_FAIL;
}
