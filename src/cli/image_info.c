/* ferry image info IMAGE: one image, as lxc shows it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/columns.h"
#include "cli/image_verbs.h"
#include "cli/images.h"
#include "cli/target.h"
#include "cli/units.h"
#include "common/util.h"

static void print_date(const char *label, const json_t *image, const char *key, const char *unset)
{
	cleanup_free char *d = format_date(json_string_value(json_object_get(image, key)));
	printf("    %s: %s\n", label, *d ? d : unset);
}

int image_info(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "image info",
		.usage = "[<remote>:]<image> [flags]",
		.summary = "Show useful information about images",
	};
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(&cmd, argc - optind, 1, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	cleanup_free char *fp = NULL;
	if (target_parse(argv[optind], &t, &err) < 0 || client_open(t.remote, &client, &err) < 0 ||
	    image_resolve(client, t.name, &fp, &err) < 0)
		return cli_fail(err);
	cleanup_free char *escaped = client_escape(fp);
	cleanup_free char *path = xasprintf("/1.0/images/%s", escaped);
	json_t *img = NULL;
	if (client_query(client, "GET", path, NULL, &img, &err) < 0)
		return cli_fail(err);

	cleanup_free char *size = size_format(json_integer_value(json_object_get(img, "size")), 2);
	const char *type = json_string_value(json_object_get(img, "type"));
	printf("Fingerprint: %s\n", json_string_value(json_object_get(img, "fingerprint")) ?: fp);
	printf("Size: %s\n", size);
	printf("Architecture: %s\n", json_string_value(json_object_get(img, "architecture")) ?: "");
	printf("Type: %s\n", type && *type ? type : "container");
	printf("Public: %s\n", json_is_true(json_object_get(img, "public")) ? "yes" : "no");
	printf("Timestamps:\n");
	print_date("Created", img, "created_at", "");
	print_date("Uploaded", img, "uploaded_at", "");
	print_date("Expires", img, "expires_at", "never");
	print_date("Last used", img, "last_used_at", "never");
	printf("Properties:\n");
	const char *key;
	json_t *v;
	json_object_foreach(json_object_get(img, "properties"), key, v)
		printf("    %s: %s\n", key, json_string_value(v) ?: "");
	printf("Aliases:\n");
	size_t i;
	json_array_foreach(json_object_get(img, "aliases"), i, v) {
		const char *desc = json_string_value(json_object_get(v, "description"));
		if (desc != NULL && *desc)
			printf("    - %s (%s)\n", json_string_value(json_object_get(v, "name")) ?: "", desc);
		else
			printf("    - %s\n", json_string_value(json_object_get(v, "name")) ?: "");
	}
	printf("Cached: %s\n", json_is_true(json_object_get(img, "cached")) ? "yes" : "no");
	printf("Auto update: %s\n", json_is_true(json_object_get(img, "auto_update")) ? "enabled" : "disabled");
	json_t *profiles = json_object_get(img, "profiles");
	if (json_array_size(profiles) > 0) {
		printf("Profiles:\n");
		json_array_foreach(profiles, i, v)
			printf("    - %s\n", json_string_value(v) ?: "");
	}
	json_decref(img);
	return EXIT_OK;
}
