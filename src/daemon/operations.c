/* Background operations as LXD has them (lxd/operations): a uuid, a class,
 * a status that moves Pending -> Running -> Success/Failure/Cancelled, and
 * metadata that clients poll, wait on, or receive as "operation" events.
 * Finished operations stay listed for a while, then are dropped. */
#include "daemon/operations.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/events.h"
#include "daemon/operations_internal.h"

/* How long a finished operation can still be fetched. */
#define OPERATION_KEEP_MS (5 * 60 * 1000)

enum operation_status { OP_PENDING, OP_RUNNING, OP_SUCCESS, OP_FAILURE, OP_CANCELLED };

static const struct {
	const char *name;
	const char *list_key; /* key of GET /1.0/operations */
	int code;
} status_info[] = {
	[OP_PENDING] = { "Pending", "pending", 105 },
	[OP_RUNNING] = { "Running", "running", 103 },
	[OP_SUCCESS] = { "Success", "success", 200 },
	[OP_FAILURE] = { "Failure", "failure", 400 },
	[OP_CANCELLED] = { "Cancelled", "cancelled", 401 },
};

struct operation {
	char id[37];
	enum operation_class class;
	char *description;
	struct timespec created_at, updated_at;
	enum operation_status status;
	json_t *resources;
	json_t *metadata;
	char *err;
	bool cancelled;
	long long finished_ms;        /* monotonic; 0 while not finished */
	operation_run_fn run;
	operation_connect_fn connect;
	void *data;
	void (*free_data)(void *data);
	unsigned refs;                /* the list, the thread, each operation_get */
	bool listed;
	struct operation *next;
};

/* One lock for the list and every operation's fields: operations change
 * rarely and briefly. */
static pthread_mutex_t ops_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ops_changed = PTHREAD_COND_INITIALIZER;
static struct operation *ops;

static void operation_free(struct operation *op)
{
	if (op->free_data != NULL)
		op->free_data(op->data);
	free(op->description);
	json_decref(op->resources);
	json_decref(op->metadata);
	free(op->err);
	free(op);
}

static void operation_unref_locked(struct operation *op)
{
	if (--op->refs == 0)
		operation_free(op);
}

/* Drop finished operations older than OPERATION_KEEP_MS. Called with ops_mutex held. */
static void operations_expire_locked(void)
{
	long long now = now_ms();
	struct operation **pp = &ops;
	while (*pp != NULL) {
		struct operation *op = *pp;
		if (op->finished_ms != 0 && now - op->finished_ms > OPERATION_KEEP_MS) {
			*pp = op->next;
			op->listed = false;
			operation_unref_locked(op);
		} else {
			pp = &op->next;
		}
	}
}

static const char *operation_class_name(enum operation_class class)
{
	switch (class) {
	case OPERATION_WEBSOCKET:
		return "websocket";
	case OPERATION_TOKEN:
		return "token";
	case OPERATION_TASK:
		break;
	}
	return "task";
}

static json_t *operation_to_json_locked(const struct operation *op)
{
	cleanup_free char *created = time_rfc3339(&op->created_at);
	cleanup_free char *updated = time_rfc3339(&op->updated_at);
	json_t *resources = op->resources ? json_deep_copy(op->resources) : json_object();
	json_t *metadata = op->metadata ? json_deep_copy(op->metadata) : json_null();
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:o, s:b, s:s, s:s}", "id", op->id, "class",
			 operation_class_name(op->class), "description", op->description,
			 "created_at", created, "updated_at", updated, "status", status_info[op->status].name,
			 "status_code", status_info[op->status].code, "resources", resources, "metadata", metadata,
			 "may_cancel", op->class != OPERATION_TASK, "err", op->err ? op->err : "", "location",
			 "none");
}

/* Record a change: new updated_at, wake waiters, send the event. Called with
 * ops_mutex held; the event goes out after it is released. */
static json_t *operation_changed_locked(struct operation *op)
{
	clock_gettime(CLOCK_REALTIME, &op->updated_at);
	pthread_cond_broadcast(&ops_changed);
	return operation_to_json_locked(op);
}

