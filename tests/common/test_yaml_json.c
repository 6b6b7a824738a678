/* common/yaml_json.c: the YAML users edit (config edit, profile edit) read
 * into the API's JSON with the line of each key, errors naming line and
 * key, and JSON written back as YAML that reads back the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/yaml_json.h"

static int failures;

#define expect(cond)                                                                     \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                      \
		}                                                                        \
	} while (0)

static json_t *edit(const char *text, enum yaml_edit_kind kind, json_t **lines, char **error)
{
	json_t *out = NULL;
	struct ferry_error *err = NULL;
	*error = NULL;
	if (yaml_edit_document(text, strlen(text), kind, &out, lines, &err) < 0) {
		*error = xstrdup(err->msg);
		expect(err->status == 400);
		error_free(&err);
		return NULL;
	}
	return out;
}

static bool error_is(const char *text, enum yaml_edit_kind kind, const char *expected)
{
	cleanup_free char *error = NULL;
	json_t *out = edit(text, kind, NULL, &error);
	json_decref(out);
	if (error == NULL || strcmp(error, expected) != 0) {
		fprintf(stderr, "for:\n%s\nexpected error: %s\ngot:            %s\n", text, expected,
			error ? error : "(none)");
		return false;
	}
	return true;
}

static void test_profile_document(void)
{
	const char *text =
		"config:\n"                         /* 1 */
		"  limits.cpu: 2\n"                 /* 2 */
		"  limits.memory: 256MiB\n"         /* 3 */
		"  boot.autostart: yes\n"           /* 4 */
		"  user.empty:\n"                   /* 5 */
		"  user.quoted: \"007\"\n"          /* 6 */
		"description: Migratable containers\n" /* 7 */
		"devices:\n"                        /* 8 */
		"  data:\n"                         /* 9 */
		"    path: /mnt/data\n"             /* 10 */
		"    readonly: true\n"              /* 11 */
		"    source: /srv/data\n"           /* 12 */
		"    type: disk\n"                  /* 13 */
		"name: migratable\n"                /* 14: read-only, dropped */
		"used_by: []\n";                    /* 15: read-only, dropped */
	json_t *lines = NULL;
	cleanup_free char *error = NULL;
	json_t *out = edit(text, YAML_EDIT_PROFILE, &lines, &error);
	expect(out != NULL);
	if (out == NULL)
		return;
	json_t *config = json_object_get(out, "config");
	/* Go's yaml gives a string field the scalar's text as written. */
	expect(strcmp(json_string_value(json_object_get(config, "limits.cpu")), "2") == 0);
	expect(strcmp(json_string_value(json_object_get(config, "boot.autostart")), "yes") == 0);
	expect(strcmp(json_string_value(json_object_get(config, "user.empty")), "") == 0);
	expect(strcmp(json_string_value(json_object_get(config, "user.quoted")), "007") == 0);
	expect(strcmp(json_string_value(json_object_get(out, "description")), "Migratable containers") == 0);
	json_t *data = json_object_get(json_object_get(out, "devices"), "data");
	expect(strcmp(json_string_value(json_object_get(data, "readonly")), "true") == 0);
	expect(json_object_get(out, "name") == NULL);
	expect(json_object_get(out, "used_by") == NULL);
	expect(json_integer_value(json_object_get(lines, "config.limits.memory")) == 3);
	expect(json_integer_value(json_object_get(lines, "devices.data")) == 9);
	expect(json_integer_value(json_object_get(lines, "devices.data.source")) == 12);

	/* A server error pointed at the key it names. */
	cleanup_free char *located = yaml_edit_locate_error(
		lines, "update profile \"migratable\": Device \"data\": disk needs an absolute \"source\" on the host");
	expect(located != NULL && strncmp(located, "line 12: devices.data.source: ", 30) == 0);
	cleanup_free char *located_config = yaml_edit_locate_error(
		lines, "Invalid value for \"limits.memory\": Invalid size \"256MiB\"");
	expect(located_config != NULL && strncmp(located_config, "line 3: config.limits.memory: ", 30) == 0);
	cleanup_free char *device_type = yaml_edit_locate_error(lines, "Device \"data\": unsupported device type \"x\"");
	expect(device_type != NULL && strncmp(device_type, "line 13: devices.data.type: ", 28) == 0);
	/* A key the document lacks: the device's own line. */
	cleanup_free char *device_only = yaml_edit_locate_error(lines, "Device \"data\": the root disk needs a \"pool\"");
	expect(device_only != NULL && strncmp(device_only, "line 9: devices.data: ", 22) == 0);
	cleanup_free char *nothing = yaml_edit_locate_error(lines, "The profile already exists");
	expect(nothing == NULL);
	json_decref(lines);
	json_decref(out);
}

