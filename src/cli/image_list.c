/* ferry image list [FILTER...]: the images, as lxc lists them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/image_verbs.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"

static const struct option list_options[] = {
	{ "format", required_argument, NULL, 'f' },
	{ "columns", required_argument, NULL, 'c' },
	{ 0 },
};

/* "Jan 2, 2006 at 3:04pm (UTC)", local time, as lxc shows upload dates. */
static char *upload_date(const char *rfc3339)
{
	struct tm tm = { 0 };
	if (rfc3339 == NULL || strptime(rfc3339, "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
		return xstrdup("");
	time_t t = timegm(&tm);
	struct tm local;
	localtime_r(&t, &local);
	char date[64], clock[16], zone[16];
	strftime(date, sizeof(date), "%b %-d, %Y", &local);
	strftime(clock, sizeof(clock), "%-I:%M%p", &local);
	strftime(zone, sizeof(zone), "%Z", &local);
	for (char *p = clock; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	return xasprintf("%s at %s (%s)", date, clock, zone);
}

/* The shortest alias, and how many more there are. */
static char *alias_cell(const json_t *aliases)
{
	const char *shortest = NULL;
	size_t i;
	json_t *a;
	json_array_foreach(aliases, i, a) {
		const char *name = json_string_value(json_object_get(a, "name"));
		if (name != NULL && (shortest == NULL || strlen(name) < strlen(shortest)))
			shortest = name;
	}
	if (shortest == NULL)
		return xstrdup("");
	if (json_array_size(aliases) > 1)
		return xasprintf("%s (%zu more)", shortest, json_array_size(aliases) - 1);
	return xstrdup(shortest);
}

static bool image_matches(const json_t *image, const char *filter)
{
	const char *fp = json_string_value(json_object_get(image, "fingerprint"));
	if (fp != NULL && strncmp(fp, filter, strlen(filter)) == 0)
		return true;
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(image, "aliases"), i, a) {
		const char *name = json_string_value(json_object_get(a, "name"));
		if (name != NULL && strncmp(name, filter, strlen(filter)) == 0)
			return true;
	}
	return false;
}

int image_list(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "image list",
		.usage = "[<remote>:] [<filter>...] [flags]",
		.summary = "List images",
		.help = "  -f, --format   Format (csv|json|table|yaml|compact) (default \"table\")\n",
		.shortopts = "f:c:",
		.longopts = list_options,
	};
	enum output_format format = FORMAT_TABLE;
	cleanup_error struct ferry_error *err = NULL;
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1) {
		switch (c) {
		case 'f':
			if (output_format_parse(optarg, &format, &err) < 0)
				return cli_usage_error(&cmd, "%s", err->msg);
			break;
		case 'c':
			break; /* the default columns only, for now */
		case CLI_OPT_HELP:
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	struct target t cleanup_target = { 0 };
	int first_filter = optind;
	const char *remote = NULL;
	if (optind < argc && *argv[optind] && argv[optind][strlen(argv[optind]) - 1] == ':') {
		if (target_parse(argv[optind], &t, &err) < 0)
			return cli_fail(err);
		remote = t.remote;
		first_filter++;
	}
	struct client *client cleanup_client = NULL;
	json_t *images = NULL;
	if (client_open(remote, &client, &err) < 0 ||
	    client_query(client, "GET", "/1.0/images?recursion=1", NULL, &images, &err) < 0)
		return cli_fail(err);

	static const char *const header[] = { "ALIAS", "FINGERPRINT", "PUBLIC", "DESCRIPTION",
					      "ARCHITECTURE", "TYPE", "SIZE", "UPLOAD DATE" };
	struct table *table cleanup_table = table_new(8, header);
	json_t *shown = json_array();
	size_t i;
	json_t *img;
	json_array_foreach(images, i, img) {
		bool match = first_filter >= argc;
		for (int k = first_filter; k < argc && !match; k++)
			match = image_matches(img, argv[k]);
		if (!match)
			continue;
		json_array_append(shown, img);
		const char *fp = json_string_value(json_object_get(img, "fingerprint"));
		const char *type = json_string_value(json_object_get(img, "type"));
		cleanup_free char *alias = alias_cell(json_object_get(img, "aliases"));
		cleanup_free char *short_fp = fp ? strndup(fp, 12) : xstrdup("");
		cleanup_free char *type_up = xstrdup(type && *type ? type : "container");
		for (char *p = type_up; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		cleanup_free char *size = xasprintf("%.2fMB", (double)json_integer_value(json_object_get(img, "size")) / 1024.0 / 1024.0);
		cleanup_free char *date = upload_date(json_string_value(json_object_get(img, "uploaded_at")));
		const char *cells[] = {
			alias,
			short_fp,
			json_is_true(json_object_get(img, "public")) ? "yes" : "no",
			json_string_value(json_object_get(json_object_get(img, "properties"), "description")),
			json_string_value(json_object_get(img, "architecture")),
			type_up,
			size,
			date,
		};
		table_add_row(table, cells);
	}
	table_sort(table);
	int rc = render_listing(table, shown, format, &err) < 0 ? cli_fail(err) : EXIT_OK;
	json_decref(shown);
	json_decref(images);
	return rc;
}
