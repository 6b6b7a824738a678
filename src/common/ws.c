/* WebSocket framing over wslay: see ws.h.
 *
 * wslay's event context is not thread-safe, but ferryd sends on a websocket
 * from one thread (a process's output) while another waits in ws_recv (its
 * input): every call into wslay holds ws->lock, and nobody holds it while
 * waiting in poll(). */
#include "common/ws.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "common/util.h"

struct ws_message {
	enum ws_opcode op;
	char *data;
	size_t len;
	struct ws_message *next;
};

struct ws {
	wslay_event_context_ptr ctx;
	struct ws_transport transport;
	bool owns_fd;        /* ws_new_fd: ws_free closes it */
	bool fd_is_socket;
	pthread_mutex_t lock;
	char *prefetched;    /* bytes read by the HTTP layer past the headers */
	size_t prefetched_len, prefetched_off;
	struct ws_message *head, *tail; /* complete messages not yet returned */
	bool eof;            /* the transport reached end of file or failed */
	int io_errno;        /* errno of a failed read/write */
};

static ssize_t fd_recv(void *ctx, void *buf, size_t len)
{
	struct ws *ws = ctx;
	int fd = ws->transport.fd;
	if (ws->fd_is_socket)
		return recv(fd, buf, len, MSG_DONTWAIT);
	/* A pipe or tty may be blocking: read only what poll says is there. */
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, 0);
	if (r == 0) {
		errno = EAGAIN;
		return -1;
	}
	if (r < 0)
		return -1;
	return read(fd, buf, len);
}

static ssize_t fd_send(void *ctx, const void *buf, size_t len)
{
	struct ws *ws = ctx;
	int fd = ws->transport.fd;
	if (ws->fd_is_socket)
		return send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int r = poll(&p, 1, 0);
	if (r == 0) {
		errno = EAGAIN;
		return -1;
	}
	if (r < 0)
		return -1;
	return write(fd, buf, len);
}

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user_data)
{
	struct ws *ws = user_data;
	if (ws->prefetched_off < ws->prefetched_len) {
		size_t n = ws->prefetched_len - ws->prefetched_off;
		if (n > len)
			n = len;
		memcpy(buf, ws->prefetched + ws->prefetched_off, n);
		ws->prefetched_off += n;
		return n;
	}
	for (;;) {
		ssize_t r = ws->transport.recv(ws->transport.ctx, buf, len);
		if (r > 0)
			return r;
		if (r == 0) {
			ws->eof = true;
			wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
			return -1;
		}
		ws->eof = true;
		ws->io_errno = errno;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user_data)
{
	struct ws *ws = user_data;
	for (;;) {
		ssize_t r = ws->transport.send(ws->transport.ctx, data, len);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
			return -1;
		}
		ws->eof = true;
		ws->io_errno = errno;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user_data)
{
	return gnutls_rnd(GNUTLS_RND_NONCE, buf, len) < 0 ? -1 : 0;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user_data)
{
	struct ws *ws = user_data;
	/* Pings and closes are answered by wslay itself. */
	if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
		return;
	struct ws_message *m = xcalloc(1, sizeof(*m));
	m->op = arg->opcode == WSLAY_TEXT_FRAME ? WS_TEXT : WS_BINARY;
	m->len = arg->msg_length;
	m->data = malloc(m->len + 1);
	if (m->data == NULL)
		abort();
	if (m->len > 0) /* an empty message has no buffer */
		memcpy(m->data, arg->msg, m->len);
	m->data[m->len] = '\0';
	if (ws->tail != NULL)
		ws->tail->next = m;
	else
		ws->head = m;
	ws->tail = m;
}

static const struct wslay_event_callbacks ws_callbacks = {
	.recv_callback = on_recv,
	.send_callback = on_send,
	.genmask_callback = on_genmask,
	.on_msg_recv_callback = on_msg,
};

struct ws *ws_new_transport(const struct ws_transport *t, bool is_server)
{
	struct ws *ws = xcalloc(1, sizeof(*ws));
	ws->transport = *t;
	pthread_mutex_init(&ws->lock, NULL);
	int r = is_server ? wslay_event_context_server_init(&ws->ctx, &ws_callbacks, ws)
			  : wslay_event_context_client_init(&ws->ctx, &ws_callbacks, ws);
	if (r != 0)
		abort();
	return ws;
}

struct ws *ws_new_fd(int fd, bool is_server)
{
	struct ws_transport t = { .recv = fd_recv, .send = fd_send, .fd = fd };
	struct ws *ws = ws_new_transport(&t, is_server);
	ws->transport.ctx = ws;
	ws->owns_fd = true;
	struct stat st;
	ws->fd_is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	return ws;
}

void ws_push_prefetched(struct ws *ws, const void *data, size_t len)
{
	if (len == 0)
		return;
	pthread_mutex_lock(&ws->lock);
	size_t left = ws->prefetched_len - ws->prefetched_off;
	char *buf = malloc(left + len);
	if (buf == NULL)
		abort();
	if (left > 0)
		memcpy(buf, ws->prefetched + ws->prefetched_off, left);
	memcpy(buf + left, data, len);
	free(ws->prefetched);
	ws->prefetched = buf;
	ws->prefetched_len = left + len;
	ws->prefetched_off = 0;
	pthread_mutex_unlock(&ws->lock);
}

/* Wait for the transport; the lock is released while waiting. */
static int ws_wait_locked(struct ws *ws, short events, int timeout_ms)
{
	struct pollfd p = { .fd = ws->transport.fd, .events = events };
	pthread_mutex_unlock(&ws->lock);
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	pthread_mutex_lock(&ws->lock);
	return r;
}

/* Send what wslay has queued, waiting for the transport as needed. */
static int ws_flush_locked(struct ws *ws, int timeout_ms, struct ferry_error **err)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	while (wslay_event_want_write(ws->ctx)) {
		int r = wslay_event_send(ws->ctx);
		if (r != 0)
			return error_sys(err, ws->io_errno ? ws->io_errno : EPIPE, "websocket send");
		if (!wslay_event_want_write(ws->ctx))
			break;
		int wait = -1;
		if (deadline >= 0) {
			wait = (int)(deadline - now_ms());
			if (wait <= 0)
				return error_set(err, 0, ETIMEDOUT, "websocket send: timed out");
		}
		if (ws_wait_locked(ws, POLLOUT, wait) < 0)
			return error_sys(err, errno, "websocket send: poll");
	}
	return 0;
}

