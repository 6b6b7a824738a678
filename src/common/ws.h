/* WebSocket messages over a connected socket, framed by wslay (RFC 6455).
 * Used by ferryd (after the HTTP upgrade that libmicrohttpd hands over) and
 * by the ferry client (after its own upgrade request). The socket may be a
 * plain fd or go through a transport (libcurl's connection, for TLS). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"

struct ws;

struct ws_transport {
	/* Like read(2)/write(2); return -1 with errno EAGAIN when nothing can move now. */
	ssize_t (*recv)(void *ctx, void *buf, size_t len);
	ssize_t (*send)(void *ctx, const void *buf, size_t len);
	int fd;      /* fd to poll for readiness */
	void *ctx;
};

enum ws_opcode { WS_TEXT = 1, WS_BINARY = 2, WS_CLOSE = 8 };

/* is_server: true on ferryd's side (frames from the client are masked). */
struct ws *ws_new_fd(int fd, bool is_server);
struct ws *ws_new_transport(const struct ws_transport *t, bool is_server);
/* Bytes the HTTP layer read past the upgrade's headers, to be parsed first. */
void ws_push_prefetched(struct ws *ws, const void *data, size_t len);

int ws_send(struct ws *ws, enum ws_opcode op, const void *data, size_t len, struct ferry_error **err);
/* Wait for the next complete text or binary message. Returns 1 with *data
 * (malloc'd, NUL-terminated) and *len, 0 when the peer closed, -1 on error.
 * timeout_ms < 0: wait forever. A timeout returns -1 with errnum ETIMEDOUT. */
int ws_recv(struct ws *ws, enum ws_opcode *op, char **data, size_t *len, int timeout_ms,
	    struct ferry_error **err);
/* Send a close frame (once) and flush. */
int ws_close(struct ws *ws, unsigned short code, const char *reason);
/* Close the socket and free. */
void ws_free(struct ws *ws);
int ws_fd(struct ws *ws);

/* The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key. */
char *ws_accept_key(const char *client_key);
/* A random Sec-WebSocket-Key for a client. */
char *ws_new_client_key(void);
