/* Editing YAML documents: see edit.h. */
#include "cli/edit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/util.h"

int edit_read_stdin(char **out, size_t *len, struct ferry_error **err)
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
		ssize_t n = read(STDIN_FILENO, buf + size, cap - size - 1);
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
	cleanup_free char *command = xasprintf("%s '%s'", editor_command(), path);
	int status = system(command);
	if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return error_set(err, 0, 0, "The editor (%s) failed", editor_command());
	return 0;
}

/* Parse, apply, and point a refusal at the line of the key it names. */
static int apply_text(const char *text, size_t len, edit_parse_fn parse, edit_apply_fn apply, void *ctx,
		      struct ferry_error **err)
{
	json_t *body = NULL, *lines = NULL;
	if (parse(text, len, &body, &lines, err) < 0)
		return -1;
	int r = apply(body, ctx, err);
	if (r < 0 && *err != NULL) {
		char *located = yaml_edit_locate_error(lines, (*err)->msg);
		if (located != NULL) {
			free((*err)->msg);
			(*err)->msg = located;
		}
	}
	json_decref(body);
	json_decref(lines);
	return r;
}

int edit_parse_instance(const char *text, size_t len, json_t **body, json_t **lines, struct ferry_error **err)
{
	return yaml_edit_document(text, len, YAML_EDIT_INSTANCE, body, lines, err);
}

int edit_parse_profile(const char *text, size_t len, json_t **body, json_t **lines, struct ferry_error **err)
{
	return yaml_edit_document(text, len, YAML_EDIT_PROFILE, body, lines, err);
}

int edit_document(const char *intro, const char *yaml, edit_parse_fn parse, edit_apply_fn apply, void *ctx,
		  struct ferry_error **err)
{
	if (!isatty(STDIN_FILENO)) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		if (edit_read_stdin(&text, &len, err) < 0)
			return -1;
		return apply_text(text, len, parse, apply, ctx, err);
	}
	char path[] = "/tmp/ferry_editor_XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	if (fd < 0)
		return error_sys(err, errno, "Failed to create a temporary file");
	FILE *f = fdopen(fd, "w");
	if (f == NULL) {
		close(fd);
		unlink(path);
		return error_sys(err, errno, "Failed to write a temporary file");
	}
	fputs(intro, f);
	fputs(yaml, f);
	fclose(f);
	int r;
	for (;;) {
		cleanup_free char *text = NULL;
		size_t len = 0;
		if ((r = run_editor(path, err)) < 0 || (r = file_read(path, &text, &len, err)) < 0)
			break;
		cleanup_error struct ferry_error *apply_err = NULL;
		if (apply_text(text, len, parse, apply, ctx, &apply_err) == 0) {
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

static void print_keys(const char *instance, const json_t *keys)
{
	if (!json_is_array(keys) || json_array_size(keys) == 0)
		return;
	printf("Applies at the next start of %s:", instance);
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k)
		printf("%s %s", i ? "," : "", json_string_value(k) ? json_string_value(k) : "?");
	printf("\n");
}

void edit_print_next_start(const char *instance, const json_t *keys)
{
	if (cli_quiet)
		return;
	if (json_is_array(keys)) {
		print_keys(instance ? instance : "the instance", keys);
		return;
	}
	const char *name;
	json_t *list;
	json_object_foreach((json_t *)keys, name, list)
		print_keys(name, list);
}

void edit_report_next_start(const char *instance, const json_t *metadata)
{
	edit_print_next_start(instance, json_object_get(metadata, "applies_at_next_start"));
}
