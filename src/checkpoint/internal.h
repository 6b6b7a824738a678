/* Shared between the checkpoint files; not part of checkpoint.h. */
#pragma once

#include "common/error.h"

/* CRIU 4.2.1, built by the project's setup script (design.md). */
#define CHECKPOINT_CRIU_BINARY "/usr/local/sbin/criu"

/* Fill *err for a failed libcriu call r: CRIU's own error lines from its log
 * and the log's path. Returns -1. */
int checkpoint_criu_error(struct ferry_error **err, const char *what, int r, const char *log_path);
