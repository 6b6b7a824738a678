/* Migration streams over TCP and TLS (GnuTLS): see channel.h.
 *
 * Both ends hand common/ws.c a transport over a non-blocking socket and a
 * GnuTLS session. Two GnuTLS rules shape it:
 *
 * - gnutls_record_recv may keep decrypted bytes of a record while the
 *   socket has nothing more to read, and ws.c polls the socket before it
 *   reads again. stream_recv therefore fills the buffer it is given until
 *   GnuTLS says GNUTLS_E_AGAIN: when it returns fewer bytes than asked,
 *   GnuTLS holds nothing back, and when it fills the buffer, wslay (which
 *   reads until the transport runs dry) comes back for more before ws.c
 *   polls.
 * - After GNUTLS_E_AGAIN, gnutls_record_send keeps the record it encrypted
 *   and must be called again for the same bytes; wslay does retry at the
 *   same offset of the same frame, and stream_send counts the record as
 *   sent only once GnuTLS has written it.
 *
 * Records are as large as TLS allows (16 KiB): stream_send hands GnuTLS the
 * whole buffer wslay gives it (a whole frame's payload on the source, the
 * websocket server, whose frames are not masked).
 *
 * GnuTLS reads a record's header and its body with a recv each; streams
 * read the socket ahead instead, CHANNEL_READAHEAD bytes at a time
 * (stream_pull), which halves the receiver's system calls or better.
 *
 * wslay reads until the transport runs dry, keeping every message it
 * completes: against a sender faster than the receiver's consumer, one
 * ws_recv would pile up the whole stream in memory. After
 * CHANNEL_RECV_BURST bytes stream_pull stops taking from the socket (once
 * its read-ahead is used up): GnuTLS then says GNUTLS_E_AGAIN with nothing
 * held back but part of a record, whose rest is still in the socket where
 * ws.c's poll sees it. The receiver takes its messages first, and TCP holds
 * the sender back. */
#include "migrate/channel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* As the HTTPS API (daemon/server.c): TLS 1.3 preferred, 1.2 at least. */
#define CHANNEL_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"
/* The listener's limit on a connection's handshake, secret and answer. */
#define CHANNEL_HELLO_TIMEOUT_MS 5000
/* Connections the listener takes through their handshake at once; more
 * wait in the kernel's backlog. */
#define CHANNEL_HELLOS_MAX 16
/* What one wslay_event_recv takes in at most, give or take a read-ahead. */
#define CHANNEL_RECV_BURST (1024 * 1024)
/* What one recv(2) takes from the socket at most. */
#define CHANNEL_READAHEAD (128 * 1024)
/* How often migrate_listener_accept asks whether it was cancelled. */
#define CHANNEL_CANCEL_POLL_MS 200
/* The dialer's limits: on connecting, then on TLS, secret and answer. */
#define CHANNEL_DIAL_TIMEOUT_MS 10000

/* A certificate and key shared by a listener and the sessions it accepted,
 * which may outlive it. */
struct channel_identity {
	gnutls_certificate_credentials_t creds;
	atomic_int refs;
};

struct migrate_stream {
	int fd;
	gnutls_session_t session;
	struct channel_identity *identity;
	struct ws *ws;
	char *peer;           /* "ADDRESS:PORT", for messages */
	unsigned char *readahead; /* ciphertext read from the socket, not yet taken by GnuTLS */
	size_t readahead_off, readahead_len;
	size_t recv_burst;    /* bytes received since stream_recv last said EAGAIN */
	bool recv_ended;      /* the end (or a failure) came after data: report it on the next call */
	int recv_errno;       /* with recv_ended: 0 for a clean end */
	struct migrate_stream *next;
};

/* A ws does not lead back to its stream, and migrate_listener_accept hands
 * out bare ws: migrate_ws_free finds their streams here. */
static pthread_mutex_t streams_lock = PTHREAD_MUTEX_INITIALIZER;
static struct migrate_stream *streams;

struct migrate_listener {
	int fd;
	int port;
	char *where;          /* "ADDRESS:PORT", for messages */
	struct channel_identity *identity;
	char **used;          /* secrets accepted so far: each works once */
	size_t n_used;
};

/* ---- shared helpers ---------------------------------------------------------- */

