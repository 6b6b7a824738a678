/* Background operations, as LXD has them (/1.0/operations/ID).
 *
 * An operation runs its function on its own thread. Clients poll it, wait on
 * it (/wait), or, for class "websocket", connect to its websockets with the
 * secrets in its metadata. Every change is sent as an "operation" event. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"
#include "common/ws.h"

struct operation;

/* Runs on the operation's thread. Return < 0 with *err for failure. */
typedef int (*operation_run_fn)(struct operation *op, void *data, struct ferry_error **err);
/* For class "websocket": a client connected with a secret; runs on the
 * connection's thread and owns ws. Return when the connection is done. */
typedef void (*operation_connect_fn)(struct operation *op, void *data, const char *secret, struct ws *ws);

/* OPERATION_TOKEN: a trust token (POST /1.0/certificates {"token":true});
 * it runs until used, revoked (cancelled) or expired. */
enum operation_class { OPERATION_TASK, OPERATION_WEBSOCKET, OPERATION_TOKEN };

/* description: "Starting instance"; resources: {"instances": ["/1.0/instances/c1"]} (stolen; may be NULL).
 * The operation is created "Pending" and does not run until operation_start(). */
struct operation *operation_new(enum operation_class class, const char *description, json_t *resources,
				operation_run_fn run, operation_connect_fn connect, void *data,
				void (*free_data)(void *data));
/* Start the thread (status "Running"). */
void operation_start(struct operation *op);

const char *operation_id(const struct operation *op);
/* Replace the metadata (stolen), e.g. {"fds": {"0": secret, ...}} or progress; sends an event. */
void operation_set_metadata(struct operation *op, json_t *metadata);
/* Add/replace one key of the metadata (value stolen). */
void operation_set_metadata_key(struct operation *op, const char *key, json_t *value);
/* Block until a websocket operation's clients are all connected, up to timeout_ms. */
bool operation_cancelled(const struct operation *op);

/* Lookup by id, with a reference; operation_unref when done. */
struct operation *operation_get(const char *id);
void operation_unref(struct operation *op);
/* The LXD operation object: id, class, description, created_at, updated_at,
 * status, status_code, resources, metadata, may_cancel, err, location. */
json_t *operation_to_json(const struct operation *op);
/* All ids, grouped by status as GET /1.0/operations returns them. */
json_t *operations_list_json(bool recursive);
/* Wait until done or timeout_s (< 0: forever). Returns true if done. */
bool operation_wait(struct operation *op, int timeout_s);
/* Cancel a websocket operation's pending connections / mark cancelled; a
 * token operation is revoked (its function sees operation_wait_cancel). */
int operation_cancel(struct operation *op, struct ferry_error **err);
/* For an operation's function: block until the operation is cancelled
 * (true) or timeout_ms pass (false). */
bool operation_wait_cancel(struct operation *op, long long timeout_ms);
/* A connection to /1.0/operations/ID/websocket?secret=S: dispatch to the
 * operation's connect function. Returns < 0 if the secret is unknown. */
int operation_websocket_connect(struct operation *op, const char *secret, struct ws *ws);
