/* Byte sizes as LXD writes and reads them ("1.50MiB", "512MB", "2GiB"). */
#pragma once

#include "common/error.h"

/* "1024" "10B" "10kB" "10MB" (powers of 1000) "10KiB" "10MiB" (powers of 1024), up to E/Ei. */
int size_parse(const char *s, long long *out, struct ferry_error **err);
/* "512B" below 1 KiB, else the largest binary unit with precision decimals: "1.50MiB". */
char *size_format(long long bytes, int precision);
/* The same in powers of 1000 ("1.23kB", "4.56MB"), as lxc shows network counters. */
char *size_format_si(long long bytes, int precision);
