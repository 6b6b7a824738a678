/* ferry move: rename on one server (LXD's POST /1.0/instances/NAME
 * {"name": NEW}), or move to another server: a pull migration to the
 * target, then the source is deleted once the target has the instance
 * (copy_remote). A running instance moves live (its processes, memory,
 * open files and connections go on running there), or with --stateless
 * (stopped here, booted there). A stopped instance moves cold, with the
 * state a stateful stop saved (its start there restores it) unless
 * --stateless. `ferry move c1/s1 c1/s2` renames a
 * snapshot; `ferry rename` is this verb too, as in lxc. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/copy.h"
#include "cli/snapshot.h"
#include "cli/target.h"
#include "common/util.h"

enum { OPT_STATELESS = 0x200, OPT_MEMORY };

static const struct option move_options[] = {
	{ "stateless", no_argument, NULL, OPT_STATELESS },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ 0 },
};

int cmd_move(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "move",
		.usage = "[<remote>:]<instance> [<remote>:][<instance>] [flags]",
		.summary = "Move instances within or in between servers",
		.help = "      --stateless       Move a running instance by stopping it here and starting it there;\n"
			"                        a stopped one without the state a stateful stop saved\n"
			"      --memory MODE     How a live move takes the memory along: stop-and-copy (all of it\n"
			"                        while the instance is stopped) or post-copy (it runs there at once,\n"
			"                        its memory follows as it is used) or auto (post-copy from 32 MiB\n"
			"                        of memory in use); default: the instance's migration.memory (auto)\n",
		.shortopts = "",
		.longopts = move_options,
	};
	bool stateless = false;
	const char *memory = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		if (c == OPT_STATELESS) {
			stateless = true;
		} else if (c == OPT_MEMORY) {
			if (strcmp(optarg, "stop-and-copy") != 0 && strcmp(optarg, "post-copy") != 0 &&
			    strcmp(optarg, "auto") != 0) {
				fprintf(stderr, "Error: --memory %s: unknown mode (auto, stop-and-copy or post-copy)\n",
					optarg);
				return EXIT_USAGE;
			}
			memory = optarg;
		} else
			return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	}
	int rc = cli_check_args(&cmd, argc - optind, 2, 2);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target src cleanup_target = { 0 }, dst cleanup_target = { 0 };
	int r = -1;
	if (target_parse(argv[optind], &src, &err) < 0 || target_parse(argv[optind + 1], &dst, &err) < 0)
		goto out;
	const char *src_slash = strchr(src.name, '/'), *dst_slash = strchr(dst.name, '/');
	if (src_slash != NULL) {
		/* lxc move c1/s1 c1/s2: a snapshot renamed within its instance. */
		size_t n = (size_t)(src_slash - src.name);
		if (strcmp(src.remote, dst.remote) != 0 || dst_slash == NULL || (size_t)(dst_slash - dst.name) != n ||
		    strncmp(src.name, dst.name, n) != 0 || dst_slash[1] == '\0') {
			error_bad_request(&err, "A snapshot can only be renamed within its instance "
						"(ferry move c1/s1 c1/s2)");
			goto out;
		}
		struct client *client cleanup_client = NULL;
		if (client_open(src.remote, &client, &err) < 0)
			goto out;
		cleanup_free char *instance = strndup(src.name, n);
		cleanup_free char *path = snapshot_api_path(instance, src_slash + 1);
		json_t *body = json_pack("{s:s}", "name", dst_slash + 1);
		r = client_run_operation(client, "POST", path, body, NULL, NULL, &err);
		json_decref(body);
		goto out;
	}
	if (src.name[0] == '\0' || dst_slash != NULL) {
		error_bad_request(&err, "Moving snapshots isn't supported: name an instance (or rename a snapshot: "
					"ferry move c1/s1 c1/s2)");
		goto out;
	}
	const char *new_name = dst.name[0] ? dst.name : src.name;
	if (strcmp(src.remote, dst.remote) == 0) {
		if (strcmp(new_name, src.name) == 0) {
			error_bad_request(&err, "Source and target are the same instance");
			goto out;
		}
		struct client *client cleanup_client = NULL;
		if (client_open(src.remote, &client, &err) < 0)
			goto out;
		cleanup_free char *path = xasprintf("/1.0/instances/%s", src.name);
		json_t *body = json_pack("{s:s}", "name", new_name);
		r = client_run_operation(client, "POST", path, body, NULL, NULL, &err);
		json_decref(body);
		goto out;
	}
	struct copy_remote_args args = {
		.src_remote = src.remote, .src_name = src.name,
		.dst_remote = dst.remote, .dst_name = new_name,
		.move = true, .stateless = stateless, .memory = memory,
	};
	r = copy_remote(&args, &err);
out:
	return r < 0 ? cli_fail(err) : EXIT_OK;
}