static int identity_load(const char *cert_path, const char *key_path, struct channel_identity **out,
			 struct ferry_error **err)
{
	gnutls_certificate_credentials_t creds;
	int r = gnutls_certificate_allocate_credentials(&creds);
	if (r < 0)
		return error_set(err, 500, ENOMEM, "TLS credentials: %s", gnutls_strerror(r));
	r = gnutls_certificate_set_x509_key_file(creds, cert_path, key_path, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		gnutls_certificate_free_credentials(creds);
		return error_set(err, 500, EINVAL, "loading the certificate %s and key %s: %s", cert_path, key_path,
				 gnutls_strerror(r));
	}
	struct channel_identity *id = xcalloc(1, sizeof(*id));
	id->creds = creds;
	atomic_init(&id->refs, 1);
	*out = id;
	return 0;
}

static struct channel_identity *identity_ref(struct channel_identity *id)
{
	atomic_fetch_add(&id->refs, 1);
	return id;
}

static void identity_unref(struct channel_identity *id)
{
	if (id == NULL || atomic_fetch_sub(&id->refs, 1) > 1)
		return;
	gnutls_certificate_free_credentials(id->creds);
	free(id);
}

/* "1.2.3.4:5" or "[::1]:5". */
static char *sockaddr_text(const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		return xasprintf("%s:%d", host, ntohs(in->sin_port));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		return xasprintf("[%s]:%d", host, ntohs(in6->sin6_port));
	}
	return xstrdup("?");
}

/* No Nagle; and a peer that vanishes (its host gone, the link cut: no FIN,
 * no RST) is noticed within about MIGRATE_PEER_TIMEOUT_S, whether this end
 * is sending (unacknowledged data) or waiting (keepalive probes): a live
 * move's source must not stay stopped on a dead connection. */
#define MIGRATE_PEER_TIMEOUT_S 15

static void set_stream_options(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	unsigned int user_timeout = MIGRATE_PEER_TIMEOUT_S * 1000;
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
	int idle = 5, interval = 2, count = (MIGRATE_PEER_TIMEOUT_S - 5) / 2;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

/* Both sides' session settings; the caller adds its credentials. */
static int session_new(gnutls_session_t *out, unsigned int flags, int fd, struct channel_identity *id)
{
	gnutls_session_t session;
	/* NO_SIGNAL: a peer gone away is an error, not a SIGPIPE. NO_TICKETS:
	 * nothing resumes these sessions. */
	int r = gnutls_init(&session, flags | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL | GNUTLS_NO_TICKETS);
	if (r < 0)
		return r;
	if ((r = gnutls_priority_set_direct(session, CHANNEL_PRIORITIES, NULL)) < 0 ||
	    (r = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, id->creds)) < 0) {
		gnutls_deinit(session);
		return r;
	}
	gnutls_transport_set_int(session, fd);
	*out = session;
	return 0;
}

/* Wait until the session can go on (the direction GnuTLS last wanted), at
 * most until deadline. Returns 1 ready, 0 timed out, -1 (errno) failed. */
static int session_wait(gnutls_session_t session, int fd, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = gnutls_record_get_direction(session) ? POLLOUT : POLLIN };
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return 0;
		int r = poll(&p, 1, (int)left);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

/* ---- the ws transport -------------------------------------------------------- */

static int tls_errno(ssize_t r, int otherwise)
{
	switch (r) {
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
		return ECONNRESET;
	case GNUTLS_E_PUSH_ERROR:
		return EPIPE;
	default:
		return otherwise;
	}
}

static ssize_t stream_recv(void *ctx, void *buf, size_t len)
{
	struct migrate_stream *s = ctx;
	if (s->recv_ended) {
		if (s->recv_errno == 0)
			return 0;
		errno = s->recv_errno;
		return -1;
	}
	/* Fill buf: see the top of this file. */
	size_t got = 0;
	while (got < len) {
		ssize_t r = gnutls_record_recv(s->session, (char *)buf + got, len - got);
		if (r > 0) {
			got += (size_t)r;
			s->recv_burst += (size_t)r;
			continue;
		}
		if (r == GNUTLS_E_AGAIN)
			break;
		if (r == GNUTLS_E_INTERRUPTED || (r < 0 && !gnutls_error_is_fatal((int)r)))
			continue; /* e.g. a warning alert, consumed */
		int e = 0;
		if (r < 0) {
			e = tls_errno(r, EPROTO);
			if (r != GNUTLS_E_PREMATURE_TERMINATION)
				log_warn("migration stream %s: TLS receive: %s", s->peer, gnutls_strerror((int)r));
		}
		if (got > 0) {
			s->recv_ended = true;
			s->recv_errno = e;
			break;
		}
		if (e == 0)
			return 0;
		errno = e;
		return -1;
	}
	if (got == 0) {
		s->recv_burst = 0;
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)got;
}

