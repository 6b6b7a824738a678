/* /1.0/operations: list, show, cancel, wait, and connect to a websocket
 * operation's streams. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/operations.h"
#include "daemon/operations_internal.h"
#include "daemon/request.h"

static void operation_unrefp(struct operation **op)
{
	operation_unref(*op);
}
#define cleanup_operation __attribute__((cleanup(operation_unrefp)))

static struct response *operations_get(struct request *req)
{
	return response_sync(operations_list_json(request_recursion(req) > 0));
}

static struct response *operation_get_one(struct request *req)
{
	cleanup_operation struct operation *op = operation_get(req->params[0]);
	if (op == NULL)
		return response_error(404, "Operation not found");
	return response_sync(operation_to_json(op));
}

static struct response *operation_delete(struct request *req)
{
	cleanup_operation struct operation *op = operation_get(req->params[0]);
	if (op == NULL)
		return response_error(404, "Operation not found");
	cleanup_error struct ferry_error *err = NULL;
	if (operation_cancel(op, &err) < 0)
		return response_from_error(err);
	return response_sync(NULL);
}

static struct response *operation_wait_get(struct request *req)
{
	int timeout = -1;
	const char *t = request_query(req, "timeout");
	if (t != NULL && *t != '\0') {
		char *end = NULL;
		long v = strtol(t, &end, 10);
		if (*end != '\0')
			return response_error(400, "Invalid timeout: %s", t);
		timeout = v < 0 ? -1 : (int)v;
	}
	cleanup_operation struct operation *op = operation_get(req->params[0]);
	if (op == NULL)
		return response_error(404, "Operation not found");
	/* Done or timed out, the answer is the operation as it is now (LXD does the same). */
	operation_wait(op, timeout);
	return response_sync(operation_to_json(op));
}

struct operation_connection {
	struct operation *op;
	char *secret;
};

static void operation_connection_run(struct ws *ws, void *data)
{
	struct operation_connection *c = data;
	if (operation_websocket_connect(c->op, c->secret, ws) < 0) {
		ws_close(ws, 1008, "unknown secret");
		ws_free(ws);
	}
	operation_unref(c->op);
	free(c->secret);
	free(c);
}

static struct response *operation_websocket_get(struct request *req)
{
	cleanup_operation struct operation *op = operation_get(req->params[0]);
	if (op == NULL)
		return response_error(404, "Operation not found");
	const char *secret = request_query(req, "secret");
	/* Checked before the upgrade, so that a wrong secret gets an HTTP error. */
	if (secret == NULL || !operation_has_secret(op, secret))
		return response_error(403, "Invalid websocket secret");
	struct operation_connection *c = xcalloc(1, sizeof(*c));
	c->op = steal_pointer(&op);
	c->secret = xstrdup(secret);
	return response_websocket(operation_connection_run, c);
}

const struct route api_operations_routes[] = {
	{ "GET", "/1.0/operations", operations_get },
	{ "GET", "/1.0/operations/{id}", operation_get_one },
	{ "DELETE", "/1.0/operations/{id}", operation_delete },
	{ "GET", "/1.0/operations/{id}/wait", operation_wait_get },
	{ "GET", "/1.0/operations/{id}/websocket", operation_websocket_get, true },
	{ NULL },
};
