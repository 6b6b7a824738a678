/* Timers and event fds, each checked after the restore:
 * - a periodic timerfd (20 ms) and an interval timer (setitimer
 *   ITIMER_REAL, 30 ms, SIGALRM counted): they keep firing, with their
 *   intervals intact;
 * - an eventfd holding a count of 7 from before the checkpoint, plus one
 *   per tick;
 * - an epoll set with the timerfd, the eventfd and a pipe: it still reports
 *   each ready, with its user data;
 * - an inotify watch on /tmp/wl/watched: a file the test creates there
 *   after /tmp/wl/go is reported;
 * - a signalfd for SIGUSR1: SIGUSR1 sent by the test after the restore
 *   is read from it; and SIGUSR2, blocked and sent to itself before the
 *   checkpoint, is still pending after it. */
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/timerfd.h>

#include "wl.h"

#define WATCHED WL_DIR "/watched"

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	alarms++;
}

int main(void)
{
	wl_init("fds");
	mkdir(WATCHED, 0755);

	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	struct itimerspec its = { .it_interval = { 0, 20000000 }, .it_value = { 0, 20000000 } };
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
		return 1;

	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval itv = { .it_interval = { 0, 30000 }, .it_value = { 0, 30000 } };
	setitimer(ITIMER_REAL, &itv, NULL);

	int efd = eventfd(7, EFD_NONBLOCK);
	int pipefd[2];
	if (efd < 0 || pipe(pipefd) < 0)
		return 1;
	wl_write_all(pipefd[1], "p", 1);

	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.u64 = 0x1111;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	ev.data.u64 = 0x2222;
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
	ev.data.u64 = 0x3333;
	epoll_ctl(ep, EPOLL_CTL_ADD, pipefd[0], &ev);

	int ino = inotify_init1(IN_NONBLOCK);
	if (ino < 0 || inotify_add_watch(ino, WATCHED, IN_CREATE) < 0)
		return 1;

	sigset_t usr;
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigaddset(&usr, SIGUSR2);
	sigprocmask(SIG_BLOCK, &usr, NULL);
	/* SIGUSR2 stays blocked and pending; only SIGUSR1 is read. */
	sigset_t usr1_only;
	sigemptyset(&usr1_only);
	sigaddset(&usr1_only, SIGUSR1);
	int sfd = signalfd(-1, &usr1_only, SFD_NONBLOCK);
	if (sfd < 0)
		return 1;
	/* Pending across the checkpoint. */
	kill(getpid(), SIGUSR2);
	/* The test sends SIGUSR1 to this pid. */
	FILE *f = fopen(WL_DIR "/fds.pid", "w");
	if (f != NULL) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}

	uint64_t timer_total = 0, event_expect = 7;
	bool go_done = false, usr1 = false, created = false;
	int last_alarms = 0, idle_ticks = 0;
	for (;;) {
		wl_ticks++;
		/* epoll: the timerfd fires within a tick, the eventfd and the pipe stay ready. */
		struct epoll_event got[8];
		unsigned seen = 0;
		wl_sleep_ms(50);
		int n = epoll_wait(ep, got, 8, 1000);
		for (int i = 0; i < n; i++)
			seen |= got[i].data.u64 == 0x1111 ? 1 : got[i].data.u64 == 0x2222 ? 2 : got[i].data.u64 == 0x3333 ? 4 : 8;
		if (seen != 7)
			wl_fail("epoll reported %#x, want the timerfd, eventfd and pipe (0x7)", seen);

		uint64_t expirations = 0;
		if (read(tfd, &expirations, sizeof(expirations)) == sizeof(expirations))
			timer_total += expirations;
		struct itimerspec cur;
		if (timerfd_gettime(tfd, &cur) < 0 || cur.it_interval.tv_nsec != 20000000 || cur.it_interval.tv_sec != 0)
			wl_fail("the timerfd's interval changed");
		struct itimerval icur;
		getitimer(ITIMER_REAL, &icur);
		if (icur.it_interval.tv_sec != 0 || icur.it_interval.tv_usec != 30000)
			wl_fail("the interval timer's interval is %ld us", (long)icur.it_interval.tv_usec);
		idle_ticks = alarms == last_alarms ? idle_ticks + 1 : 0;
		last_alarms = alarms;
		if (idle_ticks > 5)
			wl_fail("the interval timer stopped firing");

		/* eventfd: read the counter, which must be what we left in it, then put one more. */
		uint64_t value = 0;
		if (read(efd, &value, sizeof(value)) != sizeof(value) || value != event_expect)
			wl_fail("eventfd held %llu, want %llu", (unsigned long long)value, (unsigned long long)event_expect);
		event_expect = wl_ticks % 5 + 1;
		wl_write_all(efd, &event_expect, sizeof(event_expect));

		sigset_t pending;
		sigpending(&pending);
		if (!sigismember(&pending, SIGUSR2))
			wl_fail("SIGUSR2, pending since the start, is lost");

		struct signalfd_siginfo si;
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGUSR1)
				usr1 = true;
			else
				wl_fail("signalfd read signal %u", si.ssi_signo);
		}
		char buf[4096];
		ssize_t len = read(ino, buf, sizeof(buf));
		for (char *p = buf; len > 0 && p < buf + len;) {
			struct inotify_event *ie = (struct inotify_event *)p;
			if (ie->len > 0 && strcmp(ie->name, "after-restore") == 0)
				created = true;
			p += sizeof(*ie) + ie->len;
		}
		go_done = go_done || (wl_go() && usr1 && created);
		if (wl_failure[0] != '\0')
			wl_fail("(timerfd=%llu alarms=%d)", (unsigned long long)timer_total, (int)alarms);
		wl_report(go_done, "timerfd=%llu alarms=%d usr1=%d inotify=%d", (unsigned long long)timer_total,
			  (int)alarms, usr1, created);
	}
}
