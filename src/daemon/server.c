/* libmicrohttpd on ferryd's unix socket and, when core.https_address is
 * set, on a TCP address with TLS (libmicrohttpd's own, on GnuTLS): a thread
 * per connection, bodies collected (and spooled to disk when large), routes
 * matched, responses sent, websockets upgraded and handed to their
 * endpoint.
 *
 * Over HTTPS every request is checked against the trust store as it
 * arrives (not once per connection), so a certificate removed from it
 * loses access at once, also on connections already open. */
#include "daemon/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/ws.h"
#include "daemon/daemon.h"
#include "daemon/db_certificates.h"
#include "daemon/tls.h"

/* The HTTPS listener's defences against slow and hostile clients: an idle
 * connection (also one stuck in its handshake or halfway through its
 * headers) is closed after HTTPS_IDLE_TIMEOUT_S; connections are capped in
 * total and per client address; every connection thread gets a small
 * stack (its pages are only touched as far as handlers go). */
#define HTTPS_IDLE_TIMEOUT_S 30
#define HTTPS_CONNECTION_LIMIT 4096
#define HTTPS_PER_IP_CONNECTION_LIMIT 1024
#define HTTPS_THREAD_STACK_SIZE (1u << 20)
#define HTTPS_DEFAULT_PORT "8443"
/* TLS 1.3 preferred, 1.2 at least. */
#define HTTPS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

/* Every endpoint file's routes (request.h). */
static const struct route *const route_tables[] = {
	api_server_routes,
	api_operations_routes,
	api_events_routes,
	api_images_routes,
	api_instances_routes,
	api_instance_state_routes,
	api_instance_exec_routes,
	api_instance_files_routes,
	api_instance_logs_routes,
	api_instance_snapshots_routes,
	api_certificates_routes,
	api_profiles_routes,
	NULL,
};

static struct MHD_Daemon *httpd;
static char *server_socket_path;
static char *server_spool_dir;
static atomic_int handlers_running;

/* The HTTPS listener: its daemon and the address it was configured with.
 * A listener that is moved or closed is only quiesced (no new
 * connections), never stopped: stopping would free connections that
 * websocket threads still hold. Its open connections end by themselves
 * (idle timeout, client gone), and every request on them is still checked
 * against the trust store. */
static pthread_mutex_t https_lock = PTHREAD_MUTEX_INITIALIZER;
static struct MHD_Daemon *https_daemon;
static char *https_address;
/* Passed as the access handler's cls: tells HTTPS requests apart. */
static const char listener_https = 'h';

/* One request's state between libmicrohttpd's calls of the access handler. */
struct request_state {
	struct request req;
	char *path;
	char *body;            /* in memory up to REQUEST_BODY_MEMORY_MAX */
	size_t body_len, body_cap;
	int spool_fd;          /* then in spool_path */
	char *spool_path;
	unsigned long long total;
	unsigned long long body_max;   /* the route's limit: JSON or bulk */
	size_t memory_max;     /* kept in memory up to this, then spooled */
	bool too_large;
	bool spool_failed;
	struct response *refusal; /* answered instead of the route (403) */
};

static void request_state_free(struct request_state *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < 4; i++)
		free(st->req.params[i]);
	json_decref(st->req.body);
	free(st->body);
	if (st->spool_fd >= 0)
		close(st->spool_fd);
	if (st->spool_path != NULL) {
		unlink(st->spool_path);
		free(st->spool_path);
	}
	free(st->path);
	response_free(st->refusal);
	free(st);
}

/* The best route for the path; *path_known tells a wrong method from an unknown path. */
static const struct route *route_find(const char *method, const char *path, char *params[4], bool *path_known)
{
	const char *best_pattern = NULL;
	int best = -1;
	for (size_t t = 0; route_tables[t] != NULL; t++) {
		for (const struct route *r = route_tables[t]; r->pattern != NULL; r++) {
			int score = route_match(r->pattern, path, NULL);
			if (score > best) {
				best = score;
				best_pattern = r->pattern;
			}
		}
	}
	*path_known = best_pattern != NULL;
	if (best_pattern == NULL)
		return NULL;
	for (size_t t = 0; route_tables[t] != NULL; t++) {
		for (const struct route *r = route_tables[t]; r->pattern != NULL; r++) {
			if (strcmp(r->pattern, best_pattern) == 0 && strcmp(r->method, method) == 0) {
				route_match(r->pattern, path, params);
				return r;
			}
		}
	}
	return NULL;
}

