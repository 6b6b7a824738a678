/* Tables (boxed, compact, CSV) and JSON rendering. YAML is in yaml.c. */
#include "cli/render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int output_format_parse(const char *s, enum output_format *out, struct ferry_error **err)
{
	static const struct {
		const char *name;
		enum output_format format;
	} formats[] = {
		{ "table", FORMAT_TABLE }, { "compact", FORMAT_COMPACT }, { "csv", FORMAT_CSV },
		{ "json", FORMAT_JSON },   { "yaml", FORMAT_YAML },
	};
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		if (strcmp(s, formats[i].name) == 0) {
			*out = formats[i].format;
			return 0;
		}
	}
	return error_bad_request(err, "Invalid format \"%s\" (table, compact, csv, json or yaml)", s);
}

struct table *table_new(size_t ncols, const char *const *header)
{
	struct table *t = xcalloc(1, sizeof(*t));
	t->ncols = ncols;
	t->header = xcalloc(ncols + 1, sizeof(char *));
	for (size_t j = 0; j < ncols; j++)
		t->header[j] = xstrdup(header[j]);
	return t;
}

void table_add_row(struct table *t, const char *const *cells)
{
	char ***rows = realloc(t->rows, (t->nrows + 1) * sizeof(char **));
	if (rows == NULL)
		abort();
	t->rows = rows;
	char **row = xcalloc(t->ncols + 1, sizeof(char *));
	for (size_t j = 0; j < t->ncols; j++)
		row[j] = xstrdup(cells[j] ? cells[j] : "");
	t->rows[t->nrows++] = row;
}

static size_t sort_ncols;

static int row_compare(const void *a, const void *b)
{
	char *const *ra = *(char **const *)a;
	char *const *rb = *(char **const *)b;
	for (size_t j = 0; j < sort_ncols; j++) {
		int c = strcmp(ra[j], rb[j]);
		if (c != 0)
			return c;
	}
	return 0;
}

void table_sort(struct table *t)
{
	sort_ncols = t->ncols;
	if (t->nrows > 1)
		qsort(t->rows, t->nrows, sizeof(char **), row_compare);
}

void table_free(struct table *t)
{
	if (t == NULL)
		return;
	strv_free(t->header);
	for (size_t i = 0; i < t->nrows; i++)
		strv_free(t->rows[i]);
	free(t->rows);
	free(t);
}

void table_freep(struct table **t)
{
	table_free(*t);
}

/* Display width of one line of UTF-8: count characters, not bytes. */
static size_t text_width(const char *s, size_t len)
{
	size_t w = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			w++;
	return w;
}

static size_t line_count(const char *cell)
{
	size_t n = 1;
	for (const char *p = cell; *p; p++)
		if (*p == '\n')
			n++;
	return n;
}

/* Line k of cell (start and length), or an empty line past the end. */
static void cell_line(const char *cell, size_t k, const char **start, size_t *len)
{
	const char *p = cell;
	for (size_t i = 0; i < k; i++) {
		const char *nl = strchr(p, '\n');
		if (nl == NULL) {
			*start = "";
			*len = 0;
			return;
		}
		p = nl + 1;
	}
	const char *nl = strchr(p, '\n');
	*start = p;
	*len = nl ? (size_t)(nl - p) : strlen(p);
}

static size_t cell_width(const char *cell)
{
	size_t w = 0, n = line_count(cell);
	for (size_t k = 0; k < n; k++) {
		const char *s;
		size_t len;
		cell_line(cell, k, &s, &len);
		size_t lw = text_width(s, len);
		if (lw > w)
			w = lw;
	}
	return w;
}

static void put_spaces(FILE *f, size_t n)
{
	while (n-- > 0)
		fputc(' ', f);
}

static void put_border(FILE *f, const size_t *widths, size_t ncols)
{
	for (size_t j = 0; j < ncols; j++) {
		fputc('+', f);
		for (size_t i = 0; i < widths[j] + 2; i++)
			fputc('-', f);
	}
	fputs("+\n", f);
}

/* One row (possibly several lines high); center: the header's alignment. */
static void put_row(FILE *f, char *const *cells, const size_t *widths, size_t ncols, bool boxed, bool center)
{
	size_t height = 1;
	for (size_t j = 0; j < ncols; j++) {
		size_t h = line_count(cells[j]);
		if (h > height)
			height = h;
	}
	for (size_t k = 0; k < height; k++) {
		for (size_t j = 0; j < ncols; j++) {
			const char *s;
			size_t len;
			cell_line(cells[j], k, &s, &len);
			size_t gap = widths[j] - text_width(s, len);
			size_t left = center ? gap / 2 : 0;
			fputs(boxed ? "| " : "  ", f);
			put_spaces(f, left);
			fwrite(s, 1, len, f);
			put_spaces(f, gap - left);
			fputc(' ', f);
		}
		fputs(boxed ? "|\n" : "\n", f);
	}
}

/* A CSV field as Go's encoding/csv writes it. */
static void put_csv_field(FILE *f, const char *s)
{
	bool quote = s[0] == ' ' || s[0] == '\t' || strpbrk(s, ",\"\r\n") != NULL;
	if (!quote) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (const char *p = s; *p; p++) {
		if (*p == '"')
			fputc('"', f);
		fputc(*p, f);
	}
	fputc('"', f);
}

char *table_render(const struct table *t, enum output_format format)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	if (f == NULL)
		abort();

	if (format == FORMAT_CSV) {
		for (size_t i = 0; i < t->nrows; i++) {
			for (size_t j = 0; j < t->ncols; j++) {
				if (j > 0)
					fputc(',', f);
				put_csv_field(f, t->rows[i][j]);
			}
			fputc('\n', f);
		}
		fclose(f);
		return buf;
	}

	size_t *widths = xcalloc(t->ncols, sizeof(size_t));
	for (size_t j = 0; j < t->ncols; j++) {
		widths[j] = cell_width(t->header[j]);
		for (size_t i = 0; i < t->nrows; i++) {
			size_t w = cell_width(t->rows[i][j]);
			if (w > widths[j])
				widths[j] = w;
		}
	}
	bool boxed = format != FORMAT_COMPACT;
	if (boxed)
		put_border(f, widths, t->ncols);
	put_row(f, t->header, widths, t->ncols, boxed, true);
	if (boxed)
		put_border(f, widths, t->ncols);
	for (size_t i = 0; i < t->nrows; i++) {
		put_row(f, t->rows[i], widths, t->ncols, boxed, false);
		if (boxed)
			put_border(f, widths, t->ncols);
	}
	free(widths);
	fclose(f);
	return buf;
}

char *json_render(const json_t *value)
{
	char *s = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
	if (s == NULL)
		abort();
	char *line = xasprintf("%s\n", s);
	free(s);
	return line;
}

int render_listing(const struct table *t, const json_t *data, enum output_format format, struct ferry_error **err)
{
	cleanup_free char *out = NULL;
	switch (format) {
	case FORMAT_JSON:
		out = json_render(data);
		break;
	case FORMAT_YAML:
		if (yaml_render(data, &out, err) < 0)
			return -1;
		break;
	default:
		out = table_render(t, format);
		break;
	}
	fputs(out, stdout);
	return 0;
}
