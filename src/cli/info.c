/* ferry info [NAME]: the server (as YAML) or one instance, as lxc shows them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/columns.h"
#include "cli/instance.h"
#include "cli/render.h"
#include "cli/target.h"
#include "cli/units.h"
#include "common/util.h"

enum { OPT_SHOW_LOG = 0x200, OPT_RESOURCES };

static const struct option info_options[] = {
	{ "show-log", no_argument, NULL, OPT_SHOW_LOG },
	{ "resources", no_argument, NULL, OPT_RESOURCES },
	{ 0 },
};

static int server_info(struct client *client, bool resources, struct ferry_error **err)
{
	json_t *server = NULL;
	if (client_query(client, "GET", resources ? "/1.0/resources" : "/1.0", NULL, &server, err) < 0)
		return -1;
	cleanup_free char *yaml = NULL;
	int r = yaml_render(server, &yaml, err);
	json_decref(server);
	if (r == 0)
		fputs(yaml, stdout);
	return r;
}

static json_int_t get_int(const json_t *obj, const char *a, const char *b)
{
	const json_t *v = json_object_get(obj, a);
	if (b != NULL)
		v = json_object_get(v, b);
	return json_integer_value(v);
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void print_network(const json_t *network)
{
	size_t n = json_object_size(network), k = 0;
	if (n == 0)
		return;
	const char **names = xcalloc(n, sizeof(char *));
	const char *name;
	json_t *iface;
	json_object_foreach((json_t *)network, name, iface)
		names[k++] = name;
	qsort(names, n, sizeof(char *), compare_keys);
	printf("  Network usage:\n");
	for (k = 0; k < n; k++) {
		iface = json_object_get(network, names[k]);
		const json_t *counters = json_object_get(iface, "counters");
		printf("    %s:\n", names[k]);
		const char *s;
		if ((s = json_string_value(json_object_get(iface, "type"))) && *s)
			printf("      Type: %s\n", s);
		if ((s = json_string_value(json_object_get(iface, "state"))) && *s) {
			cleanup_free char *up = xstrdup(s);
			for (char *p = up; *p; p++)
				*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
			printf("      State: %s\n", up);
		}
		if ((s = json_string_value(json_object_get(iface, "host_name"))) && *s)
			printf("      Host interface: %s\n", s);
		if ((s = json_string_value(json_object_get(iface, "hwaddr"))) && *s)
			printf("      MAC address: %s\n", s);
		if (get_int(iface, "mtu", NULL) > 0)
			printf("      MTU: %" JSON_INTEGER_FORMAT "\n", get_int(iface, "mtu", NULL));
		cleanup_free char *rx = size_format_si(get_int(counters, "bytes_received", NULL), 2);
		cleanup_free char *tx = size_format_si(get_int(counters, "bytes_sent", NULL), 2);
		printf("      Bytes received: %s\n      Bytes sent: %s\n", rx, tx);
		printf("      Packets received: %" JSON_INTEGER_FORMAT "\n      Packets sent: %" JSON_INTEGER_FORMAT "\n",
		       get_int(counters, "packets_received", NULL), get_int(counters, "packets_sent", NULL));
		json_t *addrs = json_object_get(iface, "addresses");
		if (json_array_size(addrs) > 0) {
			printf("      IP addresses:\n");
			size_t i;
			json_t *a;
			json_array_foreach(addrs, i, a) {
				const char *family = json_string_value(json_object_get(a, "family"));
				printf("        %s:%s %s/%s (%s)\n", family ? family : "", family && !strcmp(family, "inet") ? " " : "",
				       json_string_value(json_object_get(a, "address")) ?: "",
				       json_string_value(json_object_get(a, "netmask")) ?: "",
				       json_string_value(json_object_get(a, "scope")) ?: "");
			}
		}
	}
	free(names);
}

static void print_snapshots(struct client *client, const char *escaped)
{
	cleanup_free char *path = xasprintf("/1.0/instances/%s/snapshots?recursion=1", escaped);
	json_t *snaps = NULL;
	cleanup_error struct ferry_error *err = NULL;
	if (client_query(client, "GET", path, NULL, &snaps, &err) < 0 || json_array_size(snaps) == 0) {
		json_decref(snaps);
		return;
	}
	static const char *const header[] = { "NAME", "TAKEN AT", "EXPIRES AT", "STATEFUL" };
	struct table *table cleanup_table = table_new(4, header);
	size_t i;
	json_t *s;
	json_array_foreach(snaps, i, s) {
		const char *name = json_string_value(json_object_get(s, "name"));
		if (name == NULL && json_is_string(s))
			name = json_string_value(s); /* a server that answered with URLs */
		const char *slash = name ? strrchr(name, '/') : NULL;
		cleanup_free char *taken = format_date(json_string_value(json_object_get(s, "created_at")));
		cleanup_free char *expires = format_date(json_string_value(json_object_get(s, "expires_at")));
		const char *cells[] = { slash ? slash + 1 : name, taken, expires,
					json_is_true(json_object_get(s, "stateful")) ? "YES" : "NO" };
		table_add_row(table, cells);
	}
	cleanup_free char *out = table_render(table, FORMAT_TABLE);
	printf("\nSnapshots:\n%s", out);
	json_decref(snaps);
}