/* A random (version 4) UUID, as LXD's operation ids are. */
static void operation_new_uuid(char out[37])
{
	unsigned char b[16];
	if (gnutls_rnd(GNUTLS_RND_NONCE, b, sizeof(b)) < 0)
		abort();
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

struct operation *operation_new(enum operation_class class, const char *description, json_t *resources,
				operation_run_fn run, operation_connect_fn connect, void *data,
				void (*free_data)(void *data))
{
	struct operation *op = xcalloc(1, sizeof(*op));
	operation_new_uuid(op->id);
	op->class = class;
	op->description = xstrdup(description);
	clock_gettime(CLOCK_REALTIME, &op->created_at);
	op->updated_at = op->created_at;
	op->status = OP_PENDING;
	op->resources = resources;
	op->run = run;
	op->connect = connect;
	op->data = data;
	op->free_data = free_data;
	/* The list's reference, and the caller's: operation_new hands out a
	 * reference like operation_get, released with operation_unref. */
	op->refs = 2;
	op->listed = true;
	pthread_mutex_lock(&ops_mutex);
	operations_expire_locked();
	op->next = ops;
	ops = op;
	json_t *event = operation_to_json_locked(op);
	pthread_mutex_unlock(&ops_mutex);
	events_send("operation", event);
	log_debug("operation %s created: %s", op->id, description);
	return op;
}

static void *operation_thread(void *arg)
{
	struct operation *op = arg;
	cleanup_error struct ferry_error *err = NULL;
	int r = op->run != NULL ? op->run(op, op->data, &err) : 0;
	pthread_mutex_lock(&ops_mutex);
	if (op->cancelled) {
		op->status = OP_CANCELLED;
		free(op->err);
		op->err = xstrdup(r < 0 && err != NULL ? err->msg : "Operation cancelled");
	} else if (r < 0) {
		op->status = OP_FAILURE;
		free(op->err);
		op->err = xstrdup(err != NULL ? err->msg : "Operation failed");
	} else {
		op->status = OP_SUCCESS;
	}
	op->finished_ms = now_ms();
	json_t *event = operation_changed_locked(op);
	log_debug("operation %s (%s): %s%s%s", op->id, op->description, status_info[op->status].name,
		  op->err ? ": " : "", op->err ? op->err : "");
	operation_unref_locked(op); /* the thread's */
	pthread_mutex_unlock(&ops_mutex);
	events_send("operation", event);
	return NULL;
}

void operation_start(struct operation *op)
{
	pthread_mutex_lock(&ops_mutex);
	if (op->status != OP_PENDING) {
		/* cancelled before it started */
		pthread_mutex_unlock(&ops_mutex);
		return;
	}
	op->status = OP_RUNNING;
	op->refs++; /* the thread's */
	json_t *event = operation_changed_locked(op);
	pthread_mutex_unlock(&ops_mutex);
	events_send("operation", event);

	pthread_t thread;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&thread, &attr, operation_thread, op);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		pthread_mutex_lock(&ops_mutex);
		op->status = OP_FAILURE;
		op->err = xasprintf("cannot start the operation's thread: %s", strerror(r));
		op->finished_ms = now_ms();
		event = operation_changed_locked(op);
		operation_unref_locked(op);
		pthread_mutex_unlock(&ops_mutex);
		events_send("operation", event);
	}
}

const char *operation_id(const struct operation *op)
{
	return op->id;
}

void operation_set_metadata(struct operation *op, json_t *metadata)
{
	pthread_mutex_lock(&ops_mutex);
	json_decref(op->metadata);
	op->metadata = metadata;
	json_t *event = operation_changed_locked(op);
	pthread_mutex_unlock(&ops_mutex);
	events_send("operation", event);
}

void operation_set_metadata_key(struct operation *op, const char *key, json_t *value)
{
	pthread_mutex_lock(&ops_mutex);
	if (!json_is_object(op->metadata)) {
		json_decref(op->metadata);
		op->metadata = json_object();
	}
	json_object_set_new(op->metadata, key, value);
	json_t *event = operation_changed_locked(op);
	pthread_mutex_unlock(&ops_mutex);
	events_send("operation", event);
}

bool operation_cancelled(const struct operation *op)
{
	pthread_mutex_lock(&ops_mutex);
	bool c = op->cancelled;
	pthread_mutex_unlock(&ops_mutex);
	return c;
}

