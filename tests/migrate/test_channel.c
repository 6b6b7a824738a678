/* migrate/channel.c with both ends in one process: a source's listener on
 * 127.0.0.1 with one self-signed certificate, a target with another. Three
 * streams connect from threads while bad clients are turned away beside
 * them (one that never speaks, one speaking plain HTTP, a wrong secret, a
 * secret used twice, a target pinning another certificate); messages go
 * both ways on every stream and arrive on the stream of their secret;
 * 512 MiB go through one stream intact; accept gives up on time and when
 * cancelled. TAP output; the throughput goes to "#" lines. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "common/util.h"
#include "common/ws.h"
#include "migrate/channel.h"
#include "migrate/migrate.h"
#include "../tap.h"

#define STREAMS 3
#define BULK_MESSAGE (256 * 1024)
#define BULK_BYTES (512ull << 20)
#define BULK_BACK_BYTES (128ull << 20)

static void diag_error(const struct ferry_error *err)
{
	if (err != NULL)
		printf("#   error (%d, %s): %s\n", err->status, strerror(err->errnum), err->msg);
}

/* Two hosts' identities: the source's (the listener's) and the target's. */
static char *dir;
static char *source_crt, *source_key, *target_crt, *target_key;
static char *source_pem, *target_pem;
static int port;

static int make_identity(const char *name, char **crt, char **key, char **pem)
{
	*crt = xasprintf("%s/%s.crt", dir, name);
	*key = xasprintf("%s/%s.key", dir, name);
	/* As ferryd's own: ECDSA P-384, self-signed. */
	cleanup_free char *cmd = xasprintf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes "
					   "-keyout %s -out %s -days 2 -subj /CN=%s >/dev/null 2>&1",
					   *key, *crt, name);
	if (system(cmd) != 0)
		return -1;
	return file_read(*crt, pem, NULL, NULL);
}

static struct migrate_stream *dial(const char *secret, const char *pin, struct ferry_error **err)
{
	struct migrate_stream *s = NULL;
	if (migrate_stream_dial("127.0.0.1", port, secret, pin, target_crt, target_key, &s, err) < 0)
		return NULL;
	return s;
}

/* A TCP connection that is not a target: for the bad clients. */
static int raw_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the target's side of the accept test ---------------------------------------- */

struct target_run {
	const char *secrets[STREAMS];
	struct migrate_stream *streams[STREAMS];
	bool dialed[STREAMS];
	struct ferry_error *errs[STREAMS];
	/* the bad clients */
	bool garbage_closed;
	long long garbage_ms;
	struct ferry_error *wrong_secret, *reused, *wrong_pin;
	int rc_wrong_secret, rc_reused, rc_wrong_pin;
};

struct dial_arg {
	struct target_run *run;
	int i;
};

static void *dial_thread(void *p)
{
	struct dial_arg *a = p;
	a->run->streams[a->i] = dial(a->run->secrets[a->i], source_pem, &a->run->errs[a->i]);
	a->run->dialed[a->i] = a->run->streams[a->i] != NULL;
	return NULL;
}

static void *target_thread(void *p)
{
	struct target_run *run = p;
	/* A client that connects and never speaks holds one handshake slot
	 * until its limit, and nothing else. */
	int silent = raw_connect();

	int garbage = raw_connect();
	const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	long long start = now_ms();
	if (garbage >= 0 && send(garbage, http, strlen(http), MSG_NOSIGNAL) > 0) {
		struct pollfd pfd = { .fd = garbage, .events = POLLIN };
		char buf[256];
		while (poll(&pfd, 1, 3000) > 0) {
			ssize_t n = recv(garbage, buf, sizeof(buf), 0);
			if (n <= 0) {
				run->garbage_closed = true;
				break;
			}
		}
	}
	run->garbage_ms = now_ms() - start;
	if (garbage >= 0)
		close(garbage);

	struct migrate_stream *s = dial("not-a-secret", source_pem, &run->wrong_secret);
	run->rc_wrong_secret = s ? 0 : -1;
	migrate_stream_free(s);
	s = dial(run->secrets[0], target_pem, &run->wrong_pin);
	run->rc_wrong_pin = s ? 0 : -1;
	migrate_stream_free(s);

	struct dial_arg args[STREAMS];
	for (int i = 0; i < STREAMS; i++)
		args[i] = (struct dial_arg){ run, i };
	dial_thread(&args[0]);
	s = dial(run->secrets[0], source_pem, &run->reused);
	run->rc_reused = s ? 0 : -1;
	migrate_stream_free(s);
	pthread_t threads[STREAMS];
	for (int i = 1; i < STREAMS; i++)
		pthread_create(&threads[i], NULL, dial_thread, &args[i]);
	for (int i = 1; i < STREAMS; i++)
		pthread_join(threads[i], NULL);
	if (silent >= 0)
		close(silent);
	return NULL;
}

