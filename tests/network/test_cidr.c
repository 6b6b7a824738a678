/* Unit test of the pure address helpers of src/runtime/network.c:
 * network_cidr_parse() and network_ipv4_nth(). TAP-like output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "runtime/network.h"

static int failures, count;

static void ok(int cond, const char *what)
{
	count++;
	printf("%s %d - %s\n", cond ? "ok" : "not ok", count, what);
	if (!cond)
		failures++;
}

static void parse_ok(const char *cidr, uint32_t want_addr, int want_prefix)
{
	struct ferry_error *err = NULL;
	uint32_t addr = 0;
	int prefix = -1;
	int rc = network_cidr_parse(cidr, &addr, &prefix, &err);
	char what[128];
	snprintf(what, sizeof(what), "parse %s", cidr);
	ok(rc == 0 && addr == want_addr && prefix == want_prefix, what);
	if (err != NULL)
		printf("#   %s\n", err->msg);
	error_free(&err);
}

static void parse_bad(const char *cidr)
{
	struct ferry_error *err = NULL;
	uint32_t addr = 0;
	int prefix = 0;
	int rc = network_cidr_parse(cidr, &addr, &prefix, &err);
	char what[128];
	snprintf(what, sizeof(what), "reject '%s' with a 400 error", cidr ? cidr : "(null)");
	ok(rc < 0 && err != NULL && err->status == 400 && strstr(err->msg, "invalid CIDR") != NULL, what);
	error_free(&err);
}

static void nth_is(const char *cidr, uint32_t n, const char *want)
{
	char *got = network_ipv4_nth(cidr, n);
	char what[128];
	snprintf(what, sizeof(what), "host %u of %s is %s", n, cidr, want ? want : "NULL");
	ok(want == NULL ? got == NULL : (got != NULL && strcmp(got, want) == 0), what);
	if (got != NULL && (want == NULL || strcmp(got, want) != 0))
		printf("#   got %s\n", got);
	free(got);
}

int main(void)
{
	parse_ok("10.166.0.1/24", 0x0aa60001u, 24);
	parse_ok("0.0.0.0/0", 0, 0);
	parse_ok("192.168.1.255/32", 0xc0a801ffu, 32);
	parse_ok("172.16.5.4/12", 0xac100504u, 12);
	parse_bad(NULL);
	parse_bad("");
	parse_bad("10.166.0.1");
	parse_bad("10.166.0.1/");
	parse_bad("10.166.0.1/33");
	parse_bad("10.166.0.1/-1");
	parse_bad("10.166.0.1/2x");
	parse_bad("10.166.0.1/024");
	parse_bad("10.166.0/24");
	parse_bad("10.166.0.256/24");
	parse_bad("fd42::1/64");
	parse_bad("/24");
	parse_bad("hello/24");

	nth_is("10.166.0.1/24", 1, "10.166.0.1");
	nth_is("10.166.0.1/24", 23, "10.166.0.23");
	nth_is("10.166.0.1/24", 254, "10.166.0.254");
	nth_is("10.166.0.1/24", 255, NULL); /* broadcast */
	nth_is("10.166.0.1/24", 256, NULL);
	nth_is("10.166.0.1/24", 0, NULL); /* network address */
	nth_is("10.166.0.77/24", 2, "10.166.0.2"); /* from the subnet, not the gateway */
	nth_is("10.1.0.1/16", 256, "10.1.1.0");
	nth_is("10.1.0.1/16", 65534, "10.1.255.254");
	nth_is("10.1.0.1/16", 65535, NULL);
	nth_is("10.0.0.1/30", 2, "10.0.0.2");
	nth_is("10.0.0.1/30", 3, NULL);
	nth_is("10.0.0.1/31", 1, NULL);
	nth_is("10.0.0.1/32", 1, NULL);
	nth_is("0.0.0.0/0", 4294967294u, "255.255.255.254");
	nth_is("0.0.0.0/0", 4294967295u, NULL);
	nth_is("not-a-cidr", 1, NULL);

	printf("1..%d\n", count);
	return failures == 0 ? 0 : 1;
}
