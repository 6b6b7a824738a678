#include <stdio.h>

#include "cli/cli.h"

int cmd_restore(int argc, char **argv)
{
	fprintf(stderr, "Error: ferry restore is not implemented yet\n");
	return EXIT_FAIL;
}
