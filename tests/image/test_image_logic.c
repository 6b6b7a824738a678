/* Unit tests for the pure parts of src/image: tarball path normalisation and
 * metadata.yaml parsing and writing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "image/image_internal.h"

static int failures;

#define expect(cond)                                                               \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                                \
		}                                                                  \
	} while (0)

static void expect_normalized(const char *in, const char *want)
{
	char *got = image_path_normalize(in);
	if ((want == NULL) != (got == NULL) || (want != NULL && strcmp(want, got) != 0)) {
		fprintf(stderr, "normalize '%s': want '%s', got '%s'\n", in, want ? want : "(refused)",
			got ? got : "(refused)");
		failures++;
	}
	free(got);
}

static void test_paths(void)
{
	expect_normalized("rootfs/etc/passwd", "rootfs/etc/passwd");
	expect_normalized("./rootfs/etc/", "rootfs/etc");
	expect_normalized("rootfs//./bin///sh", "rootfs/bin/sh");
	expect_normalized("./", "");
	expect_normalized(".", "");
	expect_normalized("rootfs/..hidden", "rootfs/..hidden");
	expect_normalized("rootfs/a..", "rootfs/a..");
	expect_normalized("../escape", NULL);
	expect_normalized("rootfs/../../etc/passwd", NULL);
	expect_normalized("rootfs/a/..", NULL);
	expect_normalized("/abs/path", NULL);
	expect_normalized(NULL, NULL);

	expect(strcmp(image_path_under("rootfs/etc", "rootfs"), "etc") == 0);
	expect(strcmp(image_path_under("rootfs", "rootfs"), "") == 0);
	expect(image_path_under("rootfsx/etc", "rootfs") == NULL);
	expect(image_path_under("metadata.yaml", "rootfs") == NULL);
}

static void test_metadata(void)
{
	struct image_metadata md = {0};
	struct ferry_error *err = NULL;
	const char *lxd = "architecture: x86_64\n"
			  "creation_date: 1700000000\n"
			  "properties:\n"
			  "  os: busybox\n"
			  "  release: 1.35.0\n"
			  "  serial: 12\n"
			  "templates:\n"
			  "  /etc/hostname:\n"
			  "    when: [create]\n"
			  "    template: hostname.tpl\n";
	expect(image_metadata_parse(lxd, strlen(lxd), &md, &err) == 0);
	expect(md.architecture && strcmp(md.architecture, "x86_64") == 0);
	expect(md.creation_date == 1700000000);
	expect(image_metadata_property(&md, "os") && strcmp(image_metadata_property(&md, "os"), "busybox") == 0);
	expect(image_metadata_property(&md, "serial") && strcmp(image_metadata_property(&md, "serial"), "12") == 0);

	/* What we write reads back the same, odd values included. */
	image_metadata_set_property(&md, "description", "it's \"quoted\": yes\nand two lines");
	image_metadata_set_property(&md, "flag", "yes");
	char *text = NULL;
	size_t len = 0;
	expect(image_metadata_format(&md, &text, &len, &err) == 0);
	struct image_metadata back = {0};
	expect(text && image_metadata_parse(text, len, &back, &err) == 0);
	expect(back.creation_date == 1700000000);
	expect(strv_len(back.property_keys) == 5);
	expect(image_metadata_property(&back, "description") &&
	       strcmp(image_metadata_property(&back, "description"), "it's \"quoted\": yes\nand two lines") == 0);
	expect(image_metadata_property(&back, "flag") && strcmp(image_metadata_property(&back, "flag"), "yes") == 0);
	free(text);
	image_metadata_clear(&back);
	image_metadata_clear(&md);

	const char *bad[] = {
		"", "- a list\n", "architecture: [x86_64]\n", "properties: {}\n",
		"architecture: x86_64\ncreation_date: soon\n", "architecture: x86_64\nproperties: [a]\n",
		"architecture: x86_64\n  bad indent: [\n", NULL,
	};
	for (size_t i = 0; bad[i] != NULL; i++) {
		struct image_metadata m = {0};
		if (image_metadata_parse(bad[i], strlen(bad[i]), &m, &err) == 0) {
			fprintf(stderr, "accepted bad metadata: %s\n", bad[i]);
			failures++;
		} else {
			expect(err != NULL && err->status == 400);
		}
		error_free(&err);
		image_metadata_clear(&m);
	}
}

static void expect_mirror(char *got, const char *want)
{
	if ((want == NULL) != (got == NULL) || (want != NULL && strcmp(want, got) != 0)) {
		fprintf(stderr, "mirror: want '%s', got '%s'\n", want ? want : "(none)", got ? got : "(none)");
		failures++;
	}
	free(got);
}

static void test_apt_sources(void)
{
	const char *deb822 = "Types: deb-src\n"
			     "URIs: http://src.example/debian\n"
			     "Suites: bookworm\n"
			     "\n"
			     "Types: deb\n"
			     "# a comment\n"
			     "URIs: http://security.example/debian-security\n"
			     "Suites: bookworm-security\n"
			     "\n"
			     "Types: deb deb-src\n"
			     "URIs: http://mirror.example/debian http://other.example/debian\n"
			     "Suites: bookworm bookworm-updates\n"
			     "Components: main\n";
	expect_mirror(image_apt_mirror_deb822(deb822, "bookworm"), "http://mirror.example/debian");
	expect_mirror(image_apt_mirror_deb822(deb822, "trixie"), NULL);
	expect_mirror(image_apt_mirror_deb822("Types: deb\nURIs: http://last.example/d\nSuites: bookworm", "bookworm"),
		      "http://last.example/d");
	const char *list = "# deb http://commented.example/debian bookworm main\n"
			   "deb-src http://src.example/debian bookworm main\n"
			   "deb http://security.example/debian-security bookworm-security main\n"
			   "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n";
	expect_mirror(image_apt_mirror_list(list, "bookworm"), "http://mirror.example/debian");
	expect_mirror(image_apt_mirror_list("", "bookworm"), NULL);
}

int main(void)
{
	test_paths();
	test_metadata();
	test_apt_sources();
	if (failures)
		fprintf(stderr, "%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
