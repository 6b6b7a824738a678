/* ferry init IMAGE [NAME]: create an instance from a local image. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/instance.h"
#include "cli/target.h"
#include "common/util.h"

static const struct option init_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "profile", required_argument, NULL, 'p' },
	{ "ephemeral", no_argument, NULL, 'e' },
	{ "no-profiles", no_argument, NULL, 'n' },
	{ 0 },
};

static const char init_help[] =
	"  -c, --config       Config key/value to apply to the new instance\n"
	"  -e, --ephemeral    Ephemeral instance\n"
	"  -n, --no-profiles  Create the instance with no profiles applied\n"
	"  -p, --profile      Profile to apply to the new instance\n";

int cli_create_instance(int argc, char **argv, bool start)
{
	const struct cli_command cmd = {
		.name = start ? "launch" : "init",
		.usage = "[<remote>:]<image> [<remote>:][<name>] [flags]",
		.summary = start ? "Create and start instances from images" : "Create instances from images",
		.help = init_help,
		.shortopts = "c:p:en",
		.longopts = init_options,
	};
	json_t *config = json_object();
	json_t *profiles = json_array();
	bool ephemeral = false, no_profiles = false;
	int exit_code = EXIT_FAIL;
	cleanup_error struct ferry_error *err = NULL;
	cleanup_free char *name = NULL;
	struct target image cleanup_target = { 0 };
	struct target target cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'c': {
			cleanup_free char *key = NULL;
			cleanup_free char *value = NULL;
			if (cli_parse_key_value(optarg, &key, &value, &err) < 0) {
				exit_code = cli_usage_error(&cmd, "%s", err->msg);
				goto out;
			}
			json_object_set_new(config, key, json_string(value));
			break;
		}
		case 'p':
			json_array_append_new(profiles, json_string(optarg));
			break;
		case 'e':
			ephemeral = true;
			break;
		case 'n':
			no_profiles = true;
			break;
		case CLI_OPT_HELP:
			exit_code = EXIT_OK;
			goto out;
		default:
			exit_code = EXIT_USAGE;
			goto out;
		}
	}
	if ((exit_code = cli_check_args(&cmd, argc - optind, 1, 2)) != 0)
		goto out;
	exit_code = EXIT_FAIL;
	if (target_parse(argv[optind], &image, &err) < 0)
		goto fail;
	if (argc - optind == 2) {
		if (target_parse(argv[optind + 1], &target, &err) < 0)
			goto fail;
		name = xstrdup(target.name);
	}
	if (name == NULL || *name == '\0') {
		free(name);
		name = instance_random_name();
	}
	if (!instance_name_valid(name)) {
		exit_code = cli_usage_error(&cmd, "Invalid instance name \"%s\": use letters, digits and '-', "
						  "starting with a letter (at most 63 characters)", name);
		goto out;
	}
	/* The instance is made where its name says ("ferry launch busybox
	 * other:c1"), from an image of that server: images aren't copied
	 * between servers. */
	const char *remote = image.remote;
	if (argc - optind == 2) {
		if (strchr(argv[optind], ':') != NULL && strcmp(image.remote, target.remote) != 0) {
			error_set(&err, 400, 0, "The image must be on the instance's server (%s): copying images "
						"between remotes isn't supported",
				  target.remote);
			goto fail;
		}
		remote = target.remote;
	}
	if (client_open(remote, &client, &err) < 0)
		goto fail;
	if (!cli_quiet)
		printf("Creating %s\n", name);
	fflush(stdout);
	struct instance_create_args args = {
		.name = name,
		.image = image.name,
		.config = config,
		.profiles = no_profiles || json_array_size(profiles) ? profiles : NULL,
		.ephemeral = ephemeral,
	};
	if (instance_create(client, &args, &err) < 0)
		goto fail;
	if (start) {
		if (!cli_quiet)
			printf("Starting %s\n", name);
		fflush(stdout);
		if (instance_action(client, name, "start", false, -1, false, &err) < 0) {
			error_wrap(&err, "Failed to start instance \"%s\"", name);
			goto fail;
		}
	}
	exit_code = EXIT_OK;
	goto out;
fail:
	exit_code = cli_fail(err);
out:
	json_decref(config);
	json_decref(profiles);
	return exit_code;
}

int cmd_init(int argc, char **argv)
{
	return cli_create_instance(argc, argv, false);
}
