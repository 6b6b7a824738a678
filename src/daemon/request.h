/* Requests, responses and routes in LXD's 1.0 shape.
 *
 * libmicrohttpd runs a thread per connection; a handler runs on it and may
 * block briefly (DB, files). Long actions create an operation
 * (operations.h) and answer response_async(). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "common/ws.h"

struct MHD_Connection;
struct operation;

struct request {
	const char *method;      /* "GET", "POST", ... */
	const char *path;        /* decoded path without the query: "/1.0/instances/c1" */
	char *params[4];         /* the {placeholders} of the route, in order, decoded */
	json_t *body;            /* the body parsed as JSON when it is JSON, else NULL */
	const char *raw_body;    /* the body as received (may be NULL) */
	size_t raw_len;
	const char *body_file;   /* large bodies (file push, image upload) are spooled here */
	bool trusted;            /* unix socket, or a trusted client certificate */
	struct MHD_Connection *conn;
};

/* Query argument (decoded), or NULL. */
const char *request_query(const struct request *r, const char *key);
/* Request header, or NULL. */
const char *request_header(const struct request *r, const char *key);
/* ?recursion=N, default 0. */
int request_recursion(const struct request *r);

struct response;

/* {"type":"sync","status":"Success","status_code":200,...,"metadata":metadata} (steals metadata; NULL: {}) */
struct response *response_sync(json_t *metadata);
/* 202 {"type":"async","status":"Operation created","status_code":100,"operation":"/1.0/operations/ID",
 * "metadata":<operation>} with a Location header. */
struct response *response_async(struct operation *op);
/* {"type":"error","error":"...","error_code":status} */
struct response *response_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* From a ferry_error: its status and message (frees nothing). */
struct response *response_from_error(const struct ferry_error *err);
/* Raw bytes (file pull, image export, console log), with content type. Takes ownership of data. */
struct response *response_raw(int status, const char *content_type, char *data, size_t len);
/* A file streamed from fd (closed when sent). */
struct response *response_fd(int status, const char *content_type, int fd, size_t size);
void response_add_header(struct response *resp, const char *name, const char *value);

/* Websocket endpoints: the handler validates and returns this; after the
 * upgrade, run(ws, data) is called on its own thread and owns ws. */
typedef void (*websocket_run)(struct ws *ws, void *data);
struct response *response_websocket(websocket_run run, void *data);

typedef struct response *(*route_handler)(struct request *req);

struct route {
	const char *method;   /* "GET", ... */
	const char *pattern;  /* "/1.0/instances/{name}/state": {x} matches one path segment */
	route_handler handler;
	bool untrusted_ok;    /* answered for untrusted TLS clients (GET /1.0, POST /1.0/certificates) */
};

/* Route tables, one per endpoint file, each ending with a {NULL} entry. */
extern const struct route api_server_routes[];     /* api_server.c: /, /1.0 */
extern const struct route api_operations_routes[]; /* api_operations.c */
extern const struct route api_events_routes[];     /* api_events.c */
extern const struct route api_images_routes[];     /* api_images.c */
extern const struct route api_instances_routes[];  /* api_instances.c: /1.0/instances, /1.0/instances/{name} */
extern const struct route api_instance_state_routes[]; /* api_instance_state.c */
extern const struct route api_instance_exec_routes[];  /* api_instance_exec.c */
extern const struct route api_instance_files_routes[]; /* api_instance_files.c */
extern const struct route api_instance_logs_routes[];  /* api_instance_logs.c (also console) */
extern const struct route api_instance_snapshots_routes[]; /* api_instance_snapshots.c */
extern const struct route api_certificates_routes[];   /* api_certificates.c: /1.0/certificates */
extern const struct route api_profiles_routes[];       /* api_profiles.c: /1.0/profiles */
