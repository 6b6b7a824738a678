/* Listens on 127.0.0.1:7300 and never accepts the connection it makes to
 * itself: CRIU can't save a connection still in a listener's queue, and
 * test_live_move_sessions.sh checks that a move says so and leaves the
 * container running. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(7300), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || c < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0 ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("backlog_holder");
		return 1;
	}
	for (;;)
		pause();
}
