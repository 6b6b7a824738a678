/* A server slow to accept: listens on port 7301 (all addresses) and takes
 * one connection every 30 ms, answering "N PID" (N counts the answers) and
 * closing it. With clients connecting all the time its accept queue is
 * seldom empty: test_live_move_busy_server.sh checks that such a container
 * moves (ferry lets it accept what waits before the freeze, which CRIU
 * could not save) and that it goes on answering, the same process. */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7301), .sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 64) < 0) {
		perror("slow_acceptor");
		return 1;
	}
	const struct timespec pause = { .tv_nsec = 30 * 1000 * 1000 };
	for (unsigned long n = 1;; n++) {
		int c = accept(l, NULL, NULL);
		if (c < 0)
			continue;
		char line[64];
		int len = snprintf(line, sizeof(line), "%lu %d\n", n, (int)getpid());
		if (write(c, line, (size_t)len) < 0)
			perror("slow_acceptor: write");
		close(c);
		nanosleep(&pause, NULL);
	}
}
