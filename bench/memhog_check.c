/* memhog_check PID MIB: is tests/checkpoint's memhog's memory intact? For
 * bench/migrate_downtime.sh, which runs it in the container (static: a
 * busybox root filesystem) before a live move and after it, above all after
 * a post-copy move, whose pages arrive after the process already runs.
 *
 * memhog fills MIB MiB it got from malloc with mem[i] = i * 0x9E3779B97F4A7C15
 * and idles; it can't check itself, so this reads its memory through
 * /proc/PID/mem (a read: nothing is dirtied). The buffer is found in the
 * anonymous mappings of /proc/PID/maps at least MIB MiB long: where, in the
 * first 64 KiB (past malloc's chunk header), 0 is followed by the multiplier.
 * Then every one of its MIB << 17 words must be i * the multiplier.
 *
 * Prints one line: "intact MIB MiB at 0xADDR" (exit 0), "corrupt: N of M
 * words differ, the first at +OFFSET: X, not Y" (exit 1), or why it could
 * not tell (exit 2). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MULT UINT64_C(0x9E3779B97F4A7C15)
#define CHUNK (1u << 20)
#define HEAD (64u << 10)

static int read_at(int fd, void *buf, size_t n, uint64_t addr)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(addr + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* The word index in the mapping at START where the buffer begins, or -1. */
static long find_start(int fd, uint64_t start, uint64_t len)
{
	static uint64_t head[HEAD / 8];
	size_t n = len < HEAD ? (size_t)len : HEAD;
	if (read_at(fd, head, n, start) < 0)
		return -1;
	for (size_t j = 0; j + 2 < n / 8; j++)
		if (head[j] == 0 && head[j + 1] == MULT && head[j + 2] == 2 * MULT)
			return (long)j;
	return -1;
}

int main(int argc, char **argv)
{
	char *end;
	long pid = argc == 3 ? strtol(argv[1], &end, 10) : 0;
	if (argc != 3 || *end != '\0' || pid <= 0) {
		fprintf(stderr, "usage: memhog_check PID MIB\n");
		return 2;
	}
	uint64_t mib = strtoull(argv[2], &end, 10);
	if (*end != '\0' || mib == 0) {
		fprintf(stderr, "memhog_check: bad size %s (MiB)\n", argv[2]);
		return 2;
	}
	uint64_t size = mib << 20, words = size / 8;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/maps", pid);
	FILE *maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%ld/mem", pid);
	int fd = open(path, O_RDONLY);
	if (maps == NULL || fd < 0) {
		printf("unknown: /proc/%ld: %s\n", pid, strerror(errno));
		return 2;
	}
	char line[512];
	uint64_t base = 0;
	while (base == 0 && fgets(line, sizeof(line), maps) != NULL) {
		uint64_t lo, hi, off;
		char perms[8];
		unsigned long inode;
		int name = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %*s %lu %n", &lo, &hi, perms, &off, &inode,
			   &name) < 5)
			continue;
		/* anonymous (no inode, no name: not [stack] and the like), readable */
		if (inode != 0 || perms[0] != 'r' || (name > 0 && line[name] != '\n' && line[name] != '\0') ||
		    hi - lo < size)
			continue;
		long j = find_start(fd, lo, hi - lo);
		if (j >= 0 && lo + (uint64_t)j * 8 + size <= hi)
			base = lo + (uint64_t)j * 8;
	}
	fclose(maps);
	if (base == 0) {
		printf("unknown: no mapping of %" PRIu64 " MiB holds memhog's pattern\n", mib);
		return 2;
	}
	uint64_t *buf = malloc(CHUNK);
	if (buf == NULL)
		return 2;
	uint64_t bad = 0, first = 0, got = 0;
	for (uint64_t at = 0; at < size; at += CHUNK) {
		size_t n = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
		if (read_at(fd, buf, n, base + at) < 0) {
			printf("unknown: reading at 0x%" PRIx64 ": %s\n", base + at, strerror(errno));
			return 2;
		}
		uint64_t i0 = at / 8;
		for (size_t k = 0; k < n / 8; k++)
			if (buf[k] != (i0 + k) * MULT) {
				if (bad++ == 0)
					first = i0 + k, got = buf[k];
			}
	}
	if (bad > 0) {
		printf("corrupt: %" PRIu64 " of %" PRIu64 " words differ, the first at +0x%" PRIx64 ": %016" PRIx64
		       ", not %016" PRIx64 "\n",
		       bad, words, first * 8, got, (uint64_t)(first * MULT));
		return 1;
	}
	printf("intact %" PRIu64 " MiB at 0x%" PRIx64 "\n", mib, base);
	return 0;
}
