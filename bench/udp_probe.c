/* udp_probe ADDR PORT DURATION_MS [INTERVAL_US]: the downtime probe of
 * bench/migrate_downtime.sh. Sends a numbered datagram to ADDR:PORT (a
 * udp_echo) every INTERVAL_US (default 1000), counts the replies, and at
 * the end prints one line of key=value:
 *
 *   sent received lost duplicates send_errors
 *   max_gap_ms          the largest gap between two consecutive replies, in
 *                       the order they arrived: the downtime
 *   gap_start_ms gap_end_ms  when that gap began and ended, from the start
 *   gap_start_epoch_ms  its beginning on the wall clock (ms since 1970), to
 *                       place it against the timed move
 *   first_reply_ms      when the first reply came (-1: none)
 *   tail_ms             time from the last reply to the end: a service that
 *                       never came back shows here, not in max_gap_ms
 *   max_rtt_ms elapsed_ms
 *   gaps                every gap of GAP_MIN_MS or more (the first MAX_GAPS),
 *                       as START_EPOCH_MS+LENGTH_MS, comma-separated ("-":
 *                       none): a move's stop, and any stall after it
 *   lost_at             when the unanswered datagrams were sent (the first
 *                       MAX_GAPS), as EPOCH_MS, comma-separated ("-": none):
 *                       where in the move they were lost
 *
 * It stops on its own after DURATION_MS, or earlier on SIGTERM or SIGINT;
 * either way it waits up to 100 ms for replies still in flight, then prints
 * what it has. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_NS (100 * 1000000LL)
#define GAP_MIN_MS 50
#define MAX_GAPS 16

/* What travels, and comes back unchanged. */
struct probe_datagram {
	uint64_t seq;
	int64_t sent_ns; /* CLOCK_MONOTONIC */
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double ms(int64_t ns)
{
	return (double)ns / 1e6;
}

static bool parse_long(const char *s, long long min, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min)
		return false;
	*out = v;
	return true;
}

struct probe_stats {
	uint64_t sent, received, duplicates, send_errors;
	uint8_t *seen; /* one bit per sequence number */
	int64_t *sent_at; /* per sequence number: when it went (monotonic ns) */
	uint64_t seen_bits;
	int64_t start_ns, first_reply_ns, last_reply_ns; /* last_reply_ns < 0: none yet */
	int64_t max_gap_ns, gap_start_ns, gap_end_ns;
	int64_t max_rtt_ns;
	int64_t gaps_start_ns[MAX_GAPS], gaps_ns[MAX_GAPS];
	unsigned gaps;
};

/* Every datagram waiting on the socket, arrived "now". */
static void probe_receive(int fd, struct probe_stats *st)
{
	for (;;) {
		struct probe_datagram d;
		ssize_t n = recv(fd, &d, sizeof(d), MSG_DONTWAIT);
		if (n < 0) {
			/* ECONNREFUSED and the like: an ICMP error from a service that is
			 * away, which is what the gap measures. */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			continue;
		}
		if (n != (ssize_t)sizeof(d) || d.seq >= st->sent || d.seq >= st->seen_bits)
			continue;
		if (st->seen[d.seq / 8] & (1u << (d.seq % 8))) {
			st->duplicates++;
			continue;
		}
		st->seen[d.seq / 8] |= (uint8_t)(1u << (d.seq % 8));
		int64_t now = clock_ns(CLOCK_MONOTONIC);
		st->received++;
		if (now - d.sent_ns > st->max_rtt_ns)
			st->max_rtt_ns = now - d.sent_ns;
		if (st->last_reply_ns < 0) {
			st->first_reply_ns = now;
		} else {
			if (now - st->last_reply_ns > st->max_gap_ns) {
				st->max_gap_ns = now - st->last_reply_ns;
				st->gap_start_ns = st->last_reply_ns;
				st->gap_end_ns = now;
			}
			if (now - st->last_reply_ns >= GAP_MIN_MS * 1000000LL && st->gaps < MAX_GAPS) {
				st->gaps_start_ns[st->gaps] = st->last_reply_ns;
				st->gaps_ns[st->gaps++] = now - st->last_reply_ns;
			}
		}
		st->last_reply_ns = now;
	}
}

/* Wait for the socket until deadline (monotonic), or a stop signal. */
static void probe_wait(int fd, int64_t deadline, const sigset_t *unblocked, struct probe_stats *st)
{
	int64_t left = deadline - clock_ns(CLOCK_MONOTONIC);
	if (left < 0)
		left = 0;
	struct timespec ts = { .tv_sec = left / 1000000000LL, .tv_nsec = left % 1000000000LL };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	/* The stop signals are blocked except inside ppoll: none is lost between
	 * the check of stop_requested and the wait. */
	if (ppoll(&pfd, 1, &ts, unblocked) > 0)
		probe_receive(fd, st);
}

