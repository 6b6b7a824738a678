/* What every verb of the ferry CLI shares: exit codes, option parsing with
 * the global flags, and error reporting in lxc's words ("Error: ..."). */
#pragma once

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>

#include "common/error.h"

/* Exit codes scripts can trust. exec exits with the command's own code. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
};

struct cli_command {
	const char *name;       /* "list", or "image list" for a subcommand */
	const char *usage;      /* "[<filter>...] [flags]" */
	const char *summary;    /* one line */
	const char *help;       /* flags, one per line; may be NULL */
	const char *shortopts;  /* getopt's, without the common ones */
	const struct option *longopts; /* ends with {0}; may be NULL */
};

/* Returned by cli_next_option besides the verb's own options. */
enum {
	CLI_OPT_HELP = 0x1000, /* usage printed to stdout: exit 0 */
	CLI_OPT_BAD,           /* error and usage printed to stderr: exit 2 */
};

/* Set by the global flags (-q/--quiet, --debug). */
extern bool cli_quiet;
extern bool cli_debug;

/* getopt_long over argv (argv[0] is the verb) with the options every verb
 * has (-h/--help, -q/--quiet, --debug, --project, --force-local) handled
 * here. Options and arguments may be mixed; "--" ends the options. Returns
 * the option, -1 at the end (then optind is the first argument),
 * CLI_OPT_HELP or CLI_OPT_BAD. */
int cli_next_option(const struct cli_command *cmd, int argc, char **argv);
/* Start over (getopt keeps state between calls). */
void cli_options_reset(void);

void cli_print_usage(const struct cli_command *cmd, bool to_stderr);
/* "Error: <message>" and the usage on stderr. Returns EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Check the number of arguments left after the options. Returns 0 if in range (max < 0: no maximum),
 * else prints a usage error and returns EXIT_USAGE. */
int cli_check_args(const struct cli_command *cmd, int nargs, int min, int max);
/* A verb without options of its own (--help only), min..max arguments
 * (max -1: any): -1 to go on, else the exit code. */
int cli_no_options(const struct cli_command *cmd, int argc, char **argv, int min, int max);
/* "Error: <message>" on stderr, with a hint when we know what to do. Returns EXIT_FAIL. */
int cli_fail(const struct ferry_error *err);

/* Parse "KEY=VALUE" into two malloc'd strings. Returns < 0 without '=' or with an empty key. */
int cli_parse_key_value(const char *arg, char **key, char **value, struct ferry_error **err);
/* Strict non-negative/any integer parsing of an option value. */
int cli_parse_int(const char *s, long long *out, struct ferry_error **err);
/* Ask a yes/no question on the terminal (default no). */
bool cli_confirm(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The verbs: argc/argv start at the verb's name. Each returns the exit code. */
int cmd_launch(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_move(int argc, char **argv);
int cmd_remote(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
/* stop and restart share their parsing; action is "stop" or "restart". */
int cli_stop_or_restart(int argc, char **argv, const char *action);
int cmd_restart(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_file(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_operation(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* Subcommand tables (file, image, config, operation): pick argv[1]. */
struct cli_subcommand {
	const char *name;
	const char *alias;
	const char *summary;
	int (*run)(int argc, char **argv);
};
int cli_run_subcommand(const char *group, const struct cli_subcommand *subs, int argc, char **argv);

/* init and launch share everything but the start (init.c). */
int cli_create_instance(int argc, char **argv, bool start);

/* Run action ("start", "stop", "restart") on each instance named in argv
 * (start.c); reports each failure, returns the exit code. */
int cli_instances_action(const struct cli_command *cmd, int nargs, char **names, const char *action, bool force,
			 int timeout, bool stateful);

struct client;
/* config.c: the writable part of an instance (architecture, config, devices,
 * ephemeral, profiles, stateful, description) or of the server (config),
 * and PUTting it back. instance NULL: the server. */
int config_fetch(struct client *client, const char *instance, bool expanded, json_t **writable,
		 struct ferry_error **err);
int config_put(struct client *client, const char *instance, json_t *writable, struct ferry_error **err);
int config_edit(int argc, char **argv);
