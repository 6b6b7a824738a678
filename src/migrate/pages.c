/* A live move's page traffic (pages.h): two relay threads per side between
 * a local socket and the two page streams. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "migrate/pages.h"

/* CRIU's struct page_server_iov (criu/page-xfer.c: u32 cmd, then three
 * u64): every request the lazy-pages daemon sends is one of these. */
#define PS_IOV_SIZE 32
#define RELAY_CHUNK (4 * 1024 * 1024)
#define RELAY_SOCKET_BUFFER (8 * 1024 * 1024)

struct migrate_pages {
	bool source;
	bool lazy;                /* source: post-copy (else the pages go to a page server as dumped) */
	int sock;                 /* ours; the peer end went to CRIU */
	struct ws *out, *in;      /* source: out pages, in requests; target: the reverse */
	pthread_t to_ws, from_ws;
	bool to_ws_started, from_ws_started;
	pthread_mutex_t lock;     /* the source's writes into CRIU, and the decision */
	bool decided;
	unsigned long long written; /* into CRIU, for the request boundary */
	unsigned long long bytes_out, bytes_in;
};

/* Source: the end of CRIU's page serving. A clean end of its socket is
 * success to CRIU, so a failure ends it with a request it can't serve
 * (after completing one cut short): CRIU then fails the dump. */
static void source_decide(struct migrate_pages *p, bool ok)
{
	pthread_mutex_lock(&p->lock);
	if (!p->decided) {
		p->decided = true;
		if (!ok) {
			char filler[2 * PS_IOV_SIZE];
			memset(filler, 0xff, sizeof(filler));
			size_t partial = (size_t)(p->written % PS_IOV_SIZE);
			fd_write_all(p->sock, filler, (partial ? PS_IOV_SIZE - partial : 0) + PS_IOV_SIZE);
		}
		shutdown(p->sock, SHUT_WR);
	}
	pthread_mutex_unlock(&p->lock);
}

/* The socket into the ws: CRIU's pages (source), the daemon's requests
 * (target). Its end becomes an empty message. */
static void *to_ws_run(void *arg)
{
	struct migrate_pages *p = arg;
	/* Not zeroed: only the pages a read fills are ever touched. Zeroing
	 * its 4 MiB cost each side ~1000 page faults (~10 ms of CPU here) at
	 * the start of the stop, the target's just as its restore began. */
	char *buf = malloc(RELAY_CHUNK);
	if (buf == NULL)
		abort();
	cleanup_error struct ferry_error *err = NULL;
	for (;;) {
		ssize_t n = read(p->sock, buf, RELAY_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				ws_send(p->out, WS_BINARY, "", 0, &err);
			break;
		}
		if (ws_send(p->out, WS_BINARY, buf, (size_t)n, &err) < 0) {
			log_warn("relaying %s: %s", p->source ? "pages" : "page requests", err->msg);
			/* CRIU must not wait on a relay that is gone. */
			if (p->source)
				source_decide(p, false);
			shutdown(p->sock, SHUT_RDWR);
			break;
		}
		p->bytes_out += (unsigned long long)n;
	}
	free(buf);
	return NULL;
}

/* The ws into the socket: requests for CRIU (source), pages for the
 * daemon (target). */
static void *from_ws_run(void *arg)
{
	struct migrate_pages *p = arg;
	cleanup_error struct ferry_error *err = NULL;
	bool ended = false;
	for (;;) {
		enum ws_opcode op;
		char *data = NULL;
		size_t len = 0;
		int r = ws_recv(p->in, &op, &data, &len, -1, &err);
		if (r <= 0)
			break;
		if (len == 0) {
			free(data);
			ended = true;
			break;
		}
		p->bytes_in += len;
		int w;
		if (p->source) {
			pthread_mutex_lock(&p->lock);
			w = p->decided ? 0 : fd_write_all(p->sock, data, len);
			if (w == 0 && !p->decided)
				p->written += len;
			pthread_mutex_unlock(&p->lock);
		} else {
			w = fd_write_all(p->sock, data, len);
		}
		free(data);
		if (w < 0)
			break;
	}
	if (p->source) {
		/* A lazy-pages daemon's clean end says nothing about its success:
		 * the target's word on control decides (migrate_pages_source_end).
		 * A page server ends after the dump's last word: any end before
		 * that is a failure, and CRIU must not wait for it. */
		if (!ended || !p->lazy) {
			source_decide(p, false);
			if (!p->lazy)
				shutdown(p->sock, SHUT_RDWR);
		}
	} else {
		shutdown(p->sock, ended ? SHUT_WR : SHUT_RDWR);
	}
	return NULL;
}

static int pages_start(bool source, bool lazy, struct ws *out, struct ws *in, int *peer, struct migrate_pages **res,
		       struct ferry_error **err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return error_sys(err, errno, "page relay: socketpair");
	/* Room for a few MiB in flight each way: fewer, larger relay messages.
	 * With the default (about 200 KiB) the pages went at half the rate
	 * (bench/migrate_downtime.sh, 256 MiB stop-and-copy: checkpoint 1481
	 * ms, 686 ms with these). */
	for (int i = 0; i < 2; i++) {
		int size = RELAY_SOCKET_BUFFER;
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		if (setsockopt(sv[i], SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	}
	struct migrate_pages *p = xcalloc(1, sizeof(*p));
	p->source = source;
	p->lazy = lazy;
	p->sock = sv[0];
	p->out = out;
	p->in = in;
	pthread_mutex_init(&p->lock, NULL);
	int r = pthread_create(&p->to_ws, NULL, to_ws_run, p);
	p->to_ws_started = r == 0;
	if (r == 0) {
		r = pthread_create(&p->from_ws, NULL, from_ws_run, p);
		p->from_ws_started = r == 0;
	}
	if (r != 0) {
		close(sv[1]);
		migrate_pages_stop(p);
		return error_sys(err, r, "post-copy: start the page relay");
	}
	*peer = sv[1];
	*res = p;
	return 0;
}

int migrate_pages_source_start(bool lazy, struct ws *pages, struct ws *requests, int *criu_socket,
			       struct migrate_pages **out, struct ferry_error **err)
{
	return pages_start(true, lazy, pages, requests, criu_socket, out, err);
}

void migrate_pages_source_end(struct migrate_pages *p, bool ok)
{
	source_decide(p, ok);
}

int migrate_pages_target_start(struct ws *pages, struct ws *requests, int *daemon_socket,
			       struct migrate_pages **out, struct ferry_error **err)
{
	return pages_start(false, false, requests, pages, daemon_socket, out, err);
}

unsigned long long migrate_pages_stop(struct migrate_pages *p)
{
	if (p == NULL)
		return 0;
	if (p->source)
		source_decide(p, false);
	/* Unblock both threads: the socket ends, and so does the incoming
	 * stream (its TLS session is not used again). */
	shutdown(p->sock, SHUT_RDWR);
	if (p->from_ws_started) {
		shutdown(ws_fd(p->in), SHUT_RDWR);
		pthread_join(p->from_ws, NULL);
	}
	if (p->to_ws_started)
		pthread_join(p->to_ws, NULL);
	close(p->sock);
	pthread_mutex_destroy(&p->lock);
	unsigned long long bytes = p->source ? p->bytes_out : p->bytes_in;
	free(p);
	return bytes;
}
