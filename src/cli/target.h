/* "[REMOTE:]NAME" arguments, as lxc takes them ("c1", "local:c1",
 * "other:", "other:c1/path" for files). The remotes are those of
 * config.yml (remotes.h); without one, the default remote is meant. */
#pragma once

#include <stdbool.h>

#include "common/error.h"

struct target {
	char *remote; /* the default remote ("local" unless switched) when none was given */
	char *name;   /* "" when the argument was "REMOTE:" */
};

#define TARGET_DEFAULT_REMOTE "local"

/* Split arg at the first ':' when what precedes it is a remote's name
 * (letters, digits, '-', '_', '.'; not a path). 404 for a remote that
 * config.yml doesn't know. */
int target_parse(const char *arg, struct target *out, struct ferry_error **err);
void target_clear(struct target *t);
#define cleanup_target __attribute__((cleanup(target_clear)))

/* Instance names as LXD allows them: 1-63 characters of letters, digits and
 * '-', not starting with a digit or '-', not ending with '-'. */
bool instance_name_valid(const char *name);

/* "NAME/path/in/instance" (file push/pull targets): name and absolute path. */
int target_parse_file(const char *arg, struct target *out, char **path, struct ferry_error **err);
