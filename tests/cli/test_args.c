/* Option parsing shared by the verbs: lxc-style mixing of flags and
 * arguments, "--" before a command, usage errors, key=value pairs. */
#include <stdlib.h>

#include "../../src/cli/cli.h"
#include "check.h"

static const struct option opts[] = {
	{ "force", no_argument, NULL, 'f' },
	{ "timeout", required_argument, NULL, 0x200 },
	{ 0 },
};
static const struct cli_command cmd = {
	.name = "stop", .usage = "<instance>", .shortopts = "f", .longopts = opts,
};

int main(void)
{
	/* Flags after arguments, as cobra allows. */
	char *a1[] = { "stop", "c1", "--force", "--timeout", "30", "c2", NULL };
	cli_options_reset();
	int c, force = 0;
	const char *timeout = NULL;
	while ((c = cli_next_option(&cmd, 6, a1)) != -1) {
		if (c == 'f')
			force = 1;
		else if (c == 0x200)
			timeout = optarg;
		else
			CHECK(!"unexpected option");
	}
	CHECK(force == 1);
	CHECK_STR(timeout, "30");
	CHECK(optind == 4);
	CHECK_STR(a1[optind], "c1");
	CHECK_STR(a1[optind + 1], "c2");

	/* After "--", everything is the command, its flags included. */
	char *a2[] = { "exec", "c1", "-f", "--", "sh", "-c", "exit 3", NULL };
	cli_options_reset();
	force = 0;
	while ((c = cli_next_option(&cmd, 7, a2)) != -1)
		force += c == 'f';
	CHECK(force == 1);
	CHECK(7 - optind == 4);
	CHECK_STR(a2[optind], "c1");
	CHECK_STR(a2[optind + 1], "sh");
	CHECK_STR(a2[optind + 2], "-c");
	CHECK_STR(a2[optind + 3], "exit 3");

	/* Unknown flags and missing values are usage errors; -q is global. */
	char *a3[] = { "stop", "-q", "--bogus", NULL };
	cli_options_reset();
	cli_quiet = false;
	CHECK(cli_next_option(&cmd, 3, a3) == CLI_OPT_BAD);
	CHECK(cli_quiet);
	char *a4[] = { "stop", "--timeout", NULL };
	cli_options_reset();
	CHECK(cli_next_option(&cmd, 2, a4) == CLI_OPT_BAD);
	char *a5[] = { "stop", "-x", NULL };
	cli_options_reset();
	CHECK(cli_next_option(&cmd, 2, a5) == CLI_OPT_BAD);
	char *a6[] = { "stop", "--help", NULL };
	cli_options_reset();
	CHECK(cli_next_option(&cmd, 2, a6) == CLI_OPT_HELP);

	CHECK(cli_check_args(&cmd, 0, 1, 1) == EXIT_USAGE);
	CHECK(cli_check_args(&cmd, 2, 1, 1) == EXIT_USAGE);
	CHECK(cli_check_args(&cmd, 5, 1, -1) == 0);

	char *key = NULL, *value = NULL;
	struct ferry_error *err = NULL;
	CHECK(cli_parse_key_value("limits.cpu=2", &key, &value, &err) == 0);
	CHECK_STR(key, "limits.cpu");
	CHECK_STR(value, "2");
	free(key);
	free(value);
	CHECK(cli_parse_key_value("user.x=a=b", &key, &value, &err) == 0);
	CHECK_STR(value, "a=b");
	free(key);
	free(value);
	CHECK(cli_parse_key_value("user.empty=", &key, &value, &err) == 0);
	CHECK_STR(value, "");
	free(key);
	free(value);
	CHECK(cli_parse_key_value("novalue", &key, &value, &err) < 0);
	error_free(&err);
	CHECK(cli_parse_key_value("=x", &key, &value, &err) < 0);
	error_free(&err);

	long long n;
	CHECK(cli_parse_int("30", &n, &err) == 0 && n == 30);
	CHECK(cli_parse_int("-1", &n, &err) == 0 && n == -1);
	CHECK(cli_parse_int("3x", &n, &err) < 0);
	error_free(&err);
	CHECK(cli_parse_int("", &n, &err) < 0);
	error_free(&err);
	return CHECK_DONE();
}
