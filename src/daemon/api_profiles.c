/* /1.0/profiles and /1.0/profiles/{name}: list, create, show, replace,
 * patch, rename, delete. The logic is in profiles.c; this file speaks HTTP. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/profiles.h"
#include "daemon/request.h"

static struct response *profiles_get(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *list = NULL;
	if (profiles_list_json(request_recursion(req) > 0, &list, &err) < 0)
		return response_from_error(err);
	return response_sync(list);
}

/* LXD answers a creation or rename with the new URL in Location. */
static struct response *sync_with_location(const char *name)
{
	struct response *resp = response_sync(NULL);
	cleanup_free char *url = xasprintf("/1.0/profiles/%s", name);
	response_add_header(resp, "Location", url);
	return resp;
}

static struct response *profiles_post(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	if (profile_create(req->body, &err) < 0)
		return response_from_error(err);
	return sync_with_location(json_string_value(json_object_get(req->body, "name")));
}

static struct response *profile_get_handler(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *obj = NULL;
	if (profile_to_json(req->params[0], &obj, &err) < 0)
		return response_from_error(err);
	return response_sync(obj);
}

/* The metadata says which instances take part of the change only at their
 * next start (the CLI prints it; lxc ignores it). */
static struct response *profile_update_handler(struct request *req, bool merge)
{
	cleanup_error struct ferry_error *err = NULL;
	json_t *report = NULL;
	if (profile_update(req->params[0], req->body, merge, &report, &err) < 0)
		return response_from_error(err);
	return response_sync(report);
}

static struct response *profile_put(struct request *req)
{
	return profile_update_handler(req, false);
}

static struct response *profile_patch(struct request *req)
{
	return profile_update_handler(req, true);
}

static struct response *profile_post(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	if (!json_is_object(req->body))
		return response_error(400, "Invalid request: expected a JSON object");
	json_t *name = json_object_get(req->body, "name");
	if (name != NULL && !json_is_string(name))
		return response_error(400, "Invalid name: expected a string");
	if (profile_rename(req->params[0], json_string_value(name), &err) < 0)
		return response_from_error(err);
	return sync_with_location(json_string_value(name));
}

static struct response *profile_delete_handler(struct request *req)
{
	cleanup_error struct ferry_error *err = NULL;
	if (profile_delete(req->params[0], &err) < 0)
		return response_from_error(err);
	return response_sync(NULL);
}

const struct route api_profiles_routes[] = {
	{ "GET", "/1.0/profiles", profiles_get },
	{ "POST", "/1.0/profiles", profiles_post },
	{ "GET", "/1.0/profiles/{name}", profile_get_handler },
	{ "PUT", "/1.0/profiles/{name}", profile_put },
	{ "PATCH", "/1.0/profiles/{name}", profile_patch },
	{ "POST", "/1.0/profiles/{name}", profile_post },
	{ "DELETE", "/1.0/profiles/{name}", profile_delete_handler },
	{ NULL },
};
