/* Instances: the glue between the database, images, network and runtime.
 *
 * The functions here do one action on one instance; the API endpoints call
 * them from operations, holding instance_lock(name) around them so actions
 * on one instance run one at a time. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "daemon/db.h"
#include "common/ws.h"
#include "runtime/runtime.h"

/* Container ids 0..IDMAP_RANGE-1 map to host ids base..base+IDMAP_RANGE-1. */
#define INSTANCE_IDMAP_BASE_DEFAULT 1000000u
#define INSTANCE_IDMAP_RANGE 65536u

/* LXD's rules for instance names (hostname-like). 400 when invalid. */
int instance_name_validate(const char *name, struct ferry_error **err);

/* Per-instance paths, malloc'd. */
char *instance_dir(const char *name);      /* CONTAINERS/NAME: the runtime's state directory */
char *instance_rootfs(const char *name);   /* CONTAINERS/NAME/rootfs */
char *instance_logs_dir(const char *name); /* CONTAINERS/NAME/logs: exec output */
char *instance_log_dir(const char *name);  /* LOGDIR/NAME: runtime logs */
char *instance_state_dir(const char *name); /* CONTAINERS/NAME/state: a stateful stop's CRIU images */
/* The cgroup below each hierarchy's root: "ferry-1a2b3c4d/NAME". */
char *instance_cgroup(const char *name);

struct instance_create_args {
	const char *name;
	const char *source_type;  /* "image" or "none" */
	const char *alias;        /* image alias, or NULL */
	const char *fingerprint;  /* image fingerprint (or unique prefix), or NULL */
	json_t *config;           /* user config (validated here), may be NULL */
	json_t *devices;          /* may be NULL */
	json_t *profiles;         /* may be NULL: ["default"] */
	const char *description;
	bool ephemeral;
};

/* Check a create request without changing anything: name, config,
 * devices, the image, and that the name is free. */
int instance_create_check(const struct instance_create_args *args, struct ferry_error **err);
/* Create: DB row, then the rootfs unpacked from the image with the idmap
 * shift. On failure nothing is left behind. */
int instance_create(const struct instance_create_args *args, struct ferry_error **err);
/* Delete a stopped instance: rootfs, state and logs, DB row. */
int instance_delete(const char *name, struct ferry_error **err);
int instance_rename(const char *name, const char *new_name, struct ferry_error **err);
/* PUT (merge false: replace config/devices/profiles/description/ephemeral)
 * or PATCH (merge true: only the given keys). Validated before anything
 * changes; dry_run: validate only. A running instance takes limits.* at
 * once; what waits for its next start is appended to next_start (a JSON
 * list, may be NULL): "environment.FOO", "devices.data". */
int instance_update(const char *name, json_t *body, bool merge, bool dry_run, json_t *next_start,
		    struct ferry_error **err);

/* The instance's row, 404 "Instance \"NAME\" not found" when missing. */
int instance_get(const char *name, struct db_instance *inst, struct ferry_error **err);
/* Limit the addresses picked for nics to first..last (host byte order,
 * inclusive; 0, 0: the whole subnet). Hosts that share one L2 segment and
 * subnet (the multi-host test bed) give each daemon its own range, so no
 * two hand out the same address. Set once at start-up (--address-range). */
void instance_address_range_set(uint32_t first, uint32_t last);
/* Set on an instance's row while a migration brings it in, removed when it
 * has all arrived: an instance still carrying it at start-up is the
 * partial copy of a transfer that died with ferryd, and is deleted. */
#define INSTANCE_KEY_MIGRATING "volatile.migration.incoming"
/* On a live move's source, from the dump on: "frozen" (stop-and-copy) or
 * "post-copy" (a failure gives the tasks back; a ferryd start finds them
 * frozen and lets them run), then "committed" (the target has it: never
 * run it here again). */
#define INSTANCE_KEY_OUTGOING "volatile.migration.outgoing"
/* Delete the host ends of a running instance's veths (spec.json's names):
 * its network is gone at once, so nothing it does next reaches anyone (a
 * copy that is about to be killed sends no RST for the TCP connections the
 * other copy keeps). */
