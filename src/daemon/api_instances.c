/* /1.0/instances and /1.0/instances/{name}: list, create (from an image,
 * empty, or as a local copy), show, update, restore a snapshot, rename,
 * delete. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/db.h"
#include "daemon/instance.h"
#include "daemon/operations.h"
#include "daemon/request.h"
#include "daemon/snapshots.h"
#include "migrate/migrate.h"

/* The value of a dotted field of an instance object: "name",
 * "config.user.x" (the rest of the path is one key), "state.status". */
static const char *field_value(json_t *obj, const char *field)
{
	const char *dot = strchr(field, '.');
	if (dot == NULL)
		return json_string_value(json_object_get(obj, field));
	cleanup_free char *head = strndup(field, (size_t)(dot - field));
	json_t *sub = json_object_get(obj, head);
	json_t *direct = json_object_get(sub, dot + 1);
	if (json_is_string(direct))
		return json_string_value(direct);
	return field_value(sub, dot + 1);
}

/* LXD's ?filter=: "FIELD eq VALUE" terms joined by "and" (what lxc list
 * sends for key=value arguments). */
static int filter_match(json_t *obj, const char *filter, bool *match, struct ferry_error **err)
{
	cleanup_free char *copy = xstrdup(filter);
	char *save = NULL;
	char *words[3];
	int n = 0;
	*match = true;
	for (char *w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
		if (n == 0 && strcasecmp(w, "and") == 0)
			continue;
		words[n++] = w;
		if (n < 3)
			continue;
		n = 0;
		bool eq = strcasecmp(words[1], "eq") == 0, ne = strcasecmp(words[1], "ne") == 0;
		if (!eq && !ne)
			return error_bad_request(err, "Invalid filter \"%s\": only \"eq\" and \"ne\" are supported", filter);
		const char *v = field_value(obj, words[0]);
		bool same = v != NULL && strcasecmp(v, words[2]) == 0;
		if (same != eq)
			*match = false;
	}
	if (n != 0)
		return error_bad_request(err, "Invalid filter \"%s\"", filter);
	return 0;
}

static struct response *instances_get(struct request *req)
{
	int recursion = request_recursion(req);
	const char *filter = request_query(req, "filter");
	if (filter != NULL && filter[0] == '\0')
		filter = NULL;
	json_t *names = NULL;
	cleanup_error struct ferry_error *err = NULL;
	if (db_instance_list(daemon_ctx->db, &names, &err) < 0)
		return response_from_error(err);
	json_t *out = json_array();
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n) {
		const char *name = json_string_value(n);
		if (filter != NULL) {
			json_t *obj = NULL;
			bool match = false;
			cleanup_error struct ferry_error *e = NULL;
			if (instance_to_json(name, 2, &obj, &e) < 0)
				continue;
			int r = filter_match(obj, filter, &match, &err);
			json_decref(obj);
			if (r < 0) {
				json_decref(names);
				json_decref(out);
				return response_from_error(err);
			}
			if (!match)
				continue;
		}
		if (recursion == 0) {
			cleanup_free char *url = instance_url(name);
			json_array_append_new(out, json_string(url));
			continue;
		}
		json_t *obj = NULL;
		cleanup_error struct ferry_error *e = NULL;
		/* Deleted between the list and here: leave it out. */
		if (instance_to_json(name, recursion, &obj, &e) == 0)
			json_array_append_new(out, obj);
	}
	json_decref(names);
	return response_sync(out);
}

struct create_job {
	struct instance_create_args args;
	char *name, *source_type, *alias, *fingerprint, *description;
	json_t *config, *devices, *profiles;
	bool start;
};

static void create_job_free(void *data)
{
	struct create_job *job = data;
	free(job->name);
	free(job->source_type);
	free(job->alias);
	free(job->fingerprint);
	free(job->description);
	json_decref(job->config);
	json_decref(job->devices);
	json_decref(job->profiles);
	free(job);
}

static int create_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct create_job *job = data;
	instance_lock(job->name);
	int r = instance_create(&job->args, err);
	if (r == 0 && job->start)
		r = instance_start(job->name, err);
	instance_unlock(job->name);
	return r;
}