static bool body_append(struct request_state *st, const char *data, size_t len)
{
	st->total += len;
	if (st->too_large || st->total > st->body_max) {
		st->too_large = true;
		return true;
	}
	if (st->spool_failed)
		return true;
	if (st->spool_fd < 0 && st->body_len + len > st->memory_max) {
		/* Too big to keep in memory: spool what we have and the rest to disk. */
		st->spool_path = xasprintf("%s/upload.XXXXXX", server_spool_dir);
		st->spool_fd = mkostemp(st->spool_path, O_CLOEXEC);
		if (st->spool_fd < 0) {
			log_error("spool request body to %s: %s", st->spool_path, strerror(errno));
			free(st->spool_path);
			st->spool_path = NULL;
			st->spool_failed = true;
			return true;
		}
		if (st->body_len > 0 && write(st->spool_fd, st->body, st->body_len) != (ssize_t)st->body_len)
			st->spool_failed = true;
		free(st->body);
		st->body = NULL;
		st->body_len = st->body_cap = 0;
	}
	if (st->spool_fd >= 0) {
		while (len > 0) {
			ssize_t w = write(st->spool_fd, data, len);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				log_error("spool request body to %s: %s", st->spool_path, strerror(errno));
				st->spool_failed = true;
				return true;
			}
			data += w;
			len -= w;
		}
		return true;
	}
	if (st->body_len + len + 1 > st->body_cap) {
		size_t cap = st->body_cap ? st->body_cap : 4096;
		while (cap < st->body_len + len + 1)
			cap *= 2;
		char *b = realloc(st->body, cap);
		if (b == NULL)
			abort();
		st->body = b;
		st->body_cap = cap;
	}
	memcpy(st->body + st->body_len, data, len);
	st->body_len += len;
	st->body[st->body_len] = '\0';
	return true;
}

/* Parse the body as JSON when it says or looks like JSON. Returns a 400
 * response (jansson's message) when it does and does not parse. */
static struct response *body_parse_json(struct request_state *st)
{
	if (st->body == NULL || st->body_len == 0)
		return NULL;
	const char *type = request_header(&st->req, MHD_HTTP_HEADER_CONTENT_TYPE);
	bool json;
	if (type != NULL && strcasestr(type, "json") != NULL) {
		json = true;
	} else if (type == NULL || strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0 ||
		   strncasecmp(type, "text/plain", 10) == 0) {
		/* curl -d and other clients that don't set a type */
		const char *c = st->body + strspn(st->body, " \t\r\n");
		json = *c == '{' || *c == '[';
	} else {
		json = false;
	}
	if (!json)
		return NULL;
	json_error_t jerr;
	st->req.body = json_loadb(st->body, st->body_len, JSON_DECODE_ANY, &jerr);
	if (st->req.body == NULL)
		return response_error(400, "Invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
	return NULL;
}

/* Handing an upgraded connection back (MHD_UPGRADE_ACTION_CLOSE) races
 * with its cleanup in libmicrohttpd 0.9.75: MHD_upgrade_action sets
 * urh->was_closed and only then calls MHD_resume_connection(connection),
 * which writes connection->resuming. In between, the connection's own
 * thread may resume it too (for a plain socket clean_ready is set before
 * our handler even runs, and resuming stays set from an earlier pass), and
 * the listen thread then frees the connection: the late write lands in
 * freed memory (glibc: "malloc(): mismatching next->prev_size"). Later
 * libmicrohttpd sets was_closed under its cleanup lock
 * (MHD_upgraded_connection_mark_app_closed_). Here every CLOSE holds
 * upgrade_close_lock, and the listen thread takes it in the
 * MHD_CONNECTION_NOTIFY_CLOSED callback, which it calls before it frees a
 * connection: no connection is freed while a CLOSE is still running. */
static pthread_mutex_t upgrade_close_lock = PTHREAD_MUTEX_INITIALIZER;

static void upgraded_close(struct MHD_UpgradeResponseHandle *urh)
{
	pthread_mutex_lock(&upgrade_close_lock);
	MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	pthread_mutex_unlock(&upgrade_close_lock);
}

/* Both listeners' MHD_OPTION_NOTIFY_CONNECTION (cls: &listener_https for HTTPS). */
static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		/* Before the handshake: ask for the client's certificate. */
		if (cls == &listener_https)
			tls_connection_request_peer(conn);
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		/* The connection is freed after this returns: wait out a CLOSE in progress. */
		pthread_mutex_lock(&upgrade_close_lock);
		pthread_mutex_unlock(&upgrade_close_lock);
	}
}