void instance_cut_host_veths(const char *name);
/* Set (value) or remove (NULL) one key of an instance's own config, as is. */
int instance_config_mark(const char *name, const char *key, const char *value, struct ferry_error **err);

/* Add the row of a new instance (copies): fresh MAC and address for each
 * nic (volatile.*), 409 when the name is taken. */
int instance_record_create(struct db_instance *inst, struct ferry_error **err);

/* Start. An instance with a stateful stop's saved state is restored from
 * it (LXD: "lxc start" restores), and the state removed once it runs;
 * when the restore fails the state stays and the instance stays stopped.
 * INSTANCE_START_STATELESS discards the state and boots afresh;
 * INSTANCE_START_STATEFUL fails (400) when there is none. images (may be
 * NULL): restore from these CRIU images instead (a stateful snapshot's,
 * left in place), logging as what ("snapshot"). */
enum instance_start_mode { INSTANCE_START_DEFAULT, INSTANCE_START_STATEFUL, INSTANCE_START_STATELESS };
int instance_start_mode(const char *name, enum instance_start_mode mode, const char *images, const char *what,
			struct ferry_error **err);
int instance_start(const char *name, struct ferry_error **err);
/* Stateful stop: CRIU saves every process into instance_state_dir (its log:
 * LOGDIR/NAME/stop_dump_<ts>.log) and the container stops; the instance is
 * "stateful" until a start restores it. When the dump fails the instance
 * keeps running and the error carries CRIU's line and the log's path. */
int instance_stop_stateful(const char *name, struct ferry_error **err);
/* The same, logging as what ("migration": LOGDIR/NAME/migration_dump_<ts>.log). */
/* lazy (may be NULL): a live migration's memory mode, socket and hooks
 * (runtime_checkpoint_opts: lazy or page_server, page_socket, post_dump,
 * lazy_failed; the rest unused): should post-copy's pages fail after the
 * hook said go, lazy_failed decides whether the copy here is killed
 * (ECONNABORTED) or runs on. */
struct runtime_checkpoint_opts;
int instance_stop_stateful_as(const char *name, const char *what, const struct runtime_checkpoint_opts *lazy,
			      struct ferry_error **err);
/* NAME.WHAT in the daemon's staging directory (in memory: a live move's
 * state and pages), or NULL where there is none or the instance's
 * directory is in memory already (then they stay beside the instance). */
char *instance_staging_path(const char *name, const char *what);
/* A live move's dump (what "migration") is made in staging
 * (instance_staging_path "dump"), the state directory a link to it: its
 * images go to the target as CRIU writes them and are of no use here
 * afterwards. The source removes them once the dump is over, whatever its
 * outcome. */
void instance_dump_staging_clear(const char *name);
/* A live migration's target: restore the saved state (logging as what) with
 * every task left stopped, network up; instance_resume lets them run. The
 * pages are punched out of the images as they are read (discard_pages): on
 * failure the target's copy goes anyway, and the source still has its own. */
int instance_restore_paused(const char *name, const char *what, int lazy_socket, struct ferry_error **err);
/* lazy_socket >= 0: post-copy (runtime_restore_opts.lazy_socket); then
 * instance_lazy_pages_status tells when every page is in (1), not yet (0),
 * or that they failed and the instance was killed (-1). The saved state is
 * not discarded by such a restore. */
int instance_lazy_pages_status(const char *name, struct ferry_error **err);
int instance_resume(const char *name, struct ferry_error **err);
/* Make a directory for CRIU images (or the directories above them): the
 * restore reads them from inside the container's user namespace, so its
 * root (the idmap's base gid) may pass through it, nobody else. */
int instance_images_dir_make(const char *name, const char *path, struct ferry_error **err);
/* Remove a stateful stop's saved state, if any. */
int instance_discard_state(const char *name, struct ferry_error **err);
/* Kill a running instance at once (no ephemeral deletion): before a restore. */
int instance_stop_forced(const char *name, struct ferry_error **err);
/* 409 when CRIU couldn't checkpoint the running instance: an exec session
 * runs in it (its processes hang below ferryd, not below init, and a dump
 * of init's tree would lose them), or a process has an IPC, PID, user or
 * time namespace of its own, or a POSIX message queue open. action names
 * what is refused ("stop --stateful"). */
