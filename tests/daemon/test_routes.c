/* Route patterns: placeholders, literal segments, and which of two
 * matching patterns is more specific. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/server.h"

static int failures;

#define expect(cond)                                                                     \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                      \
		}                                                                        \
	} while (0)

static void params_free(char *params[4])
{
	for (int i = 0; i < 4; i++) {
		free(params[i]);
		params[i] = NULL;
	}
}

int main(void)
{
	char *p[4] = { 0 };
	expect(route_match("/", "/", p) >= 0);
	expect(route_match("/1.0", "/1.0", p) >= 0);
	expect(route_match("/1.0", "/1.0/instances", p) < 0);
	expect(route_match("/1.0/instances", "/1.0", p) < 0);
	expect(route_match("/1.0/instances/{name}", "/1.0/instances/c1", p) >= 0);
	expect(p[0] && strcmp(p[0], "c1") == 0 && p[1] == NULL);
	params_free(p);
	expect(route_match("/1.0/instances/{name}", "/1.0/instances/", p) < 0); /* empty segment */
	expect(route_match("/1.0/instances/{name}/snapshots/{snapshot}", "/1.0/instances/c1/snapshots/s1", p) >= 0);
	expect(p[0] && p[1] && strcmp(p[0], "c1") == 0 && strcmp(p[1], "s1") == 0);
	params_free(p);
	expect(route_match("/1.0/instances/{name}/state", "/1.0/instances/c1/logs", p) < 0);
	expect(p[0] == NULL);
	/* The literal "aliases" wins over a fingerprint placeholder. */
	int alias = route_match("/1.0/images/aliases/{name}", "/1.0/images/aliases/export", p);
	params_free(p);
	int export = route_match("/1.0/images/{fingerprint}/export", "/1.0/images/aliases/export", p);
	params_free(p);
	expect(alias > export && export >= 0);
	int literal = route_match("/1.0/images/aliases", "/1.0/images/aliases", NULL);
	int placeholder = route_match("/1.0/images/{fingerprint}", "/1.0/images/aliases", NULL);
	expect(literal > placeholder && placeholder >= 0);
	if (failures == 0)
		printf("ok - routes\n");
	return failures == 0 ? 0 : 1;
}