struct upgraded {
	websocket_run run;
	void *data;
	MHD_socket sock;
	struct MHD_UpgradeResponseHandle *urh;
	char *extra;
	size_t extra_len;
};

static ssize_t upgraded_recv(void *ctx, void *buf, size_t len)
{
	struct upgraded *u = ctx;
	return recv(u->sock, buf, len, MSG_DONTWAIT);
}

static ssize_t upgraded_send(void *ctx, const void *buf, size_t len)
{
	struct upgraded *u = ctx;
	return send(u->sock, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void *upgraded_thread(void *arg)
{
	struct upgraded *u = arg;
	struct ws_transport t = { .recv = upgraded_recv, .send = upgraded_send, .fd = u->sock, .ctx = u };
	struct ws *ws = ws_new_transport(&t, true);
	ws_push_prefetched(ws, u->extra, u->extra_len);
	/* run owns ws and frees it; the socket itself belongs to libmicrohttpd. */
	u->run(ws, u->data);
	upgraded_close(u->urh);
	free(u->extra);
	free(u);
	return NULL;
}

static void upgrade_handler(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
			    size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct upgraded *u = cls;
	u->sock = sock;
	u->urh = urh;
	if (extra_in_size > 0) {
		u->extra = malloc(extra_in_size);
		if (u->extra == NULL)
			abort();
		memcpy(u->extra, extra_in, extra_in_size);
		u->extra_len = extra_in_size;
	}
	/* Websockets live long (events, exec): give each its own thread so the
	 * connection thread can finish with libmicrohttpd. */
	pthread_t thread;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&thread, &attr, upgraded_thread, u) != 0) {
		log_error("websocket thread: %s", strerror(errno));
		upgraded_close(urh);
		free(u->extra);
		free(u);
	}
	pthread_attr_destroy(&attr);
}

static bool header_has_token(const char *value, const char *token)
{
	return value != NULL && strcasestr(value, token) != NULL;
}

