/* Instance requests the verbs share (client side of /1.0/instances). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "cli/client.h"
#include "common/error.h"

struct instance_create_args {
	const char *name;   /* must be valid */
	const char *image;  /* alias or fingerprint (prefix) of a local image */
	json_t *config;     /* object of strings, or NULL */
	json_t *profiles;   /* array of names, or NULL: the server's default */
	bool ephemeral;
};

/* POST /1.0/instances and wait for the instance to exist. */
int instance_create(struct client *c, const struct instance_create_args *args, struct ferry_error **err);

/* PUT /1.0/instances/NAME/state and wait. timeout: seconds, -1 none. */
int instance_action(struct client *c, const char *name, const char *action, bool force, int timeout,
		    bool stateful, struct ferry_error **err);

/* GET /1.0/instances/NAME (*out: the instance object). */
int instance_get(struct client *c, const char *name, json_t **out, struct ferry_error **err);

/* A random name like LXD picks ("sharp-otter"). */
char *instance_random_name(void);
