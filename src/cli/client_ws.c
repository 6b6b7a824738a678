/* Websockets to ferryd. This libcurl has no websocket support, so curl only
 * opens the connection (CURLOPT_CONNECT_ONLY); we send the HTTP upgrade
 * request ourselves, read the one 101 answer, and hand the connection to
 * common/ws.c as a transport. curl_easy_send/recv go through TLS for an
 * HTTPS remote, with the same identity and pinned certificate as every
 * other request. */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/client.h"
#include "common/util.h"

struct client_ws {
	CURL *curl;
	struct ws *ws;
	int fd;
};

static ssize_t curl_transport_recv(void *ctx, void *buf, size_t len)
{
	struct client_ws *cws = ctx;
	size_t n = 0;
	CURLcode rc = curl_easy_recv(cws->curl, buf, len, &n);
	if (rc == CURLE_AGAIN) {
		errno = EAGAIN;
		return -1;
	}
	if (rc != CURLE_OK) {
		errno = EIO;
		return -1;
	}
	return (ssize_t)n;
}

static ssize_t curl_transport_send(void *ctx, const void *buf, size_t len)
{
	struct client_ws *cws = ctx;
	size_t n = 0;
	CURLcode rc = curl_easy_send(cws->curl, buf, len, &n);
	if (rc == CURLE_AGAIN) {
		errno = EAGAIN;
		return -1;
	}
	if (rc != CURLE_OK) {
		errno = EPIPE;
		return -1;
	}
	return (ssize_t)n;
}

static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;
	do
		r = poll(&p, 1, 30000);
	while (r < 0 && errno == EINTR);
	return r > 0 ? 0 : -1;
}

/* The value of header name in the response head, or NULL (malloc'd). */
static char *head_header(const char *head, const char *name)
{
	size_t nlen = strlen(name);
	for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			const char *v = line + nlen + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			const char *end = strstr(v, "\r\n");
			char *value = strndup(v, end ? (size_t)(end - v) : strlen(v));
			if (value == NULL)
				abort();
			return value;
		}
	}
	return NULL;
}

static int upgrade(struct client_ws *cws, const char *host, const char *path, struct ferry_error **err)
{
	cleanup_free char *key = ws_new_client_key();
	cleanup_free char *request = xasprintf("GET %s HTTP/1.1\r\n"
					       "Host: %s\r\n"
					       "Upgrade: websocket\r\n"
					       "Connection: Upgrade\r\n"
					       "Sec-WebSocket-Key: %s\r\n"
					       "Sec-WebSocket-Version: 13\r\n"
					       "\r\n",
					       path, host, key);
	size_t len = strlen(request);
	for (size_t off = 0; off < len;) {
		ssize_t n = curl_transport_send(cws, request + off, len - off);
		if (n < 0 && errno == EAGAIN) {
			if (wait_fd(cws->fd, POLLOUT) < 0)
				return error_set(err, 504, ETIMEDOUT, "websocket %s: timed out sending the upgrade", path);
			continue;
		}
		if (n < 0)
			return error_sys(err, errno, "websocket %s: sending the upgrade", path);
		off += n;
	}

	char head[8192];
	size_t have = 0;
	char *end = NULL;
	while (end == NULL) {
		if (have == sizeof(head) - 1)
			return error_set(err, 502, EPROTO, "websocket %s: upgrade answer too long", path);
		ssize_t n = curl_transport_recv(cws, head + have, sizeof(head) - 1 - have);
		if (n < 0 && errno == EAGAIN) {
			if (wait_fd(cws->fd, POLLIN) < 0)
				return error_set(err, 504, ETIMEDOUT, "websocket %s: no answer to the upgrade", path);
			continue;
		}
		if (n <= 0)
			return error_set(err, 502, EPROTO, "websocket %s: connection closed during the upgrade", path);
		have += n;
		head[have] = '\0';
		end = strstr(head, "\r\n\r\n");
	}
	size_t head_len = end + 4 - head;
	int status = 0;
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || status != 101) {
		/* An error answer carries LXD's JSON envelope after the head. */
		const char *body = head + head_len;
		const char *msg = strstr(body, "\"error\":\"");
		if (msg != NULL) {
			msg += 9;
			const char *q = strchr(msg, '"');
			return error_set(err, status, 0, "%.*s", q ? (int)(q - msg) : 100, msg);
		}
		return error_set(err, status ? status : 502, EPROTO, "websocket %s: upgrade refused (HTTP %d)", path, status);
	}
	cleanup_free char *accept = head_header(head, "Sec-WebSocket-Accept");
	cleanup_free char *expected = ws_accept_key(key);
	if (accept == NULL || strcmp(accept, expected) != 0)
		return error_set(err, 502, EPROTO, "websocket %s: bad Sec-WebSocket-Accept", path);

	struct ws_transport t = {
		.recv = curl_transport_recv,
		.send = curl_transport_send,
		.fd = cws->fd,
		.ctx = cws,
	};
	cws->ws = ws_new_transport(&t, false);
	if (have > head_len)
		ws_push_prefetched(cws->ws, head + head_len, have - head_len);
	return 0;
}

int client_websocket(struct client *c, const char *op_id, const char *secret, struct client_ws **out,
		     struct ferry_error **err)
{
	struct client_ws *cws = xcalloc(1, sizeof(*cws));
	cws->fd = -1;
	cws->curl = curl_easy_init();
	if (cws->curl == NULL)
		abort();
	cleanup_free char *id = client_escape(op_id);
	cleanup_free char *sec = client_escape(secret);
	cleanup_free char *path = xasprintf("/1.0/operations/%s/websocket?secret=%s", id, sec);
	cleanup_free char *url = client_url(c, path);
	char errbuf[CURL_ERROR_SIZE] = "";
	client_curl_transport(c, cws->curl);
	curl_easy_setopt(cws->curl, CURLOPT_URL, url);
	curl_easy_setopt(cws->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(cws->curl, CURLOPT_CONNECT_ONLY, 1L);
	CURLcode rc = curl_easy_perform(cws->curl);
	/* errbuf lives on this stack only; the handle lives on. */
	curl_easy_setopt(cws->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_socket_t sock = CURL_SOCKET_BAD;
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(cws->curl, CURLINFO_ACTIVESOCKET, &sock);
	if (rc != CURLE_OK || sock == CURL_SOCKET_BAD) {
		client_ws_free(cws);
		if (rc == CURLE_OK)
			return error_set(err, 503, ECONNREFUSED, "cannot reach ferryd at %s", client_socket_path(c));
		return client_curl_error(c, rc, errbuf, "websocket", err);
	}
	cws->fd = (int)sock;
	if (upgrade(cws, client_host(c), path, err) < 0) {
		client_ws_free(cws);
		return -1;
	}
	*out = cws;
	return 0;
}

struct ws *client_ws_get(struct client_ws *cws)
{
	return cws->ws;
}

void client_ws_free(struct client_ws *cws)
{
	if (cws == NULL)
		return;
	ws_free(cws->ws); /* leaves the socket to curl */
	curl_easy_cleanup(cws->curl);
	free(cws);
}
