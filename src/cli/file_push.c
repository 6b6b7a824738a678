/* ferry file push LOCAL... NAME/path: POST /1.0/instances/NAME/files. */
#include <dirent.h>
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

enum { OPT_UID = 0x200, OPT_GID, OPT_MODE };

static const struct option push_options[] = {
	{ "create-dirs", no_argument, NULL, 'p' },
	{ "recursive", no_argument, NULL, 'r' },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ 0 },
};

struct push_opts {
	long long uid, gid; /* -1: the local file's */
	int mode;           /* -1: the local file's */
	bool create_dirs, recursive;
};

/* POST one file (fd >= 0) or directory (fd < 0) to path in the instance. */
static int push_entry(struct client *client, const char *escaped_name, const char *path, int fd, const struct stat *st,
		      const struct push_opts *o, struct ferry_error **err)
{
	cleanup_free char *escaped_path = client_escape(path);
	cleanup_free char *url = xasprintf("/1.0/instances/%s/files?path=%s", escaped_name, escaped_path);
	int mode = o->mode >= 0 ? o->mode : (int)(st->st_mode & 07777);
	cleanup_free char *h_uid = xasprintf("X-LXD-uid: %lld", o->uid >= 0 ? o->uid : (long long)st->st_uid);
	cleanup_free char *h_gid = xasprintf("X-LXD-gid: %lld", o->gid >= 0 ? o->gid : (long long)st->st_gid);
	cleanup_free char *h_mode = xasprintf("X-LXD-mode: %04o", mode);
	const char *headers[] = { h_uid, h_gid, h_mode, fd >= 0 ? "X-LXD-type: file" : "X-LXD-type: directory",
				  "X-LXD-write: overwrite", NULL };
	if (client_upload(client, "POST", url, fd, headers, NULL, err) < 0)
		return error_wrap(err, "Failed to push %s", path);
	return 0;
}

/* Does path exist in the instance? */
static int remote_exists(struct client *client, const char *escaped_name, const char *path, bool *exists,
			 struct ferry_error **err)
{
	cleanup_free char *escaped_path = client_escape(path);
	cleanup_free char *url = xasprintf("/1.0/instances/%s/files?path=%s", escaped_name, escaped_path);
	cleanup_close int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	struct client_raw raw = { 0 };
	cleanup_error struct ferry_error *get_err = NULL;
	int r = client_download(client, url, devnull, &raw, &get_err);
	client_raw_clear(&raw);
	if (r == 0) {
		*exists = true;
		return 0;
	}
	if (get_err->status == 404) {
		*exists = false;
		return 0;
	}
	error_move(err, &get_err);
	return -1;
}

/* mkdir -p of path's parents in the instance. */
static int push_parents(struct client *client, const char *escaped_name, const char *path, const struct push_opts *o,
			struct ferry_error **err)
{
	cleanup_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return 0;
	*slash = '\0';
	bool exists = false;
	if (remote_exists(client, escaped_name, dir, &exists, err) < 0)
		return -1;
	if (exists)
		return 0;
	if (push_parents(client, escaped_name, dir, o, err) < 0)
		return -1;
	struct stat st = { .st_mode = S_IFDIR | 0755, .st_uid = 0, .st_gid = 0 };
	struct push_opts dir_opts = *o;
	dir_opts.mode = 0755;
	return push_entry(client, escaped_name, dir, -1, &st, &dir_opts, err);
}

static int push_path(struct client *client, const char *escaped_name, const char *local, const char *remote,
		     const struct push_opts *o, struct ferry_error **err)
{
	struct stat st;
	if (lstat(local, &st) < 0)
		return error_sys(err, errno, "%s", local);
	if (S_ISDIR(st.st_mode)) {
		if (!o->recursive)
			return error_set(err, 400, EISDIR, "%s is a directory (use -r to push directories)", local);
		if (push_entry(client, escaped_name, remote, -1, &st, o, err) < 0)
			return -1;
		DIR *d = opendir(local);
		if (d == NULL)
			return error_sys(err, errno, "%s", local);
		struct dirent *e;
		int r = 0;
		while (r == 0 && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			cleanup_free char *child_local = xasprintf("%s/%s", local, e->d_name);
			cleanup_free char *child_remote = xasprintf("%s/%s", remote, e->d_name);
			r = push_path(client, escaped_name, child_local, child_remote, o, err);
		}
		closedir(d);
		return r;
	}
	if (!S_ISREG(st.st_mode))
		return error_set(err, 400, EINVAL, "%s: only regular files and directories can be pushed", local);
	cleanup_close int fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_sys(err, errno, "%s", local);
	return push_entry(client, escaped_name, remote, fd, &st, o, err);
}

int file_push(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "file push",
		.usage = "<source path>... [<remote>:]<instance>/<path> [flags]",
		.summary = "Push files into instances",
		.help = "  -p, --create-dirs   Create any directories necessary\n"
			"      --gid           Set the file's gid on push\n"
			"      --mode          Set the file's perms on push (octal)\n"
			"  -r, --recursive     Recursively transfer files\n"
			"      --uid           Set the file's uid on push\n",
		.shortopts = "pr",
		.longopts = push_options,
	};
	struct push_opts o = { .uid = -1, .gid = -1, .mode = -1 };
	cleanup_error struct ferry_error *err = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'p':
			o.create_dirs = true;
			break;
		case 'r':
			o.recursive = true;
			break;
		case OPT_UID:
		case OPT_GID: {
			long long v;
			if (cli_parse_int(optarg, &v, &err) < 0 || v < 0)
				return cli_usage_error(&cmd, "Invalid %s: %s", c == OPT_UID ? "uid" : "gid", optarg);
			*(c == OPT_UID ? &o.uid : &o.gid) = v;
			break;
		}
		case OPT_MODE: {
			char *end = NULL;
			long m = strtol(optarg, &end, 8);
			if (*optarg == '\0' || *end != '\0' || m < 0 || m > 07777)
				return cli_usage_error(&cmd, "Invalid mode: %s (octal, e.g. 0644)", optarg);
			o.mode = (int)m;
			break;
		}
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 2, -1);
	if (rc != 0)
		return rc;
	struct target t cleanup_target = { 0 };
	cleanup_free char *path = NULL;
	if (target_parse_file(argv[argc - 1], &t, &path, &err) < 0)
		return cli_usage_error(&cmd, "%s", err->msg);
	struct client *client cleanup_client = NULL;
	if (client_open(t.remote, &client, &err) < 0)
		return cli_fail(err);
	cleanup_free char *escaped_name = client_escape(t.name);
	int nsources = argc - optind - 1;
	bool into_dir = nsources > 1 || path[strlen(path) - 1] == '/' || o.recursive;
	for (int i = optind; i < argc - 1; i++) {
		cleanup_free char *copy = xstrdup(argv[i]);
		size_t len = strlen(copy);
		while (len > 1 && copy[len - 1] == '/')
			copy[--len] = '\0';
		const char *base = basename(copy);
		cleanup_free char *remote = NULL;
		if (into_dir)
			remote = xasprintf("%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", base);
		else
			remote = xstrdup(path);
		if ((o.create_dirs && push_parents(client, escaped_name, remote, &o, &err) < 0) ||
		    push_path(client, escaped_name, argv[i], remote, &o, &err) < 0) {
			rc = cli_fail(err);
			error_free(&err);
		}
	}
	return rc;
}
