/* The progress line: a bar laid out to the terminal's width, or a text. */
#include "cli/progress.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* The inside of the bar never grows wider than this. */
#define BAR_MAX 40
/* A long stage is cut down to this before anything else goes. */
#define STAGE_MIN 10
/* Wider terminals are drawn as if they were this wide. */
#define WIDTH_MAX 1024

/* The parts of a bar line besides the bar itself, in the order they go
 * when the terminal is too narrow for them (the stage is cut first). */
enum {
	PART_RATE = 1 << 0,  /* "45.7 MB/s" */
	PART_TOTAL = 1 << 1, /* "/274.2" after the MB so far */
	PART_LABEL = 1 << 2, /* "Transferring instance" */
	PART_STAGE = 1 << 3, /* "rootfs" */
	PART_BYTES = 1 << 4, /* "123.5 MB" */
	PART_PERCENT = 1 << 5,
};

static int clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* s as printable ASCII, malloc'd. The text comes from the server: a
 * control character could move the cursor or recolour the terminal, and a
 * wide or combining character would break the count of columns that keeps
 * the line from wrapping. Each of those becomes one '?'. */
static char *printable(const char *s)
{
	if (s == NULL)
		return xstrdup("");
	char *out = xcalloc(strlen(s) + 1, 1);
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p & 0xc0) == 0x80)
			continue; /* the rest of a UTF-8 character */
		out[n++] = *p >= 0x20 && *p < 0x7f ? (char)*p : '?';
	}
	return out;
}

/* The label without the ": " callers end it with for the text form. */
static char *label_text(const char *label)
{
	char *s = printable(label);
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == ':'))
		s[--n] = '\0';
	return s;
}

/* A line being built in a buffer sized for it. */
struct line {
	char *buf;
	size_t len, cap; /* cap: the columns it may take */
};

static void line_add(struct line *l, const char *s, size_t n)
{
	if (n > l->cap - l->len)
		n = l->cap - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	l->buf[l->len] = '\0';
}

static void line_add_str(struct line *l, const char *s)
{
	line_add(l, s, strlen(s));
}

/* s in at most room columns, its end replaced by "..." when cut. */
static void line_add_cut(struct line *l, const char *s, size_t room)
{
	size_t n = strlen(s);
	if (n <= room) {
		line_add(l, s, n);
	} else if (room > 3) {
		line_add(l, s, room - 3);
		line_add_str(l, "...");
	} else {
		line_add(l, s, room);
	}
}

/* The n cells inside the brackets. With a total: filled in proportion
 * ("=====>    "). Without: a block bouncing from end to end ("  <==>    "),
 * one column per tick, so the user sees the transfer is alive. */
static void bar_cells(char *cells, int n, const struct progress_report *r, unsigned tick)
{
	memset(cells, ' ', (size_t)n);
	if (r->total > 0) {
		double done = r->bytes <= 0 ? 0 : r->bytes >= r->total ? 1 : (double)r->bytes / (double)r->total;
		int filled = (int)(done * n);
		memset(cells, '=', (size_t)filled);
		if (filled > 0 && filled < n)
			cells[filled - 1] = '>';
		return;
	}
	int block = clamp(n / 4, 3, 6);
	if (block > n)
		block = n;
	int span = n - block;
	int pos = 0;
	if (span > 0) {
		unsigned period = 2u * (unsigned)span, p = tick % period;
		pos = p <= (unsigned)span ? (int)p : (int)(period - p);
	}
	memset(cells + pos, '=', (size_t)block);
	if (block >= 3) {
		cells[pos] = '<';
		cells[pos + block - 1] = '>';
	}
}

