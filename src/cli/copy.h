/* Copies and moves between servers (copy.c), shared by `ferry copy` and
 * `ferry move`. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

struct copy_remote_args {
	const char *src_remote, *src_name;
	const char *dst_remote, *dst_name;
	bool move;        /* delete the source once the target has the instance */
	bool stateless;   /* a move of a running source: stop, copy, start on the target */
	bool instance_only; /* without its snapshots */
	const char *memory; /* a live move's memory mode ("stop-and-copy", "post-copy"), or NULL: the instance's */
	json_t *config;   /* -c keys on top of the source's (may be NULL) */
	json_t *profiles; /* replaces the source's when an array (may be NULL) */
};

/* LXD's pull migration, driven by the client: the source offers an
 * operation with secrets, the target pulls from it. A copy of a running
 * instance is made while it runs, without its state; the copy is stopped.
 * A failure leaves the source as it was (restarted if it was stopped for a
 * --stateless move). */
int copy_remote(const struct copy_remote_args *args, struct ferry_error **err);
