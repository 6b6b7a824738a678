/* Pumps between local fds and websockets, and signal forwarding. */
#include "cli/attach.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/terminal.h"
#include "common/util.h"

static void *ws_to_fd(void *arg)
{
	struct pump *p = arg;
	for (;;) {
		enum ws_opcode op;
		char *data = NULL;
		size_t len = 0;
		cleanup_error struct ferry_error *err = NULL;
		int r = ws_recv(p->ws, &op, &data, &len, -1, &err);
		if (r <= 0)
			break;
		/* Keep draining the websocket even if the local side is gone. */
		fd_write_all(p->fd, data, len);
		free(data);
	}
	p->done = true;
	return NULL;
}

static void *fd_to_ws(void *arg)
{
	struct pump *p = arg;
	char buf[16384];
	bool saw_prefix = false; /* ctrl+a typed, waiting for the next key */
	for (;;) {
		ssize_t n = read(p->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (p->close_on_eof) {
				/* LXD's end of input: an empty text message, then the close. */
				ws_send(p->ws, WS_TEXT, "", 0, NULL);
				ws_close(p->ws, 1000, "");
			}
			else if (p->eof_byte >= 0) {
				char b = (char)p->eof_byte;
				ws_send(p->ws, WS_BINARY, &b, 1, NULL);
			}
			break;
		}
		if (p->detach_keys) {
			/* Console: ctrl+a q detaches; ctrl+a ctrl+a sends one ctrl+a. */
			char out[sizeof(buf) + 1];
			size_t m = 0;
			for (ssize_t i = 0; i < n; i++) {
				if (saw_prefix) {
					saw_prefix = false;
					if (buf[i] == 'q') {
						p->detached = true;
						goto done;
					}
					out[m++] = 0x01;
					if (buf[i] != 0x01)
						out[m++] = buf[i];
				} else if (buf[i] == 0x01) {
					saw_prefix = true;
				} else {
					out[m++] = buf[i];
				}
			}
			if (m > 0 && ws_send(p->ws, WS_BINARY, out, m, NULL) < 0)
				break;
			continue;
		}
		if (ws_send(p->ws, WS_BINARY, buf, n, NULL) < 0)
			break;
	}
done:
	p->done = true;
	return NULL;
}

static void pump_start(struct pump *p, void *(*fn)(void *))
{
	p->done = false;
	if (pthread_create(&p->thread, NULL, fn, p) != 0)
		abort();
	p->started = true;
}

void pump_start_ws_to_fd(struct pump *p)
{
	pump_start(p, ws_to_fd);
}

void pump_start_fd_to_ws(struct pump *p)
{
	pump_start(p, fd_to_ws);
	/* It may sit in read() forever; nobody joins it. */
	pthread_detach(p->thread);
}

void pump_join(struct pump *p)
{
	if (p->started)
		pthread_join(p->thread, NULL);
	p->started = false;
}

static int control_send(struct ws *control, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (s == NULL)
		return -1;
	int r = ws_send(control, WS_TEXT, s, strlen(s), NULL);
	free(s);
	return r;
}

int control_send_resize(struct ws *control, int width, int height)
{
	char w[16], h[16];
	snprintf(w, sizeof(w), "%d", width);
	snprintf(h, sizeof(h), "%d", height);
	return control_send(control, json_pack("{s:s, s:{s:s, s:s}}", "command", "window-resize", "args", "width", w,
					       "height", h));
}

int control_send_signal(struct ws *control, int signal)
{
	return control_send(control, json_pack("{s:s, s:i}", "command", "signal", "signal", signal));
}

static const int forwarded_signals[] = { SIGWINCH, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void forwarded_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(forwarded_signals) / sizeof(forwarded_signals[0]); i++)
		sigaddset(set, forwarded_signals[i]);
}

void attach_block_signals(void)
{
	sigset_t set;
	forwarded_set(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void attach_forward_signals(struct ws *control, int terminal_fd, struct pump **outputs, int n,
			    const struct pump *detach, bool (*op_done)(void *ctx), void *ctx)
{
	sigset_t set;
	forwarded_set(&set);
	long long next_check = now_ms() + 250, give_up = -1;
	for (;;) {
		bool all_done = true;
		for (int i = 0; i < n; i++)
			all_done &= outputs[i]->done;
		if (all_done || (detach != NULL && detach->detached))
			return;
		long long now = now_ms();
		if (give_up >= 0 && now >= give_up)
			return;
		if (give_up < 0 && op_done != NULL && now >= next_check) {
			if (op_done(ctx))
				give_up = now + 1000;
			next_check = now + 250;
		}
		struct timespec tick = { 0, 50 * 1000 * 1000 };
		int sig = sigtimedwait(&set, NULL, &tick);
		if (sig < 0 || control == NULL)
			continue;
		if (sig == SIGWINCH) {
			if (terminal_fd >= 0) {
				int w, h;
				terminal_size(terminal_fd, &w, &h);
				control_send_resize(control, w, h);
			}
			continue;
		}
		control_send_signal(control, sig);
	}
}
