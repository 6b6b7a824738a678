/* checkpoint/affinity.c's file of threads' CPUs: written and read back
 * (one CPU, ranges, a CPU past 64, several threads), what it reads (blank
 * lines), and what it refuses (no CPUs, a bad separator, a CPU out of range,
 * a tid that is no number). The integration test moves a container with
 * pinned threads (test_live_move.sh). TAP output. */
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "../tap.h"

static struct checkpoint_affinity thread(pid_t vtid, const int *cpus, size_t n)
{
	struct checkpoint_affinity a = { .vtid = vtid };
	CPU_ZERO(&a.cpus);
	for (size_t i = 0; i < n; i++)
		CPU_SET(cpus[i], &a.cpus);
	return a;
}

static bool parses_to(const char *text, const struct checkpoint_affinity *want, size_t n_want)
{
	struct checkpoint_affinity *got = NULL;
	size_t n = 0;
	if (checkpoint_affinity_parse(text, &got, &n) < 0)
		return false;
	bool same = n == n_want;
	for (size_t i = 0; same && i < n; i++)
		same = got[i].vtid == want[i].vtid && CPU_EQUAL(&got[i].cpus, &want[i].cpus);
	free(got);
	return same;
}

static bool refused(const char *text)
{
	struct checkpoint_affinity *got = (struct checkpoint_affinity *)1;
	size_t n = 7;
	return checkpoint_affinity_parse(text, &got, &n) < 0 && got == NULL && n == 0;
}

int main(void)
{
	struct checkpoint_affinity a[3] = {
		thread(1, (const int[]){ 0 }, 1),
		thread(42, (const int[]){ 1, 2, 3, 7 }, 4),
		thread(4194304, (const int[]){ 0, 65, 1023 }, 3),
	};
	char *text = checkpoint_affinity_format(a, 3);
	ok(strcmp(text, "1 0\n42 1,2,3,7\n4194304 0,65,1023\n") == 0, "three threads are written one a line");
	ok(parses_to(text, a, 3), "and read back as they were");
	free(text);

	text = checkpoint_affinity_format(a, 0);
	ok(strcmp(text, "") == 0, "no thread: an empty text");
	ok(parses_to(text, NULL, 0), "which reads as no thread");
	free(text);

	ok(parses_to("\n42 1,2,3,7\n\n", &a[1], 1), "blank lines are passed over");
	ok(parses_to("42 1,2,3,7", &a[1], 1), "the last line may lack its newline");

	ok(refused("42\n"), "a thread without CPUs is refused");
	ok(refused("42 \n"), "... or with an empty list");
	ok(refused("42 1;2\n"), "a bad separator is refused");
	ok(refused("42 1,\n"), "a trailing comma is refused");
	ok(refused("42 1024\n"), "a CPU past CPU_SETSIZE is refused");
	ok(refused("42 -1\n"), "a negative CPU is refused");
	ok(refused("x 1\n"), "a tid that is no number is refused");
	ok(refused("0 1\n"), "tid 0 is refused");
	ok(refused("1 0\n42 1 2\n"), "one bad line refuses the whole file");
	return tap_done();
}
