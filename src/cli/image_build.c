/* ferry image build busybox|debian [--alias A]: build an image on the
 * server (ferry's own addition to LXD's API: POST /1.0/images with source
 * type "build"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/image_verbs.h"
#include "cli/images.h"
#include "cli/target.h"
#include "common/util.h"

static const struct option build_options[] = {
	{ "alias", required_argument, NULL, 'a' },
	{ 0 },
};

int image_build(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "image build",
		.usage = "[<remote>:]busybox|debian [flags]",
		.summary = "Build an image on the server: busybox (from the host's busybox-static, offline) or "
			   "debian (bookworm, debootstrap)",
		.help = "      --alias   New alias to define for the image (repeatable)\n",
		.longopts = build_options,
	};
	char *aliases[16];
	size_t naliases = 0;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'a':
			if (naliases == sizeof(aliases) / sizeof(aliases[0]))
				return cli_usage_error(&cmd, "Too many aliases");
			aliases[naliases++] = optarg;
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 1, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (target_parse(argv[optind], &t, &err) < 0)
		return cli_fail(err);
	if (strcmp(t.name, "busybox") != 0 && strcmp(t.name, "debian") != 0)
		return cli_usage_error(&cmd, "Unknown image recipe \"%s\": busybox or debian", t.name);
	if (client_open(t.remote, &client, &err) < 0)
		return cli_fail(err);
	json_t *body = json_pack("{s:{s:s, s:s}}", "source", "type", "build", "name", t.name);
	json_t *op = NULL;
	rc = client_run_operation(client, "POST", "/1.0/images", body, "Building image: ", &op, &err);
	json_decref(body);
	if (rc < 0)
		return cli_fail(err);
	const char *fp = json_string_value(json_object_get(json_object_get(op, "metadata"), "fingerprint"));
	if (fp == NULL) {
		json_decref(op);
		error_set(&err, 502, 0, "ferryd did not say which image it built");
		return cli_fail(err);
	}
	rc = EXIT_OK;
	if (image_set_aliases(client, fp, aliases, naliases, &err) < 0)
		rc = cli_fail(err);
	else if (!cli_quiet)
		printf("Image built with fingerprint: %s\n", fp);
	json_decref(op);
	return rc;
}
