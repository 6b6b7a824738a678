/* ferry profile device … and ferry config device …: the devices of a
 * profile or of an instance (its own, not those its profiles give it). */
#pragma once

#include <jansson.h>

#include "common/error.h"

struct client;

struct device_owner {
	const char *group;  /* "profile device", "config device" */
	const char *noun;   /* "profile", "instance": in usage and messages */
	/* A writable copy of the owner with its "devices" object, and back. */
	int (*fetch)(struct client *client, const char *name, json_t **writable, struct ferry_error **err);
	int (*store)(struct client *client, const char *name, json_t *writable, struct ferry_error **err);
};

/* add, list, remove, show: argv as cli_run_subcommand takes it. */
int cli_devices(const struct device_owner *owner, int argc, char **argv);