char *progress_render_bar(const char *label, const struct progress_report *r, int width, unsigned tick)
{
	/* The last column stays empty: writing it wraps the cursor on some
	 * terminals, and "\r" would then redraw on the next line. */
	int avail = clamp(width, 0, WIDTH_MAX) - 1;
	if (avail < 3)
		return xstrdup("");
	cleanup_free char *lbl = label_text(label);
	cleanup_free char *stage = printable(r->stage);
	bool has_total = r->total > 0;
	double mb = r->bytes > 0 ? (double)r->bytes / 1e6 : 0;
	/* The numbers keep their width ("  9.8 MB/s", " 10.2 MB/s") so the
	 * text after them doesn't shake, and neither does a bar squeezed by
	 * them on a narrow terminal. */
	cleanup_free char *total = xasprintf("%.1f", (double)r->total / 1e6);
	cleanup_free char *bytes = xasprintf("%5.1f MB", mb);
	cleanup_free char *bytes_of_total =
		has_total ? xasprintf("%*.1f/%s MB", (int)strlen(total), mb, total) : xstrdup(bytes);
	cleanup_free char *rate =
		xasprintf("%5.1f MB/s", r->bytes_per_second > 0 ? (double)r->bytes_per_second / 1e6 : 0);
	int percent = 0;
	if (has_total)
		percent = r->bytes <= 0 ? 0 : r->bytes >= r->total ? 100 : (int)((double)r->bytes * 100 / (double)r->total);
	cleanup_free char *percent_text = xasprintf("%3d%%", percent);

	int parts = PART_BYTES;
	if (lbl[0] != '\0')
		parts |= PART_LABEL;
	if (stage[0] != '\0')
		parts |= PART_STAGE;
	if (r->bytes_per_second >= 0)
		parts |= PART_RATE;
	if (has_total)
		parts |= PART_PERCENT | PART_TOTAL;

	int bar_min = clamp(avail / 6, 4, 10);
	/* The bar's width follows the terminal's, not the text after it, so
	 * that it holds still while the numbers grow. */
	int bar_pref = clamp(avail / 3, bar_min, BAR_MAX);
	int stage_len = (int)strlen(stage);
	int fixed = 0;
	/* Drop parts, least useful first, until the rest fits beside the
	 * smallest bar and a stage cut to STAGE_MIN. */
	for (int drop = 0;; drop = drop ? drop << 1 : 1) {
		parts &= ~drop;
		fixed = 2; /* the brackets */
		if (parts & PART_LABEL)
			fixed += (int)strlen(lbl) + 1;
		if (parts & PART_PERCENT)
			fixed += 1 + (int)strlen(percent_text);
		if (parts & PART_STAGE)
			fixed += 2;
		if (parts & PART_BYTES)
			fixed += 2 + (int)strlen(parts & PART_TOTAL ? bytes_of_total : bytes);
		if (parts & PART_RATE)
			fixed += 2 + (int)strlen(rate);
		int stage_min = parts & PART_STAGE ? clamp(stage_len, 0, STAGE_MIN) : 0;
		if (fixed + bar_min + stage_min <= avail || parts == 0)
			break;
	}
	/* What is left goes to the stage, in full if the bar keeps its
	 * minimum, then to the bar. Once the stage is gone (a narrow
	 * terminal), the bar takes all the room. */
	int room = avail - fixed;
	int stage_room = parts & PART_STAGE ? clamp(stage_len, 0, room - bar_min) : 0;
	int bar = clamp(room - stage_room, 1, parts & PART_STAGE ? bar_pref : BAR_MAX);

	struct line l = { .buf = xcalloc((size_t)avail + 1, 1), .cap = (size_t)avail };
	if (parts & PART_LABEL) {
		line_add_str(&l, lbl);
		line_add_str(&l, " ");
	}
	char cells[WIDTH_MAX];
	bar_cells(cells, bar, r, tick);
	line_add_str(&l, "[");
	line_add(&l, cells, (size_t)bar);
	line_add_str(&l, "]");
	if (parts & PART_PERCENT) {
		line_add_str(&l, " ");
		line_add_str(&l, percent_text);
	}
	if (parts & PART_STAGE) {
		line_add_str(&l, "  ");
		line_add_cut(&l, stage, (size_t)stage_room);
	}
	if (parts & PART_BYTES) {
		line_add_str(&l, "  ");
		line_add_str(&l, parts & PART_TOTAL ? bytes_of_total : bytes);
	}
	if (parts & PART_RATE) {
		line_add_str(&l, "  ");
		line_add_str(&l, rate);
	}
	return l.buf;
}

char *progress_render_text(const char *label, const char *text, int width)
{
	int avail = clamp(width, 0, WIDTH_MAX) - 1;
	cleanup_free char *lbl = label_text(label);
	cleanup_free char *body = printable(text);
	cleanup_free char *full = lbl[0] != '\0' ? xasprintf("%s: %s", lbl, body) : xstrdup(body);
	struct line l = { .buf = xcalloc((size_t)(avail > 0 ? avail : 0) + 1, 1), .cap = avail > 0 ? (size_t)avail : 0 };
	line_add_cut(&l, full, l.cap);
	return l.buf;
}

/* A count in a JSON number (integer or real), or missing when absent. */
static long long json_count(const json_t *obj, const char *key, long long missing)
{
	json_t *v = json_object_get(obj, key);
	return json_is_number(v) ? (long long)json_number_value(v) : missing;
}

char *progress_render_operation(const json_t *metadata, const char *label, int width, unsigned tick)
{
	json_t *progress = json_object_get(metadata, "progress");
	if (json_is_object(progress) && json_is_number(json_object_get(progress, "bytes"))) {
		struct progress_report r = {
			.stage = json_string_value(json_object_get(progress, "stage")),
			.bytes = json_count(progress, "bytes", 0),
			.total = json_count(progress, "total", 0),
			.bytes_per_second = json_count(progress, "bytes_per_second", -1),
		};
		return progress_render_bar(label, &r, width, tick);
	}
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)metadata, key, value) {
		size_t len = strlen(key);
		if (len > 9 && strcmp(key + len - 9, "_progress") == 0 && json_is_string(value))
			return progress_render_text(label, json_string_value(value), width);
	}
	return NULL;
}