static ssize_t stream_send(void *ctx, const void *buf, size_t len)
{
	struct migrate_stream *s = ctx;
	size_t sent = 0;
	while (sent < len) {
		/* After GNUTLS_E_AGAIN GnuTLS finishes the record it holds and
		 * returns that record's length, whatever it is given. */
		ssize_t r = gnutls_record_send(s->session, (const char *)buf + sent, len - sent);
		if (r > 0) {
			if ((size_t)r > len - sent) {
				log_error("migration stream %s: TLS send: a retried record is longer than the data",
					  s->peer);
				errno = EIO;
				return -1;
			}
			sent += (size_t)r;
			continue;
		}
		if (r == GNUTLS_E_AGAIN)
			break;
		if (r == GNUTLS_E_INTERRUPTED)
			continue;
		if (sent > 0)
			break; /* report it on the next call, which fails the same way */
		/* The peer gone (EPIPE, its close seen) is the caller's to report,
		 * or no error at all: a close frame to a peer that closed first. */
		if (r == GNUTLS_E_PUSH_ERROR || r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_INVALID_SESSION)
			log_debug("migration stream %s: TLS send: %s", s->peer, gnutls_strerror((int)r));
		else
			log_warn("migration stream %s: TLS send: %s", s->peer, gnutls_strerror((int)r));
		errno = tls_errno(r, EIO);
		return -1;
	}
	if (sent == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)sent;
}

/* GnuTLS's pull function for a stream: see the top of this file. */
static ssize_t stream_pull(gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
	struct migrate_stream *s = ptr;
	if (s->readahead_off == s->readahead_len) {
		if (s->recv_burst >= CHANNEL_RECV_BURST) {
			gnutls_transport_set_errno(s->session, EAGAIN);
			return -1;
		}
		ssize_t n = recv(s->fd, s->readahead, CHANNEL_READAHEAD, MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0)
				gnutls_transport_set_errno(s->session, errno);
			return n;
		}
		s->readahead_off = 0;
		s->readahead_len = (size_t)n;
	}
	size_t n = s->readahead_len - s->readahead_off;
	if (n > len)
		n = len;
	memcpy(buf, s->readahead + s->readahead_off, n);
	s->readahead_off += n;
	return (ssize_t)n;
}

static int stream_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	struct migrate_stream *s = ptr;
	if (s->readahead_off < s->readahead_len)
		return 1;
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	return poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
}

/* Takes over fd, session and the reference to identity. */
static struct migrate_stream *stream_new(int fd, gnutls_session_t session, struct channel_identity *identity,
					 const char *peer, bool is_server)
{
	struct migrate_stream *s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->session = session;
	s->identity = identity;
	s->peer = xstrdup(peer);
	s->readahead = malloc(CHANNEL_READAHEAD);
	if (s->readahead == NULL)
		abort();
	/* From here GnuTLS reads through the read-ahead (nothing is in it yet). */
	gnutls_transport_set_ptr2(session, s, (gnutls_transport_ptr_t)(intptr_t)fd);
	gnutls_transport_set_pull_function(session, stream_pull);
	gnutls_transport_set_pull_timeout_function(session, stream_pull_timeout);
	struct ws_transport t = { .recv = stream_recv, .send = stream_send, .fd = fd, .ctx = s };
	s->ws = ws_new_transport(&t, is_server);
	pthread_mutex_lock(&streams_lock);
	s->next = streams;
	streams = s;
	pthread_mutex_unlock(&streams_lock);
	return s;
}

struct ws *migrate_stream_ws(struct migrate_stream *s)
{
	return s->ws;
}

void migrate_stream_free(struct migrate_stream *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&streams_lock);
	for (struct migrate_stream **p = &streams; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	pthread_mutex_unlock(&streams_lock);
	ws_free(s->ws);
	/* Say the end is deliberate; if the socket is full the alert is lost
	 * and the peer sees the connection close, which it also takes as the end. */
	gnutls_bye(s->session, GNUTLS_SHUT_WR);
	gnutls_deinit(s->session);
	close(s->fd);
	identity_unref(s->identity);
	free(s->readahead);
	free(s->peer);
	free(s);
}

