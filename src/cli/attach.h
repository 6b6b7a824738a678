/* Moving bytes between local fds and an operation's websockets (exec,
 * console), each direction on its own thread (common/ws.c is thread-safe). */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "common/ws.h"

struct pump {
	struct ws *ws;
	int fd;
	/* fd -> ws only: what to do at end of input: close the websocket
	 * (non-interactive stdin), or send eof_byte (a pty's ^D) if >= 0. */
	bool close_on_eof;
	int eof_byte;
	/* fd -> ws only: detach when ctrl+a q is typed (console). */
	bool detach_keys;
	volatile bool done;
	volatile bool detached;
	pthread_t thread;
	bool started;
};

/* Start copying ws's messages to fd until the websocket closes. */
void pump_start_ws_to_fd(struct pump *p);
/* Start copying fd's input to ws as binary messages. */
void pump_start_fd_to_ws(struct pump *p);
/* Wait for a ws -> fd pump (not used for stdin pumps, which may block in read()). */
void pump_join(struct pump *p);

/* Send {"command": "window-resize", "args": {"width": "W", "height": "H"}} on control. */
int control_send_resize(struct ws *control, int width, int height);
/* Send {"command": "signal", "signal": N} on control. */
int control_send_signal(struct ws *control, int signal);

/* Until every pump in outputs is done (or detach->detached): forward
 * SIGWINCH as window resizes (when terminal_fd >= 0) and SIGINT, SIGTERM,
 * SIGHUP, SIGQUIT, SIGUSR1/2 as signals on control. Call
 * attach_block_signals() before starting any thread. */
void attach_block_signals(void);
/* op_done (may be NULL) is asked every quarter second whether the
 * operation has ended; the outputs then get a second to drain, so a server
 * that leaves a websocket open can't hang us. */
void attach_forward_signals(struct ws *control, int terminal_fd, struct pump **outputs, int n,
			    const struct pump *detach, bool (*op_done)(void *ctx), void *ctx);
