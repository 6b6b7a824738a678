/* A live move's memory (migrate.h): CRIU's page-server traffic between
 * the source's dumping CRIU and, on the target, `criu page-server`
 * (stop-and-copy: the pages go as they are dumped) or `criu lazy-pages`
 * (post-copy: the source's CRIU serves the pages of the frozen tasks as
 * the restored ones fault, and the rest in the background), relayed by
 * the two ferryds over two migration streams: "pages" (source -> target)
 * and "page-requests" (target -> source: requests, acknowledgements).
 * Each side hands its CRIU one end of a socketpair and relays the other;
 * binary messages carry the bytes as they come, an empty message is the
 * end of a direction.
 *
 * A lazy page server takes a clean end of its socket for success, so the
 * source ends it only on the target's word (migrate_pages_source_end); on
 * anything else (a broken stream too) it makes CRIU fail. A page server's
 * end, clean or not, while the source still dumps fails the dump. */
#pragma once

#include <stdbool.h>

#include "common/error.h"
#include "common/ws.h"

struct migrate_pages;

/* Source: *criu_socket (close-on-exec; the caller lets CRIU inherit it)
 * is for the dump's page_socket; the caller closes it once the dump is
 * over. The streams stay the caller's. */
int migrate_pages_source_start(bool lazy, struct ws *pages, struct ws *requests, int *criu_socket,
			       struct migrate_pages **out, struct ferry_error **err);
/* Source: end CRIU's page serving: ok (the target has every page) as
 * success, else as failure. Only the first call counts; a broken stream
 * counts as a failure by itself. */
void migrate_pages_source_end(struct migrate_pages *p, bool ok);

/* Target: *daemon_socket is for `criu page-server` or the lazy-pages
 * daemon (runtime_restore_opts.lazy_socket); the caller closes it once
 * that has its copy. */
int migrate_pages_target_start(struct ws *pages, struct ws *requests, int *daemon_socket,
			       struct migrate_pages **out, struct ferry_error **err);

/* Stop relaying (a source that has not decided yet: as a failure), join
 * the threads and free. Returns the bytes of pages relayed. The incoming
 * stream can't be used afterwards. NULL is fine. */
unsigned long long migrate_pages_stop(struct migrate_pages *p);
