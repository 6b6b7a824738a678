/* common/ws.c against itself over a socketpair: a client (masking) and a
 * server, text and binary, a message larger than one read, frames that
 * arrived with the HTTP headers, close, timeouts, and the accept key of
 * RFC 6455's example. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "common/ws.h"

static int failures;

#define expect(cond)                                                                     \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                      \
		}                                                                        \
	} while (0)

#define BIG (3u << 20)

/* The server echoes every message back, until the client closes. */
static void *echo_server(void *arg)
{
	struct ws *ws = arg;
	for (;;) {
		enum ws_opcode op;
		char *data = NULL;
		size_t len = 0;
		struct ferry_error *err = NULL;
		int r = ws_recv(ws, &op, &data, &len, 5000, &err);
		if (r <= 0) {
			error_free(&err);
			break;
		}
		ws_send(ws, op, data, len, NULL);
		free(data);
	}
	return NULL;
}

int main(void)
{
	char *accept = ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
	expect(strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
	free(accept);
	char *key = ws_new_client_key();
	expect(strlen(key) == 24);
	free(key);

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	struct ws *client = ws_new_fd(sv[0], false);
	struct ws *server = ws_new_fd(sv[1], true);

	/* A text frame "hi" from a client, masked, as if it came with the headers. */
	const unsigned char prefetched[] = { 0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2 };
	ws_push_prefetched(server, prefetched, sizeof(prefetched));

	pthread_t thread;
	pthread_create(&thread, NULL, echo_server, server);

	struct ferry_error *err = NULL;
	enum ws_opcode op;
	char *data = NULL;
	size_t len = 0;
	expect(ws_recv(client, &op, &data, &len, 5000, &err) == 1);
	expect(op == WS_TEXT && len == 2 && strcmp(data, "hi") == 0);
	free(data);

	expect(ws_send(client, WS_TEXT, "hello", 5, &err) == 0);
	expect(ws_recv(client, &op, &data, &len, 5000, &err) == 1);
	expect(op == WS_TEXT && strcmp(data, "hello") == 0);
	free(data);

	char *big = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (char)(i * 7);
	expect(ws_send(client, WS_BINARY, big, BIG, &err) == 0);
	expect(ws_recv(client, &op, &data, &len, 5000, &err) == 1);
	expect(op == WS_BINARY && len == BIG && memcmp(data, big, BIG) == 0);
	free(data);
	free(big);

	/* Nothing comes: a timeout, not a close. */
	char *none = NULL;
	expect(ws_recv(client, &op, &none, &len, 50, &err) < 0 && err != NULL && err->errnum == ETIMEDOUT);
	error_free(&err);

	ws_close(client, 1000, "bye");
	pthread_join(thread, NULL);
	/* The server saw the close, answered it; the client sees the end. */
	expect(ws_recv(client, &op, &none, &len, 1000, &err) == 0);
	error_free(&err);
	ws_free(server);
	ws_free(client);
	if (failures == 0)
		printf("ok - ws\n");
	return failures == 0 ? 0 : 1;
}
