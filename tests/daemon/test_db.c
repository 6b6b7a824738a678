/* db.c on a temporary file: instances, images, aliases, config, and the
 * statuses the API passes on (404 missing, 409 taken). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/db.h"

static int failures;

#define expect(cond)                                                                     \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                      \
		}                                                                        \
	} while (0)

static struct db_instance instance(const char *name)
{
	struct db_instance inst = {
		.name = (char *)name,
		.type = "container",
		.architecture = "x86_64",
		.description = "a test",
		.created_at = "2026-11-22T10:15:00Z",
		.config = json_pack("{s:s}", "limits.memory", "64MiB"),
		.devices = json_pack("{s:{s:s, s:s}}", "eth0", "type", "nic", "network", "ferrybr0"),
		.profiles = json_pack("[s]", "default"),
	};
	return inst;
}

static void instance_free_json(struct db_instance *inst)
{
	json_decref(inst->config);
	json_decref(inst->devices);
	json_decref(inst->profiles);
}

static void test_instances(struct db *db)
{
	struct ferry_error *err = NULL;
	struct db_instance c1 = instance("c1"), c2 = instance("c2");
	expect(db_instance_create(db, &c1, &err) == 0);
	expect(db_instance_create(db, &c2, &err) == 0);
	expect(db_instance_create(db, &c1, &err) < 0 && err->status == 409);
	error_free(&err);

	struct db_instance got = { 0 };
	expect(db_instance_get(db, "c1", &got, &err) == 0);
	expect(strcmp(got.description, "a test") == 0);
	expect(strcmp(json_string_value(json_object_get(got.config, "limits.memory")), "64MiB") == 0);
	expect(json_equal(got.devices, c1.devices));
	expect(json_array_size(got.profiles) == 1);
	expect(!got.ephemeral && !got.stateful);

	got.stateful = true;
	json_object_set_new(got.config, "volatile.eth0.hwaddr", json_string("00:16:3e:00:00:01"));
	expect(db_instance_update(db, &got, &err) == 0);
	db_instance_clear(&got);
	expect(db_instance_get(db, "c1", &got, &err) == 0);
	expect(got.stateful);
	expect(json_object_get(got.config, "volatile.eth0.hwaddr") != NULL);
	db_instance_clear(&got);

	json_t *names = NULL;
	expect(db_instance_list(db, &names, &err) == 0);
	expect(json_array_size(names) == 2 && strcmp(json_string_value(json_array_get(names, 0)), "c1") == 0);
	json_decref(names);

	expect(db_instance_rename(db, "c1", "c2", &err) < 0 && err->status == 409);
	error_free(&err);
	expect(db_instance_rename(db, "nope", "c3", &err) < 0 && err->status == 404);
	error_free(&err);
	expect(db_instance_rename(db, "c1", "c3", &err) == 0);
	expect(db_instance_get(db, "c1", &got, &err) < 0 && err->status == 404);
	error_free(&err);
	expect(db_instance_get(db, "c3", &got, &err) == 0);
	db_instance_clear(&got);

	expect(db_instance_delete(db, "c3", &err) == 0);
	expect(db_instance_delete(db, "c3", &err) < 0 && err->status == 404);
	error_free(&err);
	struct db_instance missing = instance("ghost");
	expect(db_instance_update(db, &missing, &err) < 0 && err->status == 404);
	error_free(&err);
	instance_free_json(&missing);
	instance_free_json(&c1);
	instance_free_json(&c2);
}

static void test_images(struct db *db)
{
	struct ferry_error *err = NULL;
	const char *fp1 = "aaaa111111111111111111111111111111111111111111111111111111111111";
	const char *fp2 = "aaaa222222222222222222222222222222222222222222222222222222222222";
	struct db_image img = { .fingerprint = (char *)fp1, .filename = "busybox.tar.gz", .size = 1234,
				.architecture = "x86_64", .properties = json_pack("{s:s}", "os", "busybox") };
	expect(db_image_create(db, &img, &err) == 0);
	expect(db_image_create(db, &img, &err) < 0 && err->status == 409);
	error_free(&err);
	img.fingerprint = (char *)fp2;
	expect(db_image_create(db, &img, &err) == 0);
	json_decref(img.properties);

	struct db_image got = { 0 };
	expect(db_image_get(db, "aaaa1", &got, &err) == 0 && strcmp(got.fingerprint, fp1) == 0);
	expect(got.size == 1234 && strcmp(json_string_value(json_object_get(got.properties, "os")), "busybox") == 0);
	got.public = true;
	expect(db_image_update(db, &got, &err) == 0);
	db_image_clear(&got);
	expect(db_image_get(db, fp1, &got, &err) == 0 && got.public);
	db_image_clear(&got);
	expect(db_image_get(db, "aaaa", &got, &err) < 0 && err->status == 400); /* ambiguous */
	error_free(&err);
	expect(db_image_get(db, "bbbb", &got, &err) < 0 && err->status == 404);
	error_free(&err);
	expect(db_image_get(db, "a%", &got, &err) < 0 && err->status == 404); /* not a LIKE pattern */
	error_free(&err);

	expect(db_alias_create(db, "busybox", fp1, "the small one", &err) == 0);
	expect(db_alias_create(db, "busybox", fp2, "", &err) < 0 && err->status == 409);
	error_free(&err);
	expect(db_alias_create(db, "orphan", "ffff", "", &err) < 0 && err->status == 404);
	error_free(&err);
	char *target = NULL, *description = NULL;
	expect(db_alias_get(db, "busybox", &target, &description, &err) == 0);
	expect(strcmp(target, fp1) == 0 && strcmp(description, "the small one") == 0);
	free(target);
	free(description);
	expect(db_alias_update(db, "busybox", fp2, "moved", &err) == 0);
	json_t *aliases = NULL;
	expect(db_alias_list_for(db, fp2, &aliases, &err) == 0 && json_array_size(aliases) == 1);
	json_decref(aliases);
	expect(db_alias_rename(db, "busybox", "bb", &err) == 0);
	expect(db_alias_get(db, "busybox", NULL, NULL, &err) < 0 && err->status == 404);
	error_free(&err);
	/* Deleting an image takes its aliases with it. */
	expect(db_image_delete(db, fp2, &err) == 0);
	expect(db_alias_get(db, "bb", NULL, NULL, &err) < 0 && err->status == 404);
	error_free(&err);
	json_t *names = NULL;
	expect(db_image_list(db, &names, &err) == 0 && json_array_size(names) == 1);
	json_decref(names);
}