static enum MHD_Result queue_response(struct MHD_Connection *conn, struct request_state *st, struct response *resp)
{
	struct MHD_Response *mhd = NULL;
	int status = resp->status;
	switch (resp->kind) {
	case RESPONSE_JSON:
	case RESPONSE_RAW:
		mhd = MHD_create_response_from_buffer(resp->len, resp->data, MHD_RESPMEM_MUST_FREE);
		if (mhd != NULL)
			resp->data = NULL;
		break;
	case RESPONSE_FD:
		mhd = MHD_create_response_from_fd(resp->size, resp->fd);
		if (mhd != NULL)
			resp->fd = -1;
		break;
	case RESPONSE_WEBSOCKET: {
		const char *key = request_header(&st->req, "Sec-WebSocket-Key");
		if (!header_has_token(request_header(&st->req, MHD_HTTP_HEADER_UPGRADE), "websocket") ||
		    !header_has_token(request_header(&st->req, MHD_HTTP_HEADER_CONNECTION), "upgrade") || key == NULL) {
			/* The endpoint's data leaks here: run never gets called. Rare (a
			 * client that asks a websocket endpoint without upgrading). */
			struct response *err = response_error(400, "This endpoint is a websocket: upgrade the connection");
			enum MHD_Result r = queue_response(conn, st, err);
			response_free(err);
			return r;
		}
		struct upgraded *u = xcalloc(1, sizeof(*u));
		u->run = resp->run;
		u->data = resp->run_data;
		mhd = MHD_create_response_for_upgrade(upgrade_handler, u);
		if (mhd == NULL) {
			free(u);
			break;
		}
		cleanup_free char *accept = ws_accept_key(key);
		MHD_add_response_header(mhd, MHD_HTTP_HEADER_UPGRADE, "websocket");
		MHD_add_response_header(mhd, "Sec-WebSocket-Accept", accept);
		status = MHD_HTTP_SWITCHING_PROTOCOLS;
		break;
	}
	}
	if (mhd == NULL) {
		log_error("%s %s: cannot create the response", st->req.method, st->path);
		return MHD_NO;
	}
	if (resp->content_type != NULL)
		MHD_add_response_header(mhd, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
	for (size_t i = 0; i < resp->n_headers; i++)
		MHD_add_response_header(mhd, resp->headers[i].name, resp->headers[i].value);
	enum MHD_Result r = MHD_queue_response(conn, status, mhd);
	MHD_destroy_response(mhd);
	return r;
}

static struct response *dispatch(struct request_state *st)
{
	const char *method = st->req.method;
	if (strcmp(method, "GET") && strcmp(method, "PUT") && strcmp(method, "POST") && strcmp(method, "DELETE") &&
	    strcmp(method, "PATCH") && strcmp(method, "HEAD"))
		return response_error(404, "Method \"%s\" not found", method);
	if (st->too_large)
		return response_error(413, "Request body larger than %llu bytes", st->body_max);
	if (st->spool_failed)
		return response_error(500, "Could not store the request body");
	bool path_known = false;
	const struct route *route = route_find(method, st->path, st->req.params, &path_known);
	if (route == NULL) {
		/* LXD answers an unknown path 404 "not found", a known one without
		 * this method 501 "not implemented" (lxd/daemon.go). */
		return path_known ? response_error(501, "not implemented") : response_error(404, "not found");
	}
	struct response *bad = body_parse_json(st);
	if (bad != NULL)
		return bad;
	st->req.raw_body = st->body;
	st->req.raw_len = st->body_len;
	st->req.body_file = st->spool_fd >= 0 ? st->spool_path : NULL;
	if (st->spool_fd >= 0)
		fsync(st->spool_fd);
	struct response *resp = route->handler(&st->req);
	if (resp == NULL)
		resp = response_error(500, "The handler of %s %s gave no response", method, st->path);
	return resp;
}

/* Routes whose bodies are bulk data (image upload, file push): spooled to
 * disk, up to REQUEST_BODY_MAX. Every other body is JSON, kept in memory up
 * to REQUEST_JSON_BODY_MAX. */
static bool route_takes_bulk_body(const struct route *route)
{
	static const char *const bulk[][2] = {
		{ "POST", "/1.0/images" },
		{ "POST", "/1.0/instances/{name}/files" },
	};
	if (route == NULL)
		return false;
	for (size_t i = 0; i < sizeof(bulk) / sizeof(bulk[0]); i++)
		if (strcmp(route->method, bulk[i][0]) == 0 && strcmp(route->pattern, bulk[i][1]) == 0)
			return true;
	return false;
}

/* Is the client of an HTTPS connection in the trust store, now? */
static bool https_client_trusted(struct MHD_Connection *conn)
{
	cleanup_free char *fingerprint = NULL;
	if (tls_connection_peer(conn, NULL, &fingerprint, NULL) < 0)
		return false;
	return daemon_ctx != NULL && db_certificate_trusted(daemon_ctx->db, fingerprint);
}

/* Answer before the body is read (it is then discarded and the connection
 * closed): refusals that must not cost us the body first. */
static enum MHD_Result refuse_early(struct MHD_Connection *conn, struct request_state *st, struct response *resp)
{
	log_debug("%s %s -> %d (before the body)", st->req.method, st->path, resp->status);
	enum MHD_Result r = queue_response(conn, st, resp);
	response_free(resp);
	return r;
}

/* The first call for a request: its headers are in, its body is not. */
static enum MHD_Result request_begin(struct MHD_Connection *conn, bool https, const char *url, const char *method,
				     struct request_state **out)
{
	struct request_state *st = xcalloc(1, sizeof(*st));
	*out = st;
	st->spool_fd = -1;
	st->req.method = method;
	st->req.conn = conn;
	st->path = xstrdup(url);
	/* "/1.0/instances/" is "/1.0/instances" */
	size_t n = strlen(st->path);
	while (n > 1 && st->path[n - 1] == '/')
		st->path[--n] = '\0';
	/* LXD's older name for its instances, which clients of its 1.0 API
	 * before the "instances" extension use (Debian 12's pylxd 2.2.10
	 * knows no other): the same routes. */
	static const char containers[] = "/1.0/containers";
	size_t nc = sizeof(containers) - 1;
	if (strncmp(st->path, containers, nc) == 0 && (st->path[nc] == '\0' || st->path[nc] == '/')) {
		char *instances = xasprintf("/1.0/instances%s", st->path + nc);
		free(st->path);
		st->path = instances;
	}
	st->req.path = st->path;
	/* The unix socket is root's only; over HTTPS, the trust store decides. */
	st->req.trusted = !https || https_client_trusted(conn);

