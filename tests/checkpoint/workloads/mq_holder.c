/* Holds a POSIX message queue open, one message in it, and sleeps: CRIU
 * can't save a message queue, so test_live_move_sessions.sh checks that a
 * move is refused, naming this process and the queue, before anything stops. */
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	struct mq_attr attr = { .mq_maxmsg = 4, .mq_msgsize = 64 };
	mqd_t q = mq_open("/ferry-mq", O_CREAT | O_RDWR, 0600, &attr);
	if (q == (mqd_t)-1) {
		perror("mq_open");
		return 1;
	}
	if (mq_send(q, "kept", 5, 1) < 0) {
		perror("mq_send");
		return 1;
	}
	for (;;)
		pause();
}