int instance_checkpoint_check(const char *name, const char *action, struct ferry_error **err);
/* GET /1.0 environment.criu: checkpoint_check's answer, cached. The check
 * starts in the background at start-up (instances_startup); the first
 * callers wait for it. NULL if it could not run. */
void instance_criu_check_start(void);
json_t *instance_criu_environment(void);
/* timeout_s < 0: wait forever for a clean shutdown; force: kill at once. */
int instance_stop(const char *name, int timeout_s, bool force, struct ferry_error **err);
/* instance_stop without deleting an ephemeral instance: a move that is not
 * live stops it on its way out. */
int instance_stop_keep(const char *name, int timeout_s, bool force, struct ferry_error **err);
int instance_restart(const char *name, int timeout_s, bool force, struct ferry_error **err);
int instance_freeze(const char *name, struct ferry_error **err);
int instance_unfreeze(const char *name, struct ferry_error **err);

/* The runtime's view; a missing instance is 404. */
int instance_runtime_state(const char *name, struct runtime_state *st, struct ferry_error **err);
bool instance_is_running(const char *name);

/* LXD's instance object (recursion 2 adds "state", "snapshots", "backups"). */
int instance_to_json(const char *name, int recursion, json_t **out, struct ferry_error **err);
/* LXD's InstanceState object. */
int instance_state_to_json(const char *name, json_t **out, struct ferry_error **err);
/* The instance's profiles applied in order, then its own devices/config on
 * top (profiles.h, profiles_expand). */
json_t *instance_expanded_devices(const struct db_instance *inst);
json_t *instance_expanded_config(const struct db_instance *inst);
/* The same for the instance called name, as stored now. */
int instance_expanded(const char *name, json_t **config, json_t **devices, struct ferry_error **err);

/* Before a profile edit is saved: would instance name stay valid with
 * profile's new content? (a root disk, fixed addresses free,
 * security.privileged unchanged). 400 naming the instance. */
struct db_profile;
int instance_check_profile_edit(const char *name, const struct db_profile *profile, struct ferry_error **err);
/* An instance's expanded view changed from old to new (by its own edit or
 * a profile's): a running instance gets the changed limits.* written to its
 * cgroups at once (all or none); other changes that only a restart brings
 * are appended to next_start (may be NULL). Nothing to do when stopped. */
int instance_apply_live(const char *name, json_t *old_config, json_t *old_devices, json_t *new_config,
			json_t *new_devices, json_t *next_start, struct ferry_error **err);

/* Host id for container id (uid or gid) and back, by the instance's idmap. */
struct instance_idmap {
	unsigned base;   /* 0: privileged, no shift */
	unsigned range;
};
int instance_idmap(const char *name, struct instance_idmap *map, struct ferry_error **err);
unsigned instance_idmap_to_host(const struct instance_idmap *map, unsigned id);
/* 65534 (overflow id) for host ids outside the map. */
unsigned instance_idmap_from_host(const struct instance_idmap *map, unsigned host_id);

/* The environment for exec: LXD's defaults, then environment.* of the
 * instance, then the request's own. Returns NULL-terminated "K=V". */
char **instance_exec_environment(const char *name, json_t *request_env, uid_t uid, struct ferry_error **err);

/* {"instances": ["/1.0/instances/NAME"]} */
json_t *instance_resources(const char *name);
char *instance_url(const char *name);
/* The cgroup directory, below each hierarchy's root, holding the instances
 * of the daemon whose (absolute) root is root: "ferry-1a2b3c4d". */
char *instance_cgroup_parent(const char *root);

/* Create a task or websocket operation on instance name with metadata
 * (stolen, may be NULL), start it, and answer the request with it (202). */
struct operation;
struct response;
typedef int (*instance_op_run_fn)(struct operation *op, void *data, struct ferry_error **err);
typedef void (*instance_op_connect_fn)(struct operation *op, void *data, const char *secret, struct ws *ws);
struct response *instance_operation_respond(bool websocket, const char *description, const char *name,
					    json_t *metadata, instance_op_run_fn run, instance_op_connect_fn connect,
					    void *data, void (*free_data)(void *data));
/* A random secret for websocket operations (64 hex digits). */
char *instance_new_secret(void);
