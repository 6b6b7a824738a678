/* Option parsing shared by every verb, and the CLI's error reporting. */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

bool cli_quiet;
bool cli_debug;

enum {
	OPT_COMMON_DEBUG = 0x1100,
	OPT_COMMON_PROJECT,
	OPT_COMMON_FORCE_LOCAL,
};

static const struct option common_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "debug", no_argument, NULL, OPT_COMMON_DEBUG },
	{ "project", required_argument, NULL, OPT_COMMON_PROJECT },
	{ "force-local", no_argument, NULL, OPT_COMMON_FORCE_LOCAL },
};
#define N_COMMON (sizeof(common_options) / sizeof(common_options[0]))

void cli_options_reset(void)
{
	optind = 0; /* 0, not 1: glibc then reinitialises its permutation state */
	opterr = 0;
}

int cli_next_option(const struct cli_command *cmd, int argc, char **argv)
{
	/* Merged table: the verb's options, then the common ones. */
	static struct option merged[64];
	static char shortopts[128];
	size_t n = 0;
	for (const struct option *o = cmd->longopts; o != NULL && o->name != NULL && n < 48; o++)
		merged[n++] = *o;
	for (size_t i = 0; i < N_COMMON; i++)
		merged[n++] = common_options[i];
	merged[n] = (struct option){ 0 };
	/* Leading ':' so a missing argument is reported as ':' not '?'. */
	snprintf(shortopts, sizeof(shortopts), ":%shq", cmd->shortopts ? cmd->shortopts : "");

	opterr = 0;
	int c = getopt_long(argc, argv, shortopts, merged, NULL);
	switch (c) {
	case 'h':
		cli_print_usage(cmd, false);
		return CLI_OPT_HELP;
	case 'q':
		cli_quiet = true;
		return cli_next_option(cmd, argc, argv);
	case OPT_COMMON_DEBUG:
		cli_debug = true;
		return cli_next_option(cmd, argc, argv);
	case OPT_COMMON_PROJECT:
		if (strcmp(optarg, "default") != 0) {
			cli_usage_error(cmd, "Projects are not supported: only \"default\" exists");
			return CLI_OPT_BAD;
		}
		return cli_next_option(cmd, argc, argv);
	case OPT_COMMON_FORCE_LOCAL:
		return cli_next_option(cmd, argc, argv);
	case ':':
		if (optopt != 0 && optopt < 0x100)
			cli_usage_error(cmd, "flag needs an argument: '%c' in -%c", optopt, optopt);
		else
			cli_usage_error(cmd, "flag needs an argument: %s", argv[optind - 1]);
		return CLI_OPT_BAD;
	case '?':
		if (optopt != 0 && optopt < 0x100)
			cli_usage_error(cmd, "unknown shorthand flag: '%c' in -%c", optopt, optopt);
		else
			cli_usage_error(cmd, "unknown flag: %s", argv[optind - 1]);
		return CLI_OPT_BAD;
	default:
		return c;
	}
}

void cli_print_usage(const struct cli_command *cmd, bool to_stderr)
{
	FILE *out = to_stderr ? stderr : stdout;
	if (!to_stderr && cmd->summary != NULL)
		fprintf(out, "Description:\n  %s\n\n", cmd->summary);
	fprintf(out, "Usage:\n  ferry %s %s\n", cmd->name, cmd->usage ? cmd->usage : "[flags]");
	if (cmd->help != NULL)
		fprintf(out, "\nFlags:\n%s", cmd->help);
	fprintf(out, "\nGlobal Flags:\n"
		     "      --debug     Show all debug messages\n"
		     "  -h, --help      Print help\n"
		     "  -q, --quiet     Don't show progress information\n");
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n\n", stderr);
	va_end(ap);
	cli_print_usage(cmd, true);
	return EXIT_USAGE;
}

int cli_check_args(const struct cli_command *cmd, int nargs, int min, int max)
{
	if (nargs < min)
		return cli_usage_error(cmd, "Missing required arguments");
	if (max >= 0 && nargs > max)
		return cli_usage_error(cmd, "Too many arguments");
	return 0;
}

int cli_no_options(const struct cli_command *cmd, int argc, char **argv, int min, int max)
{
	int c;
	while ((c = cli_next_option(cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(cmd, argc - optind, min, max);
	return rc != 0 ? rc : -1;
}

/* What to do next, for the errors users meet most. */
static const char *error_hint(const struct ferry_error *err)
{
	if (err->msg == NULL)
		return NULL;
	if (strstr(err->msg, "cannot reach ferryd") != NULL)
		return "Is ferryd running? Start it, or point FERRY_DIR at its --root directory.";
	if (err->status == 404 && strstr(err->msg, "Instance not found") != NULL)
		return "See the instances with: ferry list";
	if (err->status == 404 && strstr(err->msg, "Image") != NULL)
		return "See the images with: ferry image list (build one with: ferry image build busybox --alias busybox)";
	return NULL;
}

int cli_fail(const struct ferry_error *err)
{
	fprintf(stderr, "Error: %s\n", err && err->msg ? err->msg : "unknown error");
	const char *hint = err ? error_hint(err) : NULL;
	if (hint != NULL && !cli_quiet)
		fprintf(stderr, "%s\n", hint);
	return EXIT_FAIL;
}

int cli_parse_key_value(const char *arg, char **key, char **value, struct ferry_error **err)
{
	const char *eq = strchr(arg, '=');
	if (eq == NULL || eq == arg)
		return error_bad_request(err, "Bad key=value pair: %s", arg);
	*key = strndup(arg, eq - arg);
	*value = xstrdup(eq + 1);
	if (*key == NULL)
		abort();
	return 0;
}

int cli_parse_int(const char *s, long long *out, struct ferry_error **err)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0)
		return error_bad_request(err, "Invalid number: %s", s);
	*out = v;
	return 0;
}

bool cli_confirm(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
	char line[64];
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

int cli_run_subcommand(const char *group, const struct cli_subcommand *subs, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		FILE *out = argc < 2 ? stderr : stdout;
		if (argc < 2)
			fprintf(out, "Error: Missing subcommand\n\n");
		fprintf(out, "Usage:\n  ferry %s [command]\n\nAvailable Commands:\n", group);
		for (const struct cli_subcommand *s = subs; s->name != NULL; s++)
			fprintf(out, "  %-12s %s\n", s->name, s->summary);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	for (const struct cli_subcommand *s = subs; s->name != NULL; s++) {
		if (strcmp(argv[1], s->name) == 0 || (s->alias != NULL && strcmp(argv[1], s->alias) == 0)) {
			cli_options_reset();
			return s->run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "Error: unknown command \"%s\" for \"ferry %s\"\n", argv[1], group);
	return EXIT_USAGE;
}