/* ---- bulk -------------------------------------------------------------------------- */

/* FNV-1a over 64-bit words: cheap enough not to hide the stream's speed. */
static uint64_t checksum(uint64_t h, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
	}
	return h;
}

static unsigned char *pool; /* random bytes, twice a message */

struct bulk {
	struct ws *ws;
	unsigned long long bytes;
	uint64_t sum;
	bool failed;
};

static void *bulk_send(void *p)
{
	struct bulk *b = p;
	cleanup_free unsigned char *msg = malloc(BULK_MESSAGE);
	b->sum = 0xcbf29ce484222325ull;
	for (uint64_t k = 0; k * BULK_MESSAGE < b->bytes; k++) {
		memcpy(msg, pool + (k * 4104) % BULK_MESSAGE, BULK_MESSAGE);
		memcpy(msg, &k, sizeof(k)); /* its number, to see order */
		b->sum = checksum(b->sum, msg, BULK_MESSAGE);
		struct ferry_error *err = NULL;
		if (ws_send(b->ws, WS_BINARY, msg, BULK_MESSAGE, &err) < 0) {
			diag_error(err);
			error_free(&err);
			b->failed = true;
			break;
		}
	}
	return NULL;
}

/* Receive b->bytes on b->ws; returns the MB/s. */
static double bulk_receive(struct bulk *b, struct ws *from)
{
	struct bulk sender = { .ws = from, .bytes = b->bytes };
	long long start = now_ms();
	pthread_t thread;
	pthread_create(&thread, NULL, bulk_send, &sender);
	b->sum = 0xcbf29ce484222325ull;
	unsigned long long got = 0;
	for (uint64_t k = 0; got < b->bytes; k++) {
		enum ws_opcode op;
		char *data = NULL;
		size_t len = 0;
		struct ferry_error *err = NULL;
		int r = ws_recv(b->ws, &op, &data, &len, 30000, &err);
		uint64_t seq = 0;
		if (r == 1 && len >= sizeof(seq))
			memcpy(&seq, data, sizeof(seq));
		if (r != 1 || op != WS_BINARY || len != BULK_MESSAGE || seq != k) {
			printf("#   message %llu: r=%d len=%zu seq=%llu\n", (unsigned long long)k, r, len,
			       (unsigned long long)seq);
			diag_error(err);
			error_free(&err);
			free(data);
			b->failed = true;
			break;
		}
		b->sum = checksum(b->sum, (unsigned char *)data, len);
		got += len;
		free(data);
	}
	long long ms = now_ms() - start;
	pthread_join(thread, NULL);
	b->failed = b->failed || sender.failed || b->sum != sender.sum;
	return ms > 0 ? (double)got / 1e6 / ((double)ms / 1000.0) : 0;
}

/* ---- the stories --------------------------------------------------------------- */

static bool expect_text(struct ws *ws, const char *want)
{
	enum ws_opcode op;
	char *data = NULL;
	struct ferry_error *err = NULL;
	int r = ws_recv(ws, &op, &data, NULL, 5000, &err);
	bool good = r == 1 && op == WS_TEXT && strcmp(data, want) == 0;
	if (!good) {
		printf("#   wanted '%s', got r=%d '%s'\n", want, r, r == 1 ? data : "");
		diag_error(err);
	}
	error_free(&err);
	free(data);
	return good;
}

