#include <stdio.h>

#include "cli/cli.h"

int cmd_move(int argc, char **argv)
{
	fprintf(stderr, "Error: ferry move is not implemented yet\n");
	return EXIT_FAIL;
}
