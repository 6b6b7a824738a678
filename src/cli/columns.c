/* Column definitions and filters of `ferry list`. */
#include "cli/columns.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cli/units.h"
#include "common/util.h"

static const struct {
	char shorthand;
	const char *header;
	bool needs_state;
} shorthands[] = {
	{ '4', "IPV4", true },	      { '6', "IPV6", true },	    { 'a', "ARCHITECTURE", false },
	{ 'b', "STORAGE POOL", false }, { 'c', "CREATED AT", false }, { 'd', "DESCRIPTION", false },
	{ 'D', "DISK USAGE", true },  { 'e', "PROJECT", false },    { 'f', "BASE IMAGE", false },
	{ 'F', "BASE IMAGE", false }, { 'l', "LAST USED AT", false }, { 'L', "LOCATION", false },
	{ 'm', "MEMORY USAGE", true }, { 'M', "MEMORY USAGE%", true }, { 'n', "NAME", false },
	{ 'N', "PROCESSES", true },   { 'p', "PID", true },	    { 'P', "PROFILES", false },
	{ 's', "STATE", false },      { 'S', "SNAPSHOTS", false },  { 't', "TYPE", false },
	{ 'u', "CPU USAGE", true },
};
#define N_SHORTHANDS (sizeof(shorthands) / sizeof(shorthands[0]))

static void columns_append(struct list_column **cols, size_t *n, struct list_column col)
{
	struct list_column *c = realloc(*cols, (*n + 1) * sizeof(**cols));
	if (c == NULL)
		abort();
	c[(*n)++] = col;
	*cols = c;
}

void list_columns_free(struct list_column *cols, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(cols[i].header);
		free(cols[i].key);
	}
	free(cols);
}

static int custom_column(const char *spec, struct list_column *col, struct ferry_error **err)
{
	cleanup_free char *copy = xstrdup(spec);
	char *fields[4] = { 0 };
	size_t nf = 0;
	for (char *save = NULL, *tok = strtok_r(copy, ":", &save); tok != NULL; tok = strtok_r(NULL, ":", &save)) {
		if (nf == 4)
			return error_bad_request(err, "Invalid column \"%s\": too many fields", spec);
		fields[nf++] = tok;
	}
	size_t i = 0;
	*col = (struct list_column){ .max_width = -1 };
	if (nf > 0 && (strcmp(fields[0], "config") == 0 || strcmp(fields[0], "devices") == 0)) {
		col->device = strcmp(fields[0], "devices") == 0;
		i++;
	}
	if (i >= nf || fields[i][0] == '\0')
		return error_bad_request(err, "Invalid column \"%s\": empty key", spec);
	col->key = xstrdup(fields[i++]);
	col->header = xstrdup(i < nf && fields[i][0] ? fields[i] : col->key);
	i++;
	if (i < nf) {
		char *end = NULL;
		long w = strtol(fields[i], &end, 10);
		if (*end != '\0' || w < -1) {
			free(col->key);
			free(col->header);
			return error_bad_request(err, "Invalid max width \"%s\" in column \"%s\"", fields[i], spec);
		}
		col->max_width = (int)w;
	}
	return 0;
}

int list_columns_parse(const char *spec, struct list_column **out, size_t *n, struct ferry_error **err)
{
	struct list_column *cols = NULL;
	size_t count = 0;
	cleanup_free char *copy = xstrdup(spec);
	if (*spec == '\0')
		return error_bad_request(err, "Empty column list");
	for (char *save = NULL, *piece = strtok_r(copy, ",", &save); piece != NULL; piece = strtok_r(NULL, ",", &save)) {
		if (strchr(piece, '.') != NULL || strchr(piece, ':') != NULL) {
			struct list_column col;
			if (custom_column(piece, &col, err) < 0) {
				list_columns_free(cols, count);
				return -1;
			}
			columns_append(&cols, &count, col);
			continue;
		}
		for (const char *p = piece; *p; p++) {
			size_t k = 0;
			while (k < N_SHORTHANDS && shorthands[k].shorthand != *p)
				k++;
			if (k == N_SHORTHANDS) {
				list_columns_free(cols, count);
				return error_bad_request(err, "Unknown column shorthand char '%c' in '%s'", *p, piece);
			}
			columns_append(&cols, &count,
				       (struct list_column){ .shorthand = *p,
							     .header = xstrdup(shorthands[k].header),
							     .max_width = -1,
							     .needs_state = shorthands[k].needs_state });
		}
	}
	*out = cols;
	*n = count;
	return 0;
}