int ws_send(struct ws *ws, enum ws_opcode op, const void *data, size_t len, struct ferry_error **err)
{
	struct wslay_event_msg msg = {
		.opcode = op == WS_TEXT ? WSLAY_TEXT_FRAME : op == WS_BINARY ? WSLAY_BINARY_FRAME : WSLAY_CONNECTION_CLOSE,
		.msg = data,
		.msg_length = len,
	};
	pthread_mutex_lock(&ws->lock);
	int r = wslay_event_queue_msg(ws->ctx, &msg);
	if (r != 0) {
		pthread_mutex_unlock(&ws->lock);
		return error_set(err, 0, EPIPE, "websocket send: %s",
				 r == WSLAY_ERR_NO_MORE_MSG ? "connection is closing" : "cannot queue message");
	}
	r = ws_flush_locked(ws, -1, err);
	pthread_mutex_unlock(&ws->lock);
	return r;
}

int ws_recv(struct ws *ws, enum ws_opcode *op, char **data, size_t *len, int timeout_ms,
	    struct ferry_error **err)
{
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int ret = 0;
	pthread_mutex_lock(&ws->lock);
	for (;;) {
		if (ws->head != NULL) {
			struct ws_message *m = ws->head;
			ws->head = m->next;
			if (ws->head == NULL)
				ws->tail = NULL;
			*op = m->op;
			*data = m->data;
			if (len != NULL)
				*len = m->len;
			free(m);
			ret = 1;
			break;
		}
		if (ws->eof || wslay_event_get_close_received(ws->ctx) || !wslay_event_want_read(ws->ctx)) {
			/* Answer the peer's close before reporting it. */
			if (!ws->eof)
				ws_flush_locked(ws, 1000, NULL);
			ret = 0;
			break;
		}
		/* Frames already read by the HTTP layer come first. */
		bool readable = ws->prefetched_off < ws->prefetched_len;
		if (!readable) {
			int wait = -1;
			if (deadline >= 0) {
				long long left = deadline - now_ms();
				wait = left > 0 ? (int)left : 0;
			}
			short events = POLLIN | (wslay_event_want_write(ws->ctx) ? POLLOUT : 0);
			int r = ws_wait_locked(ws, events, wait);
			if (r < 0) {
				ret = error_sys(err, errno, "websocket receive: poll");
				break;
			}
			if (r == 0) {
				if (deadline >= 0 && now_ms() >= deadline) {
					ret = error_set(err, 0, ETIMEDOUT, "websocket receive: timed out");
					break;
				}
				continue;
			}
		}
		if (wslay_event_recv(ws->ctx) != 0 && !ws->eof) {
			ret = error_set(err, 400, EPROTO, "websocket receive: protocol error");
			break;
		}
		if (wslay_event_want_write(ws->ctx) && ws_flush_locked(ws, 1000, NULL) < 0)
			ws->eof = true;
	}
	pthread_mutex_unlock(&ws->lock);
	return ret;
}

int ws_close(struct ws *ws, unsigned short code, const char *reason)
{
	pthread_mutex_lock(&ws->lock);
	int r = 0;
	if (!ws->eof && !wslay_event_get_close_sent(ws->ctx)) {
		r = wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
		if (r == 0)
			r = ws_flush_locked(ws, 2000, NULL);
	}
	pthread_mutex_unlock(&ws->lock);
	return r < 0 ? -1 : 0;
}

/* A transport's fd belongs to whoever made the transport (e.g. libcurl);
 * only ws_new_fd's fd is closed here. */
void ws_free(struct ws *ws)
{
	if (ws == NULL)
		return;
	wslay_event_context_free(ws->ctx);
	if (ws->owns_fd && ws->transport.fd >= 0)
		close(ws->transport.fd);
	while (ws->head != NULL) {
		struct ws_message *m = ws->head;
		ws->head = m->next;
		free(m->data);
		free(m);
	}
	free(ws->prefetched);
	pthread_mutex_destroy(&ws->lock);
	free(ws);
}

int ws_fd(struct ws *ws)
{
	return ws->transport.fd;
}

static char *base64(const void *data, size_t len)
{
	gnutls_datum_t in = { .data = (unsigned char *)data, .size = len }, out = { 0 };
	if (gnutls_base64_encode2(&in, &out) < 0)
		abort();
	char *s = xcalloc(1, out.size + 1);
	memcpy(s, out.data, out.size);
	gnutls_free(out.data);
	return s;
}

char *ws_accept_key(const char *client_key)
{
	/* RFC 6455 section 4.2.2: base64(SHA-1(key + GUID)). */
	cleanup_free char *joined = xasprintf("%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", client_key);
	unsigned char digest[20];
	if (gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, strlen(joined), digest) < 0)
		abort();
	return base64(digest, sizeof(digest));
}

char *ws_new_client_key(void)
{
	unsigned char nonce[16];
	if (gnutls_rnd(GNUTLS_RND_NONCE, nonce, sizeof(nonce)) < 0)
		abort();
	return base64(nonce, sizeof(nonce));
}
