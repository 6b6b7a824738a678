/* ferry image import TARBALL [--alias A]: upload a unified image tarball. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/image_verbs.h"
#include "cli/images.h"
#include "common/util.h"

enum { OPT_PUBLIC = 0x200 };

static const struct option import_options[] = {
	{ "alias", required_argument, NULL, 'a' },
	{ "public", no_argument, NULL, OPT_PUBLIC },
	{ 0 },
};

int image_import(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "image import",
		.usage = "<tarball> [<remote>:] [flags]",
		.summary = "Import a unified image tarball (metadata.yaml + rootfs/) into the image store",
		.help = "      --alias    New aliases to add to the image (repeatable)\n"
			"      --public   Make image public\n",
		.longopts = import_options,
	};
	char *aliases[16];
	size_t naliases = 0;
	bool public = false;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'a':
			if (naliases == sizeof(aliases) / sizeof(aliases[0]))
				return cli_usage_error(&cmd, "Too many aliases");
			aliases[naliases++] = optarg;
			break;
		case OPT_PUBLIC:
			public = true;
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 1, 2);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	const char *file = argv[optind];
	cleanup_close int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		error_sys(&err, errno, "Can't open %s", file);
		return cli_fail(err);
	}
	struct client *client cleanup_client = NULL;
	if (client_open(NULL, &client, &err) < 0)
		return cli_fail(err);
	cleanup_free char *copy = xstrdup(file);
	cleanup_free char *filename_header = xasprintf("X-LXD-filename: %s", basename(copy));
	const char *headers[] = { filename_header, public ? "X-LXD-public: 1" : "X-LXD-public: 0", NULL };
	json_t *answer = NULL;
	if (client_upload(client, "POST", "/1.0/images", fd, headers, &answer, &err) < 0)
		return cli_fail(err);
	json_t *final = NULL;
	json_t *op = json_object_get(answer, "metadata");
	if (!json_is_object(op) || strcmp(json_string_value(json_object_get(answer, "type")) ?: "", "async") != 0)
		op = NULL;
	else if (client_operation_id(op) == NULL)
		json_object_set(op, "operation", json_object_get(answer, "operation"));
	rc = client_operation_wait(client, op, "Transferring image: ", &final, &err);
	const char *fp = NULL;
	if (rc == 0)
		fp = json_string_value(json_object_get(json_object_get(final ? final : answer, "metadata"), "fingerprint"));
	if (rc < 0) {
		rc = cli_fail(err);
	} else if (fp == NULL) {
		error_set(&err, 502, 0, "ferryd did not say which image it imported");
		rc = cli_fail(err);
	} else if (image_set_aliases(client, fp, aliases, naliases, &err) < 0) {
		rc = cli_fail(err);
	} else {
		if (!cli_quiet)
			printf("Image imported with fingerprint: %s\n", fp);
		rc = EXIT_OK;
	}
	json_decref(final);
	json_decref(answer);
	return rc;
}
