/* The progress line `ferry move` draws: a bar with the stage, MB and MB/s,
 * proportional with a total and a moving block without one, fitted to
 * the terminal's width; the "*_progress" text of other operations. */
#include <stdlib.h>

#include "../../src/cli/progress.h"
#include "check.h"

#define LABEL "Transferring instance"
#define LONG_STAGE "rootfs changes (the instance is stopped)"

/* A rendered line (a new string) is as expected; then it is freed. */
#define CHECK_RENDERED(rendered, expected)                                         \
	do {                                                                       \
		char *line_ = (rendered);                                          \
		CHECK_STR(line_, expected);                                        \
		free(line_);                                                       \
	} while (0)

static const struct progress_report rootfs = { "rootfs", 123456789, 0, 45678901 };
static const struct progress_report rootfs_of = { "rootfs", 123456789, 274200000, 45678901 };

/* Every line fits in width - 1 columns, whatever it reports. */
static void check_fits(const char *label, const struct progress_report *r)
{
	for (int width = 0; width <= 250; width++) {
		for (unsigned tick = 0; tick < 70; tick += 7) {
			char *line = progress_render_bar(label, r, width, tick);
			CHECK(line != NULL && (int)strlen(line) <= (width > 0 ? width - 1 : 0));
			if (line != NULL && (int)strlen(line) > (width > 0 ? width - 1 : 0))
				fprintf(stderr, "  width %d: \"%s\"\n", width, line);
			free(line);
		}
	}
}

static void test_bar_without_total(void)
{
	/* 80 columns: the label, a bar 25 columns inside with its block at
	 * the left end, the stage, MB so far and the rate. */
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 80, 0),
		       LABEL " [<====>                   ]  rootfs  123.5 MB   45.7 MB/s");
	/* The block moves one column per tick, and comes back from the end. */
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 80, 3),
		       LABEL " [   <====>                ]  rootfs  123.5 MB   45.7 MB/s");
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 80, 19),
		       LABEL " [                   <====>]  rootfs  123.5 MB   45.7 MB/s");
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 80, 21),
		       LABEL " [                 <====>  ]  rootfs  123.5 MB   45.7 MB/s");
	/* 200 columns: the bar stops growing at 40. */
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 200, 0),
		       LABEL " [<====>                                  ]  rootfs  123.5 MB   45.7 MB/s");
	/* 20 columns: the bar and the MB so far. */
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 20, 0), "[<=>    ]  123.5 MB");
	/* A stage begins: nothing sent yet, at 0 MB/s so far. */
	struct progress_report start = { "state", 0, 0, 0 };
	CHECK_RENDERED(progress_render_bar(LABEL, &start, 80, 0),
		       LABEL " [<====>                    ]  state    0.0 MB    0.0 MB/s");
	/* A server that reports no rate: none shown. */
	struct progress_report no_rate = { "rootfs", 123456789, 0, -1 };
	CHECK_RENDERED(progress_render_bar(LABEL, &no_rate, 80, 0),
		       LABEL " [<====>                    ]  rootfs  123.5 MB");
	/* No label, no stage. */
	struct progress_report bare = { NULL, 5000000, 0, 1000000 };
	CHECK_RENDERED(progress_render_bar(NULL, &bare, 80, 0),
		       "[<====>                                  ]    5.0 MB    1.0 MB/s");
	check_fits(LABEL, &rootfs);
	check_fits(NULL, &bare);
}

static void test_bar_with_total(void)
{
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs_of, 80, 0),
		       LABEL " [=====>        ]  45%  rootfs  123.5/274.2 MB   45.7 MB/s");
	/* The tick moves nothing when the bar is proportional. */
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs_of, 80, 9),
		       LABEL " [=====>        ]  45%  rootfs  123.5/274.2 MB   45.7 MB/s");
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs_of, 200, 0),
		       LABEL " [=================>                      ]  45%  rootfs  123.5/274.2 MB   45.7 MB/s");
	/* 20 columns: the bar and the percentage. */
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs_of, 20, 0), "[====>       ]  45%");
	/* 0 bytes: an empty bar at 0%. */
	struct progress_report none = { "rootfs", 0, 274200000, 0 };
	CHECK_RENDERED(progress_render_bar(LABEL, &none, 80, 0),
		       LABEL " [              ]   0%  rootfs    0.0/274.2 MB    0.0 MB/s");
	/* Done, or more than announced: a full bar at 100%. */
	struct progress_report over = { "rootfs", 300000000, 274200000, 0 };
	CHECK_RENDERED(progress_render_bar(LABEL, &over, 80, 0),
		       LABEL " [==============] 100%  rootfs  300.0/274.2 MB    0.0 MB/s");
	check_fits(LABEL, &rootfs_of);
	check_fits(LABEL, &none);
}

