/* ferry version: the client's and the server's versions. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/target.h"

int cmd_version(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "version",
		.usage = "[<remote>:] [flags]",
		.summary = "Show local and remote versions",
	};
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(&cmd, argc - optind, 0, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *server = NULL;
	const char *server_version = "unreachable";
	printf("Client version: %s\n", FERRY_VERSION);
	if (target_parse(optind < argc ? argv[optind] : "", &t, &err) == 0 && client_open(t.remote, &client, &err) == 0 &&
	    client_query(client, "GET", "/1.0", NULL, &server, &err) == 0) {
		const char *v = json_string_value(json_object_get(json_object_get(server, "environment"), "server_version"));
		if (v != NULL)
			server_version = v;
	}
	printf("Server version: %s\n", server_version);
	json_decref(server);
	return EXIT_OK;
}
