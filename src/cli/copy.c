/* ferry copy c1[/s1] c2: a local copy of an instance or of a snapshot
 * (LXD's POST /1.0/instances with {"source": {"type": "copy", "source":
 * "c1/s1"}}). The copy gets a fresh MAC and address and is stopped. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/instance.h"
#include "cli/snapshot.h"
#include "cli/target.h"
#include "common/util.h"

enum { OPT_INSTANCE_ONLY = 0x200, OPT_STATELESS, OPT_NO_PROFILES };

static const struct option copy_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "profile", required_argument, NULL, 'p' },
	{ "ephemeral", no_argument, NULL, 'e' },
	{ "instance-only", no_argument, NULL, OPT_INSTANCE_ONLY },
	{ "stateless", no_argument, NULL, OPT_STATELESS },
	{ "no-profiles", no_argument, NULL, OPT_NO_PROFILES },
	{ 0 },
};

int cmd_copy(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "copy",
		.usage = "[<remote>:]<source>[/<snapshot>] [<remote>:]<destination> [flags]",
		.summary = "Copy instances within or in between servers",
		.help = "  -c, --config          Config key/value to apply to the new instance\n"
			"  -e, --ephemeral       Ephemeral instance\n"
			"      --instance-only   Copy the instance without its snapshots\n"
			"      --no-profiles     Create the instance with no profiles applied\n"
			"  -p, --profile         Profile to apply to the new instance\n"
			"      --stateless       Copy a stateful instance stateless (always so: local copies are)\n",
		.shortopts = "c:p:e",
		.longopts = copy_options,
	};
	bool ephemeral = false, instance_only = false, no_profiles = false;
	json_t *config = json_object(), *profiles = json_array();
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		cleanup_error struct ferry_error *err = NULL;
		cleanup_free char *key = NULL, *value = NULL;
		switch (c) {
		case 'c':
			if (cli_parse_key_value(optarg, &key, &value, &err) < 0) {
				json_decref(config);
				json_decref(profiles);
				return cli_usage_error(&cmd, "%s", err->msg);
			}
			json_object_set_new(config, key, json_string(value));
			break;
		case 'p':
			json_array_append_new(profiles, json_string(optarg));
			break;
		case 'e':
			ephemeral = true;
			break;
		case OPT_INSTANCE_ONLY:
			instance_only = true;
			break;
		case OPT_NO_PROFILES:
			no_profiles = true;
			break;
		case OPT_STATELESS:
			break;
		case CLI_OPT_HELP:
			json_decref(config);
			json_decref(profiles);
			return EXIT_OK;
		default:
			json_decref(config);
			json_decref(profiles);
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 2, 2);
	if (rc != 0) {
		json_decref(config);
		json_decref(profiles);
		return rc;
	}
	cleanup_error struct ferry_error *err = NULL;
	struct target src cleanup_target = { 0 }, dst cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	int r = -1;
	if (target_parse(argv[optind], &src, &err) < 0 || target_parse(argv[optind + 1], &dst, &err) < 0)
		goto out;
	if (strcmp(src.remote, dst.remote) != 0) {
		error_set(&err, 400, 0, "Copies between servers aren't supported yet");
		goto out;
	}
	if (dst.name[0] == '\0' || strchr(dst.name, '/') != NULL) {
		error_bad_request(&err, "Invalid destination \"%s\": an instance name is needed", argv[optind + 1]);
		goto out;
	}
	if (client_open(src.remote, &client, &err) < 0)
		goto out;
	json_t *source = json_pack("{s:s,s:s,s:b}", "type", "copy", "source", src.name, "instance_only", instance_only);
	json_t *body = json_pack("{s:s,s:o,s:b}", "name", dst.name, "source", source, "ephemeral", ephemeral);
	if (json_object_size(config) > 0) {
		/* The source's own config, with the -c keys on top (lxc's way). */
		json_t *obj = NULL;
		char *slash = strchr(src.name, '/');
		if (slash != NULL) {
			cleanup_free char *inst = strndup(src.name, (size_t)(slash - src.name));
			r = snapshot_get(client, inst, slash + 1, &obj, &err);
		} else {
			r = instance_get(client, src.name, &obj, &err);
		}
		if (r < 0) {
			json_decref(body);
			goto out;
		}
		json_t *merged = json_object();
		const char *key;
		json_t *v;
		json_object_foreach(json_object_get(obj, "config"), key, v) {
			if (strncmp(key, "volatile.", 9) != 0)
				json_object_set(merged, key, v);
		}
		json_object_update(merged, config);
		json_object_set_new(body, "config", merged);
		json_decref(obj);
	}
	if (no_profiles)
		json_object_set_new(body, "profiles", json_array());
	else if (json_array_size(profiles) > 0)
		json_object_set(body, "profiles", profiles);
	r = client_run_operation(client, "POST", "/1.0/instances", body, NULL, NULL, &err);
	json_decref(body);
out:
	json_decref(config);
	json_decref(profiles);
	return r < 0 ? cli_fail(err) : EXIT_OK;
}
