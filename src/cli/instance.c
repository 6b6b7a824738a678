/* Instance requests shared by several verbs. */
#include "cli/instance.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/util.h"

int instance_create(struct client *c, const struct instance_create_args *args, struct ferry_error **err)
{
	json_t *source = json_pack("{s:s}", "type", "image");
	/* An alias if there is one of that name, else a fingerprint (or a prefix of one). */
	cleanup_free char *alias = client_escape(args->image);
	cleanup_free char *alias_path = xasprintf("/1.0/images/aliases/%s", alias);
	cleanup_error struct ferry_error *alias_err = NULL;
	if (client_query(c, "GET", alias_path, NULL, NULL, &alias_err) == 0)
		json_object_set_new(source, "alias", json_string(args->image));
	else
		json_object_set_new(source, "fingerprint", json_string(args->image));

	json_t *body = json_pack("{s:s, s:s, s:o, s:b}", "name", args->name, "type", "container", "source", source,
				 "ephemeral", args->ephemeral);
	if (args->config != NULL)
		json_object_set(body, "config", args->config);
	if (args->profiles != NULL)
		json_object_set(body, "profiles", args->profiles);
	int r = client_run_operation(c, "POST", "/1.0/instances", body, "Retrieving image: ", NULL, err);
	json_decref(body);
	if (r < 0)
		return error_wrap(err, "Failed creating instance \"%s\"", args->name);
	return 0;
}

int instance_action(struct client *c, const char *name, const char *action, bool force, int timeout,
		    bool stateful, struct ferry_error **err)
{
	cleanup_free char *escaped = client_escape(name);
	cleanup_free char *path = xasprintf("/1.0/instances/%s/state", escaped);
	json_t *body = json_pack("{s:s, s:i, s:b, s:b}", "action", action, "timeout", timeout, "force", force,
				 "stateful", stateful);
	int r = client_run_operation(c, "PUT", path, body, NULL, NULL, err);
	json_decref(body);
	return r;
}

int instance_get(struct client *c, const char *name, json_t **out, struct ferry_error **err)
{
	cleanup_free char *escaped = client_escape(name);
	cleanup_free char *path = xasprintf("/1.0/instances/%s", escaped);
	return client_query(c, "GET", path, NULL, out, err);
}

char *instance_random_name(void)
{
	static const char *const adjectives[] = {
		"able", "bold", "brave", "calm", "clever", "crisp", "eager", "fair", "fast", "fine",
		"glad", "grand", "happy", "keen", "kind", "lively", "lucky", "merry", "noble", "proud",
		"quick", "quiet", "rapid", "sharp", "smart", "steady", "sunny", "swift", "tidy", "witty",
	};
	static const char *const animals[] = {
		"badger", "beaver", "bison", "cobra", "crane", "eagle", "ferret", "finch", "fox", "gecko",
		"heron", "ibex", "jaguar", "koala", "lemur", "lynx", "marten", "mole", "newt", "otter",
		"panda", "puffin", "quail", "raven", "seal", "stork", "tapir", "viper", "walrus", "yak",
	};
	unsigned int r[2] = { 0, 0 };
	if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
		r[0] = (unsigned int)rand();
		r[1] = (unsigned int)rand();
	}
	return xasprintf("%s-%s", adjectives[r[0] % (sizeof(adjectives) / sizeof(adjectives[0]))],
			 animals[r[1] % (sizeof(animals) / sizeof(animals[0]))]);
}
