/* The local terminal for interactive exec and console: raw mode and size. */
#pragma once

#include <stdbool.h>

#include "common/error.h"

/* Put fd's terminal in raw mode; terminal_restore() puts it back (also
 * safe to call when nothing was changed). */
int terminal_make_raw(int fd, struct ferry_error **err);
void terminal_restore(void);
/* The window size of fd's terminal (80x24 when unknown). */
void terminal_size(int fd, int *width, int *height);
