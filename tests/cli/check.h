/* A few assertions for the CLI's unit tests: each failure is printed with
 * its line, and the test exits 1 at the end if anything failed. */
#pragma once

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

#define CHECK_STR(actual, expected)                                                  \
	do {                                                                         \
		const char *a_ = (actual), *e_ = (expected);                         \
		if (a_ == NULL || strcmp(a_, e_) != 0) {                             \
			fprintf(stderr, "%s:%d: expected:\n%s\nactual:\n%s\n", __FILE__, __LINE__, e_, \
				a_ ? a_ : "(null)");                                 \
			check_failures++;                                            \
		}                                                                    \
	} while (0)

#define CHECK_DONE() (check_failures ? (fprintf(stderr, "%d failure(s)\n", check_failures), 1) : 0)
