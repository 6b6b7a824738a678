/* /1.0/instances/{name}/snapshots and /1.0/instances/{name}/snapshots/{snap}:
 * list, take (stateless or stateful), show, update (description, expiry),
 * rename and delete snapshots, in LXD's shape. Restoring one is a PUT of
 * the instance ({"restore": "SNAP"}, api_instances.c). */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/instance.h"
#include "daemon/operations.h"
#include "daemon/request.h"
#include "daemon/snapshots.h"
#include "migrate/migrate.h"

static struct response *snapshots_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, &err) < 0)
		return response_from_error(err);
	db_instance_clear(&inst);
	return response_sync(request_recursion(req) > 0 ? snapshots_to_json(name) : snapshots_urls(name));
}

enum snapshot_action { SNAP_CREATE, SNAP_DELETE, SNAP_RENAME, SNAP_UPDATE };

struct snapshot_job {
	enum snapshot_action action;
	char *instance;
	char *snap;
	char *new_name;  /* rename */
	char *expires_at; /* create */
	bool stateful;
	json_t *body;    /* update */
};

static void snapshot_job_free(void *data)
{
	struct snapshot_job *job = data;
	free(job->instance);
	free(job->snap);
	free(job->new_name);
	free(job->expires_at);
	json_decref(job->body);
	free(job);
}

static int snapshot_run(struct operation *op, void *data, struct ferry_error **err)
{
	(void)op;
	struct snapshot_job *job = data;
	int r = -1;
	instance_lock(job->instance);
	switch (job->action) {
	case SNAP_CREATE:
		r = snapshot_create(job->instance, job->snap, job->stateful, job->expires_at, err);
		break;
	case SNAP_DELETE:
		r = snapshot_delete(job->instance, job->snap, err);
		break;
	case SNAP_RENAME:
		r = snapshot_rename(job->instance, job->snap, job->new_name, err);
		break;
	case SNAP_UPDATE:
		r = snapshot_update(job->instance, job->snap, job->body, err);
		break;
	}
	instance_unlock(job->instance);
	return r;
}

static struct response *respond(struct snapshot_job *job, const char *description)
{
	/* LXD lists the snapshot among the operation's resources too. */
	cleanup_free char *instance = xstrdup(job->instance);
	return instance_operation_respond(false, description, instance, NULL, snapshot_run, NULL, job,
					  snapshot_job_free);
}

static struct response *snapshots_post(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	json_t *body = req->body;
	if (body != NULL && !json_is_object(body))
		return response_error(400, "Invalid request: expected a JSON object");
	json_t *jname = json_object_get(body, "name");
	json_t *stateful = json_object_get(body, "stateful");
	if (jname != NULL && !json_is_string(jname) && !json_is_null(jname))
		return response_error(400, "Invalid name: expected a string");
	if (stateful != NULL && !json_is_boolean(stateful) && !json_is_null(stateful))
		return response_error(400, "Invalid stateful: expected a boolean");
	struct db_instance inst = { 0 };
	if (instance_get(name, &inst, &err) < 0)
		return response_from_error(err);
	db_instance_clear(&inst);
	cleanup_free char *expires_at = NULL;
	if (snapshot_parse_expiry(json_object_get(body, "expires_at"), &expires_at, &err) < 0)
		return response_from_error(err);
	const char *snap = json_string_value(jname);
	cleanup_free char *picked = NULL;
	if (snap == NULL || snap[0] == '\0')
		snap = picked = snapshot_next_name(name);
	if (snapshot_name_validate(snap, &err) < 0)
		return response_from_error(err);
	json_t *existing = NULL;
	if (snapshot_to_json(name, snap, &existing, &err) == 0) {
		json_decref(existing);
		return response_error(409, "Snapshot \"%s\" already exists", snap);
	}
	error_free(&err);
	if (json_is_true(stateful)) {
		if (!instance_is_running(name))
			return response_error(400, "Unable to create a stateful snapshot: the instance isn't running");
		if (instance_checkpoint_check(name, "snapshot --stateful", &err) < 0)
			return response_from_error(err);
	}
	struct snapshot_job *job = xcalloc(1, sizeof(*job));
	job->action = SNAP_CREATE;
	job->instance = xstrdup(name);
	job->snap = xstrdup(snap);
	job->stateful = json_is_true(stateful);
	job->expires_at = steal_pointer(&expires_at);
	return respond(job, "Snapshotting instance");
}