int main(int argc, char **argv)
{
	long long port, duration_ms, interval_us = 1000;
	if (argc < 4 || argc > 5 || !parse_long(argv[2], 1, &port) || port > 65535 ||
	    !parse_long(argv[3], 1, &duration_ms) || (argc == 5 && !parse_long(argv[4], 10, &interval_us))) {
		fprintf(stderr, "usage: udp_probe ADDR PORT DURATION_MS [INTERVAL_US (>= 10, default 1000)]\n");
		return 2;
	}
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "udp_probe: %s is not an IPv4 address\n", argv[1]);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("udp_probe: socket");
		return 1;
	}

	sigset_t stop_signals, unblocked;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	sigprocmask(SIG_BLOCK, &stop_signals, &unblocked);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGINT);
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	/* Wake-ups on time: the default 50 us slack is 5% of the interval. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	const int64_t interval_ns = interval_us * 1000;
	struct probe_stats st = { .first_reply_ns = -1, .last_reply_ns = -1 };
	st.seen_bits = (uint64_t)(duration_ms * 1000000LL / interval_ns) + 2;
	st.seen = calloc(st.seen_bits / 8 + 1, 1);
	st.sent_at = calloc(st.seen_bits, sizeof(*st.sent_at));
	if (st.seen == NULL || st.sent_at == NULL) {
		fprintf(stderr, "udp_probe: out of memory\n");
		return 1;
	}
	const int64_t wall_offset = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
	st.start_ns = clock_ns(CLOCK_MONOTONIC);
	const int64_t end_ns = st.start_ns + duration_ms * 1000000LL;
	int64_t next_ns = st.start_ns;

	while (!stop_requested) {
		int64_t now = clock_ns(CLOCK_MONOTONIC);
		if (now >= end_ns || st.sent >= st.seen_bits)
			break;
		if (now >= next_ns) {
			struct probe_datagram d = { .seq = st.sent, .sent_ns = now };
			st.sent_at[st.sent] = now;
			if (send(fd, &d, sizeof(d), 0) < 0)
				st.send_errors++; /* EHOSTUNREACH while the address is away: sent all the same */
			st.sent++;
			next_ns += interval_ns;
			/* Behind schedule (this process was not run): skip the missed
			 * slots rather than send a burst. */
			if (next_ns <= now)
				next_ns = now + interval_ns;
		}
		probe_wait(fd, next_ns < end_ns ? next_ns : end_ns, &unblocked, &st);
	}
	const int64_t stop_ns = clock_ns(CLOCK_MONOTONIC);
	/* The replies still in flight. */
	for (int64_t drain_end = stop_ns + DRAIN_NS; st.received < st.sent && clock_ns(CLOCK_MONOTONIC) < drain_end;)
		probe_wait(fd, drain_end, &unblocked, &st);

	/* A reply in the drain came after stop_ns: no tail then. */
	const int64_t tail_ns = stop_ns - (st.last_reply_ns >= 0 ? st.last_reply_ns : st.start_ns);
	printf("sent=%llu received=%llu lost=%llu duplicates=%llu send_errors=%llu max_gap_ms=%.3f "
	       "gap_start_ms=%.3f gap_end_ms=%.3f gap_start_epoch_ms=%lld first_reply_ms=%.3f tail_ms=%.3f "
	       "max_rtt_ms=%.3f elapsed_ms=%.3f gaps=",
	       (unsigned long long)st.sent, (unsigned long long)st.received,
	       (unsigned long long)(st.sent - st.received), (unsigned long long)st.duplicates,
	       (unsigned long long)st.send_errors, ms(st.max_gap_ns),
	       st.max_gap_ns > 0 ? ms(st.gap_start_ns - st.start_ns) : -1.0,
	       st.max_gap_ns > 0 ? ms(st.gap_end_ns - st.start_ns) : -1.0,
	       st.max_gap_ns > 0 ? (long long)((st.gap_start_ns + wall_offset) / 1000000) : -1LL,
	       st.first_reply_ns >= 0 ? ms(st.first_reply_ns - st.start_ns) : -1.0,
	       ms(tail_ns > 0 ? tail_ns : 0), ms(st.max_rtt_ns),
	       ms(stop_ns - st.start_ns));
	for (unsigned i = 0; i < st.gaps; i++)
		printf("%s%lld+%.1f", i > 0 ? "," : "", (long long)((st.gaps_start_ns[i] + wall_offset) / 1000000),
		       ms(st.gaps_ns[i]));
	printf("%s lost_at=", st.gaps > 0 ? "" : "-");
	unsigned shown = 0;
	for (uint64_t i = 0; i < st.sent && shown < MAX_GAPS; i++)
		if (!(st.seen[i / 8] & (1u << (i % 8))))
			printf("%s%lld", shown++ > 0 ? "," : "", (long long)((st.sent_at[i] + wall_offset) / 1000000));
	printf("%s\n", shown > 0 ? "" : "-");
	fflush(stdout);
	free(st.seen);
	close(fd);
	return 0;
}
