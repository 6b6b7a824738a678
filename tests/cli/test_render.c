/* Output formats: lxc's boxed table, compact, CSV (Go's quoting), JSON, YAML. */
#include <stdlib.h>

#include "../../src/cli/render.h"
#include "check.h"

static void test_table(void)
{
	static const char *const header[] = { "NAME", "STATE", "IPV4" };
	struct table *t = table_new(3, header);
	const char *r1[] = { "web", "RUNNING", "10.0.0.2 (eth0)\n10.0.1.2 (eth1)" };
	const char *r2[] = { "db", "STOPPED", "" };
	table_add_row(t, r1);
	table_add_row(t, r2);
	table_sort(t);
	char *out = table_render(t, FORMAT_TABLE);
	CHECK_STR(out, "+------+---------+-----------------+\n"
		       "| NAME |  STATE  |      IPV4       |\n"
		       "+------+---------+-----------------+\n"
		       "| db   | STOPPED |                 |\n"
		       "+------+---------+-----------------+\n"
		       "| web  | RUNNING | 10.0.0.2 (eth0) |\n"
		       "|      |         | 10.0.1.2 (eth1) |\n"
		       "+------+---------+-----------------+\n");
	free(out);
	out = table_render(t, FORMAT_CSV);
	CHECK_STR(out, "db,STOPPED,\n"
		       "web,RUNNING,\"10.0.0.2 (eth0)\n10.0.1.2 (eth1)\"\n");
	free(out);
	out = table_render(t, FORMAT_COMPACT);
	CHECK_STR(out, "  NAME    STATE         IPV4       \n"
		       "  db     STOPPED                   \n"
		       "  web    RUNNING   10.0.0.2 (eth0) \n"
		       "                   10.0.1.2 (eth1) \n");
	free(out);
	table_free(t);

	/* An empty listing still shows its header, as lxc does. */
	t = table_new(2, header);
	out = table_render(t, FORMAT_TABLE);
	CHECK_STR(out, "+------+-------+\n| NAME | STATE |\n+------+-------+\n");
	free(out);
	out = table_render(t, FORMAT_CSV);
	CHECK_STR(out, "");
	free(out);
	table_free(t);

	/* Widths count characters, not bytes; CSV quotes commas and quotes. */
	static const char *const h2[] = { "A", "B" };
	t = table_new(2, h2);
	const char *r3[] = { "h\xc3\xa9", "say \"hi\", then go" };
	table_add_row(t, r3);
	out = table_render(t, FORMAT_TABLE);
	CHECK_STR(out, "+----+-------------------+\n"
		       "| A  |         B         |\n"
		       "+----+-------------------+\n"
		       "| h\xc3\xa9 | say \"hi\", then go |\n"
		       "+----+-------------------+\n");
	free(out);
	out = table_render(t, FORMAT_CSV);
	CHECK_STR(out, "h\xc3\xa9,\"say \"\"hi\"\", then go\"\n");
	free(out);
	table_free(t);
}

static void test_formats(void)
{
	enum output_format f;
	struct ferry_error *err = NULL;
	CHECK(output_format_parse("json", &f, &err) == 0 && f == FORMAT_JSON);
	CHECK(output_format_parse("yaml", &f, &err) == 0 && f == FORMAT_YAML);
	CHECK(output_format_parse("csv", &f, &err) == 0 && f == FORMAT_CSV);
	CHECK(output_format_parse("table", &f, &err) == 0 && f == FORMAT_TABLE);
	CHECK(output_format_parse("compact", &f, &err) == 0 && f == FORMAT_COMPACT);
	CHECK(output_format_parse("xml", &f, &err) < 0 && err != NULL);
	error_free(&err);
}

static void test_json(void)
{
	json_t *v = json_pack("[{s:s, s:i}]", "name", "c1", "pid", 42);
	char *out = json_render(v);
	CHECK_STR(out, "[{\"name\":\"c1\",\"pid\":42}]\n");
	free(out);
	json_decref(v);
}

static void test_yaml(void)
{
	struct ferry_error *err = NULL;
	json_t *v = json_pack("{s:s, s:{s:s, s:s, s:s}, s:{}, s:b, s:[s], s:s, s:i, s:n}", "architecture", "x86_64",
			      "config", "limits.cpu", "2", "user.note", "two\nlines", "user.flag", "true", "devices",
			      "ephemeral", 0, "profiles", "default", "description", "", "size", 1024, "expires");
	char *out = NULL;
	CHECK(yaml_render(v, &out, &err) == 0);
	CHECK_STR(out, "architecture: x86_64\n"
		       "config:\n"
		       "  limits.cpu: \"2\"\n"
		       "  user.note: |-\n"
		       "    two\n"
		       "    lines\n"
		       "  user.flag: \"true\"\n"
		       "devices: {}\n"
		       "ephemeral: false\n"
		       "profiles:\n"
		       "- default\n"
		       "description: \"\"\n"
		       "size: 1024\n"
		       "expires: null\n");
	/* And back: the same document. */
	json_t *back = NULL;
	CHECK(yaml_parse(out, strlen(out), &back, &err) == 0);
	CHECK(back != NULL && json_equal(v, back));
	free(out);
	json_decref(back);
	json_decref(v);

	/* Plain scalars get their YAML types; quoted ones stay strings. */
	const char *doc = "# a comment\nconfig:\n  limits.memory: 256MiB\n  limits.cpu: 2\n  q: '2'\nephemeral: true\n"
			  "profiles: [default, extra]\n";
	CHECK(yaml_parse(doc, strlen(doc), &back, &err) == 0);
	json_t *config = json_object_get(back, "config");
	CHECK_STR(json_string_value(json_object_get(config, "limits.memory")), "256MiB");
	CHECK(json_integer_value(json_object_get(config, "limits.cpu")) == 2);
	CHECK_STR(json_string_value(json_object_get(config, "q")), "2");
	CHECK(json_is_true(json_object_get(back, "ephemeral")));
	CHECK(json_array_size(json_object_get(back, "profiles")) == 2);
	json_decref(back);

	CHECK(yaml_parse("", 0, &back, &err) == 0 && json_is_object(back) && json_object_size(back) == 0);
	json_decref(back);
	CHECK(yaml_parse("a: [1, 2\n", 9, &back, &err) < 0 && err != NULL);
	error_free(&err);
	/* Parsing is the shared common/yaml_json.c's: aliases resolve, errors name the line. */
	CHECK(yaml_parse("a: &x 1\nb: *x\n", 14, &back, &err) == 0 && json_integer_value(json_object_get(back, "b")) == 1);
	json_decref(back);
	CHECK(yaml_parse("a: 1\nb: [1, 2\n", 15, &back, &err) < 0 && err != NULL && strstr(err->msg, "line ") != NULL);
	error_free(&err);
}

int main(void)
{
	test_table();
	test_formats();
	test_json();
	test_yaml();
	return CHECK_DONE();
}
