#include <stdio.h>

#include "cli/cli.h"

int cmd_copy(int argc, char **argv)
{
	fprintf(stderr, "Error: ferry copy is not implemented yet\n");
	return EXIT_FAIL;
}
