/* Paths as tarballs spell them, reduced to one safe form. */
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "image/image_internal.h"

char *image_path_normalize(const char *path)
{
	if (path == NULL || path[0] == '/')
		return NULL;
	size_t len = strlen(path);
	char *out = xcalloc(len + 1, 1);
	size_t n = 0;
	const char *p = path;
	while (*p != '\0') {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t part = end - p;
		if (part == 0)
			break;
		if (part == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			return NULL;
		}
		if (!(part == 1 && p[0] == '.')) {
			if (n > 0)
				out[n++] = '/';
			memcpy(out + n, p, part);
			n += part;
		}
		p = end;
	}
	out[n] = '\0';
	return out;
}

const char *image_path_under(const char *path, const char *top)
{
	size_t len = strlen(top);
	if (strncmp(path, top, len) != 0)
		return NULL;
	if (path[len] == '\0')
		return path + len;
	if (path[len] == '/')
		return path + len + 1;
	return NULL;
}
