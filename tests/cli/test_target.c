/* "[REMOTE:]NAME" parsing and instance names. */
#include <stdlib.h>

#include "../../src/cli/target.h"
#include "check.h"
#include "common/util.h"

int main(void)
{
	struct target t;
	struct ferry_error *err = NULL;
	/* No config.yml: only the implicit remote "local", the default. */
	setenv("FERRY_CONF", "/nonexistent/ferry-test-conf", 1);

	CHECK(target_parse("c1", &t, &err) == 0);
	CHECK_STR(t.remote, "local");
	CHECK_STR(t.name, "c1");
	target_clear(&t);

	CHECK(target_parse("local:c1", &t, &err) == 0);
	CHECK_STR(t.remote, "local");
	CHECK_STR(t.name, "c1");
	target_clear(&t);

	CHECK(target_parse("local:", &t, &err) == 0);
	CHECK_STR(t.name, "");
	target_clear(&t);

	CHECK(target_parse("", &t, &err) == 0);
	CHECK_STR(t.remote, "local");
	CHECK_STR(t.name, "");
	target_clear(&t);

	/* A remote config.yml doesn't know. */
	CHECK(target_parse("other:c1", &t, &err) < 0);
	CHECK(err != NULL && err->status == 404 && strstr(err->msg, "other") != NULL);
	error_free(&err);

	CHECK(target_parse(":c1", &t, &err) < 0);
	error_free(&err);

	/* A path with a ':' after a '/' is not a remote. */
	CHECK(target_parse("c1/etc/a:b", &t, &err) == 0);
	CHECK_STR(t.remote, "local");
	CHECK_STR(t.name, "c1/etc/a:b");
	target_clear(&t);

	char *path = NULL;
	CHECK(target_parse_file("c1/etc/hostname", &t, &path, &err) == 0);
	CHECK_STR(t.name, "c1");
	CHECK_STR(path, "/etc/hostname");
	target_clear(&t);
	free(path);
	path = NULL;

	CHECK(target_parse_file("local:c1//x", &t, &path, &err) == 0);
	CHECK_STR(t.name, "c1");
	CHECK_STR(path, "//x");
	target_clear(&t);
	free(path);
	path = NULL;

	CHECK(target_parse_file("c1", &t, &path, &err) < 0);
	error_free(&err);
	CHECK(target_parse_file("/etc", &t, &path, &err) < 0);
	error_free(&err);

	CHECK(instance_name_valid("c1"));
	CHECK(instance_name_valid("web-01"));
	CHECK(!instance_name_valid(""));
	CHECK(!instance_name_valid("1abc"));
	CHECK(!instance_name_valid("-abc"));
	CHECK(!instance_name_valid("abc-"));
	CHECK(!instance_name_valid("a.b"));
	CHECK(!instance_name_valid("a_b"));
	CHECK(!instance_name_valid("a/b"));
	CHECK(instance_name_valid("a23456789012345678901234567890123456789012345678901234567890123"));
	CHECK(!instance_name_valid("a234567890123456789012345678901234567890123456789012345678901234"));
	return CHECK_DONE();
}
