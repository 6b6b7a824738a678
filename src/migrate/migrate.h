/* Migration of instances between two ferryds, LXD's way: pulled by the
 * target.
 *
 *   client -> source: POST /1.0/instances/NAME {"migration": true, "live": false,
 *            "instance_only": false, "stateful": false}
 *            ("stateful", ferry's: a stopped instance's saved state goes along,
 *            for a move; a copy would restore the source's MAC and address)
 *            answers a websocket operation with the secrets of its streams,
 *            metadata {"control": S1, "fs": S2}
 *   client -> target: POST /1.0/instances {"name", "source": {"type": "migration",
 *            "mode": "pull", "operation": "https://SRC:8443/1.0/operations/ID",
 *            "certificate": PEM, "secrets": {"control": S1, "fs": S2}}, "config"...}
 *   target -> source: connects to both websockets over mutual TLS, presenting
 *            its own server certificate and insisting on the given one.
 *
 * On "control" (JSON text messages, the types below; the only place they
 * are declared): the source sends a header (the instance's record and its
 * snapshots'); the target checks what it can before anything else comes
 * and answers with its plan (MIGRATE_PLAN_*) or why not; the fs stream
 * follows; the target answers with a result.
 * On "fs": the rootfs as binary messages of a tar stream (uncompressed, the
 * image tarball's layout: rootfs/...) with unshifted owners (container ids),
 * ended by an empty message: first one such stream per snapshot, in the
 * header's order (a stateful one's followed by a second stream: its CRIU
 * images, owners unshifted), then the instance's own rootfs, and, when the
 * header says "stateful", the instance's saved state (CRIU's images, owners
 * unshifted) as one more stream. Nothing is
 * spooled to disk on either side: the
 * source writes the tar straight into the websocket, the target unpacks as
 * it arrives, shifting owners into its own idmap.
 *
 * A snapshot goes the same way (POST /1.0/instances/NAME/snapshots/SNAP
 * {"migration": true}), as a new instance: its record is the header's, its
 * rootfs the one tree, no snapshots, no state.
 *
 * Neither side deletes the source: a move is a copy followed by the
 * client's DELETE of the source once the target's operation succeeded, so
 * a failure at any point leaves the source as it was. The target removes a
 * partial copy on any failure.
 *
 * A live move ("live": true to both sides, the instance running) has
 * three more streams: "state", and "pages" and "page-requests" (CRIU's
 * page-server traffic, relayed: pages.h). After the first pass of the
 * rootfs (sent while the instance runs), with the memory mode the header
 * names (stop-and-copy unless "post_copy"):
 *
 *   T    starts `criu page-server` on the page streams (stop-and-copy)
 *   T->S result "ready": the record is made, the rootfs is in place (or why not:
 *        the source is untouched)
 *   S    CRIU dumps the container (the downtime begins; INSTANCE_KEY_OUTGOING =
 *        "frozen", or "post-copy"): stop-and-copy streams every page to the
 *        target's page server as it goes, none to disk here; post-copy dumps no
 *        page. Meanwhile, from the freeze on:
 *   S->T fs: what changed in the rootfs since the first pass (ctime or mtime), then
 *        on control a "paths" message: the names in each directory that changed
 *        (the target removes the others there); state: the container's /dev
 *        directory (shifted), a tar stream ended by an empty message
 *   S    at CRIU's post-dump notification, the tasks still frozen and able to run
 *        on here, the source goes on:
 *   S->T state: CRIU's other images (owners unshifted: they belong to host root),
 *        a tar stream ended by an empty message
 *   T    restores with every task stopped, network up: stop-and-copy once its page
 *        server has every page; post-copy with `criu lazy-pages` on the page
 *        streams, asking the source's CRIU (which serves them from the
 *        notification on) for the pages the tasks touch
 *   T->S result "restored" (or why not)
 *   S->T commit; INSTANCE_KEY_OUTGOING = "committed": the source never runs it
 *        again (its veths go once the target has answered)
 *   T    lets the tasks run and announces the addresses (the downtime ends)
 *   T->S result "running"; stop-and-copy: the notification returns, CRIU ends the
 *        frozen tasks here, the source discards what is left of its state
 *   S->T state: MIGRATE_HELD_FRAMES (a tree of it, or empty): what the LAN
 *        sent the instance from just before the freeze until "running" (the
 *        source's bridges sent it to hold ports, runtime_frame_hold), which
 *        the target gives it at once: a request sent while it was stopped is
 *        answered now, not at the client's retransmission
 *   S->T state: the source's CRIU dump log so far (its copy goes with the
 *        instance), a tar stream ended by an empty message; not while the
 *        instance is stopped: ~250 KiB took ~10 ms of the downtime here
 *   post-copy only: the source's CRIU serves the pages until the target has them
 *        all, then T->S result "complete" (or why not): the source ends its page
 *        server cleanly (or as a failure), and CRIU ends the tasks; the target
 *        clears INSTANCE_KEY_MIGRATING only now
 *
 * Exactly one running copy: any failure before the commit makes the target
 * kill and remove its copy and the source give its tasks back (the
 * notification answers "no", or the pages stop: CRIU resumes them in place,
 * network unlocked; a source ferryd restarted meanwhile finds them frozen
 * and lets them run). A target that hears no commit within
 * MIGRATE_COMMIT_TIMEOUT_MS kills its copy; a source that hears no
 * "running" after its commit says so (the target may run it; the copy here
 * is gone: its memory went to the target).
 *
 * Post-copy's pages that can't come after the commit leave no running copy:
 * the target's monitor kills its copy at once (it would run with zeroes for
 * memory), the target removes it, and the source kills its frozen tasks
 * (the target's copy ran on from them); the instance stays on the source,
 * stopped, with its rootfs and config as they were at the freeze. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"
#include "common/ws.h"

#define MIGRATE_SECRET_CONTROL "control"
#define MIGRATE_SECRET_FS "fs"
#define MIGRATE_SECRET_STATE "state"
#define MIGRATE_SECRET_PAGES "pages"
#define MIGRATE_SECRET_PAGE_REQUESTS "page-requests"
/* A live move's memory mode when neither the request nor the instance's
 * migration.memory says: "auto", post-copy for an instance using at least
 * MIGRATE_POST_COPY_FROM bytes (its memory cgroup's usage), else
 * stop-and-copy. Measured (bench/migrate_downtime.sh, README): post-copy's
 * downtime stays at 0.12-0.18 s from 16 MiB to 2 GiB, stop-and-copy's
 * grows with the memory (0.23 s at 16 MiB, 0.30 s at 64 MiB, 0.75 s at
 * 256 MiB, ~4 s at 1 GiB); below a few tens of MiB the difference is
 * ~0.1-0.17 s, and stop-and-copy has no window in which a failure loses
 * the memory. */
