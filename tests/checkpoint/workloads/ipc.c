/* Unix sockets and a FIFO, each with data in flight across the checkpoint.
 * A child and the parent talk over
 * - a named unix stream socket (listener in /tmp/wl/stream.sock, accepted
 *   connection) and a named unix datagram socket (/tmp/wl/dgram.sock), on
 *   which they play ping-pong with sequence numbers every tick;
 * - a stream socketpair and a datagram socketpair, and a FIFO
 *   (/tmp/wl/fifo), into which data was written at start and is read only
 *   after /tmp/wl/go: it must arrive whole, datagram boundaries kept. */
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "wl.h"

#define STREAM_PATH WL_DIR "/stream.sock"
#define DGRAM_PATH WL_DIR "/dgram.sock"
#define DGRAM_CHILD_PATH WL_DIR "/dgram-child.sock"
#define FIFO_PATH WL_DIR "/fifo"

static const char in_flight_stream[] = "stream-in-flight-0123456789";
static const char *const in_flight_dgrams[] = { "dgram-one", "dgram-two!", "dgram-three" };
static const char in_flight_fifo[] = "fifo-in-flight-abcdef";

static struct sockaddr_un addr(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	return a;
}

static bool read_exact(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		len -= r;
	}
	return true;
}

/* The child: echoes sequence numbers on the named stream and datagram
 * sockets (adding 1), forever. */
static void child_main(void)
{
	struct sockaddr_un sa = addr(STREAM_PATH);
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	while (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		wl_sleep_ms(10);
	int d = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un da = addr(DGRAM_CHILD_PATH), peer = addr(DGRAM_PATH);
	unlink(DGRAM_CHILD_PATH);
	if (bind(d, (struct sockaddr *)&da, sizeof(da)) < 0)
		_exit(1);
	for (;;) {
		unsigned long seq;
		if (!read_exact(s, &seq, sizeof(seq)))
			_exit(2);
		seq++;
		if (!wl_write_all(s, &seq, sizeof(seq)))
			_exit(3);
		if (recv(d, &seq, sizeof(seq), 0) != sizeof(seq))
			_exit(4);
		seq++;
		if (sendto(d, &seq, sizeof(seq), 0, (struct sockaddr *)&peer, sizeof(peer)) != sizeof(seq))
			_exit(5);
	}
}

int main(void)
{
	wl_init("ipc");
	signal(SIGPIPE, SIG_IGN);
	unlink(STREAM_PATH);
	unlink(DGRAM_PATH);
	unlink(FIFO_PATH);

	/* In-flight data: written now, read after the restore. */
	int stream_pair[2], dgram_pair[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream_pair) < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram_pair) < 0)
		return 1;
	wl_write_all(stream_pair[0], in_flight_stream, sizeof(in_flight_stream));
	for (int i = 0; i < 3; i++)
		send(dgram_pair[0], in_flight_dgrams[i], strlen(in_flight_dgrams[i]), 0);
	if (mkfifo(FIFO_PATH, 0600) < 0)
		return 1;
	int fifo_r = open(FIFO_PATH, O_RDONLY | O_NONBLOCK);
	int fifo_w = open(FIFO_PATH, O_WRONLY);
	if (fifo_r < 0 || fifo_w < 0)
		return 1;
	fcntl(fifo_r, F_SETFL, 0);
	wl_write_all(fifo_w, in_flight_fifo, sizeof(in_flight_fifo));

	struct sockaddr_un sa = addr(STREAM_PATH), da = addr(DGRAM_PATH), child_da = addr(DGRAM_CHILD_PATH);
	int listener = socket(AF_UNIX, SOCK_STREAM, 0);
	int dgram = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(listener, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(listener, 4) < 0 ||
	    bind(dgram, (struct sockaddr *)&da, sizeof(da)) < 0)
		return 1;
	pid_t child = fork();
	if (child == 0)
		child_main();
	int conn = accept(listener, NULL, NULL);
	if (conn < 0)
		return 1;
	struct timeval tv = { 5, 0 };
	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(dgram, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	unsigned long seq = 0;
	bool go_done = false;
	for (;;) {
		wl_ticks++;
		unsigned long got;
		seq += 10;
		if (!wl_write_all(conn, &seq, sizeof(seq)) || !read_exact(conn, &got, sizeof(got)) || got != seq + 1)
			wl_fail("unix stream ping-pong: sent %lu, got %lu (%s)", seq, got, strerror(errno));
		/* The child binds its datagram socket before its first echo. */
		if (sendto(dgram, &seq, sizeof(seq), 0, (struct sockaddr *)&child_da, sizeof(child_da)) != sizeof(seq) ||
		    recv(dgram, &got, sizeof(got), 0) != sizeof(got) || got != seq + 1)
			wl_fail("unix datagram ping-pong: sent %lu, got %lu (%s)", seq, got, strerror(errno));
		if (!go_done && wl_go()) {
			char buf[128];
			if (!read_exact(stream_pair[1], buf, sizeof(in_flight_stream)) ||
			    memcmp(buf, in_flight_stream, sizeof(in_flight_stream)) != 0)
				wl_fail("the stream socketpair's data in flight was lost");
			for (int i = 0; i < 3; i++) {
				ssize_t n = recv(dgram_pair[1], buf, sizeof(buf), MSG_DONTWAIT);
				if (n != (ssize_t)strlen(in_flight_dgrams[i]) || memcmp(buf, in_flight_dgrams[i], n) != 0)
					wl_fail("datagram %d in flight: got %zd bytes", i, n);
			}
			if (!read_exact(fifo_r, buf, sizeof(in_flight_fifo)) ||
			    memcmp(buf, in_flight_fifo, sizeof(in_flight_fifo)) != 0)
				wl_fail("the FIFO's data in flight was lost");
			go_done = true;
		}
		int status;
		if (waitpid(child, &status, WNOHANG) == child)
			wl_fail("the child exited (status %d)", status);
		wl_report(go_done, "seq=%lu", seq);
		wl_sleep_ms(50);
	}
}
