/* ferry-monitor: a container's monitor (runtime/monitor.c) as a program of
 * its own, which ferryd starts from beside itself for every start and
 * restore. It links the runtime's libraries alone: it starts in ~4 ms here,
 * where ferryd's own binary, with its 38 libraries, took ~12 ms. */
#include <stdio.h>
#include <string.h>

#include "runtime/runtime.h"

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "__monitor") == 0)
		runtime_monitor_main(argv[2]);
	if (argc == 2 && strcmp(argv[1], "__spare") == 0)
		runtime_monitor_spare_main();
	fprintf(stderr, "usage: ferry-monitor __monitor DIR | __spare (ferryd starts it)\n");
	return 2;
}