static void test_instance_document(void)
{
	const char *text = "architecture: x86_64\n"
			   "config:\n"
			   "  volatile.eth0.hwaddr: 00:16:3e:aa:bb:cc\n"
			   "devices: {}\n"
			   "ephemeral: false\n"
			   "profiles:\n"
			   "- default\n"
			   "- migratable\n"
			   "stateful: false\n"
			   "description: \"\"\n"
			   "expanded_config: {}\n";
	cleanup_free char *error = NULL;
	json_t *out = edit(text, YAML_EDIT_INSTANCE, NULL, &error);
	expect(out != NULL);
	if (out == NULL)
		return;
	expect(json_is_false(json_object_get(out, "ephemeral")));
	expect(json_array_size(json_object_get(out, "profiles")) == 2);
	expect(strcmp(json_string_value(json_array_get(json_object_get(out, "profiles"), 1)), "migratable") == 0);
	expect(strcmp(json_string_value(json_object_get(json_object_get(out, "config"), "volatile.eth0.hwaddr")),
		      "00:16:3e:aa:bb:cc") == 0);
	expect(json_object_get(out, "expanded_config") == NULL);
	json_decref(out);

	/* Empty: everything cleared, as lxc does. */
	out = edit("", YAML_EDIT_INSTANCE, NULL, &error);
	expect(out != NULL && json_object_size(out) == 0);
	json_decref(out);
}

static void test_errors(void)
{
	expect(error_is("config:\n  limits.memory:\n    nested: map\n", YAML_EDIT_PROFILE,
			"line 3: config.limits.memory: expected a string, not a map"));
	expect(error_is("config:\n  a: b\ndevices:\n  eth0: nic\n", YAML_EDIT_PROFILE,
			"line 4: devices.eth0: expected a map of strings"));
	expect(error_is("devices:\n  eth0:\n    type: nic\n    ipv4.address: [1, 2]\n", YAML_EDIT_PROFILE,
			"line 4: devices.eth0.ipv4.address: expected a string, not a list"));
	expect(error_is("config: [a]\n", YAML_EDIT_PROFILE, "line 1: config: expected a map of strings"));
	expect(error_is("profiles: default\n", YAML_EDIT_INSTANCE, "line 1: profiles: expected a list of names"));
	expect(error_is("ephemeral: maybe\n", YAML_EDIT_INSTANCE, "line 1: ephemeral: expected true or false"));
	expect(error_is("config: {}\nbogus: 1\n", YAML_EDIT_PROFILE,
			"line 2: bogus: unknown field (expected config, devices, description)"));
	/* profiles belong to instances, not to profiles. */
	expect(error_is("profiles: [a]\n", YAML_EDIT_PROFILE,
			"line 1: profiles: unknown field (expected config, devices, description)"));
	expect(error_is("config:\n  a: 1\n  a: 2\n", YAML_EDIT_PROFILE,
			"line 3: config.a: duplicate key (first on line 2)"));
	expect(error_is("- a\n- b\n", YAML_EDIT_PROFILE, "line 1: expected a map (config:, devices:, ...)"));
	/* Broken YAML: libyaml's reason, with its line. */
	cleanup_free char *error = NULL;
	json_t *out = edit("config:\n  a: b\n c: d\n", YAML_EDIT_PROFILE, NULL, &error);
	expect(out == NULL && error != NULL && strncmp(error, "line 3: invalid YAML: ", 22) == 0);
}

static void test_generic_and_round_trip(void)
{
	const char *text = "a: 1\nb: true\nc: ~\nd: \"2\"\ne: [x, y]\nf: {g: h}\n";
	json_t *out = NULL, *lines = NULL;
	struct ferry_error *err = NULL;
	expect(yaml_to_json(text, strlen(text), &out, &lines, &err) == 0);
	if (out == NULL)
		return;
	expect(json_integer_value(json_object_get(out, "a")) == 1);
	expect(json_is_true(json_object_get(out, "b")));
	expect(json_is_null(json_object_get(out, "c")));
	expect(strcmp(json_string_value(json_object_get(out, "d")), "2") == 0);
	expect(json_integer_value(json_object_get(lines, "f.g")) == 6);
	json_decref(lines);

	/* Back to YAML and in again: the same JSON. Strings that YAML would
	 * read as something else are quoted. */
	json_t *profile = json_pack("{s:{s:s, s:s, s:s}, s:s, s:{s:{s:s, s:s}}, s:s, s:[]}", "config", "limits.cpu",
				    "2", "boot.autostart", "true", "user.note", "", "description", "x: y",
				    "devices", "eth0", "type", "nic", "network", "ferrybr0", "name", "p", "used_by");
	cleanup_free char *yaml = json_to_yaml(profile);
	expect(strstr(yaml, "limits.cpu: \"2\"\n") != NULL);
	expect(strstr(yaml, "boot.autostart: \"true\"\n") != NULL);
	expect(strstr(yaml, "used_by: []\n") != NULL);
	/* Keys sorted: config, description, devices, name, used_by (Go's order for a profile). */
	expect(strstr(yaml, "config:") < strstr(yaml, "description:") &&
	       strstr(yaml, "devices:") < strstr(yaml, "name:"));
	json_t *back = NULL;
	expect(yaml_to_json(yaml, strlen(yaml), &back, NULL, &err) == 0);
	expect(json_equal(back, profile));
	if (!json_equal(back, profile))
		fprintf(stderr, "round trip:\n%s\n", yaml);
	json_decref(back);
	json_decref(profile);
	json_decref(out);
	json_t *empty_object = json_object();
	cleanup_free char *empty = json_to_yaml(empty_object);
	json_decref(empty_object);
	expect(strcmp(empty, "{}\n") == 0);
}

int main(void)
{
	test_profile_document();
	test_instance_document();
	test_errors();
	test_generic_and_round_trip();
	if (failures > 0) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