struct copy_job {
	struct instance_copy_args args;
	char *name, *source, *description;
	json_t *config, *devices, *profiles;
};

static void copy_job_free(void *data)
{
	struct copy_job *job = data;
	free(job->name);
	free(job->source);
	free(job->description);
	json_decref(job->config);
	json_decref(job->devices);
	json_decref(job->profiles);
	free(job);
}

static int copy_run(struct operation *op, void *data, struct ferry_error **err)
{
	(void)op;
	struct copy_job *job = data;
	instance_lock(job->name);
	int r = instance_copy(&job->args, err);
	instance_unlock(job->name);
	return r;
}

static char *json_strdup(json_t *obj, const char *key)
{
	return xstrdup(json_string_value(json_object_get(obj, key)));
}

/* A free name when the client gives none ("lxc launch IMAGE"). */
static char *random_instance_name(void)
{
	cleanup_free char *secret = instance_new_secret();
	return xasprintf("ferry-%.6s", secret);
}

static struct response *instances_post(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *body = req->body;
	if (!json_is_object(body))
		return response_error(400, "Invalid request: expected a JSON object");
	json_t *source = json_object_get(body, "source");
	if (source != NULL && !json_is_object(source))
		return response_error(400, "Invalid source: expected an object");
	const char *type = json_string_value(json_object_get(source, "type"));
	if (type == NULL || type[0] == '\0')
		type = "none";
	if (strcmp(type, "migration") == 0)
		return migrate_target_respond(body); /* pulled from another ferryd: src/migrate */
	if (strcmp(type, "image") != 0 && strcmp(type, "none") != 0 && strcmp(type, "copy") != 0)
		return response_error(400, "Unknown source type %s", type);
	const char *itype = json_string_value(json_object_get(body, "type"));
	if (itype != NULL && itype[0] != '\0' && strcmp(itype, "container") != 0)
		return response_error(400, "Instance type not supported \"%s\"", itype);
	json_t *name = json_object_get(body, "name");
	if (name != NULL && !json_is_string(name))
		return response_error(400, "Invalid name: expected a string");
	json_t *ephemeral = json_object_get(body, "ephemeral");
	if (ephemeral != NULL && !json_is_boolean(ephemeral))
		return response_error(400, "Invalid ephemeral: expected a boolean");

	if (strcmp(type, "copy") == 0) {
		/* LXD's local copy: {"source": {"type": "copy", "source": "c1" or "c1/s1"}}. */
		json_t *profiles = json_object_get(body, "profiles");
		struct copy_job *cj = xcalloc(1, sizeof(*cj));
		cj->name = json_strdup(body, "name");
		if (cj->name == NULL || cj->name[0] == '\0') {
			free(cj->name);
			cj->name = random_instance_name();
		}
		cj->source = json_strdup(source, "source");
		cj->description = json_strdup(body, "description");
		if (cj->description != NULL && cj->description[0] == '\0') {
			free(cj->description);
			cj->description = NULL;
		}
		/* lxc sends the source's writable fields (config without volatile.*). */
		json_t *config = json_object_get(body, "config");
		json_t *devices = json_object_get(body, "devices");
		cj->config = json_is_object(config) && json_object_size(config) > 0 ? json_incref(config) : NULL;
		cj->devices = json_is_object(devices) && json_object_size(devices) > 0 ? json_incref(devices) : NULL;
		cj->profiles = json_is_array(profiles) ? json_incref(profiles) : NULL;
		cj->args = (struct instance_copy_args){
			.name = cj->name,
			.source = cj->source,
			.config = cj->config,
			.devices = cj->devices,
			.profiles = cj->profiles,
			.description = cj->description,
			.ephemeral = json_is_true(ephemeral),
			.instance_only = json_is_true(json_object_get(source, "instance_only")),
		};
		if (instance_copy_check(&cj->args, &err) < 0) {
			copy_job_free(cj);
			return response_from_error(err);
		}
		cleanup_free char *copy_name = xstrdup(cj->name);
		return instance_operation_respond(false, "Creating instance", copy_name, NULL, copy_run, NULL, cj,
						  copy_job_free);
	}

	struct create_job *job = xcalloc(1, sizeof(*job));
	job->name = json_strdup(body, "name");
	if (job->name == NULL || job->name[0] == '\0') {
		free(job->name);
		job->name = random_instance_name();
	}
	job->source_type = xstrdup(type);
	job->alias = json_strdup(source, "alias");
	job->fingerprint = json_strdup(source, "fingerprint");
	job->description = json_strdup(body, "description");
	job->config = json_incref(json_object_get(body, "config"));
	job->devices = json_incref(json_object_get(body, "devices"));
	job->profiles = json_incref(json_object_get(body, "profiles"));
	job->start = json_is_true(json_object_get(body, "start"));
	job->args = (struct instance_create_args){
		.name = job->name,
		.source_type = job->source_type,
		.alias = job->alias,
		.fingerprint = job->fingerprint,
		.config = job->config,
		.devices = job->devices,
		.profiles = job->profiles,
		.description = job->description,
		.ephemeral = json_is_true(ephemeral),
	};
	/* Bad input answers at once, before an operation exists. */
	if (instance_create_check(&job->args, &err) < 0) {
		create_job_free(job);
		return response_from_error(err);
	}
	cleanup_free char *name_copy = xstrdup(job->name);
	return instance_operation_respond(false, "Creating instance", name_copy, NULL, create_run, NULL, job, create_job_free);
}

