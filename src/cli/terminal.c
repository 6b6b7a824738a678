/* Raw mode and window size of the local terminal. */
#include "cli/terminal.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static struct termios saved_termios;
static int saved_fd = -1;

int terminal_make_raw(int fd, struct ferry_error **err)
{
	struct termios t;
	if (tcgetattr(fd, &t) < 0)
		return error_sys(err, errno, "tcgetattr");
	saved_termios = t;
	saved_fd = fd;
	cfmakeraw(&t);
	if (tcsetattr(fd, TCSADRAIN, &t) < 0)
		return error_sys(err, errno, "tcsetattr");
	return 0;
}

void terminal_restore(void)
{
	if (saved_fd < 0)
		return;
	tcsetattr(saved_fd, TCSADRAIN, &saved_termios);
	saved_fd = -1;
}

void terminal_size(int fd, int *width, int *height)
{
	struct winsize ws;
	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
		*width = ws.ws_col;
		*height = ws.ws_row;
	} else {
		*width = 80;
		*height = 24;
	}
}
