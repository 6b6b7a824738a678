/* Byte-size parsing and formatting. */
#include "cli/units.h"

#include <ctype.h>
#include <errno.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static const struct {
	const char *suffix;
	long long multiplier;
} size_suffixes[] = {
	{ "", 1 }, { "B", 1 },
	{ "kB", 1000LL }, { "KB", 1000LL }, { "MB", 1000LL * 1000 }, { "GB", 1000LL * 1000 * 1000 },
	{ "TB", 1000LL * 1000 * 1000 * 1000 }, { "PB", 1000LL * 1000 * 1000 * 1000 * 1000 },
	{ "EB", 1000LL * 1000 * 1000 * 1000 * 1000 * 1000 },
	{ "KiB", 1LL << 10 }, { "MiB", 1LL << 20 }, { "GiB", 1LL << 30 }, { "TiB", 1LL << 40 },
	{ "PiB", 1LL << 50 }, { "EiB", 1LL << 60 },
};

int size_parse(const char *s, long long *out, struct ferry_error **err)
{
	const char *p = s;
	while (isdigit((unsigned char)*p) || *p == '.')
		p++;
	if (p == s)
		return error_bad_request(err, "Invalid size \"%s\": no number", s);
	char *end = NULL;
	errno = 0;
	double value = strtod(s, &end);
	if (end != p || errno != 0)
		return error_bad_request(err, "Invalid size \"%s\"", s);
	for (size_t i = 0; i < sizeof(size_suffixes) / sizeof(size_suffixes[0]); i++) {
		if (strcmp(p, size_suffixes[i].suffix) != 0)
			continue;
		double bytes = value * (double)size_suffixes[i].multiplier;
		if (bytes > 9.2e18)
			return error_bad_request(err, "Invalid size \"%s\": too large", s);
		*out = (long long)bytes;
		return 0;
	}
	return error_bad_request(err, "Invalid size \"%s\": unknown unit \"%s\"", s, p);
}

char *size_format(long long bytes, int precision)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (bytes < 1024)
		return xasprintf("%lldB", bytes);
	double value = (double)bytes;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		value /= 1024;
		if (value < 1024 || i == sizeof(units) / sizeof(units[0]) - 1)
			return xasprintf("%.*f%s", precision, value, units[i]);
	}
	return NULL;
}

char *size_format_si(long long bytes, int precision)
{
	static const char *const units[] = { "kB", "MB", "GB", "TB", "PB", "EB" };
	if (bytes < 1000)
		return xasprintf("%lldB", bytes);
	double value = (double)bytes;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		value /= 1000;
		if (value < 1000 || i == sizeof(units) / sizeof(units[0]) - 1)
			return xasprintf("%.*f%s", precision, value, units[i]);
	}
	return NULL;
}
