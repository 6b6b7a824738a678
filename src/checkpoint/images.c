/* What ferry reads in CRIU's images itself: which processes were stopped
 * (SIGSTOP, a shell's ^Z) when they were dumped. A restore that leaves
 * every task stopped (leave_stopped) loses that difference, and the resume
 * must not continue them.
 *
 * A core image (core-PID.img) is two 32-bit magics, then one entry: a
 * 32-bit length and a CoreEntry in protobuf's wire format, whose field 3
 * (tc, a TaskCoreEntry: a process's main thread only) holds the task's
 * state in its field 1 (CRIU's images/core.proto). Only those two fields
 * are read; everything else is skipped by its wire type. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "common/util.h"

#define IMG_COMMON_MAGIC 0x54564319u
#define IMG_CORE_MAGIC 0x55053847u
#define CORE_FIELD_TC 3
#define TC_FIELD_TASK_STATE 1
#define TASK_STATE_STOPPED 3
#define CORE_IMAGE_MAX (1 << 20)

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* Field number `field` of the message in [p, end): its varint value
 * (wire type 0) or its bytes (wire type 2). Returns false when absent or
 * malformed. */
static bool find_field(const uint8_t *p, const uint8_t *end, unsigned field, unsigned want_type, uint64_t *value,
		       const uint8_t **sub, size_t *sub_len)
{
	while (p < end) {
		uint64_t key, v;
		if (!read_varint(&p, end, &key))
			return false;
		unsigned type = (unsigned)(key & 7);
		switch (type) {
		case 0:
			if (!read_varint(&p, end, &v))
				return false;
			if ((key >> 3) == field && want_type == 0) {
				*value = v;
				return true;
			}
			break;
		case 1:
			if (end - p < 8)
				return false;
			p += 8;
			break;
		case 2:
			if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
				return false;
			if ((key >> 3) == field && want_type == 2) {
				*sub = p;
				*sub_len = (size_t)v;
				return true;
			}
			p += v;
			break;
		case 5:
			if (end - p < 4)
				return false;
			p += 4;
			break;
		default:
			return false;
		}
	}
	return false;
}

/* The task state in a core image's bytes: 1 alive, 3 stopped; -1 when
 * the image holds none (a thread's) or is not a core image. */
int checkpoint_core_task_state(const void *img, size_t len)
{
	const uint8_t *p = img, *end = p + len;
	uint32_t head[3];
	if (len < sizeof(head))
		return -1;
	memcpy(head, p, sizeof(head));
	if (head[0] != IMG_COMMON_MAGIC || head[1] != IMG_CORE_MAGIC || head[2] > len - sizeof(head))
		return -1;
	p += sizeof(head);
	end = p + head[2];
	const uint8_t *tc;
	size_t tc_len;
	uint64_t state;
	if (!find_field(p, end, CORE_FIELD_TC, 2, NULL, &tc, &tc_len) ||
	    !find_field(tc, tc + tc_len, TC_FIELD_TASK_STATE, 0, &state, NULL, NULL))
		return -1;
	return (int)state;
}

int checkpoint_images_stopped(const char *images_dir, pid_t **vpids, size_t *n, struct ferry_error **err)
{
	*vpids = NULL;
	*n = 0;
	DIR *d = opendir(images_dir);
	if (d == NULL)
		return error_sys(err, errno, "open %s", images_dir);
	size_t cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int pid, end = 0;
		if (sscanf(e->d_name, "core-%d.img%n", &pid, &end) != 1 || e->d_name[end] != '\0')
			continue;
		cleanup_free char *path = xasprintf("%s/%s", images_dir, e->d_name);
		cleanup_free char *data = NULL;
		size_t len = 0;
		cleanup_error struct ferry_error *read_err = NULL;
		if (file_read(path, &data, &len, &read_err) < 0 || len > CORE_IMAGE_MAX) {
			closedir(d);
			free(*vpids);
			*vpids = NULL;
			*n = 0;
			return error_set(err, 500, EIO, "read %s: %s", path, read_err ? read_err->msg : "too large");
		}
		if (checkpoint_core_task_state(data, len) != TASK_STATE_STOPPED)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 8;
			*vpids = realloc(*vpids, cap * sizeof(pid_t));
			if (*vpids == NULL)
				abort();
		}
		(*vpids)[(*n)++] = (pid_t)pid;
	}
	closedir(d);
	return 0;
}
