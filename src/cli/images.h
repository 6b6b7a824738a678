/* Image requests the image verbs share (client side of /1.0/images). */
#pragma once

#include "cli/client.h"
#include "common/error.h"

/* An alias or a fingerprint (or a unique prefix of one) to the full fingerprint. */
int image_resolve(struct client *c, const char *ref, char **fingerprint, struct ferry_error **err);
/* Point each alias at fingerprint, replacing an alias of that name if it
 * points elsewhere (as lxc image import --alias does). */
int image_set_aliases(struct client *c, const char *fingerprint, char *const *aliases, size_t n,
		      struct ferry_error **err);
