/* HTTP to ferryd with libcurl, and LXD's response envelope. */
#include "cli/client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client_tls.h"
#include "cli/progress.h"
#include "cli/remotes.h"
#include "cli/terminal.h"
#include "common/util.h"

struct client {
	char *remote;
	char *socket_path;      /* the local remote's unix socket, else NULL */
	char *base_url;         /* "http://unix.socket" or "https://HOST:PORT" */
	char *host;             /* the Host header: "unix.socket" or "HOST:PORT" */
	/* HTTPS: the client's identity, and the server certificate it was
	 * accepted with (NULL on first contact: any is taken, and kept in
	 * seen_cert_pem for the user to approve). */
	char *cert_path, *key_path;
	char *server_cert_path;
	char *pin;
	char *seen_cert_pem;
	CURL *curl; /* reused: keeps the connection alive between requests */
};

/* Host part of every URL to the unix socket: the socket decides where it goes. */
#define CLIENT_UNIX_URL "http://unix.socket"

const char *client_socket_path(const struct client *c)
{
	return c->socket_path ? c->socket_path : c->base_url;
}

const char *client_remote_name(const struct client *c)
{
	return c->remote;
}

bool client_is_local(const struct client *c)
{
	return c->socket_path != NULL;
}

const char *client_server_certificate(const struct client *c)
{
	return c->seen_cert_pem;
}

static void curl_ready(void)
{
	static bool ready;
	if (!ready) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		ready = true;
	}
}

static struct client *client_new_local(const char *name)
{
	const char *dir = getenv("FERRY_DIR");
	if (dir == NULL || *dir == '\0')
		dir = "/var/lib/ferry";
	struct client *c = xcalloc(1, sizeof(*c));
	c->remote = xstrdup(name);
	c->socket_path = xasprintf("%s/unix.socket", dir);
	c->base_url = xstrdup(CLIENT_UNIX_URL);
	c->host = xstrdup("unix.socket");
	return c;
}

int client_open_url(const char *name, const char *url, const char *server_cert_path, struct client **out,
		    struct ferry_error **err)
{
	curl_ready();
	if (strncmp(url, "https://", 8) != 0)
		return error_bad_request(err, "Invalid address \"%s\" for remote \"%s\"", url, name);
	cleanup_free char *cert = NULL, *key = NULL, *pin = NULL;
	if (client_tls_identity(&cert, &key, err) < 0)
		return error_wrap(err, "the client certificate");
	if (server_cert_path != NULL) {
		cleanup_free char *pem = NULL;
		if (access(server_cert_path, F_OK) != 0)
			return error_set(err, 403, ENOENT,
					 "No certificate is saved for remote \"%s\" (%s): remove it and add it again",
					 name, server_cert_path);
		if (file_read(server_cert_path, &pem, NULL, err) < 0 || client_tls_pin(pem, &pin, err) < 0)
			return error_wrap(err, "the saved certificate of remote \"%s\"", name);
	}
	struct client *c = xcalloc(1, sizeof(*c));
	c->remote = xstrdup(name);
	c->base_url = xstrdup(url);
	c->host = xstrdup(url + 8);
	c->cert_path = steal_pointer(&cert);
	c->key_path = steal_pointer(&key);
	c->server_cert_path = server_cert_path ? xstrdup(server_cert_path) : NULL;
	c->pin = steal_pointer(&pin);
	*out = c;
	return 0;
}

int client_open(const char *remote, struct client **out, struct ferry_error **err)
{
	curl_ready();
	cleanup_free char *name = remote != NULL && *remote != '\0' ? xstrdup(remote) : remotes_default_name();
	cleanup_free char *addr = NULL;
	if (remotes_address(name, &addr, err) < 0)
		return -1;
	if (strncmp(addr, "unix://", 7) == 0) {
		struct client *c = client_new_local(name);
		if (addr[7] != '\0') {
			free(c->socket_path);
			c->socket_path = xstrdup(addr + 7);
		}
		*out = c;
		return 0;
	}
	cleanup_free char *cert_path = remotes_server_cert_path(name);
	return client_open_url(name, addr, cert_path, out, err);
}

