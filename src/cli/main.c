/* ferry: the command-line client of ferryd, with lxc's verbs. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct verb {
	const char *name;
	const char *alias;
	const char *summary;
	int (*run)(int argc, char **argv);
};

static const struct verb verbs[] = {
	{ "config", NULL, "Manage instance and server configuration options", cmd_config },
	{ "console", NULL, "Attach to instance consoles", cmd_console },
	{ "copy", "cp", "Copy instances within or in between servers", cmd_copy },
	{ "delete", "rm", "Delete instances", cmd_delete },
	{ "exec", NULL, "Execute commands in instances", cmd_exec },
	{ "file", NULL, "Manage files in instances", cmd_file },
	{ "image", NULL, "Manage images", cmd_image },
	{ "info", NULL, "Show instance or server information", cmd_info },
	{ "init", "create", "Create instances from images", cmd_init },
	{ "launch", NULL, "Create and start instances from images", cmd_launch },
	{ "list", "ls", "List instances", cmd_list },
	{ "move", "mv", "Move instances within or in between servers", cmd_move },
	{ "operation", NULL, "List, show and delete background operations", cmd_operation },
	{ "profile", NULL, "Manage profiles", cmd_profile },
	{ "remote", NULL, "Manage the list of remote servers", cmd_remote },
	{ "rename", NULL, "Rename instances and snapshots (move within a server)", cmd_move },
	{ "restart", NULL, "Restart instances", cmd_restart },
	{ "restore", NULL, "Restore instances from snapshots", cmd_restore },
	{ "snapshot", NULL, "Create and manage instance snapshots", cmd_snapshot },
	{ "start", NULL, "Start instances", cmd_start },
	{ "stop", NULL, "Stop instances", cmd_stop },
	{ "version", NULL, "Show local and remote versions", cmd_version },
	{ NULL },
};

static void print_help(FILE *out)
{
	fprintf(out, "Description:\n  Command line client for ferryd\n\n"
		     "Usage:\n  ferry [command]\n\nAvailable Commands:\n");
	for (const struct verb *v = verbs; v->name != NULL; v++)
		fprintf(out, "  %-11s %s\n", v->name, v->summary);
	fprintf(out, "\nGlobal Flags:\n"
		     "      --debug     Show all debug messages\n"
		     "  -h, --help      Print help\n"
		     "  -q, --quiet     Don't show progress information\n"
		     "      --version   Print version number\n"
		     "\nThe daemon is found at $FERRY_DIR/unix.socket (default /var/lib/ferry).\n");
}

int main(int argc, char **argv)
{
	int i = 1;
	/* Global flags before the verb. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			print_help(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("%s\n", FERRY_VERSION);
			return EXIT_OK;
		} else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) {
			cli_quiet = true;
		} else if (strcmp(argv[i], "--debug") == 0) {
			cli_debug = true;
		} else if (strcmp(argv[i], "--force-local") == 0 || strcmp(argv[i], "-v") == 0 ||
			   strcmp(argv[i], "--verbose") == 0) {
			/* accepted for lxc compatibility */
		} else {
			fprintf(stderr, "Error: unknown flag: %s\n\n", argv[i]);
			print_help(stderr);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		print_help(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[i];
	if (strcmp(name, "help") == 0) {
		print_help(stdout);
		return EXIT_OK;
	}
	for (const struct verb *v = verbs; v->name != NULL; v++) {
		if (strcmp(name, v->name) == 0 || (v->alias != NULL && strcmp(name, v->alias) == 0)) {
			cli_options_reset();
			return v->run(argc - i, argv + i);
		}
	}
	fprintf(stderr, "Error: unknown command \"%s\" for \"ferry\"\nRun 'ferry --help' for usage.\n", name);
	return EXIT_USAGE;
}
