/* Output of listing verbs: lxc's boxed ASCII table, compact table, CSV
 * (no header, as lxc), JSON (compact, one line) and YAML (libyaml's
 * emitter). Pure functions returning strings, so they are unit-tested. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "common/error.h"

enum output_format {
	FORMAT_TABLE,
	FORMAT_COMPACT,
	FORMAT_CSV,
	FORMAT_JSON,
	FORMAT_YAML,
};

/* "table", "compact", "csv", "json", "yaml". */
int output_format_parse(const char *s, enum output_format *out, struct ferry_error **err);

struct table {
	size_t ncols;
	char **header;
	size_t nrows;
	char ***rows; /* rows[i][j]: a cell, may hold several lines */
};

struct table *table_new(size_t ncols, const char *const *header);
/* Append a row of ncols cells (copied; NULL counts as ""). */
void table_add_row(struct table *t, const char *const *cells);
/* Sort rows by their cells, first column first (lxc sorts its listings so). */
void table_sort(struct table *t);
/* FORMAT_TABLE, FORMAT_COMPACT or FORMAT_CSV. */
char *table_render(const struct table *t, enum output_format format);
void table_free(struct table *t);
#define cleanup_table __attribute__((cleanup(table_freep)))
void table_freep(struct table **t);

/* Compact JSON with a trailing newline, as lxc prints listings. */
char *json_render(const json_t *value);
/* A YAML document of value (Go yaml.v2 look: block style, strings that would
 * read as another type quoted, multi-line strings literal). */
int yaml_render(const json_t *value, char **out, struct ferry_error **err);
/* Parse a YAML document into JSON (plain scalars: true/false/null/numbers
 * as such; quoted ones stay strings). An empty document gives {}. */
int yaml_parse(const char *text, size_t len, json_t **out, struct ferry_error **err);

/* Print a listing in format: table formats from t, json/yaml from data. */
int render_listing(const struct table *t, const json_t *data, enum output_format format, struct ferry_error **err);