void client_free(struct client *c)
{
	if (c == NULL)
		return;
	if (c->curl != NULL)
		curl_easy_cleanup(c->curl);
	free(c->remote);
	free(c->socket_path);
	free(c->base_url);
	free(c->host);
	free(c->cert_path);
	free(c->key_path);
	free(c->server_cert_path);
	free(c->pin);
	free(c->seen_cert_pem);
	free(c);
}

void client_freep(struct client **c)
{
	client_free(*c);
}

char *client_url(const struct client *c, const char *path)
{
	return xasprintf("%s%s", c->base_url, path);
}

const char *client_host(const struct client *c)
{
	return c->host;
}

void client_curl_transport(struct client *c, void *handle)
{
	CURL *curl = handle;
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "ferry/" FERRY_VERSION);
	if (c->socket_path != NULL) {
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
		return;
	}
	/* HTTP/1.1: the websocket upgrade runs over the same kind of connection. */
	curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert_path);
	curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key_path);
	curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A server that vanishes (its host gone, the link cut) ends a long wait
	 * on an operation within about half a minute instead of never. */
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(curl, CURLOPT_TCP_KEEPINTVL, 2L);
	/* The server is known by its certificate, not by its name: the saved
	 * certificate is the only trust anchor (no system CAs), and its public
	 * key is pinned as well. */
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	if (c->server_cert_path != NULL) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->server_cert_path);
		curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, c->pin);
	} else {
		/* First contact: take any certificate, and keep it for approval. */
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_CERTINFO, 1L);
	}
}

/* First contact: the certificate of the connection just made. */
static void capture_certificate(struct client *c, CURL *curl)
{
	if (c->socket_path != NULL || c->server_cert_path != NULL || c->seen_cert_pem != NULL)
		return;
	struct curl_certinfo *info = NULL;
	if (curl_easy_getinfo(curl, CURLINFO_CERTINFO, &info) != CURLE_OK || info == NULL || info->num_of_certs < 1)
		return;
	for (struct curl_slist *s = info->certinfo[0]; s != NULL; s = s->next)
		if (strncmp(s->data, "Cert:", 5) == 0)
			c->seen_cert_pem = xstrdup(s->data + 5);
}

/* The certificate the server presents now, when it is not the saved one. */
static char *probe_certificate(struct client *c)
{
	struct client *probe = NULL;
	if (client_open_url(c->remote, c->base_url, NULL, &probe, NULL) < 0)
		return NULL;
	char *pem = NULL;
	if (client_query(probe, "GET", "/1.0", NULL, NULL, NULL) == 0 && probe->seen_cert_pem != NULL)
		pem = xstrdup(probe->seen_cert_pem);
	client_free(probe);
	return pem;
}

int client_curl_error(struct client *c, int code, const char *errbuf, const char *what, struct ferry_error **err)
{
	CURLcode rc = code;
	const char *detail = errbuf != NULL && *errbuf ? errbuf : curl_easy_strerror(rc);
	if (c->socket_path != NULL) {
		if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) {
			int e = access(c->socket_path, F_OK) == 0 ? ECONNREFUSED : ENOENT;
			return error_set(err, 503, e, "cannot reach ferryd at %s: %s", c->socket_path, strerror(e));
		}
		return error_set(err, 503, EIO, "%s: %s", what, detail);
	}
	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH ||
	    rc == CURLE_SSL_CACERT_BADFILE) {
		cleanup_free char *saved = NULL, *saved_fp = NULL, *now = NULL, *now_fp = NULL;
		if (file_read(c->server_cert_path, &saved, NULL, NULL) == 0)
			client_tls_fingerprint(saved, &saved_fp, NULL);
		now = probe_certificate(c);
		if (now != NULL)
			client_tls_fingerprint(now, &now_fp, NULL);
		return error_set(err, 403, EPERM,
				 "The certificate of remote \"%s\" (%s) has changed: refusing to talk to it.\n"
				 "WARNING: this may be an attack, or the server may have a new certificate.\n"
				 "  saved certificate:   %s (%s)\n"
				 "  server's certificate: %s\n"
				 "If the change is expected, remove the remote and add it again.",
				 c->remote, c->base_url, saved_fp ? saved_fp : "?", c->server_cert_path,
				 now_fp ? now_fp : "unknown");
	}
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_OPERATION_TIMEDOUT)
		return error_set(err, 503, ECONNREFUSED, "cannot reach remote \"%s\" at %s: %s", c->remote, c->base_url,
				 detail);
	return error_set(err, 503, EIO, "%s (remote \"%s\", %s): %s", what, c->remote, c->base_url, detail);
}

