/* checkpoint/images.c's reading of a core image's task state, on images
 * built here by the wire format's rules (two magics, a length, then a
 * CoreEntry whose field 3 holds a TaskCoreEntry with the state in its field
 * 1): a stopped process, a running one, a thread's image (no field 3),
 * fields before it of every wire type, another image's magic, and cut or
 * malformed bytes. The integration tests read CRIU's own images
 * (test_live_move.sh: a stopped process stays stopped across a move).
 * TAP output. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "../tap.h"

struct img {
	uint8_t b[512];
	size_t len;
};

static void put(struct img *m, const void *p, size_t n)
{
	memcpy(m->b + m->len, p, n);
	m->len += n;
}

static void put_u32(struct img *m, uint32_t v)
{
	put(m, &v, sizeof(v));
}

/* A core image around the entry's bytes. */
static void core_image(struct img *m, uint32_t magic, const uint8_t *entry, size_t len)
{
	m->len = 0;
	put_u32(m, 0x54564319u);
	put_u32(m, magic);
	put_u32(m, (uint32_t)len);
	put(m, entry, len);
}

int main(void)
{
	struct img m;
	/* mtype = 1 (X86_64); thread_info (field 2, bytes); tc (field 3) with
	 * task_state 3, exit_code 0, personality 0, flags 0x400000 (a varint
	 * of 3 bytes); a field 5 after it. */
	const uint8_t stopped[] = { 0x08, 0x01, 0x12, 0x03, 0xaa, 0xbb, 0xcc, 0x1a, 0x0b, 0x08, 0x03,
				    0x10, 0x00, 0x18, 0x00, 0x20, 0x80, 0x80, 0x80, 0x02, 0x2a, 0x01, 0x00 };
	core_image(&m, 0x55053847u, stopped, sizeof(stopped));
	ok(checkpoint_core_task_state(m.b, m.len) == 3, "a stopped process's image says 3");

	uint8_t alive[sizeof(stopped)];
	memcpy(alive, stopped, sizeof(alive));
	alive[10] = 0x01;
	core_image(&m, 0x55053847u, alive, sizeof(alive));
	ok(checkpoint_core_task_state(m.b, m.len) == 1, "a running process's image says 1");

	/* Fields of wire types 1 (64-bit) and 5 (32-bit) before tc are skipped. */
	const uint8_t fixed[] = { 0x08, 0x01, 0x39, 1, 2, 3, 4, 5, 6, 7, 8, 0x3d, 1, 2, 3, 4, 0x1a, 0x02, 0x08, 0x03 };
	core_image(&m, 0x55053847u, fixed, sizeof(fixed));
	ok(checkpoint_core_task_state(m.b, m.len) == 3, "fixed-size fields before tc are skipped");

	/* A thread's image: thread_core (field 5) and no tc. */
	const uint8_t thread[] = { 0x08, 0x01, 0x2a, 0x02, 0x08, 0x03 };
	core_image(&m, 0x55053847u, thread, sizeof(thread));
	ok(checkpoint_core_task_state(m.b, m.len) == -1, "a thread's image (its field 5 holds a 3 too) has no state: -1");

	core_image(&m, 0x54545454u, stopped, sizeof(stopped));
	ok(checkpoint_core_task_state(m.b, m.len) == -1, "another image's magic: -1");

	core_image(&m, 0x55053847u, stopped, sizeof(stopped));
	ok(checkpoint_core_task_state(m.b, 10) == -1, "cut within the header: -1");
	ok(checkpoint_core_task_state(m.b, m.len - 8) == -1, "cut within the entry (its length says more): -1");

	/* tc's length runs past the entry. */
	uint8_t overlong[sizeof(stopped)];
	memcpy(overlong, stopped, sizeof(overlong));
	overlong[8] = 0x40;
	core_image(&m, 0x55053847u, overlong, sizeof(overlong));
	ok(checkpoint_core_task_state(m.b, m.len) == -1, "a field longer than the entry: -1");

	/* A varint that never ends. */
	const uint8_t endless[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	core_image(&m, 0x55053847u, endless, sizeof(endless));
	ok(checkpoint_core_task_state(m.b, m.len) == -1, "a varint that never ends: -1");

	return tap_done();
}
