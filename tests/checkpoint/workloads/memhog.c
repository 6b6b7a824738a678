/* The benchmark's workload: dirty N MiB of anonymous memory (argument 1),
 * report /tmp/memhog.ready, then idle. Every page holds different bytes, so
 * nothing about the memory is special to CRIU (no zero pages to skip). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 0;
	size_t size = mib << 20;
	uint64_t *mem = size > 0 ? malloc(size) : NULL;
	if (size > 0 && mem == NULL)
		return 1;
	for (size_t i = 0; i < size / sizeof(uint64_t); i++)
		mem[i] = i * 0x9E3779B97F4A7C15ull;
	FILE *f = fopen("/tmp/memhog.ready", "w");
	if (f != NULL) {
		fprintf(f, "%zu\n", mib);
		fclose(f);
	}
	for (;;)
		pause();
}
