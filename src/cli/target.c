/* Parsing of "[REMOTE:]NAME" arguments. */
#include "cli/target.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/remotes.h"
#include "common/util.h"

static bool remote_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

int target_parse(const char *arg, struct target *out, struct ferry_error **err)
{
	*out = (struct target){ 0 };
	const char *colon = strchr(arg, ':');
	bool has_remote = colon != NULL && colon != arg;
	for (const char *p = arg; has_remote && p < colon; p++)
		if (!remote_name_char(*p))
			has_remote = false;
	if (!has_remote) {
		if (colon == arg)
			return error_bad_request(err, "Invalid remote in \"%s\": empty remote name", arg);
		out->remote = remotes_default_name();
		out->name = xstrdup(arg);
		return 0;
	}
	out->remote = strndup(arg, colon - arg);
	out->name = xstrdup(colon + 1);
	if (out->remote == NULL)
		abort();
	cleanup_free char *addr = NULL;
	if (remotes_address(out->remote, &addr, err) < 0) {
		target_clear(out);
		return -1;
	}
	return 0;
}

void target_clear(struct target *t)
{
	free(t->remote);
	free(t->name);
	t->remote = t->name = NULL;
}

bool instance_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 63)
		return false;
	if (isdigit((unsigned char)name[0]) || name[0] == '-' || name[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-')
			return false;
	return true;
}

int target_parse_file(const char *arg, struct target *out, char **path, struct ferry_error **err)
{
	if (target_parse(arg, out, err) < 0)
		return -1;
	char *slash = strchr(out->name, '/');
	if (slash == NULL || slash == out->name) {
		target_clear(out);
		return error_bad_request(err, "Invalid target \"%s\": expected INSTANCE/path", arg);
	}
	*path = xstrdup(slash);
	*slash = '\0';
	return 0;
}
