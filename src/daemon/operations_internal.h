/* What the operations endpoints need beyond operations.h. */
#pragma once

#include <stdbool.h>

struct operation;

/* A websocket operation, still running, that handed out this secret (one
 * of the string values of its metadata, where LXD puts them). */
bool operation_has_secret(const struct operation *op, const char *secret);
