/* `ferry list` columns (-c) and filters on an instance as ferryd returns it. */
#include <stdlib.h>

#include "../../src/cli/columns.h"
#include "check.h"

static const char instance_json[] =
	"{\"name\": \"web\", \"status\": \"Running\", \"type\": \"container\", \"ephemeral\": false,"
	" \"architecture\": \"x86_64\", \"profiles\": [\"default\"], \"description\": \"\","
	" \"config\": {\"volatile.base_image\": \"a93fd44fc27be3cca0e44c061710697246b6ce54\", \"user.role\": \"frontend\","
	"   \"limits.memory\": \"100MiB\"},"
	" \"expanded_devices\": {\"eth0\": {\"type\": \"nic\", \"parent\": \"ferrybr0\"}},"
	" \"snapshots\": [{\"name\": \"s1\"}, {\"name\": \"s2\"}],"
	" \"state\": {\"pid\": 4242, \"processes\": 3, \"memory\": {\"usage\": 10485760},"
	"   \"network\": {\"lo\": {\"addresses\": [{\"family\": \"inet\", \"address\": \"127.0.0.1\", \"scope\": \"local\"}]},"
	"     \"eth0\": {\"addresses\": [{\"family\": \"inet\", \"address\": \"10.0.0.2\", \"scope\": \"global\"},"
	"       {\"family\": \"inet\", \"address\": \"10.0.0.9\", \"scope\": \"global\"},"
	"       {\"family\": \"inet6\", \"address\": \"fe80::1\", \"scope\": \"link\"},"
	"       {\"family\": \"inet6\", \"address\": \"fd42::2\", \"scope\": \"global\"}]}}}}";

static char *value(const char *spec, const json_t *inst)
{
	struct list_column *cols = NULL;
	size_t n = 0;
	struct ferry_error *err = NULL;
	if (list_columns_parse(spec, &cols, &n, &err) < 0 || n != 1) {
		error_free(&err);
		list_columns_free(cols, n);
		return NULL;
	}
	char *v = list_column_value(&cols[0], inst);
	list_columns_free(cols, n);
	return v;
}

int main(void)
{
	struct list_column *cols = NULL;
	size_t n = 0;
	struct ferry_error *err = NULL;

	CHECK(list_columns_parse(LIST_DEFAULT_COLUMNS, &cols, &n, &err) == 0 && n == 6);
	const char *headers[] = { "NAME", "STATE", "IPV4", "IPV6", "TYPE", "SNAPSHOTS" };
	for (size_t i = 0; i < n && i < 6; i++)
		CHECK_STR(cols[i].header, headers[i]);
	CHECK(!cols[0].needs_state && cols[2].needs_state);
	list_columns_free(cols, n);

	CHECK(list_columns_parse("n,s,volatile.eth0.hwaddr:MAC,devices:eth0.parent:ETHP:3", &cols, &n, &err) == 0 && n == 4);
	CHECK_STR(cols[2].header, "MAC");
	CHECK_STR(cols[2].key, "volatile.eth0.hwaddr");
	CHECK(!cols[2].device);
	CHECK(cols[3].device && cols[3].max_width == 3);
	CHECK_STR(cols[3].key, "eth0.parent");
	list_columns_free(cols, n);

	CHECK(list_columns_parse("nX", &cols, &n, &err) < 0 && err != NULL);
	error_free(&err);
	CHECK(list_columns_parse("", &cols, &n, &err) < 0);
	error_free(&err);
	CHECK(list_columns_parse("config:", &cols, &n, &err) < 0);
	error_free(&err);

	json_error_t jerr;
	json_t *inst = json_loads(instance_json, 0, &jerr);
	CHECK(inst != NULL);
	char *v;
	CHECK_STR(v = value("n", inst), "web"); free(v);
	CHECK_STR(v = value("s", inst), "RUNNING"); free(v);
	/* lxc's order: addresses sorted descending, one per line, lo and link-local left out. */
	CHECK_STR(v = value("4", inst), "10.0.0.9 (eth0)\n10.0.0.2 (eth0)"); free(v);
	CHECK_STR(v = value("6", inst), "fd42::2 (eth0)"); free(v);
	CHECK_STR(v = value("t", inst), "CONTAINER"); free(v);
	CHECK_STR(v = value("S", inst), "2"); free(v);
	CHECK_STR(v = value("p", inst), "4242"); free(v);
	CHECK_STR(v = value("N", inst), "3"); free(v);
	CHECK_STR(v = value("m", inst), "10.00MiB"); free(v);
	CHECK_STR(v = value("M", inst), "10.00%"); free(v);
	CHECK_STR(v = value("P", inst), "default"); free(v);
	CHECK_STR(v = value("f", inst), "a93fd44fc27b"); free(v);
	CHECK_STR(v = value("user.role", inst), "frontend"); free(v);
	CHECK_STR(v = value("user.role:ROLE:0", inst), "fron"); free(v);
	CHECK_STR(v = value("devices:eth0.parent", inst), "ferrybr0"); free(v);
	CHECK_STR(v = value("user.missing", inst), ""); free(v);

	json_object_set_new(inst, "ephemeral", json_true());
	CHECK_STR(v = value("t", inst), "CONTAINER (EPHEMERAL)"); free(v);

	CHECK(list_filter_match("we", inst));
	CHECK(list_filter_match("w.b", inst));
	CHECK(!list_filter_match("db", inst));
	CHECK(list_filter_match("status=running", inst));
	CHECK(list_filter_match("status=stopped,running", inst));
	CHECK(!list_filter_match("status=stopped", inst));
	CHECK(list_filter_match("type=container", inst));
	CHECK(list_filter_match("user.role=frontend", inst));
	CHECK(list_filter_match("u.role=front.*", inst));
	CHECK(!list_filter_match("user.role=backend", inst));
	json_decref(inst);

	char *d = format_date("");
	CHECK_STR(d, "");
	free(d);
	d = format_date("0001-01-01T00:00:00Z");
	CHECK_STR(d, "");
	free(d);
	setenv("TZ", "UTC", 1);
	d = format_date("2026-11-22T10:15:00.123456789Z");
	CHECK_STR(d, "2026/11/22 10:15 UTC");
	free(d);
	d = format_date("2026-11-22T12:15:00+02:00");
	CHECK_STR(d, "2026/11/22 10:15 UTC");
	free(d);
	return CHECK_DONE();
}
