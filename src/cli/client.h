/* The client library of the ferry CLI: LXD's 1.0 REST API over ferryd's
 * unix socket (the remote "local") or over HTTPS with mutual TLS (the
 * remotes of config.yml, see remotes.h): the client presents its own
 * certificate and accepts only the server certificate saved when the
 * remote was added.
 *
 * Requests carry JSON bodies; answers come in LXD's envelope
 * ({"type":"sync"|"async"|"error", ...}); an error answer becomes a
 * ferry_error with the server's message and status. Long actions answer
 * with an operation, which client_operation_wait() follows to its end. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/ws.h"

struct client;

/* remote: a name from config.yml, NULL for the default remote. "local" is
 * ferryd at $FERRY_DIR/unix.socket ($FERRY_DIR defaults to
 * /var/lib/ferry). Connects lazily. */
int client_open(const char *remote, struct client **out, struct ferry_error **err);
/* An HTTPS server by URL ("https://HOST:PORT"), as `remote add` meets it:
 * server_cert_path is the certificate to insist on, or NULL to take any
 * and keep it (client_server_certificate) for the user to approve. */
int client_open_url(const char *name, const char *url, const char *server_cert_path, struct client **out,
		    struct ferry_error **err);
/* First contact: the PEM certificate the server presented, or NULL. */
const char *client_server_certificate(const struct client *c);
const char *client_remote_name(const struct client *c);
/* The unix socket (not HTTPS). */
bool client_is_local(const struct client *c);
void client_free(struct client *c);
void client_freep(struct client **c);
#define cleanup_client __attribute__((cleanup(client_freep)))

/* A request answered in the envelope. path includes the query
 * ("/1.0/instances?recursion=1"); body may be NULL. *metadata (may be NULL
 * to ignore) gets the answer's metadata (json null when absent). */
int client_query(struct client *c, const char *method, const char *path, json_t *body, json_t **metadata,
		 struct ferry_error **err);
/* A request that starts an operation: *op is the operation object (the
 * metadata of the "async" answer). A "sync" answer gives *op = NULL. */
int client_query_operation(struct client *c, const char *method, const char *path, json_t *body, json_t **op,
			   struct ferry_error **err);
/* Wait for op to end (op may be NULL: nothing to wait for). When stdout is a
 * terminal, not --quiet, and progress_label is not NULL, the operation's
 * progress is drawn on one line fitted to the terminal, prefixed with
 * progress_label, and cleared at the end: a bar for a structured
 * "progress" in its metadata, else its "*_progress" text (progress.h).
 * Fails with the operation's error if it failed. *final (may be NULL) is
 * the operation as it ended. */
int client_operation_wait(struct client *c, const json_t *op, const char *progress_label, json_t **final,
			  struct ferry_error **err);
/* client_query_operation then client_operation_wait. */
int client_run_operation(struct client *c, const char *method, const char *path, json_t *body,
			 const char *progress_label, json_t **final, struct ferry_error **err);

/* Raw downloads (file pull, image export, console log). The body goes to
 * fd unless the server answers JSON (a directory listing or an error).
 * Response headers come back lower-cased ("x-lxd-type", "content-disposition"). */
struct client_raw {
	json_t *headers;  /* object: header name -> value */
	json_t *metadata; /* the metadata of a JSON answer, else NULL */
};
void client_raw_clear(struct client_raw *raw);
int client_download(struct client *c, const char *path, int fd, struct client_raw *out, struct ferry_error **err);
/* Raw upload of fd's contents (fd < 0: empty body) with extra headers
 * ("Name: value", NULL-terminated). *answer is the whole envelope. */
int client_upload(struct client *c, const char *method, const char *path, int fd, const char *const *headers,
		  json_t **answer, struct ferry_error **err);

/* A websocket of an operation: /1.0/operations/ID/websocket?secret=S. */
struct client_ws;
int client_websocket(struct client *c, const char *op_id, const char *secret, struct client_ws **out,
		     struct ferry_error **err);
struct ws *client_ws_get(struct client_ws *cws);
void client_ws_free(struct client_ws *cws);

/* Escape a value for a URL query or path segment (malloc'd). */
char *client_escape(const char *s);
/* The id of an operation object ("id", else the tail of "operation"). */
const char *client_operation_id(const json_t *op);
/* The socket path or the URL in use (for messages). */
const char *client_socket_path(const struct client *c);

/* For client_ws.c, which makes its own connections: the URL of path, the
 * Host header's value, libcurl's transport options for this client (curl
 * is a CURL *), and a curl error turned into a ferry_error (a changed
 * server certificate gets its warning here). */
char *client_url(const struct client *c, const char *path);
const char *client_host(const struct client *c);
void client_curl_transport(struct client *c, void *curl);
int client_curl_error(struct client *c, int curl_code, const char *errbuf, const char *what, struct ferry_error **err);
