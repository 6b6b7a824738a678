/* Device verbs shared by profiles and instances (devices.h): each fetches
 * the owner, edits its "devices" and stores it back whole, as lxc does. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/devices.h"
#include "cli/target.h"
#include "common/util.h"
#include "common/yaml_json.h"

/* The owner of the verb being run (one per process). */
static const struct device_owner *owner;

/* The owner named by arg ("[<remote>:]<name>"), writable, with a
 * "devices" object. */
static int owner_fetch(const char *arg, struct target *t, struct client **client, json_t **w, struct ferry_error **err)
{
	if (target_parse(arg, t, err) < 0 || client_open(t->remote, client, err) < 0 ||
	    owner->fetch(*client, t->name, w, err) < 0)
		return -1;
	if (!json_is_object(json_object_get(*w, "devices")))
		json_object_set_new(*w, "devices", json_object());
	return 0;
}

/* Fetch the owner named by arg, let change() edit its devices, store it. */
static int devices_update(const char *arg, int (*change)(json_t *devices, char **args, int nargs, struct ferry_error **err),
			  char **args, int nargs, struct ferry_error **err)
{
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *w = NULL;
	if (owner_fetch(arg, &t, &client, &w, err) < 0)
		return -1;
	int r = change(json_object_get(w, "devices"), args, nargs, err);
	if (r == 0)
		r = owner->store(client, t.name, w, err);
	json_decref(w);
	return r;
}

/* args: DEVICE TYPE [KEY=VALUE...] */
static int add_change(json_t *devices, char **args, int nargs, struct ferry_error **err)
{
	if (json_object_get(devices, args[0]) != NULL)
		return error_set(err, 409, 0, "The device already exists");
	json_t *dev = json_pack("{s:s}", "type", args[1]);
	for (int i = 2; i < nargs; i++) {
		cleanup_free char *key = NULL, *value = NULL;
		if (cli_parse_key_value(args[i], &key, &value, err) < 0) {
			json_decref(dev);
			return -1;
		}
		json_object_set_new(dev, key, json_string(value));
	}
	json_object_set_new(devices, args[0], dev);
	return 0;
}

static int remove_change(json_t *devices, char **args, int nargs, struct ferry_error **err)
{
	for (int i = 0; i < nargs; i++) {
		if (json_object_get(devices, args[i]) == NULL)
			return error_set(err, 404, 0, "Device %s doesn't exist", args[i]);
		json_object_del(devices, args[i]);
	}
	return 0;
}

static int device_add(int argc, char **argv)
{
	cleanup_free char *name = xasprintf("%s add", owner->group);
	cleanup_free char *usage = xasprintf("[<remote>:]<%s> <device> <type> [key=value...] [flags]", owner->noun);
	cleanup_free char *summary = xasprintf("Add devices to %ss", owner->noun);
	const struct cli_command cmd = { .name = name, .usage = usage, .summary = summary };
	int rc = cli_no_options(&cmd, argc, argv, 3, -1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	if (devices_update(argv[optind], add_change, argv + optind + 1, argc - optind - 1, &err) < 0)
		return cli_fail(err);
	if (!cli_quiet)
		printf("Device %s added to %s\n", argv[optind + 1], argv[optind]);
	return EXIT_OK;
}

static int device_remove(int argc, char **argv)
{
	cleanup_free char *name = xasprintf("%s remove", owner->group);
	cleanup_free char *usage = xasprintf("[<remote>:]<%s> <device>... [flags]", owner->noun);
	cleanup_free char *summary = xasprintf("Remove devices from %ss", owner->noun);
	const struct cli_command cmd = { .name = name, .usage = usage, .summary = summary };
	int rc = cli_no_options(&cmd, argc, argv, 2, -1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	if (devices_update(argv[optind], remove_change, argv + optind + 1, argc - optind - 1, &err) < 0)
		return cli_fail(err);
	if (!cli_quiet)
		printf("Device %s removed from %s\n", argv[optind + 1], argv[optind]);
	return EXIT_OK;
}

static int device_list_or_show(int argc, char **argv, bool show)
{
	cleanup_free char *name = xasprintf("%s %s", owner->group, show ? "show" : "list");
	cleanup_free char *usage = xasprintf("[<remote>:]<%s> [flags]", owner->noun);
	cleanup_free char *summary = show ? xstrdup("Show full device configuration") : xasprintf("List %s devices", owner->noun);
	const struct cli_command cmd = { .name = name, .usage = usage, .summary = summary };
	int rc = cli_no_options(&cmd, argc, argv, 1, 1);
	if (rc >= 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	json_t *w = NULL;
	if (owner_fetch(argv[optind], &t, &client, &w, &err) < 0)
		return cli_fail(err);
	json_t *devices = json_object_get(w, "devices");
	if (show) {
		cleanup_free char *yaml = json_to_yaml(devices);
		fputs(yaml, stdout);
	} else {
		const char *dev;
		json_t *d;
		json_object_foreach(devices, dev, d)
			printf("%s\n", dev);
	}
	json_decref(w);
	return EXIT_OK;
}

static int device_list(int argc, char **argv)
{
	return device_list_or_show(argc, argv, false);
}

static int device_show(int argc, char **argv)
{
	return device_list_or_show(argc, argv, true);
}

int cli_devices(const struct device_owner *o, int argc, char **argv)
{
	owner = o;
	cleanup_free char *add = xasprintf("Add devices to %ss", o->noun);
	cleanup_free char *list = xasprintf("List %s devices", o->noun);
	cleanup_free char *remove = xasprintf("Remove devices from %ss", o->noun);
	const struct cli_subcommand subs[] = {
		{ "add", NULL, add, device_add },
		{ "list", "ls", list, device_list },
		{ "remove", "rm", remove, device_remove },
		{ "show", NULL, "Show full device configuration", device_show },
		{ NULL },
	};
	return cli_run_subcommand(o->group, subs, argc, argv);
}
