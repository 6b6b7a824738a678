/* Snapshot requests the verbs share (snapshot.c): delete takes "c1/s1",
 * restore and copy name snapshots too. */
#pragma once

#include <jansson.h>

#include "cli/client.h"
#include "common/error.h"

/* "/1.0/instances/INSTANCE/snapshots/SNAP", escaped (malloc'd). */
char *snapshot_api_path(const char *instance, const char *snap);
/* GET the snapshot object. */
int snapshot_get(struct client *c, const char *instance, const char *snap, json_t **out, struct ferry_error **err);
/* DELETE it and wait. */
int snapshot_delete(struct client *c, const char *instance, const char *snap, struct ferry_error **err);