static char *upper(const char *s)
{
	char *u = xstrdup(s ? s : "");
	for (char *p = u; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return u;
}

static int str_compare_desc(const void *a, const void *b)
{
	return strcmp(*(char *const *)b, *(char *const *)a);
}

/* "10.1.2.3 (eth0)" lines for every global address of family, sorted as lxc does (descending). */
static char *addresses(const json_t *instance, const char *family)
{
	json_t *network = json_object_get(json_object_get(instance, "state"), "network");
	char **lines = NULL;
	size_t n = 0;
	const char *ifname;
	json_t *iface;
	json_object_foreach(network, ifname, iface) {
		if (strcmp(ifname, "lo") == 0)
			continue;
		size_t i;
		json_t *addr;
		json_array_foreach(json_object_get(iface, "addresses"), i, addr) {
			const char *fam = json_string_value(json_object_get(addr, "family"));
			const char *scope = json_string_value(json_object_get(addr, "scope"));
			const char *address = json_string_value(json_object_get(addr, "address"));
			if (fam == NULL || address == NULL || strcmp(fam, family) != 0)
				continue;
			if (scope != NULL && (strcmp(scope, "link") == 0 || strcmp(scope, "local") == 0))
				continue;
			lines = realloc(lines, (n + 2) * sizeof(char *));
			if (lines == NULL)
				abort();
			lines[n++] = xasprintf("%s (%s)", address, ifname);
			lines[n] = NULL;
		}
	}
	if (n == 0)
		return xstrdup("");
	qsort(lines, n, sizeof(char *), str_compare_desc);
	size_t total = 1;
	for (size_t i = 0; i < n; i++)
		total += strlen(lines[i]) + 1;
	char *out = xcalloc(1, total);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strcat(out, "\n");
		strcat(out, lines[i]);
	}
	strv_free(lines);
	return out;
}

char *format_date(const char *rfc3339)
{
	if (rfc3339 == NULL || *rfc3339 == '\0' || strncmp(rfc3339, "0001-01-01", 10) == 0 ||
	    strncmp(rfc3339, "1970-01-01T00:00:00", 19) == 0)
		return xstrdup("");
	struct tm tm = { 0 };
	const char *rest = strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm);
	if (rest == NULL)
		return xstrdup(rfc3339);
	/* Skip the fraction, then apply the offset (Z or +hh:mm). */
	if (*rest == '.')
		while (isdigit((unsigned char)*++rest))
			;
	time_t t = timegm(&tm);
	int sign = 0, hh = 0, mm = 0;
	if ((*rest == '+' || *rest == '-') && sscanf(rest + 1, "%d:%d", &hh, &mm) == 2)
		sign = *rest == '+' ? 1 : -1;
	t -= sign * (hh * 3600 + mm * 60);
	struct tm local;
	localtime_r(&t, &local);
	char buf[64];
	strftime(buf, sizeof(buf), "%Y/%m/%d %H:%M %Z", &local);
	return xstrdup(buf);
}

static const char *config_value(const json_t *instance, const char *key)
{
	json_t *v = json_object_get(json_object_get(instance, "expanded_config"), key);
	if (v == NULL)
		v = json_object_get(json_object_get(instance, "config"), key);
	return json_string_value(v);
}

static char *join_array(const json_t *arr, const char *sep)
{
	char *out = xstrdup("");
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char *next = xasprintf("%s%s%s", out, i ? sep : "", json_string_value(v) ? json_string_value(v) : "");
		free(out);
		out = next;
	}
	return out;
}

static char *custom_value(const struct list_column *col, const json_t *instance)
{
	const char *value = NULL;
	if (col->device) {
		cleanup_free char *dev = xstrdup(col->key);
		char *dot = strchr(dev, '.');
		if (dot != NULL) {
			*dot = '\0';
			json_t *devices = json_object_get(instance, "expanded_devices");
			if (devices == NULL)
				devices = json_object_get(instance, "devices");
			value = json_string_value(json_object_get(json_object_get(devices, dev), dot + 1));
		}
	} else {
		value = config_value(instance, col->key);
	}
	char *s = xstrdup(value ? value : "");
	int width = col->max_width == 0 ? (int)strlen(col->header) : col->max_width;
	if (width > 0 && (int)strlen(s) > width)
		s[width] = '\0';
	return s;
}