static void test_streams(void)
{
	struct ferry_error *err = NULL;
	struct migrate_listener *l = NULL;
	int rc = migrate_listener_open("127.0.0.1", source_crt, source_key, &l, &err);
	ok(rc == 0 && migrate_listener_port(l) > 0, "a listener opens on an ephemeral port of 127.0.0.1");
	diag_error(err);
	error_free(&err);
	if (rc < 0)
		return;
	port = migrate_listener_port(l);

	struct target_run run = { .secrets = { "control-4f1e0c", "fs-9a7d22", "state-13b5e8" } };
	pthread_t target;
	pthread_create(&target, NULL, target_thread, &run);
	struct ws *ws[STREAMS] = { NULL };
	long long start = now_ms();
	rc = migrate_listener_accept(l, run.secrets, STREAMS, ws, 30000, NULL, NULL, &err);
	long long accept_ms = now_ms() - start;
	pthread_join(target, NULL);

	ok(rc == 0 && ws[0] && ws[1] && ws[2], "accept gets the three streams (%lld ms)", accept_ms);
	diag_error(err);
	error_free(&err);
	for (int i = 0; i < STREAMS; i++) {
		ok(run.dialed[i], "the target connects the stream of secret %s", run.secrets[i]);
		diag_error(run.errs[i]);
		error_free(&run.errs[i]);
	}
	ok(accept_ms < 4500, "a client that never speaks does not hold up the others");
	ok(run.garbage_closed && run.garbage_ms < 2000,
	   "a client speaking plain HTTP is disconnected at once (%lld ms)", run.garbage_ms);
	ok(run.rc_wrong_secret < 0 && run.wrong_secret && run.wrong_secret->errnum == EACCES &&
		   strstr(run.wrong_secret->msg, "refused the secret") != NULL,
	   "a wrong secret is refused");
	diag_error(run.wrong_secret);
	ok(run.rc_reused < 0 && run.reused && run.reused->errnum == EACCES, "a secret already used is refused");
	diag_error(run.reused);
	ok(run.rc_wrong_pin < 0 && run.wrong_pin && run.wrong_pin->errnum == EKEYREJECTED &&
		   strstr(run.wrong_pin->msg, "certificate is not the source's") != NULL &&
		   strstr(run.wrong_pin->msg, "127.0.0.1:") != NULL,
	   "a target pinning another certificate refuses the source, saying so");
	diag_error(run.wrong_pin);
	error_free(&run.wrong_secret);
	error_free(&run.reused);
	error_free(&run.wrong_pin);
	if (rc < 0 || !run.dialed[0] || !run.dialed[1] || !run.dialed[2]) {
		for (int i = 0; i < STREAMS; i++) {
			migrate_ws_free(ws[i]);
			migrate_stream_free(run.streams[i]);
		}
		migrate_listener_close(l);
		return;
	}
	/* Streams outlive their listener. */
	migrate_listener_close(l);

	/* Each way on every stream, and each secret's stream is the one it got. */
	for (int i = 0; i < STREAMS; i++) {
		struct ws *client = migrate_stream_ws(run.streams[i]);
		bool good = ws_send(client, WS_TEXT, run.secrets[i], strlen(run.secrets[i]), NULL) == 0 &&
			    expect_text(ws[i], run.secrets[i]);
		char reply[64];
		snprintf(reply, sizeof(reply), "source says hello on %d", i);
		good = good && ws_send(ws[i], WS_TEXT, reply, strlen(reply), NULL) == 0 && expect_text(client, reply);
		ok(good, "stream %d (%s) carries messages both ways", i, run.secrets[i]);
	}

	/* The control messages: a running instance's header, the plan back. */
	struct migrate_header h = { .name = "c1", .config = json_pack("{s:s}", "volatile.eth0.hwaddr", "00:16:3e:00:00:01"),
				    .devices = json_object(), .profiles = json_array(), .running = true };
	struct migrate_header got = { 0 };
	bool sent = migrate_send_header(ws[0], &h, &err) == 0;
	bool good = sent && migrate_recv_header(migrate_stream_ws(run.streams[0]), &got, 5000, &err) == 0;
	ok(good && got.running && !got.live && strcmp(got.name, "c1") == 0,
	   "a header says the instance runs, not live");
	diag_error(err);
	error_free(&err);
	json_decref(h.config);
	json_decref(h.devices);
	json_decref(h.profiles);
	migrate_header_clear(&got);
	struct migrate_result plan = { .success = true, .plan = MIGRATE_PLAN_COPY }, back = { 0 };
	good = migrate_send_result(migrate_stream_ws(run.streams[0]), &plan, &err) == 0 &&
	       migrate_recv_result(ws[0], &back, 5000, &err) == 0;
	ok(good && back.success && back.plan && strcmp(back.plan, MIGRATE_PLAN_COPY) == 0 && back.message == NULL,
	   "the target's plan comes back as sent");
	diag_error(err);
	error_free(&err);
	migrate_result_clear(&back);

	struct bulk down = { .ws = migrate_stream_ws(run.streams[1]), .bytes = BULK_BYTES };
	double mbs = bulk_receive(&down, ws[1]);
	ok(!down.failed, "512 MiB in 256 KiB messages, source to target, arrive intact");
	printf("# source -> target: %.0f MB/s\n", mbs);
	struct bulk up = { .ws = ws[1], .bytes = BULK_BACK_BYTES };
	mbs = bulk_receive(&up, migrate_stream_ws(run.streams[1]));
	ok(!up.failed, "128 MiB target to source (masked frames) arrive intact");
	printf("# target -> source: %.0f MB/s\n", mbs);

	/* An orderly end, and one where the source just frees its side: the
	 * target must see the end, not wait. */
	ws_close(ws[2], 1000, "done");
	enum ws_opcode op;
	char *data = NULL;
	ok(ws_recv(migrate_stream_ws(run.streams[2]), &op, &data, NULL, 5000, NULL) == 0,
	   "the target sees the source's close frame");
	migrate_ws_free(ws[0]);
	long long t0 = now_ms();
	int r = ws_recv(migrate_stream_ws(run.streams[0]), &op, &data, NULL, 5000, &err);
	ok(r == 0 && now_ms() - t0 < 2000, "migrate_ws_free ends the TLS session and the socket: the target sees the end");
	diag_error(err);
	error_free(&err);
	for (int i = 0; i < STREAMS; i++)
		migrate_stream_free(run.streams[i]);
	migrate_ws_free(ws[1]);
	migrate_ws_free(ws[2]);
}