static struct response *instance_get_handler(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *obj = NULL;
	/* ?recursion=1 on one instance is LXD's InstanceFull: with state,
	 * snapshots and backups (lxc info asks for it). */
	int recursion = request_recursion(req) >= 1 ? 2 : 1;
	if (instance_to_json(req->params[0], recursion, &obj, &err) < 0)
		return response_from_error(err);
	return response_sync(obj);
}

struct update_job {
	char *name;
	json_t *body;
};

static void update_job_free(void *data)
{
	struct update_job *job = data;
	free(job->name);
	json_decref(job->body);
	free(job);
}

static int update_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct update_job *job = data;
	json_t *next_start = json_array();
	instance_lock(job->name);
	int r = instance_update(job->name, job->body, false, false, next_start, err);
	instance_unlock(job->name);
	/* The CLI prints these; lxc ignores the metadata. */
	if (r == 0 && json_array_size(next_start) > 0)
		operation_set_metadata_key(op, "applies_at_next_start", json_incref(next_start));
	json_decref(next_start);
	return r;
}

struct restore_job {
	char *name;
	char *snap;
	bool stateful;
};

static void restore_job_free(void *data)
{
	struct restore_job *job = data;
	free(job->name);
	free(job->snap);
	free(job);
}

static int restore_run(struct operation *op, void *data, struct ferry_error **err)
{
	(void)op;
	struct restore_job *job = data;
	instance_lock(job->name);
	int r = snapshot_restore(job->name, job->snap, job->stateful, err);
	instance_unlock(job->name);
	return r;
}

/* LXD restores a snapshot by a PUT of the instance: {"restore": "SNAP",
 * "stateful": bool}; the rest of the body is ignored then. */
static struct response *instance_restore(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	const char *snap = json_string_value(json_object_get(req->body, "restore"));
	if (snap == NULL)
		return response_error(400, "Invalid restore: expected a snapshot name");
	json_t *stateful = json_object_get(req->body, "stateful");
	if (stateful != NULL && !json_is_boolean(stateful))
		return response_error(400, "Invalid stateful: expected a boolean");
	/* "c1/s1" is accepted too. */
	const char *slash = strchr(snap, '/');
	if (slash != NULL)
		snap = slash + 1;
	json_t *obj = NULL;
	if (snapshot_to_json(name, snap, &obj, &err) < 0)
		return response_from_error(err);
	bool snap_stateful = json_is_true(json_object_get(obj, "stateful"));
	json_decref(obj);
	if (json_is_true(stateful) && !snap_stateful)
		return response_error(400, "Snapshot \"%s\" is stateless: it has no processes to restore", snap);
	struct restore_job *job = xcalloc(1, sizeof(*job));
	job->name = xstrdup(name);
	job->snap = xstrdup(snap);
	job->stateful = json_is_true(stateful);
	return instance_operation_respond(false, "Restoring snapshot", name, NULL, restore_run, NULL, job,
					  restore_job_free);
}

