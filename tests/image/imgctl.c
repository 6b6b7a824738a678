/* A small driver for the image library, for tests/image/test_*.sh:
 *   imgctl build-busybox STORE
 *   imgctl build-debian STORE CACHE
 *   imgctl import STORE FILE
 *   imgctl stat STORE FINGERPRINT
 *   imgctl remove STORE FINGERPRINT
 *   imgctl unpack TARBALL DEST UID GID
 *   imgctl pack ROOTFS OUT [SHIFT] [KEY=VALUE...]
 * Prints an image's info as "key: value" lines; errors go to stderr with
 * the HTTP status the daemon would answer with, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "image/image.h"

static void print_info(const struct image_info *info)
{
	printf("fingerprint: %s\npath: %s\nsize: %lld\narchitecture: %s\ncreated_at: %lld\n", info->fingerprint,
	       info->path, info->size, info->architecture, info->created_at);
	for (size_t i = 0; info->property_keys[i] != NULL; i++)
		printf("property.%s: %s\n", info->property_keys[i], info->property_values[i]);
}

static int usage(void)
{
	fprintf(stderr, "usage: imgctl build-busybox STORE | build-debian STORE CACHE | import STORE FILE |\n"
			"       stat STORE FP | remove STORE FP | unpack TARBALL DEST UID GID |\n"
			"       pack ROOTFS OUT [SHIFT] [KEY=VALUE...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	struct ferry_error *err = NULL;
	struct image_info info = {0};
	int r;
	if (strcmp(cmd, "build-busybox") == 0 && argc == 3) {
		r = image_build_busybox(argv[2], &info, &err);
	} else if (strcmp(cmd, "build-debian") == 0 && argc == 4) {
		r = image_build_debian(argv[2], argv[3], &info, &err);
	} else if (strcmp(cmd, "import") == 0 && argc == 4) {
		r = image_import(argv[2], argv[3], &info, &err);
	} else if (strcmp(cmd, "stat") == 0 && argc == 4) {
		r = image_stat(argv[2], argv[3], &info, &err);
	} else if (strcmp(cmd, "remove") == 0 && argc == 4) {
		r = image_remove(argv[2], argv[3], &err);
	} else if (strcmp(cmd, "unpack") == 0 && argc == 6) {
		r = image_unpack_rootfs(argv[2], argv[3], strtoul(argv[4], NULL, 10), strtoul(argv[5], NULL, 10),
					&err);
	} else if (strcmp(cmd, "pack") == 0 && argc >= 4) {
		int first = 4;
		unsigned long shift = 0;
		if (argc > 4 && strspn(argv[4], "0123456789") == strlen(argv[4]))
			shift = strtoul(argv[first++], NULL, 10);
		int n = argc - first;
		char **keys = xcalloc(n + 1, sizeof(char *));
		char **values = xcalloc(n + 1, sizeof(char *));
		for (int i = 0; i < n; i++) {
			char *eq = strchr(argv[first + i], '=');
			if (eq == NULL)
				return usage();
			keys[i] = strndup(argv[first + i], eq - argv[first + i]);
			values[i] = xstrdup(eq + 1);
		}
		r = image_pack_rootfs(argv[2], argv[3], shift, shift, keys, values, &err);
		strv_free(keys);
		strv_free(values);
	} else {
		return usage();
	}
	if (r < 0) {
		fprintf(stderr, "imgctl: %s: %s (status %d)\n", cmd, err ? err->msg : "failed",
			err && err->status ? err->status : 500);
		error_free(&err);
		return 1;
	}
	if (info.fingerprint != NULL)
		print_info(&info);
	image_info_free(&info);
	return 0;
}
