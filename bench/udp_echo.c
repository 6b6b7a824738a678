/* udp_echo PORT: a UDP echo server for the container of
 * bench/migrate_downtime.sh (static: it runs in a busybox root filesystem).
 * Every datagram goes back to its sender unchanged, except "?", which is
 * answered with who this process is:
 *
 *   udp_echo pid=PID token=HEX echoed=N
 *
 * The token is drawn once at start and lives only in this process's memory,
 * and echoed counts the datagrams echoed so far. After a live move the same
 * token and a grown count prove the process itself went across; a restarted
 * one (a stateless move) has a new token even when it gets the same pid, and
 * the kernel's start time can't tell (a process CRIU restores is a new task
 * to the kernel). */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char *end;
	long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
	if (argc != 2 || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "usage: udp_echo PORT\n");
		return 2;
	}
	uint64_t token;
	if (getrandom(&token, sizeof(token), 0) != sizeof(token)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		token = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid() << 32;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				    .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("udp_echo: bind");
		return 1;
	}
	uint64_t echoed = 0;
	char buf[65536];
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("udp_echo: recvfrom");
			return 1;
		}
		if (n == 1 && buf[0] == '?')
			n = snprintf(buf, sizeof(buf), "udp_echo pid=%d token=%016llx echoed=%llu\n", (int)getpid(),
				     (unsigned long long)token, (unsigned long long)echoed);
		else
			echoed++;
		/* A full socket buffer or an unreachable sender loses this reply only. */
		sendto(fd, buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&from, fromlen);
	}
}