	char *params[4] = { 0 };
	bool path_known = false;
	const struct route *route = route_find(method, st->path, params, &path_known);
	for (size_t i = 0; i < 4; i++)
		free(params[i]);
	if (!st->req.trusted && (route == NULL || !route->untrusted_ok)) {
		/* With a body: refused before it is read, and the connection
		 * closed. Without: answered in turn, the connection kept. */
		const char *chunked = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
		const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (chunked != NULL || (length != NULL && strtoull(length, NULL, 10) > 0))
			return refuse_early(conn, st, response_error(403, "not authorized"));
		st->refusal = response_error(403, "not authorized");
		st->body_max = 0;
		return MHD_YES;
	}
	bool bulk = route_takes_bulk_body(route);
	st->body_max = !st->req.trusted ? REQUEST_UNTRUSTED_BODY_MAX
		       : bulk		? REQUEST_BODY_MAX
					: REQUEST_JSON_BODY_MAX;
	st->memory_max = bulk ? REQUEST_BODY_MEMORY_MAX : (size_t)st->body_max;
	const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (length != NULL && strtoull(length, NULL, 10) > st->body_max) {
		st->too_large = true;
		return refuse_early(conn, st,
				    response_error(413, "Request body larger than %llu bytes", st->body_max));
	}
	return MHD_YES;
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				      const char *version, const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct request_state *st = *con_cls;
	if (st == NULL) {
		enum MHD_Result r = request_begin(conn, cls == &listener_https, url, method, &st);
		*con_cls = st;
		return r;
	}
	if (st->too_large && *upload_data_size > 0) {
		/* Refused already (chunked body past the limit): discard. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		body_append(st, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	atomic_fetch_add(&handlers_running, 1);
	long long start = now_ms();
	struct response *resp = st->refusal != NULL ? steal_pointer(&st->refusal) : dispatch(st);
	log_debug("%s %s -> %d (%lld ms)", method, st->path, resp->status, now_ms() - start);
	enum MHD_Result r = queue_response(conn, st, resp);
	response_free(resp);
	atomic_fetch_sub(&handlers_running, 1);
	return r;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			      enum MHD_RequestTerminationCode toe)
{
	request_state_free(*con_cls);
	*con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_warn("libmicrohttpd: %s", buf);
}

/* A socket file another ferryd still answers on must not be taken over. */
static int socket_take_over(const char *path, struct ferry_error **err)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path))
		return error_set(err, 400, ENAMETOOLONG, "socket path too long: %s", path);
	strcpy(addr.sun_path, path);
	cleanup_close int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return error_sys(err, errno, "socket");
	if (connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		return error_set(err, 409, EADDRINUSE, "another ferryd is already serving on %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return error_sys(err, errno, "remove stale socket %s", path);
	return 0;
}

static int socket_listen(const char *path, struct ferry_error **err)
{
	if (socket_take_over(path, err) < 0)
		return -1;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	strcpy(addr.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return error_sys(err, errno, "socket");
	/* Created without group/other bits, then opened to root's group only. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old);
	if (r < 0)
		return error_sys(err, errno, "bind %s", path);
	if (chown(path, 0, 0) < 0 && geteuid() == 0)
		return error_sys(err, errno, "chown %s", path);
	if (chmod(path, 0660) < 0)
		return error_sys(err, errno, "chmod %s", path);
	if (listen(fd, 128) < 0)
		return error_sys(err, errno, "listen on %s", path);
	return steal_fd(&fd);
}

int server_start(const char *socket_path, const char *spool_dir, struct ferry_error **err)
{
	int fd = socket_listen(socket_path, err);
	if (fd < 0)
		return error_wrap(err, "serve on %s", socket_path);
	server_socket_path = xstrdup(socket_path);
	server_spool_dir = xstrdup(spool_dir);
	httpd = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
					 MHD_ALLOW_UPGRADE | MHD_USE_ITC | MHD_USE_ERROR_LOG,
				 0, NULL, NULL, access_handler, NULL,
				 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, to catch every message */
				 MHD_OPTION_LISTEN_SOCKET, fd,
				 MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
				 MHD_OPTION_NOTIFY_CONNECTION, connection_notify, NULL,
				 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)0,
				 MHD_OPTION_END);
	if (httpd == NULL) {
		close(fd);
		unlink(socket_path);
		return error_set(err, 500, 0, "serve on %s: libmicrohttpd did not start", socket_path);
	}
	log_info("serving the API on %s", socket_path);
	return 0;
}

void server_quiesce(void)
{
	pthread_mutex_lock(&https_lock);
	if (https_daemon != NULL) {
		MHD_socket fd = MHD_quiesce_daemon(https_daemon);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
		https_daemon = NULL;
	}
	pthread_mutex_unlock(&https_lock);
	if (httpd == NULL)
		return;
	MHD_socket fd = MHD_quiesce_daemon(httpd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	if (server_socket_path != NULL)
		unlink(server_socket_path);
}

/* HTTPS */

static void https_log(void *cls, const char *fmt, va_list ap)
{
	/* Hostile and broken clients make libmicrohttpd talk (failed
	 * handshakes, limits reached): worth a line, not a warning. */
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_info("libmicrohttpd (https): %s", buf);
}

/* core.https_address as LXD takes it: ":8443", "[::]:8443", "ADDR:PORT",
 * "[ADDR6]:PORT", or an address alone (port 8443). Out: host (NULL for
 * every address) and port, malloc'd. */
static int https_address_split(const char *address, char **host, char **port, struct ferry_error **err)
{
	*host = *port = NULL;
	const char *colon;
	if (address[0] == '[') {
		const char *end = strchr(address, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return error_bad_request(err, "Invalid address \"%s\"", address);
		*host = strndup(address + 1, end - address - 1);
		*port = xstrdup(end[1] == ':' ? end + 2 : HTTPS_DEFAULT_PORT);
	} else if ((colon = strchr(address, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		*host = strndup(address, colon - address);
		*port = xstrdup(colon + 1);
	} else {
		/* no colon, or a bare IPv6 address */
		*host = xstrdup(address);
		*port = xstrdup(HTTPS_DEFAULT_PORT);
	}
	char *end = NULL;
	long p = strtol(*port, &end, 10);
	if (**port == '\0' || *end != '\0' || p < 1 || p > 65535) {
		free(*host);
		free(*port);
		*host = *port = NULL;
		return error_bad_request(err, "Invalid port in address \"%s\"", address);
	}
	/* Every address: "", "::" and "0.0.0.0" (IPv4 only) as LXD has them. */
	if (**host == '\0' || strcmp(*host, "::") == 0) {
		free(*host);
		*host = NULL;
	}
	return 0;
}

static int https_socket(const struct addrinfo *ai, bool dual_stack, struct ferry_error **err)
{
	cleanup_close int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return error_sys(err, errno, "socket");
	int one = 1, zero = 0;
	/* A listener moved away and back finds its port in TIME_WAIT. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack ? &zero : &one, sizeof(int));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
		return error_set(err, 400, errno, "%s", strerror(errno));
	if (listen(fd, 1024) < 0)
		return error_sys(err, errno, "listen");
	return steal_fd(&fd);
}

/* A listening socket for core.https_address; 400 with the reason when the
 * address is invalid or cannot be bound (in use, not local). */
static int https_listen(const char *address, struct ferry_error **err)
{
	cleanup_free char *host = NULL, *port = NULL;
	if (https_address_split(address, &host, &port, err) < 0)
		return -1;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ais = NULL;
	/* Every address: IPv6 with IPv4 mapped in, else IPv4 alone. */
	bool every = host == NULL;
	if (every)
		hints.ai_family = AF_INET6;
	int r = getaddrinfo(every ? "::" : host, port, &hints, &ais);
	if (r != 0 && every) {
		hints.ai_family = AF_INET;
		r = getaddrinfo("0.0.0.0", port, &hints, &ais);
	}
	if (r != 0)
		return error_bad_request(err, "Invalid address \"%s\": %s", address, gai_strerror(r));
	int fd = -1;
	cleanup_error struct ferry_error *last = NULL;
	for (struct addrinfo *ai = ais; ai != NULL && fd < 0; ai = ai->ai_next) {
		error_free(&last);
		fd = https_socket(ai, every, &last);
	}
	freeaddrinfo(ais);
	if (fd < 0) {
		error_move(err, &last);
		if (err != NULL && *err != NULL)
			(*err)->status = 400;
		return error_wrap(err, "Cannot listen on \"%s\"", address);
	}
	return fd;
}

static struct MHD_Daemon *https_start(int fd, struct ferry_error **err)
{
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_TLS | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			MHD_ALLOW_UPGRADE | MHD_USE_ITC | MHD_USE_ERROR_LOG,
		0, NULL, NULL, access_handler, (void *)&listener_https,
		MHD_OPTION_EXTERNAL_LOGGER, https_log, NULL, /* first, to catch every message */
		MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_HTTPS_MEM_KEY, tls_server_key_pem(),
		MHD_OPTION_HTTPS_MEM_CERT, tls_server_certificate_pem(),
		MHD_OPTION_HTTPS_PRIORITIES, HTTPS_PRIORITIES,
		MHD_OPTION_NOTIFY_CONNECTION, connection_notify, (void *)&listener_https,
		MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTPS_IDLE_TIMEOUT_S,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTPS_CONNECTION_LIMIT,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)HTTPS_PER_IP_CONNECTION_LIMIT,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)HTTPS_THREAD_STACK_SIZE,
		MHD_OPTION_END);
	if (d == NULL)
		error_set(err, 500, 0, "libmicrohttpd did not start the HTTPS listener (see the log)");
	return d;
}

/* Stop accepting on the current listener (see https_daemon). */
static void https_retire_locked(void)
{
	if (https_daemon == NULL)
		return;
	MHD_socket fd = MHD_quiesce_daemon(https_daemon);
	if (fd != MHD_INVALID_SOCKET) {
		/* The daemon's thread may still sit in poll() on it, which keeps
		 * it open past close(): shutdown frees the port at once. */
		shutdown(fd, SHUT_RDWR);
		close(fd);
	}
	https_daemon = NULL;
	log_info("stopped listening for HTTPS on %s", https_address);
}

int server_https_set(const char *address, struct ferry_error **err)
{
	if (address != NULL && *address == '\0')
		address = NULL;
	pthread_mutex_lock(&https_lock);
	if (address != NULL && https_daemon != NULL && https_address != NULL && strcmp(address, https_address) == 0) {
		pthread_mutex_unlock(&https_lock);
		return 0;
	}
	/* The new listener first: when it fails, the old one stays. */
	struct MHD_Daemon *next = NULL;
	if (address != NULL) {
		int fd = https_listen(address, err);
		if (fd < 0 && err != NULL && *err != NULL && (*err)->errnum == EADDRINUSE && https_daemon != NULL) {
			/* Perhaps the old listener's own port (":8443" after
			 * "127.0.0.1:8443"): close it, try again, and put it
			 * back if that fails too. */
			https_retire_locked();
			error_free(err);
			fd = https_listen(address, err);
			if (fd < 0) {
				cleanup_error struct ferry_error *back_err = NULL;
				int back = https_listen(https_address, &back_err);
				if (back >= 0 && (https_daemon = https_start(back, &back_err)) == NULL)
					close(back);
				if (https_daemon == NULL)
					log_error("HTTPS listener on %s closed, could not reopen it: %s", https_address,
						  back_err ? back_err->msg : "unknown error");
			}
		}
		if (fd < 0) {
			pthread_mutex_unlock(&https_lock);
			return -1;
		}
		next = https_start(fd, err);
		if (next == NULL) {
			close(fd);
			pthread_mutex_unlock(&https_lock);
			return error_wrap(err, "serve HTTPS on %s", address);
		}
	}
	https_retire_locked();
	https_daemon = next;
	free(https_address);
	https_address = address != NULL ? xstrdup(address) : NULL;
	if (address != NULL)
		log_info("serving the API over HTTPS on %s", address);
	pthread_mutex_unlock(&https_lock);
	return 0;
}

static json_t *interface_addresses(const char *port, bool ipv4_only)
{
	json_t *list = json_array();
	struct ifaddrs *ifas = NULL;
	if (getifaddrs(&ifas) < 0)
		return list;
	for (struct ifaddrs *ifa = ifas; ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL)
			continue;
		char text[INET6_ADDRSTRLEN];
		int family = ifa->ifa_addr->sa_family;
		if (family == AF_INET) {
			const struct in_addr *a = &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
			uint32_t h = ntohl(a->s_addr);
			/* global unicast only, as LXD lists them: no loopback, no link-local */
			if ((h >> 24) == 127 || (h >> 16) == 0xa9fe || h == 0)
				continue;
			inet_ntop(AF_INET, a, text, sizeof(text));
			json_array_append_new(list, json_sprintf("%s:%s", text, port));
		} else if (family == AF_INET6 && !ipv4_only) {
			const struct in6_addr *a = &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
			if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_MULTICAST(a) ||
			    IN6_IS_ADDR_UNSPECIFIED(a))
				continue;
			inet_ntop(AF_INET6, a, text, sizeof(text));
			json_array_append_new(list, json_sprintf("[%s]:%s", text, port));
		}
	}
	freeifaddrs(ifas);
	return list;
}

json_t *server_https_addresses(void)
{
	pthread_mutex_lock(&https_lock);
	cleanup_free char *address = https_daemon != NULL && https_address != NULL ? xstrdup(https_address) : NULL;
	pthread_mutex_unlock(&https_lock);
	if (address == NULL)
		return json_array();
	cleanup_free char *host = NULL, *port = NULL;
	if (https_address_split(address, &host, &port, NULL) < 0)
		return json_array();
	if (host == NULL || strcmp(host, "0.0.0.0") == 0)
		return interface_addresses(port, host != NULL);
	if (strchr(host, ':') != NULL)
		return json_pack("[o]", json_sprintf("[%s]:%s", host, port));
	return json_pack("[o]", json_sprintf("%s:%s", host, port));
}

bool server_wait_idle(int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	while (atomic_load(&handlers_running) > 0) {
		if (now_ms() >= deadline)
			return false;
		usleep(20 * 1000);
	}
	return true;
}