void migrate_ws_free(struct ws *ws)
{
	if (ws == NULL)
		return;
	struct migrate_stream *s = NULL;
	pthread_mutex_lock(&streams_lock);
	for (s = streams; s != NULL && s->ws != ws; s = s->next)
		;
	pthread_mutex_unlock(&streams_lock);
	if (s != NULL)
		migrate_stream_free(s);
	else
		ws_free(ws);
}

/* ---- source side -------------------------------------------------------------- */

static int listen_on(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (sa->sa_family == AF_INET6) {
		/* "::" means IPv4 too. */
		int zero = 0;
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (bind(fd, sa, len) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* A listening socket on an ephemeral port of address (NULL: any). */
static int listen_any_port(const char *address, struct ferry_error **err)
{
	if (address == NULL) {
		struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT };
		int fd = listen_on((struct sockaddr *)&any6, sizeof(any6));
		if (fd >= 0 || errno != EAFNOSUPPORT)
			return fd >= 0 ? fd : error_sys(err, errno, "migration listener on any address");
		struct sockaddr_in any4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
		fd = listen_on((struct sockaddr *)&any4, sizeof(any4));
		return fd >= 0 ? fd : error_sys(err, errno, "migration listener on any IPv4 address");
	}
	/* "[::1]" as well as "::1". */
	cleanup_free char *host = xstrdup(address);
	size_t hlen = strlen(host);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host[hlen - 1] = '\0';
		memmove(host, host + 1, hlen - 1);
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int r = getaddrinfo(host, "0", &hints, &res);
	if (r != 0)
		return error_set(err, 400, EINVAL, "migration listener on %s: %s", address, gai_strerror(r));
	int fd = -1, e = EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = listen_on(ai->ai_addr, ai->ai_addrlen);
		if (fd < 0)
			e = errno;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : error_sys(err, e, "migration listener on %s", address);
}

int migrate_listener_open(const char *address, const char *cert_path, const char *key_path,
			  struct migrate_listener **out, struct ferry_error **err)
{
	cleanup_close int fd = listen_any_port(address, err);
	if (fd < 0)
		return -1;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0)
		return error_sys(err, errno, "migration listener on %s: getsockname", address ? address : "any address");
	struct channel_identity *identity = NULL;
	if (identity_load(cert_path, key_path, &identity, err) < 0)
		return error_wrap(err, "migration listener");
	struct migrate_listener *l = xcalloc(1, sizeof(*l));
	l->identity = identity;
	l->where = sockaddr_text((struct sockaddr *)&ss);
	l->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
					   : ntohs(((struct sockaddr_in *)&ss)->sin_port);
	l->fd = steal_fd(&fd);
	*out = l;
	return 0;
}

int migrate_listener_port(const struct migrate_listener *l)
{
	return l->port;
}

void migrate_listener_close(struct migrate_listener *l)
{
	if (l == NULL)
		return;
	close(l->fd);
	identity_unref(l->identity);
	for (size_t i = 0; i < l->n_used; i++)
		free(l->used[i]);
	free(l->used);
	free(l->where);
	free(l);
}

/* A connection on its way from accept() to a stream. */
enum hello_state { HELLO_HANDSHAKE, HELLO_SECRET, HELLO_ANSWER };

struct hello {
	int fd;
	gnutls_session_t session;
	enum hello_state state;
	long long deadline;
	char *peer;
	char line[MIGRATE_SECRET_LINE_MAX];
	size_t line_len;
	size_t index;         /* from HELLO_ANSWER on: the secret's */
};

enum hello_step { HELLO_WAIT, HELLO_DONE, HELLO_DROP };

/* Compare without stopping at the first difference, so that the time taken
 * tells nothing about a secret. */
static bool secret_equal(const char *secret, const char *given, size_t given_len)
{
	size_t len = strlen(secret);
	unsigned char diff = len != given_len;
	for (size_t i = 0; i < given_len; i++)
		diff |= (unsigned char)secret[i < len ? i : 0] ^ (unsigned char)given[i];
	return diff == 0 && len > 0;
}

static bool listener_used(const struct migrate_listener *l, const char *secret)
{
	for (size_t i = 0; i < l->n_used; i++)
		if (strcmp(l->used[i], secret) == 0)
			return true;
	return false;
}

/* Move h on as far as its socket lets it. claimed[i]: secrets[i] has a
 * connection in HELLO_ANSWER or done. */
static enum hello_step hello_step(struct migrate_listener *l, struct hello *h, const char *const *secrets, size_t n,
				  bool *claimed)
{
	if (h->state == HELLO_HANDSHAKE) {
		int r;
		do
			r = gnutls_handshake(h->session);
		while (r < 0 && r != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(r));
		if (r == GNUTLS_E_AGAIN)
			return HELLO_WAIT;
		if (r < 0) {
			log_warn("migration listener %s: TLS handshake with %s failed: %s", l->where, h->peer,
				 gnutls_strerror(r));
			return HELLO_DROP;
		}
		h->state = HELLO_SECRET;
	}
	if (h->state == HELLO_SECRET) {
		char *newline;
		while ((newline = memchr(h->line, '\n', h->line_len)) == NULL) {
			if (h->line_len == sizeof(h->line)) {
				log_warn("migration listener %s: %s sent no secret line in %zu bytes", l->where, h->peer,
					 sizeof(h->line));
				return HELLO_DROP;
			}
			ssize_t r = gnutls_record_recv(h->session, h->line + h->line_len, sizeof(h->line) - h->line_len);
			if (r == GNUTLS_E_AGAIN)
				return HELLO_WAIT;
			if (r > 0)
				h->line_len += (size_t)r;
			else if (r == 0 || gnutls_error_is_fatal((int)r)) {
				log_warn("migration listener %s: %s closed before its secret: %s", l->where, h->peer,
					 r == 0 ? "end of stream" : gnutls_strerror((int)r));
				return HELLO_DROP;
			}
		}
		size_t secret_len = (size_t)(newline - h->line);
		/* The target says nothing more before the answer. */
		if (secret_len + 1 != h->line_len || gnutls_record_check_pending(h->session) > 0) {
			log_warn("migration listener %s: %s sent more than a secret line", l->where, h->peer);
			return HELLO_DROP;
		}
		size_t i;
		for (i = 0; i < n; i++)
			if (secret_equal(secrets[i], h->line, secret_len))
				break;
		if (i == n || claimed[i] || listener_used(l, secrets[i])) {
			log_warn("migration listener %s: refused %s: %s", l->where, h->peer,
				 i == n ? "wrong secret" : "secret already used");
			return HELLO_DROP;
		}
		claimed[i] = true;
		h->index = i;
		h->state = HELLO_ANSWER;
	}
	/* HELLO_ANSWER: a retry after GNUTLS_E_AGAIN sends the same bytes. */
	ssize_t r;
	do
		r = gnutls_record_send(h->session, "ok\n", 3);
	while (r == GNUTLS_E_INTERRUPTED);
	if (r == GNUTLS_E_AGAIN)
		return HELLO_WAIT;
	if (r < 0) {
		log_warn("migration listener %s: answering %s: %s", l->where, h->peer, gnutls_strerror((int)r));
		claimed[h->index] = false;
		return HELLO_DROP;
	}
	return HELLO_DONE;
}

static void hello_drop(struct hello *h)
{
	gnutls_deinit(h->session);
	close(h->fd);
	free(h->peer);
}

/* Take the connections waiting on the listening socket, as many as fit. */
static void hellos_accept(struct migrate_listener *l, struct hello *hellos, size_t *n_hellos)
{
	while (*n_hellos < CHANNEL_HELLOS_MAX) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("migration listener %s: accept: %s", l->where, strerror(errno));
			return;
		}
		set_stream_options(fd);
		struct hello *h = &hellos[*n_hellos];
		*h = (struct hello){ .fd = fd, .state = HELLO_HANDSHAKE, .deadline = now_ms() + CHANNEL_HELLO_TIMEOUT_MS };
		h->peer = sockaddr_text((struct sockaddr *)&ss);
		int r = session_new(&h->session, GNUTLS_SERVER, fd, l->identity);
		if (r < 0) {
			log_warn("migration listener %s: TLS session for %s: %s", l->where, h->peer, gnutls_strerror(r));
			close(fd);
			free(h->peer);
			continue;
		}
		/* Ask for the target's certificate: the secret is what admits it,
		 * but the certificate names it in the handshake. */
		gnutls_certificate_server_set_request(h->session, GNUTLS_CERT_REQUEST);
		(*n_hellos)++;
	}
}

