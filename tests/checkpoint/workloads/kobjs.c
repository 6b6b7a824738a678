/* More kernel objects a service holds, each checked on every tick:
 * - a sealed memfd (F_SEAL_SHRINK | F_SEAL_GROW), mapped shared: its
 *   pattern is intact through the mapping and through pread, and its seals
 *   are the same;
 * - a SysV semaphore set whose second semaphore holds 7: each tick takes one
 *   and gives it back; and a SysV message queue holding a message from
 *   start, received only after /tmp/wl/go, whole and of its type;
 * - a POSIX timer (timer_create, SIGRTMIN every 20 ms, counted): it keeps
 *   firing;
 * - a pair of connected UDP sockets on loopback playing ping-pong with
 *   sequence numbers;
 * - a pidfd on a child: signal 0 through it reaches the child every tick;
 *   after /tmp/wl/go, SIGKILL through it ends the child and the pidfd
 *   reports it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "wl.h"

#define MEMFD_SIZE (64 * 1024)
#define MSG_TEXT "queued before the checkpoint"

struct wl_msg {
	long type;
	char text[64];
};

static volatile sig_atomic_t timer_fired;
static void on_timer(int sig)
{
	(void)sig;
	timer_fired++;
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + 3);
}

/* A UDP socket on loopback PORT, connected to loopback PEER. */
static int udp_pair_end(int port, int peer)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(peer), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -1;
	return fd;
}

/* poll, again when the timer's signal cuts it short (poll is never
 * restarted, SA_RESTART or not). */
static int poll_one(struct pollfd *p, int timeout_ms)
{
	int r;
	while ((r = poll(p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	return r;
}

int main(void)
{
	wl_init("kobjs");

	int mfd = memfd_create("ferry-wl", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0 || ftruncate(mfd, MEMFD_SIZE) < 0)
		return 1;
	unsigned char *map = mmap(NULL, MEMFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED)
		return 1;
	for (size_t i = 0; i < MEMFD_SIZE; i++)
		map[i] = pattern(i);
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		return 1;

	int sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	int msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	struct sembuf seven = { .sem_num = 1, .sem_op = 7 };
	struct wl_msg msg = { .type = 42, .text = MSG_TEXT };
	if (sem < 0 || msq < 0 || semop(sem, &seven, 1) < 0 || msgsnd(msq, &msg, sizeof(msg.text), 0) < 0)
		return 1;

	signal(SIGRTMIN, on_timer);
	struct sigevent ev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN };
	timer_t timer;
	struct itimerspec every = { .it_interval = { 0, 20000000 }, .it_value = { 0, 20000000 } };
	if (timer_create(CLOCK_MONOTONIC, &ev, &timer) < 0 || timer_settime(timer, 0, &every, NULL) < 0)
		return 1;

	int ping = udp_pair_end(7201, 7202), pong = udp_pair_end(7202, 7201);
	if (ping < 0 || pong < 0)
		return 1;

	pid_t child = fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
	if (pidfd < 0)
		return 1;

	bool go_done = false;
	unsigned long seq = 0;
	sig_atomic_t fired_before = 0;
	for (;;) {
		wl_ticks++;
		if (wl_ticks % 10 == 1) {
			unsigned char buf[4096];
			for (size_t off = 0; off < MEMFD_SIZE; off += sizeof(buf)) {
				if (pread(mfd, buf, sizeof(buf), (off_t)off) != (ssize_t)sizeof(buf)) {
					wl_fail("memfd: pread at %zu", off);
					break;
				}
				for (size_t i = 0; i < sizeof(buf); i++)
					if (buf[i] != pattern(off + i) || map[off + i] != pattern(off + i)) {
						wl_fail("memfd: byte %zu changed", off + i);
						off = MEMFD_SIZE;
						break;
					}
			}
			/* The timer fires every 20 ms: ten ticks (500 ms and more) see many. */
			if (wl_ticks > 1 && timer_fired - fired_before < 10)
				wl_fail("the POSIX timer fired %d times in ten ticks", (int)(timer_fired - fired_before));
			fired_before = timer_fired;
		}
		int seals = fcntl(mfd, F_GET_SEALS);
		if (seals != (F_SEAL_SHRINK | F_SEAL_GROW))
			wl_fail("memfd: seals are %#x", seals);

		struct sembuf take = { .sem_num = 1, .sem_op = -1, .sem_flg = IPC_NOWAIT };
		struct sembuf give = { .sem_num = 1, .sem_op = 1 };
		if (semop(sem, &take, 1) < 0 || semop(sem, &give, 1) < 0)
			wl_fail("semaphore: %s", strerror(errno));
		int val = semctl(sem, 1, GETVAL);
		if (val != 7)
			wl_fail("semaphore holds %d, want 7", val);

		seq++;
		char out[32], in[32] = "";
		int len = snprintf(out, sizeof(out), "ping %lu", seq);
		struct pollfd p = { .fd = pong, .events = POLLIN };
		if (send(ping, out, (size_t)len, 0) != len || poll_one(&p, 1000) != 1 ||
		    recv(pong, in, sizeof(in) - 1, 0) != len || strcmp(in, out) != 0)
			wl_fail("UDP ping-pong %lu: got \"%s\"", seq, in);

		if (!go_done && syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
			wl_fail("pidfd: signal 0: %s", strerror(errno));

		if (!go_done && wl_go()) {
			struct wl_msg got = { 0 };
			ssize_t n = msgrcv(msq, &got, sizeof(got.text), 0, IPC_NOWAIT);
			if (n != (ssize_t)sizeof(got.text) || got.type != 42 || strcmp(got.text, MSG_TEXT) != 0)
				wl_fail("message queue: got %zd bytes of type %ld", n, got.type);
			int status = 0;
			struct pollfd pp = { .fd = pidfd, .events = POLLIN };
			if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0 || poll_one(&pp, 2000) != 1 ||
			    waitpid(child, &status, 0) != child || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
				wl_fail("pidfd: SIGKILL through it did not end the child");
			go_done = true;
		}
		wl_report(go_done, "seq=%lu timer=%d", seq, (int)timer_fired);
		wl_sleep_ms(50);
	}
}