char *client_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	if (e == NULL)
		abort();
	char *copy = xstrdup(e);
	curl_free(e);
	return copy;
}

const char *client_operation_id(const json_t *op)
{
	const char *id = json_string_value(json_object_get(op, "id"));
	if (id != NULL)
		return id;
	const char *url = json_string_value(json_object_get(op, "operation"));
	if (url != NULL && strrchr(url, '/') != NULL)
		return strrchr(url, '/') + 1;
	return NULL;
}

/* One exchange: what was sent and what came back. */
struct exchange {
	long status;
	json_t *headers;   /* lower-cased name -> value */
	char *body;        /* when buffered */
	size_t body_len, body_cap;
	int sink_fd;       /* raw body goes here when >= 0 and the answer is not JSON */
	bool sink_decided, to_sink;
	int sink_errno;
	int source_fd;     /* upload body */
	CURL *curl;
};

static size_t on_header(char *buf, size_t size, size_t n, void *data)
{
	struct exchange *x = data;
	size_t len = size * n;
	const char *colon = memchr(buf, ':', len);
	if (colon == NULL) {
		/* A status line starts a new header block (after 100 Continue). */
		if (len > 5 && strncmp(buf, "HTTP/", 5) == 0)
			json_object_clear(x->headers);
		return len;
	}
	cleanup_free char *name = strndup(buf, colon - buf);
	if (name == NULL)
		abort();
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	const char *v = colon + 1, *end = buf + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	json_object_set_new(x->headers, name, json_stringn(v, end - v));
	return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *data)
{
	struct exchange *x = data;
	size_t len = size * n;
	if (!x->sink_decided) {
		long code = 0;
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
		const char *type = json_string_value(json_object_get(x->headers, "content-type"));
		bool is_json = type != NULL && strncmp(type, "application/json", 16) == 0;
		x->to_sink = x->sink_fd >= 0 && code < 300 && !is_json;
		x->sink_decided = true;
	}
	if (x->to_sink) {
		for (size_t off = 0; off < len;) {
			ssize_t w = write(x->sink_fd, buf + off, len - off);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				x->sink_errno = errno;
				return 0; /* aborts the transfer */
			}
			off += w;
		}
		return len;
	}
	if (x->body_len + len + 1 > x->body_cap) {
		size_t cap = (x->body_len + len + 1) * 2;
		char *b = realloc(x->body, cap);
		if (b == NULL)
			abort();
		x->body = b;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, buf, len);
	x->body_len += len;
	x->body[x->body_len] = '\0';
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *data)
{
	struct exchange *x = data;
	for (;;) {
		ssize_t r = read(x->source_fd, buf, size * n);
		if (r >= 0)
			return (size_t)r;
		if (errno != EINTR)
			return CURL_READFUNC_ABORT;
	}
}

static CURL *client_handle(struct client *c)
{
	if (c->curl == NULL) {
		c->curl = curl_easy_init();
		if (c->curl == NULL)
			abort();
	}
	curl_easy_reset(c->curl);
	client_curl_transport(c, c->curl);
	if (cli_debug)
		curl_easy_setopt(c->curl, CURLOPT_VERBOSE, 1L);
	return c->curl;
}

/* Perform method on path. body_json (a serialised JSON document) or
 * source_fd (>= 0) is the body; extra_headers NULL-terminated. */