static struct response *instance_put(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	if (!json_is_object(req->body))
		return response_error(400, "Invalid request: expected a JSON object");
	json_t *restore = json_object_get(req->body, "restore");
	if (restore != NULL && !(json_is_string(restore) && json_string_value(restore)[0] == '\0'))
		return instance_restore(req);
	instance_lock(name);
	int r = instance_update(name, req->body, false, true, NULL, &err);
	instance_unlock(name);
	if (r < 0)
		return response_from_error(err);
	struct update_job *job = xcalloc(1, sizeof(*job));
	job->name = xstrdup(name);
	job->body = json_incref(req->body);
	return instance_operation_respond(false, "Updating instance", name, NULL, update_run, NULL, job, update_job_free);
}

static struct response *instance_patch(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	if (!json_is_object(req->body))
		return response_error(400, "Invalid request: expected a JSON object");
	json_t *next_start = json_array();
	instance_lock(name);
	int r = instance_update(name, req->body, true, false, next_start, &err);
	instance_unlock(name);
	if (r < 0) {
		json_decref(next_start);
		return response_from_error(err);
	}
	return response_sync(json_pack("{s:o}", "applies_at_next_start", next_start));
}

struct name_job {
	char *name;
	char *new_name;
};

static void name_job_free(void *data)
{
	struct name_job *job = data;
	free(job->name);
	free(job->new_name);
	free(job);
}

static int delete_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct name_job *job = data;
	instance_lock(job->name);
	int r = instance_delete(job->name, err);
	instance_unlock(job->name);
	return r;
}

static struct response *instance_delete_handler(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	json_t *obj = NULL;
	if (instance_to_json(name, 0, &obj, &err) < 0)
		return response_from_error(err);
	json_decref(obj);
	if (instance_is_running(name))
		return response_error(400, "Instance is running");
	struct name_job *job = xcalloc(1, sizeof(*job));
	job->name = xstrdup(name);
	return instance_operation_respond(false, "Deleting instance", name, NULL, delete_run, NULL, job, name_job_free);
}

static int rename_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct name_job *job = data;
	instance_lock(job->name);
	int r = instance_rename(job->name, job->new_name, err);
	instance_unlock(job->name);
	return r;
}

static struct response *instance_post(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	if (!json_is_object(req->body))
		return response_error(400, "Invalid request: expected a JSON object");
	if (json_is_true(json_object_get(req->body, "migration")))
		return migrate_source_respond(name, req->body);
	const char *new_name = json_string_value(json_object_get(req->body, "name"));
	if (new_name == NULL)
		return response_error(400, "Invalid request: missing the new \"name\"");
	if (instance_name_validate(new_name, &err) < 0)
		return response_from_error(err);
	json_t *obj = NULL;
	if (instance_to_json(name, 0, &obj, &err) < 0)
		return response_from_error(err);
	json_decref(obj);
	if (instance_to_json(new_name, 0, &obj, &err) == 0) {
		json_decref(obj);
		return response_error(409, "Instance \"%s\" already exists", new_name);
	}
	error_free(&err);
	if (instance_is_running(name))
		return response_error(400, "Renaming of running instance not allowed");
	struct name_job *job = xcalloc(1, sizeof(*job));
	job->name = xstrdup(name);
	job->new_name = xstrdup(new_name);
	return instance_operation_respond(false, "Renaming instance", name, NULL, rename_run, NULL, job, name_job_free);
}

const struct route api_instances_routes[] = {
	{ "GET", "/1.0/instances", instances_get },
	{ "POST", "/1.0/instances", instances_post },
	{ "GET", "/1.0/instances/{name}", instance_get_handler },
	{ "PUT", "/1.0/instances/{name}", instance_put },
	{ "PATCH", "/1.0/instances/{name}", instance_patch },
	{ "DELETE", "/1.0/instances/{name}", instance_delete_handler },
	{ "POST", "/1.0/instances/{name}", instance_post },
	{ NULL },
};
