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

/* Room for the most fds a message carries (the spare monitor's two). */
#define UNIX_FDS_MAX 4

ssize_t unix_send_fds(int sock, const void *data, size_t len, const int *fds, size_t n_fds)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		char buf[CMSG_SPACE(UNIX_FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} control;
	if (n_fds > UNIX_FDS_MAX) {
		errno = EINVAL;
		return -1;
	}
	if (n_fds > 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, n_fds * sizeof(int));
	}
	ssize_t r;
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r;
}

ssize_t unix_recv_fds(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *n_fds)
{
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	union {
		char buf[CMSG_SPACE(UNIX_FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf) };
	*n_fds = 0;
	ssize_t r;
	do
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return r;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int received;
			memcpy(&received, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*n_fds < max_fds)
				fds[(*n_fds)++] = received;
			else
				close(received);
		}
	}
	return r;
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
	return unix_send_fds(sock, buf, len, &fd, fd >= 0 ? 1 : 0) < 0 ? -1 : 0;
}

ssize_t sync_recv(int sock, char *msg, int *fd, char *text, size_t text_size)
{
	char buf[1024];
	int received = -1;
	size_t n_fds;
	if (fd != NULL)
		*fd = -1;
	ssize_t r = unix_recv_fds(sock, buf, sizeof(buf), &received, fd != NULL ? 1 : 0, &n_fds);
	if (r <= 0)
		return r;
	if (fd != NULL && n_fds > 0)
		*fd = received;
	*msg = buf[0];
	if (text != NULL && text_size > 0) {
		size_t n = (size_t)r - 1 < text_size - 1 ? (size_t)r - 1 : text_size - 1;
		memcpy(text, buf + 1, n);
		text[n] = '\0';
	}
	return r;
}
