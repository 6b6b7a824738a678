/* The HTTP server behind request.h: libmicrohttpd on ferryd's unix socket,
 * and over HTTPS (core.https_address).
 * Private to the daemon core (server.c, request.c, main.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "daemon/request.h"

enum response_kind { RESPONSE_JSON, RESPONSE_RAW, RESPONSE_FD, RESPONSE_WEBSOCKET };

struct response_header {
	char *name;
	char *value;
};

struct response {
	enum response_kind kind;
	int status;               /* HTTP status */
	char *content_type;
	char *data;               /* JSON text or raw bytes */
	size_t len;
	int fd;                   /* RESPONSE_FD */
	size_t size;
	websocket_run run;        /* RESPONSE_WEBSOCKET */
	void *run_data;
	struct response_header *headers;
	size_t n_headers;
};

void response_free(struct response *resp);

/* Bulk bodies (image upload, file push) larger than this are spooled to a
 * file (request.body_file). */
#define REQUEST_BODY_MEMORY_MAX (4u << 20)
/* Bulk bodies larger than this are refused (413). */
#define REQUEST_BODY_MAX (10ull << 30)
/* Every other body is JSON, kept in memory: larger ones are refused (413). */
#define REQUEST_JSON_BODY_MAX (10ull << 20)
/* What an untrusted HTTPS client may send (POST /1.0/certificates). */
#define REQUEST_UNTRUSTED_BODY_MAX (64ull << 10)

/* Listen on socket_path (created here: mode 0660, stale file removed) and
 * serve every route table. spool_dir holds large request bodies. */
int server_start(const char *socket_path, const char *spool_dir, struct ferry_error **err);
/* Stop accepting connections (unix socket and HTTPS) and remove the socket file. */
void server_quiesce(void);

/* Serve the API over HTTPS on core.https_address (":8443", "[::]:8443",
 * "ADDR:PORT"), or stop when address is NULL or "". Moving opens the new
 * listener before the old one closes; on failure (invalid address, port in
 * use) the old one stays and err (400) says why. Needs tls_identity_init. */
int server_https_set(const char *address, struct ferry_error **err);
/* Where clients reach the HTTPS listener, as LXD lists them
 * (environment.addresses, tokens): ["10.0.0.2:8443", "[fd00::2]:8443"]. */
json_t *server_https_addresses(void);
/* Wait until no handler runs, up to timeout_ms. Returns true when idle. */
bool server_wait_idle(int timeout_ms);

/* Route matching (request.c), exposed for unit tests: does path match pattern? Fills
 * params (decoded segments, malloc'd) and returns the number of literal
 * segments (how specific the match is), or -1. */
int route_match(const char *pattern, const char *path, char *params[4]);