int migrate_listener_accept(struct migrate_listener *l, const char *const *secrets, size_t n, struct ws **out,
			    int timeout_ms, bool (*cancelled)(void *arg), void *arg, struct ferry_error **err)
{
	struct hello hellos[CHANNEL_HELLOS_MAX];
	size_t n_hellos = 0, n_done = 0;
	cleanup_free bool *claimed = xcalloc(n ? n : 1, sizeof(*claimed));
	cleanup_free struct migrate_stream **done = xcalloc(n ? n : 1, sizeof(*done));
	long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	int ret = 0;
	while (n_done < n) {
		if (cancelled != NULL && cancelled(arg)) {
			ret = error_set(err, 400, ECANCELED, "migration listener %s: cancelled with %zu of %zu streams connected",
					l->where, n_done, n);
			break;
		}
		long long now = now_ms();
		if (deadline >= 0 && now >= deadline) {
			ret = error_set(err, 504, ETIMEDOUT,
					"migration listener %s: %zu of %zu streams did not connect within %d ms", l->where,
					n - n_done, n, timeout_ms);
			break;
		}
		long long wake = now + CHANNEL_CANCEL_POLL_MS;
		if (deadline >= 0 && deadline < wake)
			wake = deadline;
		struct pollfd p[1 + CHANNEL_HELLOS_MAX];
		p[0] = (struct pollfd){ .fd = l->fd, .events = n_hellos < CHANNEL_HELLOS_MAX ? POLLIN : 0 };
		for (size_t i = 0; i < n_hellos; i++) {
			short events = gnutls_record_get_direction(hellos[i].session) ? POLLOUT : POLLIN;
			p[1 + i] = (struct pollfd){ .fd = hellos[i].fd, .events = events };
			if (hellos[i].deadline < wake)
				wake = hellos[i].deadline;
		}
		int r = poll(p, 1 + n_hellos, wake > now ? (int)(wake - now) : 0);
		if (r < 0 && errno != EINTR) {
			ret = error_sys(err, errno, "migration listener %s: poll", l->where);
			break;
		}
		now = now_ms();
		/* Backwards, so that the last hello can take a finished one's place. */
		for (size_t i = n_hellos; i-- > 0;) {
			struct hello *h = &hellos[i];
			enum hello_step step = HELLO_WAIT;
			if (r > 0 && p[1 + i].revents != 0)
				step = hello_step(l, h, secrets, n, claimed);
			if (step == HELLO_WAIT && now >= h->deadline) {
				log_warn("migration listener %s: dropped %s: no secret within %d ms", l->where, h->peer,
					 CHANNEL_HELLO_TIMEOUT_MS);
				if (h->state == HELLO_ANSWER)
					claimed[h->index] = false;
				step = HELLO_DROP;
			}
			if (step == HELLO_WAIT)
				continue;
			if (step == HELLO_DONE) {
				done[h->index] = stream_new(h->fd, h->session, identity_ref(l->identity), h->peer, true);
				l->used = realloc(l->used, (l->n_used + 1) * sizeof(*l->used));
				if (l->used == NULL)
					abort();
				l->used[l->n_used++] = xstrdup(secrets[h->index]);
				n_done++;
				free(h->peer);
			} else {
				hello_drop(h);
			}
			hellos[i] = hellos[--n_hellos];
		}
		if (r > 0 && (p[0].revents & POLLIN))
			hellos_accept(l, hellos, &n_hellos);
	}
	/* Connections still on their way are not wanted any more. */
	for (size_t i = 0; i < n_hellos; i++)
		hello_drop(&hellos[i]);
	for (size_t i = 0; i < n; i++) {
		if (ret < 0) {
			migrate_stream_free(done[i]);
			out[i] = NULL;
		} else {
			out[i] = done[i]->ws;
		}
	}
	return ret;
}