#define MIGRATE_MEMORY_DEFAULT "auto"
#define MIGRATE_POST_COPY_FROM (32LL << 20)
/* The target's word for a tree the source ended before its end: the
 * source's own failure, as a rule (its CRIU could not dump), whose reason
 * the source gives then, not this one. */
#define MIGRATE_STREAM_CLOSED_EARLY "the source closed the stream early"
/* The one file of the held frames' tree: the frames the LAN sent the
 * instance while it was stopped, held on the source
 * (runtime_frame_hold_frames' format); the target gives them to the
 * instance, which runs there by then. */
#define MIGRATE_HELD_FRAMES "held-frames"
/* Not a secret: the port of the source's stream listener (channel.h), as a
 * string among the secrets so that clients pass it on unchanged. */
#define MIGRATE_SECRET_PORT "ferry-port"
/* How long the source waits for the target to connect its streams. */
#define MIGRATE_CONNECT_TIMEOUT_MS 30000
/* How long the source waits for the target's plan (its pre-flight). */
#define MIGRATE_PLAN_TIMEOUT_MS 60000
/* A move that is not live of a running instance (MIGRATE_PLAN_STOP): how
 * long its init gets to shut down before it is killed. */
#define MIGRATE_STOP_TIMEOUT_S 30
/* fs stream: tar blocks of this size, one websocket message each. */
#define MIGRATE_FS_CHUNK (256 * 1024)
/* After a failed fs stream, how long to wait for the peer's reason on control. */
#define MIGRATE_REASON_TIMEOUT_MS 5000
/* Live: how long the target holds its restored, stopped copy for the commit
 * (which follows at once when all is well): less than the time a source
 * takes to notice a dead connection (channel.c, MIGRATE_PEER_TIMEOUT_S),
 * so that a target cut off drops its copy before the source runs again. */
#define MIGRATE_COMMIT_TIMEOUT_MS 10000
/* Live: how long the source waits for the target's restore. */
#define MIGRATE_RESTORE_TIMEOUT_MS 300000
/* Live: how long the target waits for the source's dump log, once it runs. */
#define MIGRATE_LOG_TIMEOUT_MS 10000

/* ---- control messages: {"type": "header"|"result", ...} ---------------- */

enum migrate_msg_type { MIGRATE_MSG_HEADER, MIGRATE_MSG_RESULT, MIGRATE_MSG_PATHS, MIGRATE_MSG_COMMIT };