static void test_config(struct db *db)
{
	struct ferry_error *err = NULL;
	expect(db_config_set(db, "core.https_address", "127.0.0.1:8443", &err) == 0);
	expect(db_config_set(db, "core.https_address", "[::]:8443", &err) == 0);
	json_t *config = NULL;
	expect(db_config_get_all(db, &config, &err) == 0);
	expect(strcmp(json_string_value(json_object_get(config, "core.https_address")), "[::]:8443") == 0);
	json_decref(config);
	expect(db_config_set(db, "core.https_address", NULL, &err) == 0);
	expect(db_config_get_all(db, &config, &err) == 0 && json_object_size(config) == 0);
	json_decref(config);
}

int main(void)
{
	char dir[] = "/tmp/ferry-test-db.XXXXXX";
	assert(mkdtemp(dir) != NULL);
	char *path = xasprintf("%s/ferry.db", dir);
	struct ferry_error *err = NULL;
	struct db *db = NULL;
	if (db_open(path, &db, &err) < 0) {
		fprintf(stderr, "db_open: %s\n", err->msg);
		return 1;
	}
	test_instances(db);
	test_images(db);
	test_config(db);
	db_close(db);
	/* Reopening an existing database keeps its data and schema. */
	expect(db_open(path, &db, &err) == 0);
	json_t *names = NULL;
	expect(db && db_image_list(db, &names, &err) == 0 && json_array_size(names) == 1);
	json_decref(names);
	db_close(db);
	error_free(&err);
	rm_rf(dir, NULL);
	free(path);
	if (failures == 0)
		printf("ok - db\n");
	return failures == 0 ? 0 : 1;
}
