/* ferry image delete IMAGE...: delete images. */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/image_verbs.h"
#include "cli/images.h"
#include "cli/target.h"
#include "common/util.h"

int image_delete(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "image delete",
		.usage = "[<remote>:]<image> [[<remote>:]<image>...] [flags]",
		.summary = "Delete images",
	};
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(&cmd, argc - optind, 1, -1);
	if (rc != 0)
		return rc;
	for (int i = optind; i < argc; i++) {
		cleanup_error struct ferry_error *err = NULL;
		struct target t cleanup_target = { 0 };
		struct client *client cleanup_client = NULL;
		cleanup_free char *fp = NULL;
		if (target_parse(argv[i], &t, &err) < 0 || client_open(t.remote, &client, &err) < 0 ||
		    image_resolve(client, t.name, &fp, &err) < 0) {
			rc = cli_fail(err);
			continue;
		}
		cleanup_free char *escaped = client_escape(fp);
		cleanup_free char *path = xasprintf("/1.0/images/%s", escaped);
		if (client_run_operation(client, "DELETE", path, NULL, NULL, NULL, &err) < 0)
			rc = cli_fail(err);
	}
	return rc;
}