/* ---- target side -------------------------------------------------------------- */

/* What the handshake's certificate check found, for the dialer's message. */
struct dial_pin {
	gnutls_datum_t der;   /* the source's certificate */
	const char *mismatch; /* why the peer's is not it */
	bool matched;
};

static int verify_pinned(gnutls_session_t session)
{
	struct dial_pin *pin = gnutls_session_get_ptr(session);
	unsigned int n = 0;
	const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &n);
	if (peers == NULL || n == 0) {
		pin->mismatch = "it presented no certificate";
		return -1;
	}
	if (peers[0].size != pin->der.size || memcmp(peers[0].data, pin->der.data, pin->der.size) != 0) {
		pin->mismatch = "its certificate is not the source's (the one given for the migration)";
		return -1;
	}
	pin->matched = true;
	return 0;
}

/* A connected non-blocking TCP socket to host:port. */
static int tcp_connect(const char *host, int port, const char *where, long long deadline, struct ferry_error **err)
{
	cleanup_free char *name = xstrdup(host);
	size_t nlen = strlen(name);
	if (nlen >= 2 && name[0] == '[' && name[nlen - 1] == ']') {
		name[nlen - 1] = '\0';
		memmove(name, name + 1, nlen - 1);
	}
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int r = getaddrinfo(name, service, &hints, &res);
	if (r != 0)
		return error_set(err, 502, EHOSTUNREACH, "migration stream to %s: %s", where, gai_strerror(r));
	int e = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			e = errno;
			close(fd);
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int ready;
		do {
			long long left = deadline - now_ms();
			ready = left > 0 ? poll(&p, 1, (int)left) : 0;
		} while (ready < 0 && errno == EINTR);
		socklen_t elen = sizeof(e);
		if (ready == 0)
			e = ETIMEDOUT;
		else if (ready < 0)
			e = errno;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
			e = errno;
		if (ready > 0 && e == 0) {
			freeaddrinfo(res);
			set_stream_options(fd);
			return fd;
		}
		close(fd);
		if (e == ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (e == ETIMEDOUT)
		return error_set(err, 504, ETIMEDOUT, "migration stream to %s: connect: timed out", where);
	return error_set(err, 502, e, "migration stream to %s: connect: %s", where, strerror(e));
}

static int dial_handshake(gnutls_session_t session, int fd, const char *where, const struct dial_pin *pin,
			  long long deadline, struct ferry_error **err)
{
	int r;
	while ((r = gnutls_handshake(session)) < 0) {
		if (r == GNUTLS_E_AGAIN) {
			int w = session_wait(session, fd, deadline);
			if (w == 0)
				return error_set(err, 504, ETIMEDOUT, "migration stream to %s: TLS handshake: timed out", where);
			if (w < 0)
				return error_sys(err, errno, "migration stream to %s: TLS handshake: poll", where);
			continue;
		}
		if (!gnutls_error_is_fatal(r))
			continue;
		if (pin->mismatch != NULL)
			return error_set(err, 502, EKEYREJECTED, "migration stream to %s: refused the peer: %s", where,
					 pin->mismatch);
		return error_set(err, 502, EPROTO, "migration stream to %s: TLS handshake: %s", where, gnutls_strerror(r));
	}
	if (!pin->matched) /* no certificate check ran: not a certificate handshake */
		return error_set(err, 502, EKEYREJECTED, "migration stream to %s: the peer's certificate was not checked",
				 where);
	return 0;
}

static int dial_send_secret(gnutls_session_t session, int fd, const char *where, const char *secret,
			    long long deadline, struct ferry_error **err)
{
	/* "SECRET\n" in one record; after GNUTLS_E_AGAIN, again the same. */
	cleanup_free char *line = xasprintf("%s\n", secret);
	ssize_t len = (ssize_t)strlen(line), r;
	while ((r = gnutls_record_send(session, line, (size_t)len)) != len) {
		if (r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r != GNUTLS_E_AGAIN)
			return error_set(err, 502, tls_errno(r, EPROTO), "migration stream to %s: sending the secret: %s",
					 where, r < 0 ? gnutls_strerror((int)r) : "short write");
		if (session_wait(session, fd, deadline) <= 0)
			return error_set(err, 504, ETIMEDOUT, "migration stream to %s: sending the secret: timed out",
					 where);
	}
	return 0;
}

/* Read up to the answer's newline into answer[0..*have); *end: past the newline. */
static int dial_read_answer(gnutls_session_t session, int fd, const char *where, char *answer, size_t size,
			    size_t *have, size_t *end, long long deadline, struct ferry_error **err)
{
	char *newline;
	while ((newline = memchr(answer, '\n', *have)) == NULL) {
		if (*have == size)
			return error_set(err, 502, EPROTO, "migration stream to %s: the source's answer is too long", where);
		ssize_t r = gnutls_record_recv(session, answer + *have, size - *have);
		if (r > 0) {
			*have += (size_t)r;
			continue;
		}
		if (r == GNUTLS_E_AGAIN) {
			if (session_wait(session, fd, deadline) <= 0)
				return error_set(err, 504, ETIMEDOUT, "migration stream to %s: no answer to the secret", where);
			continue;
		}
		if (r < 0 && !gnutls_error_is_fatal((int)r))
			continue;
		/* The listener closes at once on a secret it does not take. */
		if (r == 0 || r == GNUTLS_E_PREMATURE_TERMINATION || r == GNUTLS_E_PULL_ERROR)
			return error_set(err, 502, EACCES,
					 "migration stream to %s: the source refused the secret (unknown or already used)",
					 where);
		return error_set(err, 502, EPROTO, "migration stream to %s: waiting for the answer: %s", where,
				 gnutls_strerror((int)r));
	}
	if (newline != answer + 2 || memcmp(answer, "ok", 2) != 0)
		return error_set(err, 502, EPROTO, "migration stream to %s: unexpected answer to the secret: %.*s", where,
				 (int)(newline - answer), answer);
	*end = (size_t)(newline + 1 - answer);
	return 0;
}

/* TLS, the secret and the answer over fd; on success *out owns fd. */
static int dial_session(int fd, const char *where, const char *secret, struct dial_pin *pin,
			struct channel_identity *identity, struct migrate_stream **out, struct ferry_error **err)
{
	long long deadline = now_ms() + CHANNEL_DIAL_TIMEOUT_MS;
	gnutls_session_t session;
	int r = session_new(&session, GNUTLS_CLIENT, fd, identity);
	if (r < 0)
		return error_set(err, 500, ENOMEM, "migration stream to %s: TLS session: %s", where, gnutls_strerror(r));
	gnutls_session_set_ptr(session, pin);
	gnutls_session_set_verify_function(session, verify_pinned);
	char answer[64];
	size_t have = 0, end = 0;
	if (dial_handshake(session, fd, where, pin, deadline, err) < 0 ||
	    dial_send_secret(session, fd, where, secret, deadline, err) < 0 ||
	    dial_read_answer(session, fd, where, answer, sizeof(answer), &have, &end, deadline, err) < 0) {
		gnutls_deinit(session);
		return -1;
	}
	struct migrate_stream *s = stream_new(fd, session, identity_ref(identity), where, false);
	/* Frames that came with the answer, read or still held by GnuTLS: ws.c
	 * would wait on the socket before reading them. */
	ws_push_prefetched(s->ws, answer + end, have - end);
	while (gnutls_record_check_pending(session) > 0) {
		char more[4096];
		ssize_t n = gnutls_record_recv(session, more, sizeof(more));
		if (n <= 0)
			break;
		ws_push_prefetched(s->ws, more, (size_t)n);
	}
	*out = s;
	return 0;
}

int migrate_stream_dial(const char *host, int port, const char *secret, const char *server_pem,
			const char *cert_path, const char *key_path, struct migrate_stream **out,
			struct ferry_error **err)
{
	cleanup_free char *where = strchr(host, ':') != NULL && host[0] != '[' ? xasprintf("[%s]:%d", host, port)
									       : xasprintf("%s:%d", host, port);
	size_t secret_len = strlen(secret);
	if (secret_len == 0 || secret_len + 1 > MIGRATE_SECRET_LINE_MAX || strchr(secret, '\n') != NULL)
		return error_bad_request(err, "migration stream to %s: invalid secret", where);
	struct dial_pin pin = { 0 };
	gnutls_datum_t pem = { .data = (unsigned char *)server_pem, .size = (unsigned int)strlen(server_pem) };
	int r = gnutls_pem_base64_decode2("CERTIFICATE", &pem, &pin.der);
	if (r < 0)
		return error_bad_request(err, "migration stream to %s: the source's certificate is not a PEM certificate: %s",
					 where, gnutls_strerror(r));
	struct channel_identity *identity = NULL;
	int fd = -1;
	int ret = identity_load(cert_path, key_path, &identity, err);
	if (ret < 0) {
		error_wrap(err, "migration stream to %s", where);
		goto out;
	}
	fd = tcp_connect(host, port, where, now_ms() + CHANNEL_DIAL_TIMEOUT_MS, err);
	if (fd < 0) {
		ret = -1;
		goto out;
	}
	ret = dial_session(fd, where, secret, &pin, identity, out, err);
	if (ret == 0)
		fd = -1; /* the stream's now */
out:
	if (fd >= 0)
		close(fd);
	identity_unref(identity);
	gnutls_free(pin.der.data);
	return ret;
}