static long long cancel_at;

static bool cancel_after(void *arg)
{
	(*(int *)arg)++;
	return now_ms() >= cancel_at;
}

struct one_dial {
	const char *host;
	struct migrate_stream *s;
	struct ferry_error *err;
};

static void *one_dial_thread(void *p)
{
	struct one_dial *d = p;
	migrate_stream_dial(d->host, port, "only", source_pem, target_crt, target_key, &d->s, &d->err);
	return NULL;
}

/* A client that connects and never speaks: how long until the listener hangs up. */
struct silent {
	long long ms;          /* -1: it did not within 10 s */
	atomic_bool finished;  /* stops the accept it runs beside */
};

static void *silent_thread(void *p)
{
	struct silent *silent = p;
	silent->ms = -1;
	int fd = raw_connect();
	long long start = now_ms();
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;
	if (fd >= 0 && poll(&pfd, 1, 10000) > 0 && recv(fd, &c, 1, 0) <= 0)
		silent->ms = now_ms() - start;
	if (fd >= 0)
		close(fd);
	atomic_store(&silent->finished, true);
	return NULL;
}

static bool silent_finished(void *arg)
{
	struct silent *silent = arg;
	return atomic_load(&silent->finished);
}

static void test_any_address_and_limits(void)
{
	struct ferry_error *err = NULL;
	struct migrate_listener *l = NULL;
	int rc = migrate_listener_open(NULL, source_crt, source_key, &l, &err);
	ok(rc == 0, "a listener opens on every address");
	diag_error(err);
	error_free(&err);
	if (rc < 0)
		return;
	port = migrate_listener_port(l);

	struct one_dial d = { .host = "127.0.0.1" };
	pthread_t thread;
	pthread_create(&thread, NULL, one_dial_thread, &d);
	const char *only[] = { "only" };
	struct ws *ws = NULL;
	rc = migrate_listener_accept(l, only, 1, &ws, 10000, NULL, NULL, &err);
	pthread_join(thread, NULL);
	ok(rc == 0 && d.s != NULL, "it takes an IPv4 stream");
	diag_error(err);
	diag_error(d.err);
	error_free(&err);
	error_free(&d.err);
	migrate_ws_free(ws);
	migrate_stream_free(d.s);

	const char *never[] = { "never" };
	ws = (struct ws *)&rc; /* must come back NULL */
	long long start = now_ms();
	rc = migrate_listener_accept(l, never, 1, &ws, 300, NULL, NULL, &err);
	long long ms = now_ms() - start;
	ok(rc < 0 && err && err->errnum == ETIMEDOUT && err->status == 504 && ws == NULL && ms >= 290 && ms < 1000,
	   "accept gives up with ETIMEDOUT when a stream never comes (%lld ms)", ms);
	diag_error(err);
	error_free(&err);

	int asked = 0;
	cancel_at = now_ms() + 250;
	start = now_ms();
	rc = migrate_listener_accept(l, never, 1, &ws, 10000, cancel_after, &asked, &err);
	ms = now_ms() - start;
	ok(rc < 0 && err && err->errnum == ECANCELED && err->status == 400 && ms < 700 && asked >= 2,
	   "accept stops with ECANCELED when cancelled (%lld ms, asked %d times)", ms, asked);
	diag_error(err);
	error_free(&err);

	/* One that connects and never speaks is dropped after a few seconds,
	 * while accept goes on waiting. */
	struct silent silent = { 0 };
	pthread_create(&thread, NULL, silent_thread, &silent);
	rc = migrate_listener_accept(l, never, 1, &ws, 15000, silent_finished, &silent, &err);
	pthread_join(thread, NULL);
	ok(rc < 0 && err && err->errnum == ECANCELED && silent.ms >= 4000 && silent.ms < 7000,
	   "a client that never speaks is dropped after its limit (%lld ms)", silent.ms);
	error_free(&err);
	migrate_listener_close(l);

	struct migrate_stream *s = dial("only", source_pem, &err);
	ok(s == NULL && err && err->status == 502 && err->errnum == ECONNREFUSED,
	   "dialing a closed listener fails with ECONNREFUSED");
	diag_error(err);
	error_free(&err);
	migrate_stream_free(s);
}

