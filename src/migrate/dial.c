/* The target's websocket client: a connection to the source's operation
 * over HTTPS with mutual TLS. libcurl opens the TLS connection
 * (CURLOPT_CONNECT_ONLY) presenting this daemon's server certificate as its
 * client certificate (the source trusts it: the hosts were introduced to
 * each other), and accepting only the certificate the client handed over
 * in source.certificate; the upgrade request is ours, then common/ws.c
 * frames the messages. (src/cli/client_ws.c does the same for the CLI,
 * with the CLI's identity.) */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/daemon.h"
#include "migrate/migrate.h"

struct migrate_conn {
	CURL *curl;
	struct ws *ws;
	int fd;
	char *ca_path; /* the pinned certificate, as a file for curl */
};

static ssize_t conn_recv(void *ctx, void *buf, size_t len)
{
	struct migrate_conn *c = ctx;
	size_t n = 0;
	CURLcode rc = curl_easy_recv(c->curl, buf, len, &n);
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

static ssize_t conn_send(void *ctx, const void *buf, size_t len)
{
	struct migrate_conn *c = ctx;
	size_t n = 0;
	CURLcode rc = curl_easy_send(c->curl, buf, len, &n);
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
			return end ? strndup(v, (size_t)(end - v)) : xstrdup(v);
		}
	}
	return NULL;
}

static int upgrade(struct migrate_conn *c, const char *host, const char *path, struct ferry_error **err)
{
	cleanup_free char *key = ws_new_client_key();
	cleanup_free char *request = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
					       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
					       "Sec-WebSocket-Version: 13\r\n\r\n",
					       path, host, key);
	size_t len = strlen(request);
	for (size_t off = 0; off < len;) {
		ssize_t n = conn_send(c, request + off, len - off);
		if (n < 0 && errno == EAGAIN) {
			if (wait_fd(c->fd, POLLOUT) < 0)
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
		ssize_t n = conn_recv(c, head + have, sizeof(head) - 1 - have);
		if (n < 0 && errno == EAGAIN) {
			if (wait_fd(c->fd, POLLIN) < 0)
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
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || status != 101)
		return error_set(err, status ? status : 502, EPROTO, "websocket %s: the source refused (HTTP %d)", path,
				 status);
	cleanup_free char *accept = head_header(head, "Sec-WebSocket-Accept");
	cleanup_free char *expected = ws_accept_key(key);
	if (accept == NULL || strcmp(accept, expected) != 0)
		return error_set(err, 502, EPROTO, "websocket %s: bad Sec-WebSocket-Accept", path);
	struct ws_transport t = { .recv = conn_recv, .send = conn_send, .fd = c->fd, .ctx = c };
	c->ws = ws_new_transport(&t, false);
	if (have > head_len)
		ws_push_prefetched(c->ws, head + head_len, have - head_len);
	return 0;
}

int migrate_dial(const char *ws_url, const char *server_pem, struct migrate_conn **out, struct ferry_error **err)
{
	if (strncmp(ws_url, "https://", 8) != 0)
		return error_bad_request(err, "migration source %s: only https:// is supported", ws_url);
	const char *host_start = ws_url + 8;
	const char *path = strchr(host_start, '/');
	if (path == NULL)
		return error_bad_request(err, "migration source %s: no path", ws_url);
	cleanup_free char *host = strndup(host_start, (size_t)(path - host_start));

	struct migrate_conn *c = xcalloc(1, sizeof(*c));
	c->fd = -1;
	/* This libcurl (GnuTLS) takes a CA only from a file. */
	c->ca_path = xasprintf("%s/migrate-ca-XXXXXX", daemon_ctx->cache_dir);
	int fd = mkstemp(c->ca_path);
	if (fd < 0) {
		error_sys(err, errno, "mkstemp %s", c->ca_path);
		free(c->ca_path);
		c->ca_path = NULL;
		migrate_conn_free(c);
		return -1;
	}
	size_t len = strlen(server_pem);
	bool written = write(fd, server_pem, len) == (ssize_t)len;
	close(fd);
	if (!written) {
		migrate_conn_free(c);
		return error_sys(err, errno, "write %s", c->ca_path);
	}
	c->curl = curl_easy_init();
	if (c->curl == NULL)
		abort();
	cleanup_free char *cert = xasprintf("%s/server.crt", daemon_ctx->root);
	cleanup_free char *key = xasprintf("%s/server.key", daemon_ctx->root);
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c->curl, CURLOPT_URL, ws_url);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c->curl, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(c->curl, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(c->curl, CURLOPT_SSLKEY, key);
	curl_easy_setopt(c->curl, CURLOPT_SSLKEYTYPE, "PEM");
	/* The peer is named by its certificate, not its address. */
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_path);
	CURLcode rc = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
	curl_socket_t sock = CURL_SOCKET_BAD;
	if (rc == CURLE_OK)
		rc = curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &sock);
	if (rc != CURLE_OK || sock == CURL_SOCKET_BAD) {
		error_set(err, 502, ECONNREFUSED, "connect to the migration source %s: %s", host,
			  errbuf[0] ? errbuf : curl_easy_strerror(rc));
		migrate_conn_free(c);
		return -1;
	}
	c->fd = (int)sock;
	if (upgrade(c, host, path, err) < 0) {
		migrate_conn_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

struct ws *migrate_conn_ws(struct migrate_conn *c)
{
	return c->ws;
}

void migrate_conn_free(struct migrate_conn *c)
{
	if (c == NULL)
		return;
	ws_free(c->ws); /* leaves the socket to curl */
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	if (c->ca_path != NULL)
		unlink(c->ca_path);
	free(c->ca_path);
	free(c);
}
