/* ferry image export IMAGE [TARGET]: download an image's unified tarball. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/image_verbs.h"
#include "cli/images.h"
#include "cli/target.h"
#include "common/util.h"

/* The filename of a Content-Disposition header, without any directory. */
static char *disposition_filename(const char *header)
{
	const char *p = header ? strstr(header, "filename=") : NULL;
	if (p == NULL)
		return NULL;
	p += 9;
	bool quoted = *p == '"';
	if (quoted)
		p++;
	size_t len = strcspn(p, quoted ? "\"" : "; ");
	char *name = strndup(p, len);
	if (name == NULL)
		abort();
	char *slash = strrchr(name, '/');
	if (slash != NULL)
		memmove(name, slash + 1, strlen(slash + 1) + 1);
	if (*name == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		free(name);
		return NULL;
	}
	return name;
}

int image_export(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "image export",
		.usage = "[<remote>:]<image> [<target>] [flags]",
		.summary = "Export and download images (to the current directory when no target is given)",
	};
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(&cmd, argc - optind, 1, 2);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	cleanup_free char *fp = NULL;
	if (target_parse(argv[optind], &t, &err) < 0 || client_open(t.remote, &client, &err) < 0 ||
	    image_resolve(client, t.name, &fp, &err) < 0)
		return cli_fail(err);
	const char *target = argc - optind == 2 ? argv[optind + 1] : ".";
	struct stat st;
	bool to_dir = stat(target, &st) == 0 && S_ISDIR(st.st_mode);

	/* Download next to the target, then rename: no half-written file under the final name. */
	cleanup_free char *tmp = xasprintf("%s/.ferry-export-XXXXXX", to_dir ? target : ".");
	if (!to_dir) {
		free(tmp);
		tmp = xasprintf("%s.partial-XXXXXX", target);
	}
	cleanup_close int fd = mkstemp(tmp);
	if (fd < 0) {
		error_sys(&err, errno, "Can't create a file next to %s", target);
		return cli_fail(err);
	}
	cleanup_free char *escaped = client_escape(fp);
	cleanup_free char *path = xasprintf("/1.0/images/%s/export", escaped);
	struct client_raw raw = { 0 };
	if (client_download(client, path, fd, &raw, &err) < 0) {
		unlink(tmp);
		return cli_fail(err);
	}
	cleanup_free char *name = disposition_filename(json_string_value(json_object_get(raw.headers, "content-disposition")));
	client_raw_clear(&raw);
	cleanup_free char *final = to_dir ? xasprintf("%s/%s", target, name ? name : fp) : xstrdup(target);
	fchmod(fd, 0644);
	if (rename(tmp, final) < 0) {
		error_sys(&err, errno, "Can't write %s", final);
		unlink(tmp);
		return cli_fail(err);
	}
	if (!cli_quiet)
		printf("Image exported successfully!\n");
	return EXIT_OK;
}
