/* ferry image ...: manage images (one file per subcommand). */
#include "cli/cli.h"
#include "cli/image_verbs.h"

int cmd_image(int argc, char **argv)
{
	static const struct cli_subcommand subs[] = {
		{ "alias", NULL, "Manage image aliases", image_alias },
		{ "build", NULL, "Build an image (busybox, debian) on the server", image_build },
		{ "delete", "rm", "Delete images", image_delete },
		{ "export", NULL, "Export and download images", image_export },
		{ "import", NULL, "Import images into the image store", image_import },
		{ "info", NULL, "Show useful information about images", image_info },
		{ "list", "ls", "List images", image_list },
		{ NULL },
	};
	return cli_run_subcommand("image", subs, argc, argv);
}