char *list_column_value(const struct list_column *col, const json_t *instance)
{
	const json_t *state = json_object_get(instance, "state");
	switch (col->shorthand) {
	case '\0':
		return custom_value(col, instance);
	case 'n':
		return xstrdup(json_string_value(json_object_get(instance, "name")));
	case 's':
		return upper(json_string_value(json_object_get(instance, "status")));
	case '4':
		return addresses(instance, "inet");
	case '6':
		return addresses(instance, "inet6");
	case 't': {
		const char *type = json_string_value(json_object_get(instance, "type"));
		cleanup_free char *t = upper(type && *type ? type : "container");
		if (json_is_true(json_object_get(instance, "ephemeral")))
			return xasprintf("%s (EPHEMERAL)", t);
		return xstrdup(t);
	}
	case 'S':
		return xasprintf("%zu", json_array_size(json_object_get(instance, "snapshots")));
	case 'a':
		return xstrdup(json_string_value(json_object_get(instance, "architecture")));
	case 'b': {
		json_t *devices = json_object_get(instance, "expanded_devices");
		const char *pool = json_string_value(json_object_get(json_object_get(devices, "root"), "pool"));
		return xstrdup(pool ? pool : "");
	}
	case 'c':
		return format_date(json_string_value(json_object_get(instance, "created_at")));
	case 'l':
		return format_date(json_string_value(json_object_get(instance, "last_used_at")));
	case 'd':
		return xstrdup(json_string_value(json_object_get(instance, "description")));
	case 'e':
		return xstrdup(json_string_value(json_object_get(instance, "project")) ?: "default");
	case 'L':
		return xstrdup(json_string_value(json_object_get(instance, "location")) ?: "none");
	case 'f':
	case 'F': {
		const char *fp = config_value(instance, "volatile.base_image");
		if (fp == NULL)
			return xstrdup("");
		return col->shorthand == 'f' ? strndup(fp, 12) : xstrdup(fp);
	}
	case 'P':
		return join_array(json_object_get(instance, "profiles"), "\n");
	case 'p': {
		json_int_t pid = json_integer_value(json_object_get(state, "pid"));
		return pid > 0 ? xasprintf("%" JSON_INTEGER_FORMAT, pid) : xstrdup("");
	}
	case 'N': {
		json_t *p = json_object_get(state, "processes");
		return p && json_integer_value(p) >= 0 && state ? xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(p))
							      : xstrdup("");
	}
	case 'm': {
		json_int_t usage = json_integer_value(json_object_get(json_object_get(state, "memory"), "usage"));
		return usage > 0 ? size_format(usage, 2) : xstrdup("");
	}
	case 'M': {
		json_int_t usage = json_integer_value(json_object_get(json_object_get(state, "memory"), "usage"));
		long long limit = 0;
		const char *lim = config_value(instance, "limits.memory");
		if (usage <= 0 || lim == NULL || size_parse(lim, &limit, NULL) < 0 || limit <= 0)
			return xstrdup("");
		return xasprintf("%.2f%%", 100.0 * (double)usage / (double)limit);
	}
	case 'u': {
		json_int_t ns = json_integer_value(json_object_get(json_object_get(state, "cpu"), "usage"));
		return ns > 0 ? xasprintf("%llds", (long long)(ns / 1000000000)) : xstrdup("");
	}
	case 'D': {
		json_int_t usage = json_integer_value(
			json_object_get(json_object_get(json_object_get(state, "disk"), "root"), "usage"));
		return usage > 0 ? size_format(usage, 2) : xstrdup("");
	}
	}
	return xstrdup("");
}

static bool regex_full_match(const char *pattern, const char *text)
{
	cleanup_free char *anchored = xasprintf("^(%s)$", pattern);
	regex_t re;
	if (regcomp(&re, anchored, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	bool match = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return match;
}

bool list_filter_match(const char *filter, const json_t *instance)
{
	const char *name = json_string_value(json_object_get(instance, "name"));
	const char *eq = strchr(filter, '=');
	if (eq == NULL)
		return name != NULL && (strncmp(name, filter, strlen(filter)) == 0 || regex_full_match(filter, name));
	cleanup_free char *key = strndup(filter, eq - filter);
	const char *want = eq + 1;
	const char *have = NULL;
	if (strcmp(key, "status") == 0 || strcmp(key, "state") == 0)
		have = json_string_value(json_object_get(instance, "status"));
	else if (strcmp(key, "type") == 0)
		have = json_string_value(json_object_get(instance, "type"));
	else if (strcmp(key, "architecture") == 0)
		have = json_string_value(json_object_get(instance, "architecture"));
	else if (strcmp(key, "name") == 0)
		have = name;
	if (have != NULL) {
		/* Shorthands take comma-separated alternatives, case-insensitive. */
		cleanup_free char *alts = xstrdup(want);
		for (char *save = NULL, *alt = strtok_r(alts, ",", &save); alt; alt = strtok_r(NULL, ",", &save))
			if (strcasecmp(alt, have) == 0)
				return true;
		return false;
	}
	/* A config key, with "u." standing for "user." as lxc allows. */
	cleanup_free char *full = strncmp(key, "u.", 2) == 0 ? xasprintf("user.%s", key + 2) : xstrdup(key);
	const char *value = config_value(instance, full);
	return value != NULL && (strcmp(value, want) == 0 || regex_full_match(want, value));
}