static void test_long_stage(void)
{
	struct progress_report r = { LONG_STAGE, 123456789, 0, 45678901 };
	/* 80 columns: the label stays, the stage is cut, the bar at its minimum. */
	CHECK_RENDERED(progress_render_bar(LABEL, &r, 80, 0),
		       LABEL " [<=>       ]  rootfs changes (th...  123.5 MB   45.7 MB/s");
	/* 200 columns: all of it. */
	CHECK_RENDERED(progress_render_bar(LABEL, &r, 200, 0),
		       LABEL " [<====>                                  ]  " LONG_STAGE "  123.5 MB   45.7 MB/s");
	/* 40 columns: the rate and the label go, the stage is cut. */
	CHECK_RENDERED(progress_render_bar(LABEL, &r, 40, 0), "[<=>   ]  rootfs changes (...  123.5 MB");
	CHECK_RENDERED(progress_render_bar(LABEL, &r, 20, 0), "[<=>    ]  123.5 MB");
	struct progress_report huge = { NULL, 0, 0, 0 };
	char stage[3000];
	memset(stage, 'x', sizeof(stage) - 1);
	stage[sizeof(stage) - 1] = '\0';
	huge.stage = stage;
	check_fits(LABEL, &r);
	check_fits(LABEL, &huge);
	check_fits(stage, &rootfs_of);
}

static void test_tiny_and_hostile(void)
{
	/* Too narrow for a bar: nothing. A little wider: the bar alone. */
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 3, 0), "");
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 0, 0), "");
	CHECK_RENDERED(progress_render_bar(LABEL, &rootfs, 10, 0), "[<=>    ]");
	/* The server's text cannot move the cursor or widen a column. */
	struct progress_report evil = { "a\033[2Jb\r\n\xc3\xa9t\xc3\xa9", 0, 0, 0 };
	CHECK_RENDERED(progress_render_bar(NULL, &evil, 80, 0), "[<====>                    ]  a?[2Jb???t?    0.0 MB    0.0 MB/s");
}

static void test_text(void)
{
	/* The image commands' label ends in ": " already; move's doesn't. */
	CHECK_RENDERED(progress_render_text("Transferring image: ", "rootfs: 45% (12.3MB/s)", 80),
		       "Transferring image: rootfs: 45% (12.3MB/s)");
	CHECK_RENDERED(progress_render_text(LABEL, "rootfs: 1.2 MB (0.6 MB/s)", 80),
		       LABEL ": rootfs: 1.2 MB (0.6 MB/s)");
	CHECK_RENDERED(progress_render_text(LABEL, LONG_STAGE, 40), LABEL ": rootfs change...");
	CHECK_RENDERED(progress_render_text(NULL, "12%", 80), "12%");
	CHECK_RENDERED(progress_render_text(LABEL, "12%", 1), "");
}

static void test_operation(void)
{
	/* A migration target's operation: both the text and the structure; the bar wins. */
	json_t *m = json_pack("{s:s, s:{s:s, s:I, s:I}}", "fs_progress", "rootfs: 123.5 MB (45.7 MB/s)", "progress",
			      "stage", "rootfs", "bytes", (json_int_t)123456789, "bytes_per_second",
			      (json_int_t)45678901);
	CHECK_RENDERED(progress_render_operation(m, LABEL, 80, 0),
		       LABEL " [<====>                   ]  rootfs  123.5 MB   45.7 MB/s");
	json_object_set_new(json_object_get(m, "progress"), "total", json_integer(274200000));
	CHECK_RENDERED(progress_render_operation(m, LABEL, 80, 0),
		       LABEL " [=====>        ]  45%  rootfs  123.5/274.2 MB   45.7 MB/s");
	json_decref(m);
	/* An image download: text only. */
	m = json_pack("{s:s}", "download_progress", "rootfs: 45% (12.3MB/s)");
	CHECK_RENDERED(progress_render_operation(m, "Retrieving image: ", 80, 0), "Retrieving image: rootfs: 45% (12.3MB/s)");
	json_decref(m);
	/* A "progress" that isn't ours (no bytes) falls back to the text, then to nothing. */
	m = json_pack("{s:{s:s}}", "progress", "stage", "unpack");
	CHECK(progress_render_operation(m, LABEL, 80, 0) == NULL);
	json_decref(m);
	CHECK(progress_render_operation(NULL, LABEL, 80, 0) == NULL);
}

int main(void)
{
	test_bar_without_total();
	test_bar_with_total();
	test_long_stage();
	test_tiny_and_hostile();
	test_text();
	test_operation();
	return CHECK_DONE();
}
