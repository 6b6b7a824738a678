/* Image lookups and aliases. */
#include "cli/images.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

int image_resolve(struct client *c, const char *ref, char **fingerprint, struct ferry_error **err)
{
	cleanup_free char *escaped = client_escape(ref);
	cleanup_free char *alias_path = xasprintf("/1.0/images/aliases/%s", escaped);
	json_t *alias = NULL;
	cleanup_error struct ferry_error *alias_err = NULL;
	if (client_query(c, "GET", alias_path, NULL, &alias, &alias_err) == 0) {
		const char *target = json_string_value(json_object_get(alias, "target"));
		if (target != NULL) {
			*fingerprint = xstrdup(target);
			json_decref(alias);
			return 0;
		}
		json_decref(alias);
	}
	cleanup_free char *image_path = xasprintf("/1.0/images/%s", escaped);
	json_t *image = NULL;
	if (client_query(c, "GET", image_path, NULL, &image, err) < 0) {
		if ((*err)->status == 404)
			return error_set(err, 404, ENOENT, "Image \"%s\" not found", ref);
		return -1;
	}
	const char *fp = json_string_value(json_object_get(image, "fingerprint"));
	*fingerprint = xstrdup(fp ? fp : ref);
	json_decref(image);
	return 0;
}

int image_set_aliases(struct client *c, const char *fingerprint, char *const *aliases, size_t n,
		      struct ferry_error **err)
{
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *escaped = client_escape(aliases[i]);
		cleanup_free char *path = xasprintf("/1.0/images/aliases/%s", escaped);
		json_t *existing = NULL;
		cleanup_error struct ferry_error *get_err = NULL;
		if (client_query(c, "GET", path, NULL, &existing, &get_err) == 0) {
			const char *target = json_string_value(json_object_get(existing, "target"));
			bool same = target != NULL && strcmp(target, fingerprint) == 0;
			json_decref(existing);
			if (same)
				continue;
			if (client_query(c, "DELETE", path, NULL, NULL, err) < 0)
				return error_wrap(err, "Failed to replace alias \"%s\"", aliases[i]);
		}
		json_t *body = json_pack("{s:s, s:s, s:s}", "name", aliases[i], "target", fingerprint, "description", "");
		int r = client_query(c, "POST", "/1.0/images/aliases", body, NULL, err);
		json_decref(body);
		if (r < 0)
			return error_wrap(err, "Failed to create alias \"%s\"", aliases[i]);
	}
	return 0;
}
