#include <stdio.h>

#include "cli/cli.h"

int cmd_profile(int argc, char **argv)
{
	fprintf(stderr, "Error: ferry profile is not implemented yet\n");
	return EXIT_FAIL;
}