struct operation *operation_get(const char *id)
{
	pthread_mutex_lock(&ops_mutex);
	operations_expire_locked();
	struct operation *op;
	for (op = ops; op != NULL; op = op->next)
		if (strcmp(op->id, id) == 0)
			break;
	if (op != NULL)
		op->refs++;
	pthread_mutex_unlock(&ops_mutex);
	return op;
}

void operation_unref(struct operation *op)
{
	if (op == NULL)
		return;
	pthread_mutex_lock(&ops_mutex);
	operation_unref_locked(op);
	pthread_mutex_unlock(&ops_mutex);
}

json_t *operation_to_json(const struct operation *op)
{
	pthread_mutex_lock(&ops_mutex);
	json_t *j = operation_to_json_locked(op);
	pthread_mutex_unlock(&ops_mutex);
	return j;
}

json_t *operations_list_json(bool recursive)
{
	json_t *groups = json_object();
	pthread_mutex_lock(&ops_mutex);
	operations_expire_locked();
	for (struct operation *op = ops; op != NULL; op = op->next) {
		const char *key = status_info[op->status].list_key;
		json_t *group = json_object_get(groups, key);
		if (group == NULL) {
			group = json_array();
			json_object_set_new(groups, key, group);
		}
		if (recursive)
			json_array_append_new(group, operation_to_json_locked(op));
		else
			json_array_append_new(group, json_sprintf("/1.0/operations/%s", op->id));
	}
	pthread_mutex_unlock(&ops_mutex);
	return groups;
}

bool operation_wait(struct operation *op, int timeout_s)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_s;
	pthread_mutex_lock(&ops_mutex);
	while (op->finished_ms == 0) {
		if (timeout_s < 0) {
			pthread_cond_wait(&ops_changed, &ops_mutex);
		} else if (pthread_cond_timedwait(&ops_changed, &ops_mutex, &deadline) == ETIMEDOUT) {
			break;
		}
	}
	bool done = op->finished_ms != 0;
	pthread_mutex_unlock(&ops_mutex);
	return done;
}

int operation_cancel(struct operation *op, struct ferry_error **err)
{
	pthread_mutex_lock(&ops_mutex);
	if (op->class == OPERATION_TASK) {
		pthread_mutex_unlock(&ops_mutex);
		return error_bad_request(err, "This operation can't be cancelled");
	}
	if (op->finished_ms != 0) {
		pthread_mutex_unlock(&ops_mutex);
		return error_bad_request(err, "This operation is already done");
	}
	op->cancelled = true;
	json_t *event = NULL;
	if (op->status == OP_PENDING) {
		op->status = OP_CANCELLED;
		op->err = xstrdup("Operation cancelled");
		op->finished_ms = now_ms();
		event = operation_changed_locked(op);
	}
	/* A running one ends when its function sees operation_cancelled(). */
	pthread_cond_broadcast(&ops_changed);
	pthread_mutex_unlock(&ops_mutex);
	if (event != NULL)
		events_send("operation", event);
	return 0;
}

bool operation_wait_cancel(struct operation *op, long long timeout_ms)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ops_mutex);
	while (!op->cancelled)
		if (pthread_cond_timedwait(&ops_changed, &ops_mutex, &deadline) == ETIMEDOUT)
			break;
	bool cancelled = op->cancelled;
	pthread_mutex_unlock(&ops_mutex);
	return cancelled;
}

/* Is secret one of the string values of the metadata (LXD puts them under
 * "fds", migration directly at the top)? */
static bool metadata_has_secret(const json_t *value, const char *secret, int depth)
{
	if (json_is_string(value))
		return strcmp(json_string_value(value), secret) == 0;
	if (!json_is_object(value) || depth > 2)
		return false;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)value, key, v)
		if (metadata_has_secret(v, secret, depth + 1))
			return true;
	return false;
}

bool operation_has_secret(const struct operation *op, const char *secret)
{
	pthread_mutex_lock(&ops_mutex);
	bool known = op->class == OPERATION_WEBSOCKET && op->connect != NULL && secret != NULL &&
		     metadata_has_secret(op->metadata, secret, 0) && op->finished_ms == 0;
	pthread_mutex_unlock(&ops_mutex);
	return known;
}

int operation_websocket_connect(struct operation *op, const char *secret, struct ws *ws)
{
	if (!operation_has_secret(op, secret))
		return -1;
	op->connect(op, op->data, secret, ws);
	return 0;
}