/* Source -> target, first: what is coming. */
struct migrate_header {
	char *name;          /* the instance's name on the source */
	char *architecture;
	char *description;
	bool ephemeral;
	json_t *config;      /* the instance's own config (with volatile.*) */
	json_t *devices;
	json_t *profiles;
	/* Oldest first: struct db_snapshot rows (instance left out), encoded by
	 * migrate_snapshot_to_json. */
	json_t *snapshots;
	bool live;           /* the instance runs and was asked live: its state follows when the plan is live */
	bool running;        /* the instance runs (live or not): the target's plan says how it goes */
	/* Not live: the instance was stopped with its state (ferry stop
	 * --stateful); CRIU's images follow its rootfs on the fs stream, and
	 * the target's start restores them. */
	bool stateful;
	char *cpuinfo;       /* live or stateful: the source's CPU (checkpoint_cpuinfo_dump, base64), checked first */
	bool post_copy;      /* live: the memory follows after the takeover (see above) */
	/* Live: the bytes of memory the instance uses (its memory cgroup's), 0
	 * unknown: the target warms that much before the source freezes it. */
	unsigned long long memory;
};

struct db_snapshot;
json_t *migrate_snapshot_to_json(const struct db_snapshot *s);
/* Fills s (its instance: NULL). 502 when malformed. */
int migrate_snapshot_from_json(json_t *j, struct db_snapshot *s, struct ferry_error **err);

/* The target's answer to the header (a result whose "plan" says how it
 * goes on; or why not, before anything was sent). A running instance goes
 * live when asked and the client's request is a move; a copy of it (the
 * client's config carries none of the source's volatile.* keys: LXD's
 * client and ferry's strip them for a copy, keep them for a move) goes
 * while it runs, without its state; a move that is not live stops it first
 * (LXD's client then starts it on the target and deletes the source). */
#define MIGRATE_PLAN_COLD "cold"   /* stopped: as it is (with its saved state when the header says so) */
#define MIGRATE_PLAN_LIVE "live"   /* running: live, as above */
#define MIGRATE_PLAN_COPY "copy"   /* running: its rootfs as it is while it runs, no state; it runs on */
#define MIGRATE_PLAN_STOP "stop"   /* running: the source stops it, then as cold (and starts it again on failure) */

/* Target -> source: the plan (above), "ready" (live), and last: did the
 * instance arrive. */
struct migrate_result {
	bool success;
	char *message;       /* why not, when !success */
	char *plan;          /* the answer to the header: MIGRATE_PLAN_* */
};

void migrate_header_clear(struct migrate_header *h);
void migrate_result_clear(struct migrate_result *r);

int migrate_send_header(struct ws *ws, const struct migrate_header *h, struct ferry_error **err);
int migrate_send_result(struct ws *ws, const struct migrate_result *r, struct ferry_error **err);
/* Receive the next control message, which must be of type want. */
int migrate_recv_header(struct ws *ws, struct migrate_header *h, int timeout_ms, struct ferry_error **err);
int migrate_recv_result(struct ws *ws, struct migrate_result *r, int timeout_ms, struct ferry_error **err);

/* Live: {"type": "paths", "dirs": [{"dir": "", "names": ["etc", ...]},
 * {"dir": "etc", "names": ["passwd", ...]}, ...]}: each directory of the
 * frozen rootfs that changed since the first pass ("": the top), with every
 * name it holds. What the target has in such a directory beyond those went
 * since (the other directories lost nothing). A name (or dir) that is not
 * UTF-8 goes as {"base64": "..."} (migrate_name_to_json). recv checks the
 * shape. */
int migrate_send_paths(struct ws *ws, json_t *dirs, struct ferry_error **err);
int migrate_recv_paths(struct ws *ws, json_t **dirs, int timeout_ms, struct ferry_error **err);
/* A file name (any bytes but '/' and NUL) for JSON: a string when it is
 * UTF-8, else {"base64": ...}; and back (NULL: neither, or a NUL inside). */
json_t *migrate_name_to_json(const char *name);
char *migrate_name_from_json(json_t *j);
/* Live: {"type": "commit"}, source -> target. */
int migrate_send_commit(struct ws *ws, struct ferry_error **err);
int migrate_recv_commit(struct ws *ws, int timeout_ms, struct ferry_error **err);

/* ---- the daemon's entry points ------------------------------------------ */

struct response;
/* POST /1.0/instances/NAME with "migration": true: the source's operation. */
struct response *migrate_source_respond(const char *name, json_t *body);
/* POST /1.0/instances/NAME/snapshots/SNAP {"migration": true}: the same
 * for a copy of the snapshot as a new instance (never live). The caller
 * checked that it exists. */
struct response *migrate_source_snapshot_respond(const char *name, const char *snapshot);
/* POST /1.0/instances with source.type "migration": the target's operation. */
struct response *migrate_target_respond(json_t *body);
