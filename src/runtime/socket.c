/* Unix sockets of the runtime: the monitor's socket, and the monitor/child
 * socketpair that carries small messages and the console master fd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/util.h"
#include "runtime/internal.h"

int unix_socket_at(const char *dir, const char *name, bool listen_on, int *out, struct ferry_error **err)
{
	/* DIR may be longer than sun_path allows: address the socket through
	 * /proc/self/fd/N of the directory instead. */
	cleanup_close int dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return error_sys(err, errno, "open %s", dir);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "/proc/self/fd/%d/%s", dir_fd, name);

	cleanup_close int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return error_sys(err, errno, "socket");
	if (listen_on) {
		unlinkat(dir_fd, name, 0);
		if (bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			return error_sys(err, errno, "bind %s/%s", dir, name);
		fchmodat(dir_fd, name, 0600, 0);
		if (listen(sock, 16) < 0)
			return error_sys(err, errno, "listen %s/%s", dir, name);
	} else if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		return error_sys(err, errno, "connect %s/%s", dir, name);
	}
	*out = steal_fd(&sock);
	return 0;
}

int sync_send(int sock, char msg, int fd, const char *text)
{
	char buf[1024];
	buf[0] = msg;
	size_t len = 1;
	if (text != NULL) {
		size_t n = strnlen(text, sizeof(buf) - 1);
		memcpy(buf + 1, text, n);
		len += n;
	}
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	if (fd >= 0) {
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	ssize_t r;
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : 0;
}

ssize_t sync_recv(int sock, char *msg, int *fd, char *text, size_t text_size)
{
	char buf[1024];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	if (fd != NULL)
		*fd = -1;
	ssize_t r;
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			int received;
			memcpy(&received, CMSG_DATA(cm), sizeof(int));
			if (fd != NULL)
				*fd = received;
			else
				close(received);
		}
	}
	*msg = buf[0];
	if (text != NULL && text_size > 0) {
		size_t n = (size_t)r - 1 < text_size - 1 ? (size_t)r - 1 : text_size - 1;
		memcpy(text, buf + 1, n);
		text[n] = '\0';
	}
	return r;
}