/* File names in the paths message (migrate_name_to_json): any bytes but
 * '/' and NUL, UTF-8 or not, come back as they went. */
static void test_names(void)
{
	const char *names[] = { "passwd", "caf\xc3\xa9", "\xff-not-utf8", "a\x80\x81" "b", "" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *j = migrate_name_to_json(names[i]);
		char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		json_t *back_json = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
		char *back = migrate_name_from_json(back_json);
		ok(back != NULL && strcmp(back, names[i]) == 0, "name %zu round-trips through JSON (%s)", i,
		   text ? text : "no JSON");
		free(back);
		free(text);
		json_decref(back_json);
		json_decref(j);
	}
	json_t *nul = json_pack("{s:s}", "base64", "YQBi"); /* "a\0b" */
	char *bad = migrate_name_from_json(nul);
	ok(bad == NULL, "a name with a NUL inside is refused");
	free(bad);
	json_decref(nul);
	json_t *num = json_integer(3);
	bad = migrate_name_from_json(num);
	ok(bad == NULL, "a number is no name");
	free(bad);
	json_decref(num);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	char tmpl[] = "/tmp/ferry-test-channel-XXXXXX";
	dir = mkdtemp(tmpl);
	if (dir == NULL || make_identity("source", &source_crt, &source_key, &source_pem) < 0 ||
	    make_identity("target", &target_crt, &target_key, &target_pem) < 0) {
		printf("Bail out! cannot make certificates with openssl in %s\n", dir ? dir : "/tmp");
		return 1;
	}
	pool = malloc(2 * BULK_MESSAGE);
	for (size_t i = 0; i < 2 * BULK_MESSAGE; i++)
		pool[i] = (unsigned char)(rand() >> 7);

	test_names();
	test_streams();
	test_any_address_and_limits();

	rm_rf(dir, NULL);
	return tap_done();
}
