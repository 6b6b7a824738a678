/* The columns of `ferry list` (-c), as lxc defines them: shorthand
 * characters ("ns46tS") and custom config/device columns
 * ("[config:|devices:]key[:name][:maxWidth]"). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"

#define LIST_DEFAULT_COLUMNS "ns46tS"
#define LIST_FAST_COLUMNS "nsacPt"

struct list_column {
	char shorthand;   /* '\0' for a custom column */
	char *header;     /* "NAME", "IPV4", or the custom column's name */
	char *key;        /* custom: config key or device key ("eth0.parent") */
	bool device;      /* custom: from expanded devices, not config */
	int max_width;    /* custom: -1 unlimited, 0 header's width */
	bool needs_state; /* shows something from /state */
};

/* Parse a -c value into *out (n columns). Unknown shorthands are errors. */
int list_columns_parse(const char *spec, struct list_column **out, size_t *n, struct ferry_error **err);
void list_columns_free(struct list_column *cols, size_t n);

/* The text of column col for one instance (GET /1.0/instances?recursion=2
 * entry: an instance with "state" and "snapshots"). malloc'd. */
char *list_column_value(const struct list_column *col, const json_t *instance);

/* Does the instance match a filter argument (name prefix or regex, or
 * key=value on config / status / type / architecture)? */
bool list_filter_match(const char *filter, const json_t *instance);

/* "2006/01/02 15:04 UTC" in local time, from RFC 3339 (as lxc prints dates). "" when unset. */
char *format_date(const char *rfc3339);