/* 404 unless the instance and its snapshot exist. */
static struct response *snapshot_check(const char *instance, const char *snap)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *obj = NULL;
	if (snapshot_to_json(instance, snap, &obj, &err) < 0)
		return response_from_error(err);
	json_decref(obj);
	return NULL;
}

static struct response *snapshot_get_handler(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *obj = NULL;
	if (snapshot_to_json(req->params[0], req->params[1], &obj, &err) < 0)
		return response_from_error(err);
	return response_sync(obj);
}

static struct response *snapshot_update_handler(struct request *req)
{
	if (!json_is_object(req->body))
		return response_error(400, "Invalid request: expected a JSON object");
	struct response *bad = snapshot_check(req->params[0], req->params[1]);
	if (bad != NULL)
		return bad;
	cleanup_error struct ferry_error *err = NULL;
	cleanup_free char *expiry = NULL;
	json_t *expires = json_object_get(req->body, "expires_at");
	if (expires != NULL && snapshot_parse_expiry(expires, &expiry, &err) < 0)
		return response_from_error(err);
	struct snapshot_job *job = xcalloc(1, sizeof(*job));
	job->action = SNAP_UPDATE;
	job->instance = xstrdup(req->params[0]);
	job->snap = xstrdup(req->params[1]);
	job->body = json_incref(req->body);
	return respond(job, "Updating snapshot");
}

static struct response *snapshot_post_handler(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	if (!json_is_object(req->body))
		return response_error(400, "Invalid request: expected a JSON object");
	struct response *bad = snapshot_check(req->params[0], req->params[1]);
	if (bad != NULL)
		return bad;
	if (json_is_true(json_object_get(req->body, "migration")))
		return migrate_source_snapshot_respond(req->params[0], req->params[1]);
	const char *new_name = json_string_value(json_object_get(req->body, "name"));
	if (new_name == NULL)
		return response_error(400, "Invalid request: missing the new \"name\"");
	if (snapshot_name_validate(new_name, &err) < 0)
		return response_from_error(err);
	json_t *existing = NULL;
	if (snapshot_to_json(req->params[0], new_name, &existing, &err) == 0) {
		json_decref(existing);
		return response_error(409, "Snapshot \"%s\" already exists", new_name);
	}
	struct snapshot_job *job = xcalloc(1, sizeof(*job));
	job->action = SNAP_RENAME;
	job->instance = xstrdup(req->params[0]);
	job->snap = xstrdup(req->params[1]);
	job->new_name = xstrdup(new_name);
	return respond(job, "Renaming snapshot");
}

static struct response *snapshot_delete_handler(struct request *req)
{
	struct response *bad = snapshot_check(req->params[0], req->params[1]);
	if (bad != NULL)
		return bad;
	struct snapshot_job *job = xcalloc(1, sizeof(*job));
	job->action = SNAP_DELETE;
	job->instance = xstrdup(req->params[0]);
	job->snap = xstrdup(req->params[1]);
	return respond(job, "Deleting snapshot");
}

const struct route api_instance_snapshots_routes[] = {
	{ "GET", "/1.0/instances/{name}/snapshots", snapshots_get },
	{ "POST", "/1.0/instances/{name}/snapshots", snapshots_post },
	{ "GET", "/1.0/instances/{name}/snapshots/{snap}", snapshot_get_handler },
	{ "PUT", "/1.0/instances/{name}/snapshots/{snap}", snapshot_update_handler },
	{ "PATCH", "/1.0/instances/{name}/snapshots/{snap}", snapshot_update_handler },
	{ "POST", "/1.0/instances/{name}/snapshots/{snap}", snapshot_post_handler },
	{ "DELETE", "/1.0/instances/{name}/snapshots/{snap}", snapshot_delete_handler },
	{ NULL },
};
