/* Requests and responses in LXD's 1.0 shape (lxd/response/response.go):
 * every JSON body carries type, status, status_code, operation,
 * error_code, error and metadata. */
#include "daemon/request.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "daemon/operations.h"
#include "daemon/server.h"

const char *request_query(const struct request *r, const char *key)
{
	if (r->conn == NULL)
		return NULL;
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *request_header(const struct request *r, const char *key)
{
	if (r->conn == NULL)
		return NULL;
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, key);
}

int request_recursion(const struct request *r)
{
	const char *v = request_query(r, "recursion");
	if (v == NULL || *v == '\0')
		return 0;
	char *end = NULL;
	long n = strtol(v, &end, 10);
	if (*end != '\0' || n < 0)
		return 0;
	return n > 2 ? 2 : (int)n;
}

static struct response *response_json(int status, json_t *envelope)
{
	struct response *resp = xcalloc(1, sizeof(*resp));
	resp->kind = RESPONSE_JSON;
	resp->status = status;
	resp->fd = -1;
	resp->content_type = xstrdup("application/json");
	resp->data = json_dumps(envelope, JSON_COMPACT);
	if (resp->data == NULL)
		abort();
	resp->len = strlen(resp->data);
	json_decref(envelope);
	return resp;
}

static json_t *envelope(const char *type, const char *status, int status_code, const char *operation,
			int error_code, const char *error, json_t *metadata)
{
	return json_pack("{s:s, s:s, s:i, s:s, s:i, s:s, s:o}", "type", type, "status", status, "status_code",
			 status_code, "operation", operation, "error_code", error_code, "error", error, "metadata",
			 metadata ? metadata : json_null());
}

struct response *response_sync(json_t *metadata)
{
	if (metadata == NULL)
		metadata = json_object();
	return response_json(200, envelope("sync", "Success", 200, "", 0, "", metadata));
}

struct response *response_async(struct operation *op)
{
	cleanup_free char *url = xasprintf("/1.0/operations/%s", operation_id(op));
	struct response *resp =
		response_json(202, envelope("async", "Operation created", 100, url, 0, "", operation_to_json(op)));
	response_add_header(resp, "Location", url);
	return resp;
}

static struct response *response_verror(int status, const char *fmt, va_list ap)
{
	cleanup_free char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	if (status < 400 || status > 599)
		status = 500;
	return response_json(status, envelope("error", "", 0, "", status, msg, NULL));
}

struct response *response_error(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct response *resp = response_verror(status, fmt, ap);
	va_end(ap);
	return resp;
}

struct response *response_from_error(const struct ferry_error *err)
{
	if (err == NULL)
		return response_error(500, "unknown error");
	return response_error(err->status ? err->status : 500, "%s", err->msg);
}

struct response *response_raw(int status, const char *content_type, char *data, size_t len)
{
	struct response *resp = xcalloc(1, sizeof(*resp));
	resp->kind = RESPONSE_RAW;
	resp->status = status;
	resp->fd = -1;
	resp->content_type = xstrdup(content_type ? content_type : "application/octet-stream");
	resp->data = data;
	resp->len = len;
	return resp;
}

struct response *response_fd(int status, const char *content_type, int fd, size_t size)
{
	struct response *resp = xcalloc(1, sizeof(*resp));
	resp->kind = RESPONSE_FD;
	resp->status = status;
	resp->content_type = xstrdup(content_type ? content_type : "application/octet-stream");
	resp->fd = fd;
	resp->size = size;
	return resp;
}

struct response *response_websocket(websocket_run run, void *data)
{
	struct response *resp = xcalloc(1, sizeof(*resp));
	resp->kind = RESPONSE_WEBSOCKET;
	resp->status = 101;
	resp->fd = -1;
	resp->run = run;
	resp->run_data = data;
	return resp;
}

void response_add_header(struct response *resp, const char *name, const char *value)
{
	struct response_header *h = realloc(resp->headers, (resp->n_headers + 1) * sizeof(*h));
	if (h == NULL)
		abort();
	resp->headers = h;
	h[resp->n_headers].name = xstrdup(name);
	h[resp->n_headers].value = xstrdup(value);
	resp->n_headers++;
}

void response_free(struct response *resp)
{
	if (resp == NULL)
		return;
	free(resp->content_type);
	free(resp->data);
	if (resp->fd >= 0)
		close(resp->fd);
	for (size_t i = 0; i < resp->n_headers; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	free(resp->headers);
	free(resp);
}

/* Patterns compare segment by segment; a literal segment that matches
 * counts more the earlier it comes, so "/1.0/images/aliases/{name}" wins
 * over "/1.0/images/{fingerprint}/export" for "/1.0/images/aliases/export". */
int route_match(const char *pattern, const char *path, char *params[4])
{
	int score = 0, depth = 0;
	size_t n_params = 0;
	const char *p = pattern, *s = path;
	char *found[4] = { 0 };
	for (;;) {
		if (*p != '/' || *s != '/')
			break;
		p++;
		s++;
		size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");
		if (plen > 1 && p[0] == '{' && p[plen - 1] == '}') {
			if (slen == 0 || n_params >= 4)
				break;
			found[n_params++] = strndup(s, slen);
		} else if (plen == slen && strncmp(p, s, plen) == 0) {
			if (depth < 16)
				score += 1 << (16 - depth);
		} else {
			break;
		}
		p += plen;
		s += slen;
		depth++;
		if (*p == '\0' && *s == '\0') {
			for (size_t i = 0; i < 4; i++) {
				if (params != NULL)
					params[i] = found[i];
				else
					free(found[i]);
			}
			return score;
		}
	}
	for (size_t i = 0; i < n_params; i++)
		free(found[i]);
	return -1;
}