/* CRIU's logs: WHAT_dump_TIMESTAMP.log, WHAT_restore_TIMESTAMP.log. */
static bool is_criu_log(const char *base)
{
	return (strstr(base, "_dump_") != NULL || strstr(base, "_restore_") != NULL) &&
	       strlen(base) > 4 && strcmp(base + strlen(base) - 4, ".log") == 0;
}

/* The timestamp part, which sorts by time. */
static const char *criu_log_time(const char *base)
{
	const char *p = strstr(base, "_dump_");
	if (p != NULL)
		return p + 6;
	p = strstr(base, "_restore_");
	return p ? p + 9 : base;
}

/* The runtime's log ("lxc.log" as LXD names it, if there is one, else every
 * log that is not an exec's recorded output). */
static int show_log(struct client *client, const char *escaped, struct ferry_error **err)
{
	cleanup_free char *list_path = xasprintf("/1.0/instances/%s/logs", escaped);
	json_t *urls = NULL;
	if (client_query(client, "GET", list_path, NULL, &urls, err) < 0)
		return -1;
	bool has_lxc_log = false;
	size_t i;
	json_t *u;
	json_array_foreach(urls, i, u) {
		const char *url = json_string_value(u);
		const char *base = url && strrchr(url, '/') ? strrchr(url, '/') + 1 : url;
		has_lxc_log |= base != NULL && strcmp(base, "lxc.log") == 0;
	}
	const char *latest_criu = NULL;
	json_array_foreach(urls, i, u) {
		const char *url = json_string_value(u);
		const char *base = url && strrchr(url, '/') ? strrchr(url, '/') + 1 : url;
		if (base != NULL && is_criu_log(base) &&
		    (latest_criu == NULL || strcmp(criu_log_time(base), criu_log_time(latest_criu)) > 0))
			latest_criu = base;
	}
	printf("\nLog:\n\n");
	int r = 0;
	json_array_foreach(urls, i, u) {
		const char *url = json_string_value(u);
		const char *base = url && strrchr(url, '/') ? strrchr(url, '/') + 1 : url;
		if (base == NULL || (has_lxc_log && strcmp(base, "lxc.log") != 0) || strncmp(base, "exec", 4) == 0)
			continue;
		/* Of CRIU's logs (one per dump and restore), the latest only. */
		if (is_criu_log(base) && (latest_criu == NULL || strcmp(base, latest_criu) != 0))
			continue;
		if (!has_lxc_log)
			printf("==> %s <==\n", base);
		fflush(stdout);
		struct client_raw raw = { 0 };
		cleanup_free char *path = xasprintf("/1.0/instances/%s/logs/%s", escaped, base);
		r = client_download(client, path, STDOUT_FILENO, &raw, err);
		client_raw_clear(&raw);
		if (r < 0)
			break;
	}
	json_decref(urls);
	return r;
}

