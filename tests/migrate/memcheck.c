/* A workload that checks its own memory, for post-copy moves (whose pages
 * arrive after the process runs again): fill N MiB (argument 1) with
 * values that depend on a random seed and on their offset, then go over
 * all of it again and again, reporting each round in /tmp/memcheck:
 *
 *   PID SEED ROUNDS BAD
 *
 * BAD is the number of 8-byte words that ever held the wrong value (a page
 * that came back as zeroes, or someone else's). Beside the N MiB, 64 KiB
 * that are unreadable (PROT_NONE) all but the moment of their check: a
 * dump can't read those pages from the task as it reads the others, and
 * must still carry them. Static: it runs in a busybox root filesystem.
 *
 * With a second argument, LIFE_MS: a short life instead, with no report,
 * ending on its own that many milliseconds after it started: a process
 * that exits while a post-copy move is still bringing its pages in. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define HIDDEN_BYTES (64 << 10)

static uint64_t value(uint64_t seed, size_t i)
{
	uint64_t x = seed ^ (i * 0x9E3779B97F4A7C15ull);
	x ^= x >> 31;
	return x * 0xBF58476D1CE4E5B9ull | 1; /* never zero */
}

static long life_ms; /* 0: for ever, reporting */

static void report(uint64_t seed, unsigned long rounds, unsigned long bad)
{
	if (life_ms > 0)
		return;
	FILE *f = fopen("/tmp/memcheck.new", "w");
	if (f == NULL)
		return;
	fprintf(f, "%d %016llx %lu %lu\n", (int)getpid(), (unsigned long long)seed, rounds, bad);
	fclose(f);
	rename("/tmp/memcheck.new", "/tmp/memcheck");
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 16;
	life_ms = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	size_t words = (mib << 20) / sizeof(uint64_t);
	uint64_t *mem = malloc(words * sizeof(uint64_t));
	if (mem == NULL)
		return 1;
	uint64_t seed = 0;
	FILE *r = fopen("/dev/urandom", "r");
	if (r == NULL || fread(&seed, sizeof(seed), 1, r) != 1)
		seed = (uint64_t)time(NULL) * 2654435761u;
	if (r != NULL)
		fclose(r);
	for (size_t i = 0; i < words; i++)
		mem[i] = value(seed, i);
	uint64_t *hidden = mmap(NULL, HIDDEN_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hidden == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < HIDDEN_BYTES / sizeof(uint64_t); i++)
		hidden[i] = value(~seed, i);
	if (mprotect(hidden, HIDDEN_BYTES, PROT_NONE) < 0)
		return 1;
	unsigned long rounds = 0, bad = 0;
	report(seed, rounds, bad);
	for (;;) {
		for (size_t i = 0; i < words; i++)
			if (mem[i] != value(seed, i)) {
				bad++;
				mem[i] = value(seed, i);
			}
		if (mprotect(hidden, HIDDEN_BYTES, PROT_READ | PROT_WRITE) < 0)
			return 1;
		for (size_t i = 0; i < HIDDEN_BYTES / sizeof(uint64_t); i++)
			if (hidden[i] != value(~seed, i)) {
				bad++;
				hidden[i] = value(~seed, i);
			}
		if (mprotect(hidden, HIDDEN_BYTES, PROT_NONE) < 0)
			return 1;
		rounds++;
		report(seed, rounds, bad);
		if (life_ms > 0) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= life_ms)
				return bad > 0;
		}
		usleep((life_ms > 0 ? 20 : 200) * 1000);
	}
}
