/* ferry config edit [NAME]: YAML in $EDITOR (or from stdin when it is not
 * a terminal, for scripts), then PUT back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/render.h"
#include "cli/target.h"
#include "common/util.h"

static int read_all(int fd, char **out, size_t *len, struct ferry_error **err)
{
	char *buf = NULL;
	size_t size = 0, cap = 0;
	for (;;) {
		if (size + 4096 + 1 > cap) {
			cap = (size + 4096 + 1) * 2;
			char *b = realloc(buf, cap);
			if (b == NULL)
				abort();
			buf = b;
		}
		ssize_t n = read(fd, buf + size, cap - size - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return error_sys(err, errno, "Failed to read the new configuration");
		}
		if (n == 0)
			break;
		size += n;
	}
	buf[size] = '\0';
	*out = buf;
	*len = size;
	return 0;
}

/* Config and device values are strings in the API; YAML may have read them as numbers or booleans. */
static void stringify_values(json_t *obj)
{
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(obj, tmp, key, v) {
		if (json_is_string(v) || json_is_object(v))
			continue;
		if (json_is_null(v))
			json_object_set_new(obj, key, json_string(""));
		else if (json_is_boolean(v))
			json_object_set_new(obj, key, json_string(json_is_true(v) ? "true" : "false"));
		else {
			char *s = json_dumps(v, JSON_ENCODE_ANY);
			json_object_set_new(obj, key, json_string(s ? s : ""));
			free(s);
		}
	}
}

static int apply_yaml(struct client *client, const char *instance, const char *text, size_t len,
		      struct ferry_error **err)
{
	json_t *doc = NULL;
	if (yaml_parse(text, len, &doc, err) < 0)
		return -1;
	if (!json_is_object(doc)) {
		json_decref(doc);
		return error_bad_request(err, "The configuration must be a YAML mapping");
	}
	json_t *config = json_object_get(doc, "config");
	if (config != NULL && json_is_null(config))
		json_object_set_new(doc, "config", config = json_object());
	if (json_is_object(config))
		stringify_values(config);
	const char *dev;
	json_t *d;
	json_object_foreach(json_object_get(doc, "devices"), dev, d)
		if (json_is_object(d))
			stringify_values(d);
	int r = config_put(client, instance, doc, err);
	json_decref(doc);
	return r;
}

static const char *editor_command(void)
{
	const char *e = getenv("VISUAL");
	if (e == NULL || *e == '\0')
		e = getenv("EDITOR");
	if (e == NULL || *e == '\0')
		e = access("/usr/bin/editor", X_OK) == 0 ? "editor" : "vi";
	return e;
}

static int run_editor(const char *path, struct ferry_error **err)
{
	cleanup_free char *quoted = xasprintf("%s '%s'", editor_command(), path);
	int status = system(quoted);
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return error_set(err, 0, 0, "The editor (%s) failed", editor_command());
	return 0;
}

static int edit_interactively(struct client *client, const char *instance, struct ferry_error **err)
{
	json_t *w = NULL;
	if (config_fetch(client, instance, false, &w, err) < 0)
		return -1;
	cleanup_free char *yaml = NULL;
	int r = yaml_render(w, &yaml, err);
	json_decref(w);
	if (r < 0)
		return -1;
	char path[] = "/tmp/ferry_editor_XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	if (fd < 0)
		return error_sys(err, errno, "Failed to create a temporary file");
	const char *intro = instance ? "### This is a YAML representation of the configuration.\n"
				       "### Any line starting with a '# will be ignored.\n###\n"
				     : "### This is a YAML representation of the server configuration.\n"
				       "### Any line starting with a '# will be ignored.\n###\n";
	FILE *f = fdopen(fd, "w");
	fputs(intro, f);
	fputs(yaml, f);
	fclose(f);
	for (;;) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		if ((r = run_editor(path, err)) < 0 || (r = file_read(path, &text, &len, err)) < 0)
			break;
		cleanup_error struct ferry_error *apply_err = NULL;
		if (apply_yaml(client, instance, text, len, &apply_err) == 0) {
			r = 0;
			break;
		}
		fprintf(stderr, "Config parsing error: %s\n", apply_err->msg);
		if (!cli_confirm("Press enter to open the editor again or ctrl+c to abort change (yes to retry) ")) {
			error_move(err, &apply_err);
			r = -1;
			break;
		}
	}
	unlink(path);
	return r;
}

int config_edit(int argc, char **argv)
{
	const struct cli_command cmd = {
		.name = "config edit",
		.usage = "[<remote>:][<instance>] [flags]",
		.summary = "Edit instance or server configurations as YAML (read from stdin when it is not a terminal)",
	};
	int c;
	while ((c = cli_next_option(&cmd, argc, argv)) != -1)
		return c == CLI_OPT_HELP ? EXIT_OK : EXIT_USAGE;
	int rc = cli_check_args(&cmd, argc - optind, 0, 1);
	if (rc != 0)
		return rc;
	cleanup_error struct ferry_error *err = NULL;
	struct target t cleanup_target = { 0 };
	struct client *client cleanup_client = NULL;
	if (target_parse(optind < argc ? argv[optind] : "", &t, &err) < 0 || client_open(t.remote, &client, &err) < 0)
		return cli_fail(err);
	const char *instance = *t.name ? t.name : NULL;
	if (!isatty(STDIN_FILENO)) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		if (read_all(STDIN_FILENO, &text, &len, &err) < 0 || apply_yaml(client, instance, text, len, &err) < 0)
			return cli_fail(err);
		return EXIT_OK;
	}
	return edit_interactively(client, instance, &err) < 0 ? cli_fail(err) : EXIT_OK;
}
