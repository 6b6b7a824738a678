/* Byte sizes: parsing ("512MB", "2GiB") and formatting ("1.50MiB"). */
#include <stdlib.h>

#include "../../src/cli/units.h"
#include "check.h"

static long long parsed(const char *s)
{
	long long v = -1;
	struct ferry_error *err = NULL;
	if (size_parse(s, &v, &err) < 0) {
		error_free(&err);
		return -1;
	}
	return v;
}

int main(void)
{
	CHECK(parsed("0") == 0);
	CHECK(parsed("1024") == 1024);
	CHECK(parsed("10B") == 10);
	CHECK(parsed("1kB") == 1000);
	CHECK(parsed("1KB") == 1000);
	CHECK(parsed("512MB") == 512000000LL);
	CHECK(parsed("1KiB") == 1024);
	CHECK(parsed("2GiB") == 2LL << 30);
	CHECK(parsed("1.5MiB") == 3LL << 19);
	CHECK(parsed("1EiB") == 1LL << 60);
	CHECK(parsed("") == -1);
	CHECK(parsed("MB") == -1);
	CHECK(parsed("12XB") == -1);
	CHECK(parsed("-1") == -1);
	CHECK(parsed("1 GB") == -1);
	CHECK(parsed("100EiB") == -1);

	char *s;
	CHECK_STR(s = size_format(0, 2), "0B"); free(s);
	CHECK_STR(s = size_format(1023, 2), "1023B"); free(s);
	CHECK_STR(s = size_format(1024, 2), "1.00KiB"); free(s);
	CHECK_STR(s = size_format(3LL << 19, 2), "1.50MiB"); free(s);
	CHECK_STR(s = size_format(5LL << 30, 0), "5GiB"); free(s);
	CHECK_STR(s = size_format_si(999, 2), "999B"); free(s);
	CHECK_STR(s = size_format_si(1234, 2), "1.23kB"); free(s);
	CHECK_STR(s = size_format_si(4560000, 2), "4.56MB"); free(s);
	return CHECK_DONE();
}
