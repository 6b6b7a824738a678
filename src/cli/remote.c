#include <stdio.h>

#include "cli/cli.h"

int cmd_remote(int argc, char **argv)
{
	fprintf(stderr, "Error: ferry remote is not implemented yet\n");
	return EXIT_FAIL;
}