static int instance_info(struct client *client, const char *name, bool log, struct ferry_error **err)
{
	json_t *inst = NULL, *state = NULL;
	cleanup_free char *escaped = client_escape(name);
	cleanup_free char *state_path = xasprintf("/1.0/instances/%s/state", escaped);
	if (instance_get(client, name, &inst, err) < 0)
		return -1;
	if (client_query(client, "GET", state_path, NULL, &state, err) < 0) {
		json_decref(inst);
		return -1;
	}
	const char *status = json_string_value(json_object_get(inst, "status"));
	const char *type = json_string_value(json_object_get(inst, "type"));
	cleanup_free char *status_up = xstrdup(status ? status : "");
	for (char *p = status_up; *p; p++)
		*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	printf("Name: %s\n", json_string_value(json_object_get(inst, "name")));
	printf("Status: %s\n", status_up);
	printf("Type: %s%s\n", type && *type ? type : "container",
	       json_is_true(json_object_get(inst, "ephemeral")) ? " (ephemeral)" : "");
	printf("Architecture: %s\n", json_string_value(json_object_get(inst, "architecture")) ?: "");
	/* A stateful stop's saved state, which "ferry start" restores. */
	if (json_is_true(json_object_get(inst, "stateful")))
		printf("Stateful: true\n");
	json_int_t pid = get_int(state, "pid", NULL);
	if (pid > 0)
		printf("PID: %" JSON_INTEGER_FORMAT "\n", pid);
	cleanup_free char *created = format_date(json_string_value(json_object_get(inst, "created_at")));
	cleanup_free char *used = format_date(json_string_value(json_object_get(inst, "last_used_at")));
	if (*created)
		printf("Created: %s\n", created);
	if (*used)
		printf("Last Used: %s\n", used);

	if (pid > 0) {
		printf("\nResources:\n");
		printf("  Processes: %" JSON_INTEGER_FORMAT "\n", get_int(state, "processes", NULL));
		json_int_t disk = get_int(json_object_get(state, "disk"), "root", "usage");
		if (disk > 0) {
			cleanup_free char *d = size_format(disk, 2);
			printf("  Disk usage:\n    root: %s\n", d);
		}
		json_int_t cpu = get_int(state, "cpu", "usage");
		if (cpu > 0)
			printf("  CPU usage:\n    CPU usage (in seconds): %lld\n", (long long)(cpu / 1000000000));
		json_int_t mem = get_int(state, "memory", "usage"), peak = get_int(state, "memory", "usage_peak");
		if (mem > 0 || peak > 0) {
			printf("  Memory usage:\n");
			if (mem > 0) {
				cleanup_free char *m = size_format(mem, 2);
				printf("    Memory (current): %s\n", m);
			}
			if (peak > 0) {
				cleanup_free char *m = size_format(peak, 2);
				printf("    Memory (peak): %s\n", m);
			}
		}
		print_network(json_object_get(state, "network"));
	}
	print_snapshots(client, escaped);
	json_decref(inst);
	json_decref(state);
	if (log)
		return show_log(client, escaped, err);
	return 0;
}

int cmd_info(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "info",
		.usage = "[<remote>:][<instance>] [flags]",
		.summary = "Show instance or server information",
		.help = "      --resources   Show the resources available to the server\n"
			"      --show-log    Show the instance's last log lines\n",
		.longopts = info_options,
	};
	bool log = false, resources = false;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case OPT_SHOW_LOG:
			log = true;
			break;
		case OPT_RESOURCES:
			resources = true;
			break;
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	int rc = cli_check_args(&cmd, argc - optind, 0, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (target_parse(optind < argc ? argv[optind] : "", &t, &err) < 0 || client_open(t.remote, &client, &err) < 0)
		return cli_fail(err);
	if (*t.name == '\0') {
		if (log)
			return cli_usage_error(&cmd, "--show-log needs an instance");
		return server_info(client, resources, &err) < 0 ? cli_fail(err) : EXIT_OK;
	}
	return instance_info(client, t.name, log, &err) < 0 ? cli_fail(err) : EXIT_OK;
}
