/* The progress line `ferry` draws on a terminal while it waits for an
 * operation (client_operation_wait): a bar when the operation reports
 * structured progress ({"progress": {"stage", "bytes", "bytes_per_second"
 * [, "total"]}}, as a migration target does), else its "*_progress" text
 * (image downloads). Rendering only, no I/O: the caller writes the line
 * after "\r\033[K" and clears it at the end. */
#pragma once

#include <jansson.h>

struct progress_report {
	const char *stage;          /* "rootfs", "state", ...; NULL or "" for none */
	long long bytes;            /* sent so far */
	long long total;            /* <= 0: unknown, the bar is indeterminate */
	long long bytes_per_second; /* < 0: unknown, not shown */
};

/* The line for a terminal width columns wide: label, a bar, the
 * percentage (with a total), the stage, MB so far (of the total) and MB/s.
 * It takes at most width - 1 columns, so the cursor never wraps: on a
 * narrow terminal the stage is cut first ("..."), then the rate, the
 * total, the label, the stage and the MB go, in that order. Without a
 * total a block moves to and fro in the bar, one column per tick. label may
 * be NULL; a trailing ": " on it is dropped. malloc'd. */
char *progress_render_bar(const char *label, const struct progress_report *r, int width, unsigned tick);
/* "label: text", cut to width - 1 columns. malloc'd. */
char *progress_render_text(const char *label, const char *text, int width);
/* The line for an operation's metadata: the bar for a "progress" object
 * with "bytes", else the text of the first "*_progress" string, else NULL
 * (nothing to show). malloc'd. */
char *progress_render_operation(const json_t *metadata, const char *label, int width, unsigned tick);
