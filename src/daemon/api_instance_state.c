/* /1.0/instances/{name}/state: the runtime state, and the actions start,
 * stop, restart, freeze, unfreeze.
 *
 * Stateful stop and start as LXD has them: {"action":"stop","stateful":true}
 * has CRIU save the instance; {"action":"start"} restores saved state when
 * there is some ("stateful": true insists on it), and "stateful": false
 * discards it and boots afresh (lxc sends true when the instance has state
 * and --stateless was not given). */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/daemon.h"
#include "daemon/instance.h"
#include "daemon/request.h"

static struct response *state_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *state = NULL;
	if (instance_state_to_json(req->params[0], &state, &err) < 0)
		return response_from_error(err);
	return response_sync(state);
}

enum state_action { ACTION_START, ACTION_STOP, ACTION_RESTART, ACTION_FREEZE, ACTION_UNFREEZE };

static const struct {
	const char *name;
	const char *description;
} actions[] = {
	[ACTION_START] = { "start", "Starting instance" },
	[ACTION_STOP] = { "stop", "Stopping instance" },
	[ACTION_RESTART] = { "restart", "Restarting instance" },
	[ACTION_FREEZE] = { "freeze", "Freezing instance" },
	[ACTION_UNFREEZE] = { "unfreeze", "Unfreezing instance" },
};

struct state_job {
	char *name;
	enum state_action action;
	int timeout;
	bool force;
	int stateful; /* -1: not given */
};

static void state_job_free(void *data)
{
	struct state_job *job = data;
	free(job->name);
	free(job);
}

static int state_run(struct operation *op, void *data, struct ferry_error **err)
{
	struct state_job *job = data;
	int r = -1;
	instance_lock(job->name);
	switch (job->action) {
	case ACTION_START:
		r = instance_start_mode(job->name,
					job->stateful < 0 ? INSTANCE_START_DEFAULT
					: job->stateful ? INSTANCE_START_STATEFUL
							: INSTANCE_START_STATELESS,
					NULL, NULL, err);
		break;
	case ACTION_STOP:
		if (job->stateful == 1)
			r = instance_stop_stateful(job->name, err);
		else /* As LXD: timeout 0 or force kills at once. */
			r = instance_stop(job->name, job->timeout, job->force || job->timeout == 0, err);
		break;
	case ACTION_RESTART:
		r = instance_restart(job->name, job->timeout, job->force || job->timeout == 0, err);
		break;
	case ACTION_FREEZE:
		r = instance_freeze(job->name, err);
		break;
	case ACTION_UNFREEZE:
		r = instance_unfreeze(job->name, err);
		break;
	}
	instance_unlock(job->name);
	return r;
}

static struct response *state_put(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	const char *name = req->params[0];
	json_t *body = req->body;
	if (!json_is_object(body))
		return response_error(400, "Invalid request: expected a JSON object");
	const char *action = json_string_value(json_object_get(body, "action"));
	json_t *timeout = json_object_get(body, "timeout");
	json_t *force = json_object_get(body, "force");
	json_t *stateful = json_object_get(body, "stateful");
	if (timeout != NULL && !json_is_integer(timeout))
		return response_error(400, "Invalid timeout: expected an integer (seconds, -1: no limit)");
	if (force != NULL && !json_is_boolean(force))
		return response_error(400, "Invalid force: expected a boolean");
	if (stateful != NULL && !json_is_boolean(stateful))
		return response_error(400, "Invalid stateful: expected a boolean");

	struct state_job job = { .timeout = timeout ? (int)json_integer_value(timeout) : -1,
				 .force = json_is_true(force),
				 .stateful = stateful == NULL ? -1 : json_is_true(stateful) };
	size_t i;
	for (i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (action != NULL && strcmp(action, actions[i].name) == 0)
			break;
	if (i == sizeof(actions) / sizeof(actions[0]))
		return response_error(400, "Unknown action: '%s'", action ? action : "");
	job.action = (enum state_action)i;
	if (json_is_true(stateful) && job.action != ACTION_STOP && job.action != ACTION_START)
		return response_error(400, "Stateful %s isn't supported", action);

	json_t *obj = NULL;
	if (instance_to_json(name, 0, &obj, &err) < 0)
		return response_from_error(err);
	bool has_state = json_is_true(json_object_get(obj, "stateful"));
	json_decref(obj);
	/* Refused before an operation exists; checked again under the lock. */
	if (job.action == ACTION_STOP && job.stateful == 1 &&
	    instance_checkpoint_check(name, "stop --stateful", &err) < 0)
		return response_from_error(err);
	if (job.action == ACTION_START && job.stateful == 1 && !has_state)
		return response_error(400, "The instance has no saved state to restore");

	struct state_job *heap = xcalloc(1, sizeof(*heap));
	*heap = job;
	heap->name = xstrdup(name);
	return instance_operation_respond(false, actions[job.action].description, name, NULL, state_run, NULL, heap,
					  state_job_free);
}

const struct route api_instance_state_routes[] = {
	{ "GET", "/1.0/instances/{name}/state", state_get },
	{ "PUT", "/1.0/instances/{name}/state", state_put },
	{ NULL },
};
