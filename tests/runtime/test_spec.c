/* runtime_spec JSON round trip and validation. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "runtime/runtime.h"

static void test_round_trip(void)
{
	struct runtime_nic nic = { .name = "eth0", .bridge = "ferrybr0", .hwaddr = "00:16:3e:00:00:01",
				   .ipv4_cidr = "10.0.0.2/24", .ipv4_gateway = "10.0.0.1", .mtu = 1400 };
	struct runtime_mount mnt = { .source = "/srv", .target = "/mnt/srv", .readonly = true };
	char *env[] = { "A=1", "B=two", NULL };
	struct runtime_spec spec = { .name = "c1", .dir = "/var/lib/ferry/containers/c1",
				     .rootfs = "/var/lib/ferry/containers/c1/rootfs", .log_dir = "/var/log/ferry/c1",
				     .cgroup = "ferry-1/c1", .idmap_hostid = 1000000, .idmap_range = 65536,
				     .limits_memory = 1 << 28, .limits_cpu = "0", .limits_processes = 100,
				     .environment = env, .nics = &nic, .n_nics = 1, .mounts = &mnt, .n_mounts = 1 };
	cleanup_free char *json = runtime_spec_to_json(&spec);
	struct runtime_spec *back = NULL;
	struct ferry_error *err = NULL;
	assert(runtime_spec_from_json(json, &back, &err) == 0);
	assert(strcmp(back->name, "c1") == 0);
	assert(back->init == NULL);
	assert(back->idmap_hostid == 1000000 && back->idmap_range == 65536);
	assert(back->limits_memory == 1 << 28 && back->limits_processes == 100);
	assert(strcmp(back->limits_cpu, "0") == 0);
	assert(strv_len(back->environment) == 2 && strcmp(back->environment[1], "B=two") == 0);
	assert(back->n_nics == 1 && back->nics[0].mtu == 1400 && back->nics[0].host_name == NULL);
	assert(strcmp(back->nics[0].ipv4_gateway, "10.0.0.1") == 0);
	assert(back->n_mounts == 1 && back->mounts[0].readonly);
	cleanup_free char *again = runtime_spec_to_json(back);
	assert(strcmp(json, again) == 0);
	runtime_spec_free(back);
}

static void expect_invalid(const char *json, const char *needle)
{
	struct runtime_spec *spec = NULL;
	struct ferry_error *err = NULL;
	assert(runtime_spec_from_json(json, &spec, &err) < 0);
	assert(spec == NULL);
	if (strstr(err->msg, needle) == NULL) {
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err->msg, needle);
		abort();
	}
	assert(err->status == 400);
	error_free(&err);
}

static void test_invalid(void)
{
	expect_invalid("{", "invalid spec JSON");
	expect_invalid("[]", "must be a JSON object");
	expect_invalid("{\"dir\":\"/d\",\"rootfs\":\"/r\",\"cgroup\":\"x/c\"}", "missing \"name\"");
	expect_invalid("{\"name\":\"c\",\"dir\":\"/d\",\"rootfs\":\"/r\",\"cgroup\":\"../x\",\"idmap_range\":1}",
		       "cgroup");
	expect_invalid("{\"name\":\"c\",\"dir\":\"/d\",\"rootfs\":\"/r\",\"cgroup\":\"x/c\"}", "idmap range");
	expect_invalid("{\"name\":\"c\",\"dir\":\"/d\",\"rootfs\":\"/r\",\"cgroup\":\"x/c\",\"privileged\":true,"
		       "\"mounts\":[{\"source\":\"/a\",\"target\":\"rel\"}]}",
		       "absolute");
	expect_invalid("{\"name\":\"c\",\"dir\":\"/d\",\"rootfs\":\"/r\",\"cgroup\":\"x/c\",\"privileged\":true,"
		       "\"limits_memory\":\"1G\"}",
		       "limits_memory");
}

int main(void)
{
	test_round_trip();
	test_invalid();
	printf("ok\n");
	return 0;
}