static int client_exchange(struct client *c, const char *method, const char *path, const char *body_json,
			   const char *const *extra_headers, struct exchange *x, struct ferry_error **err)
{
	CURL *curl = client_handle(c);
	x->curl = curl;
	x->headers = json_object();
	cleanup_free char *url = client_url(c, path);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	/* No "Expect: 100-continue" round trip for large bodies. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	for (size_t i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++)
		hdrs = curl_slist_append(hdrs, extra_headers[i]);

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
	if (body_json != NULL) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body_json);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body_json));
	} else if (x->source_fd >= 0) {
		struct stat st;
		hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(curl, CURLOPT_READDATA, x);
		if (fstat(x->source_fd, &st) == 0 && S_ISREG(st.st_mode))
			curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(st.st_size - lseek(x->source_fd, 0, SEEK_CUR)));
		else
			hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (strcmp(method, "GET") != 0)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);

	CURLcode rc = curl_easy_perform(curl);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		if (x->sink_errno != 0)
			return error_sys(err, x->sink_errno, "Failed to write the download");
		cleanup_free char *what = xasprintf("%s %s", method, path);
		return client_curl_error(c, rc, errbuf, what, err);
	}
	capture_certificate(c, curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &x->status);
	return 0;
}

static void exchange_clear(struct exchange *x)
{
	json_decref(x->headers);
	free(x->body);
}

/* The envelope of a buffered answer: error answers become *err. */
static int envelope_parse(const struct exchange *x, const char *method, const char *path, json_t **root,
			  struct ferry_error **err)
{
	json_error_t jerr;
	json_t *doc = x->body ? json_loadb(x->body, x->body_len, 0, &jerr) : NULL;
	if (doc == NULL || !json_is_object(doc)) {
		json_decref(doc);
		if (x->status >= 400)
			return error_set(err, (int)x->status, 0, "%s %s: HTTP %ld%s%.200s", method, path, x->status,
					 x->body_len ? ": " : "", x->body ? x->body : "");
		return error_set(err, 502, EPROTO, "%s %s: invalid answer from ferryd (HTTP %ld)", method, path, x->status);
	}
	const char *type = json_string_value(json_object_get(doc, "type"));
	if ((type != NULL && strcmp(type, "error") == 0) || x->status >= 400) {
		const char *msg = json_string_value(json_object_get(doc, "error"));
		json_int_t code = json_integer_value(json_object_get(doc, "error_code"));
		error_set(err, code ? (int)code : (int)x->status, 0, "%s", msg && *msg ? msg : "unknown error");
		json_decref(doc);
		return -1;
	}
	*root = doc;
	return 0;
}

static int client_request(struct client *c, const char *method, const char *path, json_t *body, json_t **root,
			  struct ferry_error **err)
{
	cleanup_free char *body_json = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct exchange x = { .sink_fd = -1, .source_fd = -1 };
	int r = client_exchange(c, method, path, body_json, NULL, &x, err);
	if (r == 0)
		r = envelope_parse(&x, method, path, root, err);
	exchange_clear(&x);
	return r;
}

int client_query(struct client *c, const char *method, const char *path, json_t *body, json_t **metadata,
		 struct ferry_error **err)
{
	json_t *root = NULL;
	if (client_request(c, method, path, body, &root, err) < 0)
		return -1;
	if (metadata != NULL) {
		json_t *m = json_object_get(root, "metadata");
		*metadata = m ? json_incref(m) : json_null();
	}
	json_decref(root);
	return 0;
}

int client_query_operation(struct client *c, const char *method, const char *path, json_t *body, json_t **op,
			   struct ferry_error **err)
{
	json_t *root = NULL;
	if (client_request(c, method, path, body, &root, err) < 0)
		return -1;
	const char *type = json_string_value(json_object_get(root, "type"));
	*op = NULL;
	if (type != NULL && strcmp(type, "async") == 0) {
		json_t *m = json_object_get(root, "metadata");
		*op = json_is_object(m) ? json_incref(m) : json_object();
		/* Make sure the id is known even if the metadata lacks it. */
		if (client_operation_id(*op) == NULL && json_object_get(root, "operation") != NULL)
			json_object_set(*op, "operation", json_object_get(root, "operation"));
	}
	json_decref(root);
	return 0;
}

static bool operation_done(const json_t *op)
{
	json_int_t code = json_integer_value(json_object_get(op, "status_code"));
	return code >= 200;
}

int client_operation_wait(struct client *c, const json_t *op, const char *progress_label, json_t **final,
			  struct ferry_error **err)
{
	if (final != NULL)
		*final = NULL;
	if (op == NULL)
		return 0;
	const char *id = client_operation_id(op);
	if (id == NULL)
		return error_set(err, 502, EPROTO, "ferryd answered with an operation without an id");
	cleanup_free char *escaped = client_escape(id);
	json_t *last = NULL;
	bool show = progress_label != NULL && !cli_quiet && isatty(STDOUT_FILENO);
	bool shown = false;
	if (show) {
		/* Poll, so the progress can be shown as it moves: five redraws a
		 * second, each fitted to the terminal's width of the moment. */
		cleanup_free char *path = xasprintf("/1.0/operations/%s", escaped);
		for (unsigned tick = 0;; tick++) {
			if (client_query(c, "GET", path, NULL, &last, err) < 0)
				break;
			if (operation_done(last))
				break;
			int width, height;
			terminal_size(STDOUT_FILENO, &width, &height);
			cleanup_free char *line =
				progress_render_operation(json_object_get(last, "metadata"), progress_label, width, tick);
			if (line != NULL) {
				printf("\r\033[K%s", line);
				fflush(stdout);
				shown = true;
			}
			json_decref(last);
			last = NULL;
			struct timespec ts = { 0, 200 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		if (shown) {
			printf("\r\033[K");
			fflush(stdout);
		}
	} else {
		cleanup_free char *path = xasprintf("/1.0/operations/%s/wait?timeout=-1", escaped);
		client_query(c, "GET", path, NULL, &last, err);
	}
	if (last == NULL)
		return -1;
	const char *status = json_string_value(json_object_get(last, "status"));
	json_int_t code = json_integer_value(json_object_get(last, "status_code"));
	if (code != 200 && (status == NULL || strcmp(status, "Success") != 0)) {
		const char *msg = json_string_value(json_object_get(last, "err"));
		if (msg != NULL && *msg)
			error_set(err, 0, 0, "%s", msg);
		else
			error_set(err, 0, 0, "Operation %s", status ? status : "failed");
		json_decref(last);
		return -1;
	}
	if (final != NULL)
		*final = last;
	else
		json_decref(last);
	return 0;
}

int client_run_operation(struct client *c, const char *method, const char *path, json_t *body,
			 const char *progress_label, json_t **final, struct ferry_error **err)
{
	json_t *op = NULL;
	if (client_query_operation(c, method, path, body, &op, err) < 0)
		return -1;
	int r = client_operation_wait(c, op, progress_label, final, err);
	json_decref(op);
	return r;
}

void client_raw_clear(struct client_raw *raw)
{
	json_decref(raw->headers);
	json_decref(raw->metadata);
	raw->headers = raw->metadata = NULL;
}

int client_download(struct client *c, const char *path, int fd, struct client_raw *out, struct ferry_error **err)
{
	struct exchange x = { .sink_fd = fd, .source_fd = -1 };
	*out = (struct client_raw){ 0 };
	int r = client_exchange(c, "GET", path, NULL, NULL, &x, err);
	if (r == 0 && !x.to_sink && (x.body != NULL || x.status >= 300)) {
		json_t *root = NULL;
		r = envelope_parse(&x, "GET", path, &root, err);
		if (r == 0) {
			out->metadata = json_incref(json_object_get(root, "metadata"));
			json_decref(root);
		}
	}
	if (r == 0)
		out->headers = json_incref(x.headers);
	exchange_clear(&x);
	return r;
}

int client_upload(struct client *c, const char *method, const char *path, int fd, const char *const *headers,
		  json_t **answer, struct ferry_error **err)
{
	struct exchange x = { .sink_fd = -1, .source_fd = fd };
	int r = client_exchange(c, method, path, NULL, headers, &x, err);
	json_t *root = NULL;
	if (r == 0)
		r = envelope_parse(&x, method, path, &root, err);
	exchange_clear(&x);
	if (r == 0) {
		if (answer != NULL)
			*answer = root;
		else
			json_decref(root);
	}
	return r;
}
