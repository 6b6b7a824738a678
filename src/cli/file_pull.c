/* ferry file pull NAME/path... TARGET: GET /1.0/instances/NAME/files. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/target.h"
#include "common/util.h"

static const struct option pull_options[] = {
	{ "create-dirs", no_argument, NULL, 'p' },
	{ "recursive", no_argument, NULL, 'r' },
	{ 0 },
};

static int pull_path(struct client *client, const char *escaped_name, const char *remote, const char *local,
		     bool recursive, struct ferry_error **err)
{
	cleanup_free char *escaped_path = client_escape(remote);
	cleanup_free char *url = xasprintf("/1.0/instances/%s/files?path=%s", escaped_name, escaped_path);
	if (strcmp(local, "-") == 0) {
		struct client_raw raw = { 0 };
		int r = client_download(client, url, STDOUT_FILENO, &raw, err);
		bool dir = r == 0 && raw.metadata != NULL;
		client_raw_clear(&raw);
		if (dir)
			return error_set(err, 400, EISDIR, "%s is a directory", remote);
		return r;
	}
	/* Into a temporary file first: a directory answers with a listing instead. */
	cleanup_free char *tmp = xasprintf("%s.ferry-XXXXXX", local);
	cleanup_close int fd = mkstemp(tmp);
	if (fd < 0)
		return error_sys(err, errno, "Can't create %s", local);
	struct client_raw raw = { 0 };
	if (client_download(client, url, fd, &raw, err) < 0) {
		unlink(tmp);
		return -1;
	}
	const char *mode_header = json_string_value(json_object_get(raw.headers, "x-lxd-mode"));
	int mode = mode_header ? (int)strtol(mode_header, NULL, 8) : 0644;
	if (raw.metadata != NULL) {
		unlink(tmp);
		json_t *entries = json_incref(raw.metadata);
		client_raw_clear(&raw);
		if (!recursive) {
			json_decref(entries);
			return error_set(err, 400, EISDIR, "%s is a directory (use -r to pull directories)", remote);
		}
		if (mkdir(local, mode ? mode : 0755) < 0 && errno != EEXIST) {
			json_decref(entries);
			return error_sys(err, errno, "Can't create %s", local);
		}
		size_t i;
		json_t *e;
		int r = 0;
		json_array_foreach(entries, i, e) {
			const char *name = json_string_value(e);
			if (name == NULL || strchr(name, '/') != NULL || !strcmp(name, ".") || !strcmp(name, ".."))
				continue;
			cleanup_free char *child_remote = xasprintf("%s/%s", strcmp(remote, "/") ? remote : "", name);
			cleanup_free char *child_local = xasprintf("%s/%s", local, name);
			if ((r = pull_path(client, escaped_name, child_remote, child_local, true, err)) < 0)
				break;
		}
		json_decref(entries);
		return r;
	}
	client_raw_clear(&raw);
	fchmod(fd, mode & 07777);
	if (rename(tmp, local) < 0) {
		int e = errno;
		unlink(tmp);
		return error_sys(err, e, "Can't write %s", local);
	}
	return 0;
}

int file_pull(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "file pull",
		.usage = "[<remote>:]<instance>/<path>... <target path> [flags]",
		.summary = "Pull files from instances (target \"-\" is stdout)",
		.help = "  -p, --create-dirs   Create any directories necessary\n"
			"  -r, --recursive     Recursively transfer files\n",
		.shortopts = "pr",
		.longopts = pull_options,
	};
	bool create_dirs = false, recursive = false;
	cleanup_error struct ferry_error *err = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'p':
			create_dirs = true;
			break;
		case 'r':
			recursive = true;
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 2, -1);
	if (rc != 0)
		return rc;
	const char *target = argv[argc - 1];
	if (create_dirs && strcmp(target, "-") != 0 && mkdir_p(target, 0755, &err) < 0)
		return cli_fail(err);
	struct stat st;
	bool target_is_dir = stat(target, &st) == 0 && S_ISDIR(st.st_mode);
	int nsources = argc - optind - 1;
	if (nsources > 1 && !target_is_dir) {
		error_set(&err, 400, ENOTDIR, "Target %s must be a directory when pulling several files", target);
		return cli_fail(err);
	}
	for (int i = optind; i < argc - 1; i++) {
		struct target t cleanup_target = { 0 };
		struct client *client cleanup_client = NULL;
		cleanup_free char *path = NULL;
		if (target_parse_file(argv[i], &t, &path, &err) < 0)
			return cli_usage_error(&cmd, "%s", err->msg);
		if (client_open(t.remote, &client, &err) < 0)
			return cli_fail(err);
		cleanup_free char *escaped_name = client_escape(t.name);
		cleanup_free char *copy = xstrdup(path);
		cleanup_free char *local = target_is_dir ? xasprintf("%s/%s", target, basename(copy)) : xstrdup(target);
		if (pull_path(client, escaped_name, path, local, recursive, &err) < 0) {
			rc = cli_fail(err);
			error_free(&err);
		}
	}
	return rc;
}
